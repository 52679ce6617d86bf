"""The Ortho (L3) product: east and up tiles from ascending and descending EGMS bursts.

Each burst is interpolated to a regular time grid, points are averaged per 100 m cell of
EPSG:3035, and per cell and date the LOS displacements of both geometries are decomposed
into east and up (:mod:`.ortho`); tiles of 100 km are written as EGMS names them.
Sign convention: east positive eastwards, up positive upwards; mm and mm/yr.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import __version__
from ..core.atomic import atomic_file, staged_dir
from ..core.errors import UserError, require_file
from ..core.records import write_json, write_records
from ..core.robust import nmad
from . import decompose, formats
from .points import LAEA, load_points, numeric_column, stats_and_shifted, to_laea, xy


@dataclass(frozen=True)
class OrthoOptions:
    """Options of :func:`make_ortho`: time grid step and longest bridged gap (days), cell
    size (m), points a cell needs over both geometries, version in the file names (None:
    from the input names) and the north velocity model (mm/yr; None: 0)."""

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
        df = formats.read_station_csv(p)
        if "vn" not in df.columns:
            raise UserError("missing column vn (north velocity, mm/yr)", p)
        sx, sy = to_laea(df["lon"].to_numpy(), df["lat"].to_numpy())
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
    grid_dates = decompose.regular_dates(start, end, opts.step_days)
    per = []
    for b in bursts:
        x, y = xy(b)
        ix, iy = decompose.cell_index(x, y, opts.cell)
        series = decompose.interpolate_to_grid(b.dates, b.disp, grid_dates, opts.max_gap_days)
        cols = [numeric_column(b, c) for c in ("los_east", "los_north", "los_up", "height")]
        gv = (numeric_column(b, "gnss_velocity") if "gnss_velocity" in b.attrs.columns
              else np.full(x.size, np.nan))
        cells, mean, count = decompose.cell_average(ix, iy, np.column_stack(cols + [gv, series]))
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
    east, up, ok = decompose.decompose(los, stack[:, :, 5:], npts, decompose.north_displacement(vn, t),
                                   min_points=opts.min_points)
    ge, gu, _ = decompose.decompose(los, stack[:, :, 4:5], npts, vn[:, None],
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
    st, disp = stats_and_shifted(sol["t"], sol["east" if comp == "E" else "up"])
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

    from ..core.quicklook import raster_quicklook
    from ..core.raster import Grid, write_cog

    if len(inputs) < 2:
        raise UserError("ortho needs at least one ascending and one descending burst")
    bursts = [load_points(p) for p in inputs]
    geom = []
    for p, b in zip(inputs, bursts):
        le = np.nanmedian(numeric_column(b, "los_east", p))
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
    with staged_dir(outdir, "egms ortho") as stage:
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
        write_json(stage / "report.json", report)
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
