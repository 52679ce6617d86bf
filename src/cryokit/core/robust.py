"""Robust statistics shared by every product (stable-ground errors, outlier trimming)."""

from __future__ import annotations

import numpy as np


def nmad(values) -> float:
    """Normalised median absolute deviation, 1.4826 median(|v - median(v)|), NaN ignored.

    The robust standard deviation of stable-ground errors (Höhle & Höhle 2009); NaN when no
    finite value is given.

    Examples
    --------
    >>> round(nmad(np.array([0.0, 1.0, 2.0, 3.0, 100.0])), 4)
    1.4826
    >>> nmad([1.0, 2.0, 3.0, np.nan])
    1.4826
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(v - np.median(v))))
