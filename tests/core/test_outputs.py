"""What cryokit writes and what it never touches: output folders it owns, --overwrite, locks,
models that cannot run code, file names from data, dates, resume by content, undefined
statistics as null."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from cryokit.cli import main
from cryokit.core.errors import UserError
from cryokit.core.outputs import MARKER, check_output_dir, output_lock, read_marker, safe_name
from cryokit.synthetic import make_glacier_pair, make_sar_series, write_sar_series
from cryokit.core.raster import write_cog


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    p = make_glacier_pair((256, 256), seed=3, max_speed_px=3.0)
    d = tmp_path_factory.mktemp("pair")
    ref, sec = d / f"img_{p.dates[0]:%Y%m%d}.tif", d / f"img_{p.dates[1]:%Y%m%d}.tif"
    write_cog(ref, p.ref, p.grid)
    write_cog(sec, p.sec, p.grid)
    return p, str(ref), str(sec)


def _velocity(pair, out, *extra):
    _, ref, sec = pair
    return main(["-q", "velocity", ref, sec, "-o", str(out), "--step", "16", "--search", "8",
                 *extra])


# ----------------------------------------------------------------------------- folders

def test_overwrite_replaces_only_cryokit_files(pair, tmp_path, capsys):
    out = tmp_path / "v"
    assert _velocity(pair, out) == 0
    marker = read_marker(out)
    assert marker["command"] == "velocity" and "vx.tif" in marker["files"]
    assert set(marker["files"]) == {p.name for p in out.iterdir() if p.name != MARKER}
    (out / "my_notes.txt").write_text("mine")
    capsys.readouterr()
    assert _velocity(pair, out) == 2                     # no silent replacement
    assert "--overwrite" in capsys.readouterr().err
    before = (out / "vx.tif").stat().st_mtime_ns
    assert _velocity(pair, out, "--overwrite") == 0
    assert (out / "my_notes.txt").read_text() == "mine"  # not ours: kept
    assert (out / "vx.tif").stat().st_mtime_ns != before
    assert "my_notes.txt" not in read_marker(out)["files"]
    meta = json.loads((out / "metadata.json").read_text())
    assert "my_notes.txt" not in meta["files"]


def test_output_of_another_command_is_refused(pair, tmp_path, capsys):
    out = tmp_path / "v"
    assert _velocity(pair, out) == 0
    _, ref, _ = pair
    assert main(["dem-change", ref, ref, "-o", str(out), "--ref-date", "2000-01-01",
                 "--tba-date", "2010-01-01", "--overwrite"]) == 2
    assert "holds a 'cryokit velocity' output" in capsys.readouterr().err
    assert (out / "vx.tif").exists()


def test_staging_never_swaps_out_a_foreign_folder(tmp_path):
    from cryokit.core.atomic import staged_dir

    out = tmp_path / "x"
    out.mkdir()
    (out / "thesis.txt").write_text("years")
    with pytest.raises(UserError, match="no cryokit output"):
        with staged_dir(out, "velocity") as stage:
            (stage / "a.tif").write_text("new")
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_run_keeps_the_previous_output(pair, tmp_path):
    out = tmp_path / "v"
    assert _velocity(pair, out) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert _velocity(pair, out, "--overwrite", "--dates", "2016-08-03", "2016-07-18") == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


def test_second_run_on_one_output_is_refused_by_the_lock(tmp_path):
    out = tmp_path / "v"
    with output_lock(out):
        with pytest.raises(UserError, match="another cryokit run"):
            with output_lock(out):
                pass
    with output_lock(out):          # released: a later run goes on
        pass
    assert not list(tmp_path.iterdir())


def test_check_output_dir_rules(tmp_path):
    inp = tmp_path / "in" / "a.tif"
    inp.parent.mkdir()
    inp.write_text("x")
    assert check_output_dir(tmp_path / "new", "velocity", inputs=[inp]) is None
    for bad, words in ((inp.parent, "holds the input"), (tmp_path, "holds the input"),
                       (inp, "not a folder")):
        with pytest.raises(UserError, match=words):
            check_output_dir(bad, "velocity", inputs=[inp])


# ----------------------------------------------------------------------------- models

def _train(tmp_path, model="rf", local=None):
    from cryokit.synthetic.landcover import make_landcover_scene, write_landcover_scene

    f = write_landcover_scene(make_landcover_scene(96, seed=4, n_features=5), tmp_path / "lc")
    out = tmp_path / f"{model}.npz"
    args = ["-q", "landcover", "train", f["features"], "--labels", f["labels"], "-o", str(out),
            "--model", model, "--trees", "6"]
    assert main(args + (["--local", str(local)] if local else [])) == 0
    return f, out


@pytest.mark.parametrize("model,local", [("rf", None), ("lgbm", None), ("rf+lgbm", None),
                                         ("rf", 32)])
def test_model_round_trip_gives_identical_probabilities(tmp_path, model, local):
    """The archive holds the fitted model exactly: probabilities equal to the last bit."""
    from cryokit.landcover.model_io import load_model
    from cryokit.landcover.classify import ModelParams
    from cryokit.landcover.product import TrainOptions, train_model

    f, path = _train(tmp_path, model, local)
    fresh = train_model(f["features"], f["labels"], tmp_path / "again.npz",
                        TrainOptions(model=ModelParams(model=model, n_estimators=6), local=local))
    loaded = load_model(path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 5)).astype(np.float32)
    rows, cols = rng.integers(0, 96, 500), rng.integers(0, 96, 500)
    np.testing.assert_array_equal(loaded.classifier.predict_proba(X, rows, cols),
                                  fresh.classifier.predict_proba(X, rows, cols))
    with np.load(path, allow_pickle=False) as z:      # plain arrays only
        assert all(z[k].dtype != object for k in z.files)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('CRYOKIT_PWNED', '/nonexistent/pwned')}",))


def test_crafted_pickle_model_never_runs(tmp_path, monkeypatch, capsys):
    f, good = _train(tmp_path)
    flag = tmp_path / "pwned"
    monkeypatch.setenv("CRYOKIT_PWNED", str(flag))
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(pickle.dumps(_Evil()))
    meta = json.loads(Path(f"{good}.json").read_text())
    for version in (2, 3):          # as an old pickle, or disguised as a current model
        Path(f"{evil}.json").write_text(json.dumps(meta | {"format_version": version}))
        out = tmp_path / f"map{version}" / "m.tif"
        assert main(["landcover", "predict", f["features"], "--model", str(evil), "-o",
                     str(out)]) == 2
        assert not flag.exists() and not out.parent.exists()
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1


def test_archive_with_unknown_object_is_refused(tmp_path):
    from cryokit.landcover.model_store import load_classifier

    tree = {"$object": "Popen", "fields": {"args": "rm -rf /"}}
    path = tmp_path / "m.npz"
    np.savez(path, tree=np.frombuffer(json.dumps(tree).encode(), np.uint8))
    with pytest.raises(UserError, match="not a cryokit land-cover model"):
        load_classifier(path)


def test_names_from_data_cannot_leave_the_folder():
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert "/" not in safe_name("a/b") and safe_name("CN-11") == "CN-11"
    with pytest.raises(UserError):
        safe_name("..")


def test_region_codes_with_path_separators_stay_inside(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    f, model = _train(tmp_path)
    with rasterio.open(f["features"]) as ds:
        left, bottom, right, top = ds.bounds
        crs = ds.crs
    regions = tmp_path / "regions.gpkg"
    gpd.GeoDataFrame({"code": ["../../escape", "ok"]},
                     geometry=[box(left, bottom, (left + right) / 2, top),
                               box((left + right) / 2, bottom, right, top)],
                     crs=crs).to_file(regions)
    out = tmp_path / "map" / "lc.tif"
    assert main(["-q", "landcover", "predict", f["features"], "--model", str(model), "-o",
                 str(out), "--regions", str(regions)]) == 0
    made = {p.name for p in (tmp_path / "map").iterdir()}
    assert "lc__.._.._escape" not in made and any("escape" in m for m in made)
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()


# ----------------------------------------------------------------------------- dates

def test_file_writing_time_tag_never_times_a_pair(pair, tmp_path):
    """GDAL's TIFFTAG_DATETIME is when the file was written: a 16-day pair re-saved on two
    consecutive days keeps its 16 days (speed not 16x too high)."""
    p, ref, sec = pair
    paths = []
    for src, stamp in ((ref, "2024:05:01 10:00:00"), (sec, "2024:05:02 10:00:00")):
        dst = tmp_path / Path(src).name
        shutil.copy(src, dst)
        with rasterio.open(dst, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:
            ds.update_tags(TIFFTAG_DATETIME=stamp)
        paths.append(str(dst))
    out = tmp_path / "v"
    assert main(["-q", "velocity", *paths, "-o", str(out), "--step", "16", "--search", "8"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["dt_days"] == (p.dates[1] - p.dates[0]).days == 16


def test_name_and_tag_dates_in_conflict_are_an_error(pair, tmp_path, capsys):
    _, ref, sec = pair
    dst = tmp_path / Path(sec).name
    shutil.copy(sec, dst)
    with rasterio.open(dst, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:
        ds.update_tags(ACQUISITION_DATE="2016-08-04")
    assert main(["velocity", ref, str(dst), "-o", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "2016-08-03" in err and "2016-08-04" in err and "ACQUISITION_DATE" in err


# ----------------------------------------------------------------------------- resume

@pytest.fixture(scope="module")
def series(tmp_path_factory):
    s = make_sar_series((160, 160), n=4, seed=5, max_speed_px_per_day=0.15)
    root = tmp_path_factory.mktemp("sar_safety")
    return s, write_sar_series(s, root / "in"), root


def _sar(files, out, images=None, *extra):
    return ["-q", "sar-velocity", *(images or files["images"]), "-o", str(out), "--dem",
            files["dem"], "--heading", "-12", *extra]


def _tif_arrays(out: Path) -> dict:
    got = {}
    for p in sorted(out.rglob("*.tif")):
        with rasterio.open(p) as ds:
            got[p.relative_to(out).as_posix()] = ds.read()
    return got


def test_replaced_input_with_old_time_is_recomputed(series, tmp_path):
    """``cp -p`` / rsync keep the old modification time on new content: resume compares
    content, not times."""
    s, files, _ = series
    images = [str(tmp_path / Path(p).name) for p in files["images"]]
    for a, b in zip(files["images"], images):
        shutil.copy2(a, b)
    out = tmp_path / "out"
    assert main(_sar(files, out, images)) == 0
    first = json.loads((out / "report.json").read_text())
    assert len(first["computed"]) == 3
    t = os.stat(images[1]).st_mtime_ns
    with rasterio.open(images[1], "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:    # new content ...
        ds.write(np.roll(ds.read(1), 1, axis=0), 1)
    os.utime(images[1], ns=(t, t))                # ... with the old time, as cp -p leaves it
    assert main(_sar(files, out, images)) == 0
    rep = json.loads((out / "report.json").read_text())
    changed = {n for n in (f"{s.dates[0]:%Y%m%d}_{s.dates[1]:%Y%m%d}",
                           f"{s.dates[1]:%Y%m%d}_{s.dates[2]:%Y%m%d}")}
    assert set(rep["computed"]) == changed and len(rep["skipped"]) == 1


def test_rerun_with_fewer_images_leaves_no_stale_pairs(series, tmp_path):
    s, files, _ = series
    out = tmp_path / "out"
    assert main(_sar(files, out)) == 0
    assert main(_sar(files, out, files["images"][:3])) == 0
    meta = json.loads((out / "metadata.json").read_text())
    last = f"{s.dates[3]:%Y%m%d}"
    assert not [f for f in meta["files"] if last in f]
    assert not [p for p in out.rglob("*") if last in p.name]
    assert set(meta["files"]) == set(read_marker(out)["files"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_run_then_rerun_equals_uninterrupted(series, tmp_path, sig):
    s, files, root = series
    ref = root / "uninterrupted"
    if not ref.exists():
        assert main(_sar(files, ref)) == 0
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from cryokit.cli import run; run()", *_sar(files, out)[1:]]
    # The default SIGINT action in the child: a dask cluster started by an earlier test can
    # leave SIGINT ignored in this process, and an ignored SIGINT is inherited.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while time.time() - t0 < 120 and proc.poll() is None:
        if [p for p in (out / "pairs").glob("*.json") if not p.name.startswith(".")]:
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    rc = proc.wait()
    assert rc != 0 and not (out / "report.json").exists(), "the signal must land mid-way"
    assert main(_sar(files, out)) == 0
    a, b = _tif_arrays(ref), _tif_arrays(out)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    for name in ("mean_velocity.tif",):
        assert (ref / name).read_bytes() == (out / name).read_bytes()
    assert not [p for p in out.rglob(".*") if p.name != MARKER]


# ----------------------------------------------------------------------------- undefined statistics

def test_dem_change_without_glacier_pixels_writes_null_and_keeps_outputs(tmp_path):
    from cryokit.synthetic import make_dem_pair

    p = make_dem_pair((200, 200), seed=1)
    ref, tba = tmp_path / "ref.tif", tmp_path / "tba.tif"
    write_cog(ref, p.ref, p.grid, units="m")
    write_cog(tba, p.tba, p.grid, units="m")
    stable = tmp_path / "stable.tif"
    write_cog(stable, np.ones(p.ref.shape, np.uint8), p.grid, nodata=None)
    out = tmp_path / "out"
    assert main(["-q", "dem-change", str(ref), str(tba), "-o", str(out), "--ref-date",
                 str(p.dates[0]), "--tba-date", str(p.dates[1]), "--stable-mask",
                 str(stable)]) == 0
    text = (out / "report.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    rep = json.loads(text)
    assert rep["statistics"]["after"]["glacier"]["median"] is None
    assert (out / "dh.tif").exists() and (out / "metadata.json").exists()


def test_leftovers_of_a_killed_run_are_cleared_by_the_next(pair, tmp_path):
    out = tmp_path / "v"
    for kind in ("tmp", "old", "cryokit-scratch"):   # what SIGKILL leaves beside OUTDIR
        d = tmp_path / f".v.{kind}-abc123"
        d.mkdir()
        (d / ".block_0_0.npy").write_bytes(b"half")
    (tmp_path / ".other.tmp-xyz").mkdir()            # another output's: not ours to clear
    assert _velocity(pair, out) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-xyz", "v"]


def test_plot_file_name_from_a_pid_stays_in_the_folder(tmp_path):
    rows = ["pid,latitude,longitude,easting,northing,mean_velocity," + ",".join(
        f"2020{m:02d}01" for m in range(1, 9))]
    for i, pid in enumerate(["../../evil", "ok"]):
        rows.append(f"{pid},{38.7 + i / 100},{13.1 + i / 100},{4530000 + i},{1720000 + i},0.5,"
                    + ",".join(str(v / 10) for v in range(8)))
    src = tmp_path / "pts.csv"
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "plots"
    assert main(["-q", "egms", "plot", str(src), "--pid", "../../evil", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"timeseries_{safe_name('../../evil')}.png",
                                                     "velocity_map.png"]
    assert not (tmp_path.parent / "evil.png").exists()


def test_temporary_of_a_killed_file_write_is_cleared(tmp_path):
    from cryokit.core.outputs import guarded_file

    out = tmp_path / "points.parquet"
    left = tmp_path / ".points.k3j2h1.tmp.parquet"    # atomic_file's name while writing
    left.write_bytes(b"half")
    other = tmp_path / ".other.x.tmp.parquet"
    other.write_bytes(b"not ours")
    with guarded_file(out):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.x.tmp.parquet"]


def test_date_times_of_sentinel_names_time_the_pair(pair, tmp_path):
    """Sentinel-2 names carry the sensing time: a pair 23 h apart is 0.957 days, not 1."""
    p, ref, sec = pair
    names = ["S2A_MSIL1C_20180304T201639_N0206_R071_T08VLK_20180304T214800.tif",
             "S2B_MSIL1C_20180305T195339_N0206_R071_T08VLK_20180305T213000.tif"]
    paths = []
    for src, name in zip((ref, sec), names):
        shutil.copy(src, tmp_path / name)
        paths.append(str(tmp_path / name))
    out = tmp_path / "v"
    assert main(["-q", "velocity", *paths, "-o", str(out), "--step", "16", "--search", "8"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["dates"] == ["2018-03-04T20:16:39", "2018-03-05T19:53:39"]
    assert rep["dt_days"] == pytest.approx((23 * 3600 + 37 * 60) / 86400)
    with rasterio.open(out / "speed.tif") as ds:
        assert ds.tags()["date1"] == "2018-03-04T20:16:39"
