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
import typer
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.windows import Window
from scipy import ndimage

from cryokit import cli
from cryokit.commands import dem
from cryokit.raster import Grid, TiledWriter, write_cog

from conftest import shared_path

SHIFT = (9.3, -5.7, -2.5)
RASTERS = ("dh.tif", "dhdt.tif", "tba_coregistered.tif")
# Rasters of a blocked run may differ from the one-block run by float32 rounding only: each
# block's spline coefficients are computed relative to that block's median elevation, which
# moves the float32 rounding by a few ulp (6.1e-5 m at 1000 m); measured 3.1e-4 m.
RASTER_ATOL = 1e-3


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    dem_path = shared_path("dem", "longyearbyen", "DEM_1990.tif")
    mask_path = shared_path("dem", "longyearbyen", "derived",
                            "landcover_mask_1990grid_1stable_2glacier.tif")
    win = Window(500, 300, 400, 360)
    with rasterio.open(dem_path) as ds:
        z = ds.read(1, window=win, masked=True).filled(np.nan).astype(np.float64)
        prof = ds.profile | {"width": win.width, "height": win.height, "nodata": np.nan,
                             "transform": ds.window_transform(win), "dtype": "float32",
                             "compress": "deflate"}
    with rasterio.open(mask_path) as ds:
        glacier = ds.read(1, window=win) == 2
    res = prof["transform"].a
    moved = ndimage.shift(z, (SHIFT[1] / res, -SHIFT[0] / res), order=3, mode="nearest")
    tba = moved - SHIFT[2] + np.random.default_rng(0).normal(0, 0.5, z.shape)
    ref = z + np.where(glacier, -6.0, 0.0)
    ref[100:130] = np.where(glacier[100:130], np.nan, ref[100:130])   # voids across a block edge
    root = tmp_path_factory.mktemp("demblocks")
    for name, arr in (("ref_2010.tif", ref), ("tba_1990.tif", tba)):
        with rasterio.open(root / name, "w", **prof) as dst:
            dst.write(arr.astype(np.float32), 1)
    import geopandas as gpd
    from shapely.geometry import shape
    polys = [shape(g) for g, v in shapes(glacier.astype("uint8"), mask=glacier,
                                         transform=prof["transform"]) if v == 1]
    polys = [p for p in polys if p.area > 50 * res * res]
    gpd.GeoDataFrame({"RGIId": [f"G{i:03d}" for i in range(len(polys))]}, geometry=polys,
                     crs=prof["crs"]).to_file(root / "outlines.gpkg")
    return root


def _app():
    # The dem-change command of cryokit.commands.dem behind cli.main's error handling
    # (cli.py registers its own copy until it switches to commands.dem).
    app = typer.Typer()

    @app.callback()
    def _root():
        pass

    dem.register(app)
    return app


def _run(root, name, monkeypatch, *extra):
    monkeypatch.setattr(cli, "app", _app())
    out = root / name
    code = cli.main(["dem-change", str(root / "ref_2010.tif"), str(root / "tba_1990.tif"),
                     "-o", str(out), "--ref-date", "2010-08-01", "--tba-date", "1990-08-01",
                     "--glaciers", str(root / "outlines.gpkg"), "--id-column", "RGIId",
                     *extra])
    assert code == 0
    return out, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def one_block(case):
    mp = pytest.MonkeyPatch()
    try:
        yield _run(case, "one", mp)
    finally:
        mp.undo()


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
    mp = pytest.MonkeyPatch()
    try:
        yield _run(case, "three", mp, "--block-rows", "120")
    finally:
        mp.undo()


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


def test_workers_equal_serial(case, one_block, three_blocks, monkeypatch):
    a, rep_a = three_blocks
    b, rep_b = _run(case, "workers", monkeypatch, "--block-rows", "120", "--workers", "2")
    assert rep_b["blocks"]["count"] == 3 and rep_b["blocks"]["workers"] == 2
    # Same blocks, same code in other processes: bit-identical.
    _assert_same_product(a, rep_a, b, rep_b, 0.0)
    _assert_same_product(one_block[0], one_block[1], b, rep_b, RASTER_ATOL)


def test_workers_and_scheduler_exclusive(case, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "app", _app())
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
