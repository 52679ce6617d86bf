"""Sentinel-1 SAFE products through sar-velocity: reading, orbit geometry, geocoding, end to end.

The annotation (orbit, geolocation grid, sensing times) is that of a real GRDH product; the
checks of geometry and geolocation compare cryokit's orbit computations and sarsen's
terrain correction with ESA's own geolocation grid in that annotation.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from cryokit.cli import app, main
from cryokit.velocity import orbit, s1

import s1_fixture as fx
from s1_fixture import s1_pair  # noqa: F401  (the fixture)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_describe_reads_the_annotation(s1_pair):
    a = s1.describe(s1_pair["first"])
    assert (a["mission"], a["mode"], a["product_type"], a["polarisation"]) == \
        ("Sentinel-1B", "IW", "GRD", "VV")
    assert (a["pass"], a["relative_orbit"]) == ("descending", 168)
    assert a["start"].isoformat() == "2021-04-01T05:26:23.794457"
    assert abs((a["stop"] - a["start"]).total_seconds() - 24.999) < 1e-3
    b = s1.describe(s1_pair["second"])            # the zip, 12 days later
    assert (b["start"] - a["start"]).days == 12 and s1.is_product(s1_pair["second"])


def test_orbit_geometry_matches_the_geolocation_grid(s1_pair):
    """Incidence angle and zero-Doppler time at an ESA geolocation grid point, computed from the
    state vectors alone, agree with the values ESA wrote for that point."""
    gcp = s1_pair["gcp"]
    i, j = 4, 10                                   # line 8012, pixel 12900
    lat, lon, h = (float(gcp[v][i, j]) for v in ("latitude", "longitude", "height"))
    orb = s1._open(s1_pair["first"], "IW/VV/orbit")
    t = orb.azimuth_time.values
    g = orbit.view_geometry((t - t[0]) / np.timedelta64(1, "s"), orb.position.values.T,
                            orb.velocity.values.T, lon, lat, h)
    assert abs(g["incidence_deg"] - float(gcp.incidenceAngle[i, j])) < 0.05
    t_gcp = (gcp.azimuth_time.values[i] - t[0]) / np.timedelta64(1, "s")
    assert abs(g["time_s"] - t_gcp) < 2e-3        # 2 ms: about one line
    assert g["look"] == "right"
    # Along-track direction of the grid's lines (true bearing) vs the orbit's heading.
    from pyproj import Geod
    bearing = Geod(ellps="WGS84").inv(float(gcp.longitude[i - 1, j]), float(gcp.latitude[i - 1, j]),
                                      float(gcp.longitude[i + 1, j]), float(gcp.latitude[i + 1, j]))[0]
    assert abs((g["heading_deg"] - bearing + 180) % 360 - 180) < 0.5
    assert abs((g["look_bearing_deg"] - g["heading_deg"]) % 360 - 90) < 0.5


def test_point_target_lands_on_its_geolocation_grid_point(tmp_path, monkeypatch):
    """A bright target at an ESA geolocation grid point (line 8012, pixel 12900), geocoded on a
    flat DEM at that point's height, lands within one 10 m pixel of its latitude/longitude."""
    import xarray as xr
    from pyproj import Transformer
    from rasterio.transform import from_origin

    monkeypatch.setattr(fx, "WINDOW", (7700, 12500, 768))
    safe = fx.unpack(tmp_path)
    gcp = xr.open_dataset(safe, engine="sentinel-1", group="IW/VV/gcp")
    lat, lon, h = (float(gcp[v][4, 10]) for v in ("latitude", "longitude", "height"))
    img = np.full((768, 768), 100.0)
    r, c = 8012 - 7700, 12900 - 12500
    img[r - 1:r + 2, c - 1:c + 2] = [[2000, 4000, 2000], [4000, 20000, 4000], [2000, 4000, 2000]]
    fx.write_measurement(safe, img)
    x, y = Transformer.from_crs(4326, 32632, always_xy=True).transform(lon, lat)
    dem = tmp_path / "dem.tif"
    with rasterio.open(dem, "w", driver="GTiff", width=300, height=300, count=1, dtype="float32",
                       crs="EPSG:32632",
                       transform=from_origin(round(x) - 1500, round(y) + 1500, 10, 10)) as ds:
        ds.write(np.full((300, 300), h, "float32"), 1)
    info = s1.geocode(safe, dem, tmp_path / "geo.tif")
    assert not info["calibrated"]
    with rasterio.open(tmp_path / "geo.tif") as ds:
        a, t = ds.read(1), ds.transform
        assert ds.tags()["ACQUISITION_DATE"].startswith("2021-04-01T05:26:36")
    rr, cc = np.unravel_index(np.nanargmax(a), a.shape)
    err = np.hypot(t.c + 10 * (cc + 0.5) - x, t.f - 10 * (rr + 0.5) - y)
    assert err < 10.0


def _pair_values(out):
    name = "20210401_20210413"
    rng = rasterio.open(out / "pairs" / f"{name}.real.tif").read(1)
    az = rasterio.open(out / "pairs" / f"{name}.imag.tif").read(1)
    h, w = rng.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r_m = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) * 160   # node spacing 160 m
    return rng, az, r_m < 400, r_m > 1500


def test_sar_velocity_on_safe_products_end_to_end(s1_pair, tmp_path):
    """Two products (a SAFE folder and a zip) through the CLI: a disc moved 2.5 GRD pixels in
    range and -1.5 lines in azimuth comes out as 25 m and -15 m (10 m ground-range pixels; lines
    10.0-10.14 m apart on the ground here), still ground as zero."""
    out = tmp_path / "out"
    res = _run("sar-velocity", s1_pair["first"], s1_pair["second"], "--dem", s1_pair["dem"],
               "--no-offset-model", "-o", out)
    assert res.exit_code == 0, res.output
    rng, az, disc, still = _pair_values(out)
    assert abs(np.nanmedian(rng[disc]) - 25.0) < 0.3
    assert abs(np.nanmedian(az[disc]) + 15.1) < 0.3
    assert np.nanmax(np.abs(rng[still])) < 0.2 and np.nanmax(np.abs(az[still])) < 0.2
    rep = json.loads((out / "report.json").read_text())
    assert rep["geometry"]["look"] == "right"
    assert abs(rep["heading_deg"] + 171.29) < 0.05           # grid bearing in UTM 32N
    assert abs(rep["sentinel1"][0]["heading_true_deg"] + 170.10) < 0.05
    assert [g["product"][17:32] for g in rep["sentinel1"]] == ["20210401T052623", "20210413T052623"]
    assert rep["images"][0]["date"] == "2021-04-01T05:26:23"
    item = json.loads((out / "stac-item.json").read_text())
    props = item["properties"]
    assert props["sar:polarizations"] == ["VV"] and props["sat:orbit_state"] == "descending"
    assert props["sat:relative_orbit"] == 168 and 38 < props["view:incidence_angle"] < 40
    assert any("sar/" in e for e in item["stac_extensions"])
    assert sorted(p.name for p in (out / "inputs").iterdir()) == [
        f"{fx.NAME}_VV_sigma0.tif",
        f"{fx.NAME.replace('20210401', '20210413')}_VV_sigma0.tif"]
    # A re-run resumes: the geocoded images and the pair are kept.
    stamp = (out / "inputs" / f"{fx.NAME}_VV_sigma0.tif").stat().st_mtime_ns
    res = _run("sar-velocity", s1_pair["first"], s1_pair["second"], "--dem", s1_pair["dem"],
               "--no-offset-model", "-o", out)
    assert res.exit_code == 0, res.output
    assert (out / "inputs" / f"{fx.NAME}_VV_sigma0.tif").stat().st_mtime_ns == stamp
    assert json.loads((out / "report.json").read_text())["computed"] == []


def test_offset_model_keeps_the_motion(s1_pair, tmp_path):
    """With the orbit/terrain model fitted on the still ground (the default), the disc keeps its
    motion and the still ground stays at zero."""
    out = tmp_path / "out"
    res = _run("sar-velocity", s1_pair["first"], s1_pair["second"], "--dem", s1_pair["dem"],
               "-o", out, "--out-crs", "EPSG:4326")
    assert res.exit_code == 0, res.output
    with rasterio.open(out / "mean_velocity.tif") as ds:
        assert ds.crs.to_epsg() == 4326
        speed = ds.read(1)
    assert abs(np.nanmax(speed) - np.hypot(25.0, 15.1) / 12) < 0.1     # m/d
    rep = json.loads((out / "report.json").read_text())
    assert max(rep["stable_nmad_px_median"]) < 0.1


@pytest.mark.parametrize("case", ["no_dem", "mixed", "no_manifest", "other_track", "pol"])
def test_bad_sentinel1_inputs_exit_2(s1_pair, tmp_path, case, capsys):
    first, second, dem = s1_pair["first"], s1_pair["second"], s1_pair["dem"]
    args = [first, second, "--dem", dem]
    if case == "no_dem":
        args = [first, second]
    elif case == "mixed":
        args = [first, dem, "--dem", dem]
    elif case == "no_manifest":
        broken = tmp_path / first.name
        shutil.copytree(first / "annotation", broken / "annotation")
        args = [broken, second, "--dem", dem]
    elif case == "other_track":
        other = tmp_path / first.name
        shutil.copytree(first, other, ignore=shutil.ignore_patterns("measurement"))
        m = other / "manifest.safe"
        m.write_text(m.read_text().replace("<safe:relativeOrbitNumber type=\"start\">168",
                                           "<safe:relativeOrbitNumber type=\"start\">117"))
        args = [other, second, "--dem", dem]
    else:
        args += ["--polarisation", "HH"]
    out = tmp_path / "out"
    capsys.readouterr()
    rc = main(["-q", "sar-velocity", *map(str, args), "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("cryokit: error: ") and len(err.splitlines()) == 1, err
    assert not (out / "pairs").exists()


def test_geographic_dem_is_warped_to_its_utm_zone(s1_pair, tmp_path):
    """A DEM in EPSG:4326 (as Copernicus GLO-30 comes) gives the products a UTM 32N grid in
    whole metres; the motion comes out as on a projected DEM."""
    from cryokit.core.raster import Grid, grid_in_crs, read_grid, reproject_band, write_cog

    src = read_grid(s1_pair["dem"])
    g = grid_in_crs(src, "EPSG:4326")
    geo = Grid(g.crs, g.transform, g.width, g.height)
    write_cog(tmp_path / "dem_wgs84.tif", reproject_band(s1_pair["dem"], geo), geo, units="m")
    out = tmp_path / "out"
    res = _run("sar-velocity", s1_pair["first"], s1_pair["second"], "--dem",
               tmp_path / "dem_wgs84.tif", "--no-offset-model", "-o", out)
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["grid"]["crs"] == "EPSG:32632"
    assert (out / "inputs" / "dem_32632.tif").exists()
    with rasterio.open(out / "inputs" / "dem_32632.tif") as ds:
        assert ds.res[0] == round(ds.res[0])
    rng, az, disc, still = _pair_values(out)
    assert abs(np.nanmedian(rng[disc]) - 25.0) < 0.5
    assert abs(np.nanmedian(az[disc]) + 15.1) < 0.5
