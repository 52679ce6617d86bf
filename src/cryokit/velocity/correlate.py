"""Chip matching: correlation surfaces for many nodes, integer and sub-pixel peaks.

Conventions: images are 2-D float32 arrays with NaN as nodata. A node is matched by taking the
``chip`` x ``chip`` template whose top-left pixel is (r0, c0) in REF and searching SEC over
integer offsets ``centre ± search`` (rows, columns). Offsets are in pixels, x = columns to the
right, y = rows downward: a feature at (r, c) in REF is found at (r + dy, c + dx) in SEC.

NCC surfaces of gap-free chips come from a fused numba kernel (:mod:`.ncc_kernel`, direct sums
in parallel over nodes); orientation correlation, and NCC with ``engine="reference"``, use
OpenCV's ``matchTemplate`` (one call per node, no Python loop over surface pixels). Chips that
touch nodata use a batched masked NCC in the Fourier domain (Padfield 2012) so that gaps are left out rather than filled.
Sub-pixel positions come from a 3-point Gaussian fit refined by a masked, normalised
Lucas-Kanade iteration on the chips themselves, which removes the pixel-locking bias of
peak-fitting (a few hundredths of a pixel on textured ice).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft

from . import lk_kernel, ncc_kernel, node_kernels

from .params import MATCHERS  # noqa: F401 - the names of the matchers
MIN_LK_VALID = 0.25


@dataclass
class Surfaces:
    """Correlation surfaces of N nodes: ``values`` (N, 2S+1, 2S+1); offset of [0, 0] is
    (centre_dy - S, centre_dx - S)."""

    values: np.ndarray
    centre_dy: np.ndarray
    centre_dx: np.ndarray
    search: int


def window_counts(mask: np.ndarray, r0, c0, h: int, w: int, outside: bool = True) -> np.ndarray:
    """Number of True pixels of ``mask`` in the h x w windows with top-left (r0, c0).

    Windows may extend past the array; pixels outside count as True when ``outside``.
    O(1) per window through a summed-area table.
    """
    H, W = mask.shape
    r0, c0 = np.asarray(r0), np.asarray(c0)
    ra, rb = np.clip(r0, 0, H), np.clip(r0 + h, 0, H)
    ca, cb = np.clip(c0, 0, W), np.clip(c0 + w, 0, W)
    if mask.any():
        sat = np.zeros((H + 1, W + 1), np.int64)
        sat[1:, 1:] = mask.cumsum(0).cumsum(1)
        inside = sat[rb, cb] - sat[ra, cb] - sat[rb, ca] + sat[ra, ca]
    else:  # gap-free images, the common case: no table to build
        inside = np.zeros(np.broadcast(r0, c0).shape, np.int64)
    if not outside:
        return inside
    return inside + h * w - (rb - ra) * (cb - ca)


def extract(img: np.ndarray, r0, c0, h: int, w: int) -> np.ndarray:
    """Stack of h x w windows with top-left (r0, c0): (N, h, w[, channels]) copy, NaN outside."""
    pad = max(0, -int(np.min(r0, initial=0)), -int(np.min(c0, initial=0)),
              int(np.max(np.asarray(r0) + h, initial=0)) - img.shape[0],
              int(np.max(np.asarray(c0) + w, initial=0)) - img.shape[1])
    if pad:
        widths = ((pad, pad), (pad, pad)) + ((0, 0),) * (img.ndim - 2)
        img = np.pad(img, widths, constant_values=np.nan if img.dtype.kind == "f" else 0)
    shape = (h, w) if img.ndim == 2 else (h, w, img.shape[2])
    view = sliding_window_view(img, shape)
    if img.ndim == 3:
        view = view[:, :, 0]
    return view[np.asarray(r0) + pad, np.asarray(c0) + pad]


def _chunks(n: int, size: int):
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _map(fn, ranges, threads):
    if threads > 1 and len(ranges) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fn, ranges))
    else:
        for r in ranges:
            fn(r)


def masked_ncc(tpl: np.ndarray, srch: np.ndarray, min_overlap: float = 0.5) -> np.ndarray:
    """Masked normalised cross-correlation (Padfield 2012) of N templates in N search windows.

    NaN pixels in either are left out of every sum. Offsets where fewer than ``min_overlap``
    of the template's pixels overlap valid search pixels are NaN.

    Parameters
    ----------
    tpl : (N, C, C) array; srch : (N, M, M) array with M >= C.

    Returns
    -------
    (N, M - C + 1, M - C + 1) float32 NCC, entry [a, b] for the template placed at (a, b).
    """
    c = tpl.shape[1]
    m = srch.shape[1]
    k = m - c + 1
    mt = np.isfinite(tpl).astype(np.float64)
    ms = np.isfinite(srch).astype(np.float64)
    t = np.where(mt > 0, tpl, 0).astype(np.float64)
    s = np.where(ms > 0, srch, 0).astype(np.float64)
    shape = (m, m)
    F = lambda a: fft.rfft2(a, s=shape)  # noqa: E731
    Ft = [np.conj(F(x)) for x in (mt, t, t * t)]
    Fs = [F(x) for x in (ms, s, s * s)]
    xc = lambda a, b: fft.irfft2(a * b, s=shape)[:, :k, :k]  # noqa: E731
    overlap = xc(Ft[0], Fs[0])
    sum_t, sum_s = xc(Ft[1], Fs[0]), xc(Ft[0], Fs[1])
    sum_t2, sum_s2 = xc(Ft[2], Fs[0]), xc(Ft[0], Fs[2])
    cross = xc(Ft[1], Fs[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        num = cross - sum_t * sum_s / overlap
        den = (sum_t2 - sum_t ** 2 / overlap) * (sum_s2 - sum_s ** 2 / overlap)
        out = num / np.sqrt(np.maximum(den, 0))
    ok = (overlap >= min_overlap * mt.sum((1, 2))[:, None, None] - 0.5) & (den > 1e-12)
    return np.where(ok, np.clip(out, -1, 1), np.nan).astype(np.float32)


def correlation_surfaces(ref: np.ndarray, sec: np.ndarray, r0, c0, centre_dy, centre_dx, *,
                         chip: int, search: int, matcher: str = "ncc",
                         max_nodata: float = 0.3, min_overlap: float = 0.5,
                         threads: int = 1, engine: str = "auto") -> Surfaces:
    """Correlation surfaces of every node over integer offsets ``centre ± search``.

    Parameters
    ----------
    ref, sec : 2-D float32 images (pre-filtered) with NaN as nodata; for ``matcher='oc'``,
        the (H, W, 2) orientation fields of :func:`cryokit.velocity.filters.orientation`.
    r0, c0 : (N,) int, top-left pixel of each template in REF.
    centre_dy, centre_dx : (N,) int, centre of the search in SEC relative to the template.
    max_nodata : nodes whose template has more than this fraction of nodata get a NaN surface.
    min_overlap : for chips with nodata, offsets where fewer than this fraction of the
        template's valid pixels meet valid search pixels are NaN (:func:`masked_ncc`).
    engine : "auto" (the numba NCC kernel for gap-free chips where numba is installed) or
        "reference" (OpenCV ``matchTemplate`` for every chip, what the kernel is checked against).

    Returns
    -------
    Surfaces with values (N, 2 search + 1, 2 search + 1), NaN where not computed.
    """
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r}; choose from {MATCHERS}")
    r0, c0 = np.asarray(r0, np.int64), np.asarray(c0, np.int64)
    cy, cx = np.asarray(centre_dy, np.int64), np.asarray(centre_dx, np.int64)
    n, m, k = len(r0), chip + 2 * search, 2 * search + 1
    out = np.full((n, k, k), np.nan, np.float32)
    sr0, sc0 = r0 + cy - search, c0 + cx - search
    if matcher == "oc":
        bad_ref = ~np.any(ref != 0, axis=-1)
        bad_sec = ~np.any(sec != 0, axis=-1)
    else:
        bad_ref, bad_sec = ~np.isfinite(ref), ~np.isfinite(sec)
    gaps_t = window_counts(bad_ref, r0, c0, chip, chip)
    gaps_s = window_counts(bad_sec, sr0, sc0, m, m, outside=False)
    usable = gaps_t <= max_nodata * chip * chip
    # Search windows running off the image are cropped (exact NCC on the offsets where the
    # template lies inside); nodata inside the image needs the masked correlation.
    H, W = sec.shape[:2]
    ya, yb = np.maximum(sr0, 0), np.minimum(sr0 + m, H)
    xa, xb = np.maximum(sc0, 0), np.minimum(sc0 + m, W)
    fits = (yb - ya >= chip) & (xb - xa >= chip)
    if matcher == "ncc":
        clean = usable & (gaps_t == 0) & (gaps_s == 0) & fits
        masked = np.flatnonzero(usable & ~clean)
    else:  # zero vectors (nodata, outside) drop out of the orientation correlation
        clean, masked = usable, np.array([], np.int64)
    fused = matcher == "ncc" and ncc_kernel.AVAILABLE and engine != "reference"
    if matcher == "ncc" and clean.any() and not fused:  # flat: no defined correlation
        j = np.flatnonzero(clean)
        clean[j[np.nanstd(extract(ref, r0[j], c0[j], chip, chip), axis=(1, 2)) < 1e-9]] = False
    idx = np.flatnonzero(clean)
    t_inside = (r0 >= 0) & (c0 >= 0) & (r0 + chip <= ref.shape[0]) & (c0 + chip <= ref.shape[1])
    method = cv2.TM_CCOEFF_NORMED if matcher == "ncc" else cv2.TM_CCORR_NORMED

    def run_clean(rng):
        for i in idx[rng[0]:rng[1]]:
            if t_inside[i]:
                t = ref[r0[i]:r0[i] + chip, c0[i]:c0[i] + chip]
            else:
                t = np.nan_to_num(extract(ref, r0[i:i + 1], c0[i:i + 1], chip, chip)[0])
            if fits[i]:
                res = cv2.matchTemplate(sec[ya[i]:yb[i], xa[i]:xb[i]], t, method)
                oy, ox = ya[i] - sr0[i], xa[i] - sc0[i]
                out[i, oy:oy + res.shape[0], ox:ox + res.shape[1]] = res
            else:  # orientation only: zero vectors outside the image carry no weight
                s = np.nan_to_num(extract(sec, sr0[i:i + 1], sc0[i:i + 1], m, m)[0])
                out[i] = cv2.matchTemplate(s, t, method)

    if fused:  # the kernel leaves flat templates NaN itself
        ncc_kernel.surfaces(ref, sec, r0, c0, sr0, sc0, idx, out, chip=chip, threads=threads)
    else:
        _map(run_clean, _chunks(len(idx), 512), threads)

    def run_masked(rng):
        j = masked[rng[0]:rng[1]]
        out[j] = masked_ncc(extract(ref, r0[j], c0[j], chip, chip),
                            extract(sec, sr0[j], sc0[j], m, m), min_overlap)

    if fused and masked.size:  # direct sums: 5-12x faster than per-node FFTs at these sizes
        ncc_kernel.masked_surfaces(ref, sec, r0, c0, sr0, sc0, masked, out, chip=chip,
                                   min_overlap=min_overlap, threads=threads)
    else:
        _map(run_masked, _chunks(len(masked), 256), threads)
    return Surfaces(out, cy, cx, search)


def integer_peaks(surf: Surfaces, threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                              np.ndarray, np.ndarray]:
    """Integer peak of each surface with 3-point Gaussian sub-pixel estimate and quality.

    Returns
    -------
    dy, dx : float offsets (NaN where no peak or the peak lies on the surface edge, where the
        true maximum may be outside the search).
    peak : the correlation at the peak.
    snr : peak over mean absolute correlation of the surface (ImGRAFT's signal-to-noise).
    ratio : second-highest peak (outside +-2 px) over the highest, 0 (unique) .. 1 (ambiguous).
    """
    if node_kernels.AVAILABLE:  # the same per node, 15-20x faster than these array passes
        return node_kernels.integer_peaks(surf.values, surf.centre_dy, surf.centre_dx,
                                          surf.search, threads=threads)
    v = surf.values
    n, k, _ = v.shape
    flat = np.where(np.isfinite(v), v, -np.inf).reshape(n, -1)
    best = flat.argmax(1)
    pr, pc = best // k, best % k
    rows = np.arange(n)
    peak = flat[rows, best]
    ok = np.isfinite(peak) & (pr > 0) & (pc > 0) & (pr < k - 1) & (pc < k - 1)
    prc, pcc = np.clip(pr, 1, k - 2), np.clip(pc, 1, k - 2)

    def gauss(a, b, c):
        la, lb, lc = (np.log(np.maximum(x, 1e-6)) for x in (a, b, c))
        d = la - 2 * lc + lb
        with np.errstate(invalid="ignore", divide="ignore"):
            off = np.where(np.abs(d) > 1e-12, (la - lb) / (2 * d), 0.0)
        return np.clip(np.nan_to_num(off), -0.5, 0.5)

    c = v[rows, prc, pcc]
    fy = gauss(v[rows, prc - 1, pcc], v[rows, prc + 1, pcc], c)
    fx = gauss(v[rows, prc, pcc - 1], v[rows, prc, pcc + 1], c)
    dy = np.where(ok, surf.centre_dy - surf.search + prc + fy, np.nan)
    dx = np.where(ok, surf.centre_dx - surf.search + pcc + fx, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        absv = np.abs(v).reshape(n, -1)
        fin = np.isfinite(absv)
        snr = peak * np.maximum(fin.sum(1), 1) / np.where(fin, absv, 0).sum(1)
        yy, xx = np.mgrid[0:k, 0:k]
        far = (np.abs(yy[None] - pr[:, None, None]) > 2) | (np.abs(xx[None] - pc[:, None, None]) > 2)
        second = np.where(far.reshape(n, -1), flat, -np.inf).max(1)
        ratio = np.clip(np.where(np.isfinite(second), second / peak, 0.0), 0, 1)
    peak = np.where(np.isfinite(peak), peak, np.nan)
    return dy, dx, peak.astype(np.float32), np.nan_to_num(snr, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), ratio.astype(np.float32)


def _lanczos3(frac: np.ndarray) -> np.ndarray:
    """(N, 6) Lanczos-3 weights for taps at -2..3 around floor(x), normalised to sum 1."""
    x = frac[:, None] - np.arange(-2, 4)[None, :]
    w = np.sinc(x) * np.sinc(x / 3.0)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def shifted_chips(img: np.ndarray, r0, c0, dy, dx, chip: int) -> np.ndarray:
    """Chips of ``img`` at top-left (r0 + dy, c0 + dx), sub-pixel, by separable Lanczos-3.

    Exact per-chip weights (no fixed-point position tables as in ``cv2.remap``), so sub-pixel
    positions are not quantised. Near nodata the kernel is renormalised over the valid taps
    (normalised convolution): a sample is NaN only when one of its four nearest pixels is NaN
    or the valid taps carry too little weight. Rejecting every sample whose 6 x 6 support
    touched NaN widened each SLC-off stripe by 5 px and cost a third of the valid nodes.
    """
    iy, ix = np.floor(dy).astype(np.int64), np.floor(dx).astype(np.int64)
    wy, wx = _lanczos3(dy - iy), _lanczos3(dx - ix)
    win = extract(img, np.asarray(r0) + iy - 2, np.asarray(c0) + ix - 2, chip + 5, chip + 5)

    def sep(a, wy, wx):
        tmp = sum(wx[:, k, None, None] * a[:, :, k:k + chip] for k in range(6))
        return sum(wy[:, k, None, None] * tmp[:, k:k + chip, :] for k in range(6))

    bad = np.isnan(win)
    holed = np.flatnonzero(bad.any((1, 2)))
    if holed.size == 0:
        return sep(win, wy, wx)
    # Per chip, not per batch, so a chip's samples do not depend on which others share its
    # batch (tiled runs must equal the serial run bit for bit).
    out = sep(np.where(bad, np.float32(0), win), wy, wx)
    w, g = wy[holed], wx[holed]
    good = ~bad[holed]
    norm = sep(good.astype(np.float32), w, g)
    near = (good[:, 2:2 + chip, 2:2 + chip] & good[:, 3:3 + chip, 2:2 + chip]
            & good[:, 2:2 + chip, 3:3 + chip] & good[:, 3:3 + chip, 3:3 + chip])
    with np.errstate(invalid="ignore", divide="ignore"):
        out[holed] = np.where(near & (norm > 0.75), out[holed] / norm, np.float32(np.nan))
    return out


def refine_lk(ref: np.ndarray, sec: np.ndarray, r0, c0, dy, dx, *, chip: int, iterations: int = 4,
              max_move: float = 1.0, tol: float = 2e-3, window: float | None = None,
              threads: int = 1, chunk: int = 1024, sigma: bool = False,
              min_valid: float = MIN_LK_VALID, gradient=None, engine: str = "auto"):
    """Sub-pixel refinement by masked, normalised Lucas-Kanade (inverse compositional).

    Minimises sum w (norm(SEC(x + d)) - norm(REF(x)))^2 over each chip, where norm removes the
    chip's weighted mean and standard deviation (so brightness and contrast changes between dates
    do not bias the result) and w excludes nodata in either image. SEC is resampled with
    Lanczos-3 (:func:`shifted_chips`). Starting values come from the correlation peak; nodes stop
    iterating once their update is below ``tol`` px. A node with fewer than ``min_valid`` of
    its chip's pixels valid in both images, that moves more than ``max_move`` px from its
    start, or whose system is singular, is NaN. ``gradient`` may pass ``np.gradient(ref)``
    when several calls share one reference; ``engine="reference"`` runs the numpy code the
    numba kernel (the default where numba is installed) is checked against. With ``sigma=True`` a third array
    holds each node's standard error (px, radial) from the residual of its last iteration:
    sqrt(var(residual) * trace(H^-1)), the Cramer-Rao bound of a least-squares shift.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> from scipy import ndimage
    >>> a = ndimage.gaussian_filter(rng.standard_normal((80, 80)), 2).astype(np.float32)
    >>> b = ndimage.shift(a, (0.3, -0.4), order=5).astype(np.float32)   # features move +0.3, -0.4
    >>> y, x = refine_lk(a, b, [24], [24], np.array([0.0]), np.array([0.0]), chip=32)
    >>> bool(abs(y[0] - 0.3) < 0.01 and abs(x[0] + 0.4) < 0.01)
    True
    """
    r0, c0 = np.asarray(r0, np.int64), np.asarray(c0, np.int64)
    dy = np.asarray(dy, np.float64)
    dx = np.asarray(dx, np.float64)
    out_y, out_x = np.full_like(dy, np.nan), np.full_like(dx, np.nan)
    out_s = np.full_like(dy, np.nan)
    todo = np.flatnonzero(np.isfinite(dy) & np.isfinite(dx))
    ref = np.asarray(ref, np.float32)
    sec = np.asarray(sec, np.float32)
    gy, gx = np.gradient(ref) if gradient is None else gradient
    need = min_valid * chip * chip
    taper = np.ones((chip, chip), np.float32)
    if window:
        g = np.exp(-0.5 * ((np.arange(chip) - (chip - 1) / 2) / (window * chip)) ** 2)
        taper = np.outer(g, g).astype(np.float32)

    if lk_kernel.AVAILABLE and engine != "reference":
        y, x, s = lk_kernel.refine(ref, sec, gx, gy, r0, c0, dy, dx, chip=chip, taper=taper,
                                   iterations=iterations, tol=tol, need=need,
                                   max_move=max_move, threads=threads)
        return (y, x, s) if sigma else (y, x)

    def run(rng):
        j = todo[rng[0]:rng[1]]
        if len(j) == 0:
            return
        t = extract(ref, r0[j], c0[j], chip, chip)
        tx, ty = extract(gx, r0[j], c0[j], chip, chip), extract(gy, r0[j], c0[j], chip, chip)
        base = np.isfinite(t) & np.isfinite(tx) & np.isfinite(ty)
        py, px = dy[j].copy(), dx[j].copy()
        se = np.full(len(j), np.nan)
        ok = np.ones(len(j), bool)
        act = np.arange(len(j))          # nodes still iterating
        for _ in range(iterations):
            samp = shifted_chips(sec, r0[j[act]], c0[j[act]], py[act], px[act], chip)
            w = base[act] & np.isfinite(samp)
            cnt = w.sum((1, 2))
            wt = w * taper
            inv = (1.0 / np.maximum(wt.sum((1, 2)), 1e-6)).astype(np.float32)[:, None, None]
            sw = np.sqrt(wt)

            def centred(a):
                a = np.where(w, a, np.float32(0))
                a -= (a * wt).sum((1, 2))[:, None, None] * inv
                a *= sw
                return a

            tn, sn = centred(t[act]), centred(samp)
            with np.errstate(invalid="ignore", divide="ignore"):
                tsd = np.sqrt((tn * tn).sum((1, 2)) * inv[:, 0, 0])[:, None, None]
                ssd = np.sqrt((sn * sn).sum((1, 2)) * inv[:, 0, 0])[:, None, None]
                sn *= tsd / ssd
                sn -= tn                     # residual in REF's contrast
                gxw, gyw = centred(tx[act]), centred(ty[act])
                hxx, hyy = (gxw * gxw).sum((1, 2)), (gyw * gyw).sum((1, 2))
                hxy = (gxw * gyw).sum((1, 2))
                bx, by = (gxw * sn).sum((1, 2)), (gyw * sn).sum((1, 2))
                det = hxx * hyy - hxy * hxy
                ux = (hyy * bx - hxy * by) / det
                uy = (hxx * by - hxy * bx) / det
            good = (cnt >= need) & np.isfinite(ux) & np.isfinite(uy) & (det > 1e-12)
            if sigma:
                with np.errstate(invalid="ignore", divide="ignore"):
                    se[act] = np.sqrt((sn * sn).sum((1, 2)) * inv[:, 0, 0] * (hxx + hyy) / det)
            ok[act[~good]] = False
            px[act] -= np.where(good, ux, 0)
            py[act] -= np.where(good, uy, 0)
            act = act[good & (np.hypot(ux, uy) >= tol)]
            if act.size == 0:
                break
        ok &= (np.abs(py - dy[j]) <= max_move) & (np.abs(px - dx[j]) <= max_move)
        out_y[j] = np.where(ok, py, np.nan)
        out_x[j] = np.where(ok, px, np.nan)
        out_s[j] = np.where(ok, se, np.nan)

    _map(run, _chunks(len(todo), chunk), threads)
    return (out_y, out_x, out_s) if sigma else (out_y, out_x)
