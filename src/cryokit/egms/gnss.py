"""GNSS station series and velocities: robust velocity, plate motion (files: :mod:`.formats`).

Velocities are east, north, up in mm/yr. NGL series are in a global frame (IGS08/IGS14), so
horizontal velocities include the motion of the plate (about 25 mm/yr in Europe); EGMS is
calibrated to an ETRF-like (plate-fixed) GNSS model. :func:`plate_velocity` gives the rigid
rotation of a plate from its Euler vector so that it can be removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.robust import trimmed_lstsq

#: ITRF2014 plate motion model, Eurasia (Altamimi et al. 2017, GJI 209, Table 1): wx, wy, wz
#: in mas/yr. ETRF2014 is defined by removing this rotation from ITRF2014 velocities.
EURASIA_ITRF2014 = (-0.085, -0.531, 0.770)
PLATE_MODELS = {"eurasia": EURASIA_ITRF2014, "none": None}
PLATE_MODEL_TEXT = {
    "eurasia": "ITRF2014 Eurasia Euler pole (Altamimi et al. 2017: wx -0.085, wy -0.531, "
               "wz 0.770 mas/yr) removed: velocities are ETRF-like (relative to stable Eurasia)",
    "none": "no plate model removed: velocities are in the frame of the GNSS input",
}

_MAS = np.pi / (180.0 * 3600.0 * 1000.0)   # one milliarcsecond in radians
_A, _F = 6378137.0, 1 / 298.257222101      # GRS80


@dataclass(frozen=True)
class GnssSeries:
    """Daily ENU positions of one station.

    Attributes
    ----------
    station : str
    mjd : (n,) float, modified Julian day
    t : (n,) float, decimal year
    enu : (n, 3) float, east, north, up in mm relative to the first epoch
    sigma : (n, 3) float, 1-sigma in mm
    """

    station: str
    mjd: np.ndarray
    t: np.ndarray
    enu: np.ndarray
    sigma: np.ndarray

    @property
    def dates(self) -> np.ndarray:
        """datetime64[D] dates (MJD 0 = 1858-11-17)."""
        return (np.datetime64("1858-11-17") + np.floor(self.mjd).astype("timedelta64[D]"))


def velocity_design(t: np.ndarray, steps=()) -> np.ndarray:
    """Design matrix [1, t, cos2πt, sin2πt, cos4πt, sin4πt, H(t - step)...], t in years
    relative to its mean (so the intercept is the mean position)."""
    t = np.asarray(t, dtype=np.float64)
    tc = t - t.mean()
    cols = [np.ones_like(t), tc]
    for k in (1, 2):
        cols += [np.cos(2 * k * np.pi * t), np.sin(2 * k * np.pi * t)]
    cols += [(t >= s).astype(np.float64) for s in steps]
    return np.column_stack(cols)


def fit_velocity(t, y, steps=(), *, threshold: float = 3.0, max_iter: int = 10) -> dict:
    """Robust velocity of one position component: linear + annual + semi-annual (+ steps).

    Least squares iterated with the points whose residual is within ``threshold`` NMADs
    kept, until the set is stable: outliers (snow on antennas, bad days) do not bias the rate.
    Offsets (equipment changes, earthquakes) are ignored unless their epochs are given.

    Parameters
    ----------
    t : (n,) decimal years
    y : (n,) position (mm), NaN ignored
    steps : epochs (decimal years) of Heaviside offsets estimated with the rest

    Returns
    -------
    dict
        ``velocity`` (mm/yr), ``velocity_sigma`` (formal, white noise scaled by the robust
        residual scatter: a lower bound, coloured noise makes the true error larger),
        ``annual_amplitude``, ``semiannual_amplitude`` (mm), ``offsets`` (mm, one per step),
        ``nmad`` of the residual (mm), ``n_used``, ``n``.

    Examples
    --------
    >>> t = np.arange(0, 5, 1 / 365) + 2010
    >>> y = 3.0 * (t - 2010) + 2 * np.sin(2 * np.pi * t)
    >>> y[::50] += 40                                # outliers
    >>> round(fit_velocity(t, y)["velocity"], 3)
    3.0
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    steps = [s for s in steps if t.min() < s <= t.max()] if t.size else []
    G = velocity_design(t, steps)
    if t.size < G.shape[1] + 2 or np.ptp(t) < 1.0:
        raise ValueError(f"series too short for a velocity with seasonal terms ({t.size} epochs, "
                         f"{np.ptp(t) if t.size else 0:.2f} years; at least 1 year needed)")
    m, r, keep, s = trimmed_lstsq(G, y, k=threshold, passes=max_iter, floor=1e-9)
    cov = np.linalg.pinv(G[keep].T @ G[keep])
    return {"velocity": float(m[1]), "velocity_sigma": float(np.sqrt(cov[1, 1]) * s),
            "annual_amplitude": float(np.hypot(m[2], m[3])),
            "semiannual_amplitude": float(np.hypot(m[4], m[5])),
            "offsets": [float(v) for v in m[6:]], "nmad": float(s),
            "n_used": int(keep.sum()), "n": int(t.size)}


def series_velocity(series: GnssSeries, steps=()) -> dict:
    """East, north, up velocity (mm/yr) of a station series with :func:`fit_velocity`.

    Returns ``{"ve", "vn", "vu", "sve", "svn", "svu", "start", "end", "n"}`` (decimal years).
    """
    out = {}
    for k, c in enumerate("enu"):
        f = fit_velocity(series.t, series.enu[:, k], steps)
        out[f"v{c}"], out[f"sv{c}"] = f["velocity"], f["velocity_sigma"]
    out.update(start=float(series.t.min()), end=float(series.t.max()), n=int(series.t.size))
    return out


def plate_velocity(lon, lat, omega_mas_yr=EURASIA_ITRF2014) -> tuple[np.ndarray, np.ndarray]:
    """East and north velocity (mm/yr) of a rigid plate rotating with Euler vector ``omega``.

    v = ω × r at the point on the GRS80 ellipsoid (height does not matter at 0.01 mm/yr),
    rotated to local east/north.

    Examples
    --------
    >>> ve, vn = plate_velocity(13.0, 46.0)          # Friuli, ITRF2014 Eurasia
    >>> round(float(ve), 1), round(float(vn), 1)
    (21.0, 15.4)
    """
    lon = np.radians(np.asarray(lon, dtype=np.float64))
    lat = np.radians(np.asarray(lat, dtype=np.float64))
    e2 = _F * (2 - _F)
    n = _A / np.sqrt(1 - e2 * np.sin(lat) ** 2)
    r = np.stack([n * np.cos(lat) * np.cos(lon), n * np.cos(lat) * np.sin(lon),
                  n * (1 - e2) * np.sin(lat)], axis=-1)
    w = np.asarray(omega_mas_yr, dtype=np.float64) * _MAS
    v = np.cross(np.broadcast_to(w, r.shape), r) * 1000.0   # mm/yr in ECEF
    east = np.stack([-np.sin(lon), np.cos(lon), np.zeros_like(lon)], axis=-1)
    north = np.stack([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)], axis=-1)
    return (v * east).sum(-1), (v * north).sum(-1)


def remove_plate_motion(lon, lat, ve, vn, model: str = "eurasia") -> tuple[np.ndarray, np.ndarray]:
    """Velocities relative to the plate of ``model`` (``"eurasia"`` or ``"none"``).

    Examples
    --------
    >>> ve, vn = remove_plate_motion(13.0, 46.0, 21.5, 17.0)
    >>> round(float(ve), 1), round(float(vn), 1)
    (0.5, 1.6)
    """
    if model not in PLATE_MODELS:
        raise ValueError(f"plate model must be one of {', '.join(PLATE_MODELS)}, got {model!r}")
    ve, vn = np.asarray(ve, dtype=np.float64), np.asarray(vn, dtype=np.float64)
    if PLATE_MODELS[model] is None:
        return ve, vn
    pe, pn = plate_velocity(lon, lat, PLATE_MODELS[model])
    return ve - pe, vn - pn
