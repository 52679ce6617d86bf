"""Synthetic stack of unwrapped interferograms with an exactly known displacement series.

Ground motion per pixel (LOS, mm, positive towards the satellite): a linear trend that
varies smoothly across the scene, a seasonal term and a subsidence bowl (Gaussian, its
centre sinking at ``bowl_mm_per_yr``). Each date adds an atmospheric-like phase screen
(spatially smooth random field, ``atmosphere_mm`` std); an interferogram (i, j) is
``phase[j] - phase[i] + noise``, with ``phase = -4 pi d / wavelength`` (the convention of
:mod:`cryokit.sbas.inversion`) and noise drawn from the interferogram's coherence: Cramér-Rao
std ``sqrt((1 - γ²) / (2 L γ²))`` radians for L looks, γ decaying with the time span and
lower over a "decorrelating" patch. Pixels are NaN where γ < ``nan_below`` (unwrapping not
possible) and in a few random unwrapping-failure blobs.

What an SBAS inversion can recover is the per-date phase, atmosphere included:
``series_mm = displacement_mm + atmosphere_mm`` (both zero at the first date); the
interferogram noise is what it averages out.

Examples
--------
>>> s = make_insar_stack(shape=(20, 30), n_dates=8, seed=1)
>>> s.ifgs.shape, s.series_mm.shape, len(s.dates)
((18, 20, 30), (8, 20, 30), 8)
>>> bool(np.all(s.series_mm[0] == 0))
True
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from ..core.raster import Grid, write_cog

WAVELENGTH_M = 0.05546576


@dataclass
class InsarStack:
    """A synthetic interferogram stack and its truth (see the module docstring)."""

    ifgs: np.ndarray            # (K, H, W) float32 radians, NaN = no data
    coherence: np.ndarray       # (K, H, W) float32
    pairs: np.ndarray           # (K, 2) date indices (earlier, later)
    dates: list[dt.date]
    displacement_mm: np.ndarray  # (n, H, W) ground motion, zero at the first date
    atmosphere_mm: np.ndarray    # (n, H, W) per-date screen as LOS mm, zero at the first date
    velocity_mm_per_yr: np.ndarray  # (H, W) linear rate of the motion (trend + bowl)
    grid: Grid
    wavelength_m: float = WAVELENGTH_M
    looks: int = 20
    params: dict = field(default_factory=dict)

    @property
    def series_mm(self) -> np.ndarray:
        """What SBAS recovers: motion + atmosphere per date, zero at the first date."""
        return self.displacement_mm + self.atmosphere_mm

    @property
    def t_years(self) -> np.ndarray:
        return np.array([(d - self.dates[0]).days / 365.25 for d in self.dates])


def _smooth_field(rng, shape, scale_px, std):
    # Filtered on a grid coarse enough for a 4-pixel kernel, then interpolated: large
    # scenes would otherwise need kernels hundreds of pixels wide.
    k = max(1.0, scale_px / 4.0)
    small = tuple(max(4, int(np.ceil(n / k))) for n in shape)
    f = ndimage.gaussian_filter(rng.standard_normal(small), scale_px / k, mode="wrap")
    if small != tuple(shape):
        f = ndimage.zoom(f, (shape[0] / small[0], shape[1] / small[1]), order=1,
                         mode="nearest", grid_mode=True)[:shape[0], :shape[1]]
    return f * (std / max(f.std(), 1e-12))


def make_insar_stack(shape: tuple[int, int] = (80, 100), n_dates: int = 25,
                     interval_days: int = 12, neighbours: int = 3,
                     start: dt.date = dt.date(2020, 1, 3), *,
                     bowl_mm_per_yr: float = -60.0, trend_mm_per_yr: float = 4.0,
                     seasonal_mm: float = 3.0, atmosphere_mm: float = 2.0,
                     looks: int = 20, nan_below: float = 0.2, blobs: int = 3,
                     wavelength_m: float = WAVELENGTH_M, pixel_m: float = 50.0,
                     max_ifgs: int | None = None, seed: int = 0,
                     dtype=np.float32) -> InsarStack:
    """Make a stack: ``n_dates`` dates ``interval_days`` apart, each paired with its next
    ``neighbours`` dates (K = about n * neighbours interferograms), on a UTM 32N grid.

    Parameters
    ----------
    bowl_mm_per_yr : float
        LOS rate at the bowl centre (negative: away from the satellite, subsidence).
    trend_mm_per_yr : float
        Peak-to-peak range of the smooth linear-rate field across the scene.
    seasonal_mm : float
        Amplitude of the annual term (peak in August).
    atmosphere_mm : float
        Std of the per-date phase screens, as LOS mm.
    looks : int
        Looks L of the noise model (std from coherence).
    nan_below : float
        Coherence under which an interferogram pixel is NaN.
    blobs : int
        Random unwrapping-failure blobs (NaN discs) per 10 interferograms.
    max_ifgs : int, optional
        Keep only the first ``max_ifgs`` pairs (the network stays connected).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    dates = [start + dt.timedelta(days=interval_days * k) for k in range(n_dates)]
    t = np.array([(d - dates[0]).days / 365.25 for d in dates])
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    cy, cx, rad = 0.55 * h, 0.4 * w, 0.18 * min(h, w)
    bowl = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rad ** 2))
    trend = trend_mm_per_yr * (xx / max(w - 1, 1) - 0.5) + 0.5 * trend_mm_per_yr * np.sin(
        np.pi * yy / max(h - 1, 1))
    vel = trend + bowl_mm_per_yr * bowl
    amp = seasonal_mm * (0.5 + 0.5 * (1 - bowl))
    t0 = dates[0].timetuple().tm_yday / 365.25
    peak = 213 / 365.25
    season = np.cos(2 * np.pi * (t + t0 - peak))
    disp = vel[None] * t[:, None, None] + amp[None] * (season - season[0])[:, None, None]
    atmo = np.stack([_smooth_field(rng, shape, max(h, w) / 8, atmosphere_mm)
                     for _ in range(n_dates)])
    atmo = atmo - atmo[:1]
    k_mm = -4 * np.pi / (wavelength_m * 1000.0)          # mm -> radians
    phase = (disp + atmo) * k_mm
    from ..sbas.network import sequential_network
    pairs = sequential_network(n_dates, neighbours)[:max_ifgs]
    gamma0 = np.clip(0.85 - 0.5 * np.exp(-((yy - 0.2 * h) ** 2 + (xx - 0.8 * w) ** 2)
                                         / (2 * (0.12 * min(h, w)) ** 2))
                     + _smooth_field(rng, shape, 3, 0.05), 0.05, 0.95)
    ifgs = np.empty((len(pairs), h, w), dtype)
    coh = np.empty((len(pairs), h, w), np.float32)
    for k, (i, j) in enumerate(pairs):
        span = (dates[j] - dates[i]).days
        g = np.clip(gamma0 * np.exp(-span / 200.0) + rng.normal(0, 0.02, shape), 0.05, 0.97)
        sigma = np.sqrt((1 - g ** 2) / (2 * looks * g ** 2))
        y = phase[j] - phase[i] + sigma * rng.standard_normal(shape)
        y[g < nan_below] = np.nan
        if rng.random() < blobs / 10:
            by, bx, br = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 0.1 * min(h, w) + 3)
            y[(yy - by) ** 2 + (xx - bx) ** 2 < br ** 2] = np.nan
        ifgs[k] = y
        coh[k] = g
    grid = Grid(CRS.from_epsg(32632), Affine(pixel_m, 0, 500000.0, 0, -pixel_m, 5100000.0), w, h)
    return InsarStack(ifgs=ifgs, coherence=coh, pairs=pairs, dates=dates, displacement_mm=disp,
                      atmosphere_mm=atmo, velocity_mm_per_yr=vel, grid=grid,
                      wavelength_m=wavelength_m, looks=looks,
                      params=dict(shape=shape, n_dates=n_dates, interval_days=interval_days,
                                  neighbours=neighbours, bowl_mm_per_yr=bowl_mm_per_yr,
                                  bowl_centre_px=(cy, cx), seasonal_mm=seasonal_mm,
                                  atmosphere_mm=atmosphere_mm, looks=looks, seed=seed))


def write_insar_stack(stack: InsarStack, folder: str | os.PathLike,
                      coherence: bool = True) -> list[str]:
    """Write the interferograms as GeoTIFFs ``syn_YYYYMMDD-YYYYMMDD_unw.tif`` (radians,
    nodata 0 as in GAMMA/PyRate exports, FIRST_DATE/SECOND_DATE/WAVELENGTH_METRES tags) and,
    optionally, ``syn_YYYYMMDD-YYYYMMDD_cc.tif`` coherence; returns the interferogram paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, (i, j) in enumerate(stack.pairs):
        d1, d2 = stack.dates[i], stack.dates[j]
        stem = f"syn_{d1:%Y%m%d}-{d2:%Y%m%d}"
        tags = {"FIRST_DATE": d1.isoformat(), "SECOND_DATE": d2.isoformat(),
                "DATA_UNITS": "RADIANS", "WAVELENGTH_METRES": stack.wavelength_m}
        y = np.nan_to_num(stack.ifgs[k], nan=0.0)
        write_cog(folder / f"{stem}_unw.tif", y.astype(np.float32), stack.grid, nodata=0.0,
                  tags=tags, units="rad")
        if coherence:
            write_cog(folder / f"{stem}_cc.tif", stack.coherence[k], stack.grid, nodata=0.0,
                      tags=tags, units="1")
        out.append(str(folder / f"{stem}_unw.tif"))
    return out
