"""Summary statistics of elevation differences."""

from __future__ import annotations

import numpy as np

from ..core.robust import nmad

__all__ = ["dh_stats"]


def dh_stats(dh, mask=None) -> dict:
    """Mean, median, NMAD, standard deviation and count of ``dh`` (NaN ignored).

    Parameters
    ----------
    dh : array
        Elevation differences (m); NaN = nodata.
    mask : bool array like ``dh``, optional
        Only pixels where it is True are counted.

    Returns
    -------
    dict
        ``mean``, ``median``, ``nmad`` (1.4826 x median absolute deviation from the median,
        the robust equivalent of the standard deviation), ``std`` (population, ddof=0) as
        floats, NaN when no pixel is valid, and ``count`` (int).

    Examples
    --------
    >>> import numpy as np
    >>> s = dh_stats(np.array([1.0, 2.0, 3.0, 100.0, np.nan]), mask=np.array([1, 1, 1, 0, 1], bool))
    >>> s["median"], s["nmad"], s["count"]
    (2.0, 1.4826, 3)
    """
    v = np.asarray(dh)
    sel = np.isfinite(v)
    if mask is not None:
        sel &= np.asarray(mask, dtype=bool)
    v = v[sel].astype(np.float64)
    if v.size == 0:
        nan = float("nan")
        return {"mean": nan, "median": nan, "nmad": nan, "std": nan, "count": 0}
    med = float(np.median(v))
    return {"mean": float(v.mean()), "median": med,
            "nmad": nmad(v),
            "std": float(v.std()), "count": int(v.size)}
