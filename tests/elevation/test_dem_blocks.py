"""The DEM-change product run by blocks of rows and on dask workers equals the one-block run.

Case: a 400 x 360 crop of the real Longyearbyen DEM (as tests/test_dem_change.py), shifted
and noised, 6 m of thinning on glaciers, a 30-row band of glacier voids in REF (so the
hypsometric fill, which needs band medians from all blocks, is exercised), curvature bias on.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from cryokit import cli
from cryokit.core.raster import Grid, TiledWriter, write_cog

from test_dem_change import SHIFT, write_case

RASTERS = ("dh.tif", "dhdt.tif", "tba_coregistered.tif")
# Rasters of a blocked run may differ from the one-block run by float32 rounding only: each
# block's spline coefficients are computed relative to that block's median elevation, which
# moves the float32 rounding by a few ulp (6.1e-5 m at 1000 m); measured 3.1e-4 m.
RASTER_ATOL = 1e-3


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("demblocks")
    write_case(root, voids=slice(100, 130))     # glacier voids across a block edge
    return root


def _run(root, name, *extra):
    out = root / name
    code = cli.main(["dem-change", str(root / "ref_2010.tif"), str(root / "tba_1990.tif"),
                     "-o", str(out), "--ref-date", "2010-08-01", "--tba-date", "1990-08-01",
                     "--glaciers", str(root / "outlines.gpkg"), "--id-column", "RGIId",
                     *extra])
    assert code == 0
    return out, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def one_block(case):
    return _run(case, "one")


def _read(path):
    with rasterio.open(path) as ds:
        prof = dict(ds.profile)
        prof["nodata"] = repr(prof["nodata"])        # NaN != NaN
        return ds.read(), prof, ds.descriptions, ds.units, ds.tags()


def _assert_same_product(a, rep_a, b, rep_b, atol):
    for f in RASTERS:
        xa, pa, da, ua, ta = _read(a / f)
        xb, pb, db, ub, tb = _read(b / f)
        assert (pa, da, ua, ta) == (pb, db, ub, tb), f
        assert np.array_equal(np.isnan(xa), np.isnan(xb)), f
        assert np.nanmax(np.abs(xa - xb)) <= atol, f
    # The fit is global: co-registration identical, curvature-bias bins identical.
    assert rep_a["coregistration"] == rep_b["coregistration"]
    ca, cb = rep_a["curvature_bias"], rep_b["curvature_bias"]
    assert ca["bin_counts"] == cb["bin_counts"] and ca["second"]["counts"] == cb["second"]["counts"]
    assert np.allclose(ca["bin_medians"], cb["bin_medians"], atol=atol)
    for when in ("before", "after"):
        for where in ("stable", "glacier"):
            sa, sb = rep_a["statistics"][when][where], rep_b["statistics"][when][where]
            assert sa["count"] == sb["count"]
            # Medians of values equal to float32 rounding; sums in another order.
            for k in ("mean", "median", "nmad", "std"):
                assert sa[k] == pytest.approx(sb[k], abs=1e-4), (when, where, k)
    assert rep_a["void_filled_pixels"] == rep_b["void_filled_pixels"]
    ta, tb = pd.read_csv(a / "glaciers.csv"), pd.read_csv(b / "glaciers.csv")
    assert list(ta.id) == list(tb.id)
    num = ta.select_dtypes("number").columns
    # Glacier means of pixels equal to float32 rounding (<= 3e-4 m each): 2e-4 m, 1e-4 relative.
    assert np.allclose(ta[num], tb[num], rtol=1e-4, atol=min(atol, 2e-4), equal_nan=True)


@pytest.fixture(scope="module")
def three_blocks(case):
    return _run(case, "three", "--block-rows", "120")


def test_three_blocks_equal_one_block(case, one_block, three_blocks):
    a, rep_a = one_block
    b, rep_b = three_blocks
    assert not [p.name for p in case.iterdir() if p.name.startswith(".")]   # scratch removed
    assert rep_a["blocks"]["count"] == 1 and rep_b["blocks"]["count"] == 3
    assert rep_a["void_filled_pixels"] > 100     # the voids were filled, across blocks
    _assert_same_product(a, rep_a, b, rep_b, RASTER_ATOL)
    # The product is still right: shift to 0.1 m, thinning -6 m within 0.5 m (noise, voids).
    assert rep_b["coregistration"]["shift_x"] == pytest.approx(SHIFT[0], abs=0.1)
    assert rep_b["coregistration"]["shift_y"] == pytest.approx(SHIFT[1], abs=0.1)
    t = pd.read_csv(b / "glaciers.csv")
    big = t[t.area_km2 > 0.5]
    assert len(big) and np.allclose(big.mean_dh_m, -6.0, atol=0.5)


def test_workers_equal_serial(case, one_block, three_blocks):
    a, rep_a = three_blocks
    b, rep_b = _run(case, "workers", "--block-rows", "120", "--workers", "2")
    assert rep_b["blocks"]["count"] == 3 and rep_b["blocks"]["workers"] == 2
    # Same blocks, same code in other processes: bit-identical.
    _assert_same_product(a, rep_a, b, rep_b, 0.0)
    _assert_same_product(one_block[0], one_block[1], b, rep_b, RASTER_ATOL)


def test_workers_and_scheduler_exclusive(case, tmp_path, capsys):
    code = cli.main(["dem-change", str(case / "ref_2010.tif"), str(case / "tba_1990.tif"),
                     "-o", str(tmp_path / "x"), "--ref-date", "2010-08-01", "--tba-date",
                     "1990-08-01", "--glaciers", str(case / "outlines.gpkg"), "--workers", "2",
                     "--scheduler", "tcp://127.0.0.1:1"])
    assert code == 2 and "not both" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_tiled_writer_equals_write_cog(tmp_path):
    g = Grid(CRS.from_epsg(25833), Affine(20, 0, 500000, 0, -20, 8670000), 700, 600)
    a = np.random.default_rng(0).normal(size=(2, 600, 700)).astype(np.float32)
    a[0, 5:50, 7:30] = np.nan
    kw = dict(descriptions=["dh", "mask"], units=["m", "1"], tags={"units": "m", "k": "v"})
    write_cog(tmp_path / "ref.tif", a, g, **kw)
    with TiledWriter(tmp_path / "tiled.tif", g, count=2, **kw) as w:
        for r0 in range(0, 600, 130):                    # blocks that straddle tiles
            w.write(a[:, r0:r0 + 130], r0)
    xa, pa, da, ua, ta = _read(tmp_path / "ref.tif")
    xb, pb, db, ub, tb = _read(tmp_path / "tiled.tif")
    assert np.array_equal(xa, xb, equal_nan=True) and np.array_equal(xb, a, equal_nan=True)
    assert (pa, da, ua, ta) == (pb, db, ub, tb)
    with rasterio.open(tmp_path / "tiled.tif") as ds:
        assert ds.overviews(1) and ds.tags(1)["units"] == "m"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.tif", "tiled.tif"]


def test_tiled_writer_leaves_nothing_on_error(tmp_path):
    g = Grid(None, Affine(1, 0, 0, 0, -1, 10), 10, 10)
    with pytest.raises(ValueError):
        with TiledWriter(tmp_path / "x.tif", g) as w:
            w.write(np.zeros((3, 10), np.float32), 0)
            w.write(np.zeros((3, 9), np.float32), 3)       # wrong width
    assert list(tmp_path.iterdir()) == []
