"""The ``cryokit sbas`` product: synthetic truth through the CLI, real stacks, user errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from cryokit.cli import main
from cryokit.egms.formats import read_egms
from cryokit.sbas.product import SbasOptions, make_sbas
from cryokit.synthetic.insar import make_insar_stack, write_insar_stack

from conftest import shared_path

REF = (5, 5)   # reference pixel (row, col): coherent ground away from the bowl


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    s = make_insar_stack(shape=(40, 50), n_dates=16, seed=7)
    root = tmp_path_factory.mktemp("sbas")
    paths = write_insar_stack(s, root / "in")
    out = root / "out"
    rc = main(["sbas", *paths, "-o", str(out), "--weight", "coherence", "--reference-pixel",
               str(REF[0]), str(REF[1]), "--min-coherence", "0.5", "--place", "Synthetic"])
    assert rc == 0
    return s, paths, out


def test_points_match_truth(synthetic):
    s, _, out = synthetic
    pts = read_egms(out / "points.csv")
    assert pts.date_columns() == [f"{d:%Y%m%d}" for d in s.dates]
    cols = list(pts.attrs.columns)
    assert cols[:5] == ["pid", "latitude", "longitude", "easting", "northing"]
    assert {"rmse", "temporal_coherence", "mean_velocity", "mean_velocity_std",
            "seasonality"} <= set(cols)
    assert pts.attrs["pid"].str.len().eq(10).all()
    r, c = pts.attrs["line"].to_numpy(), pts.attrs["pixel"].to_numpy()
    truth = s.series_mm - s.series_mm[:, REF[0], REF[1]][:, None, None]
    err = pts.disp - truth[:, r, c].T
    # Done-when on the product: <= 1 mm RMSE (values rounded to 0.01 mm in the CSV)
    assert np.sqrt(np.mean(err ** 2)) <= 1.0
    assert len(pts) > 0.9 * 40 * 50
    # EPSG:3035 coordinates of a UTM 32N scene near 46 N, 9 E: plausible LAEA values
    assert pts.attrs["easting"].between(4.0e6, 4.6e6).all()
    assert pts.attrs["northing"].between(2.3e6, 2.9e6).all()
    pq = pd.read_parquet(out / "points.parquet")
    assert len(pq) == len(pts) and f"{s.dates[-1]:%Y%m%d}" in pq.columns


def test_rasters_cube_and_records(synthetic):
    s, paths, out = synthetic
    with rasterio.open(out / "velocity.tif") as ds:
        assert ds.count == 3 and ds.units[0] == "mm/yr" and "towards the satellite" in ds.descriptions[0]
        v = ds.read(1)
    vt = s.velocity_mm_per_yr - s.velocity_mm_per_yr[REF]
    # a 0.5-yr series: the seasonal term (3 mm) and the atmosphere leak into the slope
    assert np.nanmedian(np.abs(v - vt)) < 5 and np.nanmin(v) < -40
    ds = xr.open_dataset(out / "timeseries.nc")
    assert ds["displacement"].shape == (16, 40, 50) and ds["displacement"].attrs["units"] == "mm"
    assert ds["time"].values[0] == np.datetime64(s.dates[0], "ns")
    # georeferenced: CF grid mapping with the grid's CRS and geotransform, pixel-centre x/y
    assert ds["displacement"].attrs["grid_mapping"] == "spatial_ref"
    assert rasterio.crs.CRS.from_wkt(ds["spatial_ref"].attrs["crs_wkt"]) == s.grid.crs
    gt = [float(v) for v in ds["spatial_ref"].attrs["GeoTransform"].split()]
    assert gt == list(s.grid.transform.to_gdal())
    assert (ds["x"].values[0], ds["y"].values[0]) == s.grid.xy(0, 0)
    ds.close()
    rep = json.loads((out / "report.json").read_text())
    assert rep["reference"]["series"]["row"] == REF[0]
    assert rep["network"]["connected"] and rep["network"]["n_interferograms"] == len(paths)
    assert "fim" in rep["weights"] and "towards the satellite" in rep["sign_convention"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["file_count"] == 8 and meta["place_name"] == "Synthetic"
    assert (out / "stac-item.json").exists() and (out / "quicklook.png").exists()


def test_user_errors(synthetic, tmp_path, capsys):
    s, paths, _ = synthetic
    # drop every pair bridging date 8 -> the network falls in two subsets
    cut = [p for p, (i, j) in zip(paths, s.pairs) if not (i < 8 <= j)]
    assert main(["sbas", *cut, "-o", str(tmp_path / "o")]) == 2
    assert "not connected: 2 subsets" in capsys.readouterr().err
    rep = make_sbas(cut, str(tmp_path / "o2"), SbasOptions(allow_subsets=True,
                                                           reference_rowcol=REF))
    assert rep["network"]["n_components"] == 2 and rep["network"]["subset_reference"]
    noc = tmp_path / "noc"
    noc.mkdir()
    for p in paths[:5]:
        (noc / p.split("/")[-1]).write_bytes(open(p, "rb").read())
    assert main(["sbas", *map(str, noc.glob("*")), "-o", str(tmp_path / "o3"),
                 "--weight", "coherence"]) == 2
    assert "needs a coherence file" in capsys.readouterr().err


def test_mexico_city_product(tmp_path):
    folder = shared_path("insar", "pyrate_cropA_mexico_s1", "geotiffs")
    out = tmp_path / "mx"
    rc = main(["sbas", *map(str, sorted(folder.glob("*_unw.tif"))), "-o", str(out),
               "--dem", str(folder / "cropA_T005A_dem.tif"), "--weight", "coherence"])
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    # fastest 5 % below -150 mm/yr LOS: see tests/test_sbas.py::test_mexico_city_subsidence
    assert rep["velocity"]["p05_mm_per_yr"] < -150
    assert rep["counts"]["points"] > 5000 and rep["temporal_coherence"]["median"] > 0.9
    pts = read_egms(out / "points.csv")
    assert pts.attrs["height"].between(2200, 2500).all()    # Mexico City basin, m


def test_etna_hdf5_product(tmp_path):
    h5 = shared_path("insar", "kfts_etna_envisat_sbas", "Etna_sample.h5")
    lon, lat = (h5.parent / "lon.flt", h5.parent / "lat.flt")
    out = tmp_path / "etna"
    rc = main(["sbas", str(h5), "-o", str(out), "--units", "mm", "--lon", str(lon),
               "--lat", str(lat), "--min-coherence", "0.3", "--wavelength", "0.05623"])
    assert rc == 0
    pts = read_egms(out / "points.csv")
    assert pts.attrs["latitude"].between(37.49, 37.52).all()
    assert pts.attrs["longitude"].between(15.02, 15.05).all()
    assert len(pts.dates) == 61 and len(pts) > 100


@pytest.mark.slow
def test_workers_same_as_serial(synthetic, tmp_path):
    s, paths, out = synthetic
    o2 = tmp_path / "w"
    assert main(["sbas", *paths, "-o", str(o2), "--weight", "coherence", "--reference-pixel",
                 str(REF[0]), str(REF[1]), "--min-coherence", "0.5", "--workers", "2",
                 "--block-rows", "16"]) == 0
    a = xr.open_dataset(out / "timeseries.nc")["displacement"].values
    b = xr.open_dataset(o2 / "timeseries.nc")["displacement"].values
    np.testing.assert_array_equal(a, b)


def test_coherence_found_beside_on_another_grid_is_a_user_error(synthetic, tmp_path, capsys):
    from cryokit.core.raster import Grid, write_cog

    _, paths, _ = synthetic
    folder = tmp_path / "in"
    folder.mkdir()
    for p in paths:
        for src in (p, p.replace("_unw.tif", "_cc.tif")):
            (folder / src.split("/")[-1]).write_bytes(open(src, "rb").read())
    bad = folder / paths[0].split("/")[-1].replace("_unw.tif", "_cc.tif")
    with rasterio.open(bad) as ds:
        g = Grid(ds.crs, ds.transform, ds.width, ds.height // 2)
    write_cog(bad, np.full(g.shape, 0.5, np.float32), g)
    ifgs = sorted(str(p) for p in folder.glob("*_unw.tif"))
    assert main(["sbas", *ifgs, "-o", str(tmp_path / "o"), "--weight", "coherence"]) == 2
    err = capsys.readouterr().err
    assert "coherence is not on the interferograms' grid" in err and bad.name in err
    assert not (tmp_path / "o").exists()
