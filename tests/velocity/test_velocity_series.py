"""The optical velocity series: pairs by rule or file, one product per year, the error-weighted
mean, the ITS_LIVE-style cube, resume and failed pairs; the real Kaiserberg orthophoto series."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio

from conftest import raster_grids, shared_path
from cryokit.cli import main
from cryokit.core.raster import write_cog
from cryokit.synthetic import make_glacier_pair
from cryokit.velocity.accuracy import mask_at_nodes, truth_at_nodes

PX, STEP, CHIP = 15.0, 16, 40
# Four yearly Landsat-7 pairs, the last two SLC-off (the scan-line corrector failed in 2003).
YEARS = [(dt.date(1999, 8, 1), dt.date(2000, 7, 26), False, 0.01),
         (dt.date(2000, 8, 10), dt.date(2001, 8, 6), False, 0.012),
         (dt.date(2001, 7, 28), dt.date(2002, 8, 2), True, 0.01),
         (dt.date(2002, 8, 12), dt.date(2003, 8, 9), True, 0.012)]


def write_karakoram(d):
    """Eight images of one valley glacier (same relief and flow, new noise and gaps each
    year), 6 px/yr on the centreline, and a pairs file naming the four yearly pairs: the scene
    of the single-pair accuracy tests (tests/velocity/test_velocity_engine.py)."""
    images, truth, lines = [], {}, ["image1;image2"]
    for t1, t2, slc, noise in YEARS:
        p = make_glacier_pair((768, 768), seed=3, max_speed_px=6, noise=noise, slc_off=slc)
        names = []
        for t, img in ((t1, p.ref), (t2, p.sec)):
            f = d / f"LE07_{t:%Y%m%d}_B8.tif"
            write_cog(f, img, p.grid)
            images.append(f)
            names.append(f.name)
        lines.append(";".join(names))
        truth[(t1, t2)] = p
    (d / "pairs.csv").write_text("\n".join(lines) + "\n")
    write_cog(d / "stable.tif", p.stable.astype("uint8"), p.grid, nodata=None)
    return images, truth


@pytest.fixture(scope="module")
def karakoram(tmp_path_factory):
    d = tmp_path_factory.mktemp("karakoram")
    images, truth = write_karakoram(d)
    return d, images, truth


def _run(d, images, out, *extra):
    return main(["-q", "velocity-series", *map(str, images), "-o", str(out), "--pairs",
                 str(d / "pairs.csv"), "--stable-mask", str(d / "stable.tif"), "--step",
                 str(STEP), "--search", "16", *map(str, extra)])


@pytest.fixture(scope="module")
def series_run(karakoram, tmp_path_factory):
    d, images, truth = karakoram
    out = tmp_path_factory.mktemp("series") / "out"
    assert _run(d, images, out) == 0
    return out, json.loads((out / "report.json").read_text())


def _truth_velocity(p, shape, t1, t2):
    tx, ty = truth_at_nodes(p.dx, p.dy, shape, STEP, CHIP)
    k = PX / (t2 - t1).days * 365.25
    return tx * k, -ty * k          # m/yr, east and north (rows grow southwards)


def test_one_file_per_year_against_truth(karakoram, series_run):
    d, images, truth = karakoram
    out, rep = series_run
    assert [p["period"] for p in rep["periods"]] == ["2000", "2001", "2002", "2003"]
    for per, ((t1, t2), p) in zip(rep["periods"], truth.items()):
        with rasterio.open(out / f"velocity_{per['period']}.tif") as ds:
            assert ds.descriptions[0] == "velocity easting component (m/yr)"
            assert ds.descriptions[4] == "pairs used (count)" and ds.units[3] == "m/yr"
            vx, vy, err, count = ds.read(1), ds.read(2), ds.read(4), ds.read(5)
        tx, ty = _truth_velocity(p, vx.shape, t1, t2)
        ice = mask_at_nodes(p.glacier, vx.shape, STEP, CHIP)
        e = np.hypot(vx - tx, vy - ty)
        # The single-pair figures (tests/velocity/test_velocity_engine.py, the tracker alone):
        # RMSE over all nodes 0.048 px clean, 0.092 px under SLC-off gaps; with the product's
        # stable-ground correction and noise of each year within 10 % of them. In m/yr here
        # (x 15 m x 365.25 / dt).
        limit = (0.11 if p.params["slc_off"] else 0.055) * PX * 365.25 / (t2 - t1).days
        assert np.sqrt(np.nanmean(e ** 2)) <= limit
        assert np.isfinite(vx[ice]).mean() >= 0.9
        assert np.nanmax(count) == 1 and per["pairs"] == [f"{t1:%Y%m%d}_{t2:%Y%m%d}"]
        # The stable-ground error of the year in m/yr, as the Karakoram product states it.
        sg = per["stable_ground"]
        assert sg["units"] == "m/yr" and 0 < sg["nmad"][0] < 0.05 * PX
        assert np.nanmedian(err) > 0


def test_mean_of_the_years_and_its_error(karakoram, series_run):
    d, images, truth = karakoram
    out, rep = series_run
    with rasterio.open(out / "mean_velocity.tif") as ds:
        vx, vy, v, err, count = (ds.read(k) for k in range(1, 6))
    # Each year's truth differs by its pair's length (360-370 days for the same 6 px): the
    # mean's truth is the years' truths weighted as the product weights them (1 / error^2).
    num = den = 0
    years = []
    for per, ((t1, t2), p) in zip(rep["periods"], truth.items()):
        with rasterio.open(out / f"velocity_{per['period']}.tif") as ds:
            w = 1 / ds.read(4).astype(float) ** 2
            yx, yy = ds.read(1), ds.read(2)
        tx, ty = _truth_velocity(p, vx.shape, t1, t2)
        years.append(np.sqrt(np.nanmean(np.hypot(yx - tx, yy - ty) ** 2)))
        num, den = num + w * np.stack([tx, ty]), den + w
    tx, ty = num / den
    ice = mask_at_nodes(p.glacier, vx.shape, STEP, CHIP)
    # The years share their texture and strain, so much of their error is common: the mean
    # is better than the average year (measured 0.83 against 1.04 m/yr; the clean years 0.73
    # and 0.77, the SLC-off years 1.36 and 1.31), not by sqrt(4).
    assert np.sqrt(np.nanmean(np.hypot(vx - tx, vy - ty) ** 2)) <= 0.85 * np.mean(years)
    assert np.nanmedian(count[ice]) == 4
    # Four pairs of similar error: the mean's error about half a pair's.
    with rasterio.open(out / "velocity_2000.tif") as ds:
        e1 = ds.read(4)
    ratio = np.nanmedian(err / e1)
    assert 0.4 < ratio < 0.65, ratio
    assert "1 / v_error^2" in rep["weighting"]


def test_cube_opens_with_xarray_in_the_itslive_layout(series_run):
    import xarray as xr

    out, rep = series_run
    with xr.open_zarr(out / "velocity_cube.zarr") as cube:
        assert cube.v.dims == ("mid_date", "y", "x") and cube.sizes["mid_date"] == 4
        for name in ("vx", "vy", "v", "v_error"):
            assert cube[name].attrs["units"] == "m/yr" and cube[name].attrs["grid_mapping"] == "mapping"
        assert cube["mapping"].attrs["spatial_epsg"] == 32607
        assert cube.v.encoding["chunks"][0] == 4          # whole time series per chunk
        np.testing.assert_allclose(cube.date_dt.values, [360, 361, 370, 362])
        assert str(cube.acquisition_date_img1.values[0])[:10] == "1999-08-01"
        assert cube.mid_date.values[0] == np.datetime64("2000-01-28T00:00:00")
        assert set(cube.satellite_img1.values) == {"Landsat 7"}
        with rasterio.open(out / "velocity_2000.tif") as ds:
            np.testing.assert_allclose(cube.vx.isel(mid_date=0).values, ds.read(1), equal_nan=True)
    with xr.open_dataset(out / "velocity_cube.nc") as nc:
        assert nc.sizes["mid_date"] == 4 and "crs_wkt" in nc["mapping"].attrs
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["acquisition_start"] == "1999-08-01" and meta["acquisition_end"] == "2003-08-09"
    assert "Zarr" in meta["format"] and "NetCDF" in meta["format"]
    assert meta["file_count"] == len([f for f in out.rglob("*") if f.is_file()
                                      and not any(s.startswith(".") for s in f.relative_to(out).parts)])


def test_rerun_resumes_and_a_failed_pair_is_skipped(karakoram, tmp_path):
    d, images, truth = karakoram
    out = tmp_path / "out"
    assert _run(d, images, out, "--period", "none") == 0
    first = json.loads((out / "report.json").read_text())
    assert len(first["computed"]) == 4 and not list(out.glob("velocity_2*.tif"))
    assert _run(d, images, out, "--period", "none") == 0
    again = json.loads((out / "report.json").read_text())
    assert again["computed"] == [] and len(again["skipped"]) == 4
    # A constant image fails its pair; the other pairs and the mean are still made.
    bad = images[-1]
    with rasterio.open(bad) as ds:
        grid_profile = ds.profile
    with rasterio.open(bad, "w", **grid_profile) as ds:
        ds.write(np.ones((1, grid_profile["height"], grid_profile["width"]), np.float32))
    assert _run(d, images, out, "--period", "none") == 1
    rep = json.loads((out / "report.json").read_text())
    assert [f["pair"] for f in rep["failures"]] == ["20020812_20030809"]
    assert "constant image" in rep["failures"][0]["error"]
    assert rep["computed"] == [] and len(rep["pairs"]) == 3
    with rasterio.open(out / "mean_velocity.tif") as ds:
        assert np.nanmax(ds.read(5)) == 3


def test_rules_dates_and_bad_input(karakoram, tmp_path, capsys):
    d, images, truth = karakoram
    first = images[:2]
    out = tmp_path / "a"
    # all-within-DAYS on the dates of the names; --period in days
    assert main(["-q", "velocity-series", *map(str, images[:4]), "-o", str(out), "--pairs",
                 "all-within-400", "--step", "32", "--search", "12", "--period", "400d"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert [p["pair"] for p in rep["pairs"]] == [
        "19990801_20000726", "19990801_20000810", "20000726_20000810", "20000726_20010806",
        "20000810_20010806"]
    assert "no pair has an error layer" in rep["weighting"]
    for args, needle in (
            (["--dates", "2001-01-01"], "gives 1 dates for 2 images"),
            (["--pairs", "all-within-x"], "bad pair mode"),
            (["--period", "month"], "bad period"),
            (["--pairs", str(tmp_path / "nope.csv")], "neither consecutive")):
        code = main(["velocity-series", *map(str, first), "-o", str(tmp_path / "x"), *args])
        assert code == 2
        assert needle in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_kaiserberg_orthophoto_series():
    """The real 1953 / 1970 / 2003 / 2023 orthophotos of the Kaiserberg rock glacier (1 m, strong
    radiometric change) as one series: orientation correlation, the given dates, the stable
    polygon; one product per period and a mean."""
    folder = shared_path("velocity", "kaiserberg_rockglacier_ortho")
    images = [folder / f"{y}_ortho_1m_RG_rend_bw.tif" for y in (1953, 1970, 2003, 2023)]
    import tempfile
    from pathlib import Path

    from cryokit.core.raster import read_grid
    from cryokit.core.vector import load_mask

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "k"
        assert main(["-q", "velocity-series", *map(str, images), "-o", str(out),
                     "--dates", "1953-09-02", "--dates", "1970-09-02", "--dates", "2003-09-01",
                     "--dates", "2023-09-01", "--matcher", "oc", "--stable-mask",
                     str(folder / "Area_outside_rock_glacier.shp")]) == 0
        rep = json.loads((out / "report.json").read_text())
        assert [p["period"] for p in rep["periods"]] == ["1962", "1987", "2013"]
        grid = read_grid(out / "mean_velocity.tif")
        inside = load_mask(str(folder / "Area_inside_rock_glacier.shp"), grid, None)
        outside = load_mask(str(folder / "Area_outside_rock_glacier.shp"), grid, None)
        with rasterio.open(out / "mean_velocity.tif") as ds:
            v = ds.read(3)
        # The rock glacier creeps at centimetres per year; stable ground is an order slower.
        moving, still = np.nanmedian(v[inside]), np.nanmedian(v[outside])
        assert 0.03 < moving < 0.15 and still < moving / 4, (moving, still)
        assert np.isfinite(v[inside]).mean() > 0.8


def test_series_in_wgs84(karakoram, tmp_path):
    """``--out-crs EPSG:4326``: the pairs, the periods, the mean and the cube on one
    geographic grid, the cube's grid mapping latitude_longitude."""
    import xarray as xr

    d, images, truth = karakoram
    out = tmp_path / "geo"
    assert _run(d, images[:4], out, "--pairs", "consecutive", "--out-crs", "EPSG:4326",
                "--period", "none") == 0
    grids = raster_grids(out, 4326)
    assert len(grids) == 1
    with xr.open_zarr(out / "velocity_cube.zarr") as cube:
        assert cube["mapping"].attrs["grid_mapping_name"] == "latitude_longitude"
        assert cube.x.attrs["units"] == "degrees_east"
    with rasterio.open(out / "pairs" / "19990801_20000726" / "vx.tif") as ds:
        assert "true east/north" in ds.tags()["components"]
