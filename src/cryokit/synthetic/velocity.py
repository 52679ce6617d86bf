"""Synthetic optical glacier image pairs with an exactly known displacement field.

The scene is rendered at ``oversample`` x the sensor resolution as a smooth terrain-like
texture, warped with a quintic spline, then box-averaged to sensor pixels, so ``sec`` is a
sensor image of the moved scene. Coordinates are in sensor pixels with pixel *centres* at
integer (row, col); x = columns to the right, y = rows downward.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from scipy import fft, ndimage

from ..core.raster import Grid

# Field evaluator: (rows, cols) in sensor pixels -> (dy, dx) backward displacement there.
_Flow = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_ORIGIN = (480000.0, 6680000.0)  # UTM 7N near Yahtse Glacier, only so the grid looks real
_DATE0 = _dt.date(2016, 7, 18)


@dataclass(frozen=True, eq=False)
class SyntheticPair:
    """An image pair with its true forward displacement.

    Attributes
    ----------
    ref, sec : float32 arrays (H, W)
        Reference and secondary images, roughly 0..1, NaN in SLC-off gaps.
    dx, dy : float64 arrays (H, W)
        Forward displacement in pixels of each ref pixel centre: the feature at ref
        (row, col) is at (row + dy, col + dx) in ``sec``.
    glacier, stable : bool arrays (H, W)
        Moving ice, and ground that does not move (away from the ice margins).
    grid : Grid
        EPSG:32607, north-up, ``pixel_size`` m pixels.
    dates : (date, date)
    params : dict
        The settings and the derived geometry.
    """

    ref: np.ndarray
    sec: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    glacier: np.ndarray
    stable: np.ndarray
    grid: Grid
    dates: tuple[_dt.date, _dt.date]
    params: dict = field(default_factory=dict)


def _fractal(shape: tuple[int, int], rng: np.random.Generator, beta: float, oversample: int,
             k0: float = 1 / 128) -> np.ndarray:
    """Gaussian field with power ~ (k^2 + k0^2)^(-beta/2), k in cycles per *sensor* pixel."""
    white = rng.standard_normal(shape, dtype=np.float32)
    ky = fft.fftfreq(shape[0]).astype(np.float32)[:, None] * oversample
    kx = fft.rfftfreq(shape[1]).astype(np.float32)[None, :] * oversample
    spec = fft.rfft2(white, workers=-1)
    spec *= (ky * ky + kx * kx + np.float32(k0 * k0)) ** np.float32(-beta / 4)
    out = fft.irfft2(spec, s=shape, workers=-1)
    out -= out.mean()
    out /= out.std()
    return out


def _hillshade(dem: np.ndarray, oversample: int, azimuth=315.0, altitude=40.0) -> np.ndarray:
    # Not clipped at zero: a clamp would add a kink, and the warp needs a smooth scene.
    gy, gx = np.gradient(dem * np.float32(oversample))
    scale = np.float32(0.7 / np.sqrt(np.mean(gx * gx + gy * gy)))  # typical slope ~35 deg
    gx *= scale
    gy *= scale
    az, alt = np.radians(azimuth), np.radians(altitude)
    # Light from the north-west: x to the right (east), y downward (south).
    lx, ly, lz = np.cos(alt) * np.sin(az), -np.cos(alt) * np.cos(az), np.sin(alt)
    hs = (lz - lx * gx - ly * gy) / np.sqrt(1 + gx * gx + gy * gy)
    return (hs - hs.mean()) / hs.std()


def _scene(fshape, rng, oversample, ice=None) -> np.ndarray:
    """Fine-resolution scene: rock = albedo + hillshade, ice (weight ``ice``) smoother, brighter."""
    hs = _hillshade(_fractal(fshape, rng, 4.0, oversample), oversample)
    scene = 0.42 + 0.16 * (0.45 * _fractal(fshape, rng, 2.6, oversample) + 0.8 * hs)
    if ice is not None:
        # Crevasses, debris bands and surface roughness keep ice trackable (textured).
        tex = 0.66 + 0.14 * (0.7 * _fractal(fshape, rng, 2.8, oversample, 1 / 64) + 0.5 * hs)
        scene += ice * (tex - scene)
    # A sensor-like blur (half a pixel) so the quintic warp of the scene is exact enough.
    return ndimage.gaussian_filter(scene, 0.5 * oversample, mode="mirror")


def _fine_coords(n: int, pad: int, oversample: int) -> np.ndarray:
    """Sensor coordinate of each fine-pixel centre along one axis of the padded scene."""
    return -pad - 0.5 + (np.arange(n) + 0.5) / oversample


def _render(scene: np.ndarray, flow: _Flow, shape: tuple[int, int], pad: int,
            oversample: int, support: np.ndarray | None = None,
            block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Sensor images (ref, sec) of ``scene`` and of ``scene`` moved by the backward ``flow``.

    ``support`` (fine grid, optional) marks where the flow may be non-zero.
    """
    h, w = shape
    o = oversample

    def box(img):
        a = img.reshape(h + 2 * pad, o, w + 2 * pad, o).mean(axis=(1, 3))
        return a[pad:pad + h, pad:pad + w].astype(np.float32)

    ref = box(scene)
    coef = ndimage.spline_filter(scene, order=5, mode="mirror", output=np.float64)
    warped = scene.astype(np.float64, copy=True)
    ys, xs = _fine_coords(scene.shape[0], pad, o), _fine_coords(scene.shape[1], pad, o)
    for r0 in range(0, scene.shape[0], block):  # blocks bound the memory at 2000 x 2000
        yy, xx = np.meshgrid(ys[r0:r0 + block], xs, indexing="ij")
        if support is not None:
            sup = support[r0:r0 + block]
            yy, xx = yy[sup], xx[sup]
        uy, ux = flow(yy, xx)
        moving = (uy != 0) | (ux != 0)
        if not moving.any():
            continue
        # A pixel that does not move keeps its exact sample: the spline interpolates nodes.
        src_r = (yy[moving] - uy[moving] + pad + 0.5) * o - 0.5
        src_c = (xx[moving] - ux[moving] + pad + 0.5) * o - 0.5
        if support is not None:
            moving = _scatter(sup, moving)
        vals = ndimage.map_coordinates(coef, [src_r, src_c], order=5, mode="mirror",
                                       prefilter=False)
        sub = warped[r0:r0 + block]
        sub[moving] = vals
    return ref, box(warped)


def _scatter(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(mask.shape, values.dtype)
    out[mask] = values
    return out


def _forward(flow: _Flow, shape: tuple[int, int], support: np.ndarray | None = None,
             tol: float = 1e-7, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Forward displacement u with u(q) = u_b(q + u(q)) at sensor pixel centres q.

    Solved by fixed-point iteration, a contraction while the flow gradient is below 1;
    outside ``support`` (optional) u is zero.
    """
    rr, cc = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    if support is not None:
        rr, cc = rr[support], cc[support]
    uy, ux = flow(rr, cc)
    for _ in range(max_iter):
        ny, nx = flow(rr + uy, cc + ux)
        step = max(np.abs(ny - uy).max(initial=0), np.abs(nx - ux).max(initial=0))
        uy, ux = ny, nx
        if step < tol:
            break
    else:
        raise RuntimeError("forward displacement did not converge (flow gradient too steep)")
    if support is not None:
        uy, ux = _scatter(support, uy), _scatter(support, ux)
    return uy, ux


class _Valley:
    """A valley glacier along a curved centreline, in sensor-pixel coordinates."""

    def __init__(self, shape: tuple[int, int], rng: np.random.Generator, max_speed: float):
        h, w = shape
        size = min(h, w)
        self.centre = ((h - 1) / 2, (w - 1) / 2)
        self.phi = rng.uniform(-0.6, 0.6)           # axis angle from the x axis
        self.sign = rng.choice([-1.0, 1.0])         # flow towards +axis or -axis
        self.offset = rng.uniform(-0.08, 0.08) * size
        self.amp = 0.07 * size
        self.wavelength = 1.3 * np.hypot(h, w)
        self.psi = rng.uniform(0, 2 * np.pi)
        self.half_width = 0.2 * size
        self.plug = 0.35                            # plug flow inside |n/W| < plug
        self.a_peak = rng.uniform(-0.2, 0.2) * size
        self.a_scale = 0.5 * size
        self.max_speed = float(max_speed)

    def _frame(self, rows, cols):
        y, x = rows - self.centre[0], cols - self.centre[1]
        c, s = np.cos(self.phi), np.sin(self.phi)
        a, b = x * c + y * s, -x * s + y * c - self.offset
        k = 2 * np.pi / self.wavelength
        slope = self.amp * k * np.cos(k * a + self.psi)  # tan of the centreline angle
        cos_t = 1 / np.sqrt(1 + slope * slope)
        n = (b - self.amp * np.sin(k * a + self.psi)) * cos_t  # ~ signed distance
        return a, n, cos_t, slope * cos_t

    def normal_distance(self, rows, cols):
        """Distance from the centreline over the half-width (1 at the ice margin)."""
        return np.abs(self._frame(rows, cols)[1]) / self.half_width

    def ice_fraction(self, q):
        """Share of glacier (0..1) at normal distance ``q`` (:meth:`normal_distance`): a soft
        margin about 1.5 px wide."""
        return 0.5 * (1 - np.tanh((q - 1) * self.half_width / 1.5))

    def __call__(self, rows, cols):
        a, n, cos_t, sin_t = self._frame(rows, cols)
        along = 0.65 + 0.35 * np.exp(-((a - self.a_peak) / self.a_scale) ** 2)
        q = np.minimum(np.abs(n) / self.half_width, 1.0)
        # Shear margins: a C2 smootherstep from full speed at the plug edge to 0 at the margin.
        z = np.clip((q - self.plug) / (1 - self.plug), 0, 1)
        speed = self.sign * self.max_speed * along * (1 - z ** 3 * (10 - 15 * z + 6 * z * z))
        c, s = np.cos(self.phi), np.sin(self.phi)
        return speed * (s * cos_t + c * sin_t), speed * (c * cos_t - s * sin_t)

    def describe(self) -> dict:
        return {"flow_axis_deg": float(np.degrees(self.phi)), "flow_sign": float(self.sign),
                "half_width_px": self.half_width, "plug_fraction": self.plug}


def _slc_gaps(shape, fraction, phase, period=30.0, tilt=0.06) -> np.ndarray:
    """Landsat-7 SLC-off wedges: stripes along rows, 0 wide at the centre column."""
    h, w = shape
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float64)
    c0 = max((w - 1) / 2, 1.0)
    # Mean wedge width is half the edge width, so this edge width covers ``fraction``.
    width = 2 * fraction * period * np.abs(cc - c0) / c0
    d = np.mod(rr - phase - tilt * (cc - c0) + period / 2, period) - period / 2
    return np.abs(d) < width / 2


def _grid(shape, pixel_size) -> Grid:
    t = Affine(pixel_size, 0.0, _ORIGIN[0], 0.0, -pixel_size, _ORIGIN[1])
    return Grid(CRS.from_epsg(32607), t, shape[1], shape[0])


def _sensor(ref, sec, rng, noise, contrast_change):
    # Later date slightly brighter with less contrast, as with fresh snow or haze.
    m = float(np.mean(sec))
    sec = (1 - contrast_change) * (sec - m) + m + 0.5 * contrast_change
    ref = ref + rng.normal(0, noise, ref.shape) if noise else ref
    sec = sec + rng.normal(0, noise, sec.shape) if noise else sec
    return ref.astype(np.float32), sec.astype(np.float32)


def _pad_for(max_speed: float) -> int:
    return int(np.ceil(abs(max_speed))) + 8


def make_glacier_pair(shape: tuple[int, int] = (512, 512), *, seed: int = 0,
                      max_speed_px: float = 6.0, noise: float = 0.01, slc_off: bool = False,
                      gap_fraction: float = 0.22, pixel_size: float = 15.0, days: int = 16,
                      contrast_change: float = 0.1, oversample: int = 2) -> SyntheticPair:
    """A valley glacier crossing fractal terrain, imaged twice ``days`` apart.

    Parameters
    ----------
    shape : (rows, cols) of the sensor images.
    seed : random seed; the same seed gives the same pair.
    max_speed_px : largest displacement on the centreline, in pixels.
    noise : std of independent Gaussian noise in each image (images span ~0..1).
    slc_off : add Landsat-7 SLC-off gaps (NaN), different in each image.
    gap_fraction : share of pixels in gaps when ``slc_off``.
    pixel_size, days : metres per pixel and days between the dates (grid and dates only).
    contrast_change : global gain loss and brightening of ``sec``.
    oversample : scene resolution relative to the sensor before box-averaging.

    Returns
    -------
    SyntheticPair

    Examples
    --------
    >>> p = make_glacier_pair((256, 256), seed=1, max_speed_px=4)
    >>> round(float(np.hypot(p.dx, p.dy).max()), 1)
    4.0
    >>> bool((p.dx[p.stable] == 0).all())
    True
    """
    h, w = shape
    o = int(oversample)
    rng = np.random.default_rng(seed)
    pad = _pad_for(max_speed_px)
    fshape = ((h + 2 * pad) * o, (w + 2 * pad) * o)
    valley = _Valley(shape, rng, max_speed_px)

    ys, xs = _fine_coords(fshape[0], pad, o), _fine_coords(fshape[1], pad, o)
    # Row blocks: whole-array temporaries at 4000 x 4000 are several times slower.
    q = np.concatenate([valley.normal_distance(ys[i:i + 256, None], xs[None, :])
                        for i in range(0, len(ys), 256)])
    ice = valley.ice_fraction(q).astype(np.float32)
    scene = _scene(fshape, rng, o, ice)  # ice has a ~1.5 px soft edge
    del ice
    ref, sec = _render(scene, valley, shape, pad, o, support=q < 1)
    del scene, q

    rr, cc = np.mgrid[0:h, 0:w].astype(np.float64)
    qn = valley.normal_distance(rr, cc)
    glacier = qn < 1.0
    stable = qn > 1.25
    # A ref pixel can only move if it lies within max_speed of the ice.
    reach = qn < 1 + (abs(max_speed_px) + 1) / valley.half_width
    dy, dx = _forward(valley, shape, support=reach)
    ref, sec = _sensor(ref, sec, rng, noise, contrast_change)
    params = dict(shape=tuple(shape), seed=seed, max_speed_px=max_speed_px, noise=noise,
                  slc_off=slc_off, gap_fraction=gap_fraction, pixel_size=pixel_size, days=days,
                  contrast_change=contrast_change, oversample=o, **valley.describe())
    if slc_off:
        phase = rng.uniform(0, 30)
        # The second date's scan pattern falls elsewhere, so gaps rarely coincide.
        gaps_ref = _slc_gaps(shape, gap_fraction, phase)
        gaps_sec = _slc_gaps(shape, gap_fraction, phase + rng.uniform(0.3, 0.7) * 30)
        ref[gaps_ref] = np.nan
        sec[gaps_sec] = np.nan
        params["gap_period_rows"] = 30
        params["gap_fraction_ref"] = float(gaps_ref.mean())
        params["gap_fraction_sec"] = float(gaps_sec.mean())
    return SyntheticPair(ref, sec, dx, dy, glacier, stable, _grid(shape, pixel_size),
                         (_DATE0, _DATE0 + _dt.timedelta(days=days)), params)


def make_uniform_shift_pair(shape: tuple[int, int] = (256, 256), dx: float = 0.3,
                            dy: float = -0.2, seed: int = 0, noise: float = 0.0, *,
                            oversample: int = 2, pixel_size: float = 15.0) -> SyntheticPair:
    """Terrain texture moved by one constant (dx, dy) in pixels, for sub-pixel accuracy tests.

    Everything moves, so ``glacier`` is all True and ``stable`` all False. No brightness
    change between the images; ``noise`` is added to each.

    Examples
    --------
    >>> p = make_uniform_shift_pair((128, 128), dx=0.25, dy=-1.5)
    >>> float(p.dx[0, 0]), float(p.dy[0, 0])
    (0.25, -1.5)
    """
    h, w = shape
    o = int(oversample)
    rng = np.random.default_rng(seed)
    pad = _pad_for(max(abs(dx), abs(dy)))
    scene = _scene(((h + 2 * pad) * o, (w + 2 * pad) * o), rng, o)

    def flow(rows, cols):
        return np.full(rows.shape, float(dy)), np.full(rows.shape, float(dx))

    ref, sec = _render(scene, flow, shape, pad, o)
    ref, sec = _sensor(ref, sec, rng, noise, 0.0)
    moving = np.full(shape, bool(dx or dy))
    params = dict(shape=tuple(shape), dx=dx, dy=dy, seed=seed, noise=noise,
                  oversample=o, pixel_size=pixel_size)
    return SyntheticPair(ref, sec, np.full(shape, float(dx)), np.full(shape, float(dy)),
                         moving, ~moving, _grid(shape, pixel_size),
                         (_DATE0, _DATE0 + _dt.timedelta(days=16)), params)
