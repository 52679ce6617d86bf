"""Real data: cryokit classifiers against a plain global scikit-learn RF trained in the same run.

Measured (mean of 3 seeds, ``python benchmarks/landcover_real.py``): Slovenia spatial split RF
OA 0.830 / macro-F1 0.423, cryokit balanced rf 0.839 / 0.421, rf sqrt leaf3 mf0.3 0.813 / 0.449,
the same + sigma 0.5 px, mmu 3 px 0.820 / 0.436, lgbm balanced + sigma 0.75 px, mmu 3 px
0.817 / 0.456; NC Landsat-7 vs strata.tif RF OA 0.542, kappa 0.361, cryokit rf OA 0.547, kappa
0.364. Fixed seeds make every run deterministic; bounds leave about half the measured effect as
margin (one seed's noise is about 1 point OA, 2 points macro-F1 on these small test sets).
Where cryokit trades OA for macro-F1, the tests bound the OA it gives up; none asserts that it
is below the RF.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import cohen_kappa_score, f1_score

from cryokit.landcover.classify import GlobalClassifier
from conftest import shared_path

# The readers of the real sets live beside the benchmarks that use them too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import landcover_data as data  # noqa: E402

#: GlobalClassifier settings the tests compare with the RF
SETTINGS = {
    "cryokit rf default": {},
    "rf sqrt leaf3 mf0.3": dict(balance="sqrt", min_samples_leaf=3, max_features=0.3),
    "lgbm balanced": dict(model="lgbm", n_estimators=100, balance="balanced"),
}


def _slovenia():
    f, y, _, _, train, test = data.slovenia(shared_path("landcover", "eolearn_slovenia_testpatch"))
    return f, y, train, test


@functools.lru_cache(maxsize=None)
def _slovenia_data():
    return data.slovenia(shared_path("landcover", "eolearn_slovenia_testpatch"))


@functools.lru_cache(maxsize=None)
def _fitted(name, seed):
    """A classifier fitted on the Slovenia training columns (cached: several tests compare
    against the same RF fits)."""
    f, y, r, c, tr, _ = _slovenia_data()
    make = data.SklearnRF if name == RF else (lambda s: GlobalClassifier(seed=s, **SETTINGS[name]))
    return make(seed).fit(f[tr], y[tr], r[tr], c[tr])


def _split(name, seed, sigma=0.0, mmu=0):
    s = data.split_scores(_fitted(name, seed), _slovenia_data(), sigma, mmu)
    return s["OA"], s["macro_F1"]


RF = "sklearn RF 100 (baseline)"


def _nc():
    """Features, labels (training labels on train pixels, strata elsewhere), train, test."""
    f, y, _, _, train, test = data.nc_landsat(shared_path("landcover", "grass_nc_landsat7"))
    return f, y, train, test


def test_slovenia_spatial_split_vs_rf():
    f, y, tr, te = _slovenia()
    rf = RandomForestClassifier(100, random_state=0, n_jobs=2).fit(f[tr], y[tr]).predict(f[te])
    ck = GlobalClassifier(balance=True).fit(f[tr], y[tr]).predict(f[te])
    oa_rf, oa_ck = (float((p == y[te]).mean()) for p in (rf, ck))
    f1_rf, f1_ck = (f1_score(y[te], p, average="macro") for p in (rf, ck))
    assert 0.80 < oa_rf < 0.86           # README smoke test: 0.823
    assert oa_ck >= oa_rf - 0.005 and f1_ck >= f1_rf - 0.02, (oa_rf, oa_ck, f1_rf, f1_ck)


def test_nc_landsat_vs_strata():
    f, y, tr, te = _nc()
    rf = RandomForestClassifier(100, random_state=0, n_jobs=2).fit(f[tr], y[tr]).predict(f[te])
    ck = GlobalClassifier().fit(f[tr], y[tr]).predict(f[te])
    oa_rf, oa_ck = (float((p == y[te]).mean()) for p in (rf, ck))
    k_rf, k_ck = (cohen_kappa_score(y[te], p) for p in (rf, ck))
    assert 0.50 < oa_rf < 0.58           # README smoke test: 0.541
    assert oa_ck >= oa_rf - 0.01 and k_ck >= k_rf - 0.01, (oa_rf, oa_ck, k_rf, k_ck)
    # forest (5) is the dominant class and the easiest: F1 ~0.72
    assert f1_score(y[te], ck, labels=[5], average=None)[0] > 0.65


def test_slovenia_sqrt_weights_raise_macro_f1():
    """rf sqrt leaf3 mf0.3 (the setting blocked CV on the training columns chose without
    regularisation): macro-F1 up on the rare shrubland and road pixels (measured +0.026, per
    seed +0.019..+0.029) for at most a bounded OA cost (measured -0.017)."""
    oa_rf, f1_rf = np.mean([_split(RF, s) for s in (0, 1, 2)], axis=0)
    oa_ck, f1_ck = np.mean([_split("rf sqrt leaf3 mf0.3", s) for s in (0, 1, 2)], axis=0)
    assert f1_ck - f1_rf > 0.013, (f1_rf, f1_ck)
    assert oa_ck - oa_rf > -0.035, (oa_rf, oa_ck)


def test_regularisation_on_slovenia_raises_oa_lowers_macro_f1():
    """Fast real-data check of --smooth/--mmu (seed 0): sigma 0.5 px + 3 px minimum mapping
    unit removes isolated errors in forest and grassland, OA +0.6 point for the RF and +0.5
    for the cryokit default (measured), but erodes the 1-pixel roads and small shrub patches
    that dominate macro-F1 on the test columns (measured -0.008 for both)."""
    for name in (RF, "cryokit rf default"):
        (oa0, f0), (oa1, f1) = _split(name, 0), _split(name, 0, 0.5, 3)
        assert oa1 - oa0 > 0.003 and f1 < f0, (name, oa0, oa1, f0, f1)


@pytest.mark.slow
def test_slovenia_lgbm_balanced_regularised_vs_rf():
    """LightGBM balanced + sigma 0.75 px + mmu 3 px (the setting blocked CV on the training
    columns chose among every model and regularisation): macro-F1 measured +0.033 over the
    RF (means of 3 RF seeds; LightGBM without bagging gives one model for every seed, so one
    fit does, ~20 s) at a bounded OA cost (measured -0.013)."""
    rf = np.mean([_split(RF, s) for s in (0, 1, 2)], axis=0)
    ck = _split("lgbm balanced", 0, 0.75, 3)
    assert ck[1] - rf[1] > 0.016, (rf, ck)
    assert ck[0] - rf[0] > -0.025, (rf, ck)


def test_slovenia_sqrt_weights_regularised_vs_rf():
    """rf sqrt leaf3 mf0.3 + sigma 0.5 px + mmu 3 px: macro-F1 measured +0.013 (per seed
    +0.008..+0.018) at an OA cost of -0.010 (per seed -0.019..-0.004): regularisation halves
    the unregularised setting's OA cost and keeps half its macro-F1 gain."""
    rf = np.mean([_split(RF, s) for s in (0, 1, 2)], axis=0)
    ck = np.mean([_split("rf sqrt leaf3 mf0.3", s, 0.5, 3) for s in (0, 1, 2)], axis=0)
    assert ck[1] - rf[1] > 0.006, (rf, ck)
    assert ck[0] - rf[0] > -0.02, (rf, ck)


def test_nc_regularisation_lifts_every_metric():
    """NC Landsat-7 (30 m, wall-to-wall strata reference): the regularisation chosen for
    Slovenia's rf models (sigma 0.5 px, mmu 3 px; not tuned on NC) lifts the cryokit default
    from OA 0.548 / kappa 0.366 / macro-F1 0.328 to 0.589 / 0.413 / 0.367 (seed 0, measured);
    the plain RF baseline is at 0.541 / 0.360 / 0.321 (with the same regularisation it would
    reach 0.585 / 0.410 / 0.364: the gain is the map step, not the model)."""
    nc = data.nc_landsat(shared_path("landcover", "grass_nc_landsat7"))
    f, y, r, c, tr, _ = nc
    ck = GlobalClassifier(seed=0).fit(f[tr], y[tr])
    rf = data.split_scores(data.SklearnRF(0).fit(f[tr], y[tr]), nc)
    sm = data.split_scores(ck, nc, 0.5, 3)
    for k in ("OA", "kappa", "macro_F1"):
        assert sm[k] - rf[k] > 0.02, (k, rf[k], sm[k])   # measured +0.039..+0.050
