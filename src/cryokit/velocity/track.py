"""Feature tracking of an image pair on a regular node grid: coarse-to-fine, filtered.

The node grid divides the image into ``step`` x ``step`` cells; node (i, j) sits at the centre
of its cell, and its template is the ``chip`` x ``chip`` window centred there. Displacements
are in pixels, dx along columns (right), dy along rows (down).

The pipeline is split so that the expensive part runs on tiles anywhere (one process, a local
dask cluster, a remote scheduler) with bit-identical results:
:func:`coarse_offsets` (whole image, decimated) -> :func:`match_window` (per tile, needs only a
window of both images with :func:`window_margin` pixels of context) -> :func:`clean_field`
(whole node grid, cheap). :func:`track_pair` chains them for two in-memory arrays.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from . import correlate, filter_kernel, filters
from .params import TrackParams  # noqa: F401 - the tracker's parameters, re-exported


@dataclass
class NodeField:
    """Per-node result on the node grid (ny, nx): offsets in px and quality layers.

    ``narrow`` is True where the strain-adaptive narrow LK window gave the estimate (which
    window weighted the chip matters to anything regressed on node-scale covariates, such as
    the terrain term of SAR offsets)."""

    dy: np.ndarray
    dx: np.ndarray
    peak: np.ndarray
    snr: np.ndarray
    valid: np.ndarray = None
    filled: np.ndarray = None
    flags: dict = None
    narrow: np.ndarray = None


def node_shape(shape: tuple[int, int], step: int) -> tuple[int, int]:
    """Number of node rows and columns for an image of ``shape``."""
    return (shape[0] // step, shape[1] // step)


def node_origins(n: int, step: int, chip: int, offset: int = 0) -> np.ndarray:
    """Template top-left pixel of nodes ``offset .. offset + n - 1`` along one axis."""
    i = np.arange(offset, offset + n)
    return np.floor((i + 0.5) * step + 0.5).astype(np.int64) - chip // 2


@dataclass(frozen=True)
class NodeGrid:
    """Where the nodes of a tracked pair lie: node (i, j) matches the ``chip`` x ``chip``
    template centred on pixel ((i + 0.5) step, (j + 0.5) step) of an image of ``image_shape``.

    Examples
    --------
    >>> g = NodeGrid.of((100, 130), TrackParams(step=16, chip=40))
    >>> g.shape, g.origins(0).tolist()
    ((6, 8), [-12, 4, 20, 36, 52, 68])
    """

    image_shape: tuple[int, int]
    step: int
    chip: int

    @classmethod
    def of(cls, image_shape: tuple[int, int], params: TrackParams) -> "NodeGrid":
        return cls((int(image_shape[0]), int(image_shape[1])), params.step, params.chip)

    @property
    def shape(self) -> tuple[int, int]:
        """Node rows and columns."""
        return node_shape(self.image_shape, self.step)

    def origins(self, axis: int, nodes: slice = slice(None)) -> np.ndarray:
        """Template top-left pixel of the nodes ``nodes`` along ``axis`` (0 rows, 1 columns)."""
        start, stop, _ = nodes.indices(self.shape[axis])
        return node_origins(stop - start, self.step, self.chip, start)

    def mesh(self, rows: slice = slice(None), cols: slice = slice(None)):
        """Template origins (R, C) of the nodes ``rows`` x ``cols``, each (n_rows, n_cols)."""
        return np.meshgrid(self.origins(0, rows), self.origins(1, cols), indexing="ij")

    def georeferenced(self, grid):
        """The node grid as a :class:`~cryokit.core.raster.Grid` on ``grid``'s CRS: pixel =
        step x image pixel."""
        from affine import Affine

        from ..core.raster import Grid

        ny, nx = self.shape
        return Grid(grid.crs, grid.transform @ Affine.scale(self.step), nx, ny)


def window_margin(params: TrackParams) -> int:
    """Context in pixels that a tile window needs beyond its templates (filter + Lanczos taps,
    and the larger chip of the nodata fall-back)."""
    return (filters.prefilter_radius(params.prefilter, sigma=params.sigma,
                                     window=params.wallis_window) + _LK_REACH
            + (filters.lowpass_radius(params.speckle_lowpass) if params.speckle_lowpass else 0)
            + int(math.ceil((params.gap_chip_factor - 1) * params.chip / 2)))


# Pixels beyond a chip that Lucas-Kanade reads: |start| <= 0.5 px, max_move 1 px, Lanczos-3
# taps -2..+3 around the floor.
_LK_REACH = 5


def _prepared(img: np.ndarray, params: TrackParams) -> np.ndarray:
    return filters.prefilter(img, params.prefilter, sigma=params.sigma, window=params.wallis_window,
                             threads=params.threads)


def decimate(img: np.ndarray, factor: int, threads: int = 1) -> np.ndarray:
    """NaN-aware block mean by ``factor`` (the trailing partial block is dropped)."""
    if filter_kernel.AVAILABLE:
        return filter_kernel.block_mean(img, factor, threads=threads)
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    b = img[:h, :w].reshape(h // factor, factor, w // factor, factor)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nodata blocks become NaN
        return np.nanmean(b, axis=(1, 3)).astype(np.float32) if np.isnan(b).any() \
            else b.mean((1, 3), dtype=np.float64).astype(np.float32)


def _fill_all(u: np.ndarray) -> np.ndarray:
    """Fill every NaN with the value of the nearest valid node (0 if none)."""
    bad = ~np.isfinite(u)
    if not bad.any():
        return u
    if bad.all():
        return np.zeros_like(u)
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return u[tuple(idx)]


def coarse_offsets(ref_small: np.ndarray, sec_small: np.ndarray, nodes: tuple[int, int],
                   params: TrackParams) -> tuple[np.ndarray, np.ndarray]:
    """Search centres (full-resolution px, integers) for every node from decimated images.

    ``ref_small`` and ``sec_small`` are the pair decimated by ``params.coarse_factor`` (block
    mean). A chip of max(16, chip / factor) coarse pixels is matched over ``search / factor``;
    outliers are removed by the median test and every node gets the nearest valid estimate, so
    the fine pass always has a centre.
    """
    f = params.coarse_factor
    chip = max(16, params.chip // f)
    chip += chip % 2
    search = int(math.ceil(params.search / f)) + 1
    # Coarse nodes need not be denser than half a coarse chip: match every k-th node and
    # interpolate, which keeps this pass a small share of the work.
    k = max(1, int(chip / 2 // (params.step / f)))
    ny, nx = -(-nodes[0] // k), -(-nodes[1] // k)
    cstep = params.step * k / f
    r0 = (np.floor((np.arange(ny) + 0.5) * cstep + 0.5).astype(np.int64) - chip // 2)
    c0 = (np.floor((np.arange(nx) + 0.5) * cstep + 0.5).astype(np.int64) - chip // 2)
    R, C = np.meshgrid(r0, c0, indexing="ij")
    a, b = _prepared(ref_small, params), _prepared(sec_small, params)
    if params.matcher == "oc":
        a, b = filters.orientation(a), filters.orientation(b)
    zeros = np.zeros(R.size, np.int64)
    surf = correlate.correlation_surfaces(a, b, R.ravel(), C.ravel(), zeros, zeros, chip=chip,
                                          search=search, matcher=params.matcher,
                                          max_nodata=0.5, threads=params.threads)
    dy, dx, peak, snr, _ = correlate.integer_peaks(surf, params.threads)
    dy, dx = dy.reshape(ny, nx), dx.reshape(ny, nx)
    weak = (peak.reshape(ny, nx) < params.min_peak) | (snr.reshape(ny, nx) < params.min_snr)
    dy[weak] = dx[weak] = np.nan
    bad = filters.normalized_median_test(dx, dy, radius=2, threshold=params.median_threshold,
                                         eps=0.5, threads=params.threads)
    dy[bad] = dx[bad] = np.nan
    # Node (i, j) of the full grid sits at coarse-node coordinate ((i + 0.5) / k - 0.5, ...).
    fi = (np.arange(nodes[0]) + 0.5) / k - 0.5
    fj = (np.arange(nodes[1]) + 0.5) / k - 0.5
    FI, FJ = np.meshgrid(fi, fj, indexing="ij")
    out = [ndimage.map_coordinates(_fill_all(u), [FI, FJ], order=1, mode="nearest") * f
           for u in (dy, dx)]
    return tuple(np.rint(u).astype(np.int64) for u in out)


def match_window(ref: np.ndarray, sec: np.ndarray, r0: np.ndarray, c0: np.ndarray,
                 centre_dy: np.ndarray, centre_dx: np.ndarray, params: TrackParams,
                 search: int | None = None) -> tuple[np.ndarray, ...]:
    """Match nodes inside a window: pre-filter, correlate, sub-pixel refine.

    ``ref`` and ``sec`` are windows of the two images (same origin) that contain every template
    and search area plus :func:`window_margin` px; ``r0, c0`` are template origins in window
    coordinates. Returns flat arrays dy, dx (px, NaN where unmatched), peak, snr, and narrow
    (True where the narrow LK window gave the estimate).
    """
    search = params.fine_search if search is None else search
    a, b = _prepared(ref, params), _prepared(sec, params)
    if params.speckle_lowpass:
        la, lb = (_prepared(filters.lowpass(x, params.speckle_lowpass, params.threads), params)
                  for x in (ref, sec))
    f = params.oversample
    if f > 1:
        a, b = _oversampled(a, f), _oversampled(b, f)
        if params.speckle_lowpass:
            la, lb = _oversampled(la, f), _oversampled(lb, f)
        r0, c0 = np.asarray(r0) * f, np.asarray(c0) * f
        centre_dy, centre_dx = np.asarray(centre_dy) * f, np.asarray(centre_dx) * f
        params = replace(params, chip=params.chip * f, oversample=1)
        search = search * f
    ma, mb = (filters.orientation(a), filters.orientation(b)) if params.matcher == "oc" else (a, b)
    ry, rx, peak, snr, _, narrow = _match_prepared(a, b, ma, mb, r0, c0, centre_dy, centre_dx,
                                                   params, search)
    if params.speckle_lowpass:
        _speckle_pass((ry, rx, peak, snr, narrow), la, lb, r0, c0, centre_dy, centre_dx,
                      params, search)
    if params.gap_chip_factor > 1 and not (np.isfinite(a).all() and np.isfinite(b).all()):
        # The threshold is in image pixels; oversampled LK reports f times larger sigmas.
        _gap_fallback((ry, rx, peak, snr, narrow), a, b, ma, mb, r0, c0, centre_dy, centre_dx,
                      params, search, max_sigma=params.gap_max_sigma * f,
                      raw=(ref, sec) if f == 1 else None)
    if f > 1:
        ry, rx = ry / f, rx / f
    return ry, rx, peak, snr, narrow


def _speckle_pass(layers, la, lb, r0, c0, centre_dy, centre_dx, params: TrackParams, search):
    """Match every node again on the low-passed images ``la, lb`` and keep that estimate where
    its peak is ``speckle_switch`` times higher (see :class:`TrackParams`); in place."""
    ry, rx, peak, snr, narrow = layers
    ml, mm = (filters.orientation(la), filters.orientation(lb)) if params.matcher == "oc" else (la, lb)
    wide = replace(params, lk_narrow=None)   # the narrow window only adds noise where speckle is
    ly, lx, lpeak, lsnr, _, _ = _match_prepared(la, lb, ml, mm, r0, c0, centre_dy, centre_dx,
                                                wide, search)
    with np.errstate(invalid="ignore"):
        use = np.isfinite(ly) & np.isfinite(lx) & (
            ~(np.isfinite(ry) & np.isfinite(rx)) | (lpeak > params.speckle_switch * peak))
    ry[use], rx[use], peak[use], snr[use], narrow[use] = ly[use], lx[use], lpeak[use], lsnr[use], False


def _gap_factors(limit: float) -> list[float]:
    """Chip factors the fall-back tries: 1.5, 2, ... up to ``limit`` (or ``limit`` alone)."""
    steps = list(np.arange(1.5, limit + 1e-9, 0.5))
    return steps if steps else [limit]


def _gap_fallback(layers, a, b, ma, mb, r0, c0, centre_dy, centre_dx, params: TrackParams,
                  search, max_sigma, raw=None):
    """Refine again on the joint mask, in place in ``layers`` (dy, dx, peak, snr, narrow), the
    nodes that touch nodata; those that failed are matched again with chips growing by
    ``gap_chip_factor`` steps (see :class:`TrackParams`).

    The integer offset comes from the masked NCC of the larger chip. The sub-pixel step then
    runs on each node's windows of the raw images ``raw`` (ref, sec at that integer offset),
    both cut to the pixels valid in both and pre-filtered only then: a normalised-convolution
    filter sees a one-sided neighbourhood at a gap edge, and at different places in the two
    images, which gave these nodes 0.16 px RMSE on static ground of the synthetic SLC-off
    scene (0.04 px with the joint mask). Without ``raw`` (oversampled chips) it runs on ``a``,
    ``b``.
    """
    ry, _, peak, snr, _ = layers
    r0, c0 = np.asarray(r0, np.int64), np.asarray(c0, np.int64)
    cy, cx = np.asarray(centre_dy, np.int64), np.asarray(centre_dx, np.int64)
    m = params.chip + 2 * search
    gappy = ((correlate.window_counts(~np.isfinite(a), r0, c0, params.chip, params.chip,
                                      outside=False) > 0)
             | (correlate.window_counts(~np.isfinite(b), r0 + cy - search, c0 + cx - search,
                                        m, m, outside=False) > 0))
    with np.errstate(invalid="ignore"):
        failed = ~np.isfinite(ry) | (peak < params.min_peak) | (snr < params.min_snr)
    again = np.flatnonzero(gappy & ~failed)
    if raw is not None and again.size:
        # Normal-chip nodes next to gaps carry the same gap-edge bias of the pre-filter: refine
        # them again on the joint mask, from their own estimate, and keep what succeeds.
        fy, fx, _, narrow = _refine_joint(raw[0], raw[1], r0[again], c0[again], layers[0][again],
                                          layers[1][again], params, correlate.MIN_LK_VALID)
        ok = np.isfinite(fy) & np.isfinite(fx)
        for full, part in zip((layers[0], layers[1], layers[4]), (fy, fx, narrow)):
            full[again[ok]] = part[ok]
    todo = np.flatnonzero(gappy & failed)
    for factor in _gap_factors(params.gap_chip_factor):
        if todo.size == 0:
            return
        big = replace(params, chip=2 * int(round(params.chip * factor / 2)))
        off = (big.chip - params.chip) // 2
        relax = (big.chip / params.chip) ** 2
        R0, C0, CY, CX = r0[todo] - off, c0[todo] - off, cy[todo], cx[todo]
        surf = correlate.correlation_surfaces(
            ma, mb, R0, C0, CY, CX, chip=big.chip, search=search, matcher=params.matcher,
            max_nodata=1 - (1 - params.max_nodata) / relax, min_overlap=0.5 / relax,
            threads=params.threads)
        dy, dx, pk, sn, _ = correlate.integer_peaks(surf, params.threads)
        min_valid = correlate.MIN_LK_VALID / relax
        if raw is None:
            fy, fx, se, narrow = _refine(a, b, R0, C0, dy, dx, big, min_valid)
        else:
            fy, fx, se, narrow = _refine_joint(raw[0], raw[1], R0, C0, dy, dx, big, min_valid)
        with np.errstate(invalid="ignore"):
            take = se <= max_sigma * params.chip / big.chip
        for full, part in zip(layers, (fy, fx, pk, sn, narrow)):
            full[todo[take]] = part[take]
        todo = todo[~take]


def _refine_joint(ref, sec, r0, c0, dy, dx, params: TrackParams, min_valid, batch: int = 256):
    """:func:`_refine` of each node on its own pair of raw windows, masked to the pixels valid
    in both at the node's integer offset and then pre-filtered.

    The windows are laid out side by side in a mosaic. Each window holds ``pad`` px of context
    around the chip, and Lucas-Kanade reads only ``_LK_REACH`` of them, so every pre-filtered
    pixel it reads has its whole filter support inside its own window: a node's result does not
    depend on its neighbours in the mosaic (tiled runs equal the serial run)."""
    ok = np.isfinite(dy) & np.isfinite(dx)
    iy = np.rint(np.where(ok, dy, 0)).astype(np.int64)
    ix = np.rint(np.where(ok, dx, 0)).astype(np.int64)
    radius = filters.prefilter_radius(params.prefilter, sigma=params.sigma,
                                      window=params.wallis_window)
    pad = radius + _LK_REACH
    w = params.chip + 2 * pad
    out = [np.full(len(r0), np.nan) for _ in range(3)] + [np.zeros(len(r0), bool)]
    for s in range(0, len(r0), batch):
        j = np.arange(s, min(s + batch, len(r0)))
        wa = correlate.extract(ref, r0[j] - pad, c0[j] - pad, w, w)
        wb = correlate.extract(sec, r0[j] + iy[j] - pad, c0[j] + ix[j] - pad, w, w)
        both = np.isfinite(wa) & np.isfinite(wb)
        cols = int(math.ceil(math.sqrt(len(j))))
        rows = -(-len(j) // cols)

        def mosaic(win):
            cells = np.full((rows * cols, w, w), np.nan, np.float32)
            cells[:len(j)] = np.where(both, win, np.nan)
            return cells.reshape(rows, cols, w, w).transpose(0, 2, 1, 3).reshape(rows * w,
                                                                                 cols * w)

        if params.prefilter == "highpass":  # one filtered mask serves both mosaics
            ma, mb = filters.highpass_pair(mosaic(wa), mosaic(wb), params.sigma, params.threads)
        else:
            ma, mb = _prepared(mosaic(wa), params), _prepared(mosaic(wb), params)
        k = np.arange(len(j))
        mr, mc = (k // cols) * w + pad, (k % cols) * w + pad
        res = _refine(ma, mb, mr, mc, dy[j] - iy[j], dx[j] - ix[j], params, min_valid)
        for o, r in zip(out, res):
            o[j] = r
    out[0] += iy
    out[1] += ix
    return tuple(out)


def _match_prepared(a, b, ma, mb, r0, c0, centre_dy, centre_dx, params: TrackParams, search,
                    relax: float = 1.0):
    """Correlate and refine on pre-filtered images (``ma``, ``mb``: what the matcher reads).

    ``relax`` divides the valid-pixel fractions a chip needs (template, overlap, LK), so a chip
    ``sqrt(relax)`` times larger needs the same number of valid pixels as a normal one: the
    SLC-off wedges leave 40-60 % gaps in both images near the scene edges, where a fraction
    rule rejects every chip size alike.
    """
    surf = correlate.correlation_surfaces(ma, mb, r0, c0, centre_dy, centre_dx, chip=params.chip,
                                          search=search, matcher=params.matcher,
                                          max_nodata=1 - (1 - params.max_nodata) / relax,
                                          min_overlap=0.5 / relax, threads=params.threads)
    dy, dx, peak, snr, _ = correlate.integer_peaks(surf, params.threads)
    ry, rx, se, strained = _refine(a, b, r0, c0, dy, dx, params,
                                   correlate.MIN_LK_VALID / relax)
    return ry, rx, peak, snr, se, strained


def _refine(a, b, r0, c0, dy, dx, params: TrackParams, min_valid):
    """Lucas-Kanade with the wide window, then the strain-adaptive narrow window (see
    :class:`TrackParams`). Returns dy, dx, standard error and the narrow-window flag."""
    a = np.asarray(a, np.float32)
    grad = (filter_kernel.gradient(a, threads=params.threads) if filter_kernel.AVAILABLE
            else np.gradient(a))
    refined = correlate.refine_lk(a, b, r0, c0, dy, dx, chip=params.chip,
                                  iterations=params.lk_iterations, window=params.lk_window,
                                  threads=params.threads, sigma=True, min_valid=min_valid,
                                  gradient=grad)
    ry, rx, se = refined
    strained = np.zeros(ry.shape, bool)
    if params.lk_narrow:
        sw = se
        # Two iterations suffice: the narrow pass starts from the wide pass's estimate.
        ny_, nx_, sn = correlate.refine_lk(a, b, r0, c0, ry, rx, chip=params.chip,
                                           iterations=2, window=params.lk_narrow,
                                           threads=params.threads, sigma=True,
                                           min_valid=min_valid, gradient=grad)
        with np.errstate(invalid="ignore"):
            noise = np.sqrt(np.maximum(sn * sn - sw * sw, 0))
            strained = np.hypot(ny_ - ry, nx_ - rx) > params.lk_switch * noise
        ry, rx = np.where(strained, ny_, ry), np.where(strained, nx_, rx)
        se = np.where(strained, sn, sw)
    return ry, rx, se, strained


def _oversampled(img: np.ndarray, f: int) -> np.ndarray:
    """``img`` on an f-times finer grid: pixel i of ``img`` covers pixels f*i .. f*i + f - 1.

    Cubic spline on pixel areas (``grid_mode``), so the template of origin r0 and size chip
    becomes origin f*r0 and size f*chip, and offsets scale by f exactly. Nodata stays NaN.
    """
    valid = np.isfinite(img)
    z = ndimage.zoom(np.where(valid, img, 0).astype(np.float32), f, order=3, grid_mode=True,
                     mode="grid-mirror")
    if not valid.all():
        z[~np.repeat(np.repeat(valid, f, 0), f, 1)] = np.nan
    return z


def clean_field(field: NodeField, params: TrackParams) -> NodeField:
    """Quality thresholds, normalised median test and optional gap filling on the node grid."""
    dy, dx = field.dy.copy(), field.dx.copy()
    matched = np.isfinite(dy) & np.isfinite(dx)
    weak = matched & ((field.peak < params.min_peak) | (field.snr < params.min_snr))
    dy[weak] = dx[weak] = np.nan
    outlier = filters.normalized_median_test(dx, dy, radius=1, threshold=params.median_threshold,
                                             eps=params.median_eps, threads=params.threads)
    dy[outlier] = dx[outlier] = np.nan
    filled = np.zeros(dy.shape, bool)
    if params.fill_gaps:
        dx, dy, filled = filters.fill_small_gaps(dx, dy)
    valid = np.isfinite(dx) & np.isfinite(dy)
    flags = {"matched": int(matched.sum()), "weak": int(weak.sum()),
             "outliers": int(outlier.sum()), "filled": int(filled.sum()),
             "valid": int(valid.sum()), "nodes": int(dy.size)}
    return replace(field, dy=dy, dx=dx, valid=valid, filled=filled, flags=flags)


def track_pair(ref: np.ndarray, sec: np.ndarray, params: TrackParams = TrackParams(),
               prior: tuple[np.ndarray, np.ndarray] | None = None) -> NodeField:
    """Track features from ``ref`` to ``sec`` (same grid, NaN = nodata) on the node grid.

    Parameters
    ----------
    ref, sec : 2-D arrays of the same shape.
    prior : optional (dy, dx) node arrays in px (e.g. from a reference velocity); they set the
        search centres instead of the coarse pass.

    Returns
    -------
    NodeField with dy, dx (px), peak, snr, valid, filled on ``node_shape(ref.shape, step)``.

    Examples
    --------
    >>> from cryokit.synthetic import make_uniform_shift_pair
    >>> a, b = make_uniform_shift_pair((192, 192), dx=2.3, dy=-1.6, seed=1)   # doctest: +SKIP
    >>> f = track_pair(a, b, TrackParams(step=32, search=6))                  # doctest: +SKIP
    >>> float(np.nanmedian(f.dx)), float(np.nanmedian(f.dy))                  # doctest: +SKIP
    (2.3..., -1.6...)
    """
    ref = np.asarray(ref, np.float32)
    sec = np.asarray(sec, np.float32)
    if ref.shape != sec.shape:
        raise ValueError(f"images differ in shape: {ref.shape} vs {sec.shape}")
    nodes = NodeGrid.of(ref.shape, params)
    ny, nx = nodes.shape
    centres, search = search_centres(ref, sec, (ny, nx), params, prior)
    R, C = nodes.mesh()
    dy, dx, peak, snr, narrow = match_window(ref, sec, R.ravel(), C.ravel(),
                                             centres[0].ravel(), centres[1].ravel(), params,
                                             search)
    field = NodeField(dy.reshape(ny, nx), dx.reshape(ny, nx), peak.reshape(ny, nx),
                      snr.reshape(ny, nx), narrow=narrow.reshape(ny, nx))
    return clean_field(field, params)


def search_centres(ref, sec, nodes, params: TrackParams, prior=None, small=None):
    """Integer search centres for every node and the fine search radius.

    From ``prior`` (rounded) when given, else from the coarse pass when ``search`` exceeds
    ``fine_search``, else zero with the full ``search`` radius. ``small`` may hold the pair
    already decimated (as read from overviews of files too large to hold).
    """
    if prior is not None:
        cy, cx = (np.rint(_fill_all(np.asarray(p, float))).astype(np.int64) for p in prior)
        return (cy, cx), params.fine_search
    if params.search <= params.fine_search or min(nodes) < 3:
        z = np.zeros(nodes, np.int64)
        return (z, z), params.search
    if small is None:
        small = tuple(decimate(im, params.coarse_factor, params.threads) for im in (ref, sec))
    return coarse_offsets(small[0], small[1], nodes, params), params.fine_search
