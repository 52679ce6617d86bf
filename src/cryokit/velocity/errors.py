"""Per-node velocity error from correlation quality, scaled by the stable-ground spread.

The spread of a tracker's offsets grows as the correlation peak falls: for a peak rho the
displacement variance goes as (1 - rho^2) / rho^2 (the signal-to-noise ratio of the matched
chips is rho / sqrt(1 - rho^2)). That gives the shape of the error across the scene; its size
comes from stable ground, where the truth is zero: the error on a node is the stable-ground
NMAD times q(node) / median q(stable nodes), with q = sqrt(1 - rho^2) / rho. A node that
correlates as well as typical rock gets the stable NMAD; a node with half the signal-to-noise
ratio twice it.
"""

from __future__ import annotations

import numpy as np


def quality_factor(peak: np.ndarray) -> np.ndarray:
    """q = sqrt(1 - rho^2) / rho of a correlation peak rho, NaN where rho is not in (0, 1].

    Examples
    --------
    >>> quality_factor(np.array([0.6, 0.8, 1.0])).round(3).tolist()
    [1.333, 0.75, 0.0]
    """
    rho = np.asarray(peak, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.sqrt(np.clip(1.0 - rho * rho, 0.0, None)) / rho
    return np.where((rho > 0) & (rho <= 1), q, np.nan)


def node_errors(peak: np.ndarray, stable: np.ndarray, nmad: tuple[float, float],
                floor: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """1-sigma error of each node's x and y component, in the units of ``nmad``.

    Parameters
    ----------
    peak : correlation peak per node (NaN where unmatched).
    stable : bool mask of the stable nodes the NMAD was measured on.
    nmad : stable-ground NMAD of the (corrected) x and y components.
    floor : smallest error as a fraction of the NMAD: a near-perfect peak on a node says little
        about biases the stable ground shares (co-registration, orbit), which the NMAD holds.

    Returns
    -------
    (ex, ey), NaN where the peak or the stable reference is missing.

    Examples
    --------
    >>> peak = np.array([[0.8, 0.8], [0.8, 0.4]])
    >>> stable = np.array([[True, True], [True, False]])
    >>> ex, ey = node_errors(peak, stable, (2.0, 3.0))
    >>> ex.round(2).tolist(), ey[1, 1].round(2)
    ([[2.0, 2.0], [2.0, 6.11]], np.float64(9.17))
    """
    q = quality_factor(peak)
    ref = q[np.asarray(stable, bool) & np.isfinite(q)]
    if ref.size == 0 or not np.all(np.isfinite(nmad)):
        nan = np.full(q.shape, np.nan)
        return nan, nan.copy()
    rel = np.maximum(q / max(float(np.median(ref)), 1e-12), floor)
    return rel * float(nmad[0]), rel * float(nmad[1])


def speed_error(vx: np.ndarray, vy: np.ndarray, ex: np.ndarray, ey: np.ndarray) -> np.ndarray:
    """1-sigma error of the speed ``hypot(vx, vy)`` from independent component errors: the
    errors projected on the flow direction (as ITS_LIVE's ``v_error``); their mean where the
    speed is zero.

    Examples
    --------
    >>> speed_error(np.array([3.0, 0.0]), np.array([4.0, 0.0]), np.array([1.0, 1.0]),
    ...             np.array([2.0, 3.0])).round(3).tolist()
    [1.709, 2.0]
    """
    v = np.hypot(vx, vy)
    with np.errstate(invalid="ignore", divide="ignore"):
        along = np.sqrt((ex * vx) ** 2 + (ey * vy) ** 2) / v
    return np.where(v > 0, along, 0.5 * (ex + ey))
