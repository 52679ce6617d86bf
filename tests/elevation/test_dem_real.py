"""dem-change on the real Longyearbyen pair, as delivered and as a mixed pair of sources.

REF is DEM_1990 as xDEM's accuracy workflow aligned it on the 2009 DEM (its LZD shift: 10.25 m E,
1.91 m N, -1.94 m, plus rotations of ~1e-4 rad), glaciers blanked; TBA is DEM_1990. The mixed
pair gives TBA as another source would: in the next UTM zone (EPSG:32634), nodata 0, and a few
gross errors above the summit height and below sea level."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from cryokit.cli import main

from conftest import shared_path

pytestmark = pytest.mark.realdata

LZD = (10.25, 1.91, -1.94)
D = ("dem", "longyearbyen")


def _run(out, tba, *extra):
    code = main(["-q", "dem-change",
                 str(shared_path(*D, "derived", "aligned_elev_1990_LZD_to_2009_stable_only.tif")),
                 str(tba), "-o", str(out), "--ref-date", "2009-08-01", "--tba-date",
                 "1990-08-01", "--stable-mask",
                 str(shared_path(*D, "derived", "landcover_mask_1990grid_1stable_2glacier.tif")),
                 "--stable-values", "1", *extra])
    assert code == 0
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def as_delivered(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "out"
    return out, _run(out, shared_path(*D, "DEM_1990.tif"))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    d = tmp_path_factory.mktemp("mixed")
    with rasterio.open(shared_path(*D, "DEM_1990.tif")) as src:
        z = src.read(1, masked=True).filled(np.nan).astype(np.float32)
        tr, w, h = calculate_default_transform(src.crs, "EPSG:32634", src.width, src.height,
                                               *src.bounds, resolution=20.0)
        out = np.full((h, w), np.nan, np.float32)
        reproject(z, out, src_transform=src.transform, src_crs=src.crs, dst_transform=tr,
                  dst_crs="EPSG:32634", src_nodata=np.nan, dst_nodata=np.nan,
                  resampling=Resampling.cubic)
    valid = np.flatnonzero(np.isfinite(out))
    rng = np.random.default_rng(7)
    spikes = rng.choice(valid, 400, replace=False)
    out.flat[spikes[:300]] = 2500.0            # above the summits (about 1 100 m)
    out.flat[spikes[300:]] = -400.0            # pits below sea level
    out = np.where(np.isfinite(out), out, 0.0)  # nodata 0, as some sources write it
    path = d / "tba_utm34_nodata0.tif"
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32",
                       crs="EPSG:32634", transform=tr, nodata=0.0, compress="deflate") as dst:
        dst.write(out, 1)
    res = d / "out"
    return res, _run(res, path)


def test_real_pair_as_delivered(as_delivered):
    out, rep = as_delivered
    c = rep["coregistration"]
    # Measured (10.49, 1.76, -1.95): LZD also fits rotations, which a translation absorbs.
    assert np.hypot(c["shift_x"] - LZD[0], c["shift_y"] - LZD[1]) < 0.5, c
    assert c["shift_z"] == pytest.approx(LZD[2], abs=0.2)
    st = rep["statistics"]["after"]["stable"]
    assert abs(st["median"]) < 0.05 and st["nmad"] < 1.4, st
    chain = rep["correction_chain"]
    assert [s["step"] for s in chain][:3] == ["input", "NuthKaab", "VerticalShift"]
    assert abs(chain[0]["median"]) > 1.0                # the 1.94 m offset is there at first
    assert chain[-1]["median"] == pytest.approx(st["median"], abs=1e-6)
    assert chain[-1]["nmad"] == pytest.approx(st["nmad"], rel=1e-6)
    # The record states what the final dh says.
    meta = json.loads((out / "metadata.json").read_text())
    # the altitude range is REF's over the grid (the blanked glaciers excluded)
    alt = meta["altitude_range"]
    with rasterio.open(shared_path(*D, "derived",
                                   "aligned_elev_1990_LZD_to_2009_stable_only.tif")) as ds:
        z = ds.read(1, masked=True)
    assert alt["low"] == pytest.approx(float(z.min()), abs=0.01)
    assert alt["high"] == pytest.approx(float(z.max()), abs=0.01) and alt["units"] == "m"
    text = json.dumps(meta)
    assert f"median {st['median']:.2f} m" in text and f"NMAD {st['nmad']:.2f} m" in text
    # The mask's class 2 (glaciers) is blanked in REF: no glacier pixel, statistics null.
    assert rep["statistics"]["after"]["glacier"]["count"] == 0
    assert rep["statistics"]["after"]["glacier"]["median"] is None


def test_mixed_sources_give_the_same_answer(as_delivered, mixed):
    _, rep_a = as_delivered
    out, rep = mixed
    assert rep["grid"]["crs"] == "EPSG:32633"           # REF's grid (pixel sizes equal)
    b = rep["blunders"]
    # 400 gross errors: those on stable terrain are left out, and only they (a few pixels
    # around them go with the cubic resampling onto REF's grid).
    assert 250 <= b["blunder_px"] <= 400 * 9, b
    st, st_a = rep["statistics"]["after"]["stable"], rep_a["statistics"]["after"]["stable"]
    assert abs(st["median"]) < 0.05, st
    assert st["nmad"] < 1.1 * st_a["nmad"], (st, st_a)
    c, c_a = rep["coregistration"], rep_a["coregistration"]
    assert np.hypot(c["shift_x"] - c_a["shift_x"], c["shift_y"] - c_a["shift_y"]) < 0.5
    assert rep["correction_chain"][-1]["median"] == pytest.approx(st["median"], abs=1e-6)
