"""Per-node kernels (numba): integer peaks of correlation surfaces, normalised median test.

Both run once per node on small arrays (a 9 x 9 surface, a 3 x 3 or 5 x 5 neighbourhood),
where numpy's whole-array passes (masked ``nanmedian``, fancy indexing over every surface)
cost more than the arithmetic: on the Yahtse pair (7 100 nodes) they took 30 ms of a 200 ms
match, serially. The numpy versions in :mod:`cryokit.velocity.correlate` and
:mod:`cryokit.velocity.filters` remain the reference and the fall-back; these agree with them
to float32 rounding (peaks) and exactly (median test).
"""

from __future__ import annotations

import math

import numpy as np

from .kernel_threads import set_threads

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a core dependency
    numba = None

AVAILABLE = numba is not None


def _peaks(v, cy, cx, search, dy, dx, peak, snr, ratio):
    n, k = v.shape[0], v.shape[1]
    for i in prange(n):
        best, pr, pc = -np.inf, 0, 0
        total, count = 0.0, 0
        for r in range(k):
            for c in range(k):
                x = v[i, r, c]
                if np.isfinite(x):
                    total += abs(x)
                    count += 1
                    if x > best:
                        best, pr, pc = x, r, c
        if count == 0:
            dy[i] = dx[i] = np.nan
            peak[i], snr[i], ratio[i] = np.nan, 0.0, 0.0
            continue
        second = -np.inf
        for r in range(k):
            for c in range(k):
                x = v[i, r, c]
                if (abs(r - pr) > 2 or abs(c - pc) > 2) and x > second:
                    second = x
        peak[i] = best
        s = best * count / total if total > 0 else 0.0
        snr[i] = s if np.isfinite(s) else 0.0
        q = second / best if np.isfinite(second) else 0.0
        ratio[i] = min(max(q, 0.0), 1.0) if not np.isnan(q) else 0.0
        if pr == 0 or pc == 0 or pr == k - 1 or pc == k - 1:
            dy[i] = dx[i] = np.nan
            continue
        centre = np.float32(math.log(max(v[i, pr, pc], np.float32(1e-6))))
        dy[i] = cy[i] - search + pr + _gauss3(v[i, pr - 1, pc], v[i, pr + 1, pc], centre)
        dx[i] = cx[i] - search + pc + _gauss3(v[i, pr, pc - 1], v[i, pr, pc + 1], centre)


def _gauss3(a, b, lc):
    # float32 like the numpy reference: the 3-point Gaussian fit of a peak on its neighbours.
    if np.isnan(a) or np.isnan(b):  # a masked neighbour: no fit, as in the reference
        return np.float32(0.0)
    la = np.float32(math.log(max(a, np.float32(1e-6))))
    lb = np.float32(math.log(max(b, np.float32(1e-6))))
    d = np.float32(la - np.float32(2) * lc + lb)
    if not abs(d) > 1e-12:
        return np.float32(0.0)
    off = np.float32((la - lb) / (np.float32(2) * d))
    if not np.isfinite(off):
        return np.float32(0.0)
    return min(max(off, np.float32(-0.5)), np.float32(0.5))


def _median(buf, m):
    # Insertion sort of the m first values; m <= 24 here.
    for i in range(1, m):
        x, j = buf[i], i - 1
        while j >= 0 and buf[j] > x:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = x
    h = m // 2
    return buf[h] if m % 2 else (buf[h - 1] + buf[h]) / 2.0


def _median_test(dx, dy, radius, threshold, eps, min_neighbours, bad):
    H, W = dx.shape
    for i in prange(H):
        buf = np.empty((2 * radius + 1) ** 2, np.float64)
        dev = np.empty((2 * radius + 1) ** 2, np.float64)
        for j in range(W):
            if not (np.isfinite(dx[i, j]) and np.isfinite(dy[i, j])):
                bad[i, j] = False
                continue
            r2, nx_ = 0.0, 0
            for comp in range(2):
                u = dx if comp == 0 else dy
                m = 0
                for a in range(max(i - radius, 0), min(i + radius + 1, H)):
                    for b in range(max(j - radius, 0), min(j + radius + 1, W)):
                        if (a != i or b != j) and np.isfinite(u[a, b]):
                            buf[m] = u[a, b]
                            m += 1
                if comp == 0:
                    nx_ = m
                if m == 0:
                    r2 = np.nan
                    continue
                med = _median(buf, m)
                for t in range(m):
                    dev[t] = abs(buf[t] - med)
                res = _median(dev, m)
                rc = abs(u[i, j] - med) / (res + eps)
                r2 = math.hypot(r2, rc) if comp == 1 else rc
            bad[i, j] = (r2 > threshold) or (nx_ < min_neighbours)


if AVAILABLE:
    # No fast-math: the NaN tests must survive. numpy's error model: x / 0 gives inf or NaN.
    _gauss3 = njit(cache=True, error_model="numpy")(_gauss3)
    _peaks = njit(parallel=True, cache=True, error_model="numpy")(_peaks)
    _median = njit(cache=True)(_median)
    _median_test = njit(parallel=True, cache=True, error_model="numpy")(_median_test)


def integer_peaks(values: np.ndarray, centre_dy, centre_dx, search: int, *, threads: int = 1):
    """Integer peak, 3-point Gaussian sub-pixel offset and quality of each surface.

    The kernel of :func:`cryokit.velocity.correlate.integer_peaks` (same outputs: dy, dx in px,
    NaN where no peak or the peak lies on the surface edge; peak; snr; ratio).

    Examples
    --------
    >>> v = np.full((1, 5, 5), 0.1, np.float32); v[0, 2, 3] = 0.9; v[0, 2, 2] = 0.5
    >>> dy, dx, peak, snr, ratio = integer_peaks(v, np.zeros(1, int), np.zeros(1, int), 2)
    >>> float(dy[0]), round(float(dx[0]), 3), float(peak[0])
    (0.0, 0.711, 0.8999999761581421)
    """
    v = np.ascontiguousarray(values, np.float32)
    n = v.shape[0]
    dy, dx = np.empty(n), np.empty(n)
    peak, snr, ratio = (np.empty(n, np.float32) for _ in range(3))
    set_threads(threads)
    _peaks(v, np.asarray(centre_dy, np.int64), np.asarray(centre_dx, np.int64), int(search),
           dy, dx, peak, snr, ratio)
    return dy, dx, peak, snr, ratio


def median_test(dx: np.ndarray, dy: np.ndarray, *, radius: int, threshold: float, eps: float,
                min_neighbours: int, threads: int = 1) -> np.ndarray:
    """The kernel of :func:`cryokit.velocity.filters.normalized_median_test` (same result).

    Examples
    --------
    >>> u = np.zeros((5, 5)); u[2, 2] = 4.0
    >>> median_test(u, u * 0, radius=1, threshold=3.0, eps=0.1, min_neighbours=3)[2]
    array([False, False,  True, False, False])
    """
    bad = np.empty(dx.shape, bool)
    set_threads(threads)
    _median_test(np.ascontiguousarray(dx, np.float64), np.ascontiguousarray(dy, np.float64),
                 int(radius), float(threshold), float(eps), int(min_neighbours), bad)
    return bad
