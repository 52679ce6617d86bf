"""Stable-ground masks from polygons (OGR formats, GMT text) and rasters."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.crs import CRS

from conftest import shared_path
from cryokit.core.errors import UserError
from cryokit.core.raster import Grid, read_grid, write_cog
from cryokit.core.vector import load_mask, polygon_mask, raster_mask, read_polygons

UTM7 = CRS.from_epsg(32607)
YAHTSE = ("velocity", "yahtse_landsat8_2016")
KASKA = ("velocity", "kaskawulsh_glaft_reference")


@pytest.fixture(scope="module")
def yahtse():
    grid = read_grid(shared_path(*YAHTSE, "LC80630182016200LGN00_B8_yahtse.TIF"))
    gmt = shared_path(*YAHTSE, "StEliasMtn_utm7v_rock.gmt")
    return grid, gmt, load_mask(gmt, grid)


@pytest.fixture
def small_grid():
    return Grid(UTM7, Affine(10.0, 0, 500000.0, 0, -10.0, 6700000.0), 40, 30)


def test_rock_gmt_mask_on_yahtse(yahtse):
    grid, gmt, mask = yahtse
    polys, crs = read_polygons(gmt)
    assert len(polys) == 2102 and crs is None  # no CRS header: the image CRS is assumed
    assert mask.shape == grid.shape and mask.dtype == bool
    assert mask.mean() == pytest.approx(0.048, abs=0.003)


@pytest.mark.parametrize("name, driver", [("rock.gpkg", "GPKG"), ("rock.shp", "ESRI Shapefile")])
def test_ogr_formats_give_the_gmt_mask(yahtse, tmp_path, name, driver):
    grid, gmt, mask = yahtse
    polys, _ = read_polygons(gmt)
    gpd.GeoDataFrame(geometry=polys, crs="EPSG:32607").to_file(tmp_path / name, driver=driver)
    assert np.array_equal(load_mask(tmp_path / name, grid), mask)


def test_polygons_in_other_crs_are_reprojected(yahtse, tmp_path):
    grid, gmt, mask = yahtse
    polys, _ = read_polygons(gmt)
    gpd.GeoDataFrame(geometry=polys, crs="EPSG:32607").to_crs("EPSG:4326").to_file(
        tmp_path / "rock.geojson")
    other = polygon_mask(tmp_path / "rock.geojson", grid)
    assert np.mean(other != mask) < 0.002  # only edge pixels differ (straight edges bend)


def test_raster_mask(yahtse, tmp_path):
    grid, _, mask = yahtse
    write_cog(tmp_path / "stable.tif", mask.astype("uint8"), grid, nodata=None)
    assert np.array_equal(load_mask(tmp_path / "stable.tif", grid), mask)
    # Coarser, with nodata: nearest resampling gives about the same share.
    t = grid.transform
    coarse = Grid(grid.crs, Affine(2 * t.a, 0, t.c, 0, 2 * t.e, t.f), grid.width // 2,
                  grid.height // 2)
    values = np.where(mask[:coarse.height * 2:2, :coarse.width * 2:2], 7, 0).astype("uint8")
    values[:10] = 255
    write_cog(tmp_path / "coarse.tif", values, coarse, nodata=255)
    got = raster_mask(tmp_path / "coarse.tif", grid)
    assert not got[:20].any()
    assert got.mean() == pytest.approx(mask.mean(), abs=0.003)


def test_kaskawulsh_bedrock_shapefile():
    grid = read_grid(shared_path(*KASKA, "20180304-20180405_velo-raw_vx.tif"))
    mask = load_mask(shared_path(*KASKA, "bedrock_V2.shp"), grid)
    assert mask.any() and mask.mean() < 0.5


def test_gmt_parser_holes_and_crs(tmp_path, small_grid):
    x0, y0 = 500000.0, 6700000.0
    ring = lambda a, b: [(x0 + a, y0 - a), (x0 + b, y0 - a), (x0 + b, y0 - b), (x0 + a, y0 - b)]
    lines = ["# @VGMT1.0", '# @Jp"+proj=utm +zone=7 +datum=WGS84 +units=m +no_defs"', ">"]
    lines += [f"{x}\t{y}\t0" for x, y in ring(0, 300)] + [">", "# @H"]
    lines += [f"{x} {y}" for x, y in ring(100, 200)]
    (tmp_path / "hole.gmt").write_text("\n".join(lines) + "\n")
    polys, crs = read_polygons(tmp_path / "hole.gmt")
    assert len(polys) == 1 and len(polys[0].interiors) == 1 and crs.to_epsg() == 32607
    mask = load_mask(tmp_path / "hole.gmt", small_grid)
    assert mask[5, 5] and not mask[15, 15] and mask[25, 25] and not mask[5, 35]
    assert mask.sum() == 30 * 30 - 10 * 10


def test_no_overlap_raises(tmp_path, small_grid):
    far = shapely.box(100000, 100000, 101000, 101000)
    gpd.GeoDataFrame(geometry=[far], crs="EPSG:32607").to_file(tmp_path / "far.gpkg")
    with pytest.raises(UserError, match="far.gpkg: stable mask does not overlap the image grid"):
        load_mask(tmp_path / "far.gpkg", small_grid)


@pytest.mark.parametrize("name, content, problem", [
    ("junk.shp", b"\x00\x01garbage\xff" * 50, "not a raster or vector file GDAL can read"),
    ("junk.gmt", b"> \nhello world\n", "line 2 is not 'x y [z]'"),
    ("empty.gpkg", b"", "not a raster or vector file GDAL can read"),
])
def test_unreadable_files_raise(tmp_path, small_grid, name, content, problem):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError) as err:
        load_mask(tmp_path / name, small_grid)
    assert str(err.value) == f"{tmp_path / name}: {problem}" and "\n" not in str(err.value)


def test_missing_and_no_polygons(tmp_path, small_grid):
    with pytest.raises(UserError, match="nope.shp: file not found"):
        load_mask(tmp_path / "nope.shp", small_grid)
    gpd.GeoDataFrame(geometry=[shapely.Point(500100, 6699900)], crs="EPSG:32607").to_file(
        tmp_path / "points.geojson")
    with pytest.raises(UserError, match="points.geojson: has no polygons"):
        load_mask(tmp_path / "points.geojson", small_grid)
