"""Synthetic Sentinel-1-like SAR series: speckle statistics, coherence, exact truth, files."""

from __future__ import annotations

import datetime as dt
import json
import math
import os

import numpy as np
import pytest
import rasterio
from scipy import ndimage, stats

from cryokit.synthetic import SarSeries, make_sar_series, write_sar_series
from cryokit.synthetic.sar import _to_map, _to_radar
from cryokit.velocity.track import TrackParams, node_origins, node_shape, track_pair

from conftest import shared_path


@pytest.fixture(scope="module")
def series() -> SarSeries:
    return make_sar_series((256, 256), n=5, seed=3)


def _map(pair, heading):
    """(range, azimuth) -> map (dy, dx)."""
    return _to_map(pair[0], pair[1], heading)


def _speckle(s: SarSeries, k: int) -> np.ndarray:
    """Intensity over its noise-free mean: the pure L-look speckle of image k."""
    return s.images[k].astype(np.float64) ** 2 / s.reflectivity[k]


def test_fields_and_metadata(series):
    s = series
    assert len(s.images) == len(s.dates) == len(s.reflectivity) == 5
    for img in s.images:
        assert img.dtype == np.float32 and img.shape == (256, 256)
        assert np.isfinite(img).all() and (img > 0).all()
    assert [(b - a).days for a, b in zip(s.dates, s.dates[1:])] == [15] * 4
    assert s.dates[0] == dt.date(2021, 1, 1)
    assert s.grid.crs.to_epsg() == 32633 and s.grid.res == (20.0, 20.0)
    assert s.grid.transform.e < 0 and s.grid.shape == (256, 256)  # north-up
    assert s.dem.dtype == np.float32 and s.dem.shape == (256, 256)
    assert s.dem.min() == pytest.approx(0, abs=1e-3)
    assert s.dem.max() == pytest.approx(1200, rel=1e-4)
    assert s.heading == -12.0
    assert 0.1 < s.glacier.mean() < 0.5 and 0.3 < s.stable.mean()
    assert not (s.glacier & s.stable).any()
    json.dumps(s.params)  # JSON-serialisable as promised
    g = s.params["geometry"]
    assert set(g) == {"range", "azimuth"} and all(len(g["range"][t]) == 5 for t in "cxy")


def test_seed_reproducible():
    a, b = make_sar_series((64, 64), n=2, seed=4), make_sar_series((64, 64), n=2, seed=4)
    c = make_sar_series((64, 64), n=2, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert a.params == b.params
    assert not np.array_equal(a.images[0], c.images[0])


def test_radar_directions():
    # Heading 0 (due north): range looks east, azimuth points north (row -1).
    assert _to_radar(0.0, 1.0, 0.0) == pytest.approx((1.0, 0.0))
    assert _to_radar(-1.0, 0.0, 0.0) == pytest.approx((0.0, 1.0))
    h = math.radians(-12.0)
    # Azimuth (east, north) = (sin h, cos h) -> map (dy, dx) = (-cos h, sin h).
    assert _to_map(0.0, 1.0, -12.0) == pytest.approx((-math.cos(h), math.sin(h)))
    assert _to_map(1.0, 0.0, -12.0) == pytest.approx((math.sin(h), math.cos(h)))
    dy, dx = np.random.default_rng(0).normal(size=(2, 10))
    assert np.allclose(_to_map(*_to_radar(dy, dx, 33.0), 33.0), (dy, dx))


@pytest.mark.parametrize("looks", [1, 4])
def test_intensity_is_gamma_with_L_looks(looks):
    s = make_sar_series((192, 192), n=2, seed=7, looks=looks)
    for k in range(2):
        # Dividing by the (smooth) reflectivity leaves a flat-reflectivity speckle field.
        r = _speckle(s, k).ravel()
        assert r.mean() == pytest.approx(1.0, abs=0.03)
        enl = r.mean() ** 2 / r.var()
        assert enl == pytest.approx(looks, rel=0.15)
        q = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
        expected = stats.gamma(looks, scale=1 / looks).ppf(q)
        assert np.quantile(r, q) == pytest.approx(expected, rel=0.06)
    # The raw amplitudes on a nearly flat patch of rock show the same ENL (no hidden texture).
    flat = s.reflectivity[0]
    patch = np.abs(flat / ndimage.uniform_filter(flat, 9) - 1) < 0.03
    inten = s.images[0].astype(np.float64) ** 2
    rel = inten[patch] / ndimage.uniform_filter(flat, 9)[patch]
    assert rel.mean() ** 2 / rel.var() == pytest.approx(looks, rel=0.15)


@pytest.mark.parametrize("coherence", [0.5, 0.7, 0.9])
def test_speckle_coherence_between_dates(coherence):
    # No geometry, so stable pixels see the same ground at both dates. The intensity
    # correlation of two L-look images of complex coherence c is c**2 (Siegert). ~25 000
    # stable pixels with speckle cells of ~3 pixels give ~8000 independent samples, so the
    # estimate has a standard error <= 0.011 and 0.04 is ~4 sigma while c differs from c**2
    # by >= 0.09.
    s = make_sar_series((256, 256), n=3, seed=11, coherence=coherence, ramp_px=0.0,
                        terrain_px_per_km=0.0)
    for i, j in [(0, 1), (1, 2), (0, 2)]:
        rho = np.corrcoef(_speckle(s, i)[s.stable], _speckle(s, j)[s.stable])[0, 1]
        assert rho == pytest.approx(coherence ** 2, abs=0.04)
        # Moving ice sampled at the same pixel decorrelates: the ground has moved.
        fast = s.glacier & (np.hypot(*s.motion(i, j)) > 2)
        assert np.corrcoef(_speckle(s, i)[fast], _speckle(s, j)[fast])[0, 1] < 0.6 * rho


def test_motion_truth_exact(series):
    s = series
    v0 = s.params["max_speed_px_per_day"]
    for i, j in [(0, 1), (2, 3), (4, 0), (2, 2)]:
        dr, da = s.motion(i, j)
        assert dr.dtype == np.float64 and dr.shape == (256, 256)
        assert np.all(dr[s.stable] == 0) and np.all(da[s.stable] == 0)
    for i in (0, 2):  # image 2 is at the reference time (middle of the series)
        # The shape depends only on the ice seen at each pixel of image i, so the motion to
        # any later date scales with the integral of v(t): exact, pointwise.
        m1, m3 = np.array(s.motion(i, 1 if i else 3)), np.array(s.motion(i, 4))
        f1, f3 = s.flow_days(i, 1 if i else 3), s.flow_days(i, 4)
        assert np.allclose(m1 * f3, m3 * f1, rtol=0, atol=1e-9)
        # And equals v0 * shape(ice position at the reference time) * integral.
        py, px, uy, ux, _ = s._material(i)
        sy, sx = s._valley(py, px)
        assert np.allclose(_map(s.motion(i, 4), s.heading), (sy * f3, sx * f3), atol=1e-9)
    # The fastest ice moves v0 * flow_days (the centreline speed peak lies in the image).
    for i in range(4):
        speed = np.hypot(*s.motion(i, i + 1))
        assert speed.max() == pytest.approx(v0 * s.flow_days(i, i + 1), rel=0.03)
        assert np.median(speed[s.glacier]) > 0.3 * speed.max()


def test_seasonal_integral(series):
    s = series
    a, peak = s.params["seasonal_amplitude"], s.params["seasonal_peak_doy"]
    assert s.speed_factor(dt.date(2000, 1, 1) + dt.timedelta(days=peak - 1)) == pytest.approx(1 + a)
    assert s.speed_factor(dt.date(2021, 1, 1) + dt.timedelta(days=peak - 1 + 182)) == \
        pytest.approx(1 - a, abs=1e-3)
    assert s.speed_factor(30.0) == s.speed_factor(s.dates[2])  # float = days after dates[0]
    for i, j in [(0, 1), (1, 4), (3, 0)]:
        t = np.linspace(15.0 * i, 15.0 * j, 2001)
        f = np.array([s.speed_factor(v) for v in t])
        numeric = float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(t)))
        assert s.flow_days(i, j) == pytest.approx(numeric, rel=1e-6)
    # January: slow season, so a 15-day pair moves less than 15 days at v0.
    assert 0.7 * 15 < s.flow_days(0, 1) < 0.75 * 15
    assert s.flow_days(0, 4) == pytest.approx(sum(s.flow_days(k, k + 1) for k in range(4)))


def test_geometry_model_and_offsets(series):
    s = series
    rows, cols = np.mgrid[0:256, 0:256]
    xn, yn = 2 * cols / 255 - 1, 2 * rows / 255 - 1
    dh = s.dem.astype(np.float64) - s.params["dem_mean_m"]
    for i, j in [(0, 1), (1, 3), (4, 2)]:
        m = s.model(i, j)
        assert m["azimuth"]["height"] == 0.0
        want = [m[c]["c"] + m[c]["x"] * xn + m[c]["y"] * yn + m[c]["height"] * dh
                for c in ("range", "azimuth")]
        assert np.allclose(s.geometry(i, j), want, rtol=0, atol=1e-12)
        # Pair coefficients are differences of per-acquisition ones: additive, antisymmetric.
        mid = (i + j) // 2
        assert all(m[c][t] == pytest.approx(s.model(i, mid)[c][t] + s.model(mid, j)[c][t])
                   for c in m for t in m[c])
        assert s.model(j, i)["range"]["x"] == pytest.approx(-m["range"]["x"])
        # offsets = motion + geometry up to the documented second-order term.
        off, mot, geo = s.offsets(i, j), s.motion(i, j), s.geometry(i, j)
        for o, mo, g in zip(off, mot, geo):
            e = o - mo - g
            assert np.abs(e).max() < 0.05 and np.sqrt(np.mean(e[s.stable] ** 2)) < 0.01
    assert np.allclose(s.offsets(2, 2), 0, atol=1e-9)


def test_truth_composes_across_pairs(series):
    # Following a feature 0 -> 1 -> 3 ends where 0 -> 3 puts it (cubic interpolation of the
    # smooth truth fields at the sub-pixel landing points limits this to ~1e-3 px).
    s = series
    rows, cols = np.mgrid[0:256, 0:256].astype(np.float64)
    for truth in ("offsets", "motion"):
        ay, ax = _map(getattr(s, truth)(0, 1), s.heading)
        by, bx = _map(getattr(s, truth)(1, 3), s.heading)
        cy, cx = _map(getattr(s, truth)(0, 3), s.heading)
        oy, ox = _map(s.offsets(0, 1), s.heading)
        at = [rows + oy, cols + ox]
        by = ndimage.map_coordinates(by, at, order=3, mode="nearest")
        bx = ndimage.map_coordinates(bx, at, order=3, mode="nearest")
        inner = (at[0] > 3) & (at[0] < 252) & (at[1] > 3) & (at[1] < 252)
        assert np.hypot(ay + by - cy, ax + bx - cx)[inner].max() < 3e-3


def test_geometry_coefficients_drawn_as_specified():
    s = make_sar_series((64, 64), n=40, seed=1, max_speed_px_per_day=0.01, ramp_px=0.5,
                        terrain_px_per_km=0.8)
    t = np.array(s.params["geometry"]["range"]["height"])
    step = np.abs(np.diff(t))
    assert step.min() >= 0.3 * 0.8e-3  # measurable in every consecutive pair
    assert 0.5 * 0.8e-3 < np.median(step) < 1.5 * 0.8e-3 and np.abs(t).max() <= 1.5 * 0.8e-3
    ramps = np.array([[s.model(k, k + 1)[c][v] for c in ("range", "azimuth") for v in "cxy"]
                      for k in range(39)])
    assert 0.2 < np.sqrt(np.mean(ramps ** 2)) / 0.5 < 2.0  # pair ramps of order ramp_px
    flat = make_sar_series((64, 64), n=3, seed=1, ramp_px=0.0, terrain_px_per_km=0.0)
    assert all(np.all(g == 0) for g in flat.geometry(0, 2))


def test_dem_options(tmp_path):
    rng = np.random.default_rng(0)
    dem = rng.uniform(100, 300, (64, 64)).astype(np.float32)
    s = make_sar_series((64, 64), n=2, dem=dem)
    assert np.array_equal(s.dem, dem) and s.params["dem"] == "array"
    holes = dem.copy()
    holes[10:12, 5] = np.nan
    assert np.isfinite(make_sar_series((64, 64), n=2, dem=holes).dem).all()
    with pytest.raises(ValueError, match="shape"):
        make_sar_series((64, 64), n=2, dem=dem[:32])


def test_real_dem_from_geotiff():
    path = shared_path("velocity", "yahtse_landsat8_2016", "yahtse_srtm_dem.tif")
    s = make_sar_series((256, 256), n=2, seed=1, dem=path)
    assert s.dem.shape == (256, 256) and np.isfinite(s.dem).all()
    assert np.ptp(s.dem) > 1000  # the real St Elias relief (0 to ~2160 m)
    assert s.params["dem"] == os.fspath(path)
    # The terrain term follows that relief.
    t = s.model(0, 1)["range"]["height"]
    r, _ = s.geometry(0, 1)
    assert np.corrcoef(r.ravel(), s.dem.ravel())[0, 1] * np.sign(t) > 0.5


def test_tracker_recovers_offsets_on_speckle():
    # cryokit's own tracker on log-amplitude: the speckle is trackable and the truth is right.
    s = make_sar_series((384, 384), n=2, seed=1)
    p = TrackParams(chip=64, step=32, search=8)
    f = track_pair(np.log(s.images[0]), np.log(s.images[1]), p)
    ty, tx = _map(s.offsets(0, 1), s.heading)
    ny, nx = node_shape((384, 384), p.step)
    centre = [node_origins(m, p.step, p.chip) + p.chip / 2 - 0.5 for m in (ny, nx)]
    at = np.meshgrid(*centre, indexing="ij")
    ty, tx = (ndimage.map_coordinates(a, at, order=1) for a in (ty, tx))
    stable = ndimage.map_coordinates(s.stable.astype(np.uint8), at, order=0).astype(bool)
    ok = stable & f.valid
    assert ok.sum() > 0.9 * stable.sum() > 40
    assert np.median(np.hypot(ty, tx)[ok]) > 0.3  # the geometry is there to be measured
    err = np.hypot(f.dy - ty, f.dx - tx)[ok]
    assert np.median(err) < 0.1
    ice = ndimage.map_coordinates(s.glacier.astype(np.uint8), at, order=0).astype(bool) & f.valid
    assert np.median(np.hypot(f.dy - ty, f.dx - tx)[ice]) < 0.25  # moving ice too


def test_write_sar_series(tmp_path):
    s = make_sar_series((64, 64), n=3, seed=2)
    out = write_sar_series(s, tmp_path / "series")
    assert sorted(out) == ["dem", "images", "stable", "truth"]
    names = [os.path.basename(p) for p in out["images"]]
    assert names[0] == "S1A_IW_GRDH_1SDV_20210101T053512_20210101T053537_synthetic_amp.tif"
    assert names[1].startswith("S1B_IW_GRDH_1SDV_20210116T053512_20210116")
    for k, path in enumerate(out["images"]):
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 32633 and ds.transform == s.grid.transform
            assert ds.dtypes[0] == "float32" and ds.descriptions[0]
            assert ds.tags()["DATE"] == s.dates[k].isoformat()
            assert ds.tags()["UNITS"] == "amplitude"
            assert np.array_equal(ds.read(1), s.images[k])
    with rasterio.open(out["dem"]) as ds:
        assert ds.dtypes[0] == "float32" and np.array_equal(ds.read(1), s.dem)
    with rasterio.open(out["stable"]) as ds:
        assert ds.dtypes[0] == "uint8" and np.array_equal(ds.read(1), s.stable.astype(np.uint8))
    truth = json.loads(open(out["truth"]).read())
    assert truth["dates"] == [d.isoformat() for d in s.dates] and truth["heading"] == -12.0
    assert [p["model"] for p in truth["pairs"]] == [s.model(0, 1), s.model(1, 2)]
    for p in truth["pairs"]:
        i, j = p["i"], p["j"]
        e = [o - m - g for o, m, g in zip(s.offsets(i, j), s.motion(i, j), s.geometry(i, j))]
        assert p["max_second_order_px"] == max(float(np.abs(v).max()) for v in e) < 0.15
    assert truth["params"]["looks"] == 4 and truth["params"]["epsg"] == 32633
    assert sorted(os.listdir(tmp_path / "series")) == sorted(
        names + ["dem.tif", "stable.tif", "truth.json"])  # no temporary files left
