"""SAR offset tracking: speckle-robust input, radar directions, orbit and terrain offset model.

Amplitude images are matched as log-amplitude: speckle is multiplicative, so the logarithm
turns it into additive noise of constant variance and bright targets stop dominating the
correlation. Offsets of a pair are measured on the map grid (dx east, dy down) and turned
into range and azimuth with the track heading, or taken as they are in radar geometry.

The offsets of a pair hold, besides ice motion, a smooth part from the two orbits and a part
proportional to terrain height (the stereo effect of the two viewing geometries).
:class:`GeometryModel` fits both on stable ground, xDEM-style (fit/apply, parameters in a plain
dict), and removes them everywhere.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..robust import nmad
from .track import TrackParams

# Sentinel-1 IW GRD at 20 m: speckle needs larger chips and lower peak thresholds than optical
# texture. A chip of 64 px (1.3 km) keeps the stable residual NMAD under 0.1 px for 4-look
# amplitudes at coherence 0.7 on the synthetic series (docs/BENCHMARKS.md).
SAR_DEFAULTS = TrackParams(chip=64, step=16, search=24, prefilter="highpass", sigma=3.0,
                           min_peak=0.08, min_snr=1.0, max_nodata=0.3, lk_window=0.35)


def sar_params(**changes) -> TrackParams:
    """The SAR tracking defaults (:data:`SAR_DEFAULTS`) with ``changes`` applied."""
    return replace(SAR_DEFAULTS, **{k: v for k, v in changes.items() if v is not None})


def log_amplitude(img: np.ndarray, *, intensity: bool = False) -> np.ndarray:
    """Natural log of amplitude (or of intensity with ``intensity=True``), NaN where <= 0.

    Examples
    --------
    >>> log_amplitude(np.array([[1.0, np.e], [0.0, np.nan]], np.float32)).tolist()
    [[0.0, 1.0], [nan, nan]]
    """
    a = np.asarray(img, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log(np.where(a > 0, a, np.nan))
    return out * np.float32(0.5) if intensity else out


def radar_components(dx: np.ndarray, dy: np.ndarray, heading: float | None):
    """(range, azimuth) from map-pixel offsets (dx east, dy down the rows).

    ``heading`` is the satellite track heading in degrees clockwise from north (right-looking
    SAR): azimuth points along the track, (sin h, cos h) in (east, north); range points away
    from the track, (cos h, -sin h). ``None`` means the images are in radar geometry already:
    columns are range and rows azimuth.

    Examples
    --------
    >>> r, a = radar_components(np.array([1.0]), np.array([0.0]), 0.0)   # eastward, track north
    >>> float(r[0]), float(a[0])
    (1.0, 0.0)
    """
    if heading is None:
        return dx, dy
    h = math.radians(heading)
    de, dn = dx, -dy
    return de * math.cos(h) - dn * math.sin(h), de * math.sin(h) + dn * math.cos(h)


def map_components(rng: np.ndarray, az: np.ndarray, heading: float | None):
    """Inverse of :func:`radar_components`: (dx east, dy down) from (range, azimuth)."""
    if heading is None:
        return rng, az
    h = math.radians(heading)
    de = rng * math.cos(h) + az * math.sin(h)
    dn = -rng * math.sin(h) + az * math.cos(h)
    return de, -dn


class GeometryModel:
    """Orbit and terrain offsets of a pair: polynomial(x, y) + terms in terrain height.

    For each component u (range, azimuth) the model is
    ``u = sum c_pq xn^p yn^q (p + q <= degree) + sum_k h_k (z - z0)^k`` with xn, yn the node
    column and row scaled to [-1, 1] and z the terrain height in metres (z0 its median over
    the fitted nodes). It is fitted on stable nodes by iteratively trimmed least squares
    (nodes beyond 3 NMAD are dropped, so moving ground inside the mask does not pull).

    Parameters
    ----------
    degree : polynomial degree in image coordinates (0, 1 or 2).
    height_degree : powers of height (0: no terrain term, 1: linear stereo term).

    Examples
    --------
    >>> rows, cols = np.indices((40, 40))
    >>> z = 300.0 + 0.5 * (cols - 20.0) ** 2 + 8.0 * rows
    >>> rng = 0.2 + 0.002 * (z - 500.0)          # a pure stereo offset, 2 px per km
    >>> m = GeometryModel().fit(rng, 0 * rng, np.ones((40, 40), bool), z)
    >>> round(m.params["range"]["height"][0] * 1000, 3)   # px per km
    2.0
    """

    def __init__(self, degree: int = 1, height_degree: int = 1):
        if degree not in (0, 1, 2) or height_degree not in (0, 1, 2):
            raise ValueError("degree and height_degree must be 0, 1 or 2")
        self.degree, self.height_degree = degree, height_degree
        self.params: dict = {}

    def _design(self, shape, rows, cols, z):
        ny, nx = shape
        xn = 2 * cols / max(nx - 1, 1) - 1
        yn = 2 * rows / max(ny - 1, 1) - 1
        cols_ = [xn ** p * yn ** q for p in range(self.degree + 1)
                 for q in range(self.degree + 1 - p)]
        names = [f"x{p}y{q}" for p in range(self.degree + 1) for q in range(self.degree + 1 - p)]
        for k in range(1, self.height_degree + 1):
            cols_.append((z - self.params["z0"]) ** k)
            names.append(f"h{k}")
        return np.column_stack(cols_), names

    def fit(self, rng: np.ndarray, az: np.ndarray, stable: np.ndarray,
            height: np.ndarray | None = None, min_nodes: int = 30) -> GeometryModel:
        """Fit on nodes where ``stable`` is set and both offsets (and height) are finite."""
        if height is None:
            height = np.zeros(rng.shape)
        use = stable & np.isfinite(rng) & np.isfinite(az) & np.isfinite(height)
        n = int(use.sum())
        if n < min_nodes:
            raise ValueError(f"only {n} valid stable nodes (need {min_nodes}) to fit the "
                             "orbit/terrain model")
        rows, cols = np.nonzero(use)
        self.params = {"degree": self.degree, "height_degree": self.height_degree,
                       "z0": float(np.median(height[use])), "shape": list(rng.shape)}
        A, names = self._design(rng.shape, rows, cols, height[use])
        # Height in metres and normalised coordinates differ in scale by 1e3: scale the columns
        # so the trimmed least squares is well conditioned.
        scale = np.maximum(np.abs(A).max(0), 1e-12)
        out = {"terms": names, "n_stable": n}
        for name, u in (("range", rng[use]), ("azimuth", az[use])):
            keep = np.ones(u.size, bool)
            for _ in range(6):
                c, *_ = np.linalg.lstsq(A[keep] / scale, u[keep], rcond=None)
                r = u - (A / scale) @ c
                new = np.abs(r - np.median(r[keep])) <= 3 * max(nmad(r[keep]), 1e-3)
                if (new == keep).all():
                    break
                keep = new
            c = c / scale
            poly = {t: float(v) for t, v in zip(names, c) if not t.startswith("h")}
            out[name] = {"poly": poly, "height": [float(v) for t, v in zip(names, c)
                                                  if t.startswith("h")],
                         "n_used": int(keep.sum()), "nmad_px": nmad(r[keep])}
        self.params.update(out)
        return self

    def predict(self, height: np.ndarray | None = None, shape=None):
        """Model offsets (range, azimuth) in px on the node grid."""
        shape = tuple(shape or self.params["shape"])
        if height is None:
            height = np.full(shape, self.params["z0"])
        rows, cols = np.indices(shape)
        A, names = self._design(shape, rows.ravel(), cols.ravel(), np.asarray(height).ravel())
        out = []
        for name in ("range", "azimuth"):
            p = self.params[name]
            c = np.array([p["poly"][t] if not t.startswith("h") else p["height"][int(t[1:]) - 1]
                          for t in names])
            out.append((A @ c).reshape(shape))
        return tuple(out)

    def apply(self, rng: np.ndarray, az: np.ndarray, height: np.ndarray | None = None):
        """Offsets with the fitted model removed. NaN height leaves NaN."""
        mr, ma = self.predict(height, rng.shape)
        return rng - mr, az - ma


def residual_nmad(rng: np.ndarray, az: np.ndarray, stable: np.ndarray) -> tuple[float, float]:
    """NMAD (px) of corrected offsets on stable nodes, range and azimuth."""
    use = stable & np.isfinite(rng) & np.isfinite(az)
    return nmad(rng[use]), nmad(az[use])
