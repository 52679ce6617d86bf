"""Land cover on real data: cryokit classifiers vs a plain global scikit-learn RF (100 trees).

Slovenia (eo-learn test patch, Sentinel-2 5 dates x 13 bands + DEM, LULC reference):
spatially split, train on columns < 50, test on columns >= 50.  NC Landsat-7 (GRASS
sample data): train on the labelled pixels, assess against ``strata.tif`` on every other
pixel.  Prints OA, kappa, macro-F1 and per-class F1 for each setting.

Run: ``python benchmarks/landcover_real.py`` (test split; a few minutes).
``python benchmarks/landcover_real.py --select`` chooses the setting without looking at any
test pixel: spatially blocked 5-fold cross-validation (:func:`blocked_folds`, 10 px blocks on
Slovenia, 30 px on NC) on the *training* pixels of both datasets, out-of-fold predictions
pooled, 3 seeds; each candidate's gain over the scikit-learn RF in the same folds on OA and
macro-F1 (Slovenia) and OA, kappa and macro-F1 (NC); the chosen setting maximises the
smallest of these five gains (rounded to 0.001: smaller differences are noise), ties broken
by the mean gain (2-10 minutes on 2 cores).  ``--select --strips`` uses full-height strips
of 10 (30) columns instead of square blocks, which mimics the column split of the test.

Result (3 seeds; details in the report of issue 6): square-block CV chose :data:`CHOSEN`
(``rf``, ``balance="sqrt"``, ``min_samples_leaf=3``, ``max_features=0.3``); on the Slovenia
test columns it raises macro-F1 (0.449 vs 0.423) but loses OA (0.813 vs 0.830), and it loses
on NC.  Strip CV chose ``rf subsample``: Slovenia OA 0.861 but macro-F1 0.418.  The CV
estimates on the training columns (OA ~0.93) do not carry over to the test columns (OA ~0.83:
more grassland and road pixels, a class never seen in training), so the target "above the RF
on both OA and macro-F1" is not met by a setting chosen without looking at the test pixels.

``tests/test_landcover_real.py`` imports the loaders :func:`slovenia` and :func:`nc_landsat`,
:data:`CANDIDATES`, :data:`CHOSEN` and :func:`select` from here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import cohen_kappa_score, f1_score

from cryokit.landcover.accuracy import blocked_folds
from cryokit.landcover.classify import GlobalClassifier, LocalClassifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "landcover"


def _read(path, dtype, band=None, fill=None):
    """Band ``band`` (or every band) of ``path`` as ``dtype``; masked pixels become ``fill``
    when given."""
    with rasterio.open(path) as ds:
        data = ds.read(band, masked=fill is not None).astype(dtype)
    return data if fill is None else data.filled(fill)


def slovenia(d=DATA / "eolearn_slovenia_testpatch"):
    """Features (n, 66: 5 dates x 13 bands + DEM), labels, rows, cols, and the spatial split:
    train = labelled pixels of columns < 50, test = labelled pixels of columns >= 50."""
    x = _read(d / "S2L1C_5dates_13bands_derived.tif", np.float32)
    dem = _read(d / "DEM_derived.tif", np.float32, 1)
    y = _read(d / "LULC_reference_derived.tif", np.int64, 1)
    f = np.concatenate([x, dem[None]]).reshape(x.shape[0] + 1, -1).T
    r, c = np.divmod(np.arange(y.size), y.shape[1])
    yy = y.ravel()
    return f, yy, r, c, (yy > 0) & (c < 50), (yy > 0) & (c >= 50)


def nc_landsat(d=DATA / "grass_nc_landsat7"):
    """Features (n, 7: six Landsat-7 bands + NDVI, NaN = nodata), labels, rows, cols, train
    (the labelled pixels) and test (``strata.tif`` elsewhere); labels are the training labels
    on train pixels and the strata on the others."""
    bands = [_read(d / f"lsat7_2000_{b}.tif", np.float32, 1, np.nan)
             for b in (10, 20, 30, 40, 50, 70)]
    ndvi = (bands[3] - bands[2]) / (bands[3] + bands[2] + 1e-6)
    f = np.stack(bands + [ndvi]).reshape(7, -1).T
    lab = _read(d / "landsat96_labelled_pixels.tif", np.int64, 1, 0)
    ref = _read(d / "strata.tif", np.int64, 1, 0).ravel()
    r, c = np.divmod(np.arange(lab.size), lab.shape[1])
    lab = lab.ravel()
    ok = np.isfinite(f).all(axis=1)
    train = ok & (lab > 0)
    test = ok & (ref > 0) & (lab == 0)
    y = np.where(train, lab, ref)
    return f, y, r, c, train, test


def scores(y, p):
    return {"OA": float((y == p).mean()), "kappa": float(cohen_kappa_score(y, p)),
            "macro_F1": float(f1_score(y, p, average="macro")),
            "F1": {int(k): float(v) for k, v in zip(np.unique(y), f1_score(
                y, p, average=None, labels=np.unique(y)))}}


#: Candidates of ``--select`` (GlobalClassifier keyword arguments).
CANDIDATES = {
    "rf": dict(),
    "rf balanced": dict(balance="balanced"),
    "rf sqrt": dict(balance="sqrt"),
    "rf subsample": dict(balance="subsample"),
    "rf sqrt leaf2": dict(balance="sqrt", min_samples_leaf=2),
    "rf sqrt leaf3": dict(balance="sqrt", min_samples_leaf=3),
    "rf sqrt leaf5": dict(balance="sqrt", min_samples_leaf=5),
    "rf balanced leaf3": dict(balance="balanced", min_samples_leaf=3),
    "rf sqrt leaf3 mf0.3": dict(balance="sqrt", min_samples_leaf=3, max_features=0.3),
    "lgbm balanced": dict(model="lgbm", n_estimators=100, balance="balanced"),
    "lgbm sqrt": dict(model="lgbm", n_estimators=100, balance="sqrt"),
    "rf+lgbm sqrt": dict(model="rf+lgbm", n_estimators=100, balance="sqrt"),
}
#: The setting chosen by ``--select`` (blocked CV on training pixels only).
CHOSEN = "rf sqrt leaf3 mf0.3"
CV_BLOCK = {"Slovenia": 10, "NC": 30}

SETTINGS = {
    f"cryokit {CHOSEN} (CV-selected)": lambda: GlobalClassifier(**CANDIDATES[CHOSEN]),
    "cryokit rf subsample (strip-CV-selected)": lambda: GlobalClassifier(
        **CANDIDATES["rf subsample"]),
    "cryokit rf global": lambda: GlobalClassifier(),
    "cryokit rf global balanced": lambda: GlobalClassifier(balance=True),
    "cryokit rf 100 trees balanced": lambda: GlobalClassifier(balance=True, n_estimators=100),
    "cryokit lgbm": lambda: GlobalClassifier("lgbm", n_estimators=100),
    "cryokit lgbm balanced": lambda: GlobalClassifier("lgbm", n_estimators=100, balance=True),
    "cryokit rf local 128 px balanced": lambda: LocalClassifier(128, balance=True),
}


def run(name, data, seeds=(0, 1, 2)):
    f, y, r, c, tr, te = data
    rows = []
    for seed in seeds:
        rf = RandomForestClassifier(100, random_state=seed, n_jobs=2).fit(f[tr], y[tr])
        rows.append(("sklearn RF 100 (baseline)", seed, scores(y[te], rf.predict(f[te]))))
        for label, make in SETTINGS.items():
            clf = make()
            clf.model_params.seed = seed
            clf.fit(f[tr], y[tr], r[tr], c[tr])
            rows.append((label, seed, scores(y[te], clf.predict(f[te], r[te], c[te]))))
    print(f"\n{name}: {tr.sum()} training, {te.sum()} test pixels; mean over seeds {list(seeds)}")
    print(f"{'setting':34s} {'OA':>6s} {'kappa':>6s} {'mF1':>6s}  per-class F1")
    base = None
    for label in dict.fromkeys(r[0] for r in rows):
        sc = [s for lab, _, s in rows if lab == label]
        oa, ka, mf = (np.mean([s[k] for s in sc]) for k in ("OA", "kappa", "macro_F1"))
        per = {k: np.mean([s["F1"][k] for s in sc]) for k in sc[0]["F1"]}
        base = base or (oa, mf)
        flag = " both above RF" if label != rows[0][0] and oa > base[0] and mf > base[1] else ""
        print(f"{label:34s} {oa:6.3f} {ka:6.3f} {mf:6.3f}  "
              + " ".join(f"{k}:{v:.2f}" for k, v in per.items()) + flag)


def blocked_cv(data, block, candidates=CANDIDATES, seeds=(0, 1, 2), k=5, strips=False):
    """Mean OA, kappa, macro-F1 of out-of-fold predictions on the training pixels only, for
    the scikit-learn RF (key ``"sklearn RF"``) and each candidate: {name: (OA, kappa, mF1)}.
    ``strips``: the blocks are full-height strips of ``block`` columns (extrapolation across
    columns, like the Slovenia test split) instead of squares."""
    f, y, r, c, tr, _ = data
    X, Y, R, C = f[tr], y[tr], r[tr], c[tr]
    if strips:
        R = np.zeros_like(R)
    out = {}
    for seed in seeds:
        folds = blocked_folds(R, C, block, k=k, seed=seed)
        pred = {name: np.zeros_like(Y) for name in ["sklearn RF", *candidates]}
        for i in range(k):
            a, v = folds != i, folds == i
            pred["sklearn RF"][v] = RandomForestClassifier(
                100, random_state=seed, n_jobs=2).fit(X[a], Y[a]).predict(X[v])
            for name, kw in candidates.items():
                pred[name][v] = GlobalClassifier(seed=seed, **kw).fit(X[a], Y[a]).predict(X[v])
        for name, p in pred.items():
            s = scores(Y, p)
            out.setdefault(name, []).append((s["OA"], s["kappa"], s["macro_F1"]))
    return {name: tuple(np.mean(v, axis=0)) for name, v in out.items()}


def select(results):
    """The candidate maximising its smallest gain over the RF (Slovenia OA and macro-F1, NC
    OA, kappa and macro-F1; rounded to 0.001), ties broken by the mean gain."""
    gains = {}
    for name in results["Slovenia"]:
        if name == "sklearn RF":
            continue
        g = [results[d][name][m] - results[d]["sklearn RF"][m]
             for d, ms in (("Slovenia", (0, 2)), ("NC", (0, 1, 2))) for m in ms]
        gains[name] = (round(min(g), 3), float(np.mean(g)))
    return max(gains, key=gains.get), gains


def main_select(strips=False):
    results = {"Slovenia": blocked_cv(slovenia(), CV_BLOCK["Slovenia"], strips=strips),
               "NC": blocked_cv(nc_landsat(), CV_BLOCK["NC"], strips=strips)}
    best, gains = select(results)
    print(f"blocked CV ({'column strips' if strips else 'square blocks'}) on training pixels "
          "(mean of seeds 0-2): OA kappa mF1 per dataset; "
          "gain = smallest / mean gain over the RF")
    for name in results["Slovenia"]:
        row = "  ".join(" ".join(f"{v:.4f}" for v in results[d][name]) for d in results)
        g = gains.get(name)
        print(f"{name:22s} {row}" + (f"  gain {g[0]:+.3f} / {g[1]:+.4f}" if g else ""))
    print(f"chosen: {best}" + ("" if best == CHOSEN else f"  (CHOSEN in this file: {CHOSEN})"))


if __name__ == "__main__":
    if not DATA.exists():
        sys.exit(f"data not found: {DATA}")
    if "--select" in sys.argv:
        main_select(strips="--strips" in sys.argv)
        sys.exit(0)
    run("Slovenia S2 patch (spatial split: train cols < 50)", slovenia())
    run("NC Landsat-7 (train: labelled pixels; test: strata.tif elsewhere)", nc_landsat())
