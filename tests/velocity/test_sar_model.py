"""SAR pieces on exact inputs: radar directions, the orbit/terrain model, series algebra."""

import datetime as dt

import numpy as np
import pytest

from cryokit.velocity import sar, series


@pytest.mark.parametrize("heading", [-12.0, -168.0, 37.0])
def test_radar_components_round_trip(heading):
    rng = np.random.default_rng(0)
    dx, dy = rng.normal(size=50), rng.normal(size=50)
    r, a = sar.radar_components(dx, dy, heading)
    assert np.allclose(np.hypot(r, a), np.hypot(dx, dy))          # a rotation
    bx, by = sar.map_components(r, a, heading)
    assert np.allclose(bx, dx) and np.allclose(by, dy)


def test_radar_directions():
    # Ascending track heading north: azimuth = north (up the rows), range = east.
    r, a = sar.radar_components(np.array([0.0]), np.array([-1.0]), 0.0)
    assert (r[0], a[0]) == pytest.approx((0.0, 1.0))
    # Descending (heading south): range points west.
    r, a = sar.radar_components(np.array([-1.0]), np.array([0.0]), 180.0)
    assert (r[0], a[0]) == pytest.approx((1.0, 0.0))


def test_geometry_model_recovers_ramp_and_terrain():
    rows, cols = np.indices((60, 70)).astype(float)
    rng = np.random.default_rng(1)
    z = 500 + 300 * np.sin(cols / 9) * np.cos(rows / 13) + 2 * rows
    xn, yn = 2 * cols / 69 - 1, 2 * rows / 59 - 1
    r_true = 0.3 + 0.2 * xn - 0.1 * yn + 0.0011 * (z - np.median(z))
    a_true = -0.2 + 0.05 * xn + 0.15 * yn
    stable = np.ones(z.shape, bool)
    stable[20:35, 10:60] = False                       # a glacier
    r = r_true + rng.normal(0, 0.05, z.shape)
    a = a_true + rng.normal(0, 0.05, z.shape)
    r[20:35, 10:60] += 3.0                              # moving ice
    r[5, 5] = 40.0                                      # a blunder on stable ground
    m = sar.GeometryModel().fit(r, a, stable, z)
    assert m.params["range"]["height"][0] == pytest.approx(0.0011, rel=0.03)
    assert m.params["range"]["poly"]["x1y0"] == pytest.approx(0.2, abs=0.01)
    assert abs(m.params["azimuth"]["height"][0]) < 3e-5
    cr, ca = m.apply(r, a, z)
    nm = sar.residual_nmad(cr, ca, stable)
    assert nm[0] == pytest.approx(0.05, abs=0.01) and nm[1] == pytest.approx(0.05, abs=0.01)
    assert np.median(cr[20:35, 10:60]) == pytest.approx(3.0, abs=0.03)   # motion kept


def test_geometry_model_needs_stable_nodes():
    with pytest.raises(ValueError, match="stable nodes"):
        sar.GeometryModel().fit(np.zeros((5, 5)), np.zeros((5, 5)), np.zeros((5, 5), bool))


def test_pair_network_rules():
    d = [dt.date(2021, 1, 1) + dt.timedelta(days=12 * k) for k in range(5)]
    assert len(series.pair_network(d, "all-within-24")) == 4 + 3
    with pytest.raises(ValueError):
        series.pair_network(d, "every")
    with pytest.raises(ValueError):
        series.pair_network(d[::-1])


def test_cumulative_least_squares_and_gaps():
    truth = np.array([0.0, 1.0, 2.5, 2.7, 4.0])
    pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 2), (2, 4)]
    obs = np.array([truth[j] - truth[i] for i, j in pairs])[:, None, None] * np.ones((1, 2, 3))
    obs[1, 0, 0] = np.nan                              # (1, 2) missing at one node: still linked
    obs[[2, 3, 5], 1, 1] = np.nan                      # node (1,1): dates 3 and 4 cut off
    cum = series.cumulative(obs, pairs, 5)
    assert np.allclose(cum[:, 0, 0], truth) and np.allclose(cum[:, 0, 2], truth)
    assert np.allclose(cum[:3, 1, 1], truth[:3]) and np.isnan(cum[3:, 1, 1]).all()


def test_mean_velocity_weights_and_rejects():
    d = np.array([1.5, 3.0, 1.4, 9.0])[:, None, None]
    dt_days = np.array([15.0, 30.0, 15.0, 15.0])
    sigma = np.array([0.1, 0.1, 0.4, 0.1])
    v, n = series.mean_velocity(d, dt_days, sigma)
    assert int(n[0, 0]) == 3                           # 0.6 m/d is a blunder
    # weights (dt/sigma)^2: 22500, 90000, 1406 -> mean close to the long, clean pair
    w = np.array([22500, 90000, 1406.25])
    assert v[0, 0] == pytest.approx(np.sum(w * [0.1, 0.1, 1.4 / 15]) / w.sum())


def _bump_pair(k=3e-4, n=192, seed=3):
    """A smooth texture and its copy whose range offset (columns) is exactly k * h on the
    reference grid, h a 1500 m bump narrower than the chip on a gentle slope."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.standard_normal((n + 40, n + 40)), 1.2)
    r, c = np.mgrid[0:n, 0:n].astype(float)
    h = 1500 * np.exp(-((r - 90) ** 2 + (c - 100) ** 2) / (2 * 14.0 ** 2)) + 3 * r
    x = c.copy()
    for _ in range(30):     # pixel y of the copy shows x with x + k h(x) = y
        x = c - k * ndimage.map_coordinates(h, [r, x], order=1, mode="nearest")
    sec = ndimage.map_coordinates(tex, [r + 20, x + 20], order=5)
    return tex[20:20 + n, 20:20 + n].astype(np.float32), sec.astype(np.float32), h


def test_effective_heights_predict_the_lk_response_to_terrain():
    from dataclasses import replace

    from scipy import ndimage

    from cryokit.velocity.track import node_origins, track_pair

    k = 3e-4                                             # px per m: up to 0.45 px
    ref, sec, h = _bump_pair(k)
    p = replace(sar.SAR_DEFAULTS, chip=32, step=8, search=2, prefilter="none",
                lk_window=0.35, lk_narrow=None, min_peak=0.0, min_snr=0.0)
    f = track_pair(ref, sec, p)
    hr, ha = sar.effective_heights(ref, h, p, None)
    c = node_origins(f.dx.shape[0], p.step, p.chip) + (p.chip - 1) / 2
    centre = ndimage.map_coordinates(h, np.meshgrid(c, c, indexing="ij"), order=1)
    assert np.isfinite(f.dx).mean() > 0.8

    def rms(e):
        return float(np.sqrt(np.nanmean(e ** 2)))

    # The bump is narrower than the chip: its offset at the node centre is 0.1 px more than
    # the tracker reports (0.015 px RMS over the nodes); the linear LK response leaves
    # 0.002 px (second-order terms), and it also predicts the azimuth cross term.
    assert rms(f.dx - k * centre) > 0.01
    assert rms(f.dx - k * hr) < 0.004
    assert rms(f.dy - k * ha) < 0.3 * rms(f.dy)


def test_effective_heights_use_the_narrow_window_where_told():
    from dataclasses import replace

    ref, _, h = _bump_pair()
    p = replace(sar.SAR_DEFAULTS, chip=32, step=8, lk_window=0.35, lk_narrow=0.15)
    narrow = np.zeros((24, 24), bool)
    narrow[5:12, 8:20] = True
    hr, ha = sar.effective_heights(ref, h, p, -12.0, narrow)
    wide = sar.effective_heights(ref, h, replace(p, lk_narrow=None), -12.0)
    only_narrow = sar.effective_heights(ref, h, replace(p, lk_window=0.15), -12.0)
    for got, w, nw in zip((hr, ha), wide, only_narrow):
        assert np.array_equal(got[narrow], nw[narrow])
        assert np.array_equal(got[~narrow], w[~narrow])
    assert np.abs(hr - wide[0]).max() > 10          # the windows differ on the bump (metres)
