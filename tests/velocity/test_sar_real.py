"""The real Sentinel-1B EW pair over drifting sea ice through ``cryokit sar-velocity``, checked
against an independent phase-correlation estimate computed here (OpenCV ``phaseCorrelate``).

The pair (``velocity/s1_ew_seaice_drift_2020``, dB, 100 m, UPS North) is 23.05 h apart, so the
date-times of the file names matter; there is no stable ground and no DEM, so the offsets are
kept as measured (``--no-offset-model``). Ice drifts 40-45 px: features near the lower and left
edges leave the scene and cannot be matched by any tracker.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import rasterio

from conftest import raster_grids, shared_path
from cryokit.cli import main

STEP, PIXEL = 16, 100.0
HALF = 48   # the independent estimate's window: 96 px, Hann-tapered


def _phase_correlation(a, b, shape):
    """Per node of ``shape`` (node centres at (k + 0.5) step): the displacement (dx, dy) px
    of a 96 px window, searched around the whole-scene shift; NaN where the window leaves
    either image."""
    (gx, gy), _ = cv2.phaseCorrelate(a, b, cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F))
    sx, sy = int(round(gx)), int(round(gy))
    hann = cv2.createHanningWindow((2 * HALF, 2 * HALF), cv2.CV_32F)
    est = np.full(shape + (2,), np.nan)
    for i in range(shape[0]):
        for j in range(shape[1]):
            ya, xa = int((i + 0.5) * STEP) - HALF, int((j + 0.5) * STEP) - HALF
            yb, xb = ya + sy, xa + sx
            if min(ya, xa, yb, xb) < 0 or max(ya, yb) + 2 * HALF > a.shape[0] \
                    or max(xa, xb) + 2 * HALF > a.shape[1]:
                continue
            (dx, dy), _ = cv2.phaseCorrelate(a[ya:ya + 2 * HALF, xa:xa + 2 * HALF],
                                             b[yb:yb + 2 * HALF, xb:xb + 2 * HALF], hann)
            est[i, j] = (sx + dx, sy + dy)
    return est


def test_sea_ice_pair_agrees_with_phase_correlation(tmp_path):
    folder = shared_path("velocity", "s1_ew_seaice_drift_2020")
    images = sorted(str(p) for p in folder.glob("*.tif"))
    out = tmp_path / "seaice"
    assert main(["-q", "sar-velocity", *images, "-o", str(out), "--no-offset-model",
                 "--search", "64"]) == 0
    rep = json.loads((out / "report.json").read_text())
    pair = rep["pairs"][0]
    # 08:32:37 -> 07:35:29 the next day: 23.05 h, not one day
    assert pair["dt_days"] == pytest.approx(23.0478 / 24, abs=1e-4)
    assert pair["dates"] == ["2020-03-01T08:32:37", "2020-03-02T07:35:29"]
    with rasterio.open(out / "pairs" / f"{pair['pair']}.real.tif") as ds:
        dx = ds.read(1) / PIXEL
        assert ds.tags()["date1"] == "2020-03-01T08:32:37"
    with rasterio.open(out / "pairs" / f"{pair['pair']}.imag.tif") as ds:
        dy = ds.read(1) / PIXEL
    a, b = (rasterio.open(p).read(1).astype(np.float32) for p in images)
    est = _phase_correlation(a, b, dx.shape)
    inside = np.isfinite(est[..., 0])
    assert inside.mean() > 0.7                       # the rest drifts out of the scene
    valid = np.isfinite(dx) & np.isfinite(dy)
    # measured: 100 % valid where the feature stays in the scene, 92.0 % of all nodes (the
    # nodes of the first row and column have 37 % of their chip outside the image)
    assert valid[inside].mean() >= 0.9
    assert valid.mean() >= 0.9
    diff = np.hypot(dx - est[..., 0], dy - est[..., 1])
    # measured: 97.7 % within 0.5 px, median 0.20 px, 90th percentile 0.38 px
    assert (np.nan_to_num(diff[inside], nan=np.inf) < 0.5).mean() >= 0.9
    # drift of the README's check: about 44 px = 4.4 km in 23 h, i.e. ~4.6 km/day
    speed = rep["mean_velocity"]["speed_p50"]
    assert 4300 < speed < 4900, speed


def test_sea_ice_pair_in_wgs84(tmp_path):
    """``--out-crs EPSG:4326`` (the Svalbard product's CRS): every raster and the cube on one
    geographic grid at the node spacing in metres, the same drift as on the native grid."""
    import xarray as xr

    folder = shared_path("velocity", "s1_ew_seaice_drift_2020")
    images = sorted(str(p) for p in folder.glob("*.tif"))
    out = tmp_path / "wgs84"
    assert main(["-q", "sar-velocity", *images, "-o", str(out), "--no-offset-model",
                 "--search", "64", "--out-crs", "EPSG:4326"]) == 0
    grids = raster_grids(out, 4326)
    assert len(grids) == 1
    (transform, shape), = grids
    # 1600 m nodes at 83.5 N: 0.0145 deg of latitude, 0.128 deg of longitude
    assert transform.e == pytest.approx(-1600 / 110574, rel=1e-6)
    assert transform.a == pytest.approx(1600 / (111320 * np.cos(np.radians(83.55))), rel=0.01)
    with xr.open_dataset(out / "velocity_cube.nc") as cube:
        assert cube.x.attrs["units"] == "degrees_east" and cube.mean_speed.shape == shape
    rep = json.loads((out / "report.json").read_text())
    assert 4300 < rep["mean_velocity"]["speed_p50"] < 4900
    assert "radar geometry" in rep["directions"]["range"]
    meta = json.loads((out / "metadata.json").read_text())
    assert 83.0 < meta["bbox"]["south"] < meta["bbox"]["north"] < 84.0
