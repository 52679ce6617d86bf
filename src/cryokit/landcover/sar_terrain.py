"""SAR backscatter (dB, cross-pol ratio) and terrain (elevation, slope, aspect) features."""

from __future__ import annotations

import numpy as np

from ..core.terrain import horn_gradient, slope_aspect_from_gradient


def to_db(linear: np.ndarray) -> np.ndarray:
    """Backscatter intensity (power) in dB: ``10 log10``; NaN for values <= 0.

    Examples
    --------
    >>> to_db(np.array([0.1, 1.0, 0.0])).tolist()
    [-10.0, 0.0, nan]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(np.where(linear > 0, linear, np.nan))
    return out.astype(np.float32, copy=False)


def sar_features(vv: np.ndarray, vh: np.ndarray, db: bool = True) -> dict[str, np.ndarray]:
    """``VV``, ``VH`` and the cross-pol ratio ``VH-VV`` (VH/VV as a difference), all in dB.

    Parameters
    ----------
    vv, vh : backscatter, in dB when ``db`` is True, else linear power (sigma0/gamma0).

    Examples
    --------
    >>> f = sar_features(np.array([0.1]), np.array([0.01]), db=False)
    >>> [round(float(f[k][0]), 3) for k in ("VV", "VH", "VH-VV")]
    [-10.0, -20.0, -10.0]
    """
    vv = np.asarray(vv, np.float32) if db else to_db(vv)
    vh = np.asarray(vh, np.float32) if db else to_db(vh)
    return {"VV": vv, "VH": vh, "VH-VV": (vh - vv).astype(np.float32)}


def terrain_features(dem: np.ndarray, res: tuple[float, float]) -> dict[str, np.ndarray]:
    """``elevation`` (m), ``slope`` (degrees, Horn) and aspect as ``aspect_sin``/``aspect_cos``
    (aspect clockwise from north of the direction the slope faces; flat: sin 0, cos 1).

    The circular aspect becomes two continuous features, so 359 and 1 degrees are close.  The
    1-pixel border of ``dem`` is NaN in slope/aspect (Horn needs a 3 x 3 window).

    Examples
    --------
    >>> dem = np.repeat(np.arange(5.0)[None, :] * -20.0, 4, axis=0)  # falls to the east
    >>> t = terrain_features(dem, (20.0, 20.0))
    >>> [round(float(t[k][1, 2]), 6) + 0.0 for k in ("slope", "aspect_sin", "aspect_cos")]
    [45.0, 1.0, 0.0]
    """
    dem = np.asarray(dem, np.float32)
    slp, asp = slope_aspect_from_gradient(*horn_gradient(dem, res))
    rad = np.radians(asp)
    return {"elevation": dem, "slope": slp.astype(np.float32),
            "aspect_sin": np.sin(rad).astype(np.float32),
            "aspect_cos": np.cos(rad).astype(np.float32)}

