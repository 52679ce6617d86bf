"""The SAR offset-tracking product on synthetic series with exact truth: accuracy, outputs,
batch behaviour (failed pair, resume after a kill)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from cryokit.cli import main
from cryokit.core.raster import Grid, read_band
from cryokit.synthetic import make_sar_series, write_sar_series
from cryokit.velocity.accuracy import mask_at_nodes, truth_at_nodes
from cryokit.velocity.sar import sar_params
from cryokit.velocity.sar_product import SarOptions, make_sar_velocity

from conftest import SHARED

DEM = SHARED / "velocity" / "yahtse_landsat8_2016" / "yahtse_srtm_dem.tif"
SIZE, N = 512, 12


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """12 acquisitions 15 days apart, Svalbard-like speeds (3 m/d at 20 m), real DEM if present."""
    s = make_sar_series((SIZE, SIZE), n=N, seed=1, max_speed_px_per_day=0.15,
                        dem=str(DEM) if DEM.exists() else None)
    root = tmp_path_factory.mktemp("sar")
    files = write_sar_series(s, root / "in")
    out = root / "out"
    rep = make_sar_velocity(files["images"], str(out), files["dem"], sar_params(),
                            stable_mask=files["stable"], options=SarOptions(heading=s.heading))
    return s, files, out, rep


def _pair_errors(s, out, rep, params):
    """Per consecutive pair: stable NMAD, ice RMSE (px), terrain coefficient relative error."""
    n = SIZE // params.step
    rows = []
    for k, pr in enumerate(rep["pairs"]):
        tr, ta = truth_at_nodes(*s.corrected(k, k + 1), (n, n), params.step, params.chip)
        ice = mask_at_nodes(s.glacier, (n, n), params.step, params.chip)
        px = s.grid.res[0]
        r = read_band(out / "pairs" / f"{pr['pair']}.real.tif") / px
        a = read_band(out / "pairs" / f"{pr['pair']}.imag.tif") / px
        e = np.hypot(r - tr, a - ta)
        h_true = s.model(k, k + 1)["range"]["height"]
        rows.append(dict(nmad=max(pr["stable_nmad_px"]), rmse=float(np.sqrt(np.nanmean(e[ice] ** 2))),
                         ice_valid=float(np.isfinite(e[ice]).mean()),
                         h_rel=pr["model"]["range"]["height"][0] / h_true - 1,
                         speed=float(np.nanmedian(np.hypot(r, a)[ice]))))
    return rows


def test_series_accuracy_against_truth(year):
    s, files, out, rep = year
    assert rep["failures"] == [] and rep["n_pairs_ok"] == N - 1
    rows = _pair_errors(s, out, rep, sar_params())
    # Issue targets: stable NMAD <= 0.1 px after model removal, ice RMSE <= 0.15 px per pair.
    assert max(r["nmad"] for r in rows) <= 0.1
    assert max(r["rmse"] for r in rows) <= 0.15
    assert min(r["ice_valid"] for r in rows) >= 0.9
    # Terrain coefficient (px per m of height), fitted against the LK effective heights. Its
    # per-pair error is tracking noise on stable ground: 0.028 px/km RMS, max 0.071, over 44
    # pairs of 4 seeds, the same with exact heights, either LK window or without the
    # narrow-window nodes (docs/BENCHMARKS.md), i.e. 2-6 % of these coefficients. So: the
    # issue's 5 % for the median pair; every pair within 0.075 px/km (here max 0.048 px/km,
    # on the 0.45 px/km pair: -10.7 %); no common bias: the mean relative error over the 11
    # pairs, whose noise is ~1.4 %, within 3 % (over 44 pairs: -0.4 %).
    h = np.array([r["h_rel"] for r in rows])
    truth = np.array([s.model(k, k + 1)["range"]["height"] for k in range(N - 1)])
    assert np.median(np.abs(h)) <= 0.05
    assert np.max(np.abs(h * truth)) * 1000 <= 0.075
    assert abs(np.mean(h)) <= 0.03


@pytest.mark.skipif(not DEM.exists(), reason="needs the real DEM of shared/data")
def test_terrain_coefficient_every_pair_on_a_larger_scene(tmp_path, monkeypatch):
    """On 1024² (4x the stable nodes of the 512² series, so half the per-pair noise of the
    terrain coefficient) every pair is within the issue's 5 %: measured -3.0 .. +2.0 %; stable
    NMAD <= 0.041 px and ice RMSE <= 0.082 px. ~25 s."""
    size = 1024
    monkeypatch.setattr(sys.modules[__name__], "SIZE", size)  # _pair_errors reads it
    s = make_sar_series((size, size), n=N, seed=1, max_speed_px_per_day=0.15, dem=str(DEM))
    files = write_sar_series(s, tmp_path / "in")
    rep = make_sar_velocity(files["images"], str(tmp_path / "out"), files["dem"], sar_params(),
                            stable_mask=files["stable"], options=SarOptions(heading=s.heading))
    rows = _pair_errors(s, tmp_path / "out", rep, sar_params())
    assert max(abs(r["h_rel"]) for r in rows) <= 0.05
    assert max(r["nmad"] for r in rows) <= 0.1 and max(r["rmse"] for r in rows) <= 0.15
    assert min(r["ice_valid"] for r in rows) >= 0.9
    # ... and the seasonal speed change within the 10 % on the same series.
    assert _seasonal_ratio(s, rows) == pytest.approx(s.params["seasonal_amplitude"], rel=0.10)


def _seasonal_ratio(s, rows):
    """Fitted seasonal amplitude: regress each pair's median ice speed on the normalised
    seasonal shape of the truth model (known phase); slope / intercept."""
    A = s.params["seasonal_amplitude"]
    g = np.array([(s.flow_days(k, k + 1) / (s.dates[k + 1] - s.dates[k]).days - 1) / A
                  for k in range(len(rows))])
    beta, alpha = np.polyfit(g, np.array([r["speed"] for r in rows]), 1)
    return beta / alpha


def test_seasonal_speed_change_recovered(year):
    s, files, out, rep = year
    rows = _pair_errors(s, out, rep, sar_params())
    assert _seasonal_ratio(s, rows) == pytest.approx(s.params["seasonal_amplitude"], rel=0.10)


def test_outputs_files_units_and_cube(year):
    s, files, out, rep = year
    names = sorted(p.name for p in (out / "pairs").glob("*.tif"))
    assert len(names) == 2 * (N - 1)
    assert f"{s.dates[0]:%Y%m%d}_{s.dates[1]:%Y%m%d}.real.tif" in names
    cum = sorted(p.name for p in (out / "cumulative").glob("*.tif"))
    assert len(cum) == 2 * (N - 1) and cum[0].startswith(f"{s.dates[0]:%Y%m%d}_")
    for f in ("mean_velocity.tif", "velocity_cube.nc", "report.json", "metadata.json",
              "stac-item.json", "quicklook.png"):
        assert (out / f).exists(), f
    with rasterio.open(out / "mean_velocity.tif") as ds:
        assert ds.units[0] == "m/d" and "speed" in ds.descriptions[0]
        assert ds.crs == s.grid.crs
        speed = ds.read(1)
        assert ds.descriptions[4].startswith("speed error, 1 sigma") and ds.units[4] == "m/d"
        err = ds.read(5)
    ice = mask_at_nodes(s.glacier, speed.shape, 16, 64)
    stable = mask_at_nodes(s.stable, speed.shape, 16, 64)
    # Mean speed on ice: 0.15 px/d x 20 m = 3 m/d on the centreline; ~0 on rock.
    assert 1.0 < np.nanpercentile(speed[ice], 90) < 3.5
    assert np.nanmedian(speed[stable]) < 0.05
    # On stable ground the speed is only error: its median (a Rayleigh median, 1.18 sigma per
    # component) against the stated error.
    ratio = np.nanmedian(speed[stable]) / np.nanmedian(err[stable])
    assert 0.4 < ratio < 2.5, ratio
    # Cumulative = sum of consecutive pairs (a chain has a unique least-squares solution).
    last = read_band(out / "cumulative" / f"{s.dates[0]:%Y%m%d}_{s.dates[-1]:%Y%m%d}.real.tif")
    chain = sum(read_band(out / "pairs" / f"{p['pair']}.real.tif") for p in rep["pairs"])
    assert np.allclose(last, chain, atol=1e-4, equal_nan=True)

    import xarray as xr
    with xr.open_dataset(out / "velocity_cube.nc") as ds:
        assert ds["vr"].dims == ("mid_date", "y", "x") and ds.sizes["mid_date"] == N - 1
        assert ds["vr"].attrs["units"] == "m/d"
        # ITS_LIVE names: map components from the heading, the pair's error and dates
        for name in ("vx", "vy", "v", "va", "v_error"):
            assert ds[name].dims == ("mid_date", "y", "x"), name
        assert float(ds.date_dt[0]) == 15 and ds.satellite_img1.values[0].startswith("Sentinel-1")
        assert str(ds.acquisition_date_img1.values[0])[:10] == s.dates[0].isoformat()
        assert ds["spatial_ref"].attrs["spatial_epsg"] == 32633
        np.testing.assert_allclose(np.hypot(ds.vx, ds.vy), np.hypot(ds.vr, ds.va), rtol=1e-5)
        assert ds["cumulative_range"].attrs["units"] == "m"
        assert "UTM zone 33N" in ds["spatial_ref"].attrs["crs_wkt"]
        assert float(ds.x[1] - ds.x[0]) == pytest.approx(16 * s.grid.res[0])
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["file_count"] == sum(1 for p in out.rglob("*")
                                     if p.is_file() and not p.name.startswith("."))
    rep_file = json.loads((out / "report.json").read_text())
    assert len(rep_file["pairs"]) == N - 1 and "fingerprint" not in rep_file["pairs"][0]
    assert rep_file["pairs"][0]["model"]["range"]["height"]


# ----------------------------------------------------------------------------- batch behaviour

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    s = make_sar_series((192, 192), n=6, seed=2, max_speed_px_per_day=0.15)
    root = tmp_path_factory.mktemp("sar_small")
    return s, write_sar_series(s, root / "in"), root


def _cli(files, out, *extra):
    return ["sar-velocity", *files["images"], "-o", str(out), "--dem", files["dem"], "--stable-mask",
            files["stable"], "--heading", "-12", *extra]


def _arrays(out: Path) -> dict:
    got = {}
    for p in sorted(out.rglob("*.tif")):
        with rasterio.open(p) as ds:
            got[str(p.relative_to(out))] = ds.read()
    return got


def test_kill_and_resume_equals_uninterrupted(small):
    s, files, root = small
    ref = root / "uninterrupted"
    assert main(_cli(files, ref)) == 0
    out = root / "killed"
    cmd = [sys.executable, "-c", "from cryokit.cli import run; run()", *_cli(files, out)]
    # The default SIGINT action in the child: a dask cluster started by an earlier test can
    # leave SIGINT ignored in this process, and an ignored SIGINT is inherited.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    def finished_records():     # atomic writes leave hidden temporaries while in flight
        return sorted(p for p in (out / "pairs").glob("*.json") if not p.name.startswith("."))

    while len(finished_records()) < 2 and time.time() - t0 < 120:
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = finished_records()
    assert 2 <= len(finished) < 5, "the kill must land mid-way"
    assert not (out / "report.json").exists()
    stamps = {p.name: os.stat(p).st_mtime_ns for p in finished}
    assert main(_cli(files, out)) == 0
    rep = json.loads((out / "report.json").read_text())
    done = {p.removesuffix(".json") for p in stamps}
    assert set(rep["skipped"]) >= done and not (set(rep["computed"]) & done)
    for p in finished:                                  # finished pairs were not redone
        assert os.stat(p).st_mtime_ns == stamps[p.name]
    a, b = _arrays(ref), _arrays(out)
    assert a.keys() == b.keys()             # no temporaries of the killed run left behind
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # A third run redoes nothing.
    assert main(_cli(files, out)) == 0
    assert json.loads((out / "report.json").read_text())["computed"] == []


def test_failed_pair_is_reported_and_skipped(small, tmp_path, capsys):
    s, files, root = small
    images = list(files["images"])
    bad = tmp_path / Path(images[3]).name                # same date, all nodata
    with rasterio.open(images[3]) as src:
        prof = src.profile
        with rasterio.open(bad, "w", **prof) as dst:
            dst.write(np.zeros((1, src.height, src.width), prof["dtype"]))
    images[3] = str(bad)
    out = tmp_path / "out"
    code = main(_cli(dict(files, images=images), out))
    assert code == 1
    rep = json.loads((out / "report.json").read_text())
    assert {f["pair"] for f in rep["failures"]} == {
        f"{s.dates[2]:%Y%m%d}_{s.dates[3]:%Y%m%d}", f"{s.dates[3]:%Y%m%d}_{s.dates[4]:%Y%m%d}"}
    assert all("nodata" in f["error"] for f in rep["failures"])
    assert rep["n_pairs_ok"] == 3
    assert "FAILED" in capsys.readouterr().out
    # Dates beyond the broken link are not tied to the first date: NaN, not a made-up offset.
    last = read_band(out / "cumulative" / f"{s.dates[0]:%Y%m%d}_{s.dates[-1]:%Y%m%d}.real.tif")
    assert np.isnan(last).all()


@pytest.mark.parametrize("case", ["one_image", "no_date", "bad_pairs", "other_grid"])
def test_bad_input_is_one_line_exit_2(small, tmp_path, capsys, case):
    s, files, root = small
    images = list(files["images"])
    extra = []
    if case == "one_image":
        images = images[:1]
    elif case == "no_date":
        p = tmp_path / "scene.tif"                      # no date in name or tags
        with rasterio.open(images[0]) as src, rasterio.open(p, "w", **src.profile) as dst:
            dst.write(src.read())
        images[0] = str(p)
    elif case == "bad_pairs":
        extra = ["--pairs", "every-other"]
    else:
        p = tmp_path / Path(images[1]).name
        with rasterio.open(images[1]) as src:
            prof = src.profile | {"width": src.width - 8}
            with rasterio.open(p, "w", **prof) as dst:
                dst.write(src.read()[:, :, :-8])
        images[1] = str(p)
    out = tmp_path / "out"
    assert main(_cli(dict(files, images=images), out, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cryokit: error:") and len(err.splitlines()) == 1
    assert not out.exists()


def test_periods_zarr_and_wgs84_against_truth(small, tmp_path):
    """``--period 30d --out-crs EPSG:4326``: period means, the Zarr cube, and pair
    displacements on a geographic grid equal to the truth warped there."""
    import xarray as xr
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    s, files, root = small
    out = tmp_path / "geo"
    assert main(_cli(files, out, "--period", "30d", "--out-crs", "EPSG:4326")) == 0
    rep = json.loads((out / "report.json").read_text())
    # six dates 15 days apart: mid-dates 7.5 .. 67.5 days in, 30-day bins from the first
    assert [len(p["pairs"]) for p in rep["periods"]] == [2, 2, 1]
    for p in rep["periods"]:
        with rasterio.open(out / p["file"]) as ds:
            assert ds.crs.to_epsg() == 4326 and ds.descriptions[3] == "pairs used"
            assert np.nanmax(ds.read(4)) <= len(p["pairs"])
    with xr.open_zarr(out / "velocity_cube.zarr") as cube:
        assert cube.vr.dims == ("mid_date", "y", "x") and cube.sizes["mid_date"] == 5
        assert cube.vr.attrs["units"] == "m/d"
    # Pair 1: range displacement (m) against the orbit/terrain-corrected truth, warped to
    # EPSG:4326 here (bilinear, as the product warps its node grid).
    nodes = (192 // 16, 192 // 16)
    tr, _ = truth_at_nodes(*s.corrected(0, 1), nodes, 16, 64)
    ngrid = Grid(s.grid.crs, s.grid.transform @ Affine.scale(16), *nodes[::-1])
    pr = rep["pairs"][0]["pair"]
    with rasterio.open(out / "pairs" / f"{pr}.real.tif") as ds:
        got, transform, shape = ds.read(1), ds.transform, ds.shape
    want = np.full(shape, np.nan, np.float32)
    reproject((tr * s.grid.res[0]).astype(np.float32), want, src_transform=ngrid.transform,
              src_crs=ngrid.crs, dst_transform=transform, dst_crs="EPSG:4326",
              src_nodata=np.nan, dst_nodata=np.nan, resampling=Resampling.bilinear)
    ice = np.abs(want) > 20          # metres: moving ice
    err = (got - want)[ice & np.isfinite(got)]
    # As on the native grid: this pair's ice RMSE there is 3.7 m (0.19 px; 36 nodes), warped
    # 2.9 m (33 nodes); a transposed or flipped grid would be off by the ice speed, ~40 m.
    assert err.size > 10 and np.sqrt(np.mean(err ** 2)) < 4.5
