"""Legends (CALC-2020, files, embedded in maps) and labels from points, polygons and rasters."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from cryokit.core.errors import UserError
from cryokit.landcover.inputs import label_raster, load_legend, read_labels, read_raster_legend
from cryokit.landcover.labels import class_codes_from, legend_from_codes, parse_codes
from cryokit.landcover.legend import CALC2020, Legend, legend_from_tags
from cryokit.core.raster import Grid, read_grid, write_cog

from conftest import shared_path

NC = ("landcover", "grass_nc_landsat7")
NC_LEGEND = Legend(tuple(range(1, 8)), ("developed", "agriculture", "herbaceous", "shrubland",
                                        "forest", "water", "sediment"), ["#808080"] * 7)


# --------------------------------------------------------------------------- legend

def test_calc2020_legend():
    assert CALC2020.codes == tuple(range(1, 11))
    assert CALC2020.name(1) == "Cropland" and CALC2020.name(10) == "Ice/snow"
    assert CALC2020.name(8) == "Man-made imperviousness"
    assert CALC2020.code("ice / snow") == 10 and CALC2020.code("open water") == 6
    cmap = CALC2020.colormap()
    assert cmap[0] == (0, 0, 0, 0) and all(cmap[c][3] == 255 for c in CALC2020.codes)
    assert len({cmap[c] for c in CALC2020.codes}) == 10  # every class its own colour
    assert Legend.from_dict(json.loads(json.dumps(CALC2020.to_dict()))) == CALC2020
    assert legend_from_tags(CALC2020.to_tags()) == CALC2020
    assert CALC2020.name(42) == "class 42"


def test_legend_validation():
    with pytest.raises(ValueError, match="duplicate"):
        Legend((1, 1), ("a", "b"), ("#000000", "#ffffff"))
    with pytest.raises(ValueError, match="1..255"):
        Legend((0,), ("a",), ("#000000",))
    with pytest.raises(ValueError, match="#rrggbb"):
        Legend((1,), ("a",), ("red",))


def test_load_legend_json_and_csv(tmp_path):
    j = tmp_path / "lg.json"
    j.write_text(json.dumps({"classes": [{"code": 3, "name": "Water", "colour": "#0000ff"},
                                         {"code": 1, "name": "Forest", "colour": "#006400"}]}))
    lg = load_legend(j)
    assert lg.codes == (3, 1) and lg.names == ("Water", "Forest")
    assert lg.colormap()[1] == (0, 100, 0, 255)
    c = tmp_path / "lg.csv"
    c.write_text("code,name,colour\n1,Forest,#006400\n3,Water,#0000ff\n")
    assert load_legend(c).to_dict()["classes"][1] == {"code": 3, "name": "Water",
                                                       "colour": "#0000ff"}


@pytest.mark.parametrize("text, match", [
    ("code,name,colour\n1,Forest,#006400\nx,Water,#0000ff\n", "line 3"),
    ("code,name,colour\n1,Forest,green\n", "line 2"),
    ("value,label\n1,Forest\n", "header"),
    ('{"classes": [{"name": "a"}]}', "code"),
    ('{"classes": [', "JSON"),
    ("code,name\n1,a\n1,b\n", "duplicate"),
])
def test_bad_legend_files(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(UserError, match=match) as e:
        load_legend(p)
    assert str(p) in str(e.value)


def test_legend_embedded_in_raster(tmp_path):
    g = Grid(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 100), 10, 10)
    arr = np.arange(100, dtype=np.uint8).reshape(10, 10) % 11
    tagged = write_cog(tmp_path / "m.tif", arr, g, dtype="uint8", nodata=0,
                       tags=CALC2020.to_tags(), colormap=CALC2020.colormap())
    assert read_raster_legend(tagged) == CALC2020
    colours_only = write_cog(tmp_path / "c.tif", arr, g, dtype="uint8", nodata=0,
                             colormap=CALC2020.colormap())
    lg = read_raster_legend(colours_only)  # codes and colours survive, names do not
    assert lg.codes == CALC2020.codes and lg.colours == CALC2020.colours
    plain = write_cog(tmp_path / "p.tif", arr, g, dtype="uint8", nodata=0)
    assert read_raster_legend(plain) is None


# --------------------------------------------------------------------------- codes

def test_class_codes_from():
    assert class_codes_from(["b", "a", None, "b", ""]) == {"a": 1, "b": 2}
    assert class_codes_from(["Shrub tundra", "forest"], CALC2020) == {"Shrub tundra": 4,
                                                                      "forest": 2}
    assert class_codes_from([5.0, 2, np.nan]) == {"2": 2, "5": 5}
    assert class_codes_from([0.0, 3.0, 1.0]) == {"1": 1, "3": 3}  # 0 = unlabelled
    assert class_codes_from(["x", "y"], codes={"x": 7, "y": 9, "z": 1}) == {"x": 7, "y": 9}
    with pytest.raises(ValueError, match="moss"):
        class_codes_from(["Forest", "moss"], CALC2020)
    with pytest.raises(ValueError, match="not in the class mapping"):
        class_codes_from(["x", "q"], codes={"x": 1})
    lg = legend_from_codes({"water": 2, "shrub tundra": 1})
    assert lg.codes == (1, 2) and lg.colours[0] == CALC2020.colours[3]
    assert parse_codes("forest=2;water=6") == {"forest": 2, "water": 6}


# --------------------------------------------------------------------------- labels, real data

@pytest.fixture(scope="module")
def nc():
    d = shared_path(*NC)
    grid = read_grid(d / "lsat7_2000_40.tif")  # EPSG:32119; the labels are in EPSG:3358
    truth = label_raster(d / "landsat96_labelled_pixels.tif", grid)
    strata = label_raster(d / "strata.tif", grid)
    return d, grid, truth, strata


def test_labels_from_raster(nc):
    d, grid, truth, strata = nc
    # README: 2,872 labelled pixels; strata.tif counts 1:65099 ... 7:194 (216,626 px).
    assert truth.dtype == np.int32 and truth.shape == grid.shape
    assert int((truth > 0).sum()) == 2872
    assert np.bincount(strata.ravel(), minlength=8)[1:].tolist() == [
        65099, 1433, 23502, 14532, 107643, 4223, 194]


def test_labels_from_polygons_match_labelled_pixels(nc):
    d, grid, truth, _ = nc
    # GRASS rasterised the training polygons with every touched pixel: exact equality then.
    touched = label_raster(d / "landsat96_polygons.shp", grid, "id", all_touched=True)
    assert np.array_equal(touched, truth)
    # Pixel-centre rule: a subset (2,264 of 2,872 px), still every label equal.
    centre = read_labels(d / "landsat96_polygons.shp", grid, "label", legend=NC_LEGEND)
    inside = centre.array > 0
    assert int(inside.sum()) == 2264
    assert np.array_equal(centre.array[inside], truth[inside])
    assert centre.codes["forest"] == 5 and centre.column == "label"


def test_labels_from_points(nc):
    d, grid, truth, strata = nc
    by_id = label_raster(d / "landsat96_points.shp", grid, "id")
    by_name = read_labels(d / "landsat96_points.shp", grid, legend=NC_LEGEND)  # finds "label"
    assert by_name.column == "label"
    assert np.array_equal(by_id, by_name.array)
    m = by_id > 0
    # 1,000 points; some lie outside the raster and a few share a pixel: 883 labelled pixels.
    assert int(m.sum()) == 883
    both = m & (truth > 0)
    assert both.sum() >= 10 and np.array_equal(by_id[both], truth[both])
    # The points are 1996 labels at sub-pixel positions: 92.2 % agree with the 28.5 m map.
    agree = float((by_id[m] == strata[m]).mean())
    assert 0.90 < agree < 0.95


def test_label_errors(nc, tmp_path):
    d, grid, _, _ = nc
    with pytest.raises(UserError, match="available: id, label, b1") as e:
        label_raster(d / "landsat96_points.shp", grid, "klass")
    assert "landsat96_points.shp" in str(e.value)
    far = Grid(grid.crs, Affine(28.5, 0, 1e6, 0, -28.5, 1e6), 50, 50)
    for name in ("landsat96_points.shp", "landsat96_polygons.shp", "strata.tif"):
        with pytest.raises(UserError, match="do not overlap"):
            label_raster(d / name, far)
    empty = write_cog(tmp_path / "empty.tif", np.zeros(grid.shape, np.float32), grid, nodata=0)
    with pytest.raises(UserError, match="no labels"):
        label_raster(empty, grid)
    with pytest.raises(UserError, match="not in the legend"):
        label_raster(d / "landsat96_points.shp", grid, "label", legend=CALC2020)
    junk = tmp_path / "junk.shp"
    junk.write_text("not a shapefile")
    with pytest.raises(UserError, match="junk.shp"):
        label_raster(junk, grid)
