"""Land cover on real data: cryokit classifiers vs a plain global scikit-learn RF (100 trees).

Slovenia (eo-learn test patch, Sentinel-2 5 dates x 13 bands + DEM, LULC reference):
spatially split, train on columns < 50, test on columns >= 50.  NC Landsat-7 (GRASS
sample data): train on the labelled pixels, assess against ``strata.tif`` on every other
pixel.  Prints OA, kappa, macro-F1 and per-class F1 for each setting.

Run: ``python benchmarks/landcover_real.py``.  ``tests/test_landcover_real.py`` imports the
loaders :func:`slovenia` and :func:`nc_landsat` from here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import cohen_kappa_score, f1_score

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


SETTINGS = {
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


if __name__ == "__main__":
    if not DATA.exists():
        sys.exit(f"data not found: {DATA}")
    run("Slovenia S2 patch (spatial split: train cols < 50)", slovenia())
    run("NC Landsat-7 (train: labelled pixels; test: strata.tif elsewhere)", nc_landsat())
