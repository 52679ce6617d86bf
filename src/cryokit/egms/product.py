"""The EGMS product steps (the I/O edge of the family): re-reference, calibrate to GNSS,
compare two releases, plot. Each reads points, calls the algorithms and writes the outputs
and a JSON report. Ortho (L3) tiles are made in :mod:`.ortho`.

Sign convention: LOS displacement in mm, positive towards the satellite; velocities mm/yr;
t in years from the first date.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..core.atomic import atomic_file
from ..core.errors import UserError, require_file
from ..core.outputs import safe_name
from ..core.records import write_json
from ..core.robust import robust_rms
from . import calibrate as cal
from . import compare as cmp
from . import formats, gnss, plots
from . import reference as ref
from .points import (LAEA, LOS_CONVENTION, column_name, load_points, numeric_column,
                     to_laea, with_series, write_points, xy)
from .stats import seasonal_model, timeseries_stats


def make_reference(inp, out, *, pid: str | None = None, point: tuple[float, float] | None = None,
                   radius: float | None = None, area=None) -> dict:
    """Re-reference every series of INPUT to a point (``pid``), the median of the points within
    ``radius`` m of ``point`` (lon, lat), or the median of the points inside polygons ``area``.

    Returns the report (also written as OUT.json and into the header of EGMS outputs).
    """
    given = sum(x is not None for x in (pid, point, area))
    if given != 1:
        raise UserError("give exactly one of --pid, --point (with --radius) or --area")
    if radius is not None and point is None:
        raise UserError("--radius goes with --point (it would be ignored)")
    pts = load_points(inp)
    x, y = xy(pts, inp)
    pids = pts.attrs["pid"].astype(str).to_numpy()
    if pid is not None:
        mask = pids == str(pid)
        if not mask.any():
            raise UserError(f"pid {pid} not found", inp)
        desc = {"type": "point", "pid": str(pid)}
    elif point is not None:
        if radius is None or radius <= 0:
            raise UserError("--point needs --radius M (metres, > 0)")
        cx, cy = to_laea(*point)
        mask = ref.points_within(x, y, float(cx), float(cy), radius)
        if not mask.any():
            raise UserError(f"no point within {radius:g} m of lon {point[0]:g}, lat {point[1]:g}",
                            inp)
        desc = {"type": "median of points within radius", "lon": point[0], "lat": point[1],
                "radius_m": radius}
    else:
        import shapely
        from pyproj import Transformer

        from ..core.vector import read_polygons
        polys, crs = read_polygons(area, crs="EPSG:4326")
        geoms = np.asarray(polys, dtype=object)
        if crs is not None and str(crs) != LAEA:
            tr = Transformer.from_crs(crs, LAEA, always_xy=True)
            geoms = shapely.transform(geoms, lambda c: np.column_stack(tr.transform(*c.T)))
        union = shapely.union_all(shapely.make_valid(geoms))
        mask = shapely.contains_xy(union, x, y)
        if not mask.any():
            raise UserError("no point inside the polygon(s)", area)
        desc = {"type": "median of points inside area", "area": os.path.basename(str(area))}
    refser = ref.reference_series(pts.disp, mask)
    gaps = np.flatnonzero(~np.isfinite(refser))
    if gaps.size:
        raise UserError(f"the reference has no displacement at {gaps.size} of {refser.size} dates "
                        f"(first {pts.dates[gaps[0]]}); every series would lose them: choose a "
                        "point with a complete series, or an area (--point/--radius, --area)", inp)
    new = ref.rereference(pts.disp, refser)
    # velocity of the reference series: the EGMS mean-velocity model, fitted on its valid dates
    vref = seasonal_model(pts.years(), refser)[1] if np.isfinite(refser).sum() > 4 else np.nan
    desc.update(n_points=int(mask.sum()), reference_pids=pids[mask][:50].tolist(),
                reference_velocity_mm_yr=vref)
    report = {"input": os.path.basename(str(inp)), "n_points": int(len(pids)),
              "reference": desc, "conventions": LOS_CONVENTION,
              "method": "reference series (the point's, or the per-date median of the selected "
                        "points) subtracted from every series; statistics recomputed",
              "software": f"cryokit {__version__}"}
    pts2 = with_series(pts, new, {"cryokit_reference": {k: v for k, v in desc.items()
                                                         if k != "reference_pids"}})
    report["outputs"] = write_points(pts2, out, report)
    return report


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
    coords = formats.read_station_csv(stations) if stations else None
    rows = []
    for f in files:
        f = require_file(f)
        if _is_tenv(f):
            s = formats.read_tenv(f)
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
            df = formats.read_station_csv(f, need_velocity=True)
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
        "residual_after_robust_rms_mm_yr": robust_rms(
            [s["residual_after_mm_yr"] for s in stations_rep if s["used_in_fit"]]),
        "conventions": LOS_CONVENTION, "software": f"cryokit {__version__}"}
    hdr = {"cryokit_calibration": {"model": model, "offset_mm_yr": corr.params["offset_mm_yr"],
                           "gradient_x_mm_yr_per_km": corr.params["gradient_x_mm_yr_per_km"],
                           "gradient_y_mm_yr_per_km": corr.params["gradient_y_mm_yr_per_km"],
                           "plate_model": plate_model,
                           "stations": ",".join(st["station"].astype(str))}}
    # calibrated to GNSS, a Basic (L2a) burst becomes a Calibrated (L2b) one
    level = "L2b" if pts.level == "L2a" else pts.level
    report["product_level"] = level
    report["outputs"] = write_points(with_series(pts, new, hdr, level=level), out, report)
    return report


def make_compare(old, new, out, *, max_distance: float = 5.0) -> dict:
    """Two releases of one burst: points matched by pid (location fallback), differences
    NEW minus OLD of velocity, acceleration and seasonality; OUT (.csv or .parquet) per point
    and OUT.json with statistics."""
    suffix = Path(out).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UserError("output must end in .csv or .parquet", out)
    a, b = load_points(old), load_points(new)
    xa, ya = xy(a, old)
    xb, yb = xy(b, new)
    i, j, how, dist = cmp.match_points(a.attrs["pid"].astype(str).to_numpy(),
                                       b.attrs["pid"].astype(str).to_numpy(),
                                       np.column_stack([xa, ya]), np.column_stack([xb, yb]),
                                       max_distance)
    diff = pd.DataFrame({"pid_old": a.attrs["pid"].astype(str).to_numpy()[i],
                         "pid_new": b.attrs["pid"].astype(str).to_numpy()[j],
                         "match": how, "distance_m": np.round(dist, 3),
                         "easting": xb[j], "northing": yb[j]})
    stats = {}
    for c in ("mean_velocity", "acceleration", "seasonality", "rmse", "temporal_coherence"):
        if column_name(a, c) in a.attrs.columns and column_name(b, c) in b.attrs.columns:
            va, vb = numeric_column(a, c)[i], numeric_column(b, c)[j]
            diff[f"{c}_old"], diff[f"{c}_new"], diff[f"d_{c}"] = va, vb, vb - va
            stats[c] = cmp.difference_stats(vb - va)
    report = {"old": os.path.basename(str(old)), "new": os.path.basename(str(new)),
              "old_naming": a.naming, "new_naming": b.naming,
              "counts": {"old": int(len(xa)), "new": int(len(xb)), "matched": int(i.size),
                         "matched_by_pid": int((how == "pid").sum()),
                         "matched_by_location": int((how == "location").sum()),
                         "unmatched_old": int(len(xa) - i.size),
                         "unmatched_new": int(len(xb) - j.size)},
              "location_fallback_m": max_distance,
              "differences": stats,
              "convention": "differences are NEW minus OLD; velocities mm/yr, acceleration "
                            "mm/yr^2, seasonality and rmse mm",
              "software": f"cryokit {__version__}"}
    with atomic_file(out) as tmp:
        if suffix == ".csv":
            diff.to_csv(tmp, index=False)
        else:
            diff.to_parquet(tmp, index=False)
    write_json(Path(out).with_suffix(".json"), report)
    return report


def make_plots(inp, pid: str | None, outdir) -> dict:
    """Velocity map of all points and, with ``pid``, that point's series with its model
    (PNGs; the point circled on the map)."""
    pts = load_points(inp)
    pids = pts.attrs["pid"].astype(str).to_numpy()
    k = None
    if pid is not None:
        hit = np.flatnonzero(pids == str(pid))
        if not hit.size:
            raise UserError(f"pid {pid} not found", inp)
        k = int(hit[0])
    x, y = xy(pts, inp)
    v = numeric_column(pts, "mean_velocity", inp)
    level = pts.level
    label = ("mean vertical velocity (mm/yr), up positive" if level == "L3" and "_U_" in pts.name
             else "mean east velocity (mm/yr), east positive" if level == "L3"
             else "mean LOS velocity (mm/yr), + towards satellite")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    m = plots.velocity_map(outdir / "velocity_map.png", x, y, v, title=f"{pts.name}",
                           label=label, highlight=(x[k], y[k]) if k is not None else None)
    ts = None
    if k is not None:
        ts = plots.timeseries_plot(
            outdir / f"timeseries_{safe_name(pid, 'pid')}.png", pts.dates, pts.disp[k],
            title=f"{pts.name}: point {pid}",
            label=label.replace("mean ", "").replace("velocity (mm/yr)", "displacement (mm)"))
    return {"velocity_map": m, "timeseries": ts, "n_points": int(len(pids))}
