"""Synthetic Sentinel-1-like SAR amplitude time series with an exactly known truth.

A valley glacier (the plug flow with shear margins of :mod:`cryokit.synthetic.velocity`)
crosses terrain given by a DEM; ``n`` map-projected (GRD-like) amplitude images are taken
``interval`` days apart. Each image carries multiplicative L-look speckle that is partly
coherent between dates, an orbital ramp and a terrain-correlated (stereo) offset, so an
offset-tracking product can be checked against the true motion, the true geometry
coefficients and the true offsets of every pair.

Conventions (the contract with the product code)
------------------------------------------------
Map pixels
    Pixel centres at integer (row, col); x = columns (east), y = rows (down = south).
    A displacement (dy, dx) is *forward*: the feature at (row, col) in image i is at
    (row + dy, col + dx) in image j, as in :class:`~cryokit.synthetic.SyntheticPair`.
Radar directions
    Right-looking SAR, track heading ``h`` in degrees clockwise from north. Azimuth unit
    vector in (east, north) = (sin h, cos h); range (look direction, ground range growing
    away from the track) = (cos h, -sin h). With dE = dx and dN = -dy (pixels)::

        d_range = dE cos h - dN sin h = dx cos h + dy sin h
        d_azimuth = dE sin h + dN cos h = dx sin h - dy cos h

    and back: dx = d_range cos h + d_azimuth sin h, dy = d_range sin h - d_azimuth cos h.
    All range/azimuth quantities are in map pixels (``pixel_size`` metres) along those
    ground directions.
Speckle
    Fully developed, multiplicative, L looks: intensity = reflectivity * mean over the L looks
    of |z|^2 with z complex circular Gaussian, E|z|^2 = 1, so intensity / reflectivity is
    Gamma(L, 1/L) (ENL = L); ``images[k] = sqrt(intensity)``. Per look
    z_k = sqrt(c) z_common + sqrt(1 - c) z_indep_k, where z_common is
    attached to the ground (it moves with the ice and the geometry, like the reflectivity
    texture) and band-limited (Gaussian of ``params['speckle_sigma_px']`` sensor pixels), so
    sub-pixel warping is meaningful. The complex correlation between two dates of the same
    ground is c: ``coherence`` on rock, ``ice_coherence`` on the glacier (a ~1.5 px soft edge
    between them), the intensity correlation coefficient c**2.
    ``reflectivity[k]`` is the noise-free mean intensity of image k.
Flow
    ``_Valley`` shape s(p) (map directions, 1 on the centreline where ``along`` peaks) times
    v0 = ``max_speed_px_per_day`` times the seasonal factor
    f(t) = 1 + A sin(2 pi (doy(t) - peak_doy + 365.25 / 4) / 365.25) (maximum at peak_doy),
    with the continuous doy(t) = days since 2000-01-01 + 1. The shape is attached to the ice
    (Lagrangian): ice at p at the reference time t_ref (the middle of the series,
    ``params['reference_days_after_start']``) is at p + v0 s(p) F(t) at time t, with
    F(t) = integral of f over [t_ref, t] (analytic). Hence the ice motion between t_i and
    t_j is exactly v0 s(p) * integral of f over [t_i, t_j] (:meth:`SarSeries.flow_days`),
    s evaluated where that ice was at t_ref; it is exactly 0 off the ice.
Geometry
    Per acquisition k, relative to a virtual reference geometry, in (range, azimuth) px::

        G_k = c_k + x_k xn + y_k yn + height_k (h - h_ref)

    with xn = 2 col / (W - 1) - 1, yn = 2 row / (H - 1) - 1 (both in [-1, 1]), h the DEM
    (metres, bilinear between pixel centres), h_ref = ``params['dem_mean_m']``; the azimuth
    height coefficient is 0 (the stereo effect is along range). The pair geometry is
    G_j - G_i (:meth:`SarSeries.model`, :meth:`SarSeries.geometry`), evaluated at the
    pixels of image i. Image k shows at pixel q the ground at g = q - G_k(q) (converted to
    map dy, dx), i.e. the ice that was at p with p + v0 s(p) F(t_k) = g at t_ref.
Truth of a pair (i, j), on the pixels of image i
    ``motion`` = the ice displacement above; ``geometry`` = G_j - G_i at the pixel;
    ``offsets`` = where a perfect tracker finds the pixel's content in image j (solved
    exactly). ``offsets = motion + geometry + G_j(q + offsets) - G_j(q)``: the last, second
    order term (image j's geometry is evaluated where the feature lands, not at q; no
    smooth geometry can make it vanish for every pair at once) is ~(terrain coefficient x
    slope x offset): RMS <= 0.005 px on stable ground and max ~0.02 px with the default
    fractal DEM at 256-2000 px, up to ~0.1 px on very steep relief (a real DEM squeezed into
    a small grid, or 1200 m of relief in a 64 px image: ~0.2 px on ice crossing the Yahtse
    SRTM relief at 512 px, RMS 0.01-0.03 px). Its maximum per consecutive pair
    is in ``truth.json`` (:func:`write_sar_series`); compute it as offsets - motion - geometry.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import operator
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from scipy import ndimage

from ..core.atomic import atomic_file
from ..core.raster import Grid, read_band, write_cog
from .velocity import _fractal, _hillshade, _Valley

_EPSG = 32633                       # WGS 84 / UTM 33N (Svalbard)
_ORIGIN = (430000.0, 8770000.0)     # near Kongsfjorden, only so the grid looks real
_EPOCH = _dt.date(2000, 1, 1)       # doy(t) = days since _EPOCH + 1
_YEAR = 365.25
_SPECKLE_SIGMA = 0.75               # Gaussian band limit of the speckle, sensor pixels
_INCIDENCE = 39.0                   # degrees, only for the radar shading of the terrain
_SPLINE = 3                         # interpolation order of the warps


@dataclass(frozen=True, eq=False)
class SarSeries:
    """A SAR amplitude time series with its true motion, geometry and offsets.

    Attributes
    ----------
    images : list of float32 arrays (H, W)
        Amplitude, sqrt of the L-look intensity, > 0.
    dates : list of datetime.date
        ``n`` dates ``interval`` days apart, the first is ``start``.
    grid : Grid
        EPSG:32633 (UTM 33N, Svalbard), north-up, ``pixel_size`` m pixels.
    dem : float32 array (H, W)
        Terrain height in metres on ``grid``.
    heading : float
        Satellite track heading, degrees clockwise from north (negative: ascending).
    glacier, stable : bool arrays (H, W)
        Moving ice, and ground that does not move (away from the ice margins).
    params : dict
        All settings, the valley geometry, ``dem_mean_m``, ``reference_days_after_start`` and the
        per-acquisition geometry coefficients ``params['geometry'][comp][name][k]``
        (comp 'range'/'azimuth', name 'c'/'x'/'y'/'height'); JSON-serialisable.
    reflectivity : list of float32 arrays (H, W)
        Noise-free mean intensity of each image (its speckle-free version squared).

    Examples
    --------
    >>> s = make_sar_series((128, 128), n=3, seed=1)
    >>> dr, da = s.motion(0, 1)
    >>> bool((dr[s.stable] == 0).all() and (da[s.stable] == 0).all())
    True
    >>> sorted(s.model(0, 1)["range"])
    ['c', 'height', 'x', 'y']
    """

    images: list[np.ndarray]
    dates: list[_dt.date]
    grid: Grid
    dem: np.ndarray
    heading: float
    glacier: np.ndarray
    stable: np.ndarray
    params: dict
    reflectivity: list[np.ndarray] = field(default_factory=list, repr=False)
    _valley: _Valley | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    # -- time ---------------------------------------------------------------------------
    def _time(self, t) -> float:
        if isinstance(t, _dt.date):
            return _tau(t)
        return _tau(self.dates[0]) + float(t)

    def speed_factor(self, t: _dt.date | float) -> float:
        """v(t) / v0: the seasonal speed factor at a date, or at ``t`` days after ``dates[0]``.

        Examples
        --------
        >>> import datetime
        >>> s = make_sar_series((64, 64), n=2, seasonal_amplitude=0.3, seasonal_peak_doy=196)
        >>> round(s.speed_factor(datetime.date(2000, 7, 14)), 6)   # day 196 of 2000
        1.3
        """
        p = self.params
        return float(_factor(self._time(t), p["seasonal_amplitude"], p["seasonal_peak_doy"]))

    def flow_days(self, i: int, j: int) -> float:
        """Integral of v(t) / v0 over [t_i, t_j] in days: motion = v0 * shape * flow_days."""
        i, j = self._pair(i, j)
        p = self.params
        a, peak = p["seasonal_amplitude"], p["seasonal_peak_doy"]
        return float(_primitive(_tau(self.dates[j]), a, peak)
                     - _primitive(_tau(self.dates[i]), a, peak))

    # -- geometry -----------------------------------------------------------------------
    def _pair(self, i, j) -> tuple[int, int]:
        n = len(self.dates)
        i, j = operator.index(i), operator.index(j)
        if not (0 <= i < n and 0 <= j < n):
            raise IndexError(f"acquisition indices must be in 0..{n - 1}, got ({i}, {j})")
        return i, j

    def _coefs(self, k: int) -> np.ndarray:
        """(2, 4) coefficients of acquisition k: rows range, azimuth; columns c, x, y, height."""
        g = self.params["geometry"]
        return np.array([[g[comp][name][k] for name in _TERMS] for comp in _COMPS])

    def model(self, i: int, j: int) -> dict:
        """True geometry coefficients of the pair (i, j) (acquisition j minus acquisition i).

        Returns ``{"range": {"c", "x", "y", "height"}, "azimuth": {...}}`` in px, px per
        normalised coordinate (xn, yn in [-1, 1]) and px per metre of (h - dem_mean_m).

        Examples
        --------
        >>> s = make_sar_series((64, 64), n=3, seed=2)
        >>> m = s.model(0, 2)
        >>> m["azimuth"]["height"]
        0.0
        >>> bool(np.isclose(m["range"]["c"], s.model(0, 1)["range"]["c"]
        ...                 + s.model(1, 2)["range"]["c"]))
        True
        """
        i, j = self._pair(i, j)
        d = self._coefs(j) - self._coefs(i)
        return {comp: {name: float(d[a, b]) for b, name in enumerate(_TERMS)}
                for a, comp in enumerate(_COMPS)}

    def geometry(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Orbit + terrain apparent offset of the pair, (range, azimuth) px on image i's pixels.

        Exactly :meth:`model` evaluated at every pixel with :attr:`dem`.
        """
        i, j = self._pair(i, j)
        return _evaluate(self._coefs(j) - self._coefs(i), *self._norm_coords(),
                         self.dem.astype(np.float64) - self.params["dem_mean_m"])

    def motion(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """True ice motion from t_i to t_j of the ice seen at each pixel of image i.

        (d_range, d_azimuth) in px, float64 (H, W); exactly 0 off the ice.
        """
        i, j = self._pair(i, j)
        dy, dx = self._ice_motion(i, j)
        return _to_radar(dy, dx, self.heading)

    def offsets(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """What a perfect tracker measures from image i to image j, (range, azimuth) px.

        The feature at pixel q of image i is at q + offsets (in map terms, see the module
        conventions) in image j. Equals ``motion + geometry`` up to a second-order term.
        """
        i, j = self._pair(i, j)
        rows, cols = self._pixels()
        py, px, uy, ux, _ = self._material(i)
        fj = self._days[j]
        # Ground position of the ice at t_j, then the pixel r of image j that shows it:
        # r - G_j(r) = g_j, solved by fixed-point iteration (G varies slowly).
        gy, gx = py + fj * uy, px + fj * ux
        coef = self._coefs(j)
        ry, rx = gy.copy(), gx.copy()
        for _ in range(60):
            dy, dx = self._map_geometry(coef, ry, rx)
            ny, nx = gy + dy, gx + dx
            step = max(float(np.abs(ny - ry).max(initial=0)), float(np.abs(nx - rx).max(initial=0)))
            ry, rx = ny, nx
            if step < 1e-10:
                break
        else:  # pragma: no cover - only for absurd geometry gradients
            raise RuntimeError("pair offsets did not converge (geometry gradient too steep)")
        return _to_radar(ry - rows, rx - cols, self.heading)

    def corrected(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """What a perfect tracker measures once the pair's orbit/terrain model
        (:meth:`geometry`) is removed: ``offsets - geometry``, (range, azimuth) px. The
        truth to compare a product's pair displacement with."""
        (o_r, o_a), (g_r, g_a) = self.offsets(i, j), self.geometry(i, j)
        return o_r - g_r, o_a - g_a

    # -- internals ----------------------------------------------------------------------
    @property
    def _days(self) -> np.ndarray:
        return np.asarray(self.params["flow_days_from_reference"], np.float64)

    def _pixels(self):
        h, w = self.dem.shape
        return np.mgrid[0:h, 0:w].astype(np.float64)

    def _norm_coords(self, rows=None, cols=None):
        h, w = self.dem.shape
        if rows is None:
            rows, cols = self._pixels()
        return 2 * cols / max(w - 1, 1) - 1, 2 * rows / max(h - 1, 1) - 1

    def _map_geometry(self, coef, rows, cols):
        """G (map dy, dx) of one acquisition at arbitrary positions (bilinear DEM)."""
        h = ndimage.map_coordinates(self.dem.astype(np.float64), [rows, cols], order=1,
                                    mode="nearest")
        r, a = _evaluate(coef, *self._norm_coords(rows, cols), h - self.params["dem_mean_m"])
        return _to_map(r, a, self.heading)

    def _material(self, i: int):
        """Position at t_ref (py, px) of the ice seen at each pixel of image i, its flow
        shape (uy, ux) in px/day and the ice support."""
        key = ("material", i)
        if key not in self._cache:
            rows, cols = self._pixels()
            xn, yn = self._norm_coords(rows, cols)
            r, a = _evaluate(self._coefs(i), xn, yn,
                             self.dem.astype(np.float64) - self.params["dem_mean_m"])
            dy, dx = _to_map(r, a, self.heading)
            sup = self._support()
            py, px, uy, ux = _material(self._valley, rows - dy, cols - dx, self._days[i], sup)
            for old in [k for k in self._cache if isinstance(k, tuple)][:-2]:
                del self._cache[old]  # keep the last few images only (2000 x 2000 arrays)
            self._cache[key] = (py, px, uy, ux, sup)
        return self._cache[key]

    def _support(self):
        if "support" not in self._cache:
            h, w = self.dem.shape
            q = _normal_distance(self._valley, np.arange(h, dtype=np.float64),
                                 np.arange(w, dtype=np.float64))
            self._cache["support"] = q < _reach(self._valley, self.params["max_geometry_px"])
        return self._cache["support"]

    def _ice_motion(self, i, j):
        _, _, uy, ux, _ = self._material(i)
        f = self._days[j] - self._days[i]
        return uy * f, ux * f


_COMPS = ("range", "azimuth")
_TERMS = ("c", "x", "y", "height")


def _tau(d: _dt.date) -> float:
    return float((d - _EPOCH).days)


def _phase(tau, peak_doy):
    return 2 * np.pi * (np.asarray(tau, np.float64) + 1 - peak_doy + _YEAR / 4) / _YEAR


def _factor(tau, amplitude, peak_doy):
    """v / v0 at continuous day ``tau`` (days since 2000-01-01)."""
    return 1 + amplitude * np.sin(_phase(tau, peak_doy))


def _primitive(tau, amplitude, peak_doy):
    """An antiderivative of :func:`_factor` in days."""
    tau = np.asarray(tau, np.float64)
    return tau - amplitude * _YEAR / (2 * np.pi) * np.cos(_phase(tau, peak_doy))


def _to_radar(dy, dx, heading):
    h = math.radians(heading)
    c, s = math.cos(h), math.sin(h)
    return dx * c + dy * s, dx * s - dy * c


def _to_map(d_range, d_azimuth, heading):
    h = math.radians(heading)
    c, s = math.cos(h), math.sin(h)
    return d_range * s - d_azimuth * c, d_range * c + d_azimuth * s


def _evaluate(coef, xn, yn, dh):
    """(range, azimuth) of the model ``coef`` (2, 4) at normalised coords and heights."""
    return tuple(coef[a, 0] + coef[a, 1] * xn + coef[a, 2] * yn + coef[a, 3] * dh
                 for a in range(2))


def _material(valley, gy, gx, days, support, tol=1e-6, max_iter=100, block=128, pool=None):
    """Solve p + days * s(p) = g for the reference-time position p of the ice at ground g.

    Only pixels in ``support`` (where the ice can be) are iterated; elsewhere p = g and the
    flow shape is 0. Returns (py, px, uy, ux) with (uy, ux) = s(p) in px/day. Row blocks
    bound the temporaries and run on ``pool`` (an executor) when given. The iteration is a
    contraction while days * |grad s| < 1; the margins' simple shear converges even beyond.
    """
    py, px = gy.copy(), gx.copy()
    uy, ux = np.zeros_like(gy), np.zeros_like(gx)

    def solve(r0):
        sup = support[r0:r0 + block]
        if not sup.any():
            return
        y, x = gy[r0:r0 + block][sup], gx[r0:r0 + block][sup]
        ey, ex = y, x
        sy, sx = valley(ey, ex)
        for _ in range(max_iter if days else 0):
            ny, nx = y - days * sy, x - days * sx
            step = max(float(np.abs(ny - ey).max(initial=0)), float(np.abs(nx - ex).max(initial=0)))
            ey, ex = ny, nx
            sy, sx = valley(ey, ex)
            if step < tol:
                break
        else:
            if days:
                raise RuntimeError("ice positions did not converge (flow too fast for its "
                                   "shear margins: lower max_speed_px_per_day or n)")
        py[r0:r0 + block][sup], px[r0:r0 + block][sup] = ey, ex
        uy[r0:r0 + block][sup], ux[r0:r0 + block][sup] = sy, sx

    starts = range(0, gy.shape[0], block)
    list(pool.map(solve, starts) if pool is not None else map(solve, starts))
    return py, px, uy, ux


def _grid(shape, pixel_size) -> Grid:
    t = Affine(pixel_size, 0.0, _ORIGIN[0], 0.0, -pixel_size, _ORIGIN[1])
    return Grid(CRS.from_epsg(_EPSG), t, shape[1], shape[0])


def _reach(valley, max_geometry_px: float) -> float:
    """Normal distance below which a pixel may show ice (geometry shifts, 2 px margin)."""
    return 1 + (max_geometry_px + 2) / valley.half_width


def _normal_distance(valley, rows: np.ndarray, cols: np.ndarray, block: int = 256) -> np.ndarray:
    """``valley.normal_distance`` on the grid rows x cols (1-D), in row blocks (float32)."""
    return np.concatenate([valley.normal_distance(rows[i:i + block, None], cols[None, :])
                           for i in range(0, len(rows), block)]).astype(np.float32)


def _smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-like smoothing at any scale in O(size): three box filters of equal variance."""
    width = max(1, int(round(math.sqrt(4 * sigma * sigma + 1))))
    for _ in range(3):
        a = ndimage.uniform_filter(a, width, mode="reflect")
    return a


def _fill_nearest(a: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(a)
    if bad.all():
        raise ValueError("DEM has no valid value")
    if bad.any():
        idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
        a = a[tuple(idx)]
    return a


def _load_dem(dem, shape, rng, valley, q) -> tuple[np.ndarray, str]:
    """The DEM on the grid (float32 metres) and a description of its source.

    ``q`` is the valley's normal distance on the grid (used to carve the fractal DEM)."""
    if dem is None:
        relief = _fractal(shape, rng, 5.0, 1, 1 / 256).astype(np.float64)
        carved = relief - 1.5 * np.exp(-(q / 1.6) ** 2)  # the glacier fills a valley...
        surface = _smooth(relief, valley.half_width) - 1.0  # ...with a smooth, gentle surface
        ice = 0.5 * (1 - np.tanh((q - 1) * 6))
        relief = carved + ice * (surface - carved)
        relief = (relief - relief.min()) / max(np.ptp(relief), 1e-12) * 1200.0
        return relief.astype(np.float32), "fractal"
    if isinstance(dem, (str, os.PathLike)):
        a = read_band(dem, 1, out_shape=tuple(shape), resampling=Resampling.bilinear)
        return _fill_nearest(a.astype(np.float32)), os.fspath(dem)
    a = np.asarray(dem, dtype=np.float32)
    if a.shape != tuple(shape):
        raise ValueError(f"dem shape {a.shape} does not match shape {tuple(shape)}")
    return _fill_nearest(a.copy()), "array"


def _draw_geometry(rng, n, ramp_px, terrain_px_per_m) -> dict:
    """Per-acquisition coefficients: pair differences ~ ramp_px; consecutive terrain
    differences between 0.5x and 1.5x ``terrain_px_per_m``, absolute values within 1.5x."""
    ramp = rng.normal(0.0, ramp_px / 2, size=(n, 2, 3))  # pair differences ~ ramp_px / sqrt(2)
    t = np.empty(n)
    t[0] = rng.uniform(-0.5, 0.5) * terrain_px_per_m
    for k in range(1, n):
        step = rng.uniform(0.5, 1.5) * terrain_px_per_m * rng.choice([-1.0, 1.0])
        if abs(t[k - 1] + step) > 1.5 * terrain_px_per_m:
            step = -step
        t[k] = t[k - 1] + step
    out = {}
    for a, comp in enumerate(_COMPS):
        out[comp] = {name: [float(v) for v in ramp[:, a, b]] for b, name in enumerate(_TERMS[:3])}
        out[comp]["height"] = [float(v) for v in t] if comp == "range" else [0.0] * n
    return out


def _gauss_kernel(sigma):
    r = int(4.0 * sigma + 0.5) + 2
    delta = np.zeros(2 * r + 1)
    delta[r] = 1.0
    return ndimage.gaussian_filter1d(delta, sigma, mode="constant")


def _phase_variance(sigma, n=129):
    """Variance of the cubic-spline interpolant of the unit-variance speckle lattice at a
    fractional position f (per axis), tabulated on f in [0, 1]: the 2-D variance is
    v(fy) v(fx). Dividing by its square root keeps the warped speckle exactly unit variance."""
    g = _gauss_kernel(sigma)
    acf = np.correlate(g, g, mode="full")
    acf /= acf[len(acf) // 2]
    m = np.arange(-12, 13)
    delta = np.zeros(201)
    delta[100] = 1.0
    coef = ndimage.spline_filter1d(delta, order=_SPLINE, mode="mirror")
    f = np.linspace(0.0, 1.0, n)
    w = ndimage.map_coordinates(coef, [(100 + f[:, None] - m[None, :]).ravel()], order=_SPLINE,
                                mode="mirror", prefilter=False).reshape(n, len(m))
    lag = m[:, None] - m[None, :]
    c = len(acf) // 2
    rho = np.where(np.abs(lag) <= c, acf[np.clip(lag + c, 0, len(acf) - 1)], 0.0)
    return f, np.einsum("fi,ij,fj->f", w, rho, w)


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _band_limited(rng, shape, sigma, norm):
    """Unit-variance, stationary (periodic) Gaussian field: white noise smoothed by sigma."""
    white = rng.standard_normal(shape, dtype=np.float32)
    out = ndimage.gaussian_filter(white, sigma, mode="wrap")
    out *= np.float32(1 / norm)
    return out


def _reflectivity_db(rng, shape, pad, oversample, dem, valley, heading, ice_texture_db=1.0):
    """Backscatter (dB) on the padded pixel grid, in ground coordinates at t_ref."""
    h, w = shape
    o = int(oversample)
    hp, wp = h + 2 * pad, w + 2 * pad

    def box(a):
        return a.reshape(hp, o, wp, o).mean(axis=(1, 3))

    tex_rock = box(_fractal((hp * o, wp * o), rng, 2.6, o))
    tex_ice = box(_fractal((hp * o, wp * o), rng, 2.8, o, 1 / 64))
    dem_p = np.pad(dem, pad, mode="reflect").astype(np.float32)
    if np.ptp(dem_p) > 0:
        # Radar shading: slopes facing the sensor (opposite to the look direction) are bright.
        shade = _hillshade(dem_p, 1, azimuth=(270.0 + heading) % 360.0, altitude=90.0 - _INCIDENCE)
    else:
        shade = np.zeros_like(dem_p)
    q = _normal_distance(valley, np.arange(-pad, h + pad, dtype=np.float64),
                         np.arange(-pad, w + pad, dtype=np.float64))
    ice = valley.ice_fraction(q)
    rock = -8.0 + 1.5 * tex_rock + 2.0 * shade
    glacier = -13.0 + ice_texture_db * tex_ice + 0.6 * shade   # darker, smoother unless crevassed
    return (rock + ice * (glacier - rock)).astype(np.float32)


def make_sar_series(shape: tuple[int, int] = (512, 512), n: int = 12, *, seed: int = 0,
                    looks: int = 4, coherence: float = 0.7, ice_coherence: float | None = None,
                    ice_texture_db: float = 1.0, speckle_sigma_px: float = _SPECKLE_SIGMA,
                    interval: int = 15,
                    start: _dt.date = _dt.date(2021, 1, 1), max_speed_px_per_day: float = 0.25,
                    seasonal_amplitude: float = 0.3, seasonal_peak_doy: float = 196,
                    heading: float = -12.0, pixel_size: float = 20.0, dem=None,
                    ramp_px: float = 0.5, terrain_px_per_km: float = 0.8,
                    oversample: int = 2) -> SarSeries:
    """A valley glacier on terrain, imaged ``n`` times by a Sentinel-1-like SAR.

    Parameters
    ----------
    shape : (rows, cols) of the images.
    n : number of acquisitions, ``interval`` days apart from ``start``.
    seed : random seed; the same seed (and DEM) gives the same series.
    looks : L, number of independent looks of the intensity (ENL).
    coherence : complex correlation of the speckle of the same ground between any two dates
        (on rock, and on ice too unless ``ice_coherence`` is given).
    ice_coherence : the same on the glacier (real repeat-pass data: 0.3-0.8 on rock at 6-12
        days, near 0 on fast ice); None: ``coherence``.
    ice_texture_db : standard deviation scale (dB) of the glacier's backscatter texture: 0.3
        is weak (smooth firn), 1 the default, 4 crevassed (rock has 1.5 dB).
    speckle_sigma_px : Gaussian band limit of the speckle (sensor pixels); 0.75 gives a lag-1
        intensity autocorrelation of about 0.4, 0.5 about 0.1 (closer to white).
    max_speed_px_per_day : v0, the ice speed on the centreline where it is fastest.
    seasonal_amplitude, seasonal_peak_doy : A (0 <= A < 1) and the day of year of the
        maximum of v(t) = v0 (1 + A sin(...)); see the module conventions.
    heading : track heading, degrees clockwise from north (-12: ascending).
    pixel_size : metres per pixel of the EPSG:32633 grid.
    dem : None (a fractal DEM with a glacier valley, 0-1200 m), a 2-D array of ``shape``
        (metres, used as is), or a path to a GeoTIFF (band 1 resampled bilinearly to
        ``shape``; its CRS and extent are ignored, only the relief is used). NaN or nodata
        are filled with the nearest valid value.
    ramp_px : typical size of the orbital ramp differences between two acquisitions.
    terrain_px_per_km : typical terrain-offset coefficient difference of a pair, px per km
        of height (the range stereo effect); consecutive pairs differ by 0.5x-1.5x of it.
    oversample : resolution of the reflectivity texture before box-averaging to pixels.

    Returns
    -------
    SarSeries

    Examples
    --------
    >>> s = make_sar_series((128, 128), n=4, seed=3, looks=4)
    >>> len(s.images), s.images[0].dtype, s.grid.crs.to_epsg()
    (4, dtype('float32'), 32633)
    >>> (s.dates[1] - s.dates[0]).days
    15
    >>> ratio = s.images[0].astype(float) ** 2 / s.reflectivity[0]
    >>> bool(abs(ratio.mean() - 1) < 0.05)
    True
    """
    h, w = (int(v) for v in shape)
    n, looks, o = int(n), int(looks), int(oversample)
    if n < 1 or looks < 1 or o < 1 or h < 8 or w < 8:
        raise ValueError("need n >= 1, looks >= 1, oversample >= 1 and shape >= (8, 8)")
    ice_coherence = coherence if ice_coherence is None else ice_coherence
    for name, c in (("coherence", coherence), ("ice_coherence", ice_coherence)):
        if not 0 <= c <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {c}")
    if not 0.4 <= speckle_sigma_px <= 2:
        raise ValueError(f"speckle_sigma_px must be in [0.4, 2], got {speckle_sigma_px}")
    if not ice_texture_db >= 0:
        raise ValueError(f"ice_texture_db must be >= 0, got {ice_texture_db}")
    if not 0 <= seasonal_amplitude < 1:
        raise ValueError(f"seasonal_amplitude must be in [0, 1), got {seasonal_amplitude}")
    if isinstance(start, str):
        start = _dt.date.fromisoformat(start)
    rng = np.random.default_rng(seed)
    valley = _Valley((h, w), rng, max_speed_px_per_day)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    qn = _normal_distance(valley, rows[:, 0], cols[0])
    dem_arr, dem_source = _load_dem(dem, (h, w), rng, valley, qn)
    dem_mean = float(dem_arr.mean(dtype=np.float64))
    geometry = _draw_geometry(rng, n, float(ramp_px), float(terrain_px_per_km) / 1000.0)

    dates = [start + _dt.timedelta(days=int(interval) * k) for k in range(n)]
    ref_days = (n - 1) * int(interval) / 2  # the middle of the series
    tau_ref = _tau(start) + ref_days
    prim = [_primitive(_tau(d), seasonal_amplitude, seasonal_peak_doy) for d in dates]
    p_ref = _primitive(tau_ref, seasonal_amplitude, seasonal_peak_doy)
    days = [float(v - p_ref) for v in prim]

    coefs = [np.array([[geometry[c][t][k] for t in _TERMS] for c in _COMPS]) for k in range(n)]
    dh_max = float(np.abs(dem_arr - dem_mean).max())
    max_geom = max(float(np.hypot(*(np.abs(c[:, :3]).sum(axis=1) + np.abs(c[:, 3]) * dh_max)))
                   for c in coefs)
    max_motion = abs(max_speed_px_per_day) * max(abs(d) for d in days)
    pad = int(math.ceil(max_motion + max_geom)) + 6

    params = dict(
        shape=[h, w], n=n, seed=seed, looks=looks, coherence=float(coherence),
        ice_coherence=float(ice_coherence), ice_texture_db=float(ice_texture_db),
        interval=int(interval), start=start.isoformat(),
        max_speed_px_per_day=float(max_speed_px_per_day),
        seasonal_amplitude=float(seasonal_amplitude), seasonal_peak_doy=float(seasonal_peak_doy),
        heading=float(heading), pixel_size=float(pixel_size), dem=dem_source,
        ramp_px=float(ramp_px), terrain_px_per_km=float(terrain_px_per_km), oversample=o,
        epsg=_EPSG, dem_mean_m=dem_mean, reference_days_after_start=ref_days,
        speckle_sigma_px=float(speckle_sigma_px), pad_px=pad, **valley.describe(),
        geometry=geometry, flow_days_from_reference=days, max_geometry_px=max_geom,
    )

    glacier, stable = qn < 1.0, qn > 1.25
    support = qn < _reach(valley, max_geom)
    xn, yn = 2 * cols / (w - 1) - 1, 2 * rows / (h - 1) - 1
    dh = dem_arr.astype(np.float64) - dem_mean

    # The scene in ground coordinates at t_ref on the padded pixel grid: backscatter
    # (dB, so the warp keeps it positive) and the coherent part of the speckle, 2 L real
    # Gaussian fields (real and imaginary part of each look).
    db = _reflectivity_db(rng, (h, w), pad, o, dem_arr, valley, heading, float(ice_texture_db))
    db_coef = ndimage.spline_filter(db, order=_SPLINE, mode="mirror", output=np.float32)
    del db
    sigma_s = float(speckle_sigma_px)
    norm = float(np.sum(_gauss_kernel(sigma_s) ** 2))  # 1-D variance gain; 2-D: squared
    common = [ndimage.spline_filter(_band_limited(rng, (h + 2 * pad, w + 2 * pad),
                                                  sigma_s, norm),
                                    order=_SPLINE, mode="mirror", output=np.float32)
              for _ in range(2 * looks)]
    phase_f, phase_v = _phase_variance(sigma_s)
    if ice_coherence == coherence:
        coh = np.float32(coherence)
    else:   # the valley is fixed in the map: the same coherence map for every date
        coh = (coherence + valley.ice_fraction(qn) * (ice_coherence - coherence)).astype(np.float32)
    a, b = np.sqrt(coh), np.sqrt(np.float32(1) - coh)

    def speckle(c, seed, coords, gain):
        z = ndimage.map_coordinates(c, coords, order=_SPLINE, mode="mirror", prefilter=False,
                                    output=np.float32)
        z *= gain
        # The incoherent part, same band limit; periodic, so stationary up to the edges.
        white = np.random.default_rng(seed).standard_normal((h, w), dtype=np.float32)
        indep = ndimage.gaussian_filter(white, sigma_s, mode="wrap")
        indep *= b / np.float32(norm)
        z += indep
        z *= z
        return z

    images, reflectivity = [], []
    workers = _workers()
    with ThreadPoolExecutor(workers) as pool:  # scipy.ndimage and numpy release the GIL
        for k in range(n):
            gr, ga = _evaluate(coefs[k], xn, yn, dh)
            gy, gx = _to_map(gr, ga, heading)
            py, px, _, _ = _material(valley, rows - gy, cols - gx, days[k], support, pool=pool)
            del gr, ga, gy, gx
            coords = np.array([py + pad, px + pad])
            # Unit variance at any sub-pixel position of the lattice (see _phase_variance).
            gain = np.interp(py - np.floor(py), phase_f, phase_v)
            gain *= np.interp(px - np.floor(px), phase_f, phase_v)
            gain = (a / np.sqrt(gain)).astype(np.float32)
            del py, px
            seeds = rng.integers(0, 2 ** 63, size=len(common))  # one stream per look part
            refl = pool.submit(ndimage.map_coordinates, db_coef, coords, order=_SPLINE,
                               mode="mirror", prefilter=False, output=np.float32)
            intensity = np.zeros((h, w), np.float32)
            for m0 in range(0, len(common), workers):  # a few fields at a time bounds memory
                part = slice(m0, m0 + workers)
                for z2 in pool.map(speckle, common[part], seeds[part],
                                   [coords] * workers, [gain] * workers):
                    intensity += z2
            intensity *= np.float32(1 / (2 * looks))  # E = 1: each real part has variance 1/2
            refl = np.power(np.float32(10), refl.result() / np.float32(10))
            intensity *= refl
            np.maximum(intensity, np.float32(1e-12), out=intensity)
            images.append(np.sqrt(intensity))
            reflectivity.append(refl)

    return SarSeries(images, dates, _grid((h, w), pixel_size), dem_arr, float(heading),
                     glacier, stable, params, reflectivity, valley)


def _s1_name(k: int, d: _dt.date) -> str:
    mission = "S1A" if k % 2 == 0 else "S1B"
    day = d.strftime("%Y%m%d")
    return f"{mission}_IW_GRDH_1SDV_{day}T053512_{day}T053537_synthetic_amp.tif"


def write_sar_series(series: SarSeries, folder: str | os.PathLike) -> dict:
    """Write the series as Sentinel-1-like GeoTIFFs with its DEM, stable mask and truth.

    Files (each written under a temporary name, then renamed): one amplitude COG per date,
    ``S1A_IW_GRDH_1SDV_{YYYYMMDD}T053512_{YYYYMMDD}T053537_synthetic_amp.tif`` (S1B for odd
    k; float32, tags DATE and UNITS=amplitude, nodata 0), ``dem.tif`` (float32 m),
    ``stable.tif`` (uint8, 1 = stable, 0 elsewhere) and ``truth.json`` (dates, heading,
    parameters, conventions, and for consecutive pairs the model, ``flow_days`` and the
    largest second-order term ``|offsets - motion - geometry|``).

    Returns
    -------
    dict with "images" (list of paths), "dem", "stable" and "truth" (str paths).

    Examples
    --------
    >>> s = make_sar_series((64, 64), n=2)
    >>> out = write_sar_series(s, "sar_demo")                       # doctest: +SKIP
    >>> sorted(out)                                                 # doctest: +SKIP
    ['dem', 'images', 'stable', 'truth']
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    grid = series.grid
    p = series.params
    images = []
    for k, (img, d) in enumerate(zip(series.images, series.dates)):
        path = os.path.join(folder, _s1_name(k, d))
        write_cog(path, img.astype(np.float32), grid, nodata=0.0,
                  descriptions=[f"VV amplitude, {p['looks']} looks (synthetic)"],
                  tags={"DATE": d.isoformat(), "UNITS": "amplitude",
                        "MISSION": "S1A" if k % 2 == 0 else "S1B",
                        "HEADING_DEG": f"{series.heading:.6f}", "LOOKS": str(p["looks"]),
                        "SOURCE": "cryokit.synthetic.sar"},
                  units="amplitude")
        images.append(path)
    dem = write_cog(os.path.join(folder, "dem.tif"), series.dem.astype(np.float32), grid,
                    nodata=None, descriptions=["terrain height"], units="m",
                    tags={"UNITS": "m"})
    stable = write_cog(os.path.join(folder, "stable.tif"), series.stable.astype(np.uint8), grid,
                       nodata=None, dtype="uint8", descriptions=["stable ground (1) or not (0)"],
                       tags={"VALUES": "1 = stable ground, 0 = elsewhere"})
    pairs = []
    for k in range(len(series.dates) - 1):
        off = series.offsets(k, k + 1)
        mot = series.motion(k, k + 1)
        geo = series.geometry(k, k + 1)
        second = max(float(np.abs(o - m - g).max()) for o, m, g in zip(off, mot, geo))
        pairs.append({"i": k, "j": k + 1,
                      "dates": [series.dates[k].isoformat(), series.dates[k + 1].isoformat()],
                      "files": [os.path.basename(images[k]), os.path.basename(images[k + 1])],
                      "flow_days": series.flow_days(k, k + 1), "model": series.model(k, k + 1),
                      "max_second_order_px": second})
    truth = {
        "dates": [d.isoformat() for d in series.dates],
        "heading": series.heading,
        "files": [os.path.basename(f) for f in images],
        "params": p,
        "conventions": {
            "pixels": "centres at integer (row, col); x = columns (east), y = rows (south)",
            "range_unit_vector_east_north": "(cos h, -sin h)",
            "azimuth_unit_vector_east_north": "(sin h, cos h)",
            "d_range": "dx cos h + dy sin h",
            "d_azimuth": "dx sin h - dy cos h",
            "model": "c + x xn + y yn + height (h - dem_mean_m); xn = 2 col/(W-1) - 1, "
                     "yn = 2 row/(H-1) - 1; pair = acquisition j - acquisition i",
            "units": "px (pixel_size m) along range/azimuth; height in px per metre",
        },
        "pairs": pairs,
    }
    path = os.path.join(folder, "truth.json")
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(truth, indent=1))
    return {"images": images, "dem": dem, "stable": stable, "truth": path}
