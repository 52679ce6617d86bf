"""SAR offset tracking: speckle-robust input, radar directions, orbit and terrain offset model.

Amplitude images are matched as log-amplitude: speckle is multiplicative, so the logarithm
turns it into additive noise of constant variance and bright targets stop dominating the
correlation. Offsets of a pair are measured on the map grid (dx east, dy down) and turned
into range and azimuth with the track heading, or taken as they are in radar geometry.

The offsets of a pair hold, besides ice motion, a smooth part from the two orbits and a part
proportional to terrain height (the stereo effect of the two viewing geometries).
:class:`GeometryModel` fits both on stable ground, xDEM-style (fit/apply, parameters in a plain
dict), and removes them everywhere. The height a node's offset responds to is not the height
at its centre but the matcher's weighted average over its chip: :func:`effective_heights`.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..core.robust import nmad, trimmed_lstsq
from .params import SAR_DEFAULTS, TrackParams
from .track import _prepared, node_origins, node_shape



def sar_params(**changes) -> TrackParams:
    """The SAR tracking defaults (:data:`SAR_DEFAULTS`) with ``changes`` applied.

    A change of None is ignored (it stands for a command-line option left unset); to set a
    field to None, e.g. ``lk_narrow=None`` to drop the strain-adaptive second LK pass, use
    ``dataclasses.replace(sar_params(), lk_narrow=None)``.
    """
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


INPUT_UNITS = ("auto", "amplitude", "intensity", "db")


def to_log(img: np.ndarray, units: str = "auto") -> np.ndarray:
    """Log-amplitude of an image given as amplitude, intensity or dB (``auto``: dB when most
    valid values are negative, which amplitude and intensity never are), NaN where undefined.

    Matching is scale-free, so the log of amplitude and of intensity track alike; dB of
    intensity is 20 / ln 10 times the log-amplitude.

    Examples
    --------
    >>> [round(float(v), 4) for v in to_log(np.array([-10.0, -20.0], np.float32))]
    [-1.1513, -2.3026]
    """
    if units not in INPUT_UNITS:
        raise ValueError(f"input units must be one of {', '.join(INPUT_UNITS)}, got {units!r}")
    a = np.asarray(img, np.float32)
    if units == "auto":
        fin = a[np.isfinite(a)]
        units = "db" if fin.size and np.median(fin) < 0 else "amplitude"
    if units == "db":
        return a * np.float32(np.log(10.0) / 20.0)
    return log_amplitude(a, intensity=units == "intensity")


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


def _taper(params: TrackParams, window: float | None) -> np.ndarray:
    """The matcher's LK weights along one axis of a chip (Gaussian, std = window x chip)."""
    t = np.arange(params.chip) - (params.chip - 1) / 2
    return (np.exp(-0.5 * (t / (window * params.chip)) ** 2) if window
            else np.ones(params.chip)).astype(np.float32)


def _node_sums(q: np.ndarray, n: int, params: TrackParams, g: np.ndarray) -> np.ndarray:
    """Weighted sums ``sum_k g[k] q[..., o_j + k]`` over each node's chip along the last axis.

    Node origins are evenly spaced (o_j = o_0 + j step), so with g zero-padded to L = ceil(chip
    / step) blocks of ``step`` the sum is L small matrix products over blocks of q: about
    chip / step times less work than a dense (size x n) weight matrix. Pixels outside the
    image weigh nothing, as in the matcher.
    """
    step = params.step
    L = -(-params.chip // step)
    o0 = int(node_origins(1, step, params.chip)[0])
    span = (n - 1 + L) * step
    qp = np.zeros(q.shape[:-1] + (span,), np.float32)
    lo, hi = max(o0, 0), min(o0 + span, q.shape[-1])
    if hi > lo:
        qp[..., lo - o0:hi - o0] = q[..., lo:hi]
    gp = np.zeros(L * step, np.float32)
    gp[:params.chip] = g
    r = qp.reshape(q.shape[:-1] + (n - 1 + L, step)) @ gp.reshape(L, step).T
    return sum(r[..., m:m + n, m] for m in range(L))


def effective_heights(image: np.ndarray, height: np.ndarray, params: TrackParams,
                      heading: float | None, narrow: np.ndarray | None = None):
    """Height that each node's tracked offset responds to, for an offset k * height along range.

    Lucas-Kanade refinement solves a weighted least-squares problem over the chip, so in the
    linear regime its estimate of a spatially varying offset d(x) is
    ``H^-1 sum_x w(x) a(x) g(x)^T d(x)`` with g the gradient of the pre-filtered reference
    chip, a = g minus its weighted chip mean, w the LK Gaussian window and
    ``H = sum w a a^T``. For d = k h(x) e_range this is k times the returned heights: the
    range component (what a range offset regression should use) and the azimuth component
    (the cross term; a few metres RMS on isotropic speckle). Where the texture is anisotropic
    or the heights vary inside the chip, these differ from any fixed smoothing of the DEM.

    All nodes at once: the taper is separable, so each weighted chip sum is two 1-D node sums
    (:func:`_node_sums`). The window is the matcher's wide one (``params.lk_window``), or its
    narrow one (``params.lk_narrow``) at the nodes where ``narrow`` is set. With
    ``oversample`` > 1 the chips are matched on a finer grid; the weights are the same
    fractions of the chip, so they are computed at the original pixel size.

    Parameters
    ----------
    image : reference image of the pair as the tracker reads it (log-amplitude), NaN = nodata.
    height : terrain height on the image grid (metres, NaN = unknown).
    params : the tracking settings (chip, step, prefilter, LK windows).
    heading : track heading (degrees), None for radar geometry; see :func:`radar_components`.
    narrow : optional bool node array, True where the tracker kept the narrow-window estimate.

    Returns
    -------
    (h_range, h_azimuth) on the node grid, float64 metres; NaN where less than a quarter of
    the chip's weight has both texture and height (the matcher's own minimum share).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.standard_normal((128, 128)).astype(np.float32)
    >>> p = sar_params(chip=32, step=32)
    >>> hr, ha = effective_heights(img, np.full((128, 128), 250.0), p, None)
    >>> bool(np.allclose(hr, 250.0) and np.allclose(ha, 0.0, atol=1e-6))   # flat: no change
    True
    """
    a = _prepared(np.asarray(image, np.float32), params)   # exactly what the matcher reads
    gy, gx = np.gradient(a)
    h = np.asarray(height, np.float64)
    valid = np.isfinite(gx) & np.isfinite(gy) & np.isfinite(h)
    if heading is None:
        er, ea = (1.0, 0.0), (0.0, 1.0)
    else:
        t = math.radians(heading)
        er, ea = (math.cos(t), math.sin(t)), (math.sin(t), -math.cos(t))
    gx = np.where(valid, gx, 0).astype(np.float32)
    gy = np.where(valid, gy, 0).astype(np.float32)
    # Heights relative to their median keep the products well scaled in float32.
    z0 = float(np.median(h[valid])) if valid.any() else 0.0
    gu = (gx * er[0] + gy * er[1]) * np.where(valid, h - z0, 0).astype(np.float32)
    quantities = (valid.astype(np.float32), gx, gy, gx * gx, gy * gy, gx * gy, gu, gx * gu,
                  gy * gu)
    ny, nx = node_shape(a.shape, params.step)
    out = []
    for window in (params.lk_window, params.lk_narrow if narrow is not None else None):
        if window is None and out:
            break
        g = _taper(params, window)

        def chip_sum(q):
            return _node_sums(_node_sums(q, nx, params, g).T, ny, params, g).T.astype(np.float64)

        sw, sx, sy, sxx, syy, sxy, su, sxu, syu = (chip_sum(q) for q in quantities)
        with np.errstate(invalid="ignore", divide="ignore"):
            mx, my = sx / sw, sy / sw
            hxx, hyy, hxy = sxx - sw * mx * mx, syy - sw * my * my, sxy - sw * mx * my
            bx, by = sxu - mx * su, syu - my * su
            det = hxx * hyy - hxy * hxy
            px, py = (hyy * bx - hxy * by) / det, (hxx * by - hxy * bx) / det
        bad = ~(det > 0) | (sw < 0.25 * float(g.sum()) ** 2)
        out.append((np.where(bad, np.nan, px * er[0] + py * er[1] + z0),
                    np.where(bad, np.nan, px * ea[0] + py * ea[1])))
    (hr, ha) = out[0]
    if len(out) > 1:
        hr, ha = np.where(narrow, out[1][0], hr), np.where(narrow, out[1][1], ha)
    return hr, ha


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
            c, r, keep, _ = trimmed_lstsq(A / scale, u, k=3.0, passes=6, floor=1e-3)
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
