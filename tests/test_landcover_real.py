"""Real data: cryokit classifiers against a plain global scikit-learn RF trained in the same run.

Numbers (mean of 3 seeds, benchmarks/landcover_real.py): Slovenia spatial split RF OA 0.830 /
macro-F1 0.423, cryokit balanced rf OA 0.839 / 0.421; NC Landsat-7 vs strata.tif RF OA 0.542,
kappa 0.361, cryokit rf OA 0.547, kappa 0.364.  The tolerances below allow one seed's noise
(about 1 point OA, 2 points macro-F1 on these small test sets).
"""

from __future__ import annotations

import numpy as np
import rasterio
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import cohen_kappa_score, f1_score

from cryokit.landcover.classify import GlobalClassifier
from conftest import shared_path


def _slovenia():
    d = shared_path("landcover", "eolearn_slovenia_testpatch")
    with rasterio.open(d / "S2L1C_5dates_13bands_derived.tif") as ds:
        x = ds.read().astype(np.float32)
    with rasterio.open(d / "DEM_derived.tif") as ds:
        dem = ds.read(1).astype(np.float32)
    with rasterio.open(d / "LULC_reference_derived.tif") as ds:
        y = ds.read(1).astype(np.int64).ravel()
    f = np.concatenate([x, dem[None]]).reshape(x.shape[0] + 1, -1).T
    c = np.arange(y.size) % 100
    return f, y, (y > 0) & (c < 50), (y > 0) & (c >= 50)


def _nc():
    d = shared_path("landcover", "grass_nc_landsat7")
    bands = []
    for b in (10, 20, 30, 40, 50, 70):
        with rasterio.open(d / f"lsat7_2000_{b}.tif") as ds:
            bands.append(ds.read(1, masked=True).astype(np.float32).filled(np.nan))
    ndvi = (bands[3] - bands[2]) / (bands[3] + bands[2] + 1e-6)
    f = np.stack(bands + [ndvi]).reshape(7, -1).T
    with rasterio.open(d / "landsat96_labelled_pixels.tif") as ds:
        lab = ds.read(1, masked=True).filled(0).astype(np.int64).ravel()
    with rasterio.open(d / "strata.tif") as ds:
        ref = ds.read(1, masked=True).filled(0).astype(np.int64).ravel()
    ok = np.isfinite(f).all(axis=1)
    return f, lab, ref, ok & (lab > 0), ok & (ref > 0) & (lab == 0)


def test_slovenia_spatial_split_vs_rf():
    f, y, tr, te = _slovenia()
    rf = RandomForestClassifier(100, random_state=0, n_jobs=2).fit(f[tr], y[tr]).predict(f[te])
    ck = GlobalClassifier(balance=True).fit(f[tr], y[tr]).predict(f[te])
    oa_rf, oa_ck = (float((p == y[te]).mean()) for p in (rf, ck))
    f1_rf, f1_ck = (f1_score(y[te], p, average="macro") for p in (rf, ck))
    assert 0.80 < oa_rf < 0.86           # README smoke test: 0.823
    assert oa_ck >= oa_rf - 0.005 and f1_ck >= f1_rf - 0.02, (oa_rf, oa_ck, f1_rf, f1_ck)


def test_nc_landsat_vs_strata():
    f, lab, ref, tr, te = _nc()
    rf = RandomForestClassifier(100, random_state=0, n_jobs=2).fit(f[tr], lab[tr]).predict(f[te])
    ck = GlobalClassifier().fit(f[tr], lab[tr]).predict(f[te])
    oa_rf, oa_ck = (float((p == ref[te]).mean()) for p in (rf, ck))
    k_rf, k_ck = (cohen_kappa_score(ref[te], p) for p in (rf, ck))
    assert 0.50 < oa_rf < 0.58           # README smoke test: 0.541
    assert oa_ck >= oa_rf - 0.01 and k_ck >= k_rf - 0.01, (oa_rf, oa_ck, k_rf, k_ck)
    # forest (5) is the dominant class and the easiest: F1 ~0.72
    assert f1_score(ref[te], ck, labels=[5], average=None)[0] > 0.65
