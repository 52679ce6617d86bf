"""Output conventions against the ITS_LIVE reference (Columbia Glacier, EPSG:3413, 120 m):
the real Yahtse pair written on ITS_LIVE's CRS and pixel size, components along the map axes
in ground metres per year (ITS_LIVE: motion_coordinates = map, map_scale_corrected = 1)."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as warp_points

from conftest import shared_path
from cryokit.cli import main


def test_yahtse_on_the_itslive_grid_conventions(tmp_path):
    ref = shared_path("velocity", "columbia_itslive_reference", "crop_ALA_G0120_0000_vx.tif")
    y = shared_path("velocity", "yahtse_landsat8_2016")
    images = [str(y / f"LC8063018201{d}LGN00_B8_yahtse.TIF") for d in ("6200", "6216")]
    rock = str(y / "StEliasMtn_utm7v_rock.gmt")
    native, polar = tmp_path / "utm", tmp_path / "polar"
    for out, extra in ((native, []), (polar, ["--out-crs", "EPSG:3413", "--out-res", "120"])):
        assert main(["-q", "velocity", *images, "-o", str(out), "--stable-mask", rock,
                     "--units", "m/yr", *extra]) == 0
    with rasterio.open(ref) as its, rasterio.open(polar / "vx.tif") as ours:
        assert ours.crs == its.crs and ours.res == its.res == (120.0, 120.0)
        assert its.tags()["vx#units"] == "m/y" and ours.units[0] == "m/yr"
        assert its.tags()["NC_GLOBAL#motion_coordinates"] == ours.tags()["motion_coordinates"] == "map"
        assert its.tags()["vx#map_scale_corrected"] == ours.tags()["map_scale_corrected"] == "1"
        pvx, ptr = ours.read(1), ours.transform
    with rasterio.open(polar / "vy.tif") as ds:
        pvy = ds.read(1)
    # The same ice, sampled at the native nodes: speeds agree (ground metres on both grids;
    # EPSG:3413's scale factor at 60 N is 1.03, which map_scale_corrected removes), and the
    # vectors turn by the angle between UTM 7N's and EPSG:3413's norths (~96 deg here).
    with rasterio.open(native / "vx.tif") as ds:
        nvx, ntr, ncrs = ds.read(1), ds.transform, ds.crs
    with rasterio.open(native / "vy.tif") as ds:
        nvy = ds.read(1)
    rows, cols = np.nonzero(np.hypot(nvx, nvy) > 500)          # fast ice, m/yr
    xs = ntr.c + ntr.a * (cols + 0.5) + ntr.b * (rows + 0.5)
    ys = ntr.f + ntr.d * (cols + 0.5) + ntr.e * (rows + 0.5)
    px, py = warp_points(ncrs, "EPSG:3413", xs, ys)
    inv = ~ptr
    px, py = np.asarray(px), np.asarray(py)
    c, r = inv.c + inv.a * px + inv.b * py, inv.f + inv.d * px + inv.e * py
    r, c = np.floor(r).astype(int), np.floor(c).astype(int)
    inside = (r >= 0) & (r < pvx.shape[0]) & (c >= 0) & (c < pvx.shape[1])
    sp_native = np.hypot(nvx, nvy)[rows, cols][inside]
    sp_polar = np.hypot(pvx, pvy)[r[inside], c[inside]]
    ok = np.isfinite(sp_polar)
    assert ok.sum() > 50
    assert np.median(sp_polar[ok] / sp_native[ok]) == pytest.approx(1.0, abs=0.03)
    a_native = np.arctan2(nvy, nvx)[rows, cols][inside][ok]
    a_polar = np.arctan2(pvy, pvx)[r[inside], c[inside]][ok]
    turn = np.degrees(np.angle(np.median(np.exp(1j * (a_polar - a_native)))))
    # expected: the difference of the two grids' bearings of true north at the scene centre
    lon, lat = -141.40, 60.19
    bearing = []
    for crs in (ncrs, "EPSG:3413"):
        (x0, x1), (y0, y1) = warp_points("EPSG:4326", crs, [lon, lon], [lat, lat + 0.01])
        bearing.append(np.degrees(np.arctan2(x1 - x0, y1 - y0)))
    assert turn == pytest.approx(bearing[0] - bearing[1], abs=0.5)
    rep = json.loads((polar / "report.json").read_text())
    assert rep["output_grid"]["crs"] == "EPSG:3413"
