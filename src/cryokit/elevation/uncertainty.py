"""Error of mean elevation change over an area, with spatially correlated DEM errors.

The errors of dh on stable terrain are correlated over some distance; averaging over a glacier
does not shrink them as 1/sqrt(n pixels). A spherical variogram is fitted to stable dh, and the
error of a mean over area A follows Rolstad et al. (2009): sigma_mean = sigma * sqrt(A_corr / (5 A))
for A > A_corr, with A_corr = pi L^2 the correlated area of range L (and sigma itself when A is
smaller). Hugonnet et al. (2022) refine this with several ranges; one range is the usual
first-order choice.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import curve_fit


def spherical(h, nugget, sill, rng):
    """Spherical variogram model (partial sill ``sill`` reached at range ``rng``)."""
    h = np.asarray(h, float)
    r = np.clip(h / rng, 0, 1)
    return nugget + sill * (1.5 * r - 0.5 * r ** 3)


def variogram(dh: np.ndarray, mask: np.ndarray, res: float, *, n: int = 3000,
              bins: int = 30, seed: int = 0) -> dict:
    """Empirical variogram of ``dh`` on ``mask`` from ``n`` random pixels, and a spherical fit.

    Returns a dict with ``lags_m``, ``gamma`` (m^2), ``counts`` and the fitted ``nugget``,
    ``sill`` (partial, m^2) and ``range_m``. Deterministic for a given ``seed``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> from scipy import ndimage
    >>> dh = ndimage.gaussian_filter(rng.normal(size=(200, 200)), 5)
    >>> v = variogram(dh / dh.std(), np.ones(dh.shape, bool), 20.0)
    >>> 100 < v["range_m"] < 800
    True
    """
    rows, cols = np.nonzero(mask & np.isfinite(dh))
    if rows.size < 50:
        return {"lags_m": [], "gamma": [], "counts": [], "nugget": float("nan"),
                "sill": float("nan"), "range_m": float("nan"), "n_pixels": int(rows.size)}
    g = np.random.default_rng(seed)
    pick = g.choice(rows.size, size=min(n, rows.size), replace=False)
    y, x = rows[pick] * res, cols[pick] * res
    z = dh[rows[pick], cols[pick]].astype(float)
    i, j = np.triu_indices(z.size, 1)
    d = np.hypot(x[i] - x[j], y[i] - y[j])
    sq = 0.5 * (z[i] - z[j]) ** 2
    edges = np.linspace(0, np.percentile(d, 60), bins + 1)
    which = np.digitize(d, edges) - 1
    ok = (which >= 0) & (which < bins)
    counts = np.bincount(which[ok], minlength=bins)
    gamma = np.bincount(which[ok], weights=sq[ok], minlength=bins) / np.maximum(counts, 1)
    lags = 0.5 * (edges[1:] + edges[:-1])
    use = counts > 30
    var = float(np.var(z))
    try:
        p, _ = curve_fit(spherical, lags[use], gamma[use], p0=[0.1 * var, 0.9 * var, lags[use][len(lags[use]) // 3]],
                         bounds=([0, 0, res], [var * 2, var * 2, edges[-1] * 2]), maxfev=5000)
    except (RuntimeError, ValueError):
        p = [float("nan")] * 3
    rng_m = float(p[2])
    # A partial sill under 5 % of the variance is no correlation: the fitted range is then
    # arbitrary, and reporting it would inflate every glacier's error.
    if np.isfinite(p[1]) and p[1] < 0.05 * (p[0] + p[1]):
        rng_m = 0.0
    return {"lags_m": lags[use].tolist(), "gamma": gamma[use].tolist(),
            "counts": counts[use].tolist(), "nugget": float(p[0]), "sill": float(p[1]),
            "range_m": rng_m, "n_pixels": int(rows.size)}


def mean_error(sigma: float, area_m2: float, range_m: float, pixel_m2: float = 400.0) -> float:
    """Error (1 sigma) of the mean of dh over ``area_m2`` with correlation range ``range_m``.

    Without correlation (``range_m`` 0) it is sigma / sqrt(pixels in the area).

    Examples
    --------
    >>> round(mean_error(2.0, 1e6, 0.0), 3)        # uncorrelated 20 m pixels: 2 / sqrt(2500)
    0.04
    >>> round(mean_error(2.0, 1e6, 500.0), 3)      # 500 m correlation: 2 * sqrt(pi 0.25 / 5)
    0.793
    """
    if not (math.isfinite(sigma) and math.isfinite(range_m)) or area_m2 <= 0:
        return float("nan")
    if range_m <= 0:
        return float(sigma / math.sqrt(max(area_m2 / pixel_m2, 1.0)))
    a_corr = math.pi * range_m ** 2
    if a_corr >= area_m2:
        return float(sigma)
    return float(sigma * math.sqrt(a_corr / (5 * area_m2)))
