"""Real data: cryokit classifiers against a plain global scikit-learn RF trained in the same run.

Numbers (mean of 3 seeds, benchmarks/landcover_real.py): Slovenia spatial split RF OA 0.830 /
macro-F1 0.423, cryokit balanced rf OA 0.839 / 0.421, the setting chosen by blocked CV on the
training columns in session 4 (rf, sqrt class weights, min 3 samples per leaf, 30 % of the
features per split) OA 0.813 / 0.449, the same model + spatial regularisation (Gaussian
sigma 0.5 px, minimum mapping unit 3 px: session 5's CV choice among rf models) OA 0.820 /
0.436, session 5's CV choice over all models (LightGBM balanced + sigma 0.75 px, mmu 3 px)
OA 0.817 / 0.456; NC Landsat-7 vs strata.tif RF OA 0.542, kappa 0.361, cryokit rf OA 0.547,
kappa 0.364.  Session 6 added spatial-context stacks, soft rf + lgbm ensembles and a class-prior
correction to the CV candidates; the CV chose session 5's setting again (test: OA 0.817,
macro-F1 0.456, not above the RF on both); the RF given the 3 x 3 context stack reached OA
0.840 / macro-F1 0.421 (information).  Session 7 added the EM adaptation of the class
probabilities to the mapped region's class shares; the CV chose the same setting.  Fixed seeds make every run deterministic; bounds leave
about half the measured effect as margin (one seed's noise is about 1 point OA, 2 points macro-F1 on these small test
sets).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import cohen_kappa_score, f1_score

from cryokit.landcover.classify import GlobalClassifier
from conftest import shared_path

# The data loaders are the benchmark's (benchmarks/ is a folder of scripts, not a package).
_spec = importlib.util.spec_from_file_location(
    "landcover_real_benchmark",
    Path(__file__).resolve().parents[1] / "benchmarks" / "landcover_real.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _slovenia():
    f, y, _, _, train, test = bench.slovenia(shared_path("landcover", "eolearn_slovenia_testpatch"))
    return f, y, train, test


@functools.lru_cache(maxsize=None)
def _slovenia_data():
    return bench.slovenia(shared_path("landcover", "eolearn_slovenia_testpatch"))


@functools.lru_cache(maxsize=None)
def _fitted(name, seed):
    """A classifier of ``bench.SETTINGS`` fitted on the Slovenia training columns (cached:
    several tests compare against the same RF fits)."""
    f, y, r, c, tr, _ = _slovenia_data()
    make = bench.SETTINGS[name][0] if name in bench.SETTINGS else (
        lambda s: GlobalClassifier(seed=s, **bench.CANDIDATES[name]))
    return make(seed).fit(f[tr], y[tr], r[tr], c[tr])


def _split(name, seed, sigma=0.0, mmu=0):
    s = bench.split_scores(_fitted(name, seed), _slovenia_data(), sigma, mmu)
    return s["OA"], s["macro_F1"]


RF = "sklearn RF 100 (baseline)"


def _nc():
    """Features, labels (training labels on train pixels, strata elsewhere), train, test."""
    f, y, _, _, train, test = bench.nc_landsat(shared_path("landcover", "grass_nc_landsat7"))
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


def test_slovenia_cv_selected_setting_vs_rf():
    """The issue's target (above the RF on OA *and* macro-F1) is NOT met by the setting that
    blocked CV on the training columns chose; this pins what it does: macro-F1 up (rare
    shrubland and road pixels, measured +0.026, per seed +0.019..+0.029) for OA down
    (measured -0.017, per seed -0.011..-0.022).  Fixed seeds make the run deterministic; the
    bounds leave half the measured effect as margin."""
    oa_rf, f1_rf = np.mean([_split(RF, s) for s in (0, 1, 2)], axis=0)
    oa_ck, f1_ck = np.mean([_split(bench.CHOSEN, s) for s in (0, 1, 2)], axis=0)
    assert f1_ck - f1_rf > 0.013, (f1_rf, f1_ck)
    assert -0.035 < oa_ck - oa_rf < 0, (oa_rf, oa_ck)


def test_selection_rule_maximises_the_smallest_gain():
    rf = (0.90, 0.70, 0.50)
    res = {"Slovenia": {"sklearn RF": rf, "a": (0.91, 0.7, 0.60), "b": (0.905, 0.7, 0.52),
                        "c": (0.905, 0.7, 0.55)},
           "NC": {"sklearn RF": rf, "a": (0.89, 0.70, 0.60), "b": (0.905, 0.71, 0.51),
                  "c": (0.905, 0.71, 0.51)}}
    best, gains = bench.select(res)
    # a gains most on average but loses NC OA; b and c tie on the smallest gain (+0.005):
    # c wins on the mean gain
    assert best == "c" and gains["a"][0] < 0 and gains["b"][0] == gains["c"][0] == 0.005




def test_regularisation_on_slovenia_raises_oa_lowers_macro_f1():
    """Fast real-data check of --smooth/--mmu (seed 0): sigma 0.5 px + 3 px minimum mapping
    unit removes isolated errors in forest and grassland, OA +0.6 point for the RF and +0.5
    for the cryokit default (measured), but erodes the 1-pixel roads and small shrub patches
    that dominate macro-F1 on the test columns (measured -0.008 for both)."""
    for name in (RF, "cryokit rf default"):
        (oa0, f0), (oa1, f1) = _split(name, 0), _split(name, 0, 0.5, 3)
        assert oa1 - oa0 > 0.003 and f1 < f0, (name, oa0, oa1, f0, f1)


@pytest.mark.slow
def test_slovenia_s5_cv_selected_setting_vs_rf():
    """Session 5's CV choice (blocked CV on the training columns, every candidate model with
    every regularisation, rule: largest smallest gain in Slovenia OA and macro-F1), LightGBM
    balanced + sigma 0.75 px + mmu 3 px, is NOT above the RF on both on the test columns, so
    the issue's target stays unmet: macro-F1 measured +0.033, OA -0.013 (means of 3 RF
    seeds; LightGBM without bagging gives the same model for every seed, so one fit does,
    and it takes ~20 s).  Session 6's larger candidate set (context stacks, soft ensembles,
    class-prior correction) chose this setting again (``bench.CHOSEN_S6``)."""
    rf = np.mean([_split(RF, s) for s in (0, 1, 2)], axis=0)
    name, sigma, mmu = bench.CHOSEN_S5
    ck = _split(name, 0, sigma, mmu)
    assert ck[1] - rf[1] > 0.016, (rf, ck)
    assert -0.025 < ck[0] - rf[0] < 0, (rf, ck)


def test_slovenia_s5_rf_choice_vs_rf():
    """The same rule among the rf candidates chose session 4's model + sigma 0.5 px + mmu
    3 px: macro-F1 measured +0.013 (per seed +0.008..+0.018), OA -0.010 (per seed
    -0.019..-0.004): regularisation halves session 4's OA loss and keeps half its macro-F1
    gain, still not above the RF on both."""
    rf = np.mean([_split(RF, s) for s in (0, 1, 2)], axis=0)
    name, sigma, mmu = bench.CHOSEN_S5_RF
    ck = np.mean([_split(name, s, sigma, mmu) for s in (0, 1, 2)], axis=0)
    assert ck[1] - rf[1] > 0.006, (rf, ck)
    assert -0.02 < ck[0] - rf[0] < 0, (rf, ck)


def test_nc_regularisation_lifts_every_metric():
    """NC Landsat-7 (30 m, wall-to-wall strata reference): the regularisation chosen for
    Slovenia's rf models (sigma 0.5 px, mmu 3 px; not tuned on NC) lifts the cryokit default
    from OA 0.548 / kappa 0.366 / macro-F1 0.328 to 0.589 / 0.413 / 0.367 (seed 0, measured);
    the plain RF baseline is at 0.541 / 0.360 / 0.321 (with the same regularisation it would
    reach 0.585 / 0.410 / 0.364: the gain is the map step, not the model)."""
    data = bench.nc_landsat(shared_path("landcover", "grass_nc_landsat7"))
    f, y, r, c, tr, _ = data
    ck = GlobalClassifier(seed=0).fit(f[tr], y[tr])
    rf = bench.split_scores(bench.SklearnRF(0).fit(f[tr], y[tr]), data)
    sm = bench.split_scores(ck, data, 0.5, 3)
    for k in ("OA", "kappa", "macro_F1"):
        assert sm[k] - rf[k] > 0.02, (k, rf[k], sm[k])   # measured +0.039..+0.050


def test_session6_choice_and_information_rows():
    """Session 6 (context stacks, soft ensembles, class-prior correction; 576 settings) CV
    chose session 5's setting again; RFs on the context stacks are information only and are
    never selected."""
    for setting in [("plain", "lgbm balanced", "none", 0.75, 3),
                    ("ctx3,5", "rf + lgbm balanced", "train", 0.0, 0),
                    ("plain", "rf sqrt", "em", 0.5, 9)]:   # session 7's EM prior
        assert bench.parse_s6(bench.s6_name(*setting)) == setting
    assert bench.s6_name("plain", "rf", "em") == "plain | rf | em"
    kw = bench.s6_kwargs("rf sqrt + lgbm balanced", "train")
    assert kw == dict(balance="sqrt", model="rf+lgbm", lgbm_balance="balanced",
                      lgbm_rounds=100, prior="train")
    res = {"Slovenia": {"sklearn RF": (0.9, 0.7, 0.5), "sklearn RF ctx3": (0.99, 0.9, 0.9),
                        "plain | rf": (0.91, 0.7, 0.51)}}
    assert bench.select(res, bench.SLOVENIA_RULE)[0] == "plain | rf"


@pytest.mark.slow
def test_slovenia_context_stack_helps_rf_oa_not_macro_f1():
    """Information asked by the issue: the plain RF given the 3 x 3 context stack (local mean
    and standard deviation of all 66 bands) on the test columns: OA measured +0.011 (per seed
    +0.003..+0.019), macro-F1 -0.002 (per seed -0.006..+0.004): context blurs the 1-px roads
    (road F1 0.28 -> 0.24) as much as it helps grassland and forest.  Bounds: half the OA
    effect; macro-F1 within 1.5 points (one seed's noise is ~2 points)."""
    data = bench.slovenia(shared_path("landcover", "eolearn_slovenia_testpatch"), context=(3,))
    f, y, r, c, tr, _ = data
    rf = np.mean([_split(RF, s) for s in (0, 1, 2)], axis=0)
    ctx = np.mean([[bench.split_scores(bench.SklearnRF(s).fit(f[tr], y[tr]), data)[k]
                    for k in ("OA", "macro_F1")] for s in (0, 1, 2)], axis=0)
    assert ctx[0] - rf[0] > 0.005, (rf, ctx)
    assert abs(ctx[1] - rf[1]) < 0.015, (rf, ctx)


def test_slovenia_rule_uses_only_slovenia():
    rf = (0.90, 0.70, 0.50)
    res = {"Slovenia": {"sklearn RF": rf, "a": (0.91, 0.7, 0.52),
                        "a | sigma 0.5 mmu 3": (0.92, 0.7, 0.53)},
           "NC": {"sklearn RF": rf, "a": (0.95, 0.8, 0.6), "a | sigma 0.5 mmu 3": (0.8, 0.6, 0.4)}}
    assert bench.select(res, bench.SLOVENIA_RULE)[0] == "a | sigma 0.5 mmu 3"
    assert bench.select(res)[0] == "a"
    assert bench.post_name("a", 0.5, 3) == "a | sigma 0.5 mmu 3" and bench.post_name("a") == "a"
