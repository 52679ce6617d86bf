"""EGMS product step: calibrate a burst's LOS velocities and series to GNSS.

GNSS station velocities (NGL .tenv series or velocity CSVs, plate motion removed) are
projected on the LOS of the points around each station; an offset or a plane fitted to
GNSS minus InSAR is added to every velocity and ``correction * t`` to every series.
Sign convention: LOS positive towards the satellite, mm and mm/yr.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from .. import __version__
from ..core.errors import UserError, require_file
from . import calibrate as cal
from . import gnss
from .egms_io import (LOS_CONVENTION, load_points, numeric_column, to_laea, with_series,
                      write_points, xy)
from .stats import timeseries_stats


def _is_tenv(path: str) -> bool:
    name = os.path.basename(path).lower()
    if ".tenv" in name:
        return True
    with open(path, "r", errors="replace") as f:
        first = f.readline().split()
    return len(first) >= 13 and re.fullmatch(r"\d{2}[A-Z]{3}\d{2}", first[1] or "") is not None


def load_gnss_velocities(files, stations=None, plate_model: str = "eurasia") -> pd.DataFrame:
    """Station velocities (ve, vn, vu mm/yr, lon, lat) from .tenv series and/or velocity CSVs,
    with the plate model removed (``plate_model``, see :data:`gnss.PLATE_MODEL_TEXT`)."""
    if plate_model not in gnss.PLATE_MODELS:
        raise UserError(f"--plate-model must be one of {', '.join(gnss.PLATE_MODELS)}, "
                        f"got {plate_model!r}")
    coords = gnss.read_station_csv(stations) if stations else None
    rows = []
    for f in files:
        f = require_file(f)
        if _is_tenv(f):
            s = gnss.read_tenv(f)
            if coords is None:
                raise UserError(f"station {s.station}: .tenv files carry no coordinates; give "
                                "them with --stations CSV (station, lon, lat)", f)
            hit = coords[coords["station"].str.upper() == s.station.upper()]
            if hit.empty:
                raise UserError(f"station {s.station} is not in the --stations CSV", stations)
            try:
                v = gnss.series_velocity(s)
            except ValueError as e:
                raise UserError(str(e), f) from None
            rows.append({"station": s.station, "lon": float(hit["lon"].iloc[0]),
                         "lat": float(hit["lat"].iloc[0]), **v, "source": os.path.basename(f)})
        else:
            df = gnss.read_station_csv(f, need_velocity=True)
            for r in df.to_dict("records"):
                rows.append({**{k: r.get(k, np.nan) for k in
                                ("station", "lon", "lat", "ve", "vn", "vu", "sve", "svn", "svu")},
                             "source": os.path.basename(f)})
    if not rows:
        raise UserError("no GNSS input given (--gnss FILES)")
    df = pd.DataFrame(rows)
    df["ve_frame"], df["vn_frame"] = df["ve"], df["vn"]
    df["ve"], df["vn"] = gnss.remove_plate_motion(df["lon"].to_numpy(), df["lat"].to_numpy(),
                                                  df["ve"].to_numpy(), df["vn"].to_numpy(),
                                                  plate_model)
    return df


def make_calibration(inp, gnss_files, out, *, stations=None, plate_model: str = "eurasia",
                     model: str = "offset", radius: float = 250.0, min_points: int = 3) -> dict:
    """Calibrate a burst's LOS velocities (and series) to GNSS with an offset or a plane.

    The correction c(x, y) = GNSS LOS velocity minus InSAR velocity, fitted over the stations,
    is added to ``mean_velocity`` and ``c * t`` to every series; statistics are recomputed.
    """
    if model not in cal.MODELS:
        raise UserError(f"--model must be one of {', '.join(cal.MODELS)}, got {model!r}")
    pts = load_points(inp)
    st = load_gnss_velocities(gnss_files, stations, plate_model)
    x, y = xy(pts, inp)
    # Velocities refitted from the series: the published column is rounded to 0.1 mm/yr,
    # which would quantise the station medians and so the correction.
    vel = timeseries_stats(pts.years(), pts.disp)["mean_velocity"]
    los = np.column_stack([numeric_column(pts, c, inp) for c in ("los_east", "los_north", "los_up")])
    sx, sy = to_laea(st["lon"].to_numpy(), st["lat"].to_numpy())
    med, cnt, near = cal.median_near(x, y, vel, sx, sy, radius, min_points)
    los_st = np.array([np.median(los[i], axis=0) if i.size else [np.nan] * 3 for i in near])
    g_los = cal.los_projection(st["ve"], st["vn"], st["vu"], *los_st.T)
    resid = np.asarray(g_los - med, dtype=np.float64)
    try:
        corr = cal.SurfaceCorrection(model).fit(sx, sy, resid)
    except ValueError as e:
        raise UserError(f"{e} (radius {radius:g} m, at least {min_points} points)", inp) from None
    c_pts = corr.apply(x, y)
    c_st = corr.apply(sx, sy)
    new = cal.correct_series(pts.disp, pts.years(), c_pts)
    stations_rep = []
    for k, r in enumerate(st.to_dict("records")):
        stations_rep.append({
            "station": r["station"], "lon": r["lon"], "lat": r["lat"],
            "ve_mm_yr": r["ve"], "vn_mm_yr": r["vn"], "vu_mm_yr": r["vu"],
            "n_insar_points": int(cnt[k]), "gnss_los_mm_yr": float(g_los[k]),
            "insar_los_mm_yr": float(med[k]), "residual_before_mm_yr": float(resid[k]),
            "residual_after_mm_yr": float(resid[k] - c_st[k]),
            "used_in_fit": bool(corr.params["used"][k]), "source": r["source"]})
    report = {
        "input": os.path.basename(str(inp)), "n_points": int(len(x)),
        "calibration": {k: v for k, v in corr.params.items() if k != "used"},
        "plate_model": gnss.PLATE_MODEL_TEXT[plate_model],
        "neighbourhood": f"median InSAR velocity of points within {radius:g} m "
                         f"(at least {min_points}); LOS vector: their median",
        "residual": "GNSS LOS velocity minus InSAR LOS velocity (mm/yr); the correction is "
                    "added to the InSAR velocity and correction * t (years) to the series",
        "stations": stations_rep,
        "residual_after_nmad_mm_yr": float(1.4826 * np.nanmedian(np.abs(
            [s["residual_after_mm_yr"] for s in stations_rep if s["used_in_fit"]]))),
        "conventions": LOS_CONVENTION, "software": f"cryokit {__version__}"}
    hdr = {"cryokit_calibration": {"model": model, "offset_mm_yr": corr.params["offset_mm_yr"],
                           "gradient_x_mm_yr_per_km": corr.params["gradient_x_mm_yr_per_km"],
                           "gradient_y_mm_yr_per_km": corr.params["gradient_y_mm_yr_per_km"],
                           "plate_model": plate_model,
                           "stations": ",".join(st["station"].astype(str))}}
    report["outputs"] = write_points(with_series(pts, new, hdr), out, report)
    return report
