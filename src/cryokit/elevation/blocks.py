"""Per-block work of the DEM-differencing product: read, align, correct, difference, summarise.

:func:`cryokit.elevation.product.make_dem_change` fits the co-registration on the whole grid,
then runs :func:`bias_samples` (curvature-bias fit data) and :func:`apply_block` over blocks
of rows with :func:`cryokit.core.parallel.run_tasks`.  A block reads its rows of REF and TBA plus
``halo`` rows on each side (context for the spline shift of Nuth & Kaab and the 5 x 5
curvature stencil) and keeps only its own rows, so its values do not depend on how the grid
is cut, up to float32 rounding (the spline and curvature filters subtract a typical
elevation of what they are given before filtering in float32).

Subsamples (statistics, curvature-bias fit, hypsometric band medians) are drawn by a hash of
each pixel's position in the whole grid (:func:`keep`), so they are the same for any cut; with
``p = 1`` every pixel is kept and results are exact.  Decimated copies (every ``decimate``-th
row and column of the whole grid) feed the figures, the variogram and the quick-look.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..core.raster import Grid, read_band, reproject_band
from ..core.robust import nmad
from ..core import terrain
from . import resolution

__all__ = ["BlockSetup", "BlockResults", "keep", "bias_samples", "apply_block", "merge_stats", "block_spans",
           "on_grid", "geoid_on"]

_SALT_STATS, _SALT_BIAS, _SALT_HYPS = 0x5EED0001, 0x5EED0002, 0x5EED0003
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def keep(rows, cols, width: int, p: float, salt: int = 0) -> np.ndarray:
    """Pseudo-random choice of pixels with probability ``p``, fixed by their grid position.

    A splitmix64 hash of ``row * width + col`` (and ``salt``) against ``p``: the same pixel
    is kept whatever block it is processed in.

    Examples
    --------
    >>> import numpy as np
    >>> r, c = np.divmod(np.arange(100_000), 1000)
    >>> k = keep(r, c, 1000, 0.25)
    >>> round(float(k.mean()), 2), bool(keep(r, c, 1000, 1.0).all())
    (0.25, True)
    >>> bool((keep(r[500:], c[500:], 1000, 0.25) == k[500:]).all())
    True
    """
    rows, cols = np.asarray(rows), np.asarray(cols)
    if p >= 1.0:
        return np.ones(rows.shape, bool)
    x = rows.astype(np.uint64) * np.uint64(width) + cols.astype(np.uint64)
    x ^= np.uint64(salt)
    # splitmix64 finaliser; uint64 arithmetic wraps, which is what the hash wants.
    x += np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)) < np.uint64(int(p * 2 ** 53))


def block_spans(height: int, width: int, block_rows: int | None,
                block_pixels: int = 1 << 22) -> list[tuple[int, int]]:
    """Row ranges ``(r0, r1)`` of the blocks: ``block_rows`` rows, or about ``block_pixels``.

    Examples
    --------
    >>> block_spans(10, 4, 4)
    [(0, 4), (4, 8), (8, 10)]
    >>> block_spans(400, 360, None)          # small grids are one block
    [(0, 400)]
    """
    rows = block_rows or max(64, block_pixels // max(width, 1))
    return [(r0, min(r0 + rows, height)) for r0 in range(0, height, rows)]


def on_grid(path: str, src: Grid, grid: Grid, rows: tuple[int, int] | None = None) -> np.ndarray:
    """The DEM on ``grid`` (rows ``rows`` of it): read directly when it is the grid, else
    resampled (average when coarsening, bilinear otherwise)."""
    r0, r1 = rows or (0, grid.height)
    if src.same_as(grid):
        return read_band(path, window=Window(0, r0, grid.width, r1 - r0))
    coarser = abs(grid.res[0]) > abs(src.res[0]) * 1.5
    return reproject_band(path, grid.window(r0, r1, 0, grid.width),
                          resampling=Resampling.average if coarser else Resampling.bilinear)


def geoid_on(vref: str, grid: Grid) -> np.ndarray | None:
    """Geoid undulation N (m) on ``grid`` from a geoid grid file; None for ``"ellipsoid"``."""
    if vref == "ellipsoid":
        return None
    return reproject_band(vref, grid, resampling=Resampling.bilinear)


@dataclass(frozen=True)
class BlockSetup:
    """What every block needs: inputs, the fitted corrections and the sampling rates."""

    ref: str
    tba: str
    g_ref: Grid
    g_tba: Grid
    grid: Grid
    vrefs: tuple[str, str] | None        # (ref, tba) references converted to the ellipsoid
    pipe: object | None                  # fitted CoregPipeline
    bias: object | None                  # fitted CurvatureBias
    curvature: bool                      # compute curvatures (bias fit or correction)
    second: str                          # min_curvature | elevation | none
    stable_path: str                     # .npy bool, stable terrain before the validity test
    labels_path: str | None              # .npy int, glacier labels 1..n (0 = none)
    scratch: str                         # folder for the block outputs
    halo: int = 24
    later_first: bool = True             # REF is the later DEM
    decimate: int = 1
    p_stats: tuple[float, float] = (1.0, 1.0)    # (stable, glacier)
    p_bias: float = 1.0
    p_hyps: float = 1.0
    band: float = 50.0                   # hypsometric band height (m)
    blunder_path: str | None = None      # .npy bool, gross errors: voids in both DEMs
    kernel: object | None = None         # fitted resolution.ResolutionBias
    kernel_sigmas: tuple = ()            # its Gaussians (grid pixels); () = no kernel step
    bias_source: str = "ref"             # the sharper DEM, whose curvature and high-passes serve
    keep_inputs: bool = False            # also save REF and raw TBA per block (point checks)


@dataclass
class BlockResults:
    """What the block passes give the writing step."""

    parts: list                  # apply_block results; their dh and aligned TBA wait in scratch
    tables: dict                 # hypsometric tables (tables.hypsometric_tables)
    decimated: dict              # decimated grids for the variogram and the figures
    bias: object | None          # the fitted bias.CurvatureBias, or None
    stats: dict                  # {before|after: {stable|glacier: statistics}}
    chain: list = field(default_factory=list)   # stable statistics after each correction step


def _read(s: BlockSetup, r0: int, r1: int) -> dict:
    """REF, raw TBA, aligned TBA (before bias), curvatures and high-passes of the sharper DEM
    (``bias_source``) of rows [r0, r1), and TBA after each co-registration step (``stages``)."""
    g = s.grid
    lo, hi = max(0, r0 - s.halo), min(g.height, r1 + s.halo)
    sub = g.window(lo, hi, 0, g.width)
    ref_z, tba_z = on_grid(s.ref, s.g_ref, g, (lo, hi)), on_grid(s.tba, s.g_tba, g, (lo, hi))
    if s.blunder_path:
        bad = np.load(s.blunder_path, mmap_mode="r")[lo:hi]
        ref_z, tba_z = np.where(bad, np.nan, ref_z), np.where(bad, np.nan, tba_z)
    if s.vrefs is not None:
        for i, v in enumerate(s.vrefs):
            n = geoid_on(v, sub)
            if n is not None:
                if i == 0:
                    ref_z = ref_z + n
                else:
                    tba_z = tba_z + n
    crop = slice(r0 - lo, r1 - lo)
    aligned, stages = tba_z, []
    for step in (s.pipe.steps if s.pipe is not None else ()):
        aligned = step.apply(aligned, sub.transform)
        stages.append((type(step).__name__, aligned[crop]))
    out = {"ref": ref_z[crop], "tba": tba_z[crop], "aligned": aligned[crop], "stages": stages}
    if s.curvature:
        z = ref_z if s.bias_source == "ref" else aligned
        # In float64: the float32 filter's rounding depends on the block (it subtracts the
        # block's median elevation), and a pixel whose curvature moves by one ulp can change
        # quantile bin in the bias fit.  Rounded to float32 once, curvatures match any cut.
        kmax, kmin = (k.astype(np.float32) for k in
                      terrain.principal_curvatures(z.astype(np.float64), g.res))
        out["kmax"] = kmax[crop]
        out["second"] = {"min_curvature": kmin, "elevation": z}.get(s.second)
        if out["second"] is not None:
            out["second"] = out["second"][crop]
        out["hp"] = None
        if s.kernel_sigmas:
            # The samples pass leaves its high-passes in scratch for the correction pass.
            cached = os.path.join(s.scratch, f"hp_{r0}.npy")
            if os.path.exists(cached):
                out["hp"] = np.load(cached)
            else:
                out["hp"] = resolution.highpasses(z, s.kernel_sigmas)[crop].astype(np.float32)
    out["stable"] = np.load(s.stable_path, mmap_mode="r")[r0:r1] \
        & np.isfinite(out["ref"]) & np.isfinite(out["tba"])
    out["labels"] = (np.asarray(np.load(s.labels_path, mmap_mode="r")[r0:r1])
                     if s.labels_path else None)
    return out


def bias_samples(span: tuple[int, int], setup: BlockSetup) -> dict:
    """``dh``, ``kmax`` (max curvature), ``second`` and ``hp`` (high-passes, ``(n, k)``) at the
    kept stable pixels of a block (row-major); ``second`` and ``hp`` only when used.

    With high-passes, the pixels are those where they are defined (where the kernel step
    applies), and ``table`` marks those where the curvatures are too (where the table does).
    """
    r0, r1 = span
    d = _read(setup, r0, r1)
    if d["hp"] is not None:
        np.save(os.path.join(setup.scratch, f"hp_{r0}.npy"), d["hp"])
    dh = d["ref"] - d["aligned"]
    table = np.isfinite(d["kmax"])
    if d["second"] is not None:
        table &= np.isfinite(d["second"])
    ok = d["stable"] & np.isfinite(dh)
    if d["hp"] is not None:
        ok &= np.isfinite(d["hp"]).all(axis=-1)
    else:
        ok &= table
    rows, cols = np.nonzero(ok)
    k = keep(rows + r0, cols, setup.grid.width, setup.p_bias, _SALT_BIAS)
    rows, cols = rows[k], cols[k]
    out = {"dh": dh[rows, cols], "table": table[rows, cols]}
    out.update({name: d[name][rows, cols] for name in ("kmax", "second", "hp")
                if d[name] is not None})
    return out


def sample_scratch(setup: BlockSetup, spans, name: str, rows, cols) -> np.ndarray:
    """Bilinear values of the blocks' scratch arrays ``{name}_{r0}.npy`` at fractional grid
    positions (row, col of pixel centres); NaN where a neighbour that counts is void."""
    starts = np.array([a for a, _ in spans])
    h, w = setup.grid.shape
    ri, ci = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    fr, fc = rows - ri, cols - ci
    out = np.zeros(np.shape(rows))
    for dr, dc, wt in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                       (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        r, c = np.clip(ri + dr, 0, h - 1), np.clip(ci + dc, 0, w - 1)
        v = np.full(np.shape(rows), np.nan)
        b = np.searchsorted(starts, r, side="right") - 1
        for i in np.unique(b):
            sel = b == i
            arr = np.load(os.path.join(setup.scratch, f"{name}_{starts[i]}.npy"), mmap_mode="r")
            v[sel] = arr[r[sel] - starts[i], c[sel]]
        out += np.where(wt > 0, wt * v, 0.0)
    return out


def _moments(v: np.ndarray) -> tuple[int, float, float]:
    v = v.astype(np.float64)
    if v.size == 0:
        return 0, 0.0, 0.0
    m = float(v.mean())
    return int(v.size), m, float(((v - m) ** 2).sum())


def merge_stats(parts: list[tuple[int, float, float]], sample: np.ndarray) -> dict:
    """Mean, std and count from per-block ``(n, mean, M2)`` (Chan et al. 1979), median and
    NMAD from ``sample`` (all valid pixels, or a fixed subsample of them): the keys of
    :func:`cryokit.elevation.stats.dh_stats`.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.arange(10.0)
    >>> s = merge_stats([_moments(v[:3]), _moments(v[3:])], v)
    >>> s["mean"], round(s["std"], 6) == round(float(v.std()), 6), s["count"]
    (4.5, True, 10)
    """
    n, mean, m2 = 0, 0.0, 0.0
    for nb, mb, m2b in parts:
        if nb == 0:
            continue
        tot = n + nb
        delta = mb - mean
        mean += delta * nb / tot
        m2 += m2b + delta * delta * n * nb / tot
        n = tot
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "median": nan, "nmad": nan, "std": nan, "count": 0}
    v = sample.astype(np.float64)
    return {"mean": mean, "median": float(np.median(v)), "nmad": nmad(v),
            "std": float(np.sqrt(m2 / n)), "count": n}


def apply_block(span: tuple[int, int], setup: BlockSetup) -> dict:
    """Correct and difference one block; save its dh and aligned TBA in ``setup.scratch``.

    Returns per-block statistics (moments and kept samples of stable and glacier dh before
    and after), the kept glacier ``(label, band, dh)`` for the hypsometric band medians, the
    labels with voids, and decimated copies for figures.
    """
    s = setup
    r0, r1 = span
    d = _read(s, r0, r1)
    ref_z, aligned = d["ref"], d["aligned"]
    stages = [("input", d["tba"])] + d["stages"]
    # Curvature and high-passes are undefined on the DEM's outer pixels: those stay uncorrected.
    if s.kernel is not None:
        aligned = aligned + np.nan_to_num(s.kernel.predict(d["hp"]), nan=0.0).astype(aligned.dtype)
        stages.append(("ResolutionKernel", aligned))
    if s.bias is not None:
        aligned = aligned + np.nan_to_num(s.bias.predict(d["kmax"], d["second"]), nan=0.0)
        stages.append(("CurvatureTable", aligned))
    before = ref_z - d["tba"]
    after = ref_z - aligned
    dh = after if s.later_first else -after          # later minus earlier
    labels, stable = d["labels"], d["stable"]
    glacier = labels > 0 if labels is not None else ~stable & np.isfinite(before)
    w = s.grid.width
    out: dict = {"span": span, "stats": {}, "samples": {},
                 "ref_range": ((float(np.nanmin(ref_z)), float(np.nanmax(ref_z)))
                               if np.isfinite(ref_z).any() else None)}
    for name, mask, p in (("stable", stable, s.p_stats[0]), ("glacier", glacier, s.p_stats[1])):
        for when, arr in (("before", before), ("after", after)):
            ok = mask & np.isfinite(arr)
            out["stats"][(when, name)] = _moments(arr[ok])
            rows, cols = np.nonzero(ok)
            k = keep(rows + r0, cols, w, p, _SALT_STATS)
            out["samples"][(when, name)] = arr[rows[k], cols[k]].astype(np.float32)
    out["chain"] = []
    # One draw of the sample for every step: a pixel's hash does not depend on the step.
    rows, cols = np.nonzero(stable)
    k = keep(rows + r0, cols, w, s.p_stats[0], _SALT_STATS)
    rows, cols = rows[k], cols[k]
    for name, z in stages:         # stable dh after each step of the correction chain
        v = ref_z - z
        ok = stable & np.isfinite(v)
        vs = v[rows, cols]
        out["chain"].append((name, _moments(v[ok]), vs[np.isfinite(vs)].astype(np.float32)))
    np.save(os.path.join(s.scratch, f"dh_{r0}.npy"), dh.astype(np.float32, copy=False))
    np.save(os.path.join(s.scratch, f"aligned_{r0}.npy"), aligned.astype(np.float32, copy=False))
    if s.keep_inputs:
        np.save(os.path.join(s.scratch, f"ref_{r0}.npy"), ref_z)
        np.save(os.path.join(s.scratch, f"tba_{r0}.npy"), d["tba"])
    out["void_labels"] = np.zeros(0, np.int64)
    if labels is not None:
        fin_ref = np.isfinite(ref_z)
        ok = (labels > 0) & np.isfinite(dh) & fin_ref
        rows, cols = np.nonzero(ok)
        k = keep(rows + r0, cols, w, s.p_hyps, _SALT_HYPS)
        rows, cols = rows[k], cols[k]
        # Band numbers as the filling computes them (float32 elevations).
        out["hyps"] = (labels[rows, cols].astype(np.int32),
                       np.floor(ref_z[rows, cols] / s.band).astype(np.int32),
                       dh[rows, cols].astype(np.float32))
        void = ~np.isfinite(dh) & (labels > 0) & fin_ref
        if void.any():
            out["void_labels"] = np.unique(labels[void]).astype(np.int64)
            np.save(os.path.join(s.scratch, f"ref_{r0}.npy"), ref_z)
    # Rows of the whole grid that are multiples of `decimate`, every `decimate`-th column.
    sel = np.arange((-r0) % s.decimate, r1 - r0, s.decimate)
    cs = slice(None, None, s.decimate)
    out["decimated"] = {"before": before[sel, cs], "after": after[sel, cs],
                        "stable": stable[sel, cs], "ref": ref_z[sel, cs],
                        "tba": d["tba"][sel, cs]}
    return out
