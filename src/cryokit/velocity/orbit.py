"""Radar viewing geometry from orbit state vectors: track heading and incidence at a target.

Pure numpy on Earth-fixed (ECEF, WGS84) vectors; the Sentinel-1 reader (:mod:`.s1`) feeds it
the product's state vectors. The heading and look direction define the range and azimuth
axes of a map-projected SAR product.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicHermiteSpline

_A, _F = 6378137.0, 1 / 298.257223563      # WGS84
_E2 = _F * (2 - _F)


def geodetic_to_ecef(lon_deg, lat_deg, h) -> np.ndarray:
    """WGS84 longitude, latitude (degrees) and ellipsoidal height (m) -> ECEF (m), (..., 3)."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    n = _A / np.sqrt(1 - _E2 * np.sin(lat) ** 2)
    return np.stack([(n + h) * np.cos(lat) * np.cos(lon), (n + h) * np.cos(lat) * np.sin(lon),
                     (n * (1 - _E2) + h) * np.sin(lat)], axis=-1)


def enu_axes(lon_deg: float, lat_deg: float) -> np.ndarray:
    """Rows: the east, north and up unit vectors (ECEF) at a point; up is the ellipsoid normal."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.array([[-np.sin(lon), np.cos(lon), 0.0],
                     [-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)],
                     [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]])


def zero_doppler(t: np.ndarray, pos: np.ndarray, vel: np.ndarray, target: np.ndarray,
                 iterations: int = 8) -> tuple[float, np.ndarray, np.ndarray]:
    """Time (same units as ``t``, seconds), position and velocity where the line of sight to
    ``target`` is perpendicular to the velocity (zero Doppler, the SAR focusing condition).

    ``t`` (n,), ``pos`` and ``vel`` (n, 3) are the state vectors, interpolated by Hermite
    splines (positions with their velocities as derivatives, metre accuracy over 10 s spacing).
    """
    ps = CubicHermiteSpline(t, pos, vel, axis=0)
    vs = ps.derivative()
    acc = vs.derivative()
    tk = t[np.argmin(np.linalg.norm(pos - target, axis=1))]
    for _ in range(iterations):     # Newton on f(t) = v(t) . (p(t) - x)
        d, v = ps(tk) - target, vs(tk)
        f, df = v @ d, acc(tk) @ d + v @ v
        step = f / df
        tk = float(np.clip(tk - step, t[0], t[-1]))
        if abs(step) < 1e-7:
            break
    return tk, ps(tk), vs(tk)


def view_geometry(t: np.ndarray, pos: np.ndarray, vel: np.ndarray, lon: float, lat: float,
                  h: float) -> dict:
    """Heading (deg clockwise from north, of the satellite's motion projected on the ground at
    the target), look side, incidence angle (deg from the ellipsoid normal at the target) and
    slant range (m) of a target seen at zero Doppler.

    Examples
    --------
    A satellite flying due north 700 km above the equator, passing west of the target:

    >>> import numpy as np
    >>> t = np.arange(0.0, 100.0, 10.0)
    >>> x0 = geodetic_to_ecef(-6.0, 0.0, 700e3)
    >>> pos = x0 + np.outer(t - 50.0, [0.0, 0.0, 7000.0])
    >>> vel = np.tile([0.0, 0.0, 7000.0], (t.size, 1))
    >>> g = view_geometry(t, pos, vel, 0.0, 0.0, 0.0)
    >>> round(g["heading_deg"]), g["look"]
    (0, 'right')
    """
    x = geodetic_to_ecef(lon, lat, h)
    tz, p, v = zero_doppler(np.asarray(t, float), np.asarray(pos, float), np.asarray(vel, float), x)
    e, n, u = enu_axes(lon, lat)
    los = p - x
    rng = float(np.linalg.norm(los))
    heading = float(np.degrees(np.arctan2(v @ e, v @ n)))
    look_bearing = float(np.degrees(np.arctan2(-los @ e, -los @ n)))
    incidence = float(np.degrees(np.arccos(np.clip(los @ u / rng, -1, 1))))
    # The target lies to the right of the motion when (v x up) points towards it.
    side = np.cross(v, u) @ (-los)
    return {"time_s": tz, "heading_deg": heading, "incidence_deg": incidence,
            "slant_range_m": rng, "look": "right" if side > 0 else "left",
            "look_bearing_deg": look_bearing}
