"""Real data: cryokit classifiers against a plain global scikit-learn RF trained in the same run.

Numbers (mean of 3 seeds, benchmarks/landcover_real.py): Slovenia spatial split RF OA 0.830 /
macro-F1 0.423, cryokit balanced rf OA 0.839 / 0.421, the setting chosen by blocked CV on the
training columns (rf, sqrt class weights, min 3 samples per leaf, 30 % of the features per
split) OA 0.813 / 0.449; NC Landsat-7 vs strata.tif RF OA 0.542, kappa 0.361, cryokit rf OA
0.547, kappa 0.364.  The tolerances below allow one seed's noise (about 1 point OA, 2 points
macro-F1 on these small test sets).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
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


def _slovenia_mean(make, seeds=(0, 1, 2)):
    """(OA, macro-F1) of the RF and of ``make(seed)``, means over ``seeds``."""
    f, y, tr, te = _slovenia()
    out = []
    for seed in seeds:
        rf = RandomForestClassifier(100, random_state=seed, n_jobs=2).fit(f[tr], y[tr])
        for p in (rf.predict(f[te]), make(seed).fit(f[tr], y[tr]).predict(f[te])):
            out.append(((p == y[te]).mean(), f1_score(y[te], p, average="macro")))
    return np.mean(out[0::2], axis=0), np.mean(out[1::2], axis=0)


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
    kw = bench.CANDIDATES[bench.CHOSEN]
    (oa_rf, f1_rf), (oa_ck, f1_ck) = _slovenia_mean(lambda s: GlobalClassifier(seed=s, **kw))
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
