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
                  floor: float = 1e-3, about_zero: bool = False, median_offset: bool = False,
                  min_kept: int = 0):
    """Least squares that drops observations beyond ``k`` NMAD of the median residual of the
    kept ones, refitted until the kept set stops changing (at most ``passes`` fits).

    ``floor`` bounds the NMAD from below, so that an exact fit does not reject everything.
    ``about_zero`` measures residuals from zero with :func:`robust_rms` instead (for residuals
    that a correct model makes zero-centred, such as InSAR minus GNSS). ``median_offset``
    takes the median instead of the mean when ``A`` is one column of ones (a robust offset).
    A pass that would keep fewer than ``min_kept`` observations is not taken.

    Returns
    -------
    (coef, residual, keep, scale)
        The last fit's coefficients and residuals (all observations), the kept set as the
        loop left it, and the spread of the residuals that fit used.

    Examples
    --------
    >>> x = np.arange(20.0); y = 2 * x + 1; y[5] += 50
    >>> c, r, keep, s = trimmed_lstsq(np.column_stack([x, np.ones_like(x)]), y)
    >>> np.round(c, 6).tolist(), int((~keep).sum())
    ([2.0, 1.0], 1)
    """
    keep = np.ones(y.size, bool)
    for _ in range(passes):
        if median_offset:
            coef = np.array([np.median(y[keep])])
        else:
            coef, *_ = np.linalg.lstsq(A[keep], y[keep], rcond=None)
        residual = y - A @ coef
        if about_zero:
            scale = robust_rms(residual[keep])
            new = np.abs(residual) <= k * max(scale, floor)
        else:
            scale = nmad(residual[keep])
            new = np.abs(residual - np.median(residual[keep])) <= k * max(scale, floor)
        if new.sum() < min_kept or np.array_equal(new, keep):
            break
        keep = new
    return coef, residual, keep, scale


def trimmed_lstsq_large(design: np.ndarray, obs: np.ndarray, *, passes: int = 3,
                        k: float = 3.0, subset: int = 40_000):
    """:func:`trimmed_lstsq` for millions of observations and a few unknowns.

    Trimming at ``k`` NMAD about the median residual, ``passes`` times; the first cut, around
    the median of ``obs``, is at 5 NMAD. The median and NMAD that set the threshold come from
    a fixed strided subset of about ``subset`` values (40 000 give the NMAD to ~0.5 %, which
    moves the threshold by 0.015 NMAD). The normal equations are summed in numpy: no BLAS
    call, whose threads cost far more than the arithmetic on a busy machine.

    Returns
    -------
    (coef, keep)
        Coefficients and the inlier mask of the last pass.

    Examples
    --------
    >>> x = np.linspace(-1, 1, 1001); y = 0.5 * x - 2; y[::50] += 40
    >>> c, keep = trimmed_lstsq_large(np.column_stack([np.ones_like(x), x]), y)
    >>> np.round(c, 6).tolist(), int((~keep).sum())
    ([-2.0, 0.5], 21)
    """
    n, m = design.shape
    cols = np.ascontiguousarray(design.T)     # one contiguous row per unknown
    step = max(1, n // subset)
    med, spread = float(np.median(obs[::step])), nmad(obs[::step])
    keep = np.abs(obs - med) <= 5.0 * spread if spread > 0 else np.ones(n, bool)
    coef = np.zeros(m)
    for _ in range(passes):
        if keep.sum() < m:
            break
        a, b = cols[:, keep], obs[keep]
        ata = np.empty((m, m))
        for j in range(m):
            for i in range(j, m):
                ata[j, i] = ata[i, j] = (a[j] * a[i]).sum()
        try:
            coef = np.linalg.solve(ata, np.array([(a[j] * b).sum() for j in range(m)]))
        except np.linalg.LinAlgError:
            coef = np.linalg.lstsq(a.T, b, rcond=None)[0]
        res = obs.copy()
        for j in range(m):
            res -= coef[j] * cols[j]
        sub = res[::step][keep[::step]]
        med, spread = float(np.median(sub)), nmad(sub)
        if not spread > 0:
            break
        keep = np.abs(res - med) <= k * spread
    return coef, keep
