"""Accuracy assessment: hand-computed matrices, Olofsson et al. (2014) worked example, blocked
folds, and ``cryokit landcover assess`` on the NC reference data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from cryokit.cli import main
from cryokit.landcover.accuracy import accuracy_metrics, area_adjusted, blocked_folds, confusion_matrix
from cryokit.landcover.assess import assess_map
from cryokit.landcover.legend import Legend
from cryokit.core.raster import Grid, read_band, read_grid, write_cog

from conftest import shared_path

NC_LEGEND = Legend(tuple(range(1, 8)), ("developed", "agriculture", "herbaceous", "shrubland",
                                        "forest", "water", "sediment"),
                   ("#ff0000", "#ffff00", "#aaff00", "#558800", "#005500", "#0000ff", "#aa8866"))

# Olofsson et al. (2014), section 5, Table 8: rows = map, columns = reference; 30 m pixels.
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])
HA = 0.09  # hectares per pixel


def test_confusion_matrix_and_metrics_by_hand():
    m = np.array([1, 1, 1, 2, 2, 3, 3, 3, 0, 2])
    r = np.array([1, 1, 2, 2, 2, 3, 1, 3, 3, 0])  # last two pairs have a 0: left out
    mat, classes = confusion_matrix(m, r)
    assert classes.tolist() == [1, 2, 3]
    assert mat.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 2]]
    s = accuracy_metrics(mat)
    # n = 8, diagonal 6; rows (3, 2, 3), columns (3, 3, 2).
    assert s["n"] == 8 and s["overall_accuracy"] == pytest.approx(6 / 8)
    pe = (3 * 3 + 2 * 3 + 3 * 2) / 64
    assert s["kappa"] == pytest.approx((6 / 8 - pe) / (1 - pe))
    np.testing.assert_allclose(s["precision"], [2 / 3, 1, 2 / 3])
    np.testing.assert_allclose(s["recall"], [2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(s["f1"], [2 / 3, 0.8, 0.8])
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0.8) / 3)


def test_metrics_two_classes_and_degenerate():
    s = accuracy_metrics(np.array([[45, 5], [10, 40]]))
    # OA 0.85, chance agreement (50*55 + 50*45)/100^2 = 0.5, kappa 0.7.
    assert s["overall_accuracy"] == 0.85 and s["kappa"] == pytest.approx(0.7)
    np.testing.assert_allclose(s["f1"], [90 / 105, 80 / 95])
    # A class the map never predicts: precision undefined (NaN), F1 0, counted in macro-F1.
    z = accuracy_metrics(np.array([[5, 5], [0, 0]]))
    assert np.isnan(z["precision"][1]) and z["f1"][1] == 0 and z["macro_f1"] == pytest.approx(
        (10 / 15) / 2)
    mat, classes = confusion_matrix([1, 2], [1, 2], classes=[2, 1, 5])
    assert mat.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_olofsson_2014_worked_example():
    r = area_adjusted(OLOFSSON_COUNTS, OLOFSSON_PIXELS)
    np.testing.assert_allclose(r["weights"], [0.02, 0.015, 0.32, 0.645])
    # Table 9 (area proportions), printed to 4 decimals.
    np.testing.assert_allclose(r["proportions"][[0, 0, 1, 2, 3], [0, 2, 1, 2, 3]],
                               [0.0176, 0.0013, 0.0110, 0.2967, 0.6212], atol=5e-5)
    np.testing.assert_allclose(r["proportions"].sum(0), [0.0235, 0.0130, 0.3175, 0.6460],
                               atol=5e-5)
    # Areas and 95 % intervals in ha as printed (whole hectares; 1 ha tolerance for rounding).
    np.testing.assert_allclose(r["area"] * HA, [21_158, 11_686, 285_770, 581_386], atol=1)
    np.testing.assert_allclose(r["area_ci"] * HA, [6_158, 3_756, 15_510, 16_282], atol=1)
    # Accuracies as printed (2 decimals).
    np.testing.assert_allclose(r["users_accuracy"], [0.88, 0.73, 0.93, 0.96], atol=0.005)
    np.testing.assert_allclose(r["users_ci"], [0.07, 0.10, 0.04, 0.02], atol=0.005)
    np.testing.assert_allclose(r["producers_accuracy"], [0.75, 0.85, 0.93, 0.96], atol=0.005)
    assert round(r["overall_accuracy"], 2) == 0.95 and round(r["overall_ci"], 2) == 0.02
    # Producer's intervals: eq. 7 as published gives 0.213, 0.254, 0.034, 0.018; the paper
    # prints 0.21, 0.23, 0.03, 0.01. Two printed values do not follow from its own equation
    # (an independent implementation finds the same), so we pin eq. 7.
    np.testing.assert_allclose(r["producers_ci"], [0.213, 0.254, 0.034, 0.018], atol=0.0015)


def test_area_adjusted_simple_random_sample_reduces_to_sample_estimates():
    # Sample allocated in proportion to the mapped areas: the stratified estimates of OA,
    # user's and producer's accuracy equal the plain sample ratios.
    mat = np.array([[40, 10], [5, 45]])
    r = area_adjusted(mat, [500.0, 500.0])
    s = accuracy_metrics(mat)
    assert r["overall_accuracy"] == pytest.approx(s["overall_accuracy"])
    np.testing.assert_allclose(r["users_accuracy"], s["precision"])
    np.testing.assert_allclose(r["producers_accuracy"], s["recall"])
    np.testing.assert_allclose(r["area"], [450, 550])
    # Single-sample stratum: its variance is undefined, so NaN, never a fake 0.
    one = area_adjusted(np.array([[1, 0], [2, 30]]), [10.0, 90.0])
    assert np.isnan(one["users_ci"][0]) and np.isfinite(one["users_ci"][1])


def test_blocked_folds():
    rows, cols = np.divmod(np.arange(60 * 80), 80)
    f = blocked_folds(rows, cols, block=10, k=5, seed=3)
    assert set(f.tolist()) == {0, 1, 2, 3, 4}
    # 48 blocks of 100 samples: folds of 900 or 1000 samples.
    assert sorted(np.bincount(f).tolist()) == [900, 900, 1000, 1000, 1000]
    blocks = (rows // 10) * 8 + cols // 10
    for b in np.unique(blocks):  # a block never straddles folds
        assert len(np.unique(f[blocks == b])) == 1
    assert np.array_equal(f, blocked_folds(rows, cols, 10, 5, seed=3))
    assert not np.array_equal(f, blocked_folds(rows, cols, 10, 5, seed=4))
    with pytest.raises(ValueError, match="at least k"):
        blocked_folds(rows, cols, block=40, k=5)


def test_assess_wall_to_wall_known_map(tmp_path):
    # A 30 x 40 reference with 3 classes; the map differs on known pixels.
    g = Grid(CRS.from_epsg(32633), Affine(10, 0, 500000, 0, -10, 7000000), 40, 30)
    ref = np.ones((30, 40), np.uint8)
    ref[:, 20:] = 2
    ref[20:, :10] = 3
    mp = ref.copy()
    mp[0:5, 0:4] = 2    # 20 px of class 1 mapped as 2
    mp[25:, 35:] = 1    # 25 px of class 2 mapped as 1
    mp[29, 0] = 0       # 1 px unmapped (nodata)
    lg = Legend((1, 2, 3), ("Forest", "Wetland", "Open water"), ("#006400", "#3cb4a0", "#1e50c8"))
    map_path = write_cog(tmp_path / "map.tif", mp, g, dtype="uint8", nodata=0,
                         tags=lg.to_tags(), colormap=lg.colormap())
    ref_path = write_cog(tmp_path / "ref.tif", ref, g, dtype="uint8", nodata=0)
    rep = assess_map(map_path, ref_path, tmp_path / "rep.json")
    n1, n2, n3 = (ref == 1).sum(), (ref == 2).sum(), (ref == 3).sum() - 1
    assert rep["confusion_matrix"] == [[n1 - 20, 25, 0], [20, n2 - 25, 0], [0, 0, n3]]
    assert [c["name"] for c in rep["classes"]] == ["Forest", "Wetland", "Open water"]
    assert rep["overall_accuracy"] == pytest.approx(1 - 45 / 1199)
    # Census: area-adjusted class areas equal the reference areas (100 m^2 pixels).
    got = [c["area_adjusted"]["area_m2"] for c in rep["per_class"]]
    np.testing.assert_allclose(got, [100 * n1, 100 * n2, 100 * n3], rtol=1e-12)
    assert rep["per_class"][0]["mapped_area_m2"] == 100 * (n1 - 20 + 25)
    assert (tmp_path / "rep.png").stat().st_size > 5000
    assert json.loads((tmp_path / "rep.json").read_text())["kappa"] == pytest.approx(rep["kappa"])


@pytest.fixture(scope="module")
def nc_map(tmp_path_factory):
    """strata.tif as a uint8 class map with the NC legend embedded."""
    d = shared_path("landcover", "grass_nc_landsat7")
    g = read_grid(d / "strata.tif")
    a = np.nan_to_num(read_band(d / "strata.tif")).astype(np.uint8)
    out = tmp_path_factory.mktemp("ncmap") / "map.tif"
    return d, write_cog(out, a, g, dtype="uint8", nodata=0, tags=NC_LEGEND.to_tags(),
                        colormap=NC_LEGEND.colormap())


def test_assess_nc_against_labelled_pixels(nc_map, tmp_path):
    d, map_path = nc_map
    out = tmp_path / "rep.json"
    assert main(["landcover", "assess", str(map_path), "--reference",
                 str(d / "landsat96_labelled_pixels.tif"), "-o", str(out)]) == 0
    rep = json.loads(out.read_text())
    # README: strata.tif agrees 99.5 % with the 2,872 labelled pixels.
    assert rep["n_samples"] == 2872
    assert rep["overall_accuracy"] == pytest.approx(0.995, abs=0.001)
    assert [c["name"] for c in rep["classes"]][:2] == ["developed", "agriculture"]
    s = accuracy_metrics(np.array(rep["confusion_matrix"]))
    assert rep["kappa"] == pytest.approx(s["kappa"])
    assert (tmp_path / "rep.png").exists()


def test_assess_nc_points_by_name(nc_map, tmp_path):
    d, map_path = nc_map
    # Point labels are names ("forest"): matched to the map's embedded legend.
    rep = assess_map(map_path, d / "landsat96_points.shp", tmp_path / "p.json")
    assert rep["n_samples"] == 883 and rep["label_codes"]["water"] == 6
    # Same agreement as measured in test_landcover_legend (92.2 %).
    assert rep["overall_accuracy"] == pytest.approx(0.922, abs=0.001)
    aa = rep["area_adjusted_overall_accuracy"]
    assert abs(aa - rep["overall_accuracy"]) < 0.02 and 0 < rep[
        "area_adjusted_overall_accuracy_ci95"] < 0.05
    areas = sum(c["area_adjusted"]["area_m2"] for c in rep["per_class"])
    assert areas == pytest.approx(rep["mapped_area_total_m2"])  # areas add up to the map


def test_assess_errors(nc_map, tmp_path):
    d, map_path = nc_map
    plain = d / "strata.tif"  # no legend: named labels cannot be matched
    assert main(["landcover", "assess", str(plain), "--reference",
                 str(d / "landsat96_points.shp"), "-o", str(tmp_path / "r.json")]) == 2
    assert main(["landcover", "assess", str(map_path), "--reference",
                 str(d / "landsat96_points.shp"), "--label-column", "nope",
                 "-o", str(tmp_path / "r.json")]) == 2
    assert not (tmp_path / "r.json").exists()
