"""Spatial-context features (local mean / standard deviation): known values, NaN handling,
block-safety, and the ``--context`` option of ``cryokit landcover features``."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from cryokit.cli import main
from cryokit.core.errors import UserError
from cryokit.landcover.context import (add_context, check_sizes, context_features, context_names,
                                       halo)
from cryokit.landcover.features import FeatureOptions, plan_features, write_features

from conftest import shared_path


def _brute(band, s):
    """Mean and population std of the finite values in each s x s window (the definition)."""
    h, w = band.shape
    r = s // 2
    mean, std = np.full((h, w), np.nan), np.full((h, w), np.nan)
    for i in range(h):
        for j in range(w):
            if not np.isfinite(band[i, j]):
                continue
            win = band[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            v = win[np.isfinite(win)]
            mean[i, j], std[i, j] = v.mean(), v.std()
    return mean, std


def test_known_values_on_a_tiny_array():
    a = np.arange(16, dtype=np.float64).reshape(1, 4, 4)   # a[r, c] = 4 r + c
    c = context_features(a, [3])
    assert context_names(["x"], [3]) == ["x_mean3x3", "x_std3x3"]
    # interior: the 3 x 3 window of a linear ramp has the centre value as mean; its values
    # are centre + {-5,-4,-3,-1,0,1,3,4,5}: variance (2*25 + 2*16 + 2*9 + 2*1) / 9 = 102 / 9
    assert c[0, 1, 1] == 5.0 and c[0, 2, 2] == 10.0
    assert c[1, 1, 1] == pytest.approx(np.sqrt(102 / 9), rel=1e-6)
    # corner: only 4 pixels inside the raster (0, 1, 4, 5): the edge is nodata, not mirrored
    assert c[0, 0, 0] == 2.5 and c[1, 0, 0] == pytest.approx(np.std([0, 1, 4, 5]), rel=1e-6)
    # a constant band has ~zero spread (the filters' running sums leave ~2e-5 at 1234.5)
    flat = context_features(np.full((1, 5, 5), 1234.5), [3, 5])
    assert np.all(flat[[0, 2]] == 1234.5) and np.all(flat[[1, 3]] < 1e-4)


def test_nan_handling_and_against_the_definition():
    rng = np.random.default_rng(0)
    a = rng.normal(500, 3, size=(2, 9, 11))      # large values, small spread (like elevation)
    a[rng.random(a.shape) < 0.25] = np.nan
    a[1, :, 4] = np.nan                           # a nodata column
    c = context_features(a, [3, 5])
    assert c.shape == (8, 9, 11) and c.dtype == np.float32
    names = context_names(["a", "b"], [3, 5])
    for k, s in enumerate((3, 5)):
        for b in range(2):
            mean, std = _brute(a[b], s)
            got_m = c[names.index(f"{'ab'[b]}_mean{s}x{s}")]
            got_s = c[names.index(f"{'ab'[b]}_std{s}x{s}")]
            # float32 output: rounding ~3e-5 at 500; std has no cancellation problem
            np.testing.assert_allclose(got_m, mean, rtol=1e-6, equal_nan=True)
            np.testing.assert_allclose(got_s, std, atol=1e-4, equal_nan=True)
    # context never changes which pixels are nodata
    assert np.array_equal(np.isnan(c[[0, 1, 4, 5]]), np.isnan(np.concatenate([a] * 2)))


def test_two_blocks_equal_one():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 20, 17)).astype(np.float32)
    a[rng.random(a.shape) < 0.1] = np.nan
    sizes = (3, 5)
    whole = add_context(a, sizes)
    h = halo(sizes)
    assert h == 2
    pad = np.pad(a, ((0, 0), (h, h), (h, h)), constant_values=np.nan)   # outside = nodata
    parts = []
    for r0, r1 in ((0, 9), (9, 20)):              # top and bottom blocks, grown by the halo
        blk = add_context(pad[:, r0:r1 + 2 * h], sizes)
        parts.append(blk[:, h:h + r1 - r0, h:h + a.shape[2]])
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-6, atol=1e-6,
                               equal_nan=True)


def test_bad_sizes():
    assert check_sizes((5, 3, 3)) == (3, 5)
    for bad in ((4,), (1,), (3, 2.5)):
        with pytest.raises(ValueError, match="odd"):
            check_sizes(bad)


@pytest.fixture(scope="module")
def s2():
    return shared_path("landcover", "eolearn_slovenia_testpatch") / "S2L1C_5dates_13bands_derived.tif"


def test_write_features_with_context_is_block_safe(s2, tmp_path):
    """Real Sentinel-2 patch (101 x 100 px): blocks of 32 px give the same stack as one block,
    and the context bands equal context_features of the base bands."""
    kw = dict(stats=("median",), per_date=False, indices=("NDVI",), context=(3, 5),
              context_bands=("NDVI*", "B04_median"))
    arrs = []
    for block in (512, 32):
        plan = plan_features([str(s2)], FeatureOptions(block=block, **kw))
        out = write_features(plan, tmp_path / f"f{block}.tif")
        with rasterio.open(out) as ds:
            arrs.append(ds.read())
            names, units = ds.descriptions, [ds.tags(i + 1)["units"] for i in range(ds.count)]
    assert len(names) == 14 + 2 * 2 * 2
    assert names[14:] == ("B04_median_mean3x3", "NDVI_median_mean3x3", "B04_median_std3x3",
                          "NDVI_median_std3x3", "B04_median_mean5x5", "NDVI_median_mean5x5",
                          "B04_median_std5x5", "NDVI_median_std5x5")
    assert units[14] == "reflectance" and units[-1] == "1"
    np.testing.assert_allclose(arrs[1], arrs[0], rtol=1e-6, atol=1e-7, equal_nan=True)
    base = arrs[0][[names.index("B04_median"), names.index("NDVI_median")]]
    np.testing.assert_allclose(arrs[0][14:], context_features(base, (3, 5)), rtol=1e-6,
                               atol=1e-7, equal_nan=True)


def test_cli_context_option(s2, tmp_path):
    out = tmp_path / "f.tif"
    code = main(["landcover", "features", str(s2), "-o", str(out), "--stats", "median",
                 "--stats-only", "--indices", "NDVI", "--context", "3",
                 "--context-bands", "NDVI_median"])
    assert code == 0
    with rasterio.open(out) as ds:
        assert ds.descriptions[-2:] == ("NDVI_median_mean3x3", "NDVI_median_std3x3")
        assert "3x3" in ds.tags()["spatial_context"]
    assert main(["landcover", "features", str(s2), "-o", str(tmp_path / "g.tif"),
                 "--context", "4"]) == 2
    assert main(["landcover", "features", str(s2), "-o", str(tmp_path / "h.tif"),
                 "--context", "3", "--context-bands", "nothing*"]) == 2
    assert not (tmp_path / "g.tif").exists() and not (tmp_path / "h.tif").exists()
    with pytest.raises(UserError, match="matches no feature band"):
        plan_features([str(s2)], FeatureOptions(context=(3,), context_bands=("zz",)))
