"""Image filters (numba): the separable Gaussian of the high-pass pre-filter, the NaN-aware
block mean that decimates the pair for the coarse pass, and the image gradient of the
Lucas-Kanade step.

The same filter as ``scipy.ndimage.gaussian_filter(a, sigma, mode="nearest", truncate=4.0)``
(axis 0, then axis 1; normalised Gaussian taps out to ``int(4 sigma + 0.5)`` px), in float32
and in parallel over rows: 4-5x faster than scipy's float64 line buffers on a 1 Mpx image, and
within 3e-7 of it. Each output pixel is the same sum of the same neighbours wherever the image
is cut, so tiles with the filter's radius of context reproduce the whole-image result exactly.
"""

from __future__ import annotations

import numpy as np

from .kernel_threads import set_threads

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a core dependency; scipy path remains
    numba = None

AVAILABLE = numba is not None


def taps(sigma: float) -> np.ndarray:
    """Normalised Gaussian weights at -r..r, r = int(4 sigma + 0.5) (scipy's kernel)."""
    r = int(4.0 * float(sigma) + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / float(sigma)) ** 2)
    return (w / w.sum()).astype(np.float32)


def _gauss(img, w, out):
    H, W = img.shape
    r = (w.shape[0] - 1) // 2
    tmp = np.empty((H, W), np.float32)
    for i in prange(H):
        # Taps outside (k loop outside the pixel loop) with a per-row accumulator row: the
        # pixel loop vectorises.
        for j in range(W):
            tmp[i, j] = 0.0
        for k in range(-r, r + 1):
            ii = min(max(i + k, 0), H - 1)
            wk = w[k + r]
            for j in range(W):
                tmp[i, j] += wk * img[ii, j]
    for i in prange(H):
        row = tmp[i]
        for j in range(W):
            s = np.float32(0.0)
            for k in range(-r, r + 1):
                s += w[k + r] * row[min(max(j + k, 0), W - 1)]
            out[i, j] = s


def _block_mean(img, f, out):
    h, w = out.shape
    for i in prange(h):
        for j in range(w):
            s, n = 0.0, 0
            for a in range(i * f, i * f + f):
                for b in range(j * f, j * f + f):
                    x = img[a, b]
                    if np.isfinite(x):
                        s += x
                        n += 1
            out[i, j] = s / n if n else np.nan


def _gradient(img, gy, gx):
    H, W = img.shape
    for i in prange(H):
        a, b = max(i - 1, 0), min(i + 1, H - 1)
        for j in range(W):
            gy[i, j] = (img[b, j] - img[a, j]) / np.float32(b - a)
        gx[i, 0] = img[i, 1] - img[i, 0]
        for j in range(1, W - 1):
            gx[i, j] = (img[i, j + 1] - img[i, j - 1]) / np.float32(2.0)
        gx[i, W - 1] = img[i, W - 1] - img[i, W - 2]


if AVAILABLE:
    _gradient = njit(parallel=True, cache=True)(_gradient)
    _block_mean = njit(parallel=True, cache=True, error_model="numpy")(_block_mean)
    _gauss = njit(parallel=True, cache=True,
                  fastmath={"reassoc", "contract", "nsz", "arcp"})(_gauss)


def gaussian(img: np.ndarray, sigma: float, *, threads: int = 1) -> np.ndarray:
    """Gaussian blur of a float32 image with edge pixels repeated (``mode="nearest"``).

    Examples
    --------
    >>> from scipy import ndimage
    >>> a = np.random.default_rng(0).standard_normal((40, 30)).astype(np.float32)
    >>> b = ndimage.gaussian_filter(a, 1.5, mode="nearest", truncate=4.0)
    >>> bool(np.abs(gaussian(a, 1.5) - b).max() < 1e-6)
    True
    """
    img = np.ascontiguousarray(img, np.float32)
    out = np.empty(img.shape, np.float32)
    set_threads(threads)
    _gauss(img, taps(sigma), out)
    return out


def block_mean(img: np.ndarray, factor: int, *, threads: int = 1) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` block over its finite pixels (NaN where none), in
    float64, as float32; a trailing partial block is dropped.

    Examples
    --------
    >>> a = np.arange(16, dtype=np.float32).reshape(4, 4); a[0, 0] = np.nan
    >>> block_mean(a, 2)
    array([[ 3.3333333,  4.5      ],
           [10.5      , 12.5      ]], dtype=float32)
    """
    img = np.asarray(img, np.float32)
    out = np.empty((img.shape[0] // factor, img.shape[1] // factor), np.float32)
    set_threads(threads)
    _block_mean(img, int(factor), out)
    return out


def gradient(img: np.ndarray, *, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``np.gradient`` of a float32 image (rows, then columns), bit for bit, in parallel.

    Examples
    --------
    >>> a = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    >>> all(np.array_equal(u, v) for u, v in zip(gradient(a), np.gradient(a)))
    True
    """
    img = np.ascontiguousarray(img, np.float32)
    if min(img.shape) < 2:
        return tuple(np.gradient(img))
    gy, gx = np.empty(img.shape, np.float32), np.empty(img.shape, np.float32)
    set_threads(threads)
    _gradient(img, gy, gx)
    return gy, gx
