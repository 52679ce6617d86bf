"""The DEM-differencing product: REF + TBA DEMs -> co-registered dh, dh/dt, per-glacier change.

Options, reading, grid alignment, vertical references and the block passes live here; the
algorithms are in :mod:`.coreg`, :mod:`.bias`, :mod:`.terrain`, :mod:`.stats`, :mod:`.voids`
and :mod:`.uncertainty`, the per-block work in :mod:`.blocks`, the hypsometric and glacier
tables in :mod:`.tables` and the writing in :mod:`.outputs`.  Everything is checked before
anything is written; outputs are staged and moved into OUTDIR when complete.

Memory: the co-registration is fitted on the whole grid (REF, TBA and the stable mask in
float32/bool, plus the spline of TBA); everything after that runs by blocks of rows
(``block_rows``) through :func:`cryokit.core.parallel.run_tasks`, serially or on dask workers:
(1) samples of stable dh and curvature for the curvature-bias fit, (2) correction,
differencing and statistics, whose dh and aligned TBA go to scratch files, (3) hypsometric
void filling from band medians of all blocks and windowed writing of the rasters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.dates import parse_date
from ..core import vdatum
from ..core.errors import UserError
from ..core import parallel
from ..core.parallel import run_tasks
from ..core.raster import Grid, grid_in_crs, projected_grid, read_grid, utm_crs
from . import altimetry, bias, blocks, coreg, resolution, uncertainty
from .outputs import write_outputs
from .tables import ICE_DENSITY, ICE_DENSITY_ERR, hypsometric_tables

COREG_STEPS = {"nuth_kaab": coreg.NuthKaab, "vertical_shift": coreg.VerticalShift,
               "deramp": coreg.Deramp}
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
    resolution_kernel: bool = True          # smoothing-kernel fit before the curvature table
    reference_points: tuple[str, ...] = ()  # ATL06 / GLAH14 files or point tables to check with
    points_crs: str | None = None           # CRS of a table's x/y (lon/lat: EPSG:4326)
    points_vref: str | None = None          # vertical reference of a table's heights
    ref_vref: str | None = None             # ellipsoid, a geoid name (egm96...) or grid file
    tba_vref: str | None = None
    out_crs: str | None = None              # CRS of the common grid (None: see _target_grid)
    out_res: float | None = None            # its pixel size in metres
    id_column: str | None = None
    name_column: str | None = None
    place: str | None = None
    stable_values: tuple[int, ...] | None = None   # classes of a raster stable mask that are stable
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

def _metres(g: Grid) -> float:
    """A grid's pixel size in metres (a geographic grid's at its centre, in its UTM zone)."""
    return abs(projected_grid(g).res[0]) if g.crs.is_geographic else abs(g.res[0])


def _target_grid(ref: str, tba: str, mode: str, out_crs: str | None = None,
                 out_res: float | None = None) -> tuple[Grid, Grid, Grid]:
    """The common grid: the coarser (or the named) DEM's, resolutions compared in metres. In
    ``out_crs`` when given; else in that DEM's CRS when it is projected, and in the UTM zone
    of the reference's centre when it is geographic (SRTM, Copernicus DEM in degrees), in
    whole metres. ``out_res`` (metres) sets the pixel size."""
    g_ref, g_tba = read_grid(ref), read_grid(tba)
    for g, p in ((g_ref, ref), (g_tba, tba)):
        if g.crs is None:
            raise UserError("has no coordinate reference system", p)
    if mode not in ("coarser", "ref", "tba"):
        raise UserError(f"--grid must be coarser, ref or tba, got {mode!r}")
    if mode == "coarser":
        mode = "tba" if _metres(g_tba) > _metres(g_ref) * 1.001 else "ref"
    chosen = g_ref if mode == "ref" else g_tba
    if out_res is not None and not out_res > 0:
        raise UserError(f"--out-res: must be > 0 m, got {out_res}")
    res = out_res or (round(_metres(chosen)) if chosen.crs.is_geographic else None)
    if out_crs:
        grid = grid_in_crs(chosen, out_crs, res)
        if grid.crs.is_geographic:
            raise UserError("--out-crs: DEM differencing needs a projected CRS in metres "
                            "(slopes, curvature and shifts are in metres), got a geographic one")
    elif chosen.crs.is_geographic:
        grid = grid_in_crs(chosen, utm_crs(g_ref).to_string(), res)
    elif res is not None:
        grid = grid_in_crs(chosen, chosen.crs.to_string(), res)
    else:
        grid = chosen
    return grid, g_ref, g_tba


def _vertical(ref_z, tba_z, grid, opts: DemChangeOptions, ref, tba, names=(None, None)) -> tuple:
    """Both DEMs on one vertical reference: ``(ref_z, tba_z, label, vrefs)``; ``vrefs`` is
    ``(ref_vref, tba_vref)`` when they were converted to the ellipsoid (h = H + N). ``names``
    are the references as the user gave them (for the label)."""
    r, t = opts.ref_vref, opts.tba_vref
    nr, nt = (names[0] or r), (names[1] or t)
    if r is None or t is None:
        return ref_z, tba_z, "undeclared (both DEMs taken as on the same reference)", None
    if r == t:
        return ref_z, tba_z, f"{vdatum.describe(nr)} (both DEMs)", None
    out = []
    for z, v, p in ((ref_z, r, ref), (tba_z, t, tba)):
        n = blocks.geoid_on(v, grid)
        if n is not None:
            if not np.isfinite(n[np.isfinite(z)]).any():
                raise UserError(f"geoid grid does not cover the DEM {os.path.basename(p)}", v)
            z = z + n
        out.append(z)
    return out[0], out[1], (f"WGS84 ellipsoid (converted: REF from {vdatum.describe(nr)}, "
                            f"TBA from {vdatum.describe(nt)})"), (r, t)


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

@dataclass(frozen=True)
class DemPair:
    """The two DEMs of a run: paths, dates, their grids and the common grid, the masks."""

    ref: str
    tba: str
    d_ref: dt.date
    d_tba: dt.date
    grid: Grid
    g_ref: Grid
    g_tba: Grid
    glaciers: str | None = None
    stable_mask: str | None = None
    vref_names: tuple = (None, None)   # the vertical references as the user named them

    @property
    def years(self) -> float:
        """Time span in years of 365.25 days."""
        return abs((self.d_ref - self.d_tba).days) / 365.25


@dataclass
class CoregFit:
    """What the whole-grid phase hands to the block passes."""

    pipe: object | None             # the fitted coreg.CoregPipeline, or None
    outlines: object | None         # glacier outlines (GeoDataFrame in the grid's CRS)
    labels_path: str | None         # .npy glacier labels 1..n in the scratch folder
    stable_path: str                # .npy stable-terrain mask in the scratch folder
    vref: str                       # the vertical reference of dh, in words
    vrefs: tuple | None             # (ref_vref, tba_vref) when converted to the ellipsoid
    n_stable: int
    n_glacier: int
    seconds: float
    blunders: dict | None = None    # the gross-error rule and what it left out of stable terrain
    blunder_path: str | None = None  # .npy bool of those pixels (None: there are none)


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
    if options.curvature_second not in CURVATURE_SECOND:
        raise UserError(f"--curvature-second {options.curvature_second!r}: choose from "
                        f"{', '.join(CURVATURE_SECOND)}")
    if options.block_rows is not None and options.block_rows < 1:
        raise UserError(f"--block-rows must be >= 1, got {options.block_rows}")
    if options.workers is not None and options.workers < 0:
        raise UserError(f"--workers must be >= 0, got {options.workers}")
    if options.scheduler and (options.workers or 0) >= 2:
        raise UserError("give either --workers or --scheduler, not both")
    if (options.ref_vref is None) != (options.tba_vref is None):
        given, missing = (("--ref-vref", "--tba-vref") if options.tba_vref is None
                          else ("--tba-vref", "--ref-vref"))
        raise UserError(f"{given} needs {missing} too: give the vertical reference of both DEMs")
    names = (options.ref_vref, options.tba_vref)
    if options.ref_vref is not None:
        options = replace(options, ref_vref=vdatum.resolve(options.ref_vref, "--ref-vref"),
                          tba_vref=vdatum.resolve(options.tba_vref, "--tba-vref"))
    grid, g_ref, g_tba = _target_grid(ref, tba, options.grid, options.out_crs, options.out_res)
    points = [altimetry.read_points(p, options.points_crs, options.points_vref)
              for p in options.reference_points]
    for pts, p in zip(points, options.reference_points):
        vdatum.resolve(pts.vref, p)          # a named geoid the points need must be there
    out = Path(outdir).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Block outputs go to scratch files beside OUTDIR (workers elsewhere must see them),
    # named after it so that the next locked run on OUTDIR clears what a killed one left.
    scratch = tempfile.mkdtemp(prefix=f".{out.name}.cryokit-scratch-", dir=out.parent)
    pair = DemPair(ref, tba, d_ref, d_tba, grid, g_ref, g_tba, glaciers, stable_mask,
                   vref_names=names)
    try:
        return _make(pair, outdir, options, scratch, t0, points)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fit(pair: DemPair, options: DemChangeOptions, scratch: str) -> CoregFit:
    """Whole-grid phase: checks, masks (saved to scratch) and the co-registration fit."""
    ref, tba, grid, glaciers, stable_mask = (pair.ref, pair.tba, pair.grid, pair.glaciers,
                                             pair.stable_mask)
    labels_path, gdf, n_glacier = None, None, 0
    stable_path = os.path.join(scratch, "stable.npy")
    if glaciers:
        labels, gdf = _glacier_labels(glaciers, grid, options.id_column, options.name_column)
        labels_path = os.path.join(scratch, "labels.npy")
        np.save(labels_path, labels)
        glacier_px = labels > 0
        del labels
    if stable_mask:
        from ..core.vector import load_mask
        stable = load_mask(stable_mask, grid, options.stable_values)
    elif glaciers:
        stable = ~glacier_px
    else:
        raise UserError("give --glaciers (stable terrain = outside the outlines) or --stable-mask")
    ref_z, tba_z = blocks.on_grid(ref, pair.g_ref, grid), blocks.on_grid(tba, pair.g_tba, grid)
    for z, p in ((ref_z, ref), (tba_z, tba)):
        if not np.isfinite(z).any():
            raise UserError("has no valid elevation over the common grid (all nodata or no "
                            "overlap with the other DEM)", p)
    both = np.isfinite(ref_z) & np.isfinite(tba_z)
    if not both.any():
        raise UserError("the two DEMs do not overlap", tba)
    ref_z, tba_z, vref, vrefs = _vertical(ref_z, tba_z, grid, options, ref, tba,
                                          pair.vref_names)
    stable &= both
    blunders, bad = _blunders(ref_z, tba_z, stable)
    blunder_path = None
    if bad.any():   # voids in both DEMs from here on, so no resampling spreads them
        blunder_path = os.path.join(scratch, "blunders.npy")
        np.save(blunder_path, bad)
        ref_z[bad] = tba_z[bad] = np.nan
    np.save(stable_path, stable)        # without the blunders: the fit and the statistics
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
        _check_converged(steps, grid, tba)
    return CoregFit(pipe, gdf, labels_path, stable_path, vref, vrefs, n_stable, n_glacier,
                    time.perf_counter() - t, blunders, blunder_path)


BLUNDER_NMAD = 10.0


def _blunders(ref_z, tba_z, stable) -> tuple[dict, np.ndarray]:
    """Leave gross errors out of ``stable`` (in place): stable pixels whose dh before any
    correction is more than BLUNDER_NMAD NMADs from the stable median (spikes, pits, a source's
    fill values). The bound is loose on purpose: a misregistration makes dh of tens of metres
    on steep slopes, which the shift fit needs."""
    from ..core.robust import nmad

    dh = ref_z[stable] - tba_z[stable]
    # The bound's median and NMAD on at most STATS_SAMPLE pixels, as the other statistics: two
    # full medians of a 10 000^2 grid cost seconds; every pixel is still tested against it.
    sample = dh[::max(1, -(-dh.size // STATS_SAMPLE))]
    med, spread = float(np.median(sample)), float(nmad(sample))
    bound = BLUNDER_NMAD * max(spread, 0.1)
    bad = np.zeros(stable.shape, bool)
    bad[stable] = np.abs(dh - med) > bound
    stable &= ~bad
    return {"rule": f"stable pixels with |dh - median| > {BLUNDER_NMAD:g} NMAD of dh before "
                    "co-registration are voids in both DEMs: out of the fit, the resampling and "
                    "the statistics",
            "median_m": med, "nmad_m": spread, "bound_m": bound,
            "blunder_px": int(bad.sum())}, bad


def _check_converged(steps, grid, tba) -> None:
    """A horizontal fit that did not converge, or that moved TBA by more than a tenth of the
    grid, is no co-registration: refuse it rather than publish its difference."""
    extent = 0.1 * min(grid.width * abs(grid.res[0]), grid.height * abs(grid.res[1]))
    for step in steps:
        m = getattr(step, "meta", None) or {}
        if "converged" not in m:
            continue
        shift = float(np.hypot(m["shift_x"], m["shift_y"]))
        if not m["converged"]:
            last = m["history"][-1] if m.get("history") else {}
            raise UserError(
                f"co-registration did not converge in {m['iterations']} iterations (shift "
                f"{shift:.1f} m, last update {np.hypot(last.get('update_x', 0), last.get('update_y', 0)):.2f} m): "
                "check that both DEMs show the same terrain and the stable mask, or use "
                "--coreg vertical_shift", tba)
        if shift > extent:
            raise UserError(f"co-registration shift of {shift:.0f} m exceeds a tenth of the grid "
                            f"({extent:.0f} m): the DEMs do not match", tba)


def _make(pair: DemPair, outdir, options: DemChangeOptions, scratch: str, t0: float,
          points=()) -> dict:
    t = time.perf_counter()
    fit = _fit(pair, options, scratch)
    t_read = time.perf_counter() - t - fit.seconds
    grid, res = pair.grid, pair.grid.res
    n_stable, n_glacier = fit.n_stable, fit.n_glacier
    shift = fit.pipe.shift if fit.pipe is not None else (0.0, 0.0, 0.0)
    # Rows of context a block needs: the spline's support at the fitted shift, the 5 x 5
    # curvature stencil, and ~20 rows over which the spline prefilter's edge effect decays
    # below float32 rounding (0.27 per row).
    sharper = "tba" if _metres(pair.g_tba) < _metres(pair.g_ref) / 1.001 else "ref"
    sigmas = (resolution.kernel_sigmas(max(_metres(pair.g_ref), _metres(pair.g_tba)),
                                       abs(res[0]))
              if options.curvature_bias and options.resolution_kernel else ())
    halo = int(math.ceil(abs(shift[1]) / res[1])) + 24 + resolution.halo_rows(sigmas)
    spans = blocks.block_spans(grid.height, grid.width, options.block_rows)
    n_px = grid.height * grid.width
    setup = blocks.BlockSetup(
        ref=pair.ref, tba=pair.tba, g_ref=pair.g_ref, g_tba=pair.g_tba, grid=grid,
        vrefs=fit.vrefs, pipe=fit.pipe, bias=None, curvature=options.curvature_bias,
        second=options.curvature_second, stable_path=fit.stable_path,
        blunder_path=fit.blunder_path,
        labels_path=fit.labels_path, scratch=scratch, halo=halo,
        kernel_sigmas=sigmas, bias_source=sharper, keep_inputs=bool(points),
        later_first=pair.d_ref > pair.d_tba,
        decimate=max(1, math.ceil(math.sqrt(n_px / FIGURE_PIXELS))),
        p_stats=(min(1.0, STATS_SAMPLE / max(n_stable, 1)),
                 min(1.0, STATS_SAMPLE / max(n_glacier, 1))),
        p_bias=min(1.0, BIAS_SAMPLE / n_stable),
        p_hyps=min(1.0, HYPS_SAMPLE / max(n_glacier, 1)))
    timings = {"read": round(t_read, 3), "coreg": round(fit.seconds, 3)}
    with _cluster(options) as address:
        setup, results, curv_fit = _block_passes(pair, setup, spans, address, options, timings)
    report = _report(pair, fit, setup, spans, results, curv_fit, options)
    if points:
        t = time.perf_counter()
        report["reference_points"] = [
            _check_points(p, path, pair, fit, setup, spans, options)
            for p, path in zip(points, options.reference_points)]
        timings["reference_points"] = round(time.perf_counter() - t, 3)
    report["timings_s"] = timings
    t = time.perf_counter()
    report["void_filled_pixels"] = write_outputs(outdir, pair, setup, results, fit.outlines,
                                                 report, options)
    report["timings_s"]["write"] = round(time.perf_counter() - t, 3)
    report["timings_s"]["total"] = round(time.perf_counter() - t0, 3)
    return report


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


def _block_passes(pair: DemPair, setup, spans, address, options: DemChangeOptions,
                  timings: dict):
    """Pass A (curvature-bias samples and fit) and pass B (correct, difference, summarise)
    over the row blocks; returns the setup with the fitted bias, the results and the bias
    record. ``timings`` gets the seconds of each pass."""
    run = dict(scheduler=address, progress=options.progress)
    curv_fit, cb = None, None
    t = time.perf_counter()
    if options.curvature_bias:
        parts = run_tasks(blocks.bias_samples, spans, shared={"setup": setup},
                          description="curvature samples", **run)
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        del parts
        dh, kernel = cols["dh"], None
        try:
            if "hp" in cols:
                kernel = resolution.ResolutionBias(setup.kernel_sigmas).fit(dh, cols["hp"])
                dh = dh - kernel.predict(cols["hp"])
            t_ = cols["table"]
            second = cols["second"][t_] if "second" in cols else None
            cb = bias.CurvatureBias().fit(dh[t_], cols["kmax"][t_], None, second=second)
            cb.meta["offset"] = _centring_offset(dh, cb.predict(cols["kmax"], cols.get("second")),
                                                 t_)
        except ValueError as e:
            raise UserError(f"curvature-bias fit failed: {e}", pair.tba) from None
        del cols, dh, second
        curv_fit = {"variables": ["max_curvature"] + (
                        [options.curvature_second] if options.curvature_second != "none" else []),
                    "source": "REF" if setup.bias_source == "ref" else "aligned TBA",
                    "source_note": "curvatures and high-passes of the DEM with the finer native "
                                   "pixel (REF when equal)",
                    "units": "curvature in 100 m^-1, bias in m (added to TBA)",
                    "kernel": kernel.meta if kernel is not None else None, **cb.meta}
        setup = dataclasses.replace(setup, bias=cb, kernel=kernel)
    timings["curvature_bias"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    parts = run_tasks(blocks.apply_block, spans, shared={"setup": setup},
                      description="dem-change blocks", **run)
    st = {when: {name: blocks.merge_stats(
              [p["stats"][(when, name)] for p in parts],
              np.concatenate([p["samples"][(when, name)] for p in parts]))
              for name in ("stable", "glacier")} for when in ("before", "after")}
    chain = [{"step": c[0], **blocks.merge_stats([p["chain"][i][1] for p in parts],
                                                np.concatenate([p["chain"][i][2] for p in parts]))}
             for i, c in enumerate(parts[0]["chain"])]
    for p in parts:
        del p["samples"], p["chain"]
    dec = {k: np.concatenate([p["decimated"][k] for p in parts]) for k in parts[0]["decimated"]}
    tables = hypsometric_tables(parts) if setup.labels_path else {}
    for p in parts:
        p.pop("hyps", None)
    timings["apply"] = round(time.perf_counter() - t, 3)
    return setup, blocks.BlockResults(parts, tables, dec, cb, st, chain), curv_fit


def _pixel(transform, x, y):
    """Fractional (col, row) of pixel centres at map coordinates."""
    inv = ~transform
    x, y = np.asarray(x), np.asarray(y)
    return inv.a * x + inv.b * y + inv.c - 0.5, inv.d * x + inv.e * y + inv.f - 0.5


def _check_points(pts, path, pair: DemPair, fit: CoregFit, setup, spans,
                  options: DemChangeOptions) -> dict:
    """REF and TBA (before and after the whole correction) against altimetry points on
    stable terrain, the points' heights first put on the DEMs' vertical reference."""
    from pyproj import Transformer

    grid = pair.grid
    lon, lat = (Transformer.from_crs(pts.crs, "EPSG:4326", always_xy=True)
                .transform(pts.x, pts.y))
    lon, lat = np.asarray(lon), np.asarray(lat)
    src = vdatum.resolve(pts.vref, path)
    if fit.vrefs is not None:                 # DEMs converted to the ellipsoid
        target, target_name = "ellipsoid", "ellipsoid"
    elif options.ref_vref is not None:        # both DEMs on one declared reference
        target, target_name = options.ref_vref, pair.vref_names[0]
    else:
        target, target_name = None, None
    z = np.asarray(pts.z, float)
    if target is not None and src != target:
        z = z + vdatum.undulation_at(src, lon, lat) - vdatum.undulation_at(target, lon, lat)
    x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lon, lat)
    col, row = _pixel(grid.transform, x, y)
    h, w = grid.shape
    inside = (row >= 0) & (row <= h - 1) & (col >= 0) & (col <= w - 1) & np.isfinite(z)
    stable = np.load(setup.stable_path, mmap_mode="r")
    ri, ci = np.rint(row[inside]).astype(int), np.rint(col[inside]).astype(int)
    on_stable = np.zeros(z.size, bool)
    on_stable[np.flatnonzero(inside)] = stable[ri, ci]
    r, c, zz = row[on_stable], col[on_stable], z[on_stable]
    vals = {k: blocks.sample_scratch(setup, spans, k, r, c) for k in ("ref", "tba", "aligned")}
    both = np.isfinite(vals["ref"]) & np.isfinite(vals["tba"]) & np.isfinite(vals["aligned"])
    t = pts.time[on_stable][both] if pts.time is not None else None
    return {
        "file": os.path.abspath(path), "source": pts.source, "quality_rule": pts.rule,
        "points_read": pts.n_read, "points_kept": len(pts),
        "points_in_grid": int(inside.sum()), "points_on_stable_terrain": int(both.sum()),
        "time_range": altimetry.time_range(t),
        "vertical_reference": {
            "points": vdatum.describe(pts.vref),
            "compared_on": (vdatum.describe(target_name) if target is not None else
                            "as given: the DEMs' reference is undeclared"),
            "converted": bool(target is not None and src != target)},
        "sampling": "bilinear on the common grid; stable terrain at the nearest pixel",
        "sign": "DEM minus points (m)",
        "ref": altimetry.point_stats(vals["ref"][both], zz[both]),
        "tba_before": altimetry.point_stats(vals["tba"][both], zz[both]),
        "tba_after": altimetry.point_stats(vals["aligned"][both], zz[both]),
    }


def _centring_offset(dh, pred, table) -> float:
    """The constant that, added to the table's correction where it applies (``table``),
    keeps the median of the corrected stable dh at 0 over every pixel the correction chain
    touches: a curve through bin medians need not, and pixels near voids, out of the table,
    need not share its median.

    Half the pixels must fall below 0: those out of the table below 0 stay so, and the rest
    must come from the table's residuals below the constant, so it is their k-th smallest.

    Examples
    --------
    >>> r = np.array([-3.0, -1.0, 2.0, 5.0, 7.0])     # the last two out of the table
    >>> o = _centring_offset(r, np.zeros(5), np.array([True] * 3 + [False] * 2))
    >>> o, float(np.median(r - o * np.array([1, 1, 1, 0, 0])))
    (2.0, 0.0)
    """
    r = dh - np.where(table, pred, 0.0)
    ok = np.isfinite(r)
    r, t = r[ok], table[ok]
    rt = r[t]
    if rt.size == 0:
        return 0.0
    k = int(np.clip(r.size // 2 - int((r[~t] < 0).sum()), 0, rt.size - 1))
    return float(np.partition(rt, k)[k])


def _report(pair: DemPair, fit: CoregFit, setup, spans, results: blocks.BlockResults, curv_fit,
            options: DemChangeOptions) -> dict:
    grid, res, k = pair.grid, pair.grid.res, setup.decimate
    shift = fit.pipe.shift if fit.pipe is not None else (0.0, 0.0, 0.0)
    vario = uncertainty.variogram(results.decimated["after"], results.decimated["stable"],
                                  res[0] * k)
    return {
        "product": "glacier elevation change from DEM differencing",
        "software": f"cryokit {__version__}",
        "reference_dem": os.path.abspath(pair.ref), "tba_dem": os.path.abspath(pair.tba),
        "dates": {"ref": pair.d_ref.isoformat(), "tba": pair.d_tba.isoformat()},
        "years": pair.years, "sign_convention": CONVENTION, "vertical_reference": fit.vref,
        "blunders": fit.blunders,
        "grid": {"crs": grid.crs.to_string(), "res_m": list(res), "shape": list(grid.shape),
                 "chosen": options.grid},
        "coregistration": {"steps": list(options.coreg), "shift_x": shift[0],
                           "shift_y": shift[1], "shift_z": shift[2],
                           "note": "translation (m) that, added to TBA's coordinates and "
                                   "elevations, aligns it on REF",
                           "pipeline": fit.pipe.meta if fit.pipe else None},
        "curvature_bias": curv_fit,
        "statistics": results.stats, "variogram": vario,
        "correction_chain": results.chain,
        "correction_chain_note": "stable-terrain dh = REF - TBA (m) after each step in turn: "
                                 "input (vertical references converted, blunders left out), "
                                 "the co-registration steps, the resolution kernel and the "
                                 "curvature table",
        "statistics_note": (f"dh = REF - TBA (m). mean, std, count over all pixels; median and "
                            f"NMAD over all pixels, or a fixed pseudo-random subsample of "
                            f"{STATS_SAMPLE} when there are more; variogram from pixels on "
                            f"every {k}th row and column"),
        "blocks": {"count": len(spans), "rows": spans[0][1] - spans[0][0],
                   "halo_rows": setup.halo, "workers": options.workers,
                   "scheduler": options.scheduler},
        "density_kg_m3": [ICE_DENSITY, ICE_DENSITY_ERR],
    }
