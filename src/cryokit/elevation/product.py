"""The DEM-differencing product: REF + TBA DEMs -> co-registered dh, dh/dt, per-glacier change.

Reading, grid alignment, vertical references and writing live here; the algorithms are in
:mod:`.coreg`, :mod:`.bias`, :mod:`.terrain`, :mod:`.stats`, :mod:`.voids` and
:mod:`.uncertainty`, the per-block work in :mod:`.blocks`.  Everything is checked before
anything is written; outputs are staged and moved into OUTDIR when complete.

Memory: the co-registration is fitted on the whole grid (REF, TBA and the stable mask in
float32/bool, plus the spline of TBA); everything after that runs by blocks of rows
(``block_rows``) through :func:`cryokit.parallel.run_tasks`, serially or on dask workers:
(1) samples of stable dh and curvature for the curvature-bias fit, (2) correction,
differencing and statistics, whose dh and aligned TBA go to scratch files, (3) hypsometric
void filling from band medians of all blocks and windowed writing of the rasters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import staged_dir
from ..dates import parse_date
from ..errors import UserError
from .. import parallel
from ..parallel import run_tasks
from ..product import write_json, write_records
from ..quicklook import raster_quicklook
from ..raster import Grid, TiledWriter, read_grid
from . import bias, blocks, coreg, terrain, uncertainty, voids

COREG_STEPS = {"nuth_kaab": coreg.NuthKaab, "vertical_shift": coreg.VerticalShift,
               "deramp": coreg.Deramp}
ICE_DENSITY, ICE_DENSITY_ERR = 850.0, 60.0   # kg m-3, Huss (2013)
CONVENTION = "dh = later DEM minus earlier DEM (metres); negative = surface lowering"
# Median and NMAD come from at most this many pixels per statistic (all of them below it);
# 10^7 give the median of unit noise to ~4e-4 m.  Mean, std and count use every pixel.
STATS_SAMPLE = 10_000_000
BIAS_SAMPLE = 3_000_000      # stable pixels handed to CurvatureBias (which keeps 2 000 000)
HYPS_SAMPLE = 10_000_000     # glacier pixels for the hypsometric band medians
FIGURE_PIXELS = 4_000_000    # decimated grid of the figures, variogram and quick-look


@dataclass(frozen=True)
class DemChangeOptions:
    grid: str = "coarser"                   # coarser | ref | tba
    coreg: tuple[str, ...] = ("nuth_kaab", "vertical_shift")
    curvature_bias: bool = True
    curvature_second: str = "min_curvature"  # min_curvature | elevation | none
    ref_vref: str | None = None             # "ellipsoid" or a geoid grid file; None = undeclared
    tba_vref: str | None = None
    id_column: str | None = None
    name_column: str | None = None
    place: str | None = None
    licence: str = "CC-BY-4.0"
    block_rows: int | None = None           # rows per block; None: about 4 Mpixel per block
    workers: int | None = None              # dask worker processes (>= 2), or serial
    scheduler: str | None = None            # address of a running dask scheduler
    progress: bool = False


CURVATURE_SECOND = ("min_curvature", "elevation", "none")


def parse_coreg(text: str) -> tuple[str, ...]:
    """``"nuth_kaab,deramp"`` -> steps, checked; ``"none"`` or ``""`` -> no co-registration."""
    steps = tuple(s.strip().lower() for s in text.split(",") if s.strip())
    if steps in ((), ("none",)):
        return ()
    bad = [s for s in steps if s not in COREG_STEPS]
    if bad:
        raise UserError(f"unknown --coreg step(s) {', '.join(bad)}; choose from "
                        f"{', '.join(COREG_STEPS)} (comma-separated, in pipeline order)")
    return steps


# ----------------------------------------------------------------------------- inputs

def _target_grid(ref: str, tba: str, mode: str) -> tuple[Grid, Grid, Grid]:
    g_ref, g_tba = read_grid(ref), read_grid(tba)
    for g, p in ((g_ref, ref), (g_tba, tba)):
        if g.crs is None:
            raise UserError("has no coordinate reference system", p)
    if mode not in ("coarser", "ref", "tba"):
        raise UserError(f"--grid must be coarser, ref or tba, got {mode!r}")
    if mode == "coarser":
        mode = "tba" if abs(g_tba.res[0]) > abs(g_ref.res[0]) * 1.001 else "ref"
    grid = g_ref if mode == "ref" else g_tba
    if grid.crs.is_geographic:
        raise UserError("is in geographic coordinates; DEM differencing needs a projected CRS "
                        "in metres", ref if mode == "ref" else tba)
    return grid, g_ref, g_tba


def _vertical(ref_z, tba_z, grid, opts: DemChangeOptions, ref, tba) -> tuple:
    """Both DEMs on one vertical reference: ``(ref_z, tba_z, label, vrefs)``; ``vrefs`` is
    ``(ref_vref, tba_vref)`` when they were converted to the ellipsoid (h = H + N)."""
    r, t = opts.ref_vref, opts.tba_vref
    if r is None or t is None or r == t:
        return ref_z, tba_z, r or t or "undeclared (both DEMs taken as on the same reference)", None
    for v, p in ((r, ref), (t, tba)):
        if v != "ellipsoid" and not os.path.exists(v):
            raise UserError(f"vertical reference of {os.path.basename(p)} is neither "
                            "'ellipsoid' nor an existing geoid grid file", v)
    out = []
    for z, v, p in ((ref_z, r, ref), (tba_z, t, tba)):
        n = blocks.geoid_on(v, grid)
        if n is not None:
            if not np.isfinite(n[np.isfinite(z)]).any():
                raise UserError(f"geoid grid does not cover the DEM {os.path.basename(p)}", v)
            z = z + n
        out.append(z)
    return out[0], out[1], "ellipsoid (converted)", (r, t)


def _glacier_labels(path: str, grid: Grid, id_column, name_column):
    """Rasterised outlines (labels 1..n, uint16 when they fit) and the outlines table in the
    grid's CRS."""
    import geopandas as gpd
    from rasterio.features import rasterize

    try:
        gdf = gpd.read_file(path)
    except Exception:  # noqa: BLE001 - any OGR failure is a user error about this file
        raise UserError("not a vector file OGR can read", path) from None
    gdf = gdf[gdf.geometry.notna() & gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if gdf.empty:
        raise UserError("has no polygon", path)
    if gdf.crs is None:
        raise UserError("has no coordinate reference system", path)
    gdf = gdf.to_crs(grid.crs).reset_index(drop=True)
    for col in (id_column, name_column):
        if col and col not in gdf.columns:
            raise UserError(f"has no column {col!r} (columns: {', '.join(map(str, gdf.columns))})",
                            path)
    labels = rasterize(((g, i + 1) for i, g in enumerate(gdf.geometry)), out_shape=grid.shape,
                       transform=grid.transform, fill=0,
                       dtype="uint16" if len(gdf) < 65535 else "int32")
    if not (labels > 0).any():
        raise UserError("glacier outlines do not overlap the DEMs", path)
    return labels, gdf


# ----------------------------------------------------------------------------- product

def make_dem_change(ref: str, tba: str, outdir: str, *, ref_date: str, tba_date: str,
                    glaciers: str | None = None, stable_mask: str | None = None,
                    options: DemChangeOptions = DemChangeOptions()) -> dict:
    """Make the elevation-change product of REF and TBA in ``outdir``; return the report.

    The co-registration is fitted on the whole grid; correction, differencing and writing
    run by blocks of ``options.block_rows`` rows (serially, or on ``options.workers`` dask
    processes or ``options.scheduler``).  Any cut gives the same rasters up to float32
    rounding and the same statistics (see :mod:`.blocks`).
    """
    t0 = time.perf_counter()
    d_ref, d_tba = parse_date(ref_date, "--ref-date"), parse_date(tba_date, "--tba-date")
    if d_ref == d_tba:
        raise UserError(f"--ref-date and --tba-date are equal ({d_ref}): no time span")
    if options.curvature_second not in CURVATURE_SECOND:
        raise UserError(f"--curvature-second {options.curvature_second!r}: choose from "
                        f"{', '.join(CURVATURE_SECOND)}")
    if options.block_rows is not None and options.block_rows < 1:
        raise UserError(f"--block-rows must be >= 1, got {options.block_rows}")
    if options.workers is not None and options.workers < 0:
        raise UserError(f"--workers must be >= 0, got {options.workers}")
    if options.scheduler and (options.workers or 0) >= 2:
        raise UserError("give either --workers or --scheduler, not both")
    grid, g_ref, g_tba = _target_grid(ref, tba, options.grid)
    parent = Path(outdir).absolute().parent
    # Block outputs go to scratch files beside OUTDIR (workers elsewhere must see them).
    scratch = tempfile.mkdtemp(prefix=".cryokit-dem-scratch-",
                               dir=parent if parent.is_dir() else None)
    try:
        return _make(ref, tba, outdir, d_ref, d_tba, glaciers, stable_mask, options, grid,
                     g_ref, g_tba, scratch, t0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fit(ref, tba, glaciers, stable_mask, options, grid, g_ref, g_tba, scratch):
    """Whole-grid phase: checks, masks (saved to scratch) and the co-registration fit."""
    labels_path, gdf, n_glacier = None, None, 0
    stable_path = os.path.join(scratch, "stable.npy")
    if glaciers:
        labels, gdf = _glacier_labels(glaciers, grid, options.id_column, options.name_column)
        labels_path = os.path.join(scratch, "labels.npy")
        np.save(labels_path, labels)
        glacier_px = labels > 0
        del labels
    if stable_mask:
        from ..vector import load_mask
        stable = load_mask(stable_mask, grid)
    elif glaciers:
        stable = ~glacier_px
    else:
        raise UserError("give --glaciers (stable terrain = outside the outlines) or --stable-mask")
    np.save(stable_path, stable)
    ref_z, tba_z = blocks.on_grid(ref, g_ref, grid), blocks.on_grid(tba, g_tba, grid)
    for z, p in ((ref_z, ref), (tba_z, tba)):
        if not np.isfinite(z).any():
            raise UserError("has no valid elevation over the common grid (all nodata or no "
                            "overlap with the other DEM)", p)
    both = np.isfinite(ref_z) & np.isfinite(tba_z)
    if not both.any():
        raise UserError("the two DEMs do not overlap", tba)
    ref_z, tba_z, vref, vrefs = _vertical(ref_z, tba_z, grid, options, ref, tba)
    stable &= both
    n_stable = int(stable.sum())
    if n_stable < 100:
        raise UserError(f"only {n_stable} stable pixels with both DEMs valid (need 100)",
                        stable_mask or glaciers)
    n_glacier = int((glacier_px & both).sum()) if glaciers else int((~stable & both).sum())
    if glaciers:
        del glacier_px
    del both
    steps = [COREG_STEPS[s]() for s in options.coreg]
    pipe = coreg.CoregPipeline(steps) if steps else None
    t = time.perf_counter()
    if pipe is not None:
        try:
            pipe.fit(ref_z, tba_z, stable, grid.transform)
        except ValueError as e:
            raise UserError(f"co-registration failed: {e}", tba) from None
    return (pipe, gdf, labels_path, stable_path, vref, vrefs, n_stable, n_glacier,
            time.perf_counter() - t)


def _make(ref, tba, outdir, d_ref, d_tba, glaciers, stable_mask, options, grid, g_ref, g_tba,
          scratch, t0) -> dict:
    t = time.perf_counter()
    (pipe, gdf, labels_path, stable_path, vref, vrefs, n_stable, n_glacier,
     t_coreg) = _fit(ref, tba, glaciers, stable_mask, options, grid, g_ref, g_tba, scratch)
    t_read = time.perf_counter() - t - t_coreg
    res = grid.res
    shift = pipe.shift if pipe is not None else (0.0, 0.0, 0.0)
    # Rows of context a block needs: the spline's support at the fitted shift, the 5 x 5
    # curvature stencil, and ~20 rows over which the spline prefilter's edge effect decays
    # below float32 rounding (0.27 per row).
    halo = int(math.ceil(abs(shift[1]) / res[1])) + 24
    spans = blocks.block_spans(grid.height, grid.width, options.block_rows)
    n_px = grid.height * grid.width
    setup = blocks.BlockSetup(
        ref=ref, tba=tba, g_ref=g_ref, g_tba=g_tba, grid=grid, vrefs=vrefs, pipe=pipe,
        bias=None, curvature=options.curvature_bias, second=options.curvature_second,
        stable_path=stable_path, labels_path=labels_path, scratch=scratch, halo=halo,
        later_first=d_ref > d_tba,
        decimate=max(1, math.ceil(math.sqrt(n_px / FIGURE_PIXELS))),
        p_stats=(min(1.0, STATS_SAMPLE / max(n_stable, 1)),
                 min(1.0, STATS_SAMPLE / max(n_glacier, 1))),
        p_bias=min(1.0, BIAS_SAMPLE / n_stable),
        p_hyps=min(1.0, HYPS_SAMPLE / max(n_glacier, 1)))
    with _cluster(options) as address:
        return _blocks_and_write(spans, setup, address, options, outdir, grid, pipe, gdf, vref,
                                 halo, shift, res, ref, tba, d_ref, d_tba, t0,
                                 {"read": round(t_read, 3), "coreg": round(t_coreg, 3)})


@contextlib.contextmanager
def _cluster(options: DemChangeOptions):
    """Address of the dask scheduler the block passes share: ``--scheduler``, or one local
    cluster of ``--workers`` processes for both passes (starting one costs seconds); None
    to run serially."""
    if options.scheduler or (options.workers or 0) < 2:
        yield options.scheduler
        return
    with parallel.client(None, options.workers) as c:
        yield c.scheduler.address


def _blocks_and_write(spans, setup, address, options, outdir, grid, pipe, gdf, vref,
                      halo, shift, res, ref, tba, d_ref, d_tba, t0, timings) -> dict:
    labels_path = setup.labels_path
    run = dict(scheduler=address, progress=options.progress)

    curv_fit, cb = None, None
    t = time.perf_counter()
    if options.curvature_bias:
        parts = run_tasks(blocks.bias_samples, spans, shared={"setup": setup},
                          description="curvature samples", **run)
        cols = [np.concatenate(c) for c in zip(*parts)]
        second = cols[2] if len(cols) > 2 else None
        try:
            cb = bias.CurvatureBias().fit(cols[0], cols[1], None, second=second)
        except ValueError as e:
            raise UserError(f"curvature-bias fit failed: {e}", tba) from None
        del parts, cols, second
        curv_fit = {"variables": ["max_curvature"] + (
                        [options.curvature_second] if options.curvature_second != "none" else []),
                    "units": "curvature in 100 m^-1, bias in m (added to TBA)", **cb.meta}
        setup = dataclasses.replace(setup, bias=cb)
    t_bias = time.perf_counter() - t

    t = time.perf_counter()
    parts = run_tasks(blocks.apply_block, spans, shared={"setup": setup},
                      description="dem-change blocks", **run)
    st = {when: {name: blocks.merge_stats(
              [p["stats"][(when, name)] for p in parts],
              np.concatenate([p["samples"][(when, name)] for p in parts]))
              for name in ("stable", "glacier")} for when in ("before", "after")}
    for p in parts:
        del p["samples"]
    dec = {k: np.concatenate([p["decimated"][k] for p in parts]) for k in parts[0]["decimated"]}
    tables = _hypsometric_tables(parts) if labels_path else {}
    for p in parts:
        p.pop("hyps", None)
    t_apply = time.perf_counter() - t
    k = setup.decimate
    vario = uncertainty.variogram(dec["after"], dec["stable"], res[0] * k)
    years = abs((d_ref - d_tba).days) / 365.25
    report = {
        "product": "glacier elevation change from DEM differencing",
        "software": f"cryokit {__version__}",
        "reference_dem": os.path.abspath(ref), "tba_dem": os.path.abspath(tba),
        "dates": {"ref": d_ref.isoformat(), "tba": d_tba.isoformat()},
        "years": years, "sign_convention": CONVENTION, "vertical_reference": vref,
        "grid": {"crs": grid.crs.to_string(), "res_m": list(res), "shape": list(grid.shape),
                 "chosen": options.grid},
        "coregistration": {"steps": list(options.coreg), "shift_x": shift[0],
                           "shift_y": shift[1], "shift_z": shift[2],
                           "note": "translation (m) that, added to TBA's coordinates and "
                                   "elevations, aligns it on REF",
                           "pipeline": pipe.meta if pipe else None},
        "curvature_bias": curv_fit,
        "statistics": st, "variogram": vario,
        "statistics_note": (f"dh = REF - TBA (m). mean, std, count over all pixels; median and "
                            f"NMAD over all pixels, or a fixed pseudo-random subsample of "
                            f"{STATS_SAMPLE} when there are more; variogram from pixels on "
                            f"every {k}th row and column"),
        "blocks": {"count": len(spans), "rows": spans[0][1] - spans[0][0], "halo_rows": halo,
                   "workers": options.workers, "scheduler": options.scheduler},
        "density_kg_m3": [ICE_DENSITY, ICE_DENSITY_ERR],
    }
    report["timings_s"] = timings | {"curvature_bias": round(t_bias, 3),
                                     "apply": round(t_apply, 3)}
    t = time.perf_counter()
    report["void_filled_pixels"] = _write(
        outdir, grid, setup, parts, tables, dec, cb, gdf, report, d_ref, d_tba, years,
        options)
    report["timings_s"]["write"] = round(time.perf_counter() - t, 3)
    report["timings_s"]["total"] = round(time.perf_counter() - t0, 3)
    return report


def _hypsometric_tables(parts) -> dict[int, tuple[int, np.ndarray]]:
    """Glacier k -> (first band, dh per band) from the kept glacier pixels of all blocks,
    for the glaciers with voids: :func:`.voids.fill_hypsometric` on one probe pixel per band."""
    want = np.unique(np.concatenate([p["void_labels"] for p in parts]))
    if want.size == 0:
        return {}
    lab, band, dh = (np.concatenate(c) for c in zip(*(p["hyps"] for p in parts)))
    sel = np.isin(lab, want)
    lab, band, dh = lab[sel], band[sel], dh[sel]
    if lab.size == 0:
        return {}
    n = int(want.max()) + 1
    lo = np.full(n, np.iinfo(np.int32).max, np.int64)
    hi = np.full(n, np.iinfo(np.int32).min, np.int64)
    np.minimum.at(lo, lab, band)
    np.maximum.at(hi, lab, band)
    ks = [int(k) for k in want if lo[k] <= hi[k]]
    probe_lab = np.concatenate([np.full(hi[k] - lo[k] + 1, k) for k in ks])
    probe_band = np.concatenate([np.arange(lo[k], hi[k] + 1) for k in ks])
    # Band numbers as elevations with a band height of 1: the bands are exactly the same.
    out, filled = voids.fill_hypsometric(
        np.concatenate([dh, np.full(probe_lab.size, np.nan, np.float32)]),
        np.concatenate([band, probe_band]).astype(np.float64) + 0.5,
        np.concatenate([lab, probe_lab]), band=1.0)
    vals, got = out[dh.size:], filled[dh.size:]
    tables, start = {}, 0
    for k in ks:
        m = hi[k] - lo[k] + 1
        if got[start:start + m].all():
            tables[k] = (int(lo[k]), vals[start:start + m].copy())
        start += m
    return tables


def _fill_block(dh, labels, ref_z, tables, band):
    """Fill the voids of one block from the band tables; the filled-pixel mask."""
    filled = np.zeros(dh.shape, bool)
    if ref_z is None:
        return filled
    void = ~np.isfinite(dh) & (labels > 0) & np.isfinite(ref_z)
    for k in np.unique(labels[void]):
        if int(k) not in tables:
            continue
        lo, med = tables[int(k)]
        hole = void & (labels == k)
        b = np.clip(np.floor(ref_z[hole] / band).astype(int) - lo, 0, med.size - 1)
        dh[hole] = med[b]
        filled[hole] = True
    return filled


def _glacier_table(gdf, count, valid, sums, nfill, res, years, nmad_stable, range_m, options):
    import pandas as pd

    px_area = res[0] * res[1]
    nz = np.flatnonzero(count)
    n = int(nz[-1]) if nz.size else 0
    rows = []
    for k in range(1, n + 1):
        area = count[k] * px_area
        mean = sums[k] / valid[k] if valid[k] else float("nan")
        err = uncertainty.mean_error(nmad_stable, area, range_m, px_area)
        rate = mean / years
        rate_err = err / years
        mb = rate * ICE_DENSITY / 1000.0
        mb_err = float(np.hypot(rate_err * ICE_DENSITY, rate * ICE_DENSITY_ERR) / 1000.0)
        g = gdf.iloc[k - 1]
        rows.append({
            "id": str(g[options.id_column]) if options.id_column else str(k),
            "name": str(g[options.name_column]) if options.name_column else "",
            "area_km2": area / 1e6, "valid_fraction": valid[k] / max(count[k], 1),
            "filled_fraction": nfill[k] / max(count[k], 1),
            "mean_dh_m": mean, "mean_dh_err_m": err, "dhdt_m_per_yr": rate,
            "dhdt_err_m_per_yr": rate_err, "volume_change_m3_per_yr": rate * area,
            "volume_change_err_m3_per_yr": rate_err * area,
            "mass_balance_mwe_per_yr": mb, "mass_balance_err_mwe_per_yr": mb_err})
    return pd.DataFrame(rows)


def _write(outdir, grid, setup, parts, tables, dec, cb, gdf, report, d_ref, d_tba, years,
           opts) -> int:
    """Fill, write the rasters block by block, then tables, figures and records.
    Returns the number of void-filled pixels."""
    from . import figures

    d1, d2 = sorted((d_ref, d_tba))
    tags = {"date_earlier": d1.isoformat(), "date_later": d2.isoformat(),
            "sign_convention": CONVENTION, "software": report["software"],
            "vertical_reference": report["vertical_reference"]}
    res, k = grid.res, setup.decimate
    nlab = 0
    if setup.labels_path:
        labels_all = np.load(setup.labels_path, mmap_mode="r")
        nlab = int(len(gdf)) + 1
    acc = {n: np.zeros(nlab) for n in ("count", "valid", "sums", "nfill")}
    dh_dec = []
    with staged_dir(outdir) as stage, \
            TiledWriter(stage / "dh.tif", grid, count=2, units=["m", "1"],
                        tags=tags | {"units": "m"},
                        descriptions=[f"elevation change {d1} to {d2} (m, later minus earlier)",
                                      "1 = void filled (hypsometric), 0 = measured"]) as w_dh, \
            TiledWriter(stage / "dhdt.tif", grid, units="m/yr", tags=tags | {"units": "m/yr"},
                        descriptions=[f"rate of elevation change {d1} to {d2} (m/yr)"]) as w_rate, \
            TiledWriter(stage / "tba_coregistered.tif", grid, units="m",
                        tags=tags | {"units": "m"},
                        descriptions=["TBA DEM co-registered and bias-corrected onto REF (m)"]) as w_al:
        for p in parts:
            r0, r1 = p["span"]
            dh = np.load(os.path.join(setup.scratch, f"dh_{r0}.npy"))
            filled = np.zeros(dh.shape, bool)
            if setup.labels_path:
                labels = np.asarray(labels_all[r0:r1])
                ref_file = os.path.join(setup.scratch, f"ref_{r0}.npy")
                if p["void_labels"].size and tables:
                    filled = _fill_block(dh, labels, np.load(ref_file), tables, setup.band)
                fin = np.isfinite(dh)
                acc["count"] += np.bincount(labels.ravel(), minlength=nlab)[:nlab]
                acc["valid"] += np.bincount(labels[fin], minlength=nlab)[:nlab]
                acc["sums"] += np.bincount(labels[fin], weights=dh[fin].astype(float),
                                           minlength=nlab)[:nlab]
                acc["nfill"] += np.bincount(labels[filled], minlength=nlab)[:nlab]
            w_dh.write([dh, filled.astype(np.float32)], r0)
            w_rate.write((dh / years).astype(np.float32), r0)
            w_al.write(np.load(os.path.join(setup.scratch, f"aligned_{r0}.npy")), r0)
            dh_dec.append(dh[np.arange((-r0) % k, r1 - r0, k), ::k])
            for f in glob.glob(os.path.join(setup.scratch, f"*_{r0}.npy")):
                os.unlink(f)
        n_filled = int(acc["nfill"].sum())
        s_after = report["statistics"]["after"]["stable"]
        if setup.labels_path:
            table = _glacier_table(gdf, acc["count"], acc["valid"], acc["sums"], acc["nfill"],
                                   res, years, s_after["nmad"], report["variogram"]["range_m"],
                                   opts)
            table.to_csv(stage / "glaciers.csv", index=False, float_format="%.6g")
            # GeoPackage field names are case-insensitive: 'Name' and 'name' collide.
            taken = {c.lower() for c in table.columns}
            out = gdf.drop(columns=[c for c in gdf.columns
                                    if c.lower() in taken and c != gdf.geometry.name])
            out = out.join(table).set_geometry(gdf.geometry.name)
            out.to_file(stage / "glaciers.gpkg", driver="GPKG")
        write_json(stage / "report.json", report | {"void_filled_pixels": n_filled})
        (stage / "figures").mkdir()
        figures.histograms(stage / "figures" / "dh_histogram.png", dec["before"], dec["after"],
                           report["statistics"])
        if cb is not None:
            figures.curvature(stage / "figures" / "curvature_bias.png", cb)
        nk = next((s for s in (report["coregistration"]["pipeline"] or {}).get("steps", [])
                   if s.get("name") == "NuthKaab"), None)
        if nk:
            figures.nuth_kaab(stage / "figures" / "nuth_kaab.png", dec["ref"], dec["tba"],
                              (res[0] * k, res[1] * k), nk)
        b = grid.bounds
        dh_q = np.concatenate(dh_dec)
        shade = terrain.hillshade(dec["ref"], (res[0] * k, res[1] * k))
        lim = float(np.nanpercentile(np.abs(dh_q), 98)) if np.isfinite(dh_q).any() else 1.0
        raster_quicklook(stage / "quicklook.png", dh_q, extent=(b[0], b[2], b[1], b[3]),
                         cmap="RdBu", label="dh (m)", vmin=-lim, vmax=lim, background=shade,
                         title=f"Elevation change {d1} to {d2} (m)", diverging=True)
        quality = (f"stable terrain after co-registration: median {s_after['median']:.2f} m, "
                   f"NMAD {s_after['nmad']:.2f} m over {s_after['count']} pixels")
        write_records(
            stage, item_id=f"dem_change_{d1:%Y%m%d}_{d2:%Y%m%d}", grid=grid, start=d1, end=d2,
            title={"en": f"Glacier elevation change {d1} to {d2}"},
            abstract=(f"Elevation change from differencing {os.path.basename(report['reference_dem'])}"
                      f" and {os.path.basename(report['tba_dem'])} after co-registration "
                      f"({', '.join(report['coregistration']['steps']) or 'none'}) and "
                      f"curvature-bias correction on stable terrain. {quality}."),
            source=f"{os.path.basename(report['reference_dem'])} ({d_ref}), "
                   f"{os.path.basename(report['tba_dem'])} ({d_tba})",
            method=("Nuth & Kaab (2011) co-registration, vertical shift and deramp fitted on "
                    "stable terrain; curvature-dependent bias correction; hypsometric void "
                    "filling; per-glacier uncertainty from a spherical variogram of stable dh "
                    "(Rolstad et al. 2009); density 850 +- 60 kg m-3"),
            quality=quality, place=opts.place, licence=opts.licence,
            temporal_resolution=f"{report['years']:.2f} years",
            keywords=("glacier", "elevation change", "DEM", "mass balance", "cryosphere"))
    return n_filled
