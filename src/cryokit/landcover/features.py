"""Feature stacks for land cover classification: optical bands and indices per date, temporal
statistics, SAR backscatter, terrain and spatial context, all on one grid, computed block by
block.

Algorithms take and return numpy arrays: :mod:`.spectral` (band roles, indices),
:mod:`.temporal` (statistics over dates), :mod:`.sar_terrain`, :mod:`.context` (local mean and
standard deviation).  :func:`plan_features` (:mod:`.feature_plan`) reads band names and dates
from the inputs and decides the output bands; :func:`write_features` computes them window by
window (each window reads only its part of every input, reprojected to the first input's
grid) and writes a tiled float32 GeoTIFF (nodata NaN, band descriptions = feature names, band
tag ``units``), converted to a COG at the end.  The algorithms' names are re-exported here.
"""

from __future__ import annotations

import os

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window

from ..core.atomic import atomic_file
from ..core.raster import Grid, open_raster
from .context import context_features
from .context import halo as context_halo
from .feature_plan import BandRef, FeatureOptions, FeaturePlan, band_role, plan_features
from .sar_terrain import sar_features, terrain_features, to_db
from .spectral import (INDEX_NAMES, NORMALISED_DIFFERENCES, ROLES, SAVI_L, SENSOR_BANDS,
                       available_indices, spectral_indices)
from .temporal import STATS, nan_quantiles, temporal_stats

__all__ = ["BandRef", "FeatureOptions", "FeaturePlan", "INDEX_NAMES", "NORMALISED_DIFFERENCES",
           "ROLES", "SAVI_L", "SENSOR_BANDS", "STATS", "available_indices", "band_role",
           "compute_window", "nan_quantiles", "plan_features", "sar_features",
           "spectral_indices", "temporal_stats", "terrain_features", "to_db", "write_features"]


_RESAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear,
               "cubic": Resampling.cubic, "average": Resampling.average}


def _read_window(path: str, indexes: list[int], grid: Grid, resampling: Resampling) -> np.ndarray:
    """Bands ``indexes`` of ``path`` on the (sub-)grid ``grid``, float32, NaN = nodata/outside."""
    with open_raster(path) as ds:
        src = Grid(ds.crs, ds.transform, ds.width, ds.height)
        inv = ~src.transform
        off = (inv.a * grid.transform.c + inv.b * grid.transform.f + inv.c,
               inv.d * grid.transform.c + inv.e * grid.transform.f + inv.f)
        aligned = (src.crs == grid.crs and np.allclose(np.array(src.transform)[[0, 1, 3, 4]],
                                                       np.array(grid.transform)[[0, 1, 3, 4]])
                   and np.allclose(off, np.round(off), atol=1e-6))
        if aligned or src.crs is None or grid.crs is None:
            col0, row0 = (int(round(v)) for v in off) if aligned else (0, 0)
            win = Window(col0, row0, grid.width, grid.height)
            data = ds.read(indexes, window=win, boundless=True, masked=True,
                           fill_value=ds.nodata)
            return np.where(np.ma.getmaskarray(data), np.float32(np.nan),
                            np.ma.getdata(data).astype(np.float32))
        dst = np.full((len(indexes), *grid.shape), np.nan, np.float32)
        reproject(rasterio.band(ds, indexes), dst, src_nodata=ds.nodata, dst_nodata=np.nan,
                  dst_transform=grid.transform, dst_crs=grid.crs, resampling=resampling)
        return dst


def _metre_res(grid: Grid) -> tuple[float, float]:
    xres, yres = grid.res
    if grid.crs is not None and grid.crs.is_geographic:
        # Degrees to metres at the window centre (spherical Earth is enough for slopes).
        lat = grid.transform.f + grid.transform.e * grid.height / 2
        return (xres * 111320.0 * np.cos(np.radians(lat)), yres * 110540.0)
    return (xres, yres)


def compute_window(window: tuple[int, int, int, int], plan: FeaturePlan) -> np.ndarray:
    """All features of ``plan`` for rows [r0, r1) and columns [c0, c1): (B, h, w) float32.

    Context bands are computed on the window grown by their halo (NaN beyond the raster), so
    a block's values equal the whole image's."""
    if not plan.context_index:
        return _base_window(window, plan)
    r0, r1, c0, c1 = window
    h = context_halo(plan.options.context)
    base = _base_window((r0 - h, r1 + h, c0 - h, c1 + h), plan)
    # beyond the output grid is nodata, even where a reprojected input has data there
    rr = np.arange(r0 - h, r1 + h)
    cc = np.arange(c0 - h, c1 + h)
    base[:, (rr < 0) | (rr >= plan.grid.height), :] = np.nan
    base[:, :, (cc < 0) | (cc >= plan.grid.width)] = np.nan
    ctx = context_features(base[list(plan.context_index)], plan.options.context)
    crop = (slice(None), slice(h, h + r1 - r0), slice(h, h + c1 - c0))
    return np.concatenate([base[crop], ctx[crop]])


def _base_window(window: tuple[int, int, int, int], plan: FeaturePlan) -> np.ndarray:
    """The features of ``plan`` before context bands (rows/cols may reach past the raster:
    NaN there)."""
    r0, r1, c0, c1 = window
    sub = plan.grid.window(r0, r1, c0, c1)
    opts = plan.options
    rs = _RESAMPLING[opts.resampling]
    values: dict[tuple[str, str], np.ndarray] = {}  # (date, band name or index) -> array
    by_file: dict[str, list[BandRef]] = {}
    for r in plan.optical:
        by_file.setdefault(r.path, []).append(r)
    for path, refs in by_file.items():
        arr = _read_window(path, [r.index for r in refs], sub, rs)
        for r, a in zip(refs, arr):
            values[(r.date, r.name)] = a * np.float32(opts.scale) + np.float32(opts.offset)
    for d in plan.dates:
        roles = {r.role: values[(r.date, r.name)] for r in plan.optical if r.date == d and r.role}
        if not plan.indices:
            continue
        # A date lacking a role gets NaN for the indices that need it.
        need = {x for i in plan.indices for x in NORMALISED_DIFFERENCES.get(i, ("nir", "red"))}
        for role in need - roles.keys():
            roles[role] = np.full(sub.shape, np.nan, np.float32)
        for name, a in spectral_indices(roles, plan.indices).items():
            values[(d, name)] = a
    out = []
    per_date = opts.per_date or len(plan.dates) < 2
    band_names = list(dict.fromkeys(r.name for r in plan.optical))
    if per_date:
        for d in plan.dates:
            out += [values[(d, b)] for b in band_names if (d, b) in values]
            out += [values[(d, i)] for i in plan.indices]
    if len(plan.dates) >= 2:
        nan = np.full(sub.shape, np.nan, np.float32)
        for b in [*band_names, *plan.indices]:
            st = temporal_stats(np.stack([values.get((d, b), nan) for d in plan.dates]),
                                opts.stats)
            out += [st[s] for s in opts.stats]
    if plan.sar is not None:
        path, ivv, ivh, db = plan.sar
        vv, vh = _read_window(path, [ivv, ivh], sub, rs)
        f = sar_features(vv, vh, db)
        out += [f["VV"], f["VH"], f["VH-VV"]]
    if plan.dem is not None:
        halo = plan.grid.window(r0 - 1, r1 + 1, c0 - 1, c1 + 1)
        dem = _read_window(plan.dem, [1], halo, rs)[0]
        t = terrain_features(dem, _metre_res(halo))
        out += [t[k][1:-1, 1:-1] for k in ("elevation", "slope", "aspect_sin", "aspect_cos")]
    return np.stack(out).astype(np.float32, copy=False)


def write_features(plan: FeaturePlan, out: str | os.PathLike, *, workers: int | None = None,
                   scheduler: str | None = None, progress: bool = False) -> str:
    """Compute the features of ``plan`` block by block and write them as a float32 COG.

    Memory holds a batch of blocks (one per worker, at least one) of all output bands, never
    the whole stack.  The file appears only when complete.

    Examples
    --------
    >>> write_features(plan_features(["s2.tif"]), "features.tif")  # doctest: +SKIP
    """
    from ..core.parallel import run_tasks, tiles

    grid, n = plan.grid, len(plan.names)
    block = max(16, int(plan.options.block))
    windows = [(r.start, r.stop, c.start, c.stop) for r, c in tiles(grid.shape, (block, block))]
    batch = max(1, workers or 1) * 2
    tags = {**plan.tags, "units_note": "band tag 'units' per band; NaN = nodata"}
    with atomic_file(out) as tmp:
        stage = tmp.with_name(tmp.stem + ".blocks.tif")
        try:
            profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=n,
                           dtype="float32", crs=grid.crs, transform=grid.transform,
                           nodata=np.nan, tiled=True, blockxsize=256, blockysize=256,
                           BIGTIFF="IF_SAFER", interleave="band")  # temporary: no compression
            if grid.width < 256 or grid.height < 256:
                profile.update(tiled=False, blockxsize=None, blockysize=None)
                profile = {k: v for k, v in profile.items() if v is not None}
            with rasterio.open(stage, "w", **profile) as ds:
                ds.update_tags(**{k: str(v) for k, v in tags.items()})
                for i, (name, unit) in enumerate(zip(plan.names, plan.units), 1):
                    ds.set_band_description(i, name)
                    ds.set_band_unit(i, unit)
                    ds.update_tags(i, units=unit)
                for k in range(0, len(windows), batch):
                    part = windows[k:k + batch]
                    results = run_tasks(compute_window, part, workers=workers,
                                        scheduler=scheduler, shared={"plan": plan})
                    for (r0, r1, c0, c1), arr in zip(part, results):
                        ds.write(arr, window=Window(c0, r0, c1 - c0, r1 - r0))
            rasterio.shutil.copy(stage, tmp, driver="COG", compress="deflate", predictor="3",
                                 BIGTIFF="IF_SAFER", overview_resampling="average")
        finally:
            if stage.exists():
                stage.unlink()
    return os.fspath(out)
