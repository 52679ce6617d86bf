"""Matching engine on synthetic pairs with exact truth (numpy in, numpy out)."""

import numpy as np
import pytest

from cryokit.synthetic import make_glacier_pair, make_uniform_shift_pair
from cryokit.velocity import correlate, filters, stable
from cryokit.velocity.accuracy import error_stats, mask_at_nodes, truth_at_nodes
from cryokit.velocity.track import TrackParams, track_pair


def _errors(pair, field, params, where=None):
    nodes = field.dx.shape
    tx, ty = truth_at_nodes(pair.dx, pair.dy, nodes, params.step, params.chip)
    w = None if where is None else mask_at_nodes(where, nodes, params.step, params.chip)
    return error_stats(field.dx, field.dy, tx, ty, w)


@pytest.fixture(scope="module")
def glacier():
    return make_glacier_pair((768, 768), seed=3, max_speed_px=6)


@pytest.fixture(scope="module")
def glacier_slc():
    return make_glacier_pair((768, 768), seed=3, max_speed_px=6, slc_off=True)


@pytest.mark.parametrize("dx,dy", [(0.37, -0.21), (2.5, 1.5), (-3.83, 2.06)])
def test_subpixel_uniform_shift(dx, dy):
    # Sub-pixel accuracy on textured ground: a few hundredths of a pixel at most.
    pair = make_uniform_shift_pair((256, 256), dx=dx, dy=dy, seed=2, noise=0.01)
    params = TrackParams(step=16, search=6)
    f = track_pair(pair.ref, pair.sec, params)
    e = _errors(pair, f, params)
    assert f.valid.mean() > 0.95
    assert e["rmse_px"] < 0.03
    assert abs(np.nanmedian(f.dx) - dx) < 0.01 and abs(np.nanmedian(f.dy) - dy) < 0.01


def test_lk_beats_peak_fitting():
    # The Lucas-Kanade refinement removes the pixel-locking bias of a 3-point peak fit.
    pair = make_uniform_shift_pair((256, 256), dx=1.3, dy=-0.7, seed=4, noise=0.005)
    a, b = filters.highpass(pair.ref), filters.highpass(pair.sec)
    r = c = np.repeat(np.arange(20, 200, 20), 1)
    R, C = (u.ravel() for u in np.meshgrid(r, c, indexing="ij"))
    z = np.zeros(R.size, int)
    surf = correlate.correlation_surfaces(a, b, R, C, z, z, chip=32, search=4)
    dy, dx, *_ = correlate.integer_peaks(surf)
    ry, rx = correlate.refine_lk(a, b, R, C, dy, dx, chip=32)
    peak_err = np.sqrt(np.mean((dx - 1.3) ** 2 + (dy + 0.7) ** 2))
    lk_err = np.sqrt(np.mean((rx - 1.3) ** 2 + (ry + 0.7) ** 2))
    assert lk_err < 0.02 < peak_err


def test_glacier_pair_accuracy(glacier):
    params = TrackParams(step=16, search=16)
    f = track_pair(glacier.ref, glacier.sec, params)
    moving = mask_at_nodes(glacier.glacier, f.dx.shape, params.step, params.chip)
    e_all = _errors(glacier, f, params)
    e_static = _errors(glacier, f, params, ~glacier.glacier)
    assert f.valid[moving].mean() >= 0.90
    assert e_static["rmse_px"] < 0.03          # undeformed ground: noise-limited
    # Moving ice carries strain within each 40 px chip (shear margins), the dominant error; the
    # strain-adaptive LK window brings it to 0.048 px (0.055 with the wide window only).
    assert e_all["rmse_px"] <= 0.05
    assert e_all["share_over_1px"] == 0.0


def test_slc_off_gaps(glacier_slc):
    # Issue 2 targets under SLC-off gaps (22 % of each image, different stripes per date).
    params = TrackParams(step=16, search=16)
    f = track_pair(glacier_slc.ref, glacier_slc.sec, params)
    e = _errors(glacier_slc, f, params)
    moving = mask_at_nodes(glacier_slc.glacier, f.dx.shape, params.step, params.chip)
    # Measured 94.5 % of moving nodes valid at RMSE 0.092 px, 0.05 % (1 node) > 1 px; the
    # bounds are the issue's. Without the fall-back 73 % are valid.
    assert f.valid[moving].mean() >= 0.90
    assert e["rmse_px"] <= 0.1
    assert e["share_over_1px"] <= 0.01
    # No NaN leaks into valid output and invalid nodes are NaN.
    assert np.isfinite(f.dx[f.valid]).all() and np.isfinite(f.dy[f.valid]).all()
    assert np.isnan(f.dx[~f.valid]).all()


def test_gap_fallback_adds_nodes_without_losing_accuracy(glacier_slc):
    base = TrackParams(step=16, search=16, gap_chip_factor=1)
    params = TrackParams(step=16, search=16)
    f0 = track_pair(glacier_slc.ref, glacier_slc.sec, base)
    f1 = track_pair(glacier_slc.ref, glacier_slc.sec, params)
    added = f1.valid & ~f0.valid
    assert added.mean() > 0.2                  # measured 0.25 of all nodes
    tx, ty = truth_at_nodes(glacier_slc.dx, glacier_slc.dy, f1.dx.shape, params.step,
                            params.chip)
    err0, err1 = np.hypot(f0.dx - tx, f0.dy - ty), np.hypot(f1.dx - tx, f1.dy - ty)
    assert np.sqrt(np.mean(err1[added] ** 2)) <= 0.12     # measured 0.108 px
    # Nodes matched by the normal chip keep their integer match; those next to gaps are
    # refined again on the joint mask, which removes the gap-edge bias of the pre-filter on
    # static ground: RMSE 0.070 -> 0.019 px there, on the 68 % of nodes that touch gaps (0.16 px
    # for added nodes pre-filtered on their own masks, 0.04 with the joint mask).
    both = f0.valid & f1.valid
    assert np.nanmax(np.abs(f0.dx[both] - f1.dx[both])) < 1.0
    static = mask_at_nodes(glacier_slc.stable, f1.dx.shape, params.step, params.chip)
    moved = both & (f0.dx != f1.dx)
    assert moved.mean() > 0.5
    rms = lambda e, m: np.sqrt(np.mean(e[m] ** 2))  # noqa: E731
    assert rms(err1, moved & static) <= 0.5 * rms(err0, moved & static)
    assert np.sqrt(np.mean(err1[added & static] ** 2)) <= 0.06


def test_gap_fallback_tiles_equal_whole(glacier_slc):
    # The fall-back's per-node windows must not depend on which other nodes share its batch,
    # nor on the window around the nodes beyond window_margin: a tile equals the whole run.
    from cryokit.velocity.track import match_window, node_origins, window_margin

    params = TrackParams(step=16, search=6)
    ref, sec = glacier_slc.ref, glacier_slc.sec
    o = node_origins(40, 16, 40)
    R, C = (u.ravel() for u in np.meshgrid(o, o, indexing="ij"))
    z = np.zeros(R.size, np.int64)
    whole = match_window(ref, sec, R, C, z, z, params)
    sel = (R >= 200) & (R < 400) & (C >= 100) & (C < 300)
    m = window_margin(params)
    top, left = int(R[sel].min()) - 6 - m, int(C[sel].min()) - 6 - m
    bottom, right = int(R[sel].max()) + 46 + m, int(C[sel].max()) + 46 + m
    tile = match_window(ref[top:bottom, left:right], sec[top:bottom, left:right],
                        R[sel] - top, C[sel] - left, z[sel], z[sel], params)
    for w, t in zip(whole, tile):
        assert np.array_equal(w[sel], t, equal_nan=True)


@pytest.mark.parametrize("kw", [dict(matcher="oc"), dict(prefilter="wallis"), dict(prefilter="none")])
def test_matchers_and_prefilters(kw):
    pair = make_uniform_shift_pair((256, 256), dx=-1.4, dy=0.8, seed=5, noise=0.01)
    params = TrackParams(step=16, search=6, **kw)
    f = track_pair(pair.ref, pair.sec, params)
    assert f.valid.mean() > 0.9
    assert _errors(pair, f, params)["rmse_px"] < 0.05


def test_coarse_to_fine_finds_large_offsets():
    pair = make_uniform_shift_pair((384, 384), dx=17.3, dy=-11.6, seed=6, noise=0.01)
    params = TrackParams(step=32, search=24)
    f = track_pair(pair.ref, pair.sec, params)
    assert f.valid.mean() > 0.8
    assert _errors(pair, f, params)["rmse_px"] < 0.05


def test_prior_sets_search_centre():
    pair = make_uniform_shift_pair((256, 256), dx=12.2, dy=9.7, seed=7, noise=0.01)
    params = TrackParams(step=32, search=3, fine_search=3)
    ny, nx = 8, 8
    no_prior = track_pair(pair.ref, pair.sec, params)
    assert no_prior.valid.mean() < 0.2            # 3 px search cannot reach 12 px
    prior = (np.full((ny, nx), 10.0), np.full((ny, nx), 11.0))
    f = track_pair(pair.ref, pair.sec, params, prior=prior)
    assert f.valid.mean() > 0.7
    assert _errors(pair, f, params)["rmse_px"] < 0.05


def test_normalized_median_test_flags_outliers():
    rng = np.random.default_rng(0)
    dx = 2 + 0.02 * rng.standard_normal((30, 30))
    dy = -1 + 0.02 * rng.standard_normal((30, 30))
    dx[5, 7] += 3.0
    dy[20, 3] -= 2.0
    bad = filters.normalized_median_test(dx, dy)
    assert bad[5, 7] and bad[20, 3]
    assert bad.sum() == 2


def test_fill_small_gaps_marks_filled():
    dx = np.ones((10, 10))
    dy = np.zeros((10, 10))
    dx[4, 4] = dy[4, 4] = np.nan
    dx[0:3, 0:3] = dy[0:3, 0:3] = np.nan      # a 3 x 3 hole: its centre has no neighbour
    fx, fy, filled = filters.fill_small_gaps(dx, dy)
    assert filled[4, 4] and fx[4, 4] == 1.0
    assert not filled[1, 1] and np.isnan(fx[1, 1])


def test_stable_fit_median_and_plane():
    rows, cols = np.indices((40, 50))
    rng = np.random.default_rng(1)
    dx = 0.3 + 0.01 * cols + 0.05 * rng.standard_normal(rows.shape)
    dy = -0.2 + 0.05 * rng.standard_normal(rows.shape)
    st = np.ones(rows.shape, bool)
    st[10:20, 10:20] = False
    dx[10:20, 10:20] += 5        # moving ice, outside the stable mask
    med = stable.fit_stable(dx, dy, st, "median")
    assert abs(med["median_px"][1] + 0.2) < 0.01
    plane = stable.fit_stable(dx, dy, st, "plane")
    cx, cy = stable.correct(dx, dy, plane)
    assert abs(np.median(cx[st])) < 0.01
    assert plane["nmad_px"][0] == pytest.approx(0.05, abs=0.01)   # only the added noise remains
    assert med["nmad_px"][0] > 0.1                                 # the ramp was not removed


def test_nmad_is_robust():
    x = np.r_[np.random.default_rng(0).normal(0, 1, 10000), np.full(500, 50.0)]
    assert stable.nmad(x) == pytest.approx(1.0, abs=0.1)   # 5 % blunders barely move it
    assert np.std(x) > 10


def test_lk_kernel_matches_numpy_reference(glacier_slc, monkeypatch):
    # The fused numba kernel and the numpy reference implement the same estimator, gaps
    # included: results agree to float32 rounding.
    from cryokit.velocity import lk_kernel
    from cryokit.velocity.track import node_origins

    if not lk_kernel.AVAILABLE:
        pytest.skip("numba not installed")
    a, b = filters.highpass(glacier_slc.ref, 1.5), filters.highpass(glacier_slc.sec, 1.5)
    o = node_origins(40, 16, 40)
    R, C = (u.ravel() for u in np.meshgrid(o, o, indexing="ij"))
    z = np.zeros(R.size, int)
    dy, dx, *_ = correlate.integer_peaks(
        correlate.correlation_surfaces(a, b, R, C, z, z, chip=40, search=8, max_nodata=0.5))
    got = correlate.refine_lk(a, b, R, C, dy, dx, chip=40, window=0.3, sigma=True)
    ref = correlate.refine_lk(a, b, R, C, dy, dx, chip=40, window=0.3, sigma=True,
                              engine="reference")
    for g, r in zip(got, ref):
        assert (np.isfinite(g) == np.isfinite(r)).all()
        assert np.nanmax(np.abs(g - r)) < 1e-4
    assert np.isfinite(got[0]).mean() > 0.5


def test_oversampled_chips_keep_offsets():
    # Oversampling (SAR practice) must not change what is measured: offsets scale back exactly.
    pair = make_uniform_shift_pair((192, 192), dx=1.37, dy=-0.62, seed=8, noise=0.01)
    params = TrackParams(step=32, search=4, oversample=2)
    f = track_pair(pair.ref, pair.sec, params)
    assert f.valid.mean() > 0.9
    assert abs(np.nanmedian(f.dx) - 1.37) < 0.02 and abs(np.nanmedian(f.dy) + 0.62) < 0.02
