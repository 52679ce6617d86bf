"""Spectral bands and indices: band roles per sensor, normalised-difference indices, SAVI.

Indices need to know which band is red, NIR... A band named by role (``red``, ``nir``,
``swir1``...) is used as is; a band named ``Bn``/``B0n``/``B8A`` (the Sentinel-2/Landsat
convention, optionally after a date ``YYYY-MM-DD_``) gets its role from the sensor's band table
(:data:`SENSOR_BANDS`).  Zero-padded names (``B04``, ``B8A``) mean Sentinel-2; otherwise the
sensor must be said (``B4`` is red on Sentinel-2 and Landsat 8, NIR on Landsat 5/7).
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

#: Band number -> role for each sensor (``"8A"`` for Sentinel-2's narrow NIR).
SENSOR_BANDS: dict[str, dict[str, str]] = {
    "sentinel2": {"1": "coastal", "2": "blue", "3": "green", "4": "red", "5": "rededge1",
                  "6": "rededge2", "7": "rededge3", "8": "nir", "8A": "nir08", "9": "watervapour",
                  "10": "cirrus", "11": "swir1", "12": "swir2"},
    "landsat8": {"1": "coastal", "2": "blue", "3": "green", "4": "red", "5": "nir", "6": "swir1",
                 "7": "swir2", "8": "pan", "9": "cirrus", "10": "tir1", "11": "tir2"},
    "landsat7": {"1": "blue", "2": "green", "3": "red", "4": "nir", "5": "swir1", "6": "tir",
                 "7": "swir2", "8": "pan"},
}
SENSOR_BANDS["landsat9"] = SENSOR_BANDS["landsat8"]
SENSOR_BANDS["landsat5"] = SENSOR_BANDS["landsat7"]

ROLES = ("coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
         "watervapour", "cirrus", "swir1", "swir2", "pan", "tir", "tir1", "tir2")
_ROLE_ALIASES = {"nir08": "nir08", "nir_narrow": "nir08", "swir16": "swir1", "swir22": "swir2",
                 "re1": "rededge1", "re2": "rededge2", "re3": "rededge3"}

#: Normalised-difference indices: name -> (a, b) for (a - b) / (a + b); see :func:`spectral_indices`.
NORMALISED_DIFFERENCES = {
    "NDVI": ("nir", "red"),      # vegetation (Rouse et al. 1974)
    "NDWI": ("green", "nir"),    # open water (McFeeters 1996)
    "NDSI": ("green", "swir1"),  # snow and ice (Hall et al. 1995); equals MNDWI (Xu 2006)
    "NBR": ("nir", "swir2"),     # burn ratio, also moisture of vegetation
    "NDBI": ("swir1", "nir"),    # built-up (Zha et al. 2003)
}
#: Every index :func:`spectral_indices` can compute, in output order.
INDEX_NAMES = ("NDVI", "NDWI", "NDSI", "NBR", "NDBI", "SAVI")
#: Soil-brightness factor of SAVI (Huete 1988); assumes reflectance 0..1 (see ``scale``).
SAVI_L = 0.5

_BNUM = re.compile(r"^(?:SR_)?B0*(\d{1,2}A?)$", re.IGNORECASE)


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / (a + b)
    return np.where(np.isfinite(out), out, np.nan).astype(np.float32, copy=False)


def available_indices(roles: Sequence[str]) -> list[str]:
    """The indices of :data:`INDEX_NAMES` that the band roles allow.

    Examples
    --------
    >>> available_indices(["blue", "green", "red", "nir"])
    ['NDVI', 'NDWI', 'SAVI']
    """
    have = set(roles)
    out = [n for n, (a, b) in NORMALISED_DIFFERENCES.items() if a in have and b in have]
    if {"nir", "red"} <= have:
        out.append("SAVI")
    return [n for n in INDEX_NAMES if n in out]


def spectral_indices(bands: Mapping[str, np.ndarray],
                     names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Spectral indices from bands keyed by role (``red``, ``nir``, ``green``, ``swir1``...).

    All are dimensionless, NaN where an input is NaN or the denominator is 0.  Normalised
    differences do not depend on a common scale of the bands; SAVI assumes reflectance 0..1.

    Parameters
    ----------
    bands : role -> array (same shapes)
    names : indices wanted (default: all that the roles allow, :func:`available_indices`).

    Examples
    --------
    >>> import numpy as np
    >>> out = spectral_indices({"red": np.array([0.1]), "nir": np.array([0.5])})
    >>> sorted(out), round(float(out["NDVI"][0]), 4), round(float(out["SAVI"][0]), 4)
    (['NDVI', 'SAVI'], 0.6667, 0.5455)
    """
    names = available_indices(list(bands)) if names is None else list(names)
    out = {}
    for name in names:
        if name == "SAVI":
            nir, red = bands["nir"], bands["red"]
            with np.errstate(divide="ignore", invalid="ignore"):
                v = (1 + SAVI_L) * (nir - red) / (nir + red + SAVI_L)
            out[name] = np.where(np.isfinite(v), v, np.nan).astype(np.float32, copy=False)
        else:
            a, b = NORMALISED_DIFFERENCES[name]
            out[name] = _nd(bands[a], bands[b])
    return out



def band_role(name: str, sensor: str | None) -> str | None:
    """Role of a band name (``red``...), via :data:`SENSOR_BANDS` for ``Bn`` names.

    Examples
    --------
    >>> band_role("B04", None), band_role("B4", "landsat7"), band_role("NIR", None)
    ('red', 'nir', 'nir')
    """
    low = name.strip().lower()
    if low in ROLES:
        return low
    if low in _ROLE_ALIASES:
        return _ROLE_ALIASES[low]
    m = _BNUM.match(name.strip())
    if not m:
        return None
    num = m.group(1).upper()
    if sensor is None:
        if not re.match(r"^(?:SR_)?B(0\d|8A|1[0-2])$", name.strip(), re.IGNORECASE):
            return None  # "B4" is ambiguous without a sensor
        sensor = "sentinel2"
    return SENSOR_BANDS[sensor].get(num)

