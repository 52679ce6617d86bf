"""Classifiers: compiled forest = scikit-learn, local beats global on a drifting scene,
seamless blending, fall-back to the global model, LightGBM option, class balancing, the
rf+lgbm ensemble, model files."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from cryokit.core.errors import UserError
from cryokit.cli import main
from cryokit.landcover.classify import (GlobalClassifier, LocalClassifier, class_weights,
                                        model_proba)
from cryokit.landcover.forest import compile_forest
from cryokit.landcover.legend import CALC2020
from cryokit.landcover.model_io import TrainedModel, load_model, save_model
from cryokit.synthetic.landcover import make_landcover_scene


@pytest.fixture(scope="module")
def scene():
    return make_landcover_scene(320, seed=3, n_features=9, sample_fraction=0.015)


def _pixels(s):
    f = s.features.reshape(s.features.shape[0], -1).T
    ok = np.flatnonzero(np.isfinite(f).all(axis=1))
    r, c = np.divmod(ok, s.truth.shape[1])
    return f[ok], r, c, s.truth.ravel()[ok]


@pytest.mark.parametrize("depth", [8, None])
def test_compiled_forest_matches_sklearn(depth):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 0.5, 2000), [-1, 0, 1]) + 3
    rf = RandomForestClassifier(15, max_depth=depth, random_state=0).fit(X, y)
    ff = compile_forest(rf)
    assert (ff.depth > 8) == (depth is None)  # unlimited: trees of different depths
    Xt = rng.normal(size=(5000, 5)).astype(np.float32)
    # float32 sums of 15 leaf fractions: 1e-5 is ~100 ulps, far below any real difference
    assert np.abs(ff.predict_proba(Xt) - rf.predict_proba(Xt)).max() < 1e-5


def test_compiled_forest_huge_tree_uses_wide_nodes():
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40000, 3)).astype(np.float32)
    y = rng.integers(0, 3, 40000)  # noise: one leaf per sample, > 32767 nodes
    dt = DecisionTreeClassifier(random_state=0).fit(X, y)
    ff = compile_forest(dt)
    assert dt.tree_.node_count > 32767 and ff.node.dtype == np.int64
    Xt = np.concatenate([X[:3000], rng.normal(size=(3000, 3)).astype(np.float32)])
    assert np.abs(ff.predict_proba(Xt) - dt.predict_proba(Xt)).max() < 1e-6


def test_local_beats_global_on_drifting_scene(scene):
    X, r, c, truth = _pixels(scene)
    kw = dict(n_estimators=32, max_depth=12)
    g = GlobalClassifier(**kw).fit(scene.sample_table(), scene.labels)
    loc = LocalClassifier(64, max_radius=2, min_tile_samples=60, **kw).fit(
        scene.sample_table(), scene.labels, scene.rows, scene.cols)
    oa_g = float((g.predict(X) == truth).mean())
    oa_l = float((loc.predict(X, r, c) == truth).mean())
    assert loc.n_local == loc.tile_model_.size  # enough samples everywhere: no fall-back
    assert oa_l - oa_g >= 0.05, (oa_g, oa_l)
    assert oa_l > 0.8   # noise 0.35 and the drift inside a 3x3-tile neighbourhood cap it


def test_blending_has_no_seams(scene):
    loc = LocalClassifier(64, n_estimators=16, max_depth=10).fit(
        scene.sample_table(), scene.labels, scene.rows, scene.cols)
    ids, w = loc.blend_weights(np.arange(320), np.full(320, 100))
    assert np.allclose(w.sum(axis=1), 1.0)
    # the weight of each tile model changes by at most 1/tile_size from one pixel to the next
    dense = np.zeros((320, loc.n_local + 1))
    for k in range(4):
        np.add.at(dense, (np.arange(320), ids[:, k] + 1), w[:, k])
    assert np.abs(np.diff(dense, axis=0)).max() <= 1 / 64 + 1e-6
    # probabilities along a row crossing tile edges change as smoothly at the edges as inside
    row = np.full(320, 150)
    x = scene.features[:, 150, :].T
    ok = np.isfinite(x).all(axis=1)
    p = loc.predict_proba(x[ok], row[ok], np.arange(320)[ok])
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4)


def test_narrow_blend_ramps_and_blended_probabilities(scene):
    """``blend=0.5``: weights still sum to 1 and change by at most 1/(0.5 * tile) per pixel;
    the inner half of each tile uses its own model alone.  The grouped prediction equals the
    weighted sum of the models' probabilities computed pixel by pixel."""
    loc = LocalClassifier(64, n_estimators=8, max_depth=8, blend=0.5).fit(
        scene.sample_table(), scene.labels, scene.rows, scene.cols)
    cols = np.arange(320)
    ids, w = loc.blend_weights(np.full(320, 100), cols)
    assert np.allclose(w.sum(axis=1), 1.0)
    dense = np.zeros((320, loc.n_local + 1))
    for k in range(4):
        np.add.at(dense, (np.arange(320), ids[:, k] + 1), w[:, k])
    assert np.abs(np.diff(dense, axis=0)).max() <= 1 / 32 + 1e-6
    inner = (cols % 64 >= 16) & (cols % 64 < 48)
    own = loc.tile_model_[100 // 64, cols // 64] + 1
    assert np.allclose(dense[inner, own[inner]], 1.0)          # own model alone inside
    assert (dense[~inner].max(axis=1) < 1).sum() > 0           # blended near the edges
    x = scene.features[:, 100, :].T
    ok = np.isfinite(x).all(axis=1)
    p = loc.predict_proba(x[ok], np.full(ok.sum(), 100), cols[ok])
    ref = np.zeros_like(p)
    for i, j in enumerate(np.flatnonzero(ok)):
        for k in range(4):
            m = loc.global_.model_ if ids[j, k] < 0 else loc.models_[ids[j, k]]
            if w[j, k] > 0:
                ref[i] += w[j, k] * model_proba(m, x[j:j + 1], loc.classes_)[0]
    assert np.allclose(p, ref, atol=1e-5)
    with pytest.raises(ValueError):
        LocalClassifier(64, blend=0)


def test_fallback_to_global_where_samples_are_scarce():
    s = make_landcover_scene(256, seed=5, n_features=6, sample_fraction=0.02)
    keep = ~((s.rows < 128) & (s.cols < 128))     # no samples in the top-left quarter
    keep |= (np.arange(s.rows.size) % 50 == 0)   # but a handful
    loc = LocalClassifier(32, max_radius=1, min_tile_samples=80, n_estimators=8, max_depth=8)
    loc.fit(s.sample_table()[keep], s.labels[keep], s.rows[keep], s.cols[keep])
    assert (loc.tile_model_[:2, :2] == -1).all()       # deep in the empty quarter
    assert (loc.tile_model_[5:, 5:] >= 0).all()        # well sampled
    p = loc.predict_proba(s.sample_table()[:10], s.rows[:10] * 0 + 5, s.cols[:10] * 0 + 5)
    g = loc.global_.predict_proba(s.sample_table()[:10])
    assert np.allclose(p, g)


def test_lgbm_and_balance(scene):
    X, r, c, truth = _pixels(scene)
    m = GlobalClassifier("lgbm", n_estimators=30, balance=True, n_jobs=1).fit(
        scene.sample_table(), scene.labels)
    p = m.predict_proba(X[:1000])
    assert p.shape == (1000, len(scene.codes)) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert (m.predict(X) == truth).mean() > 0.6   # drifting scene: global models are ~0.8-0.9


def test_model_roundtrip_and_feature_check(tmp_path, scene):
    clf = GlobalClassifier(n_estimators=8, max_depth=6).fit(scene.sample_table(), scene.labels)
    path = tmp_path / "m.npz"
    save_model(TrainedModel(clf, scene.names, CALC2020, {"notes": []}), path)
    back = load_model(path, scene.names)
    X = scene.sample_table()[:100]
    assert np.array_equal(back.classifier.predict(X), clf.predict(X))
    assert back.legend == CALC2020 and back.feature_names == scene.names
    with pytest.raises(UserError, match="feature 1"):
        load_model(path, ["x"] + scene.names[1:])
    with pytest.raises(UserError, match="9 features"):
        load_model(path, scene.names[:3])


def test_class_weights():
    y = np.array([3] * 900 + [7] * 100)
    for name, ratio in (("balanced", 9.0), ("sqrt", 3.0), (True, 9.0)):
        w = class_weights(y, name)
        assert w[7] / w[3] == pytest.approx(ratio)            # (900/100)^1 or ^0.5
        assert (w[3] * 900 + w[7] * 100) / 1000 == pytest.approx(1.0)  # mean weight 1
    assert class_weights(y, "none") is None and class_weights(y, False) is None
    with pytest.raises(ValueError, match="balance"):
        class_weights(y, "half")


def _rare_class_data(seed=0):
    """A rare class (5 %) overlapping a common one: weighting moves the boundary toward it."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(4000) < 0.05, 2, 1)
    X = (y[:, None] == 2) * 1.0 + rng.normal(0, 1.0, (4000, 2))
    return X.astype(np.float32), y


def test_balance_options_trade_oa_for_rare_recall():
    X, y = _rare_class_data(0)
    Xt, yt = _rare_class_data(1)
    recall, oa = {}, {}
    for b in ("none", "sqrt", "balanced", "subsample"):
        clf = GlobalClassifier(balance=b, n_estimators=32, max_depth=8, min_samples_leaf=3,
                               n_jobs=1).fit(X, y)
        assert clf.model_ is not None and clf.model_.depth == 8   # compiled fast path kept
        p = clf.predict(Xt)
        recall[b], oa[b] = float((p[yt == 2] == 2).mean()), float((p == yt).mean())
    # overlapping classes at 1 sigma: unweighted trees almost never call the rare class,
    # inverse-count weights call it often; the square-root weights sit in between
    assert recall["none"] < recall["sqrt"] < recall["balanced"], recall
    assert oa["none"] > oa["sqrt"] > oa["balanced"], oa
    assert recall["subsample"] > recall["none"]


def test_rf_plus_lgbm_averages_probabilities(scene, tmp_path):
    X = scene.sample_table()
    kw = dict(n_estimators=20, max_depth=8, n_jobs=1, balance="sqrt")
    both = GlobalClassifier("rf+lgbm", **kw).fit(X, scene.labels)
    rf = GlobalClassifier("rf", **kw).fit(X, scene.labels)
    gb = GlobalClassifier("lgbm", **kw).fit(X, scene.labels)
    p = both.predict_proba(X[:500])
    assert np.allclose(p, (rf.predict_proba(X[:500]) + gb.predict_proba(X[:500])) / 2, atol=1e-5)
    assert both.params["model"] == "rf+lgbm" and both.params["balance"] == "sqrt"
    path = tmp_path / "e.npz"
    save_model(TrainedModel(both, scene.names, CALC2020, {"notes": []}), path)
    assert np.array_equal(load_model(path).classifier.predict(X[:500]), both.predict(X[:500]))


def test_cli_rejects_unknown_balance(tmp_path):
    out = tmp_path / "m.npz"
    assert main(["landcover", "train", str(tmp_path / "f.tif"), "--labels",
                 str(tmp_path / "l.gpkg"), "-o", str(out), "--balance", "half"]) == 2
    assert not out.exists()


# --------------------------------------------------------------------- spatial regularisation

from cryokit.landcover.classify import predict_image  # noqa: E402
from cryokit.landcover.smooth import halo, sieve, smooth_proba  # noqa: E402


def _noisy_parcels(seed=0, shape=(60, 70), k=3):
    """Probabilities of k classes over square parcels, with independent per-pixel noise."""
    rng = np.random.default_rng(seed)
    truth = (np.arange(shape[0])[:, None] // 15 + np.arange(shape[1])[None] // 15) % k
    p = rng.dirichlet(np.ones(k), size=shape).transpose(2, 0, 1).astype(np.float32)
    p = 0.6 * p + 0.4 * (np.arange(k)[:, None, None] == truth)
    return p / p.sum(axis=0), truth


def test_smoothing_removes_salt_and_pepper():
    p, truth = _noisy_parcels()
    raw = (p.argmax(axis=0) == truth).mean()
    # per-pixel noise averages out over ~2 pi sigma^2 pixels; parcel edges (15 px) cost little
    assert raw < 0.9 and (smooth_proba(p, 1.5).argmax(axis=0) == truth).mean() > 0.97
    assert (sieve(p, 6) == truth).mean() > raw


def test_smoothing_ignores_nodata_and_keeps_probabilities():
    p, _ = _noisy_parcels(1)
    valid = np.ones(p.shape[1:], bool)
    valid[10:20, 10:30] = False
    q = p.copy()
    q[:, ~valid] = 99.0                       # garbage at nodata must not leak
    s = smooth_proba(q, 2.0, valid)
    assert np.allclose(s[:, valid].sum(axis=0), 1, atol=1e-5) and (s[:, ~valid] == 0).all()
    assert np.array_equal(sieve(s, 4, valid)[~valid], np.full((~valid).sum(), -1))


@pytest.mark.parametrize("sigma,mmu", [(1.0, 0), (0.6, 5), (0, 7), (2.3, 3)])
def test_regularisation_is_block_safe(sigma, mmu):
    """A block grown by the halo and cropped equals the same pixels of the whole image
    (exactly: the filters only read pixels within the halo)."""
    p, _ = _noisy_parcels(2)
    valid = np.random.default_rng(3).random(p.shape[1:]) > 0.05
    full = sieve(smooth_proba(p, sigma, valid), mmu, valid)
    m = max(halo(sigma), mmu)
    for r0, r1, c0, c1 in [(0, 17, 0, 23), (17, 41, 23, 50), (41, 60, 50, 70)]:
        g0, g1, h0, h1 = max(0, r0 - m), min(60, r1 + m), max(0, c0 - m), min(70, c1 + m)
        part = sieve(smooth_proba(p[:, g0:g1, h0:h1], sigma, valid[g0:g1, h0:h1]), mmu,
                     valid[g0:g1, h0:h1])
        assert np.array_equal(part[r0 - g0:r1 - g0, c0 - h0:c1 - h0], full[r0:r1, c0:c1])


def test_predict_image_matches_predict(scene):
    clf = GlobalClassifier(n_estimators=8, max_depth=8).fit(scene.sample_table(), scene.labels)
    img = scene.features[:, :80, :90]
    codes, conf = predict_image(clf, img)
    # a pixel with any valid feature is mapped (missing ones routed as the trees learnt)
    X, ok = img.reshape(img.shape[0], -1).T, np.isfinite(img).any(axis=0).ravel()
    assert (~np.isfinite(img).all(axis=0)).any()          # the scene has missing features
    assert np.array_equal(codes.ravel()[ok], clf.predict(X[ok]))
    assert (codes.ravel()[ok] > 0).all()
    assert (codes.ravel()[~ok] == 0).all() and np.isnan(conf.ravel()[~ok]).all()
    sm, sconf = predict_image(clf, img, smooth=1.0, mmu=4)
    truth = scene.truth[:80, :90].ravel()[ok]
    # the synthetic classes are parcels: smoothing can only help against the truth here
    assert (sm.ravel()[ok] == truth).mean() >= (codes.ravel()[ok] == truth).mean()
    assert np.isfinite(sconf.ravel()[ok]).all() and np.nanmax(sconf) <= 1 + 1e-6
