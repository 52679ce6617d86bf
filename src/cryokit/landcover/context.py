"""Spatial-context features: local mean and local standard deviation of each band.

A per-pixel classifier sees one pixel's spectrum; land-cover mapping commonly adds its
neighbourhood (texture and context measures, of which the local mean and standard deviation
are the simplest; Haralick et al. 1973 for the grey-level co-occurrence family).  Roads and
field edges are texture (a high local standard deviation), and the local mean stabilises
mixed pixels.  For each window side ``s``
of ``sizes`` (odd, in pixels), :func:`context_features` adds, per band, the mean and the
standard deviation of the valid pixels in the ``s x s`` window centred on each pixel.

NaN-aware: NaN pixels (nodata, or outside the raster) neither contribute nor receive a value;
a pixel NaN in a band is NaN in its context bands, so context never changes which pixels are
nodata.  Block-safe: a pixel's context depends only on pixels within :func:`halo` of it, and
outside the raster counts as NaN, so a block grown by the halo (padded with NaN beyond the
raster edge) and cropped gives exactly the full-image result
(:func:`cryokit.landcover.features.compute_window` does this).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.ndimage import uniform_filter

#: Local statistics per window side, in output order.
CONTEXT_STATS = ("mean", "std")


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """Window sides as a sorted tuple of distinct odd integers >= 3 (ValueError otherwise).

    Examples
    --------
    >>> check_sizes([5, 3])
    (3, 5)
    """
    out = tuple(sorted({int(s) for s in sizes}))
    bad = [s for s in out if s < 3 or s % 2 == 0]
    if bad or any(int(s) != s for s in sizes):
        raise ValueError(f"context window sides must be odd integers >= 3, got {list(sizes)}")
    return out


def halo(sizes: Sequence[int]) -> int:
    """Margin in pixels a block needs for windows of ``sizes`` (0 for none).

    Examples
    --------
    >>> halo(()), halo((3, 5))
    (0, 2)
    """
    return max((int(s) // 2 for s in sizes), default=0)


def context_names(names: Sequence[str], sizes: Sequence[int]) -> list[str]:
    """Names of the context bands of :func:`context_features`, in its order: for each window
    side, the local means of every band, then their local standard deviations.

    Examples
    --------
    >>> context_names(["NDVI", "B04"], [3])
    ['NDVI_mean3x3', 'B04_mean3x3', 'NDVI_std3x3', 'B04_std3x3']
    """
    return [f"{n}_{st}{s}x{s}" for s in sizes for st in CONTEXT_STATS for n in names]


def context_features(stack: np.ndarray, sizes: Sequence[int] = (3, 5)) -> np.ndarray:
    """Local mean and standard deviation of each band over square windows, ignoring NaN.

    Parameters
    ----------
    stack : ndarray (n_bands, rows, cols)
        Features; NaN = nodata.  The raster edge is treated like nodata (no mirrored values).
    sizes : window sides in pixels (odd, >= 3).

    Returns
    -------
    ndarray float32 (2 * len(sizes) * n_bands, rows, cols) in :func:`context_names` order.
    The standard deviation is the population one (divide by the valid count) and is in the
    band's units, like the mean.  NaN where the band itself is NaN.

    Examples
    --------
    >>> a = np.array([[[1, 2, 3], [4, 5, 6], [7, 8, np.nan]]])
    >>> c = context_features(a, [3])
    >>> float(c[0, 1, 1]), float(c[0, 0, 0])     # means: all 8 valid pixels; 1, 2, 4, 5
    (4.5, 3.0)
    >>> round(float(c[1, 0, 0]), 4), bool(np.isnan(c[1, 2, 2]))
    (1.5811, True)
    """
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise ValueError(f"stack must be (n_bands, rows, cols), got shape {stack.shape}")
    sizes = check_sizes(sizes)
    n = stack.shape[0]
    out = np.empty((2 * len(sizes) * n, *stack.shape[1:]), np.float32)
    # Float64 because var = E[x^2] - E[x]^2 cancels badly for large values with small spread
    # (elevation in metres); one band at a time keeps the float64 temporaries small.
    for b in range(n):
        x = np.asarray(stack[b], np.float64)
        ok = np.isfinite(x)
        w = ok.astype(np.float64)
        x0 = np.where(ok, x, 0.0)
        for k, s in enumerate(sizes):
            kw = dict(size=s, mode="constant", cval=0.0)
            cnt = uniform_filter(w, **kw)
            # uniform_filter returns window means; their ratios are the means over valid pixels
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = uniform_filter(x0, **kw) / cnt
                var = uniform_filter(x0 * x0, **kw) / cnt - mean * mean
            out[(2 * k) * n + b] = np.where(ok, mean, np.nan)
            out[(2 * k + 1) * n + b] = np.where(ok, np.sqrt(np.maximum(var, 0.0)), np.nan)
    return out


def add_context(stack: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """``stack`` followed by its :func:`context_features` (``sizes`` empty: ``stack`` as is).

    Examples
    --------
    >>> add_context(np.zeros((2, 4, 4), np.float32), [3, 5]).shape
    (10, 4, 4)
    """
    stack = np.asarray(stack, np.float32)
    if not len(sizes):
        return stack
    return np.concatenate([stack, context_features(stack, sizes)])
