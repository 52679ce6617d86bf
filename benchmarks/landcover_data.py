"""Readers of the real land-cover sets in ``../shared/data/landcover`` for the benchmarks and
the real-data tests: the eo-learn Slovenia patch (spatial split) and the GRASS North Carolina
Landsat-7 set (training pixels, ``strata.tif`` as reference), the scikit-learn RF baseline
behind cryokit's classifier interface, and the scores of a map on held-out pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import cohen_kappa_score, f1_score

from cryokit.landcover.classify import predict_image
from cryokit.landcover.context import add_context
from cryokit.landcover.features import temporal_stats

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "landcover"


def _read(path, dtype, band=None, fill=None):
    """Band ``band`` (or every band) of ``path`` as ``dtype``; masked pixels become ``fill``
    when given."""
    with rasterio.open(path) as ds:
        data = ds.read(band, masked=fill is not None).astype(dtype)
    return data if fill is None else data.filled(fill)


def slovenia(d=DATA / "eolearn_slovenia_testpatch", ndvi=False, context=()):
    """Features (n, 66: 5 dates x 13 bands + DEM; + 8 with ``ndvi``; then, with ``context``
    window sides, the local means and standard deviations of all of them), labels, rows,
    cols, and the spatial split: train = labelled pixels of columns < 50, test = labelled
    pixels of columns >= 50.  Context is computed from the unlabelled image (every pixel's
    features, no label), as the product's ``landcover features --context`` does."""
    x = _read(d / "S2L1C_5dates_13bands_derived.tif", np.float32)
    dem = _read(d / "DEM_derived.tif", np.float32, 1)
    y = _read(d / "LULC_reference_derived.tif", np.int64, 1)
    f = np.concatenate([x, dem[None]]).reshape(x.shape[0] + 1, -1).T
    if ndvi:
        f = np.concatenate([f, ndvi_stats(d)], axis=1)
    if context:
        img = add_context(f.T.reshape(f.shape[1], *y.shape), context)
        f = np.ascontiguousarray(img.reshape(img.shape[0], -1).T)
    r, c = np.divmod(np.arange(y.size), y.shape[1])
    yy = y.ravel()
    return f, yy, r, c, (yy > 0) & (c < 50), (yy > 0) & (c >= 50)


def ndvi_stats(d=DATA / "eolearn_slovenia_testpatch"):
    """(n, 8) NDVI temporal features of the patch over its 68 dates (2015-07 to 2017-12),
    cloudy (s2cloudless) and invalid observations ignored: p10, p25, median, p75, p90,
    mean, std and amplitude (p90 - p10)."""
    n = np.load(d / "NDVI.npy")[..., 0].astype(np.float32)
    clear = (np.load(d / "CLM.npy")[..., 0] == 0) & np.load(d / "IS_VALID.npy")[..., 0]
    st = temporal_stats(np.where(clear, n, np.nan),
                        ["p10", "p25", "median", "p75", "p90", "mean", "std"])
    st["amplitude"] = st["p90"] - st["p10"]
    return np.stack(list(st.values())).reshape(len(st), -1).T


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


class SklearnRF:
    """The baseline (scikit-learn RandomForest, 100 trees, fully grown) behind the cryokit
    classifier interface, so that the same spatial regularisation can be applied to it."""

    def __init__(self, seed=0):
        self.rf = RandomForestClassifier(100, random_state=seed, n_jobs=2)

    def fit(self, X, y, rows=None, cols=None):
        self.rf.fit(X, y)
        self.classes_ = self.rf.classes_
        return self

    def predict_proba(self, X, rows=None, cols=None):
        return self.rf.predict_proba(X).astype(np.float32)

    def predict(self, X, rows=None, cols=None):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def split_scores(clf, data, sigma=0.0, mmu=0):
    """Scores of a fitted classifier on the test pixels, the map regularised over the
    non-training pixels only (training pixels are nodata, so their in-sample predictions
    cannot leak into the test pixels next to them)."""
    f, y, r, c, tr, te = data
    img = f.copy()
    img[tr] = np.nan
    img = img.T.reshape(f.shape[1], r.max() + 1, c.max() + 1)
    codes, _ = predict_image(clf, img, smooth=sigma, mmu=mmu)
    return scores(y[te], codes[r[te], c[te]])
