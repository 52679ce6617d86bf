"""Ortho decomposition (EGMS L3): ascending + descending LOS series -> east and up series.

Steps, each a function on plain arrays:

1. :func:`interpolate_to_grid`: each burst's series linearly interpolated to a regular time
   grid (6 days), dates in gaps longer than ``max_gap_days`` or outside the burst's span
   left NaN (no extrapolation);
2. :func:`cell_average`: points averaged per grid cell (100 m in EPSG:3035), series and LOS
   vectors alike;
3. :func:`decompose`: per cell and date, least squares of d_g - n_g·N = e_g·E + u_g·U over
   the geometries g that see the cell (ground-to-satellite LOS, so E is positive eastwards and
   U upwards); north motion N comes from a model (or is taken as zero) because two
   near-polar geometries cannot resolve it.
"""

from __future__ import annotations

import numpy as np


def regular_dates(start, end, step_days: int = 6) -> np.ndarray:
    """Dates from ``start`` to ``end`` (inclusive where on the grid) every ``step_days``.

    Examples
    --------
    >>> regular_dates("2020-01-03", "2020-01-16")
    array(['2020-01-03', '2020-01-09', '2020-01-15'], dtype='datetime64[D]')
    """
    s, e = np.datetime64(start, "D"), np.datetime64(end, "D")
    return np.arange(s, e + np.timedelta64(1, "D"), np.timedelta64(step_days, "D"))


def interpolate_to_grid(dates, disp, grid_dates, max_gap_days: float = 90) -> np.ndarray:
    """Linear interpolation in time of every series onto ``grid_dates``.

    Parameters
    ----------
    dates : (n,) datetime64, increasing acquisition dates
    disp : (N, n) displacement; NaN samples are skipped point by point
    grid_dates : (m,) datetime64
    max_gap_days : grid dates between two valid samples further apart than this are NaN

    Returns
    -------
    (N, m) float64

    Examples
    --------
    >>> d = np.array(["2020-01-01", "2020-01-13", "2020-06-01"], dtype="datetime64[D]")
    >>> g = np.array(["2020-01-07", "2020-03-01"], dtype="datetime64[D]")
    >>> interpolate_to_grid(d, np.array([[0.0, 12.0, 100.0]]), g)
    array([[ 6., nan]])
    """
    t = (np.asarray(dates, "datetime64[D]") - np.datetime64("1970-01-01")).astype(np.float64)
    tg = (np.asarray(grid_dates, "datetime64[D]") - np.datetime64("1970-01-01")).astype(np.float64)
    disp = np.asarray(disp, dtype=np.float64)
    out = np.full((disp.shape[0], tg.size), np.nan)
    finite = np.isfinite(disp)
    full = finite.all(axis=1)
    if full.any():
        out[full] = _interp_rows(t, disp[full], tg, max_gap_days)
    for i in np.flatnonzero(~full):  # rare: points with missing samples, one at a time
        ok = finite[i]
        if ok.sum() >= 2:
            out[i] = _interp_rows(t[ok], disp[i, ok][None], tg, max_gap_days)[0]
    return out


def _interp_rows(t, v, tg, max_gap):
    j = np.clip(np.searchsorted(t, tg, side="right") - 1, 0, t.size - 2)
    t0, t1 = t[j], t[j + 1]
    w = (tg - t0) / (t1 - t0)
    res = v[:, j] * (1 - w) + v[:, j + 1] * w
    # a grid date on a sample is valid even when a long gap follows it
    bad = (tg < t[0]) | (tg > t[-1]) | (((t1 - t0) > max_gap) & (tg > t0) & (tg < t1))
    res[:, bad] = np.nan
    return res


def cell_index(x, y, cell: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """Column and row numbers of the cells holding (x, y): floor(x / cell), floor(y / cell).

    Cells are aligned on multiples of ``cell`` (the EGMS L3 grid in EPSG:3035).

    Examples
    --------
    >>> cell_index(np.array([4598649.2, 4598600.0]), np.array([1739717.4, 1739799.9]))
    (array([45986, 45986]), array([17397, 17397]))
    """
    return (np.floor(np.asarray(x, float) / cell).astype(np.int64),
            np.floor(np.asarray(y, float) / cell).astype(np.int64))


def cell_average(ix, iy, values: np.ndarray):
    """Mean of ``values`` rows per cell (NaN ignored column by column).

    Returns
    -------
    cells : (C, 2) int64, (ix, iy) of each cell, sorted
    mean : (C, k) float64
    count : (C, k) int, finite values per cell and column

    Examples
    --------
    >>> c, m, n = cell_average(np.array([0, 0, 1]), np.array([0, 0, 0]),
    ...                        np.array([[1.0], [3.0], [5.0]]))
    >>> c.tolist(), m.ravel().tolist(), n.ravel().tolist()
    ([[0, 0], [1, 0]], [2.0, 5.0], [2, 1])
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    keys = np.stack([np.asarray(ix, np.int64), np.asarray(iy, np.int64)], axis=1)
    cells, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.ravel()
    order = np.argsort(inv, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])
    v = values[order]
    fin = np.isfinite(v)
    total = np.add.reduceat(np.where(fin, v, 0.0), starts, axis=0)
    count = np.add.reduceat(fin.astype(np.int64), starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return cells, mean, count


def decompose(los: np.ndarray, disp: np.ndarray, npoints: np.ndarray, north=None, *,
              min_points: int = 3, min_angle_deg: float = 20.0):
    """East and up series per cell from the LOS series of several geometries.

    Parameters
    ----------
    los : (G, C, 3) mean ground-to-satellite unit vector (east, north, up) of each geometry
        in each cell, NaN where the geometry has no point there
    disp : (G, C, m) mean LOS displacement (mm, positive towards the satellite)
    npoints : (G, C) points averaged in each geometry and cell
    north : (C, m) north displacement (mm) from a model, or None for zero
    min_points : cells need this many points over all geometries
    min_angle_deg : the LOS directions projected on the east-up plane must span at least this
        angle, else the 2x2 system is ill-conditioned and the cell is left out (one ascending
        plus one descending geometry span about 75 degrees)

    Returns
    -------
    east, up : (C, m) float64 (NaN where not solvable)
    solved : (C,) bool, cells with a solution at some date

    Examples
    --------
    >>> los = np.array([[[-0.62, -0.1, 0.78]], [[0.59, -0.12, 0.80]]])   # asc, desc
    >>> E, U = 2.0, -3.0
    >>> d = np.array([[[-0.62 * E + 0.78 * U]], [[0.59 * E + 0.80 * U]]])
    >>> e, u, ok = decompose(los, d, np.array([[2], [1]]))
    >>> round(float(e[0, 0]), 6), round(float(u[0, 0]), 6), ok.tolist()
    (2.0, -3.0, [True])
    """
    los = np.asarray(los, dtype=np.float64)
    disp = np.asarray(disp, dtype=np.float64)
    npoints = np.asarray(npoints)
    obs = disp.copy()
    if north is not None:
        obs = obs - los[:, :, 1, None] * np.asarray(north, dtype=np.float64)[None]
    a = los[:, :, [0, 2]]                                   # (G, C, 2)
    have = (npoints > 0) & np.isfinite(a).all(axis=2)        # (G, C)
    a = np.where(have[..., None], a, 0.0)
    w = have[..., None] & np.isfinite(obs)                   # (G, C, m)
    y = np.where(w, obs, 0.0)
    # Normal equations per cell and date, summed over geometries (equal weight per geometry:
    # a burst's cell mean is one observation however many points it averages).
    wf = w.astype(np.float64)
    n00 = np.einsum("gcm,gc->cm", wf, a[..., 0] ** 2)
    n01 = np.einsum("gcm,gc->cm", wf, a[..., 0] * a[..., 1])
    n11 = np.einsum("gcm,gc->cm", wf, a[..., 1] ** 2)
    b0 = np.einsum("gcm,gc->cm", y, a[..., 0])
    b1 = np.einsum("gcm,gc->cm", y, a[..., 1])
    det = n00 * n11 - n01 ** 2
    # det / (|a1|^2 |a2|^2) = sin^2(angle between two geometries' east-up directions)
    ok = det > np.sin(np.radians(min_angle_deg)) ** 2 * np.maximum(n00 * n11, 1e-12) * 0.5
    ok &= (npoints.sum(axis=0) >= min_points)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        east = np.where(ok, (n11 * b0 - n01 * b1) / det, np.nan)
        up = np.where(ok, (n00 * b1 - n01 * b0) / det, np.nan)
    return east, up, ok.any(axis=1)


def north_displacement(vn, t_years) -> np.ndarray:
    """North displacement series (C, m) of a constant north velocity ``vn`` (mm/yr) per cell.

    Examples
    --------
    >>> north_displacement(np.array([2.0]), np.array([0.0, 0.5]))
    array([[0., 1.]])
    """
    return np.asarray(vn, float)[:, None] * np.asarray(t_years, float)[None, :]
