"""Product layer: metadata record, STAC Item, file count and size of the finished directory."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pystac
import pytest
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from cryokit.core.records import (METADATA_NAME, STAC_NAME, footprint_lonlat, metadata_record,
                                  product_files, stac_item, write_records)
from cryokit.core.raster import Grid, write_cog

# 10 km x 8 km in UTM 33N near Ny-Alesund (Svalbard): far north, so edges are curved in lon/lat
GRID = Grid(CRS.from_epsg(32633), Affine(20.0, 0, 430000.0, 0, -20.0, 8765000.0), 500, 400)
START, END = dt.date(2021, 1, 1), dt.date(2021, 12, 31)
RECORD = dict(title="Kongsvegen velocity 2021", abstract="Mean glacier speed.",
              source="Sentinel-1 IW GRD", method="offset tracking, 256 px chips",
              quality={"stable_nmad_m_per_d": np.float32(0.05)}, place="Kongsvegen, Svalbard",
              temporal_resolution="12 days", keywords=("glacier velocity",))


def _lonlat_extremes(grid: Grid, n: int = 2001) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the grid outline sampled densely with pyproj."""
    left, bottom, right, top = grid.bounds
    s = np.linspace(0, 1, n)
    xs = np.concatenate([left + s * (right - left), np.full(n, right), left + s * (right - left),
                         np.full(n, left)])
    ys = np.concatenate([np.full(n, bottom), bottom + s * (top - bottom), np.full(n, top),
                         bottom + s * (top - bottom)])
    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(xs, ys)
    return lon.min(), lat.min(), lon.max(), lat.max()


@pytest.fixture
def product(tmp_path):
    """A small finished product directory: two COGs, a PNG and a CSV."""
    rng = np.random.default_rng(0)
    speed = rng.random(GRID.shape, dtype=np.float32)
    speed[:10, :10] = np.nan
    write_cog(tmp_path / "speed.tif", speed, GRID, descriptions=["speed"], units="m/d")
    write_cog(tmp_path / "vxvy.tif", np.stack([speed, -speed]), GRID,
              descriptions=["vx (easting)", "vy (northing)"], units=["m/d", "m/d"])
    (tmp_path / "quicklook.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (tmp_path / "points.csv").write_text("x,y\n1,2\n")
    return tmp_path


def test_bbox_matches_pyproj_degrees(tmp_path):
    rec = metadata_record(tmp_path, grid=GRID, start=START, end=END, **RECORD)
    west, south, east, north = _lonlat_extremes(GRID)
    bbox = rec["bbox"]
    assert bbox["west"] == pytest.approx(west, abs=1e-6)
    assert bbox["east"] == pytest.approx(east, abs=1e-6)
    assert bbox["south"] == pytest.approx(south, abs=1e-6)
    assert bbox["north"] == pytest.approx(north, abs=1e-6)
    assert 11.0 < bbox["west"] < bbox["east"] < 13.5 and 78.8 < bbox["south"] < bbox["north"] < 79.1


def test_record_fields(product):
    rec = metadata_record(product, grid=GRID, start=START, end=dt.datetime(2021, 12, 31, 18, 30),
                          altitude_range=(12.5, 840.0), **RECORD)
    assert rec["title"] == {"en": "Kongsvegen velocity 2021"}
    assert rec["acquisition_start"] == "2021-01-01"
    assert rec["acquisition_end"] == "2021-12-31T18:30:00Z"
    assert rec["spatial_resolution"] == {"x": 20.0, "y": 20.0, "units": "metre"}
    assert rec["coordinate_system"]["epsg"] == 32633
    assert "UTM zone 33N" in rec["coordinate_system"]["name"]
    assert rec["projection"].startswith("UTM zone 33N")
    assert rec["altitude_range"] == {"low": 12.5, "high": 840.0, "units": "m"}
    assert "Cloud-optimised GeoTIFF" in rec["format"] and "CSV" in rec["format"]
    assert rec["units"] == {"speed": "m/d", "vx (easting)": "m/d", "vy (northing)": "m/d"}
    assert "float32" in rec["usage_note"] and "m/d" in rec["usage_note"]
    assert rec["thumbnail"] == "quicklook.png"
    assert {"glacier velocity", "Kongsvegen, Svalbard", "2021"} <= set(rec["keywords"])
    assert rec["licence"] == "CC-BY-4.0"


def test_thumbnail_absent_is_null(tmp_path):
    rec = metadata_record(tmp_path, grid=GRID, start=START, end=END, **RECORD)
    assert rec["thumbnail"] is None and rec["file_count"] == 0


def test_count_and_size_include_the_records(product):
    rec, _ = write_records(product, item_id="kongsvegen-2021", grid=GRID, start=START, end=END,
                           **RECORD)
    on_disk = [p for p in product.rglob("*") if p.is_file()]
    assert {p.name for p in on_disk} >= {METADATA_NAME, STAC_NAME}
    written = json.loads((product / METADATA_NAME).read_text())
    assert written["file_count"] == len(on_disk) == 6
    assert written["total_size_bytes"] == sum(p.stat().st_size for p in on_disk)
    assert written["quality"]["stable_nmad_m_per_d"] == pytest.approx(0.05)
    assert written == json.loads(json.dumps(rec, default=float))


def test_rewrite_is_stable(product):
    """Writing twice (re-run over an existing product) gives the same, still exact, record."""
    kw = dict(item_id="k", grid=GRID, start=START, end=END, **RECORD)
    write_records(product, **kw)
    rec, _ = write_records(product, **kw)
    assert rec["total_size_bytes"] == sum(s for _, s in product_files(product))


def test_hidden_temporaries_not_listed(product):
    (product / ".speed.abc.tmp.tif").write_bytes(b"partial")
    assert all(not rel.startswith(".") for rel, _ in product_files(product))


def test_stac_roundtrip(product):
    write_records(product, item_id="kongsvegen-2021", grid=GRID, start=START, end=END, **RECORD)
    item = pystac.Item.from_file(str(product / STAC_NAME))
    assert item.id == "kongsvegen-2021"
    props = item.properties
    assert props["proj:code"] == "EPSG:32633"
    assert props["proj:shape"] == [400, 500]
    assert props["proj:transform"] == [20.0, 0.0, 430000.0, 0.0, -20.0, 8765000.0]
    assert props["gsd"] == 20.0
    assert item.datetime is None
    assert item.common_metadata.start_datetime == dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)
    assert item.common_metadata.end_datetime == dt.datetime(2021, 12, 31, 23, 59, 59,
                                                            tzinfo=dt.timezone.utc)
    assert props["license"] == "CC-BY-4.0" and props["title"] == RECORD["title"]
    types = {a.href: a.media_type for a in item.assets.values()}
    assert types == {"speed.tif": pystac.MediaType.COG, "vxvy.tif": pystac.MediaType.COG,
                     "quicklook.png": pystac.MediaType.PNG, "points.csv": "text/csv",
                     METADATA_NAME: pystac.MediaType.JSON}
    roles = {a.href: a.roles for a in item.assets.values()}
    assert roles["quicklook.png"] == ["thumbnail"] and roles[METADATA_NAME] == ["metadata"]
    assert roles["speed.tif"] == ["data"]
    bands = item.assets["vxvy"].extra_fields["raster:bands"]
    assert [b["unit"] for b in bands] == ["m/d", "m/d"]
    assert bands[1]["description"] == "vy (northing)" and bands[0]["nodata"] == "nan"
    # relative hrefs resolve next to the item file
    assert item.assets["speed"].get_absolute_href() == str(product / "speed.tif")


def test_stac_geometry_and_bbox(tmp_path):
    item = stac_item(tmp_path, item_id="x", grid=GRID, start=START, end=END)
    ring = np.array(item.geometry["coordinates"][0])
    assert ring.shape == (81, 2) and np.array_equal(ring[0], ring[-1])
    west, south, east, north = _lonlat_extremes(GRID)
    assert ring[:, 0].min() == pytest.approx(west, abs=1e-6)
    assert ring[:, 1].max() == pytest.approx(north, abs=1e-6)
    # counter-clockwise (GeoJSON right-hand rule): positive shoelace area
    x, y = ring[:, 0], ring[:, 1]
    assert np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) > 0
    assert item.bbox == pytest.approx([west, south, east, north], abs=1e-6)
    corner = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(
        GRID.bounds[0], GRID.bounds[1])  # ring starts at the lower-left corner
    assert footprint_lonlat(GRID, densify=2)[0] == pytest.approx(list(corner), abs=1e-7)
    assert len(footprint_lonlat(GRID, densify=2)) == 5


def test_stac_single_date_and_options(tmp_path):
    (tmp_path / "dem.png").write_bytes(b"x")
    t = dt.datetime(2016, 3, 1, 20, 15)
    item = stac_item(tmp_path, item_id="x", grid=GRID, start=t, end=t,
                     asset_roles={"dem.png": ["overview", "visual"]}, properties={"platform": "l8"})
    assert item.datetime == dt.datetime(2016, 3, 1, 20, 15, tzinfo=dt.timezone.utc)
    assert item.assets["dem"].roles == ["overview", "visual"]
    assert item.properties["platform"] == "l8"
    with pytest.raises(ValueError):
        stac_item(tmp_path, item_id="x", grid=GRID, start=END, end=START)
