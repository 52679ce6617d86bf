"""Feature stacks on real data: Slovenia Sentinel-2 (65 bands, 5 dates) + DEM, NC Landsat-7
single-band files, scikit-eo Landsat-8 + Sentinel-1."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from cryokit.cli import main
from cryokit.core.terrain import aspect, slope
from cryokit.core.errors import UserError
from cryokit.landcover.features import (FeatureOptions, band_role, nan_quantiles, plan_features,
                                        sar_features, spectral_indices, temporal_stats,
                                        write_features)
from cryokit.core.raster import read_grid, write_cog

from conftest import shared_path

S2_DATES = ["2015-07-11", "2015-07-31", "2015-08-20", "2015-08-30", "2015-09-09"]
NC_BANDS = ("B1", "B2", "B3", "B4", "B5", "B7")


def _read(path):
    with rasterio.open(path) as ds:
        return (ds.read(masked=True).filled(np.nan).astype(np.float64), ds.descriptions,
                [ds.tags(i + 1).get("units") for i in range(ds.count)], ds.tags(),
                read_grid(path))


def _src(path, band=1):
    with rasterio.open(path) as ds:
        return ds.read(band, masked=True).astype(np.float64).filled(np.nan)


# --------------------------------------------------------------------------- algorithms

def test_indices_by_role():
    b = {"blue": np.array([0.05]), "green": np.array([0.08]), "red": np.array([0.04]),
         "nir": np.array([0.40]), "swir1": np.array([0.20]), "swir2": np.array([0.10])}
    out = spectral_indices(b)
    assert list(out) == ["NDVI", "NDWI", "NDSI", "NBR", "NDBI", "SAVI"]
    # Hand-computed from the definitions.
    assert out["NDVI"][0] == pytest.approx(0.36 / 0.44, rel=1e-6)
    assert out["NDWI"][0] == pytest.approx(-0.32 / 0.48, rel=1e-6)
    assert out["NDSI"][0] == pytest.approx(-0.12 / 0.28, rel=1e-6)
    assert out["NBR"][0] == pytest.approx(0.30 / 0.50, rel=1e-6)
    assert out["NDBI"][0] == pytest.approx(-0.20 / 0.60, rel=1e-6)
    assert out["SAVI"][0] == pytest.approx(1.5 * 0.36 / 0.94, rel=1e-6)
    zero = spectral_indices({"red": np.zeros(1), "nir": np.zeros(1)}, ["NDVI"])
    assert np.isnan(zero["NDVI"][0])  # 0/0 is nodata, not an error
    assert band_role("B8A", None) == "nir08" and band_role("B4", None) is None
    assert band_role("B5", "landsat8") == "nir" and band_role("SR_B6", "landsat8") == "swir1"


def test_temporal_stats_and_sar():
    stack = np.array([[1.0, np.nan], [2.0, np.nan], [np.nan, np.nan], [4.0, np.nan]])
    st = temporal_stats(stack)
    assert st["median"][0] == 2.0 and np.isnan(st["median"][1])
    assert st["p10"][0] == pytest.approx(np.percentile([1, 2, 4], 10))
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 20, 30))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[:, 0, 0] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanpercentile(a, [0, 10, 50, 90, 100], axis=0)
    got = nan_quantiles(a, [0, 0.1, 0.5, 0.9, 1])
    np.testing.assert_allclose(got, ref, atol=1e-6, equal_nan=True)  # float32 output
    f = sar_features(np.array([0.1, 0.0]), np.array([0.02, 0.01]), db=False)
    assert f["VH-VV"][0] == pytest.approx(10 * np.log10(0.2), abs=1e-5)
    assert np.isnan(f["VV"][1])  # zero power has no dB value


# --------------------------------------------------------------------------- Slovenia S2 + DEM

@pytest.fixture(scope="module")
def slovenia(tmp_path_factory):
    d = shared_path("landcover", "eolearn_slovenia_testpatch")
    s2, dem = d / "S2L1C_5dates_13bands_derived.tif", d / "DEM_derived.tif"
    # Block 48 on a 101 x 100 patch: windows with edges inside the image, so halos are used.
    plan = plan_features([str(s2)], FeatureOptions(block=48), dem=str(dem))
    out = write_features(plan, tmp_path_factory.mktemp("s2") / "features.tif")
    return s2, dem, plan, out


def test_slovenia_names_grid_units(slovenia):
    s2, dem, plan, out = slovenia
    arr, names, units, tags, grid = _read(out)
    assert plan.dates == tuple(S2_DATES)
    # 5 dates x (13 bands + 6 indices) + 19 x 3 statistics + 4 terrain bands.
    assert len(names) == 5 * 19 + 19 * 3 + 4 == 156
    assert names[:2] == ("2015-07-11_B01", "2015-07-11_B02") and "2015-07-11_B8A" in names
    assert "2015-09-09_NDSI" in names and "NDVI_p90" in names and "B12_median" in names
    assert names[-4:] == ("elevation", "slope", "aspect_sin", "aspect_cos")
    assert grid.same_as(read_grid(s2))
    u = dict(zip(names, units))
    assert (u["2015-07-11_B04"], u["NDVI_median"], u["elevation"], u["slope"]) == (
        "reflectance", "1", "m", "degree")
    assert tags["feature_dates"] == ",".join(S2_DATES) and "NDVI=(nir-red)" in tags["indices"]


def test_slovenia_values_equal_source(slovenia):
    s2, dem, plan, out = slovenia
    arr, names, *_ = _read(out)
    f = dict(zip(names, arr))
    with rasterio.open(s2) as ds:
        src = {d: ds.read(i + 1).astype(np.float64) for i, d in enumerate(ds.descriptions)}
    # Features are float32: equal to float32 rounding of the float64 truth.
    for date in S2_DATES:
        b8, b4 = src[f"{date}_B08"], src[f"{date}_B04"]
        np.testing.assert_allclose(f[f"{date}_NDVI"], (b8 - b4) / (b8 + b4), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(f[f"{date}_B11"], src[f"{date}_B11"])
    b3 = np.stack([src[f"{d}_B03"] for d in S2_DATES])
    b11 = np.stack([src[f"{d}_B11"] for d in S2_DATES])
    np.testing.assert_allclose(f["NDSI_median"], np.median((b3 - b11) / (b3 + b11), axis=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f["B04_p10"], np.percentile(
        np.stack([src[f"{d}_B04"] for d in S2_DATES]), 10, axis=0), rtol=1e-5, atol=1e-7)
    # Terrain equals the whole-DEM computation: block halos leave no seams.
    h = _src(dem)
    res = read_grid(dem).res
    np.testing.assert_allclose(f["elevation"], h)
    np.testing.assert_allclose(f["slope"], slope(h, res), rtol=1e-5, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(f["aspect_sin"], np.sin(np.radians(aspect(h, res))),
                               atol=1e-4, equal_nan=True)
    assert np.isnan(f["slope"][0]).all() and np.isfinite(f["slope"][1:-1, 1:-1]).all()


def test_block_size_does_not_change_features(slovenia, tmp_path):
    s2, dem, plan, out = slovenia
    whole = plan_features([str(s2)], FeatureOptions(block=512, stats=("median",), per_date=False),
                          dem=str(dem))
    a = _read(write_features(whole, tmp_path / "a.tif"))[0]
    small = plan_features([str(s2)], FeatureOptions(block=32, stats=("median",), per_date=False),
                          dem=str(dem))
    b = _read(write_features(small, tmp_path / "b.tif"))[0]
    np.testing.assert_array_equal(a, b)
    assert a.shape[0] == 19 + 4


def test_second_input_resampled_to_first_grid(slovenia, tmp_path):
    s2, dem, plan, out = slovenia
    # The DEM as an "optical" input cropped by 10 x 7 pixels: it must come back on S2's grid,
    # NaN outside its footprint, identical inside (same pixel size, whole-pixel offset).
    g = read_grid(dem)
    h = _src(dem)
    crop = write_cog(tmp_path / "crop.tif", h[10:, 7:].astype(np.float32),
                     g.window(10, g.height, 7, g.width), descriptions=["red"])
    p = plan_features([str(s2), crop], FeatureOptions(indices=(), per_date=True, stats=()))
    arr, names, *_ = _read(write_features(p, tmp_path / "f.tif"))
    got = arr[list(names).index("red")]
    assert np.isnan(got[:10]).all() and np.isnan(got[:, :7]).all()
    np.testing.assert_array_equal(got[10:, 7:], h[10:, 7:])


# --------------------------------------------------------------------------- NC Landsat-7

def test_nc_landsat7_single_band_files(tmp_path):
    d = shared_path("landcover", "grass_nc_landsat7")
    files = [str(d / f"lsat7_2000_{b}0.tif") for b in (1, 2, 3, 4, 5, 7)]
    out = tmp_path / "nc.tif"
    rc = main(["landcover", "features", *files, "--bands", ",".join(NC_BANDS),
               "--sensor", "landsat7", "--optical-units", "DN", "-o", str(out)])
    assert rc == 0
    arr, names, units, tags, grid = _read(out)
    assert names == (*NC_BANDS, "NDVI", "NDWI", "NDSI", "NBR", "NDBI", "SAVI")
    assert units[:6] == ["DN"] * 6 and grid.same_as(read_grid(files[0]))
    b3, b4, b5 = _src(files[2]), _src(files[3]), _src(files[4])
    # Landsat-7: red is band 3, NIR band 4, SWIR1 band 5.
    np.testing.assert_allclose(arr[6], (b4 - b3) / (b4 + b3), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arr[10], (b5 - b4) / (b5 + b4), rtol=1e-5, atol=1e-6)
    nodata = np.isnan(b3) | np.isnan(b4)
    assert nodata.any() and np.isnan(arr[6][nodata]).all()
    assert "B4=nir" in tags["band_roles"]


def test_nc_band_names_are_required(tmp_path):
    d = shared_path("landcover", "grass_nc_landsat7")
    files = [str(d / f"lsat7_2000_{b}0.tif") for b in (3, 4)]
    assert main(["landcover", "features", *files, "-o", str(tmp_path / "x.tif")]) == 2
    with pytest.raises(UserError, match="--bands names 1 band"):
        plan_features(files, FeatureOptions(bands=("B3",)))
    with pytest.raises(UserError, match="given twice"):
        plan_features(files, FeatureOptions(bands=("B3", "B3")))
    with pytest.raises(UserError, match="NDVI needs band roles"):
        plan_features(files, FeatureOptions(bands=("B3", "B4"), indices=("NDVI",)))
    assert not (tmp_path / "x.tif").exists()


# --------------------------------------------------------------------------- Landsat-8 + S1

def test_landsat8_with_sar(tmp_path):
    d = shared_path("landcover", "scikit_eo_landsat8")
    opt, sar = d / "LC08_003069_20180906_clip.tif", d / "S1_2018_VV_VH_clip.tif"
    out = tmp_path / "l8s1.tif"
    assert main(["landcover", "features", str(opt), "--bands", "B2,B3,B4,B5,B6,B7",
                 "--sensor", "landsat8", "--sar", str(sar), "-o", str(out)]) == 0
    arr, names, units, tags, grid = _read(out)
    assert names[:2] == ("2018-09-06_B2", "2018-09-06_B3")  # date from the file name
    assert names[-3:] == ("VV", "VH", "VH-VV") and units[-3:] == ["dB"] * 3
    vv, vh = _src(sar, 1), _src(sar, 2)  # already in dB (negative)
    np.testing.assert_allclose(arr[-3], vv, rtol=1e-6)
    np.testing.assert_allclose(arr[-1], vh - vv, rtol=1e-5, atol=1e-5)
    b4, b5 = _src(opt, 3), _src(opt, 4)
    np.testing.assert_allclose(arr[names.index("2018-09-06_NDVI")], (b5 - b4) / (b5 + b4),
                               rtol=1e-5, atol=1e-6)
