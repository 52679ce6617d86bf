"""Hypsometric void filling of elevation change inside glaciers (McNabb et al. 2019, "local
hypsometric"): a void pixel takes the median dh of the same glacier's valid pixels in its
elevation band."""

from __future__ import annotations

import numpy as np


def fill_hypsometric(dh: np.ndarray, elevation: np.ndarray, labels: np.ndarray,
                     band: float = 50.0, min_count: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaN dh inside labelled glaciers from the median dh of their elevation band.

    Parameters
    ----------
    dh : elevation change, NaN in voids.
    elevation : reference elevation (m) used for the bands (must be valid where filled).
    labels : int array, 0 outside glaciers, k > 0 for glacier k.
    band : band height in metres. Bands with fewer than ``min_count`` valid pixels borrow the
        glacier's dh interpolated over the band medians (nearest band at the ends).

    Returns
    -------
    filled dh and a bool mask of the pixels that were filled.

    Examples
    --------
    >>> z = np.repeat(np.arange(0.0, 200.0, 10.0)[:, None], 4, 1)
    >>> dh = -z / 100.0
    >>> dh[5, 1] = np.nan
    >>> out, filled = fill_hypsometric(dh, z, np.ones(z.shape, int), band=10, min_count=2)
    >>> bool(filled[5, 1]), round(float(out[5, 1]), 2)
    (True, -0.5)
    """
    out = np.array(dh, dtype=np.float32, copy=True)
    filled = np.zeros(dh.shape, bool)
    void = ~np.isfinite(dh) & (labels > 0) & np.isfinite(elevation)
    for k in np.unique(labels[void]):
        inside = labels == k
        ok = inside & np.isfinite(dh) & np.isfinite(elevation)
        if ok.sum() < min_count:
            continue
        b_ok = np.floor(elevation[ok] / band).astype(int)
        lo = b_ok.min()
        counts = np.bincount(b_ok - lo)
        med = np.full(counts.size, np.nan)
        vals = dh[ok]
        order = np.argsort(b_ok, kind="stable")
        splits = np.cumsum(counts)[:-1]
        for i, chunk in enumerate(np.split(vals[order], splits)):
            if chunk.size >= min_count:
                med[i] = np.median(chunk)
        good = np.isfinite(med)
        if not good.any():
            continue
        centres = np.arange(counts.size)
        med = np.interp(centres, centres[good], med[good])
        hole = void & inside
        b = np.clip(np.floor(elevation[hole] / band).astype(int) - lo, 0, counts.size - 1)
        out[hole] = med[b]
        filled[hole] = True
    return out, filled
