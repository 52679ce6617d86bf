"""``cryokit landcover train|predict`` on a synthetic scene: map, legend, regions, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from cryokit.cli import main
from cryokit.synthetic.landcover import make_landcover_scene, write_landcover_scene


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    s = make_landcover_scene(200, seed=2, n_features=9, nan_fraction=0.003, sample_fraction=0.03)
    return s, write_landcover_scene(s, tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="module")
def trained(scene_files, tmp_path_factory):
    s, f = scene_files
    model = tmp_path_factory.mktemp("model") / "lc.npz"
    rc = main(["landcover", "train", f["features"], "--labels", f["labels"], "-o", str(model),
               "--local", "64", "--trees", "24"])
    assert rc == 0
    return model


def test_train_writes_model_and_sidecar(trained, scene_files):
    s, _ = scene_files
    meta = json.loads(open(str(trained) + ".json").read())
    assert meta["feature_names"] == s.names
    assert meta["classes"] == sorted(s.codes)
    assert meta["params"]["kind"] == "local" and meta["params"]["tile_size"] == 64
    # the labels' own classes, named by their class_name column (CALC-2020 names here)
    from cryokit.landcover.legend import CALC2020
    assert [c["name"] for c in meta["legend"]["classes"]] == [CALC2020.name(c)
                                                              for c in sorted(s.codes)]
    assert meta["notes"] == []


def test_predict_map_product(trained, scene_files, tmp_path):
    s, f = scene_files
    out = tmp_path / "map" / "lc.tif"
    rc = main(["landcover", "predict", f["features"], "--model", str(trained), "-o", str(out),
               "--probability", "--regions", f["regions"], "--region-column", "code",
               "--block", "96"])
    assert rc == 0
    with rasterio.open(out) as ds:
        cls, conf = ds.read(1), ds.read(2)
        assert ds.dtypes[0] == "uint8" and ds.nodata == 0
        assert ds.colormap(1)[6][:3] == (30, 80, 200)          # CALC-2020 open water
        assert ds.tags(1)["CLASS_6"] == "Open water"
        table = json.loads(ds.tags()["CLASSES"])
        assert {r["value"] for r in table} >= {0, *s.codes}
    # nodata only where no feature is valid; a pixel missing some features is mapped
    assert (~np.isfinite(s.features)).any(axis=0).sum() > 50
    nan_px = ~np.isfinite(s.features).any(axis=0)
    assert (cls[nan_px] == 0).all() and (cls[~nan_px] > 0).all()
    assert (conf[~nan_px] <= 100).all() and (conf[nan_px] == 255).all()
    # a 200 px scene with 1 % samples: local models reach > 0.85 against the exact truth
    assert (cls[~nan_px] == s.truth[~nan_px]).mean() > 0.85
    folder = out.parent
    for name in ("quicklook.png", "metadata.json", "stac-item.json"):
        assert (folder / name).is_file()
    # regions: west/east halves as flat files beside the map, clipped, outside = nodata,
    # cut from the one map (no seam), their mosaic, one record for the set
    for code, sl in (("WEST", np.s_[:, :100]), ("EAST", np.s_[:, 100:])):
        p = folder / f"lc_{code}.tif"
        assert (folder / f"lc_{code}.png").is_file()
        with rasterio.open(p) as ds:
            part = ds.read(1)
            assert ds.tags()["REGION"] == code and ds.colormap(1)[2][:3] == (20, 100, 30)
        assert part.shape[1] in (100, 101)
        assert np.array_equal(part[:, :100], cls[sl][:, :100])
    with rasterio.open(folder / "lc_regions.vrt") as ds:
        mosaic = ds.read()
        assert ds.colormap(1)[2][:3] == (20, 100, 30) and ds.count == 2
    np.testing.assert_array_equal(mosaic[0], cls)
    np.testing.assert_array_equal(mosaic[1], conf)
    rec = json.loads((folder / "metadata.json").read_text())
    assert {"lc_WEST.tif", "lc_EAST.tif", "lc_regions.vrt", "lc.tif"} <= set(rec["files"])
    assert not [p for p in folder.iterdir() if p.is_dir()]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [".cryokit.json"]


def test_block_size_gives_the_same_map(trained, scene_files, tmp_path):
    _, f = scene_files
    a, b = tmp_path / "a" / "m.tif", tmp_path / "b" / "m.tif"
    assert main(["landcover", "predict", f["features"], "--model", str(trained), "-o", str(a),
                 "--block", "64"]) == 0
    assert main(["landcover", "predict", f["features"], "--model", str(trained), "-o", str(b),
                 "--block", "200"]) == 0
    with rasterio.open(a) as da, rasterio.open(b) as db:
        assert np.array_equal(da.read(), db.read())


def test_bad_inputs_are_one_line_errors(scene_files, tmp_path, capsys):
    s, f = scene_files
    model = tmp_path / "m.npz"
    assert main(["landcover", "train", f["features"], "--labels", f["labels"], "-o", str(model),
                 "--label-column", "nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    # labels far away from the stack
    import geopandas as gpd
    from shapely.geometry import Point

    far = tmp_path / "far.gpkg"
    gpd.GeoDataFrame({"class": [2, 3]}, geometry=[Point(0, 0), Point(1, 1)],
                     crs=s.grid.crs).to_file(far)
    assert main(["landcover", "train", f["features"], "--labels", str(far), "-o", str(model)]) == 2
    assert "overlap" in capsys.readouterr().err
    # a labelled class the legend does not hold
    legend = tmp_path / "legend.csv"
    legend.write_text("code,name,colour\n2,Forest,#146420\n3,Grass,#aad26e\n")
    assert main(["landcover", "train", f["features"], "--labels", f["labels"], "-o", str(model),
                 "--legend", str(legend)]) == 2
    assert "not in the legend" in capsys.readouterr().err
    assert main(["landcover", "train", f["features"], "--labels", f["labels"], "-o", str(model),
                 "--blend", "0.5"]) == 2
    assert "--blend applies to --local" in capsys.readouterr().err
    assert not model.exists() and not (tmp_path / "m.npz.json").exists()


def test_model_of_another_format_version_is_a_user_error(trained, scene_files, tmp_path,
                                                        capsys):
    import shutil

    s, f = scene_files
    old = tmp_path / "old.npz"
    shutil.copy(trained, old)
    meta = json.loads(open(str(trained) + ".json").read())
    meta["format_version"] = 1
    (tmp_path / "old.npz.json").write_text(json.dumps(meta))
    out = tmp_path / "map" / "map.tif"
    assert main(["landcover", "predict", f["features"], "--model", str(old), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "format version 1" in err and "old.npz" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_smoothing_option_is_block_safe_and_recorded(trained, scene_files, tmp_path):
    s, f = scene_files
    maps = {}
    for name, extra in (("plain", []), ("b64", ["--block", "64"]), ("b200", ["--block", "200"])):
        out = tmp_path / name / "m.tif"
        opts = [] if name == "plain" else ["--smooth", "1.5", "--mmu", "6"]
        assert main(["landcover", "predict", f["features"], "--model", str(trained), "-o",
                     str(out), "--probability", *opts, *extra]) == 0
        with rasterio.open(out) as ds:
            maps[name] = ds.read()
    # halo = max(3 sigma, mmu) = 5 px: the map does not depend on the block size
    assert np.array_equal(maps["b64"], maps["b200"])
    nan_px = ~np.isfinite(s.features).any(axis=0)
    cls, plain = maps["b64"][0], maps["plain"][0]
    assert (cls[nan_px] == 0).all() and (maps["b64"][1][nan_px] == 255).all()
    ok = ~nan_px
    # the synthetic classes are parcels tens of pixels wide: regularisation removes isolated
    # errors, so agreement with the truth goes up (measured 0.890 -> 0.938)
    acc = lambda m: (m[ok] == s.truth[ok]).mean()   # noqa: E731
    assert acc(cls) > acc(plain) + 0.02, (acc(plain), acc(cls))
    meta = json.loads((tmp_path / "b64" / "metadata.json").read_text())
    assert "sigma 1.5 px" in json.dumps(meta) and "smaller than 6 px" in json.dumps(meta)


def test_bad_smoothing_is_a_user_error(trained, scene_files, tmp_path, capsys):
    _, f = scene_files
    out = tmp_path / "x" / "m.tif"
    assert main(["landcover", "predict", f["features"], "--model", str(trained), "-o", str(out),
                 "--smooth", "-1"]) == 2
    assert "--smooth" in capsys.readouterr().err and not out.exists()
