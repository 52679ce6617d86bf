"""Synthetic drifting land-cover scene: determinism, truth, samples, drift and files."""

from __future__ import annotations

import numpy as np
import rasterio

from cryokit.synthetic.landcover import make_landcover_scene, write_landcover_scene


def test_scene_is_deterministic_and_consistent():
    a = make_landcover_scene(96, seed=4, n_features=9)
    b = make_landcover_scene(96, seed=4, n_features=9)
    assert np.array_equal(a.truth, b.truth) and np.array_equal(a.features, b.features, equal_nan=True)
    assert set(np.unique(a.truth)) == set(a.codes)
    # samples sit on valid pixels and carry the truth there
    assert np.array_equal(a.labels, a.truth[a.rows, a.cols])
    assert np.isfinite(a.sample_table()).all()
    nan_px = ~np.isfinite(a.features).all(axis=0)
    assert 0 < nan_px.mean() < 0.01


def test_class_means_drift_across_the_scene():
    s = make_landcover_scene(200, seed=1, n_features=6, noise=0.05)
    h, w = s.truth.shape
    corner = np.zeros_like(s.truth, bool)
    corner[: h // 5, : w // 5] = True
    far = np.zeros_like(s.truth, bool)
    far[-h // 5:, -w // 5:] = True
    shifts = []
    for c in s.codes:
        m0 = np.nanmean(s.features[:2, corner & (s.truth == c)], axis=1)
        m1 = np.nanmean(s.features[:2, far & (s.truth == c)], axis=1)
        if np.isfinite(m0).all() and np.isfinite(m1).all():
            shifts.append(np.hypot(*(m1 - m0)))
    # means sit on the unit circle and turn by ~0.8 * drift = 3.8 rad between the corner
    # centres: a chord of ~1.9; noise 0.05 cannot fake more than 0.5
    assert shifts and min(shifts) > 0.5


def test_write_scene(tmp_path):
    s = make_landcover_scene(48, seed=0, n_features=6, nan_fraction=0.01)
    out = write_landcover_scene(s, tmp_path)
    with rasterio.open(out["features"]) as ds:
        assert ds.count == 6 and list(ds.descriptions) == s.names
        assert np.isnan(ds.read()).any()
    with rasterio.open(out["truth"]) as ds:
        assert np.array_equal(ds.read(1), s.truth)
    import geopandas as gpd

    pts = gpd.read_file(out["labels"])
    assert len(pts) == s.rows.size and set(pts["class"]) <= set(s.codes)
    assert list(gpd.read_file(out["regions"])["code"]) == ["WEST", "EAST"]
