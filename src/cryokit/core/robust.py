"""Robust statistics shared by every product (stable-ground errors, outlier trimming)."""

from __future__ import annotations

import numpy as np


NMAD_SCALE = 1.4826   # the NMAD of a normal distribution equals its standard deviation


def nmad(values, axis: int | None = None):
    """Normalised median absolute deviation, 1.4826 median(|v - median(v)|), NaN ignored.

    The robust standard deviation of stable-ground errors (Höhle & Höhle 2009); NaN when no
    finite value is given. With ``axis``, an array of NMADs along it.

    Examples
    --------
    >>> round(nmad(np.array([0.0, 1.0, 2.0, 3.0, 100.0])), 4)
    1.4826
    >>> nmad([1.0, 2.0, 3.0, np.nan])
    1.4826
    >>> nmad(np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]), axis=0).tolist()
    [1.4826, 0.0]
    """
    if axis is not None:
        v = np.asarray(values, dtype=np.float64)
        med = np.nanmedian(v, axis=axis, keepdims=True)
        return NMAD_SCALE * np.nanmedian(np.abs(v - med), axis=axis)
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    return float(NMAD_SCALE * np.median(np.abs(v - np.median(v))))


def robust_rms(values) -> float:
    """1.4826 median(|v|), NaN ignored: the robust spread of residuals that should be zero
    (about zero, not about their median as :func:`nmad`); NaN when no finite value is given.

    >>> robust_rms([1.0, -1.0, 2.0, np.nan])
    1.4826
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(NMAD_SCALE * np.median(np.abs(v))) if v.size else float("nan")


def trimmed_lstsq(A: np.ndarray, y: np.ndarray, *, k: float = 3.0, passes: int = 6,
                  floor: float = 1e-3):
    """Least squares that drops observations beyond ``k`` NMAD of the median residual of the
    kept ones, refitted until the kept set stops changing (at most ``passes`` fits).

    ``floor`` bounds the NMAD from below, so that an exact fit does not reject everything.

    Returns
    -------
    (coef, residual, keep, scale)
        The last fit's coefficients and residuals (all observations), the kept set as the
        loop left it, and the NMAD of the residuals that fit used.

    Examples
    --------
    >>> x = np.arange(20.0); y = 2 * x + 1; y[5] += 50
    >>> c, r, keep, s = trimmed_lstsq(np.column_stack([x, np.ones_like(x)]), y)
    >>> np.round(c, 6).tolist(), int((~keep).sum())
    ([2.0, 1.0], 1)
    """
    keep = np.ones(y.size, bool)
    for _ in range(passes):
        coef, *_ = np.linalg.lstsq(A[keep], y[keep], rcond=None)
        residual = y - A @ coef
        scale = nmad(residual[keep])
        new = np.abs(residual - np.median(residual[keep])) <= k * max(scale, floor)
        if np.array_equal(new, keep):
            break
        keep = new
    return coef, residual, keep, scale
