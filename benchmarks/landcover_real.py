"""Land cover on real data: cryokit classifiers against a plain scikit-learn random forest
(100 trees, fully grown) trained and scored in the same run.

    python benchmarks/landcover_real.py           # both sets, seeds 0-2 (a few minutes)
    python benchmarks/landcover_real.py --ndvi    # Slovenia + 8 NDVI temporal statistics

Slovenia (eo-learn test patch: Sentinel-2 5 dates x 13 bands + DEM, LULC reference): train on
the labelled pixels of columns < 50, test on columns >= 50. NC Landsat-7 (GRASS sample data):
train on the labelled pixels, assess against ``strata.tif`` on every other pixel. A map is
regularised (``--smooth``/``--mmu``) over the non-training pixels only. Prints OA, kappa and
macro-F1 (mean of the seeds), each row's difference to the RF of the same run, and per-class F1.

The settings are the product's defaults and options as a user would pass them:
``lgbm balanced + sigma 0.75 mmu 3`` is the setting that spatially blocked cross-validation on
the Slovenia training columns alone chose among 12 models x 16 regularisations (no test pixel
seen); ``rf sqrt leaf3 mf0.3`` is the one it chose without regularisation.
"""

from __future__ import annotations

import sys

import numpy as np

from cryokit.landcover.classify import GlobalClassifier, LocalClassifier
from landcover_data import DATA, SklearnRF, nc_landsat, slovenia, split_scores


def _ck(**kw):
    return lambda seed: GlobalClassifier(seed=seed, **kw)


#: label -> (make(seed), smoothing sigma px, minimum mapping unit px)
SETTINGS = {
    "sklearn RF 100 (baseline)": (SklearnRF, 0, 0),
    "sklearn RF + sigma 0.5 mmu 3": (SklearnRF, 0.5, 3),
    "cryokit rf default": (_ck(), 0, 0),
    "cryokit rf default + sigma 0.5 mmu 3": (_ck(), 0.5, 3),
    "cryokit rf balanced": (_ck(balance="balanced"), 0, 0),
    "cryokit rf sqrt leaf3 mf0.3": (_ck(balance="sqrt", min_samples_leaf=3, max_features=0.3), 0, 0),
    "cryokit lgbm balanced + sigma 0.75 mmu 3": (
        _ck(model="lgbm", n_estimators=100, balance="balanced"), 0.75, 3),
    "cryokit rf local 128 px balanced": (
        lambda seed: LocalClassifier(128, balance="balanced", seed=seed), 0, 0),
}


def run(name, data, seeds=(0, 1, 2)):
    f, y, r, c, tr, te = data
    rows = []
    for seed in seeds:
        for label, (make, sigma, mmu) in SETTINGS.items():
            clf = make(seed).fit(f[tr], y[tr], r[tr], c[tr])
            rows.append((label, split_scores(clf, data, sigma, mmu)))
    print(f"\n{name}: {tr.sum()} training, {te.sum()} test pixels; mean over seeds {list(seeds)}")
    print(f"{'setting':44s} {'OA':>6s} {'kappa':>6s} {'mF1':>6s}  {'dOA':>6s} {'dmF1':>6s}"
          "  per-class F1")
    base = None
    for label in SETTINGS:
        sc = [s for lab, s in rows if lab == label]
        oa, ka, mf = (float(np.mean([s[k] for s in sc])) for k in ("OA", "kappa", "macro_F1"))
        per = {k: np.mean([s["F1"][k] for s in sc]) for k in sc[0]["F1"]}
        base = base or (oa, mf)
        print(f"{label:44s} {oa:6.3f} {ka:6.3f} {mf:6.3f}  {oa - base[0]:+6.3f} "
              f"{mf - base[1]:+6.3f}  " + " ".join(f"{k}:{v:.2f}" for k, v in per.items()))


if __name__ == "__main__":
    if not DATA.exists():
        sys.exit(f"data not found: {DATA}")
    ndvi = "--ndvi" in sys.argv
    run("Slovenia S2 patch (spatial split: train cols < 50)"
        + (" + NDVI temporal features" if ndvi else ""), slovenia(ndvi=ndvi))
    run("NC Landsat-7 (train: labelled pixels; test: strata.tif elsewhere)", nc_landsat())
