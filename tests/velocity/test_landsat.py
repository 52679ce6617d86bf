"""Landsat Level-1 scenes as inputs: MTL date-times, the pan band, QA_PIXEL clouds and
SLC-off fill left out; crops dated by the MTL beside them (the real Yahtse pair)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from conftest import shared_path
from cryokit.cli import main
from cryokit.core.raster import Grid, write_cog
from cryokit.synthetic import make_glacier_pair
from cryokit.velocity import landsat

MTL = """GROUP = LANDSAT_METADATA_FILE
  GROUP = PRODUCT_CONTENTS
    LANDSAT_PRODUCT_ID = "{pid}"
    COLLECTION_NUMBER = 02
    FILE_NAME_BAND_8 = "{pid}_B8.TIF"
    FILE_NAME_QUALITY_L1_PIXEL = "{pid}_QA_PIXEL.TIF"
  END_GROUP = PRODUCT_CONTENTS
  GROUP = IMAGE_ATTRIBUTES
    SPACECRAFT_ID = "LANDSAT_7"
    DATE_ACQUIRED = {date}
    SCENE_CENTER_TIME = "{time}"
  END_GROUP = IMAGE_ATTRIBUTES
END_GROUP = LANDSAT_METADATA_FILE
END
"""
CLEAR, CLOUD = 21824, 22280     # QA_PIXEL values: clear land; cloud (bit 3)


def _scene(folder, pid, date, time, img, grid, cloud=None):
    """A Collection 2 Level-1 scene: B8 (DN, 0 = fill), QA_PIXEL at half the resolution."""
    dn = np.where(np.isfinite(img), 1000 + 20000 * np.nan_to_num(img), 0).astype("uint16")
    write_cog(folder / f"{pid}_B8.TIF", dn, grid, nodata=None, dtype="uint16")
    qa = np.full((grid.height // 2, grid.width // 2), CLEAR, "uint16")
    if cloud is not None:
        qa[cloud] = CLOUD
    qgrid = Grid(grid.crs, grid.transform @ Affine.scale(2), grid.width // 2, grid.height // 2)
    write_cog(folder / f"{pid}_QA_PIXEL.TIF", qa, qgrid, nodata=None, dtype="uint16")
    mtl = folder / f"{pid}_MTL.txt"
    mtl.write_text(MTL.format(pid=pid, date=date, time=time))
    return mtl


def test_scene_time_pan_and_masks(tmp_path):
    p = make_glacier_pair((384, 384), seed=2, max_speed_px=4, slc_off=True)
    a = _scene(tmp_path, "LE07_L1TP_063018_20030718_20200915_02_T1", "2003-07-18",
               "20:21:10.5Z", p.ref, p.grid)
    # a cloud over the upper-left of the second scene (QA rows/cols 0..95: 192 px of 15 m)
    b = _scene(tmp_path, "LE07_L1TP_063018_20030803_20200915_02_T1", "2003-08-03",
               "20:21:40.2Z", p.sec, p.grid, cloud=(slice(0, 96), slice(0, 96)))
    out = tmp_path / "v"
    assert main(["-q", "velocity", str(a), str(b), "-o", str(out), "--step", "16",
                 "--search", "12"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["dates"] == ["2003-07-18T20:21:10", "2003-08-03T20:21:40"]
    assert rep["dt_days"] == pytest.approx(16 + 30 / 86400)
    assert [s["spacecraft"] for s in rep["landsat"]] == ["Landsat 7", "Landsat 7"]
    assert "cloud" in rep["landsat"][1]["masked"]
    with rasterio.open(out / "vx.tif") as ds:
        vx = ds.read(1)
    # Nodes whose chip lies in the cloud (0..192 px) are empty; the rest are tracked through
    # the SLC-off gaps.
    assert np.isnan(vx[:8, :8]).all()
    assert np.isfinite(vx[14:, 14:]).mean() > 0.9
    assert not list(tmp_path.glob(".v.cryokit-scratch-*"))   # the masked bands are gone
    # the mask itself
    assert landsat.qa_mask(np.array([CLEAR, CLOUD]), 2).tolist() == [False, True]


def test_series_of_scenes_keeps_masked_bands(tmp_path):
    p = make_glacier_pair((256, 256), seed=1, max_speed_px=3)
    mtls = [_scene(tmp_path, f"LC08_L1TP_063018_2016{md}_20200906_02_T1", f"2016-{md[:2]}-{md[2:]}",
                   "20:37:06.3Z", img, p.grid) for md, img in (("0718", p.ref), ("0803", p.sec))]
    out = tmp_path / "s"
    assert main(["-q", "velocity-series", *map(str, mtls), "-o", str(out), "--step", "16",
                 "--search", "12", "--period", "none"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["pairs"][0]["dates"] == ["2016-07-18T20:37:06", "2016-08-03T20:37:06"]
    assert sorted(f.name for f in (out / "inputs").iterdir()) == [
        "LC08_L1TP_063018_20160718_20200906_02_T1_B8_masked.tif",
        "LC08_L1TP_063018_20160803_20200906_02_T1_B8_masked.tif"]
    assert rep["landsat"][0]["collection"] == 2
    # A pan band replaced by new content with its old file time: masked again, pair redone.
    import os
    pan = tmp_path / "LC08_L1TP_063018_20160803_20200906_02_T1_B8.TIF"
    st = pan.stat()
    with rasterio.open(pan) as ds:
        flipped = np.flipud(ds.read(1))
    write_cog(pan, flipped, p.grid, nodata=None, dtype="uint16")
    os.utime(pan, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert main(["-q", "velocity-series", *map(str, mtls), "-o", str(out), "--step", "16",
                 "--search", "12", "--period", "none"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["computed"] == [rep["pairs"][0]["pair"]]
    import xarray as xr
    with xr.open_zarr(out / "velocity_cube.zarr") as cube:
        assert cube.satellite_img1.values[0] == "Landsat 8"


def test_bad_mtl(tmp_path, capsys):
    bad = tmp_path / "LC08_X_MTL.txt"
    bad.write_text("GROUP = L1_METADATA_FILE\nEND\n")
    good = tmp_path / "LC08_Y_MTL.txt"
    good.write_text(MTL.format(pid="LC08_Y", date="2016-07-18", time="20:37:06Z"))
    for args, needle in (([bad, good], "not a Landsat MTL"), ([good, good], "not beside it")):
        assert main(["velocity", *map(str, args), "-o", str(tmp_path / "o")]) == 2
        assert needle in capsys.readouterr().err
        assert not (tmp_path / "o").exists()


def test_yahtse_crops_take_the_mtl_time():
    """The real Yahtse crops sit beside their scenes' MTL files: 20:37:06 and 20:37:09 UTC."""
    folder = shared_path("velocity", "yahtse_landsat8_2016")
    t = landsat.image_time(folder / "LC80630182016200LGN00_B8_yahtse.TIF")
    assert t.isoformat() == "2016-07-18T20:37:06"
    meta = landsat.read_mtl(folder / "LC80630182016216LGN00_MTL.txt")
    assert landsat.scene_time(meta).isoformat() == "2016-08-03T20:37:09"
