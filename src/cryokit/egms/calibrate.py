"""Calibration of InSAR LOS velocities to GNSS: per-burst offset or plane, fitted robustly.

At each GNSS station the station's ENU velocity, projected on the line of sight of the points
around it, is compared with the median InSAR velocity of those points; the differences
(GNSS minus InSAR) are fitted by a constant or a plane in map coordinates and the fitted
correction is added to every point's velocity (and ``correction * t`` to its series).
Sign convention: LOS vectors point from the ground to the satellite, so a positive LOS
velocity is motion towards the satellite, as in EGMS.
"""

from __future__ import annotations

import numpy as np

from ..core.robust import trimmed_lstsq

MODELS = ("offset", "plane")


def los_projection(ve, vn, vu, los_e, los_n, los_u) -> np.ndarray:
    """ENU velocity projected on the ground-to-satellite unit vector (positive = towards).

    Examples
    --------
    >>> float(los_projection(0.0, 0.0, -10.0, -0.6, -0.1, 0.79))   # subsidence moves away
    -7.9
    """
    return (np.asarray(ve) * los_e + np.asarray(vn) * los_n + np.asarray(vu) * los_u) * 1.0


def median_near(x, y, values, sx, sy, radius: float, min_points: int = 1):
    """Median of ``values`` at the points within ``radius`` of each station, and their count.

    Stations with fewer than ``min_points`` neighbours get NaN.

    Returns
    -------
    median : (S,) float
    count : (S,) int
    index : list of (k,) int arrays, the neighbours of each station

    Examples
    --------
    >>> m, c, _ = median_near(np.array([0.0, 1, 50]), np.zeros(3), np.array([1.0, 3, 9]),
    ...                       np.array([0.0]), np.array([0.0]), 10.0)
    >>> m, c
    (array([2.]), array([2]))
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([np.asarray(x, float), np.asarray(y, float)]))
    idx = tree.query_ball_point(np.column_stack([np.asarray(sx, float), np.asarray(sy, float)]),
                                r=radius)
    values = np.asarray(values, dtype=np.float64)
    med = np.full(len(idx), np.nan)
    cnt = np.zeros(len(idx), int)
    out = []
    for k, ii in enumerate(idx):
        ii = np.asarray(ii, dtype=int)
        ii = ii[np.isfinite(values[ii])]
        out.append(ii)
        cnt[k] = ii.size
        if ii.size >= max(min_points, 1):
            med[k] = np.median(values[ii])
    return med, cnt, out


class SurfaceCorrection:
    """A correction surface ``c(x, y)`` (offset or plane) fitted robustly to station residuals.

    ``fit`` stores its parameters in a plain dict (``params``); ``apply`` evaluates it.
    The plane is written about the stations' centroid, coordinates in km, so its
    coefficients read in mm/yr and mm/yr per km.

    Parameters
    ----------
    model : ``"offset"`` or ``"plane"``
    threshold : residuals beyond this many NMADs (with a floor of 0.5 mm/yr) are rejected
        and the fit redone, so one station on a landslide does not bias the burst.

    Examples
    --------
    >>> sx, sy = np.array([0.0, 1e4, 0, 1e4, 5e3]), np.array([0.0, 0, 1e4, 1e4, 5e3])
    >>> r = 2.0 + 0.1 * sx / 1e3
    >>> c = SurfaceCorrection("plane").fit(sx, sy, r)
    >>> round(float(c.apply(2e4, 0.0)), 6)
    4.0
    """

    def __init__(self, model: str = "offset", threshold: float = 3.0):
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
        self.model, self.threshold = model, threshold
        self.params: dict = {}

    def _design(self, x, y, x0, y0):
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        y = np.atleast_1d(np.asarray(y, dtype=np.float64))
        if self.model == "offset":
            return np.ones((x.size, 1))
        return np.column_stack([np.ones(x.size), (x - x0) / 1e3, (y - y0) / 1e3])

    def fit(self, x, y, residual) -> "SurfaceCorrection":
        x, y, r = (np.asarray(a, dtype=np.float64).ravel() for a in (x, y, residual))
        ok = np.isfinite(r) & np.isfinite(x) & np.isfinite(y)
        need = 1 if self.model == "offset" else 3
        if ok.sum() < need:
            raise ValueError(f"{self.model} needs at least {need} station(s) with InSAR points "
                             f"around them, got {int(ok.sum())}")
        x0, y0 = float(np.mean(x[ok])), float(np.mean(y[ok]))
        G = self._design(x, y, x0, y0)
        # Residuals InSAR - GNSS are zero-centred once the correction is right, so stations
        # are trimmed about zero; 0.5 mm/yr floors the spread of an almost exact fit.
        m, _, kept, _ = trimmed_lstsq(G[ok], r[ok], k=self.threshold, passes=10, floor=0.5,
                                      about_zero=True, median_offset=self.model == "offset",
                                      min_kept=need)
        keep = np.zeros_like(ok)
        keep[ok] = kept
        self.params = {"model": self.model, "x0": x0, "y0": y0,
                       "offset_mm_yr": float(m[0]),
                       "gradient_x_mm_yr_per_km": float(m[1]) if m.size > 1 else 0.0,
                       "gradient_y_mm_yr_per_km": float(m[2]) if m.size > 1 else 0.0,
                       "n_stations": int(ok.sum()), "n_used": int(keep.sum()),
                       "used": keep.tolist()}
        return self

    def apply(self, x, y) -> np.ndarray:
        """The correction (mm/yr) at (x, y); add it to the InSAR LOS velocity."""
        p = self.params
        G = self._design(x, y, p["x0"], p["y0"])
        m = np.array([p["offset_mm_yr"], p["gradient_x_mm_yr_per_km"],
                      p["gradient_y_mm_yr_per_km"]])[:G.shape[1]]
        out = G @ m
        return out if np.ndim(x) else out[0]


def correct_series(disp: np.ndarray, t_years: np.ndarray, correction: np.ndarray) -> np.ndarray:
    """Series with the velocity correction applied: ``disp + correction * t``.

    Examples
    --------
    >>> correct_series(np.zeros((1, 3)), np.array([0.0, 0.5, 1.0]), np.array([2.0]))
    array([[0., 1., 2.]])
    """
    return np.asarray(disp, dtype=np.float64) + np.asarray(correction, float)[:, None] * \
        np.asarray(t_years, float)[None, :]
