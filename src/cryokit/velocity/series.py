"""Time series of pair offsets: pair networks, cumulative displacement, mean velocity.

Pure numpy on stacks of node grids: ``pair_disp`` is (P, ny, nx), one layer per pair, NaN
where a pair has no valid value. Dates are ``datetime.date``.
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
from scipy.sparse import csgraph, csr_matrix

from ..core.robust import nmad


def sort_by_time(paths: list[str], times: list) -> tuple[list[str], list]:
    """Images and their dates (or date-times) in time order; a UserError names an image that
    shares its day with another (pair files are named by day).

    >>> sort_by_time(["b.tif", "a.tif"], [dt.date(2021, 1, 13), dt.date(2021, 1, 1)])
    (['a.tif', 'b.tif'], [datetime.date(2021, 1, 1), datetime.date(2021, 1, 13)])
    """
    from ..core.dates import day_of
    from ..core.errors import UserError

    dated = sorted(zip(times, paths))
    for (t1, p1), (t2, p2) in zip(dated, dated[1:]):
        if day_of(t1) == day_of(t2):
            raise UserError(f"has the same date ({day_of(t1)}) as {p1}", p2)
    return [p for _, p in dated], [t for t, _ in dated]


def pair_network(dates: list[dt.date], mode: str = "consecutive") -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of acquisitions sorted by date.

    ``mode`` is ``"consecutive"`` or ``"all-within-DAYS"`` (every pair at most DAYS apart).

    Examples
    --------
    >>> d = [dt.date(2021, 1, 1) + dt.timedelta(15 * k) for k in range(4)]
    >>> pair_network(d)
    [(0, 1), (1, 2), (2, 3)]
    >>> pair_network(d, "all-within-30")
    [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    """
    n = len(dates)
    if any(dates[k] >= dates[k + 1] for k in range(n - 1)):
        raise ValueError("dates must be strictly increasing")
    if mode == "consecutive":
        return [(k, k + 1) for k in range(n - 1)]
    if mode.startswith("all-within-"):
        try:
            days = int(mode[len("all-within-"):])
        except ValueError:
            days = 0
        if days <= 0:
            raise ValueError(f"bad pair mode {mode!r}: expected all-within-DAYS, DAYS > 0")
        return [(i, j) for i in range(n) for j in range(i + 1, n)
                if (dates[j] - dates[i]).days <= days]
    raise ValueError(f"bad pair mode {mode!r}: use consecutive or all-within-DAYS")


def cumulative(pair_disp: np.ndarray, pairs: list[tuple[int, int]], n_dates: int,
               weights: np.ndarray | None = None) -> np.ndarray:
    """Displacement of every date relative to the first, by least squares over the network.

    Each pair (i, j) observes D_j - D_i; with D_0 = 0 the weighted least-squares solution is
    computed per node over its valid pairs (nodes sharing a validity pattern are solved
    together). Dates not connected to the first date through valid pairs are NaN: the
    network is split there and no offset between the parts is invented.

    Returns
    -------
    (n_dates, ny, nx) array, first layer 0 where any pair is valid.

    Examples
    --------
    >>> d = np.array([1.0, 2.0, 3.5])[:, None, None]          # pairs (0,1), (1,2), (0,2)
    >>> cumulative(d, [(0, 1), (1, 2), (0, 2)], 3)[:, 0, 0].round(3).tolist()
    [0.0, 1.167, 3.333]
    """
    P, ny, nx = pair_disp.shape
    w = np.ones(P) if weights is None else np.asarray(weights, float)
    flat = pair_disp.reshape(P, -1)
    valid = np.isfinite(flat) & (w[:, None] > 0)
    out = np.full((n_dates, flat.shape[1]), np.nan)
    patterns, inverse = np.unique(valid.T, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    A_full = np.zeros((P, n_dates))
    for p, (i, j) in enumerate(pairs):
        A_full[p, i], A_full[p, j] = -1.0, 1.0
    for k, pat in enumerate(patterns):
        if not pat.any():
            continue
        nodes = np.flatnonzero(inverse == k)
        use = np.flatnonzero(pat)
        graph = csr_matrix((np.ones(use.size), ([pairs[p][0] for p in use],
                                                [pairs[p][1] for p in use])),
                           shape=(n_dates, n_dates))
        _, label = csgraph.connected_components(graph, directed=False)
        linked = np.flatnonzero(label == label[0])
        if linked.size < 2:
            continue
        rows = [p for p in use if pairs[p][0] in linked]
        A = A_full[np.ix_(rows, linked[1:])]
        sw = np.sqrt(w[rows])[:, None]
        sol, *_ = np.linalg.lstsq(A * sw, flat[np.ix_(rows, nodes)] * sw, rcond=None)
        out[0, nodes] = 0.0
        out[np.ix_(linked[1:], nodes)] = sol
    return out.reshape(n_dates, ny, nx)


def mean_velocity(pair_disp: np.ndarray, dt_days: np.ndarray, sigma: np.ndarray | None = None,
                  clip: float = 3.0, return_error: bool = False) -> tuple[np.ndarray, ...]:
    """Robust, quality-weighted mean velocity over pairs, per node.

    Each pair gives a velocity ``d / dt``; its weight is ``1 / (sigma / dt)^2`` with ``sigma``
    the pair's error (e.g. stable-ground NMAD, same units as ``d``), so long, clean pairs count
    most. Pair velocities farther than ``clip`` robust standard deviations from the node's
    median are left out before the weighted mean.

    Returns
    -------
    mean (ny, nx) in units of d per day, and the count of pairs used per node; with
    ``return_error`` also its 1-sigma error, 1 / sqrt(sum of the kept weights) (d per day,
    independent pairs).

    Examples
    --------
    >>> d = np.array([1.5, 1.5, 15.0, 1.6])[:, None, None]        # one blunder
    >>> v, n = mean_velocity(d, np.array([15, 15, 15, 16]))
    >>> round(float(v[0, 0]), 3), int(n[0, 0])
    (0.1, 3)
    """
    dt_days = np.asarray(dt_days, float)
    v = pair_disp / dt_days[:, None, None]
    s = np.ones(len(dt_days)) if sigma is None else np.asarray(sigma, float)
    w = (dt_days / np.maximum(s, 1e-12)) ** 2
    w = np.broadcast_to(w[:, None, None], v.shape)
    fin = np.isfinite(v)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN nodes give NaN, as wanted
        med = np.nanmedian(v, axis=0)
        mad = nmad(v, axis=0)
        # A floor on the spread so identical pairs do not reject a pair for a rounding error.
        floor = np.nanmedian(np.where(fin, 1.0 / np.sqrt(w), np.nan), axis=0)
        keep = fin & (np.abs(v - med) <= clip * np.maximum(mad, floor))
        ww = np.where(keep, w, 0.0)
        num = np.where(keep, v, 0.0) * ww
        tot = ww.sum(0)
        mean = np.where(tot > 0, num.sum(0) / np.where(tot > 0, tot, 1), np.nan)
        err = np.where(tot > 0, 1.0 / np.sqrt(np.where(tot > 0, tot, 1)), np.nan)
    if return_error:
        return mean, keep.sum(0), err
    return mean, keep.sum(0)


def period_bins(mid_dates: list[dt.datetime], period: str) -> list[tuple[str, dt.date, dt.date]]:
    """The period each pair belongs to, by its mid-date: ``(label, first day, last day)``.

    ``period`` is ``"year"`` (calendar years, label ``YYYY``) or ``"<N>d"`` (N-day bins from
    the first mid-date's day, label ``YYYYMMDD_YYYYMMDD``).

    Examples
    --------
    >>> m = [dt.datetime(2000, 2, 1), dt.datetime(2000, 12, 30), dt.datetime(2001, 1, 2)]
    >>> [b[0] for b in period_bins(m, "year")]
    ['2000', '2000', '2001']
    >>> [b[0] for b in period_bins(m, "30d")]
    ['20000201_20000301', '20001227_20010125', '20001227_20010125']
    """
    if period == "year":
        return [(f"{m.year}", dt.date(m.year, 1, 1), dt.date(m.year, 12, 31)) for m in mid_dates]
    days = None
    if period.endswith("d"):
        try:
            days = int(period[:-1])
        except ValueError:
            days = None
    if not days or days <= 0:
        raise ValueError(f"bad period {period!r}: use year or a number of days such as 90d")
    origin = min(mid_dates).date() if isinstance(min(mid_dates), dt.datetime) else min(mid_dates)
    out = []
    for m in mid_dates:
        day = m.date() if isinstance(m, dt.datetime) else m
        k = (day - origin).days // days
        a = origin + dt.timedelta(days=k * days)
        b = a + dt.timedelta(days=days - 1)
        out.append((f"{a:%Y%m%d}_{b:%Y%m%d}", a, b))
    return out


def weighted_mean_velocity(vx: np.ndarray, vy: np.ndarray, sigma: np.ndarray,
                           clip: float = 3.0) -> tuple[np.ndarray, ...]:
    """Error-weighted mean of pair velocities per pixel, with its error and the pairs used.

    ``vx, vy, sigma`` are (P, ny, nx): each pair's velocity components and 1-sigma speed
    error (NaN where the pair has no value). Pair values farther than ``clip`` spreads from the
    pixel's median in either component are left out (the spread is the NMAD over pairs, at
    least the pair's own sigma); the rest are averaged with weights 1 / sigma^2.

    Returns
    -------
    vx, vy, v (hypot of the means), v_error (1 / sqrt(sum of weights): independent pairs),
    count (pairs used) per pixel.

    Examples
    --------
    >>> vx = np.array([1.0, 1.2, 9.0])[:, None, None]              # one blunder
    >>> vy = np.zeros((3, 1, 1)); s = np.array([0.2, 0.2, 0.2])[:, None, None]
    >>> mx, my, v, e, n = weighted_mean_velocity(vx, vy, s)
    >>> round(float(mx[0, 0]), 3), round(float(e[0, 0]), 3), int(n[0, 0])
    (1.1, 0.141, 2)
    """
    vx, vy, sigma = (np.asarray(a, np.float64) for a in (vx, vy, sigma))
    fin = np.isfinite(vx) & np.isfinite(vy) & np.isfinite(sigma) & (sigma > 0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN pixels give NaN, as wanted
        keep = fin.copy()
        for u in (vx, vy):
            uu = np.where(fin, u, np.nan)
            med = np.nanmedian(uu, axis=0)
            spread = np.maximum(nmad(uu, axis=0), 0.0)
            keep &= np.abs(uu - med) <= clip * np.maximum(spread, np.where(fin, sigma, np.inf))
        w = np.where(keep, 1.0 / np.where(keep, sigma, 1.0) ** 2, 0.0)
        tot = w.sum(0)
        mx = np.where(tot > 0, (np.where(keep, vx, 0) * w).sum(0) / tot, np.nan)
        my = np.where(tot > 0, (np.where(keep, vy, 0) * w).sum(0) / tot, np.nan)
        err = np.where(tot > 0, 1.0 / np.sqrt(tot), np.nan)
    return mx, my, np.hypot(mx, my), err, keep.sum(0)
