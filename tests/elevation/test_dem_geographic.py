"""DEMs as users have them: geographic grids (SRTM, Copernicus DEM, FABDEM in degrees) and
named vertical datums (EGM96, EGM2008) through PROJ-style geoid grids, end to end through the
CLI against a known truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from cryokit.cli import main
from cryokit.core.raster import Grid, write_cog
from cryokit.synthetic import make_dem_pair

SHIFT = (9.3, -5.7, 0.0)


def _n96(lon, lat):
    return 30.0 + 0.8 * (lon - 15.5) + 0.5 * (lat - 78.2)


def _n08(lon, lat):
    return _n96(lon, lat) + 0.9 + 0.4 * (lon - 15.5)        # EGM2008 - EGM96: ~1 m here


def _geoid(path, fn):
    """A geoid undulation grid like PROJ's (EPSG:4326, metres), over the test area."""
    lon = np.arange(14.0, 17.0, 0.05) + 0.025
    lat = np.arange(79.0, 77.5, -0.05) - 0.025
    LON, LAT = np.meshgrid(lon, lat)
    from affine import Affine
    g = Grid(rasterio.crs.CRS.from_epsg(4326), Affine(0.05, 0, 14.0, 0, -0.05, 79.0),
             lon.size, lat.size)
    write_cog(path, fn(LON, LAT).astype(np.float32), g, units="m")


def _to_geographic(z, grid, res_deg, path, heights_minus_geoid):
    """``z`` (ellipsoidal heights on ``grid``) warped to EPSG:4326 at ``res_deg`` (lon, lat),
    written as heights above a geoid (H = h - N)."""
    tr, w, h = calculate_default_transform(grid.crs, "EPSG:4326", grid.width, grid.height,
                                           *grid.bounds, resolution=res_deg)
    out = np.full((h, w), np.nan, np.float32)
    reproject(z.astype(np.float32), out, src_transform=grid.transform, src_crs=grid.crs,
              dst_transform=tr, dst_crs="EPSG:4326", src_nodata=np.nan, dst_nodata=np.nan,
              resampling=Resampling.cubic)
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    lon, lat = tr.c + tr.a * cols + tr.b * rows, tr.f + tr.d * cols + tr.e * rows
    write_cog(path, (out - heights_minus_geoid(lon, lat)).astype(np.float32),
              Grid(rasterio.crs.CRS.from_epsg(4326), tr, w, h), units="m")


@pytest.fixture(scope="module")
def srtm_vs_fabdem(tmp_path_factory):
    """REF: a 30 m "FABDEM" above EGM2008; TBA: a 90 m "SRTM" above EGM96 moved by SHIFT;
    both in EPSG:4326 (~1 and ~3 arcsec of latitude) at 78 N."""
    d = tmp_path_factory.mktemp("geo")
    p = make_dem_pair((300, 300), seed=3, shift=SHIFT, noise=0.3, pixel_size=30.0)
    _to_geographic(p.ref, p.grid, (30 / 22800, 30 / 111600), d / "fabdem.tif", _n08)
    _to_geographic(p.tba, p.grid, (90 / 22800, 90 / 111600), d / "srtm.tif", _n96)
    geoids = d / "geoids"
    geoids.mkdir()
    _geoid(geoids / "us_nga_egm96_15.tif", _n96)
    _geoid(geoids / "us_nga_egm08_25.tif", _n08)
    import geopandas as gpd
    from rasterio.features import shapes
    from shapely.geometry import shape

    polys = [shape(g) for g, v in shapes(p.glacier.astype("uint8"), mask=p.glacier,
                                         transform=p.grid.transform) if v == 1]
    gpd.GeoDataFrame(geometry=polys, crs=p.grid.crs).to_file(d / "glaciers.gpkg")
    return p, d, geoids


def _run(d, out, *extra):
    return main(["-q", "dem-change", str(d / "fabdem.tif"), str(d / "srtm.tif"), "-o", str(out),
                 "--ref-date", "2010-08-01", "--tba-date", "2000-02-15", "--glaciers",
                 str(d / "glaciers.gpkg"), *map(str, extra)])


def test_geographic_dems_with_named_datums(srtm_vs_fabdem, tmp_path, monkeypatch):
    p, d, geoids = srtm_vs_fabdem
    monkeypatch.setenv("CRYOKIT_GEOID_DIR", str(geoids))
    out = tmp_path / "named"
    # no vertical-shift step: only the datum conversion can bring the stable median to 0
    assert _run(d, out, "--ref-vref", "egm2008", "--tba-vref", "egm96", "--coreg",
                "nuth_kaab") == 0
    rep = json.loads((out / "report.json").read_text())
    # the coarser DEM in metres (SRTM, 90 m) on REF's UTM zone (33N at 15.5 E)
    assert rep["grid"]["crs"] == "EPSG:32633"
    assert 88 <= rep["grid"]["res_m"][0] == rep["grid"]["res_m"][1] <= 92   # whole metres
    assert "EGM2008" in rep["vertical_reference"] and "EGM96" in rep["vertical_reference"]
    with rasterio.open(out / "dh.tif") as ds:
        assert "EGM96" in ds.tags()["vertical_reference"]
    c = rep["coregistration"]
    # Of 90 m pixels: measured (9.36, -9.72) for (9.3, -5.7). The 4 m in y comes with the data:
    # this terrain sampled on a 90 m geographic grid that does not line up with the 30 m one is
    # smoothed unevenly, and a 30 m -> 90 m -> 30 m round trip alone fits 4.4 m north (45 and
    # 60 m grids: < 0.1 m); the warp's geometry is exact to < 1 m (impulse test).
    assert np.hypot(c["shift_x"] - SHIFT[0], c["shift_y"] - SHIFT[1]) < 6.0
    median = rep["statistics"]["after"]["stable"]["median"]
    assert abs(median) < 0.25, median
    # Nuth & Kaab absorbs a constant vertical offset, so the datums show without any
    # co-registration: left undeclared, dh keeps -(EGM2008 - EGM96), about -1 m here.
    stable = []
    for name, extra in (("declared", ["--ref-vref", "egm2008", "--tba-vref", "egm96"]),
                        ("undeclared", [])):
        assert _run(d, tmp_path / name, "--coreg", "none", "--no-curvature-bias", *extra) == 0
        r = json.loads((tmp_path / name / "report.json").read_text())
        stable.append(r["statistics"]["after"]["stable"]["median"])
    west, _, east, _ = p.grid.bounds_lonlat()
    lon = 0.5 * (west + east)
    expected = -(0.9 + 0.4 * (lon - 15.5))
    assert stable[1] - stable[0] == pytest.approx(expected, abs=0.15), stable


def test_missing_geoid_grid_is_named(srtm_vs_fabdem, tmp_path, monkeypatch, capsys):
    p, d, geoids = srtm_vs_fabdem
    monkeypatch.setenv("CRYOKIT_GEOID_DIR", str(tmp_path / "empty"))
    out = tmp_path / "o"
    assert main(["dem-change", str(d / "fabdem.tif"), str(d / "srtm.tif"), "-o", str(out),
                 "--ref-date", "2010-08-01", "--tba-date", "2000-02-15", "--ref-vref",
                 "egm2008", "--tba-vref", "egm96"]) == 2
    err = capsys.readouterr().err
    assert "us_nga_egm08_25.tif" in err and "projsync" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_out_crs_and_out_res(srtm_vs_fabdem, tmp_path, monkeypatch):
    p, d, geoids = srtm_vs_fabdem
    out = tmp_path / "o"
    assert _run(d, out, "--out-crs", "EPSG:25833", "--out-res", "60", "--coreg", "nuth_kaab",
                "--no-curvature-bias") == 0
    with rasterio.open(out / "dh.tif") as ds:
        assert ds.crs.to_epsg() == 25833 and ds.res == (60.0, 60.0)
    assert main(["dem-change", str(d / "fabdem.tif"), str(d / "srtm.tif"), "-o",
                 str(tmp_path / "g"), "--ref-date", "2010-08-01", "--tba-date", "2000-02-15",
                 "--out-crs", "EPSG:4326"]) == 2
