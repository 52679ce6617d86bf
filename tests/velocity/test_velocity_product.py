"""The velocity product end to end: files, CLI, bad input, real Yahtse pair, tiles and dask."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from conftest import shared_path
from cryokit.cli import main
from cryokit.core.raster import Grid, write_cog
from cryokit.synthetic import make_glacier_pair
from cryokit.velocity.accuracy import mask_at_nodes, truth_at_nodes
from cryokit.velocity.product import VelocityOptions, make_velocity
from cryokit.velocity.track import TrackParams

PRODUCT_FILES = {"vx.tif", "vy.tif", "speed.tif", "v_error.tif", "snr.tif", "report.json",
                 "metadata.json", "stac-item.json", "quicklook.png"}
YAHTSE = ("velocity", "yahtse_landsat8_2016")


@pytest.fixture(scope="module")
def synth_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    pair = make_glacier_pair((384, 384), seed=2, max_speed_px=5)
    ref, sec = d / "scene_20160718.tif", d / "scene_20160803.tif"
    write_cog(ref, pair.ref, pair.grid)
    write_cog(sec, pair.sec, pair.grid)
    mask = d / "stable.tif"
    write_cog(mask, pair.stable.astype("uint8"), pair.grid, nodata=None)
    return pair, ref, sec, mask


def _cli(*args):
    return main([str(a) for a in args])


def test_cli_product_files_and_metadata(synth_files, tmp_path, capsys):
    pair, ref, sec, mask = synth_files
    out = tmp_path / "v"
    assert _cli("velocity", ref, sec, "-o", out, "--stable-mask", mask, "--step", 16,
                "--search", 12, "--units", "m/yr") == 0
    assert {p.name for p in out.iterdir() if p.name != ".cryokit.json"} == PRODUCT_FILES
    with rasterio.open(out / "vx.tif") as ds:
        assert ds.crs.to_epsg() == 32607
        assert ds.transform == pair.grid.transform @ Affine.scale(16)
        assert ds.tags()["units"] == "m/yr" and ds.tags(1)["units"] == "m/yr"
        assert ds.tags()["date1"] == "2016-07-18" and ds.tags()["dt_days"] == "16"
        assert ds.profile["tiled"]
        vx = ds.read(1)
    with rasterio.open(out / "speed.tif") as ds:
        speed = ds.read(1)
    rep = json.loads((out / "report.json").read_text())
    assert rep["dates"] == ["2016-07-18", "2016-08-03"] and rep["dt_days"] == 16
    assert rep["stable_ground"]["nmad_px"][0] < 0.05
    # m/yr: the fastest ice moves about 5 px * 15 m / 16 d * 365.25 = 1700 m/yr.
    assert 1200 < np.nanmax(speed) < 1900
    assert np.isfinite(vx).mean() > 0.9
    meta = json.loads((out / "metadata.json").read_text())
    w, s, e, n = pair.grid.bounds_lonlat()
    assert meta["bbox"]["west"] == pytest.approx(w, abs=1e-6)
    assert meta["file_count"] == len(PRODUCT_FILES)
    assert meta["total_size_bytes"] == sum(p.stat().st_size for p in out.iterdir()
                                           if p.name != ".cryokit.json")
    import pystac
    item = pystac.Item.from_file(str(out / "stac-item.json"))
    assert "vx" in item.assets and item.properties["start_datetime"].startswith("2016-07-18")
    # The error layer, in m/yr, is a 1-sigma error per component on stable ground: 67 % of
    # the stable nodes' x errors are within it (nominal 68 %; 282 nodes, so +-4 binomial SD
    # is +-0.11). On sheared ice it does not hold the chip's strain bias (docs/velocity.md).
    with rasterio.open(out / "v_error.tif") as ds:
        assert ds.units[0] == "m/yr" and "1 sigma" in ds.descriptions[0]
        err = ds.read(1)
    tx, _ = truth_at_nodes(pair.dx, pair.dy, speed.shape, 16, 40)
    stable = mask_at_nodes(pair.stable, speed.shape, 16, 40) & np.isfinite(err)
    within = np.abs(vx - tx * 15 / 16 * 365.25)[stable] <= err[stable]
    assert 0.57 <= within.mean() <= 0.79, within.mean()


def test_out_res_sets_step(synth_files, tmp_path):
    _, ref, sec, _ = synth_files
    out = tmp_path / "v"
    assert _cli("velocity", ref, sec, "-o", out, "--out-res", 480, "--search", 12) == 0
    with rasterio.open(out / "vx.tif") as ds:
        assert ds.res == (480.0, 480.0)
    assert _cli("velocity", ref, sec, "-o", tmp_path / "w", "--out-res", 100) == 2


def test_resample_puts_sec_on_ref_grid(synth_files, tmp_path):
    pair, ref, sec, _ = synth_files
    # SEC cut to a window: a different grid that --resample warps back onto REF's.
    g = pair.grid.window(10, 374, 7, 370)
    sec2 = tmp_path / "cut_20160803.tif"
    write_cog(sec2, pair.sec[10:374, 7:370], g)
    assert _cli("velocity", ref, sec2, "-o", tmp_path / "bad") == 2
    assert not (tmp_path / "bad").exists()
    assert _cli("velocity", ref, sec2, "-o", tmp_path / "ok", "--resample", "--search", 12) == 0
    with rasterio.open(tmp_path / "ok" / "vx.tif") as ds:
        assert np.isfinite(ds.read(1)).mean() > 0.8


@pytest.mark.parametrize("case", ["missing", "not_raster", "equal_dates", "no_dates",
                                  "all_nodata", "mask_no_overlap", "bad_out_crs"])
def test_bad_input_one_line_exit_2(case, synth_files, tmp_path, capsys):
    pair, ref, sec, mask = synth_files
    out = tmp_path / "out"
    args = ["velocity", ref, sec, "-o", out]
    if case == "missing":
        args[2] = tmp_path / "nope.tif"
    elif case == "not_raster":
        bad = tmp_path / "bad.tif"
        bad.write_text("this is not a GeoTIFF")
        args[2] = bad
    elif case == "equal_dates":
        args += ["--dates", "2016-07-18", "2016-07-18"]
    elif case == "no_dates":
        a, b = tmp_path / "a.tif", tmp_path / "b.tif"
        write_cog(a, pair.ref, pair.grid)
        write_cog(b, pair.sec, pair.grid)
        args[1], args[2] = a, b
    elif case == "all_nodata":
        empty = tmp_path / "empty_20160803.tif"
        write_cog(empty, np.full(pair.sec.shape, np.nan, np.float32), pair.grid)
        args[2] = empty
    elif case == "mask_no_overlap":
        far = Grid(pair.grid.crs, Affine.translation(100000, 0) @ pair.grid.transform,
                   pair.grid.width, pair.grid.height)
        m = tmp_path / "far.tif"
        write_cog(m, np.ones(pair.ref.shape, "uint8"), far, nodata=None)
        args += ["--stable-mask", m]
    elif case == "bad_out_crs":
        args += ["--out-crs", "EPSG:99999"]
    capsys.readouterr()
    assert _cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("cryokit: error:")
    assert "Traceback" not in err
    assert not out.exists()


def test_failed_run_leaves_existing_outdir_unchanged(synth_files, tmp_path):
    _, ref, sec, _ = synth_files
    out = tmp_path / "v"
    out.mkdir()
    (out / "keep.txt").write_text("old product")
    assert _cli("velocity", ref, sec, "-o", out, "--dates", "2016-08-03", "2016-07-18") == 2
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_help_explains_units_and_defaults():
    from typer.testing import CliRunner
    from cryokit.cli import app
    r = CliRunner().invoke(app, ["velocity", "--help"])
    assert r.exit_code == 0
    for word in ("m/d", "m/yr", "--stable-mask", "--resample", "default", "vx.tif"):
        assert word in r.output


# ------------------------------------------------------------------------ real Yahtse pair

@pytest.fixture(scope="module")
def yahtse(tmp_path_factory):
    d = shared_path(*YAHTSE)
    ref = d / "LC80630182016200LGN00_B8_yahtse.TIF"
    sec = d / "LC80630182016216LGN00_B8_yahtse.TIF"
    mask = d / "StEliasMtn_utm7v_rock.gmt"
    out = tmp_path_factory.mktemp("yahtse") / "serial"
    with pytest.MonkeyPatch.context() as mp:
        fields = _record_fields(mp)
        rep = make_velocity(str(ref), str(sec), str(out), TrackParams(step=16),
                            stable_mask=str(mask))
    return ref, sec, mask, out, rep, fields[0].narrow


def _record_fields(mp):
    """The node fields make_velocity assembles from its tiles, as they reach clean_field
    (``narrow`` is in no output file)."""
    from cryokit.velocity import product

    seen, clean = [], product.clean_field

    def record(field, params):
        seen.append(field)
        return clean(field, params)

    mp.setattr(product, "clean_field", record)
    return seen


def _layers(out):
    res = {}
    for name in ("vx", "vy", "snr"):
        with rasterio.open(Path(out) / f"{name}.tif") as ds:
            res[name] = ds.read(1)
    return res


def test_yahtse_real_pair(yahtse):
    ref, sec, mask, out, rep, _ = yahtse
    sg = rep["stable_ground"]
    # Issue target: stable NMAD <= 0.07 px in x and y at step 16, >= 90 % of nodes valid.
    assert sg["n_nodes"] > 300
    assert max(sg["nmad_px"]) <= 0.07
    assert rep["valid_fraction"] >= 0.90
    # Co-registration residual of the pair, as autoRIFT finds it (about 0.1-0.2 px).
    assert 0.0 < sg["median_offset_px"][0] < 0.2 and 0.1 < abs(sg["median_offset_px"][1]) < 0.3
    with rasterio.open(ref) as src, rasterio.open(out / "speed.tif") as ds:
        assert ds.crs == src.crs
        assert ds.transform == src.transform @ Affine.scale(16)
        speed = ds.read(1)
    # Plausible glacier speeds: a few m/d on the ice, p50 ~0.3 m/d over the scene.
    assert 0.1 < np.nanpercentile(speed, 50) < 0.6
    assert 2.0 < np.nanpercentile(speed, 95) < 6.0
    assert np.nanmax(speed) < 30


def test_yahtse_tiled_and_dask_equal_serial(yahtse, tmp_path, dask_scheduler_address,
                                            monkeypatch):
    ref, sec, mask, out, rep, narrow = yahtse
    serial = _layers(out)
    # Both LK windows occur on this pair, so equal flags say the tiles carried the layer.
    assert narrow.dtype == bool and 0 < narrow.sum() < narrow.size
    fields = _record_fields(monkeypatch)
    tiled = tmp_path / "tiled"
    make_velocity(str(ref), str(sec), str(tiled), TrackParams(step=16), stable_mask=str(mask),
                  options=VelocityOptions(tile_nodes=24))
    remote = tmp_path / "dask"
    make_velocity(str(ref), str(sec), str(remote), TrackParams(step=16, threads=1),
                  stable_mask=str(mask),
                  options=VelocityOptions(tile_nodes=32, scheduler=dask_scheduler_address))
    for other, field in zip((tiled, remote), fields, strict=True):
        got = _layers(other)
        for k in serial:
            np.testing.assert_array_equal(got[k], serial[k])
        np.testing.assert_array_equal(field.narrow, narrow)


def _true_east_north(pair, shape, step=16, chip=40, node_vectors=None):
    """Truth at the nodes (or ``node_vectors``: px column, row offsets) as true east / north
    velocity (m/yr), computed here with PROJ's geodesic: the node centre and the point it
    moves to, both to lon/lat."""
    from pyproj import Geod, Transformer

    tx, ty = node_vectors or truth_at_nodes(pair.dx, pair.dy, shape, step, chip)
    rows, cols = np.indices(shape)
    t = pair.grid.transform
    def xy(c, r):
        return t.c + t.a * c + t.b * r, t.f + t.d * c + t.e * r

    x0, y0 = xy((cols + 0.5) * step, (rows + 0.5) * step)
    x1, y1 = xy((cols + 0.5) * step + tx, (rows + 0.5) * step + ty)
    tr = Transformer.from_crs(pair.grid.crs, "EPSG:4326", always_xy=True)
    (lo0, la0), (lo1, la1) = tr.transform(x0, y0), tr.transform(x1, y1)
    az, _, dist = Geod(ellps="WGS84").inv(lo0, la0, lo1, la1)
    k = 365.25 / 16
    return dist * np.sin(np.radians(az)) * k, dist * np.cos(np.radians(az)) * k


def test_wgs84_output_against_truth(synth_files, tmp_path):
    """``--out-crs EPSG:4326``: true east/north components in m/yr on a geographic grid, equal
    to the truth reprojected there (60 N, UTM 7N: grid north is 0.35 deg off true north and the
    metres carry the UTM scale factor)."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    pair, ref, sec, mask = synth_files
    out = tmp_path / "geo"
    assert _cli("velocity", ref, sec, "-o", out, "--stable-mask", mask, "--step", 16,
                "--search", 12, "--units", "m/yr", "--out-crs", "EPSG:4326") == 0
    with rasterio.open(out / "vx.tif") as ds:
        assert ds.crs.to_epsg() == 4326 and "true east/north" in ds.tags()["components"]
        ve, transform, shape = ds.read(1), ds.transform, ds.shape
    with rasterio.open(out / "vy.tif") as ds:
        vn = ds.read(1)
    nshape = (384 // 16, 384 // 16)
    te, tn = _true_east_north(pair, nshape)
    ngrid = Grid(pair.grid.crs, pair.grid.transform @ Affine.scale(16), *nshape[::-1])
    truth = []
    for a in (te, tn):
        dst = np.full(shape, np.nan, np.float32)
        reproject(a.astype(np.float32), dst, src_transform=ngrid.transform, src_crs=ngrid.crs,
                  dst_transform=transform, dst_crs="EPSG:4326", src_nodata=np.nan,
                  dst_nodata=np.nan, resampling=Resampling.bilinear)
        truth.append(dst)
    fast = np.hypot(*truth) > 500
    bias = np.nanmedian((ve - truth[0])[fast]), np.nanmedian((vn - truth[1])[fast])
    rmse = np.sqrt(np.nanmean(np.hypot(ve - truth[0], vn - truth[1])[fast] ** 2))
    # The same numbers as the native product's vectors turned to true east/north here with the
    # geodesic and warped the same way: the conversion adds nothing (measured < 0.01 %).
    native = tmp_path / "native"
    assert _cli("velocity", ref, sec, "-o", native, "--stable-mask", mask, "--step", 16,
                "--search", 12, "--units", "m/yr") == 0
    with rasterio.open(native / "vx.tif") as ds:
        nx_ = ds.read(1).astype(float)
    with rasterio.open(native / "vy.tif") as ds:
        ny_ = ds.read(1).astype(float)
    fake = replace(pair, dx=None, dy=None)
    ce, cn = _true_east_north(fake, nshape, node_vectors=(nx_ * 16 / 365.25 / 15,
                                                          -ny_ * 16 / 365.25 / 15))
    for a, b in ((ce, ve), (cn, vn)):
        dst = np.full(shape, np.nan, np.float32)
        reproject(a.astype(np.float32), dst, src_transform=ngrid.transform, src_crs=ngrid.crs,
                  dst_transform=transform, dst_crs="EPSG:4326", src_nodata=np.nan,
                  dst_nodata=np.nan, resampling=Resampling.bilinear)
        ok = np.isfinite(dst) & np.isfinite(b)
        assert np.max(np.abs(dst - b)[ok]) < 0.01     # m/yr, of up to 1700 (measured 1e-4)
    tx, ty = truth_at_nodes(pair.dx, pair.dy, nshape, 16, 40)
    k = 15 / 16 * 365.25
    nf = np.hypot(tx, ty) * k > 500
    native_bias = np.nanmedian((nx_ - tx * k)[nf]), np.nanmedian((ny_ + ty * k)[nf])
    native_rmse = np.sqrt(np.nanmean(np.hypot(nx_ - tx * k, ny_ + ty * k)[nf] ** 2))
    # Against the truth as accurate as on the native grid (measured 37.0 against 39.7 m/yr:
    # the tracker's strain bias, 0.1 px), with the same bias: a grid-north answer would be
    # 0.35 deg off, 8 m/yr across the flow on these nodes.
    assert rmse <= 1.1 * native_rmse
    assert max(abs(a - b) for a, b in zip(bias, native_bias)) < 4, (bias, native_bias)
    rep = json.loads((out / "report.json").read_text())
    assert rep["output_grid"]["crs"] == "EPSG:4326"


def test_geographic_input_is_tracked_in_utm(synth_files, tmp_path):
    """Images in EPSG:4326 (as some archives deliver them) are tracked on their UTM zone."""
    from rasterio.warp import calculate_default_transform, reproject

    pair, ref, sec, mask = synth_files
    g = pair.grid
    tr, w, h = calculate_default_transform(g.crs, "EPSG:4326", g.width, g.height, *g.bounds)
    files = []
    for name, img in (("geo_20160718.tif", pair.ref), ("geo_20160803.tif", pair.sec)):
        dst = np.full((h, w), np.nan, np.float32)
        reproject(img, dst, src_transform=g.transform, src_crs=g.crs, dst_transform=tr,
                  dst_crs="EPSG:4326", src_nodata=np.nan, dst_nodata=np.nan,
                  resampling=rasterio.enums.Resampling.cubic)
        files.append(tmp_path / name)
        write_cog(files[-1], dst, Grid(rasterio.crs.CRS.from_epsg(4326), tr, w, h))
    out = tmp_path / "v"
    assert _cli("velocity", *files, "-o", out, "--step", 16, "--search", 12) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["tracking_grid"]["crs"] == "EPSG:32607"
    with rasterio.open(out / "speed.tif") as ds:
        assert ds.crs.to_epsg() == 32607
        speed = ds.read(1)
    # The fastest ice: 5 px of 15 m in 16 d = 4.7 m/d, after two warps of the images.
    assert 4.0 < np.nanpercentile(speed, 99.5) < 5.2
