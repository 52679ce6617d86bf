"""dem-change checked against altimetry points: ICESat-2 ATL06 and ICESat GLAH14 files (written
here in those products' HDF5 layouts) and a point table, on the known-answer Longyearbyen
case, with the points' vertical reference converted to the DEMs'."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer
from scipy import ndimage

from cryokit.cli import main
from cryokit.elevation.altimetry import TOPEX, read_points

from test_dem_change import SHIFT, write_case
from test_dem_geographic import _geoid, _n96

pytestmark = pytest.mark.realdata


def _truth_points(root):
    """Six along-track lines of points over the REF crop: lon, lat, the terrain's height
    (REF's stable terrain is the truth) and whether a point is on a glacier."""
    with rasterio.open(root / "ref_2010.tif") as ds:
        z = ds.read(1).astype(np.float64)
        tr, crs = ds.transform, ds.crs
    h, w = z.shape
    cols = np.concatenate([np.full(400, c) for c in np.linspace(30, w - 30, 6)])
    rows = np.tile(np.linspace(5, h - 6, 400), 6)
    x, y = tr.c + tr.a * (cols + 0.5), tr.f + tr.e * (rows + 0.5)
    height = ndimage.map_coordinates(z, [rows, cols], order=1)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat), height


def _write_atl06(path, lon, lat, h_ell, bad):
    """ATL06 layout: six beams' land_ice_segments; ``bad`` segments get the quality flag 1
    and a cloud return 300 m up; a few get h_li's fill value. Returns the good segments."""
    good = ~bad
    with h5py.File(path, "w") as f:
        f["ancillary_data/atlas_sdp_gps_epoch"] = np.array([1198800018.0])
        for i, (beam, part) in enumerate(zip(("gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"),
                                             np.array_split(np.arange(lon.size), 6))):
            g = f.create_group(f"{beam}/land_ice_segments")
            hl = np.where(bad[part], h_ell[part] + 300.0, h_ell[part]).astype(np.float32)
            hl[::97] = np.float32(3.4028235e38)
            good[part[::97]] = False
            g["latitude"], g["longitude"] = lat[part], lon[part]
            g.create_dataset("h_li", data=hl).attrs["_FillValue"] = np.float32(3.4028235e38)
            g["atl06_quality_summary"] = bad[part].astype(np.int8)
            # 2021-03-01 + a few seconds per beam, seconds since the ATLAS SDP epoch
            g["delta_time"] = 99_792_000.0 + i + np.arange(part.size) * 0.003
    return good


def _write_glah14(path, lon, lat, h_ell):
    """GLAH14 layout: 40 Hz heights above the TOPEX/Poseidon ellipsoid, longitudes 0-360."""
    to_topex = Transformer.from_crs("EPSG:4979", f"{TOPEX} +vunits=m", always_xy=True)
    _, _, h_tp = to_topex.transform(lon, lat, h_ell)
    with h5py.File(path, "w") as f:
        g = f.create_group("Data_40HZ")
        g["Geolocation/d_lat"], g["Geolocation/d_lon"] = lat, np.mod(lon, 360.0)
        g["Elevation_Surfaces/d_elev"] = np.asarray(h_tp)
        use = np.zeros(lon.size, np.int8)
        use[::50] = 1
        g["Quality/elev_use_flg"] = use
        g["Quality/sat_corr_flg"] = np.zeros(lon.size, np.int8)
        g["Elevation_Corrections/d_satElevCorr"] = np.zeros(lon.size)
        g["DS_UTCTime_40"] = 2.5e8 + np.arange(lon.size) / 40.0   # 2007-12-04


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("alt")
    write_case(root)
    geoids = root / "geoids"
    geoids.mkdir()
    _geoid(geoids / "us_nga_egm96_15.tif", _n96)
    lon, lat, height = _truth_points(root)
    n = _n96(lon, lat)              # the DEMs' heights are above this "EGM96"
    bad = np.zeros(lon.size, bool)
    bad[::13] = True
    good = _write_atl06(root / "ATL06_20210301_synthetic.h5", lon, lat, height + n, bad)
    _write_glah14(root / "GLAH14_synthetic.h5", lon, lat, height + n)
    pd.DataFrame({"lon": lon, "lat": lat, "h": height, "date": "2015-07-01",
                  "datum": "EGM96"}).to_csv(root / "points.csv", index=False)
    return root, geoids, bad, good


def _run(root, out, points, *extra):
    assert main(["-q", "dem-change", str(root / "ref_2010.tif"), str(root / "tba_1990.tif"),
                 "-o", str(out), "--ref-date", "2010-08-01", "--tba-date", "1990-08-01",
                 "--glaciers", str(root / "outlines.gpkg"), "--no-curvature-bias",
                 "--ref-vref", "egm96", "--tba-vref", "egm96",
                 *sum((["--reference-points", str(root / p)] for p in points), []),
                 *extra]) == 0
    return json.loads((out / "report.json").read_text())


def test_atl06_glah14_and_a_table_check_the_dems(case, tmp_path, monkeypatch):
    root, geoids, bad, good = case
    monkeypatch.setenv("CRYOKIT_GEOID_DIR", str(geoids))
    rep = _run(root, tmp_path / "o", ["ATL06_20210301_synthetic.h5", "GLAH14_synthetic.h5",
                                      "points.csv"])
    atl, glas, table = rep["reference_points"]
    assert atl["source"] == "ICESat-2 ATL06" and atl["points_read"] == bad.size
    assert atl["points_kept"] == good.sum()
    assert atl["time_range"][0].startswith("2021-03-01")
    assert glas["source"] == "ICESat GLAH14" and glas["time_range"][0].startswith("2007-12-04")
    assert table["time_range"] == ["2015-07-01T00:00:00Z", "2015-07-01T00:00:00Z"]
    for p in (atl, glas, table):
        assert 0 < p["points_on_stable_terrain"] < p["points_in_grid"]   # glaciers left out
        # REF's stable terrain is the truth: no bias once the points are on EGM96 too
        # (the 30 m geoid left unconverted would show whole).
        assert abs(p["ref"]["median"]) < 0.05, p
        assert p["ref"]["nmad"] < 0.2, p
        # TBA before: the -2.5 m offset and the shift on slopes; after: none.
        assert p["tba_before"]["median"] == pytest.approx(-SHIFT[2], abs=0.6), p
        assert abs(p["tba_after"]["median"]) < 0.1, p
        assert p["tba_after"]["nmad"] < 0.6 * p["tba_before"]["nmad"], p
    assert atl["vertical_reference"]["converted"] and glas["vertical_reference"]["converted"]
    assert not table["vertical_reference"]["converted"]       # the table is on EGM96 already
    assert "EGM96" in atl["vertical_reference"]["compared_on"]


def test_points_datum_is_converted_to_the_ellipsoid(case, tmp_path, monkeypatch):
    """DEMs declared on different references are compared on the ellipsoid: the table's
    EGM96 heights go there too."""
    root, geoids, _, _ = case
    monkeypatch.setenv("CRYOKIT_GEOID_DIR", str(geoids))
    rep = _run(root, tmp_path / "o", ["points.csv"], "--tba-vref", "ellipsoid",
               "--coreg", "nuth_kaab")
    p = rep["reference_points"][0]
    assert p["vertical_reference"]["compared_on"] == "WGS84 ellipsoid"
    assert p["vertical_reference"]["converted"]
    assert abs(p["ref"]["median"]) < 0.05, p


def test_readers(case):
    root, _, bad, _ = case
    atl = read_points(str(root / "ATL06_20210301_synthetic.h5"))
    assert atl.vref == "ellipsoid" and atl.crs == "EPSG:4326"
    assert np.all(np.abs(atl.z) < 5000)              # fill values and clouds are out
    glas = read_points(str(root / "GLAH14_synthetic.h5"))
    assert len(glas) == bad.size - len(range(0, bad.size, 50))
    assert glas.x.min() < 180 and glas.x.max() < 180


def test_bad_points_files_exit_2(case, tmp_path, capsys):
    root, _, _, _ = case
    (tmp_path / "nocol.csv").write_text("a,b\n1,2\n")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.arange(3)
    for bad in ("nocol.csv", "other.h5", "missing.h5"):
        code = main(["dem-change", str(root / "ref_2010.tif"), str(root / "tba_1990.tif"),
                     "-o", str(tmp_path / "out"), "--ref-date", "2010-08-01", "--tba-date",
                     "1990-08-01", "--glaciers", str(root / "outlines.gpkg"),
                     "--reference-points", str(tmp_path / bad)])
        err = capsys.readouterr().err
        assert code == 2 and bad in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()
