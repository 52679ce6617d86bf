"""The optical glacier-velocity product: REF + SEC images -> vx, vy, speed, snr + records.

Reading, tiling and writing live here; the algorithms are in :mod:`.track`, :mod:`.correlate`,
:mod:`.filters` and :mod:`.stable`. Work is split into tiles of the node grid, each reading
only a window of both images, so images larger than memory are tracked, and tiles run on a
local dask cluster or an existing scheduler with results identical to the serial run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from .. import __version__
from ..core import parallel
from ..core.atomic import staged_dir
from ..core.dates import days_between, pair_dates
from ..core.errors import UserError
from ..core.records import write_json, write_records
from ..core.quicklook import vector_quicklook
from ..core.raster import (Grid, grid_in_crs, open_raster, projected_grid, read_grid,
                           reproject_band, vectors_to_crs, warp_array, write_cog)
from . import errors, landsat, quality, stable
from .track import (NodeField, NodeGrid, TrackParams, clean_field, match_window, search_centres,
                    window_margin)

UNITS = {"m/d": 1.0, "m/yr": 365.25}
CONVENTION = ("vx positive towards grid east (increasing x), vy positive towards grid north "
              "(increasing y); displacement of REF features in SEC divided by the time span")


@dataclass(frozen=True)
class VelocityOptions:
    """Product-level options (everything that is not a tracking parameter)."""

    units: str = "m/d"
    stable_model: str = "median"
    resample: bool = False
    tile_nodes: int = 0          # node rows/cols per tile; 0 = about 2048 px per tile side
    workers: int | None = None
    scheduler: str | None = None
    progress: bool = False
    place: str | None = None
    licence: str = "CC-BY-4.0"
    stable_values: tuple[int, ...] | None = None   # classes of a raster stable mask that are stable
    out_crs: str | None = None   # CRS of the output rasters (None: the tracking grid's)
    out_res: float | None = None  # their pixel size in out_crs units (None: about the node spacing)


# ----------------------------------------------------------------------------- reading

@contextlib.contextmanager
def _open_on(path: str, grid: Grid | None):
    """Open ``path``; with ``grid``, as a bilinear warp onto that grid (the --resample case)."""
    with open_raster(path) as ds:
        if grid is None:
            yield ds
        else:
            with WarpedVRT(ds, crs=grid.crs, transform=grid.transform, width=grid.width,
                           height=grid.height, resampling=Resampling.bilinear,
                           src_nodata=ds.nodata, nodata=np.nan, dtype="float32") as vrt:
                yield vrt


def _read(ds, window: Window | None = None, out_shape=None) -> np.ndarray:
    """Band 1 as float32 with nodata as NaN; a window reaching past the edges is NaN there.

    The padding is done here rather than by a GDAL boundless read, which warped (--resample)
    datasets do not support, so both paths read identical values.
    """
    inside = window is None or (window.row_off >= 0 and window.col_off >= 0 and
                                window.row_off + window.height <= ds.height and
                                window.col_off + window.width <= ds.width)
    if inside or out_shape is not None:
        data = ds.read(1, window=window, out_shape=out_shape, masked=True,
                       resampling=Resampling.average)
        out = np.ma.getdata(data).astype(np.float32)
        out[np.ma.getmaskarray(data)] = np.nan
        return out
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    out = np.full((h, w), np.nan, np.float32)
    ra, rb = max(r0, 0), min(r0 + h, ds.height)
    ca, cb = max(c0, 0), min(c0 + w, ds.width)
    if rb > ra and cb > ca:
        out[ra - r0:rb - r0, ca - c0:cb - c0] = _read(ds, Window(ca, ra, cb - ca, rb - ra), None)
    return out


def _decimated(path: str, grid: Grid, factor: int, warp: Grid | None) -> np.ndarray:
    """Block means by ``factor`` over whole blocks, read through GDAL (overviews when present)."""
    h, w = grid.height // factor, grid.width // factor
    with _open_on(path, warp) as ds:
        return _read(ds, Window(0, 0, w * factor, h * factor), out_shape=(h, w))


def match_tile(tile: tuple[slice, slice], *, ref: str, sec: str, warp: Grid | None,
               params: TrackParams, centre_dy: np.ndarray, centre_dx: np.ndarray,
               search: int, ref_warp: Grid | None = None) -> tuple[np.ndarray, ...]:
    """Match the nodes of one tile, reading only the windows of REF and SEC they need."""
    rs, cs = tile
    R, C = NodeGrid((rs.stop * params.step, cs.stop * params.step), params.step,
                    params.chip).mesh(rs, cs)
    cy, cx = centre_dy[rs, cs], centre_dx[rs, cs]
    m = window_margin(params)
    top = int(min(R.min(), (R + cy).min() - search)) - m
    left = int(min(C.min(), (C + cx).min() - search)) - m
    bottom = int(max(R.max(), (R + cy).max() + search)) + params.chip + m
    right = int(max(C.max(), (C + cx).max() + search)) + params.chip + m
    win = Window(left, top, right - left, bottom - top)
    with _open_on(ref, ref_warp) as ds:
        a = _read(ds, win)
    with _open_on(sec, warp) as ds:
        b = _read(ds, win)
    out = match_window(a, b, (R - top).ravel(), (C - left).ravel(), cy.ravel(), cx.ravel(),
                       params, search)
    return tuple(o.reshape(R.shape) for o in out)


def _assemble(tiles, results, shape: tuple[int, int]) -> NodeField:
    """The node field of the whole grid from the per-tile results of :func:`match_tile`,
    with every layer :func:`.track.track_pair` fills (dy, dx, peak, snr and narrow)."""
    dy, dx = (np.full(shape, np.nan, np.float64) for _ in range(2))
    peak, snr = (np.full(shape, np.nan, np.float32) for _ in range(2))
    narrow = np.zeros(shape, bool)
    for (rs, cs), res in zip(tiles, results):
        # strict: a layer match_window returns must not be dropped silently (narrow once was)
        for layer, r in zip((dy, dx, peak, snr, narrow), res, strict=True):
            layer[rs, cs] = r
    return NodeField(dy, dx, peak, snr, narrow=narrow)


# ----------------------------------------------------------------------------- checks

def _check_grids(ref: str, sec: str, resample: bool) -> tuple[Grid, Grid | None, Grid | None]:
    """The tracking grid, and the grids REF and SEC are warped onto (None: read as they are).

    Geographic images (degrees) are tracked on their UTM zone in whole metres
    (:func:`~cryokit.core.raster.projected_grid`), both warped there bilinearly."""
    g_ref, g_sec = read_grid(ref), read_grid(sec)
    if g_ref.crs is None:
        raise UserError("has no coordinate reference system", ref)
    why = g_ref.mismatch(g_sec)
    if why is not None and not resample:
        raise UserError(f"is not on the grid of the reference image ({why}); "
                        "use --resample to put it on REF's grid", sec)
    if g_ref.crs.is_geographic:
        grid = projected_grid(g_ref)
        return grid, grid, grid
    return g_ref, (None if why is None else g_ref), None


def _prior_offsets(path: str, ngrid: Grid, grid: Grid, dt_days: float) -> tuple[np.ndarray, ...]:
    """Prior velocity (vx, vy in m/d or m/yr, by its ``units`` tag) -> node offsets in px."""
    p = Path(path)
    files = [(p / "vx.tif", 1), (p / "vy.tif", 1)] if p.is_dir() else [(p, 1), (p, 2)]
    vel = []
    for f, band in files:
        with open_raster(f) as ds:
            if band > ds.count:
                raise UserError("a prior velocity raster needs two bands (vx, vy) or a "
                                "directory with vx.tif and vy.tif", f)
            units = ds.tags(band).get("units") or ds.tags().get("units") or "m/d"
        if units not in UNITS:
            raise UserError(f"unknown velocity units {units!r} (expected m/d or m/yr)", f)
        vel.append(reproject_band(f, ngrid, band) / UNITS[units] * dt_days)
    inv = ~Affine(grid.transform.a, grid.transform.b, 0, grid.transform.d, grid.transform.e, 0)
    dx = inv.a * vel[0] + inv.b * vel[1]
    dy = inv.d * vel[0] + inv.e * vel[1]
    if not np.isfinite(dx).any():
        raise UserError("prior velocity has no valid value over the image", path)
    return dy, dx


# ----------------------------------------------------------------------------- product

def make_velocity(ref: str, sec: str, outdir: str, params: TrackParams = TrackParams(), *,
                  dates: tuple[str, str] | None = None, stable_mask: str | None = None,
                  prior: str | None = None, options: VelocityOptions = VelocityOptions()) -> dict:
    """Make the velocity product of the pair REF -> SEC in ``outdir``; return the report.

    Everything is checked before anything is written; outputs are staged in a hidden sibling
    directory and moved into ``outdir`` only when complete.
    """
    ref, sec = os.fspath(ref), os.fspath(sec)
    if options.units not in UNITS:
        raise UserError(f"unknown units {options.units!r}; use m/d or m/yr")
    if not (landsat.is_mtl(ref) or landsat.is_mtl(sec)):
        return _make_velocity(ref, sec, outdir, params, dates, stable_mask, prior, options)
    # Landsat scenes: their masked pan bands in a scratch folder beside OUTDIR, for this run.
    out = Path(outdir).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{out.name}.cryokit-scratch-", dir=out.parent)
    try:
        if dates is None and all(landsat.image_time(p) for p in (ref, sec)):
            dates = tuple(landsat.image_time(p).isoformat() for p in (ref, sec))
        (ref, sec), scenes = landsat.prepare([ref, sec], scratch)
        rep = _make_velocity(ref, sec, outdir, params, dates, stable_mask, prior, options,
                             scenes=scenes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rep


def _make_velocity(ref, sec, outdir, params, dates, stable_mask, prior, options,
                   scenes=None) -> dict:
    times = {}
    t0 = time.perf_counter()
    grid, warp, ref_warp = _check_grids(ref, sec, options.resample)
    if dates is None and all(landsat.image_time(p) for p in (ref, sec)):
        # Landsat scenes (or crops with their MTL beside them): the scene-centre time
        dates = tuple(landsat.image_time(p).isoformat() for p in (ref, sec))
    d1, d2 = pair_dates(ref, sec, dates)
    dt_days = days_between(d1, d2)
    nodes = NodeGrid.of(grid.shape, params)
    ny, nx = nodes.shape
    if min(ny, nx) < 1:
        raise UserError(f"image of {grid.width} x {grid.height} px is smaller than one step "
                        f"({params.step} px)", ref)
    ngrid = nodes.georeferenced(grid)
    node_stable = None
    if stable_mask:
        from ..core.vector import load_mask  # geopandas is imported only when a mask is used
        node_stable = load_mask(stable_mask, ngrid, options.stable_values)

    f = params.coarse_factor
    small = (_decimated(ref, grid, f, ref_warp), _decimated(sec, grid, f, warp))
    for img, path in zip(small, (ref, sec)):
        if not np.isfinite(img).any():
            raise UserError("all pixels are nodata" if path == ref or warp is None else
                            "has no valid pixel over the reference image", path)
        if np.nanmax(img) == np.nanmin(img):
            raise UserError(f"every valid pixel has the value {np.nanmax(img):g}: a constant "
                            "image has no texture to track", path)
    prior_px = _prior_offsets(prior, ngrid, grid, dt_days) if prior else None
    times["read_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    (cy, cx), search = search_centres(None, None, (ny, nx), params, prior_px, small=small)
    times["coarse_s"] = time.perf_counter() - t

    t = time.perf_counter()
    side = options.tile_nodes or max(4, 2048 // params.step)
    tiles = parallel.tiles((ny, nx), (side, side))
    results = parallel.run_tasks(
        match_tile, tiles, workers=options.workers, scheduler=options.scheduler,
        progress=options.progress, description="matching tiles",
        shared=dict(ref=ref, sec=sec, warp=warp, params=params, centre_dy=cy, centre_dx=cx,
                    search=search, ref_warp=ref_warp))
    field = _assemble(tiles, results, (ny, nx))
    times["match_s"] = time.perf_counter() - t

    t = time.perf_counter()
    field = clean_field(field, params)
    fit = None
    dx, dy = field.dx, field.dy
    if node_stable is not None:
        fit = stable.fit_stable(dx, dy, node_stable, options.stable_model)
        dx, dy = stable.correct(dx, dy, fit)
    scale = UNITS[options.units] / dt_days
    ta = grid.transform
    vx = ((ta.a * dx + ta.b * dy) * scale).astype(np.float32)
    vy = ((ta.d * dx + ta.e * dy) * scale).astype(np.float32)
    speed = np.hypot(vx, vy).astype(np.float32)
    v_error = None
    if fit is not None and np.all(np.isfinite(fit["nmad_px"])):
        nx_, ny_ = (abs(ta.a) * fit["nmad_px"][0] * scale, abs(ta.e) * fit["nmad_px"][1] * scale)
        ex, ey = errors.node_errors(field.peak, node_stable, (nx_, ny_))
        v_error = errors.speed_error(vx, vy, ex, ey).astype(np.float32)
    glaft = None
    if node_stable is not None:
        ok = field.valid
        glaft = quality.glaft_metrics(np.where(ok, vx, np.nan), np.where(ok, vy, np.nan),
                                      node_stable, ~node_stable, abs(ngrid.res[0]),
                                      abs(ngrid.res[1]), options.units)
        glaft["ice"] = "nodes outside the stable mask"
    ogrid = ngrid
    if options.out_crs:
        ogrid = grid_in_crs(ngrid, options.out_crs, options.out_res)
        # Components along the output CRS's axes in ground metres (true east/north when it is
        # geographic), then every layer warped onto its grid.
        ve, vn = vectors_to_crs(vx, vy, ngrid, ogrid.crs)
        k = np.hypot(ve, vn) / np.where(speed > 0, speed, np.nan)
        speed = np.hypot(ve, vn)
        if v_error is not None:
            v_error = v_error * np.where(np.isfinite(k), k, 1.0)
        valid = field.valid
        vx, vy, speed, v_error, snr = (
            None if a is None else warp_array(np.where(valid, a, np.nan), ngrid, ogrid)
            for a in (ve, vn, speed, v_error, field.snr))
        # Nodes valid after the warp: the warp interpolates between valid nodes only.
        field = replace(field, snr=snr, valid=np.isfinite(vx), filled=None)
    times["filter_s"] = time.perf_counter() - t

    report = _report(ref, sec, d1, d2, params, options, grid, ngrid, field, fit, stable_mask,
                     prior, search, scale, times)
    if scenes:
        report["landsat"] = scenes
    if glaft is not None:
        report["quality_metrics"] = glaft
    if ref_warp is not None:
        report["tracking_grid"] = {"crs": grid.crs.to_string(), "res_m": list(grid.res),
                                   "note": "geographic inputs warped (bilinear) to their UTM zone"}
    if ogrid is not ngrid:
        report["output_grid"] = {"crs": ogrid.crs.to_string(), "res": list(ogrid.res),
                                 "rows": ogrid.height, "cols": ogrid.width,
                                 "components": "vx, vy along the output CRS's east and north "
                                 "axes (true east/north for a geographic CRS), ground metres "
                                 "per time unit"}
    t = time.perf_counter()
    _write(outdir, ref, sec, d1, d2, grid, ogrid, vx, vy, speed, v_error, field, small[0],
           report, options)
    report["timings_s"]["write_s"] = time.perf_counter() - t
    return report


def _report(ref, sec, d1, d2, params, options, grid, ngrid, field, fit, mask, prior, search,
            scale, times) -> dict:
    ta = grid.transform
    to_units = lambda px: [float(abs(ta.a) * px[0] * scale), float(abs(ta.e) * px[1] * scale)]  # noqa: E731
    rep = {
        "product": "glacier surface velocity (optical feature tracking)",
        "software": f"cryokit {__version__}",
        "reference": os.path.abspath(ref), "secondary": os.path.abspath(sec),
        "dates": [d1.isoformat(), d2.isoformat()], "dt_days": days_between(d1, d2),
        "units": options.units, "sign_convention": CONVENTION,
        "parameters": params.as_dict() | {"fine_search_used": search, "prior": prior,
                                          "stable_model": options.stable_model,
                                          "resample": options.resample},
        "node_grid": {"rows": ngrid.height, "cols": ngrid.width,
                      "spacing_m": [ngrid.res[0], ngrid.res[1]]},
        "nodes": field.flags,
        "valid_fraction": field.flags["valid"] / max(field.flags["nodes"], 1),
        "stable_ground": None,
        "timings_s": {k: round(v, 4) for k, v in times.items()},
    }
    if fit is not None:
        rep["stable_ground"] = {
            "mask": os.path.abspath(mask), "model": fit["model"], "n_nodes": fit["n_stable"],
            "median_offset_px": fit["median_px"], "median_offset_units": to_units(fit["median_px"]),
            "nmad_px": fit["nmad_px"], "nmad_units": to_units(fit["nmad_px"]),
            "coefficients_px": {"x": fit["x"], "y": fit["y"]},
            "note": "median/NMAD in image x (columns) and y (rows); NMAD after correction",
        }
        rep["error_model"] = (
            "v_error.tif: 1-sigma speed error per node, the stable-ground NMAD of each component "
            "times q / median q over stable nodes (q = sqrt(1 - peak^2) / peak of the "
            "correlation peak, at least 0.25), projected on the flow direction")
    return rep


def _write(outdir, ref, sec, d1, d2, grid, ngrid, vx, vy, speed, v_error, field, background,
           report, options):
    units = options.units
    tags = {"date1": d1.isoformat(), "date2": d2.isoformat(), "dt_days": f"{report['dt_days']:g}",
            "units": units, "sign_convention": CONVENTION,
            "reference_image": os.path.basename(ref), "secondary_image": os.path.basename(sec),
            "software": report["software"]}
    if "output_grid" in report:
        tags["components"] = report["output_grid"]["components"]
        # ITS_LIVE's attribute names for the same conventions
        tags["motion_coordinates"] = "map" if not ngrid.crs.is_geographic else "east_north"
        tags["map_scale_corrected"] = "1"
    valid = field.valid
    b = grid.bounds
    if ngrid.crs != grid.crs:      # --out-crs: the quick-look on the output grid, no image
        background, b = None, ngrid.bounds
    with staged_dir(outdir, "velocity") as stage:
        for name, arr, desc in (("vx", vx, f"velocity easting component ({units})"),
                                ("vy", vy, f"velocity northing component ({units})"),
                                ("speed", speed, f"speed ({units})")):
            write_cog(stage / f"{name}.tif", np.where(valid, arr, np.nan), ngrid,
                      descriptions=[desc], units=units, tags=tags)
        if v_error is not None:
            write_cog(stage / "v_error.tif", np.where(valid, v_error, np.nan), ngrid,
                      descriptions=[f"speed error, 1 sigma ({units}): stable-ground NMAD scaled "
                                    "by correlation quality"], units=units, tags=tags)
        write_cog(stage / "snr.tif", np.where(np.isfinite(field.snr), field.snr, np.nan), ngrid,
                  descriptions=["correlation signal-to-noise (peak / mean |NCC|)"], units="1",
                  tags=tags | {"units": "1"})
        if field.filled is not None and field.filled.any():
            write_cog(stage / "filled.tif", field.filled.astype("uint8"), ngrid, nodata=None,
                      descriptions=["1 = node filled from neighbours"], units="1", tags=tags)
        write_json(stage / "report.json", report)
        sg = report["stable_ground"]
        err = (f"stable-ground NMAD {sg['nmad_units'][0]:.3g} (x), {sg['nmad_units'][1]:.3g} (y) "
               f"{units} over {sg['n_nodes']} nodes" if sg else "no stable ground given: error "
               "not estimated")
        vector_quicklook(stage / "quicklook.png", background, np.where(valid, speed, np.nan),
                         np.where(valid, vx, np.nan), np.where(valid, vy, np.nan),
                         extent=(b[0], b[2], b[1], b[3]), units=units,
                         title=f"Speed {d1} to {d2} ({units})")
        title = f"Glacier surface velocity {d1} to {d2}"
        write_records(
            stage, item_id=f"velocity_{d1:%Y%m%d}_{d2:%Y%m%d}", grid=ngrid, start=d1, end=d2,
            title={"en": title},
            abstract=(f"Surface velocity from feature tracking of two optical images "
                      f"({os.path.basename(ref)}, {os.path.basename(sec)}) acquired {d1} and "
                      f"{d2} ({report['dt_days']:.4g} days). East and north components and speed in "
                      f"{units} on a {ngrid.res[0]:g} m node grid; {100 * report['valid_fraction']:.1f} % "
                      f"of nodes valid. {err}."),
            source=f"{os.path.basename(ref)} ({d1}), {os.path.basename(sec)} ({d2})",
            method=(f"{report['parameters']['matcher'].upper()} chip matching, chip "
                    f"{report['parameters']['chip']} px, step {report['parameters']['step']} px, "
                    f"search {report['parameters']['search']} px coarse-to-fine, "
                    f"{report['parameters']['prefilter']} pre-filter, Lucas-Kanade sub-pixel "
                    f"refinement, SNR and normalised median outlier tests, "
                    f"stable-ground {options.stable_model} correction"),
            quality=err, place=options.place, temporal_resolution=f"{report['dt_days']:.4g} days",
            licence=options.licence, keywords=("glacier", "velocity", "feature tracking",
                                               "cryosphere"))
