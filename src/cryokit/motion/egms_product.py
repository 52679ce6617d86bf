"""EGMS point products: re-reference, GNSS calibration, Ortho (L3) tiles, release comparison, plots.

Each ``make_*`` function reads its inputs (:mod:`.egms`), checks them, calls the algorithms
(:mod:`.reference`, :mod:`.calibrate`, :mod:`.gnss`, :mod:`.ortho`, :mod:`.compare`,
:mod:`.plots`) and writes its outputs atomically. Point outputs are EGMS zips/CSVs, or
GeoParquet / GeoPackage chosen by the output suffix; a JSON report beside them (same name,
``.json``) states what was done (reference, calibration, units, sign conventions).
Sign convention everywhere: LOS displacement positive towards the satellite (``los_*`` is the
ground-to-satellite unit vector); Ortho east positive eastwards, up positive upwards.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..atomic import atomic_file, staged_dir
from ..errors import UserError, require_file
from ..product import write_json, write_records
from ..robust import nmad
from . import calibrate as cal
from . import compare as cmp
from . import egms, gnss, ortho, plots
from . import reference as ref
from .stats import EGMS_DECIMALS, timeseries_stats

LAEA = "EPSG:3035"
LOS_CONVENTION = ("LOS displacement in mm, positive towards the satellite (los_east/north/up = "
                  "ground-to-satellite unit vector); velocities in mm/yr; t in years from the "
                  "first date (days/365)")
_CANONICAL = {"height_ortho": "height", "rmse_ts": "rmse", "height_ellipse": "height_ellipse"}


# ----------------------------------------------------------------------------- helpers

def load_points(path):
    """Read an EGMS file (zip/CSV, any level and naming) as :class:`EgmsPoints`."""
    return egms.read_egms(path)


def column_name(points, canonical: str) -> str:
    """The attrs column holding ``canonical`` in this file's naming (e.g. rmse -> rmse_ts)."""
    return points.column_name(_CANONICAL.get(canonical, canonical))


def _column(points, canonical: str, path=None) -> np.ndarray:
    name = column_name(points, canonical)
    if name not in points.attrs.columns:
        raise UserError(f"has no {canonical} column", path or points.name)
    return pd.to_numeric(points.attrs[name], errors="coerce").to_numpy(np.float64)


def xy(points, path=None) -> tuple[np.ndarray, np.ndarray]:
    """Easting, northing (m, EPSG:3035) of the points."""
    return _column(points, "easting", path), _column(points, "northing", path)


def _stats_and_shifted(t, disp) -> tuple[dict, np.ndarray]:
    """EGMS statistics of ``disp`` and the series shifted so that each one's cubic+seasonal
    model is 0 at t = 0, as the service publishes them."""
    st = timeseries_stats(t, disp)
    return st, disp - st["reference_shift"][:, None]


def with_series(points, disp: np.ndarray, header_extra: dict | None = None):
    """A copy of ``points`` with new series and their statistics recomputed (EGMS model,
    each series shifted so its cubic+seasonal model is 0 at the first date)."""
    st, disp = _stats_and_shifted(points.years(), disp)
    attrs = points.attrs.copy()
    for key, dec in EGMS_DECIMALS.items():
        attrs[column_name(points, key)] = np.round(st[key], dec)
    header = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (points.header or {}).items()}
    if header_extra:
        root = next(iter(header)) if header else ("TILE" if points.level == "L3" else "BURST")
        header.setdefault(root, {})
        if not isinstance(header[root], dict):
            header[root] = {}
        header[root].update(header_extra)
    # EGMS publishes displacements to 0.1 mm; more digits would only inflate the files
    return type(points)(attrs=attrs, dates=points.dates, disp=np.round(disp, 1),
                        header=header, name=points.name, level=points.level,
                        naming=points.naming)


def write_points(points, out, report: dict) -> list[str]:
    """Write points by suffix (.zip/.csv EGMS format, .parquet, .gpkg) and ``report`` as
    OUT.json beside them; returns the paths written."""
    out = Path(out)
    if out.suffix.lower() not in egms.OUTPUT_SUFFIXES:
        raise UserError("output must end in .zip or .csv (EGMS format), .parquet or .gpkg", out)
    egms.write_points(points, out)
    rep = out.with_suffix(".json")
    write_json(rep, _json_safe(report))
    return [str(out), str(rep)]


def _json_safe(obj):
    """NaN -> None (null) through dicts and lists: JSON has no NaN."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


def _to_laea(lon, lat):
    from pyproj import Transformer
    tr = Transformer.from_crs("EPSG:4326", LAEA, always_xy=True)
    return tr.transform(np.asarray(lon, float), np.asarray(lat, float))


# ----------------------------------------------------------------------------- reference

def make_reference(inp, out, *, pid: str | None = None, point: tuple[float, float] | None = None,
                   radius: float | None = None, area=None) -> dict:
    """Re-reference every series of INPUT to a point (``pid``), the median of the points within
    ``radius`` m of ``point`` (lon, lat), or the median of the points inside polygons ``area``.

    Returns the report (also written as OUT.json and into the header of EGMS outputs).
    """
    given = sum(x is not None for x in (pid, point, area))
    if given != 1:
        raise UserError("give exactly one of --pid, --point (with --radius) or --area")
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
        cx, cy = _to_laea(*point)
        mask = ref.points_within(x, y, float(cx), float(cy), radius)
        if not mask.any():
            raise UserError(f"no point within {radius:g} m of lon {point[0]:g}, lat {point[1]:g}",
                            inp)
        desc = {"type": "median of points within radius", "lon": point[0], "lat": point[1],
                "radius_m": radius}
    else:
        import shapely
        from pyproj import Transformer

        from ..vector import read_polygons
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
    new = ref.rereference(pts.disp, refser)
    # velocity of the reference series: the EGMS mean-velocity model, fitted on its valid dates
    vref = plots.seasonal_model(pts.years(), refser)[1] if np.isfinite(refser).sum() > 4 else np.nan
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


# ----------------------------------------------------------------------------- GNSS

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
    los = np.column_stack([_column(pts, c, inp) for c in ("los_east", "los_north", "los_up")])
    sx, sy = _to_laea(st["lon"].to_numpy(), st["lat"].to_numpy())
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


# ----------------------------------------------------------------------------- ortho

@dataclass(frozen=True)
class OrthoOptions:
    step_days: int = 6
    max_gap_days: float = 90.0
    cell: float = 100.0
    min_points: int = 3
    version: int | None = None
    north_velocity: str | None = None     # CSV (station, lon, lat, vn) / raster / number
    place: str | None = None


def _release(paths) -> tuple[str, str, int] | None:
    for p in paths:
        m = re.search(r"_(\d{4})_(\d{4})_(\d+)\.(zip|csv)$", os.path.basename(str(p)))
        if m:
            return m.group(1), m.group(2), int(m.group(3))
    return None


def _north_at(spec: str | None, cx, cy) -> tuple[np.ndarray, str]:
    """North velocity (mm/yr) at cell centres from a number, station CSV (vn) or raster."""
    if spec is None:
        return np.zeros(cx.size), "north velocity taken as 0 mm/yr (no --north-velocity)"
    try:
        v = float(spec)
        return np.full(cx.size, v), f"north velocity {v:g} mm/yr everywhere (--north-velocity)"
    except ValueError:
        pass
    p = require_file(spec)
    if p.lower().endswith((".csv", ".txt")):
        df = gnss.read_station_csv(p)
        if "vn" not in df.columns:
            raise UserError("missing column vn (north velocity, mm/yr)", p)
        sx, sy = _to_laea(df["lon"].to_numpy(), df["lat"].to_numpy())
        d2 = (cx[:, None] - sx[None]) ** 2 + (cy[:, None] - sy[None]) ** 2
        w = 1.0 / np.maximum(d2, 1.0)   # inverse-distance-squared interpolation of stations
        vn = (w * df["vn"].to_numpy()[None]).sum(1) / w.sum(1)
        return vn, (f"north velocity interpolated (inverse distance squared) from "
                    f"{len(df)} GNSS stations in {os.path.basename(p)}")
    import rasterio
    from pyproj import Transformer
    with rasterio.open(p) as ds:
        tr = Transformer.from_crs(LAEA, ds.crs, always_xy=True)
        px, py = tr.transform(cx, cy)
        vn = np.array([s[0] for s in ds.sample(zip(px, py))], dtype=np.float64)
        if ds.nodata is not None:
            vn[vn == ds.nodata] = np.nan
    return np.nan_to_num(vn, nan=0.0), f"north velocity sampled from grid {os.path.basename(p)}"


_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)


def _pid(ix, iy) -> list[str]:
    """10-character base62 id of a 100 m cell (from its column and row numbers; 11 characters
    where the number needs them).

    Examples
    --------
    >>> _pid(np.array([0, 45986]), np.array([0, 17397]))
    ['0000000000', '0000qdJVPJ']
    """
    n = (np.asarray(ix, np.int64) << 20) | np.asarray(iy, np.int64)
    width = 10 if not n.size or n.max() < 62 ** 10 else 11   # 62**11 > 2**63: int64 fits
    digits = (n[:, None] // 62 ** np.arange(width - 1, -1, -1, dtype=np.int64)) % 62
    text = _BASE62[digits].view(f"S{width}").ravel().astype(str).tolist()
    return text if width == 10 else [s[1:] if s[0] == "0" else s for s in text]


def ortho_solve(bursts, opts: OrthoOptions = OrthoOptions()):
    """East and up cell series from loaded bursts (list of EgmsPoints); no I/O.

    Returns a dict with ``dates``, ``cells`` (C, 2), ``east``, ``up`` (C, m) mm, ``height``,
    ``gnss_e``, ``gnss_u``, ``gnss_n`` (C,) mm/yr, ``north_text``, ``npoints`` (G, C).
    """
    start = max(b.dates[0] for b in bursts)
    end = min(b.dates[-1] for b in bursts)
    if end <= start:
        raise UserError("the bursts have no common time span")
    grid_dates = ortho.regular_dates(start, end, opts.step_days)
    per = []
    for b in bursts:
        x, y = xy(b)
        ix, iy = ortho.cell_index(x, y, opts.cell)
        series = ortho.interpolate_to_grid(b.dates, b.disp, grid_dates, opts.max_gap_days)
        cols = [_column(b, c) for c in ("los_east", "los_north", "los_up", "height")]
        gv = (_column(b, "gnss_velocity") if "gnss_velocity" in b.attrs.columns
              else np.full(x.size, np.nan))
        cells, mean, count = ortho.cell_average(ix, iy, np.column_stack(cols + [gv, series]))
        per.append((cells, mean, count[:, 0]))
    allcells = np.unique(np.concatenate([p[0] for p in per]), axis=0)
    C, m, G = len(allcells), grid_dates.size, len(bursts)
    stack = np.full((G, C, 5 + m), np.nan)
    npts = np.zeros((G, C), int)
    keys = allcells[:, 0] * (1 << 32) + allcells[:, 1]
    for g, (cells, mean, n) in enumerate(per):
        pos = np.searchsorted(keys, cells[:, 0] * (1 << 32) + cells[:, 1])
        stack[g, pos] = mean
        npts[g, pos] = n
    los = stack[:, :, 0:3]
    t = (grid_dates - grid_dates[0]).astype(np.float64) / 365.0
    cx = (allcells[:, 0] + 0.5) * opts.cell
    cy = (allcells[:, 1] + 0.5) * opts.cell
    vn, north_text = _north_at(opts.north_velocity, cx, cy)
    east, up, ok = ortho.decompose(los, stack[:, :, 5:], npts, ortho.north_displacement(vn, t),
                                   min_points=opts.min_points)
    ge, gu, _ = ortho.decompose(los, stack[:, :, 4:5], npts, vn[:, None],
                                min_points=opts.min_points)
    # Dates a cell lacks (gaps beyond max_gap in a geometry) would break the per-cell model
    # fit; cells are kept only where every date is solved.
    full = ok & np.isfinite(east).all(axis=1)
    # Height: mean over the points of all geometries (each geometry's mean weighted by its count)
    h = np.where(npts > 0, stack[:, :, 3], 0.0)
    height = (h * npts).sum(axis=0) / np.maximum(npts.sum(axis=0), 1)
    return {"dates": grid_dates, "t": t, "cells": allcells[full], "east": east[full],
            "up": up[full], "height": height[full], "gnss_e": ge[full, 0], "gnss_u": gu[full, 0],
            "gnss_n": vn[full], "north_text": north_text, "npoints": npts[:, full],
            "n_cells_any": int(C), "n_cells_partial": int((ok & ~full).sum()),
            "start": start, "end": end}


def _component_table(sol, comp: str, cell: float) -> pd.DataFrame:
    st, disp = _stats_and_shifted(sol["t"], sol["east" if comp == "E" else "up"])
    ix, iy = sol["cells"][:, 0], sol["cells"][:, 1]
    df = pd.DataFrame({
        "pid": _pid(ix, iy),
        "easting": ((ix + 0.5) * cell).round().astype(np.int64),
        "northing": ((iy + 0.5) * cell).round().astype(np.int64),
        "height_ortho": np.round(sol["height"], 1), "rmse_ts": np.round(st["rmse"], 1),
        "mean_velocity": np.round(st["mean_velocity"], 1),
        "mean_velocity_std": np.round(st["mean_velocity_std"], 1),
        "acceleration": np.round(st["acceleration"], 2),
        "acceleration_std": np.round(st["acceleration_std"], 2),
        "seasonality": np.round(st["seasonality"], 1),
        "seasonality_std": np.round(st["seasonality_std"], 1),
        "gnss_velocity_n": np.round(sol["gnss_n"], 1),
        "gnss_velocity_e": np.round(sol["gnss_e"], 1),
        "gnss_velocity_u": np.round(sol["gnss_u"], 1)})
    names = [str(d).replace("-", "") for d in sol["dates"]]
    series = pd.DataFrame(np.round(disp, 1), columns=names)
    df = pd.concat([df, series], axis=1)
    df.attrs["velocity"] = np.asarray(st["mean_velocity"], dtype=np.float64)
    return df


def _tile_xml() -> str:
    today = dt.date.today().strftime("%d/%m/%Y")
    return ("<?xml version='1.0' encoding='UTF-8'?>\n<TILE>\n  <product_level>L3</product_level>\n"
            f"  <production_facility>cryokit {__version__}</production_facility>\n"
            f"  <production_date>{today}</production_date>\n</TILE>\n")


def make_ortho(inputs, outdir, opts: OrthoOptions = OrthoOptions()) -> dict:
    """Ortho (L3) east and up tiles from ascending and descending Calibrated bursts.

    Writes, per 100 km tile touched, ``EGMS_L3_E{XX}N{YY}_100km_{U|E}_{y1}_{y2}_{v}.tif``
    (mean velocity, mm/yr, float32, nodata -9999, EPSG:3035, 100 m) and ``.zip`` (CSV + XML),
    plus report.json, quicklook.png, metadata.json and stac-item.json.
    """
    from affine import Affine
    from rasterio.crs import CRS

    from ..quicklook import raster_quicklook
    from ..raster import Grid, write_cog

    if len(inputs) < 2:
        raise UserError("ortho needs at least one ascending and one descending burst")
    bursts = [load_points(p) for p in inputs]
    geom = []
    for p, b in zip(inputs, bursts):
        le = np.nanmedian(_column(b, "los_east", p))
        geom.append("ascending" if le < 0 else "descending")
    if len(set(geom)) < 2:
        raise UserError(f"all inputs are {geom[0]}; ortho needs both ascending and descending "
                        "bursts (los_east < 0 is ascending)")
    sol = ortho_solve(bursts, opts)
    if not len(sol["cells"]):
        raise UserError("no 100 m cell is seen by both geometries (do the bursts overlap?)")
    rel = _release(inputs)
    y1, y2, v = rel if rel else (str(sol["start"])[:4], str(sol["end"])[:4], 1)
    v = opts.version or v
    tiles_x = (sol["cells"][:, 0] * opts.cell // 100000).astype(int)
    tiles_y = (sol["cells"][:, 1] * opts.cell // 100000).astype(int)
    tables = {c: _component_table(sol, c, opts.cell) for c in ("U", "E")}
    report = {"inputs": [{"file": os.path.basename(str(p)), "geometry": g, "points": int(len(b.attrs)),
                          "dates": [str(b.dates[0]), str(b.dates[-1]), int(b.dates.size)]}
                         for p, b, g in zip(inputs, bursts, geom)],
              "time_grid": {"start": str(sol["dates"][0]), "end": str(sol["dates"][-1]),
                            "step_days": opts.step_days, "n_dates": int(sol["dates"].size),
                            "max_gap_days": opts.max_gap_days},
              "cell_size_m": opts.cell, "crs": LAEA, "min_points_per_cell": opts.min_points,
              "north": sol["north_text"], "n_cells": int(len(sol["cells"])),
              "n_cells_with_points": sol["n_cells_any"],
              "n_cells_left_out_for_gaps": sol["n_cells_partial"],
              "conventions": ("east positive eastwards, up positive upwards, mm and mm/yr; "
                              "d_LOS = los_east*E + los_north*N + los_up*U with the "
                              "ground-to-satellite LOS; t = 0 at the first grid date"),
              "tiles": [], "software": f"cryokit {__version__}"}
    with staged_dir(outdir) as stage:
        first_grid = None
        for tx, ty in sorted(set(zip(tiles_x, tiles_y))):
            sel = (tiles_x == tx) & (tiles_y == ty)
            grid = Grid(CRS.from_string(LAEA), Affine(opts.cell, 0, tx * 100000.0, 0, -opts.cell,
                                                      (ty + 1) * 100000.0),
                        int(100000 / opts.cell), int(100000 / opts.cell))
            first_grid = first_grid or grid
            col = sol["cells"][sel, 0] - int(tx * 100000 / opts.cell)
            row = int(100000 / opts.cell) - 1 - (sol["cells"][sel, 1] - int(ty * 100000 / opts.cell))
            for comp, word in (("U", "vertical (up)"), ("E", "east-west (east)")):
                name = f"EGMS_L3_E{tx:02d}N{ty:02d}_100km_{comp}_{y1}_{y2}_{v}"
                band = np.full(grid.shape, np.nan, np.float32)
                band[row, col] = tables[comp].attrs["velocity"][sel]
                write_cog(stage / f"{name}.tif", band, grid, nodata=-9999.0, dtype="float32",
                          descriptions=[f"mean {word} velocity"], units="mm/yr",
                          tags={"component": comp, "units": "mm/yr",
                                "sign": "up positive" if comp == "U" else "east positive",
                                "time_reference": f"{sol['dates'][0]} to {sol['dates'][-1]}",
                                "north": sol["north_text"]})
                tab = tables[comp][sel]
                with atomic_file(stage / f"{name}.zip") as tmp:
                    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                        buf = io.StringIO()
                        tab.to_csv(buf, index=False)
                        z.writestr(f"{name}.csv", buf.getvalue())
                        z.writestr(f"{name}.xml", _tile_xml())
                report["tiles"].append({"name": name, "cells": int(sel.sum())})
            if first_grid is grid:
                cs = sol["cells"][sel]
                pad = 20
                r0, r1 = max(row.min() - pad, 0), min(row.max() + pad + 1, grid.height)
                c0, c1 = max(col.min() - pad, 0), min(col.max() + pad + 1, grid.width)
                ql = np.full(grid.shape, np.nan, np.float32)
                ql[row, col] = tables["U"].attrs["velocity"][sel]
                sub = grid.window(r0, r1, c0, c1)
                b = sub.bounds
                raster_quicklook(stage / "quicklook.png", ql[r0:r1, c0:c1],
                                 extent=(b[0], b[2], b[1], b[3]), cmap="RdBu",
                                 label="mean vertical velocity (mm/yr), up positive",
                                 title=f"EGMS L3 Ortho U, {len(cs)} cells", diverging=True)
        vel_u = tables["U"].attrs["velocity"]
        vel_e = tables["E"].attrs["velocity"]
        report["velocity_summary_mm_yr"] = {
            "U": {"median": float(np.median(vel_u)), "nmad": nmad(vel_u)},
            "E": {"median": float(np.median(vel_e)), "nmad": nmad(vel_e)}}
        write_json(stage / "report.json", _json_safe(report))
        write_records(
            stage, item_id=f"EGMS_L3_{y1}_{y2}_{v}", grid=first_grid,
            start=pd.Timestamp(sol["dates"][0]).date(), end=pd.Timestamp(sol["dates"][-1]).date(),
            title={"en": f"Ground motion, EGMS-style Ortho (L3) vertical and east velocity {y1}-{y2}"},
            abstract=(f"Vertical (U) and east-west (E) velocity and displacement series on the "
                      f"100 m EPSG:3035 grid, from {len(inputs)} Sentinel-1 bursts "
                      f"({', '.join(sorted(set(geom)))}); {len(sol['cells'])} cells. "
                      f"{sol['north_text']}."),
            source="; ".join(os.path.basename(str(p)) for p in inputs),
            method=(f"series linearly interpolated to a {opts.step_days}-day grid (gaps up to "
                    f"{opts.max_gap_days:g} days), points averaged per {opts.cell:g} m cell, "
                    "per cell and date least squares of d = e_E E + e_U U over the geometries "
                    f"(>= {opts.min_points} points, both geometries); EGMS per-point statistics"),
            quality=report["velocity_summary_mm_yr"], place=opts.place,
            temporal_resolution=f"{opts.step_days} days", units="mm/yr (rasters), mm (series)",
            keywords=("ground motion", "InSAR", "EGMS", "Ortho", "Sentinel-1"))
    return report


# ----------------------------------------------------------------------------- compare

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
            va, vb = _column(a, c)[i], _column(b, c)[j]
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
    write_json(Path(out).with_suffix(".json"), _json_safe(report))
    return report


# ----------------------------------------------------------------------------- plots

def make_plots(inp, pid: str, outdir) -> dict:
    """Velocity map of all points and the series of point ``pid`` with its model (PNGs)."""
    pts = load_points(inp)
    pids = pts.attrs["pid"].astype(str).to_numpy()
    k = np.flatnonzero(pids == str(pid))
    if not k.size:
        raise UserError(f"pid {pid} not found", inp)
    k = int(k[0])
    x, y = xy(pts, inp)
    v = _column(pts, "mean_velocity", inp)
    level = pts.level
    label = ("mean vertical velocity (mm/yr), up positive" if level == "L3" and "_U_" in pts.name
             else "mean east velocity (mm/yr), east positive" if level == "L3"
             else "mean LOS velocity (mm/yr), + towards satellite")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    m = plots.velocity_map(outdir / "velocity_map.png", x, y, v, title=f"{pts.name}",
                           label=label, highlight=(x[k], y[k]))
    ts = plots.timeseries_plot(outdir / f"timeseries_{pid}.png", pts.dates, pts.disp[k],
                               title=f"{pts.name}: point {pid}",
                               label=label.replace("mean ", "").replace("velocity (mm/yr)",
                                                                      "displacement (mm)"))
    return {"velocity_map": m, "timeseries": ts, "n_points": int(len(pids))}
