"""Spatial regularisation of a class-probability stack before the arg-max.

Per-pixel classifiers leave isolated misclassified pixels ("salt and pepper") inside
homogeneous parcels; mature land-cover products remove them by filtering the class
probabilities (or the map) in a small neighbourhood.  :func:`smooth_proba` filters each class
probability with a Gaussian of ``sigma`` pixels as a *normalised* convolution over the valid
pixels: nodata pixels neither contribute nor receive a value, and the raster edge behaves
like a nodata border (no mirrored or zero-padded probabilities).

Block-safe: a pixel's result depends only on pixels within :func:`halo` ``(sigma)`` of it, so
classifying a window grown by that halo and cropping it gives exactly the full-image result
(:func:`cryokit.landcover.product.predict_block` does this).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

#: Gaussian kernel radius in standard deviations (scipy's ``truncate``).
TRUNCATE = 3.0


def halo(sigma: float) -> int:
    """Kernel radius in pixels for ``sigma`` (0 when no smoothing): the margin a block needs.

    Examples
    --------
    >>> halo(0), halo(1.0), halo(1.5)
    (0, 3, 5)
    """
    return int(TRUNCATE * float(sigma) + 0.5) if sigma and sigma > 0 else 0


def smooth_proba(proba: np.ndarray, sigma: float, valid: np.ndarray | None = None) -> np.ndarray:
    """Gaussian-filter a class-probability stack over the valid pixels.

    Parameters
    ----------
    proba : ndarray (n_classes, rows, cols)
        Class probabilities (any values at invalid pixels).
    sigma : float
        Standard deviation in pixels; 0 returns ``proba`` unchanged (as float32).
    valid : ndarray of bool (rows, cols), optional
        Pixels with a prediction; default all.  Invalid pixels are set to 0 in the output.

    Returns
    -------
    ndarray float32 (n_classes, rows, cols); at each valid pixel the weighted mean of the
    valid pixels' probabilities within :func:`halo` ``(sigma)``, so each pixel still sums to 1.

    Examples
    --------
    One pixel of class 1 inside a field of class 0 takes its neighbours' class:

    >>> p = np.zeros((2, 5, 5), np.float32); p[0] = 0.8; p[1] = 0.2
    >>> p[:, 2, 2] = 0.3, 0.7
    >>> int(smooth_proba(p, 1.0).argmax(axis=0)[2, 2]), int(p.argmax(axis=0)[2, 2])
    (0, 1)
    >>> np.allclose(smooth_proba(p, 1.0).sum(axis=0), 1)
    True
    """
    proba = np.asarray(proba, np.float32)
    if proba.ndim != 3:
        raise ValueError(f"proba must be (n_classes, rows, cols), got shape {proba.shape}")
    if not sigma or sigma <= 0:
        return proba
    w = (np.ones(proba.shape[1:], np.float32) if valid is None
         else np.asarray(valid, bool).astype(np.float32))
    kw = dict(sigma=float(sigma), mode="constant", cval=0.0, truncate=TRUNCATE)
    den = gaussian_filter(w, **kw)
    num = gaussian_filter(proba * w, axes=(1, 2), **kw)
    return np.where(w > 0, num / np.maximum(den, 1e-12), 0).astype(np.float32)


def sieve(proba: np.ndarray, mmu: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Arg-max class index per pixel with patches smaller than ``mmu`` pixels removed.

    Patches are 8-connected pixels of one arg-max class; a pixel of a patch with fewer than
    ``mmu`` pixels takes its next most probable class (one pass).  Thin but long features
    (roads, streams) are large 8-connected patches and survive, unlike with a Gaussian.

    Parameters
    ----------
    proba : ndarray (n_classes, rows, cols)
    mmu : int
        Minimum mapping unit in pixels; <= 1 returns the plain arg-max.
    valid : ndarray of bool (rows, cols), optional
        Pixels with a prediction; others get index -1 and belong to no patch.

    Returns
    -------
    ndarray int64 (rows, cols) of class indices (into the first axis of ``proba``).

    Block-safe with a halo of ``mmu`` pixels: a patch that reaches a block's core from outside
    the halo has at least ``mmu`` pixels inside the grown window, so it is kept there too.
    GDAL's sieve (:func:`rasterio.features.sieve`) is not used: it merges a small patch into
    its largest neighbour, whose size inside a block depends on where the block is cut, so a
    map made by blocks would depend on the block size (measured on the product's block test).

    Examples
    --------
    >>> p = np.zeros((2, 4, 6), np.float32); p[0] = 0.9; p[1] = 0.1
    >>> p[:, 1, 1] = 0.4, 0.6                 # a lone pixel of class 1
    >>> p[0, 3], p[1, 3] = 0.2, 0.8           # a 1-pixel-wide line of class 1
    >>> sieve(p, 3)
    array([[0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0],
           [1, 1, 1, 1, 1, 1]])
    """
    from scipy.ndimage import label

    proba = np.asarray(proba, np.float32)
    best = np.argmax(proba, axis=0).astype(np.int64)
    ok = np.ones(best.shape, bool) if valid is None else np.asarray(valid, bool)
    best[~ok] = -1
    if mmu <= 1:
        return best
    small = np.zeros(best.shape, bool)
    eight = np.ones((3, 3), bool)
    for k in np.unique(best[ok]):
        lab, n = label(best == k, structure=eight)
        size = np.bincount(lab.ravel(), minlength=n + 1)
        size[0] = mmu          # background is never small
        small |= size[lab] < mmu
    if small.any():
        p = proba[:, small].copy()
        p[best[small], np.arange(p.shape[1])] = -np.inf
        best[small] = np.argmax(p, axis=0)
    return best
