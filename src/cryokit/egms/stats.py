"""Per-point statistics of LOS displacement series, as the EGMS publishes them.

With t in years from the first date (days / 365) and the regressions of the EGMS Product
Description (2023, Table 14), which reproduce the published columns of real L2b bursts:

- ``mean_velocity`` (mm/yr): coefficient of t in a least-squares fit of [t, 1, cos2πt, sin2πt];
  ``mean_velocity_std`` = sqrt((GᵀG)⁻¹ₜₜ) · std(residual).
- ``acceleration`` (mm/yr²): coefficient of 0.5t² in a fit of [0.5t², t, 1, cos, sin]; std likewise.
- ``rmse`` (mm, ``rmse_ts`` in 2020-2024 files): RMS residual of a fit of [t³, t², t, 1, cos, sin];
  ``seasonality`` (mm) = amplitude of its cos/sin pair; ``seasonality_std`` =
  sqrt((4−π)/2 · (C_cc + C_ss)/2) · rmse (Rayleigh std, C = (GᵀG)⁻¹).
- ``temporal_coherence`` = |mean(exp(j·4π/λ·r))|, r the residual of the linear fit [t, 1].
- ``reference_shift`` (mm): value at t = 0 of the cubic+seasonal model written with the basis
  (cos2πt − 1, sin2πt); the service subtracts it so that every series starts at 0.

:func:`seasonal_model` fits the mean-velocity model to one series alone (its own valid dates)
and returns the model itself, for plots and reference series.

All points share one design matrix: the products ``X @ A`` with the six basis columns give
every fit at once (normal equations, residual sums of squares from ``|x|² − bᵀβ``); only the
coherence needs the residuals themselves (a compiled loop, no temporaries).  Points with NaN
(SBAS products) are solved with their own valid dates through batched normal equations,
which is the same as solving each validity pattern separately.

Against the published columns of real bursts, ``rmse`` and ``seasonality`` disagree on
0.5-1.5 % of points by just over the 0.05 tolerance: the service rounded statistics of
unrounded series, we read series rounded to 0.1 mm, and that noise (not a bias) is the
residue. ``benchmarks/egms_match.py`` measures it against alternatives: Sheppard's correction
(rmse² − (n−p)/n·q²/12; its bias is ~1e-4 mm at rmse 3 mm), n − p, 365.25-day years, other
models for rmse, float32 or a centred time origin: none matches more points.
"""

from __future__ import annotations

import numba
import numpy as np

WAVELENGTH_MM = 55.4658  # Sentinel-1 C band, as used by EGMS
KEYS = ("mean_velocity", "mean_velocity_std", "acceleration", "acceleration_std", "seasonality",
        "seasonality_std", "rmse", "temporal_coherence", "reference_shift")
UNITS = {"mean_velocity": "mm/yr", "mean_velocity_std": "mm/yr", "acceleration": "mm/yr^2",
         "acceleration_std": "mm/yr^2", "seasonality": "mm", "seasonality_std": "mm", "rmse": "mm",
         "temporal_coherence": "1", "reference_shift": "mm"}

# Basis columns: 0 t³, 1 t², 2 t, 3 1, 4 cos2πt, 5 sin2πt
_LIN, _VEL, _ACC, _CUB = [2, 3], [2, 3, 4, 5], [1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]


def _basis(t: np.ndarray) -> np.ndarray:
    w = 2 * np.pi * t
    return np.column_stack([t ** 3, t ** 2, t, np.ones_like(t), np.cos(w), np.sin(w)])


@numba.njit(parallel=True, cache=True)
def _coherence(x, t, slope, offset, k):  # pragma: no cover - compiled
    m, n = x.shape
    out = np.empty(m)
    for i in numba.prange(m):
        sc = 0.0
        ss = 0.0
        cnt = 0
        for j in range(n):
            v = x[i, j]
            if v == v:  # skips NaN
                p = k * (v - slope[i] * t[j] - offset[i])
                sc += np.cos(p)
                ss += np.sin(p)
                cnt += 1
        out[i] = np.hypot(sc, ss) / cnt if cnt > 0 else np.nan
    return out


def _inv_batched(m: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Inverse of each (k, k) matrix where ``ok``; NaN elsewhere and where singular."""
    out = np.full_like(m, np.nan)
    idx = np.flatnonzero(ok)
    if idx.size:
        sub = m[idx]
        try:
            out[idx] = np.linalg.inv(sub)
        except np.linalg.LinAlgError:  # some singular: pseudo-inverse, then drop rank-deficient
            rank = np.linalg.matrix_rank(sub)
            good = rank == m.shape[-1]
            out[idx[good]] = np.linalg.inv(sub[good])
    return out


class _Fits:
    """Per-fit operators of the shared design: orthonormal basis Q (n, k) and (AᵀA)⁻¹ (k, k).

    Projecting on Q keeps the residual sum of squares accurate (|x|² − |Qᵀx|², no normal
    matrix whose condition number would multiply the rounding error).
    """

    def __init__(self, a: np.ndarray):
        self.ops = {}
        for cols in (_LIN, _VEL, _ACC, _CUB):
            q, r = np.linalg.qr(a[:, cols])
            rinv = np.linalg.inv(r)
            self.ops[tuple(cols)] = (q, rinv.T, rinv @ rinv.T)

    def solve(self, xc: np.ndarray, ss: np.ndarray, cols):
        q, rinv_t, cinv = self.ops[tuple(cols)]
        proj = xc @ q
        coef = proj @ rinv_t
        ssr = np.maximum(ss - np.einsum("mi,mi->m", proj, proj), 0.0)
        return coef, ssr, cinv


def _solve_masked(xc, valid, a, ss, cols):
    """The same fit for points with missing dates: batched normal equations, one per point."""
    k = len(cols)
    sub = a[:, cols]
    outer = (sub[:, :, None] * sub[:, None, :]).reshape(len(sub), k * k)
    n = valid.sum(1)
    normal = (valid.astype(np.float64) @ outer).reshape(len(xc), k, k)
    cinv = _inv_batched(normal, n > k)
    b = xc @ sub
    coef = np.einsum("mij,mj->mi", cinv, b)
    ssr = np.maximum(ss - np.einsum("mi,mi->m", b, coef), 0.0)
    return coef, ssr, cinv


def _chunk_stats(x: np.ndarray, t: np.ndarray, a: np.ndarray, fits: _Fits, k: float) -> dict[str, np.ndarray]:
    valid = np.isfinite(x)
    complete = bool(valid.all())
    n = np.full(len(x), float(len(t))) if complete else valid.sum(1).astype(np.float64)
    # Centring first: every model has an intercept, and |x|² − |proj|² loses less to rounding.
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = x.mean(1) if complete else np.where(valid, x, 0.0).sum(1) / n
    xc = x - mu[:, None] if complete else np.where(valid, x - mu[:, None], 0.0)
    ss = np.einsum("ij,ij->i", xc, xc)

    def solve(cols):
        coef, ssr, cinv = fits.solve(xc, ss, cols) if complete else _solve_masked(xc, valid, a, ss, cols)
        coef[:, cols.index(3)] += mu  # intercept of the uncentred series
        with np.errstate(invalid="ignore", divide="ignore"):
            return coef, ssr / n, cinv

    out = {}
    coef, var, c = solve(_VEL)
    out["mean_velocity"] = coef[:, 0]
    out["mean_velocity_std"] = np.sqrt(c[..., 0, 0] * var)
    coef, var, c = solve(_ACC)
    # the published coefficient is that of 0.5 t², i.e. twice the t² coefficient
    out["acceleration"] = 2 * coef[:, 0]
    out["acceleration_std"] = 2 * np.sqrt(c[..., 0, 0] * var)
    coef, var, c = solve(_CUB)
    rmse = np.sqrt(var)
    out["rmse"] = rmse
    out["seasonality"] = np.hypot(coef[:, 4], coef[:, 5])
    out["seasonality_std"] = np.sqrt((4 - np.pi) / 2 * (c[..., 4, 4] + c[..., 5, 5]) / 2) * rmse
    out["reference_shift"] = coef[:, 3] + coef[:, 4]
    coef, _, _ = solve(_LIN)
    out["temporal_coherence"] = _coherence(x, t, coef[:, 0].copy(), coef[:, 1].copy(), k)
    return out


def timeseries_stats(t_years, disp, wavelength_mm: float = WAVELENGTH_MM,
                     chunk: int = 16384) -> dict[str, np.ndarray]:
    """EGMS per-point statistics of displacement series.

    Parameters
    ----------
    t_years : array_like, shape (n_dates,)
        Time in years from the first date (days / 365).
    disp : array_like, shape (n_points, n_dates)
        LOS displacement in mm (float32 or float64); NaN where a point has no value.
    wavelength_mm : float
        Radar wavelength for the temporal coherence (Sentinel-1: 55.4658 mm).
    chunk : int
        Points per block (bounds the memory of temporaries).

    Returns
    -------
    dict of str to numpy.ndarray
        float64 (n_points,) arrays under the keys of :data:`KEYS` (units in :data:`UNITS`).
        A statistic is NaN where a point has too few valid dates for its fit.

    Examples
    --------
    >>> t = np.arange(0, 5, 12 / 365)
    >>> d = np.vstack([3.0 * t + 2.0 * np.cos(2 * np.pi * t), -1.5 * t ** 2 / 2])
    >>> s = timeseries_stats(t, d)
    >>> np.round(s["mean_velocity"], 2).tolist(), np.round(s["acceleration"], 3).tolist()
    ([3.0, -3.75], [0.0, -1.5])
    >>> np.round(s["seasonality"], 3).tolist(), (np.round(s["reference_shift"], 3) + 0).tolist()
    ([2.0, 0.0], [2.0, 0.0])
    """
    t = np.ascontiguousarray(t_years, dtype=np.float64)
    disp = np.asarray(disp)
    if disp.ndim != 2 or disp.shape[1] != t.size:
        raise ValueError(f"disp must be (n_points, {t.size}), got {disp.shape}")
    a = _basis(t)
    k = 4 * np.pi / wavelength_mm
    fits = _Fits(a)
    out = {key: np.empty(len(disp)) for key in KEYS}
    for start in range(0, len(disp), chunk):
        x = np.ascontiguousarray(disp[start:start + chunk], dtype=np.float64)
        for key, v in _chunk_stats(x, t, a, fits, k).items():
            out[key][start:start + len(x)] = v
    return out


def reference_to_first_epoch(t_years, disp) -> np.ndarray:
    """Shift each series as the service does: the cubic+seasonal model, with the basis
    (cos2πt − 1, sin2πt), is 0 at t = 0.

    Examples
    --------
    >>> t = np.arange(0, 3, 6 / 365)
    >>> d = 5.0 + 2.0 * t + np.cos(2 * np.pi * t)
    >>> round(float(reference_to_first_epoch(t, d[None])[0, 0]), 6)
    0.0
    """
    disp = np.asarray(disp, dtype=np.float64)
    shift = timeseries_stats(t_years, disp)["reference_shift"]
    return disp - shift[:, None]


def seasonal_model(t_years, disp):
    """Least-squares fit of [t, 1, cos2πt, sin2πt] (the EGMS mean-velocity model) to one series.

    Returns the model at ``t_years`` and the velocity (mm/yr).

    Examples
    --------
    >>> t = np.linspace(0, 3, 100)
    >>> m, v = seasonal_model(t, 2.5 * t + np.sin(2 * np.pi * t))
    >>> round(v, 6)
    2.5
    """
    t = np.asarray(t_years, dtype=np.float64)
    y = np.asarray(disp, dtype=np.float64)
    G = np.column_stack([t, np.ones_like(t), np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)])
    ok = np.isfinite(y)
    m, *_ = np.linalg.lstsq(G[ok], y[ok], rcond=None)
    return G @ m, float(m[0])


# ----------------------------------------------------------------------------- on EGMS points

# Decimals of the published EGMS columns, and the agreement tolerances against them (the
# published values are rounded: 0.1 mm/yr for velocity, 0.01 mm/yr² for acceleration...).
EGMS_DECIMALS = {"mean_velocity": 1, "mean_velocity_std": 1, "acceleration": 2,
                 "acceleration_std": 2, "seasonality": 1, "seasonality_std": 1, "rmse": 1,
                 "temporal_coherence": 2}
TOLERANCES = {"mean_velocity": 0.1, "mean_velocity_std": 0.05, "acceleration": 0.02,
              "acceleration_std": 0.02, "seasonality": 0.05, "seasonality_std": 0.05,
              "rmse": 0.05, "temporal_coherence": 0.01}
_ORDER = ("rmse", "temporal_coherence", "mean_velocity", "mean_velocity_std", "acceleration",
          "acceleration_std", "seasonality", "seasonality_std")


def agreement(points, stats: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Agreement of computed statistics with the columns an EGMS file publishes.

    Returns, per statistic present in ``points``: ``fraction`` of points within
    :data:`TOLERANCES`, ``median_abs``/``max_abs`` difference, ``tolerance`` and ``n``.
    """
    out = {}
    for key, tol in TOLERANCES.items():
        try:
            pub = points.column(key).to_numpy(dtype=np.float64)
        except KeyError:
            continue
        d = np.abs(stats[key] - pub)
        ok = np.isfinite(d)
        d = d[ok]
        out[key] = {"fraction": float(np.mean(d <= tol + 1e-9)) if d.size else float("nan"),
                    "median_abs": float(np.median(d)) if d.size else float("nan"),
                    "max_abs": float(d.max()) if d.size else float("nan"),
                    "tolerance": tol, "n": int(d.size)}
    return out


def points_with_stats(points, *, rereference: bool = True, egms_precision: bool = True,
                      wavelength_mm: float = WAVELENGTH_MM):
    """EGMS points with the statistics columns recomputed from the series.

    Columns the input has are replaced in place (``rmse_ts`` or ``rmse`` by its naming);
    missing ones are added before the dates (not ``temporal_coherence`` for L3, which has
    none).  With ``rereference`` the series are shifted to start at 0 as the service does
    (the statistics do not change: every fit has an intercept).  With ``egms_precision``
    values are rounded to the published decimals (series to 0.1 mm).

    Returns
    -------
    (EgmsPoints, dict)
        The new points and the raw (unrounded) statistics.
    """
    from dataclasses import replace

    from ..core.errors import UserError

    if len(points.dates) < len(_CUB) + 1:
        raise UserError(f"{points.name}: {len(points.dates)} dates; the EGMS model (cubic + "
                        f"seasonal, {len(_CUB)} terms) needs at least {len(_CUB) + 1}")
    stats = timeseries_stats(points.years(), points.disp, wavelength_mm)
    attrs = points.attrs.copy()
    for key in _ORDER:
        if key == "temporal_coherence" and points.level == "L3" and key not in attrs.columns:
            continue
        name = points.column_name(key)
        value = stats[key]
        if egms_precision:
            value = np.round(value, EGMS_DECIMALS[key])
        attrs[name] = value  # replaces in place, or appends at the end of the attributes
    disp = points.disp - stats["reference_shift"][:, None] if rereference else points.disp.copy()
    if egms_precision:
        disp = np.round(disp, 1)
    return replace(points, attrs=attrs, disp=disp), stats
