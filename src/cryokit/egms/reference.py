"""Re-referencing point displacement series to a reference point or area.

EGMS Basic (L2a) series are relative to the reference point of their processing unit; a user
often wants them relative to a point or area they know to be stable. Subtracting the reference
series from every point does that (and subtracts its velocity from every velocity).
"""

from __future__ import annotations

import numpy as np


def points_within(x, y, cx: float, cy: float, radius: float) -> np.ndarray:
    """Boolean mask of the points within ``radius`` of (cx, cy), same units as x, y.

    Examples
    --------
    >>> points_within(np.array([0.0, 3, 10]), np.zeros(3), 0.0, 0.0, 5.0)
    array([ True,  True, False])
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2


def reference_series(disp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The reference series: median over the selected points at each date (NaN ignored).

    A median rather than a mean so that one unstable point in the reference area does not
    move every series.

    Parameters
    ----------
    disp : (N, n) displacement (mm)
    mask : (N,) bool, the reference points (at least one)

    Examples
    --------
    >>> d = np.array([[0.0, 1, 2], [0, 3, 6], [0, 100, 200]])
    >>> reference_series(d, np.array([True, True, True]))
    array([0., 3., 6.])
    """
    sel = np.asarray(disp, dtype=np.float64)[np.asarray(mask, bool)]
    if sel.shape[0] == 0:
        raise ValueError("no reference point selected")
    if sel.shape[0] == 1:
        return sel[0].copy()
    return np.nanmedian(sel, axis=0)


def rereference(disp: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``disp`` minus the reference series at every date (the reference point becomes 0).

    Examples
    --------
    >>> rereference(np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([1.0, 2.0]))
    array([[0., 0.],
           [2., 3.]])
    """
    return np.asarray(disp, dtype=np.float64) - np.asarray(ref, dtype=np.float64)[None, :]
