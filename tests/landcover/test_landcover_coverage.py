"""Land-cover maps as a user makes them on the shared real sets, end to end through the CLI:
every pixel with any valid input mapped, valid COGs, the user's legend, dates from the inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from cryokit.cli import main

from conftest import shared_path

pytestmark = pytest.mark.realdata

NC_BANDS = ("B1", "B2", "B3", "B4", "B5", "B7")


@pytest.fixture(scope="module")
def nc(tmp_path_factory):
    """NC Landsat-7: features (band 7 is missing on 22 % of the pixels where the others are
    valid), a model trained on the 1 000 labelled points, a map with confidence."""
    d = shared_path("landcover", "grass_nc_landsat7")
    root = tmp_path_factory.mktemp("nc")
    files = [str(d / f"lsat7_2000_{b}0.tif") for b in (1, 2, 3, 4, 5, 7)]
    feats = root / "features.tif"
    assert main(["-q", "landcover", "features", *files, "--bands", ",".join(NC_BANDS),
                 "--sensor", "landsat7", "--optical-units", "DN", "-o", str(feats)]) == 0
    model = root / "model.npz"
    assert main(["-q", "landcover", "train", str(feats), "--labels",
                 str(d / "landsat96_points.shp"), "--label-column", "id",
                 "-o", str(model)]) == 0
    out = root / "map" / "nc.tif"
    assert main(["-q", "landcover", "predict", str(feats), "--model", str(model), "-o",
                 str(out), "--probability", "--dates", "2000-01-01,2000-12-31"]) == 0
    return root, feats, model, out, files


def test_every_pixel_with_an_input_is_mapped(nc):
    root, feats, model, out, files = nc
    valid = []
    for f in files:
        with rasterio.open(f) as ds:
            valid.append(~ds.read(1, masked=True).mask)
    anyv, allv = np.any(valid, axis=0), np.all(valid, axis=0)
    assert anyv.mean() - allv.mean() > 0.2          # band 7 alone is missing there
    with rasterio.open(out) as ds:
        codes, conf = ds.read(1), ds.read(2)
    np.testing.assert_array_equal(codes > 0, anyv)  # nodata exactly where no input is
    assert (conf[anyv] <= 100).all() and (conf[~anyv] == 255).all()
    side = json.loads((root / "model.npz.json").read_text())
    # Only points with no valid band at all are left out of training.
    import pyogrio
    pts = pyogrio.read_dataframe(shared_path("landcover", "grass_nc_landsat7",
                                             "landsat96_points.shp"))
    xy = list(zip(pts.geometry.x, pts.geometry.y))
    with rasterio.open(files[0]) as ds:
        rc = [ds.index(x, y) for x, y in xy]
    # labels are pixels: two points in one pixel are one sample
    inside = {(r, c) for r, c in rc if 0 <= r < anyv.shape[0] and 0 <= c < anyv.shape[1]}
    assert side["dropped_nan_samples"] == sum(not anyv[r, c] for r, c in inside)
    assert side["samples_with_missing_features"] > 0
    # Where band 7 is missing the map still agrees with the 1996 strata about as well as
    # where all bands are there (measured 0.626 against 0.641).
    with rasterio.open(shared_path("landcover", "grass_nc_landsat7", "strata.tif")) as ds:
        ref = ds.read(1, masked=True).filled(0)
    part = anyv & ~allv & (ref > 0)
    full = allv & (ref > 0)
    oa_part, oa_full = ((codes[m] == ref[m]).mean() for m in (part, full))
    assert oa_part > oa_full - 0.1, (oa_part, oa_full)


def test_map_is_a_valid_cog_with_the_users_legend(nc):
    from rio_cogeo.cogeo import cog_validate

    root, feats, model, out, _ = nc
    valid, errors, _ = cog_validate(str(out))
    assert valid, errors
    with rasterio.open(out) as ds:
        tags = ds.tags()
        cmap = ds.colormap(1)
    legend = json.loads(tags["LEGEND"])
    # NC's points: codes in 'id', names in 'label': the user's classes, as GRASS codes them
    names = {c["code"]: c["name"] for c in legend["classes"]}
    assert names == {1: "developed", 2: "agriculture", 3: "herbaceous", 4: "shrubland",
                     5: "forest", 6: "water", 7: "sediment"}
    assert len(cmap) >= 8
    item = json.loads((out.parent / "stac-item.json").read_text())
    assert item["properties"]["start_datetime"].startswith("2000-01-01")
    assert item["properties"]["end_datetime"].startswith("2000-12-31")


def test_dn_input_without_scale_is_warned(nc, tmp_path, capsys):
    _, _, _, _, files = nc
    assert main(["landcover", "features", *files[:4], "--bands", ",".join(NC_BANDS[:4]),
                 "--sensor", "landsat7", "-o", str(tmp_path / "f.tif")]) == 0
    err = capsys.readouterr().err
    assert "digital numbers" in err and "--scale" in err and len(err.strip().splitlines()) == 1
    assert main(["landcover", "features", *files[:4], "--bands", ",".join(NC_BANDS[:4]),
                 "--sensor", "landsat7", "--scale", "0.004", "-o", str(tmp_path / "g.tif")]) == 0
    assert "digital numbers" not in capsys.readouterr().err


def test_undated_stack_needs_dates(nc, tmp_path, capsys):
    """NC's band files carry no date: the map's period is asked for, never taken from a
    file's modification time."""
    root, feats, model, _, _ = nc
    out = tmp_path / "m" / "nc.tif"
    assert main(["landcover", "predict", str(feats), "--model", str(model), "-o",
                 str(out)]) == 2
    err = capsys.readouterr().err
    assert "--dates" in err and len(err.strip().splitlines()) == 1
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_slovenia_legend_named_by_the_polygons(tmp_path):
    """Slovenia's LULC polygons hold LULC_ID codes and LULC_NAME names: the map's legend is
    the user's (the CALC-2020 legend only when asked)."""
    d = shared_path("landcover", "eolearn_slovenia_testpatch")
    model = tmp_path / "m.npz"
    assert main(["-q", "landcover", "train", str(d / "S2L1C_5dates_13bands_derived.tif"),
                 "--labels", str(d / "LULC.gpkg"), "--label-column", "LULC_ID",
                 "-o", str(model)]) == 0
    legend = json.loads(model.with_name("m.npz.json").read_text())["legend"]
    names = {c["code"]: c["name"].lower() for c in legend["classes"]}
    # LULC_ID 0 ("no data", no name) is unlabelled; the other codes keep their numbers
    assert names == {1: "cultivated land", 2: "forest", 3: "grassland", 4: "schrubland",
                     8: "artificial surface"}, names
    calc = tmp_path / "c.npz"
    assert main(["-q", "landcover", "train", str(d / "S2L1C_5dates_13bands_derived.tif"),
                 "--labels", str(d / "LULC.gpkg"), "--label-column", "LULC_ID",
                 "--legend", "calc", "-o", str(calc)]) == 0
    legend = json.loads(calc.with_name("c.npz.json").read_text())["legend"]
    assert len(legend["classes"]) == 10
