"""GNSS station series and velocities: NGL ``.tenv`` reading, robust velocity, plate motion.

Velocities are east, north, up in mm/yr. NGL series are in a global frame (IGS08/IGS14), so
horizontal velocities include the motion of the plate (about 25 mm/yr in Europe); EGMS is
calibrated to an ETRF-like (plate-fixed) GNSS model. :func:`plate_velocity` gives the rigid
rotation of a plate from its Euler vector so that it can be removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.errors import UserError, require_file
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
_TENV_COLUMNS = ["station", "date", "decyear", "mjd", "gps_week", "gps_day", "de", "dn", "du",
                 "antenna_height", "sig_e", "sig_n", "sig_u", "corr_en", "corr_eu", "corr_nu"]


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


def read_tenv(path: str | os.PathLike) -> GnssSeries:
    """Read a Nevada Geodetic Laboratory ``.tenv`` file (whitespace separated, no header).

    Columns: station, YYMMMDD, decimal year, MJD, GPS week, day, dE, dN, dU (m), antenna
    height (m), sigma E/N/U (m), correlations EN/EU/NU. Returned in mm.

    Examples
    --------
    >>> s = read_tenv("BARC.IGS08.tenv.txt")        # doctest: +SKIP
    >>> s.enu.shape                                  # doctest: +SKIP
    (3925, 3)
    """
    p = require_file(path)
    try:
        df = pd.read_csv(p, sep=r"\s+", header=None, comment="#", dtype={0: str, 1: str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"not a readable NGL .tenv file ({e})", p) from None
    if df.shape[1] < 13:
        raise UserError(f"has {df.shape[1]} columns, an NGL .tenv line has 13 or more "
                        "(station, date, decyear, MJD, week, day, dE, dN, dU, antenna, sE, sN, sU)", p)
    df = df.iloc[:, :16]
    df.columns = _TENV_COLUMNS[:df.shape[1]]
    try:
        num = df.iloc[:, 2:13].astype(np.float64)
    except ValueError:
        bad = pd.to_numeric(df.iloc[:, 2:13].stack(), errors="coerce").isna()
        line = int(bad[bad].index[0][0]) + 1
        raise UserError(f"line {line}: non-numeric value in a numeric column", p) from None
    inf = np.isinf(num.to_numpy())
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise UserError(f"line {int(r) + 1}, column {num.columns[c]}: infinite value", p)
    if not len(num):
        raise UserError("holds no observation", p)
    stations = df["station"].unique()
    if len(stations) != 1:
        raise UserError(f"holds {len(stations)} stations ({', '.join(map(str, stations[:5]))}); "
                        "one .tenv file per station expected", p)
    order = np.argsort(num["mjd"].to_numpy(), kind="stable")
    return GnssSeries(station=str(stations[0]), mjd=num["mjd"].to_numpy()[order],
                      t=num["decyear"].to_numpy()[order],
                      enu=1000.0 * num[["de", "dn", "du"]].to_numpy()[order],
                      sigma=1000.0 * num[["sig_e", "sig_n", "sig_u"]].to_numpy()[order])


def read_station_csv(path: str | os.PathLike, need_velocity: bool = False) -> pd.DataFrame:
    """Read a station table: ``station, lon, lat`` and, for velocities, ``ve, vn, vu`` (mm/yr)
    with optional ``sve, svn, svu`` (1-sigma, mm/yr). Column names are case-insensitive.

    Examples
    --------
    >>> df = read_station_csv("stations.csv")        # doctest: +SKIP
    """
    p = require_file(path)
    try:
        df = pd.read_csv(p, sep=None, engine="python", dtype={"station": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"not a readable CSV ({e})", p) from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    need = ["station", "lon", "lat"] + (["ve", "vn", "vu"] if need_velocity else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise UserError(f"missing column(s) {', '.join(missing)}; a station CSV has "
                        "station, lon, lat[, ve, vn, vu (mm/yr), sve, svn, svu]", p)
    num = [c for c in ("lon", "lat", "ve", "vn", "vu", "sve", "svn", "svu") if c in df.columns]
    for c in num:
        v = pd.to_numeric(df[c], errors="coerce")
        if v.isna().any() or np.isinf(v).any():
            raise UserError(f"column {c}, line {int(np.flatnonzero(~np.isfinite(v))[0]) + 2}: "
                            "not a finite number", p)
        df[c] = v.astype(np.float64)
    if df.empty:
        raise UserError("holds a header but no station", p)
    if ((df["lat"].abs() > 90) | (df["lon"].abs() > 360)).any():
        raise UserError("lon/lat out of range (degrees expected)", p)
    df["station"] = df["station"].astype(str).str.strip()
    return df


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
