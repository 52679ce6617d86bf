"""Comparison of two releases of one burst: points matched by pid, else by location.

Between releases most points keep their ``pid``; the others (re-processed, renamed) are
matched to the nearest unmatched point of the other release within a few metres, mutually
nearest only, so that one point is never used twice.
"""

from __future__ import annotations

import numpy as np

from ..core.robust import nmad

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


def match_points(pid_old, pid_new, xy_old, xy_new, max_distance: float = 5.0):
    """Pairs of indices (old, new) of the same points in two releases.

    Parameters
    ----------
    pid_old, pid_new : (N,), (M,) str
    xy_old, xy_new : (N, 2), (M, 2) projected coordinates (m)
    max_distance : location fallback radius for points whose pid is in one release only

    Returns
    -------
    i_old, i_new : int arrays of the matched pairs
    how : array of ``"pid"`` / ``"location"``
    distance : (k,) metres between the matched points

    Examples
    --------
    >>> i, j, how, d = match_points(np.array(["a", "b", "c"]), np.array(["c", "x"]),
    ...                             np.array([[0, 0], [10, 0], [20, 0]]),
    ...                             np.array([[20, 0], [11, 0]]))
    >>> i.tolist(), j.tolist(), how.tolist()
    ([2, 1], [0, 1], ['pid', 'location'])
    """
    from scipy.spatial import cKDTree

    pid_old, pid_new = np.asarray(pid_old).astype(str), np.asarray(pid_new).astype(str)
    xy_old, xy_new = np.asarray(xy_old, float), np.asarray(xy_new, float)
    _, io, jn = np.intersect1d(pid_old, pid_new, assume_unique=False, return_indices=True)
    order = np.argsort(io)
    io, jn = io[order], jn[order]
    how = ["pid"] * io.size
    left_o = np.setdiff1d(np.arange(pid_old.size), io)
    left_n = np.setdiff1d(np.arange(pid_new.size), jn)
    lo, ln = np.empty(0, int), np.empty(0, int)
    if left_o.size and left_n.size and max_distance > 0:
        d_on, k_on = cKDTree(xy_new[left_n]).query(xy_old[left_o], distance_upper_bound=max_distance)
        d_no, k_no = cKDTree(xy_old[left_o]).query(xy_new[left_n], distance_upper_bound=max_distance)
        hit = np.isfinite(d_on)
        cand = np.flatnonzero(hit)
        mutual = cand[k_no[k_on[cand]] == cand]
        lo, ln = left_o[mutual], left_n[k_on[mutual]]
    i_old = np.concatenate([io, lo]).astype(int)
    i_new = np.concatenate([jn, ln]).astype(int)
    how = np.array(how + ["location"] * lo.size, dtype=object)
    dist = np.hypot(*(xy_old[i_old] - xy_new[i_new]).T) if i_old.size else np.empty(0)
    return i_old, i_new, how, dist


def difference_stats(diff) -> dict:
    """Statistics of differences (NaN ignored): count, mean, std, median, NMAD, RMS, min, max
    and percentiles ``p1 ... p99``.

    Examples
    --------
    >>> s = difference_stats(np.array([0.0, 1.0, 2.0, np.nan]))
    >>> s["count"], s["mean"], s["median"]
    (3, 1.0, 1.0)
    """
    d = np.asarray(diff, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"count": 0}
    out = {"count": int(d.size), "mean": float(d.mean()), "std": float(d.std(ddof=1)) if d.size > 1 else 0.0,
           "median": float(np.median(d)),
           "nmad": nmad(d),
           "rms": float(np.sqrt(np.mean(d ** 2))), "min": float(d.min()), "max": float(d.max())}
    out.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(d, PERCENTILES))})
    return out
