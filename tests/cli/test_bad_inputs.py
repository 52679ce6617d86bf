"""Every command on every class of bad input: exit code 2, one line, no traceback, and the
folder exactly as it was (nothing written, nothing deleted).

The inputs are made here, small: a valid set for each product, then one thing broken per case
(usage, files, output paths, option values, data content).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from conftest import cli_commands
from cryokit.cli import main

CRS = "EPSG:32633"
DATES = ["20200103", "20200115", "20200127"]


def _tif(path: Path, data, *, crs=CRS, origin=(500000.0, 7000000.0), res=20.0, tags=None,
         nodata=None, descriptions=None):
    data = np.asarray(data, np.float32)
    if data.ndim == 2:
        data = data[None]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype="float32", crs=crs, nodata=nodata,
                       transform=from_origin(*origin, res, res)) as ds:
        ds.write(data)
        if tags:
            ds.update_tags(**tags)
        for i, d in enumerate(descriptions or []):
            ds.set_band_description(i + 1, d)
    return str(path)


def _texture(seed, shape=(128, 128)):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    return (gaussian_filter(rng.normal(size=shape), 2) * 50 + 100).astype(np.float32)


def _egms_csv(rows: list[list[str]], header: list[str] | None = None) -> str:
    header = header or ["pid", "latitude", "longitude", "easting", "northing", "height",
                        "mean_velocity", *DATES]
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


def _egms_row(i: int, disp=("0.0", "1.5", "2.9")) -> list[str]:
    return [f"P{i:05d}", f"{38.70 + i * 1e-3:.5f}", f"{13.17 + i * 1e-3:.5f}",
            f"{4530000 + i * 80}", f"{1720000 + i * 80}", "10.0", "0.5", *disp]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """One valid input set per product, in a folder the cases must leave unchanged."""
    d = tmp_path_factory.mktemp("bad-inputs")
    f = {"dir": d}
    base = _texture(0)
    f["ref"] = _tif(d / "LC08_L1TP_063018_20160718_20170222_01_T1_B8.tif", base)
    f["sec"] = _tif(d / "LC08_L1TP_063018_20160803_20170222_01_T1_B8.tif", np.roll(base, 2, 1))
    f["const"] = _tif(d / "const_20160820.tif", np.full((128, 128), 7.0))
    f["nodata"] = _tif(d / "nodata_20160821.tif", np.full((128, 128), np.nan), nodata=np.nan)
    f["geo"] = _tif(d / "geo_20160822.tif", base, crs="EPSG:4326", origin=(15.0, 78.0),
                    res=0.001)
    f["geo2"] = _tif(d / "geo_20160903.tif", np.roll(base, 1, 0), crs="EPSG:4326",
                     origin=(15.0, 78.0), res=0.001)
    f["clash"] = _tif(d / "clash_20160904.tif", np.roll(base, 3, 1),
                      tags={"ACQUISITION_DATE": "2016-09-05"})
    f["pairs_bad"] = str(d / "pairs.txt")
    Path(f["pairs_bad"]).write_text("LC08_L1TP_063018_20160718_20170222_01_T1_B8.tif  elsewhere.tif\n")
    f["text"] = str(d / "notes.tif")
    Path(f["text"]).write_text("this is not a raster\n")
    f["empty"] = str(d / "empty.tif")
    Path(f["empty"]).write_bytes(b"")
    s1 = "S1A_EW_GRDM_1SDH_{}T120000_{}T120100_031000_038000_ABCD.tif"
    f["s1a"] = _tif(d / s1.format("20200103", "20200103"), base)
    f["s1b"] = _tif(d / s1.format("20200115", "20200115"), np.roll(base, 1, 0))
    f["dem"] = _tif(d / "dem.tif", np.linspace(100, 900, 128 * 128).reshape(128, 128))
    f["dem_far"] = _tif(d / "dem_far.tif", np.full((64, 64), 300.0), origin=(900000.0, 6000000.0))
    f["classes"] = _tif(d / "classes.tif", np.where(np.arange(128 * 128).reshape(128, 128) % 3, 1, 2))
    f["dem2"] = _tif(d / "dem2.tif", np.linspace(100, 900, 128 * 128).reshape(128, 128) - 2)
    for k, (a, b) in enumerate([("20200103", "20200115"), ("20200115", "20200127")]):
        f[f"ifg{k}"] = _tif(d / f"S1_{a}-{b}_unw.tif", _texture(k + 3) / 100,
                            tags={"FIRST_DATE": a, "SECOND_DATE": b})
    egms = d / "egms"
    egms.mkdir()
    f["egms"] = str(egms / "EGMS_L2a_117_0227_IW2_VV_2020_2024_1.csv")
    Path(f["egms"]).write_text(_egms_csv([_egms_row(i) for i in range(20)]))
    f["egms_gap"] = str(egms / "gap.csv")
    Path(f["egms_gap"]).write_text(_egms_csv([_egms_row(0), _egms_row(1, ("0.0", "", ""))]))
    f["egms_dup"] = str(egms / "dup.csv")
    Path(f["egms_dup"]).write_text(_egms_csv([_egms_row(0), _egms_row(1), _egms_row(0)]))
    f["egms_nopid"] = str(egms / "nopid.csv")
    Path(f["egms_nopid"]).write_text(_egms_csv([_egms_row(1)[1:]], header=[
        "latitude", "longitude", "easting", "northing", "height", "mean_velocity", *DATES]))
    f["egms_header_only"] = str(egms / "header_only.csv")
    Path(f["egms_header_only"]).write_text(_egms_csv([]))
    f["egms_text"] = str(egms / "text_in_dates.csv")
    Path(f["egms_text"]).write_text(_egms_csv([_egms_row(0), _egms_row(1, ("0.0", "abc", "1"))]))
    f["egms_inf"] = str(egms / "inf.csv")
    Path(f["egms_inf"]).write_text(_egms_csv([_egms_row(0), _egms_row(1, ("0.0", "inf", "1"))]))
    f["egms_baddate"] = str(egms / "baddate.csv")
    Path(f["egms_baddate"]).write_text(_egms_csv([_egms_row(0)], header=[
        "pid", "latitude", "longitude", "easting", "northing", "height", "mean_velocity",
        "20200103", "2020011X", "20200127"]))
    f["egms_slip"] = str(egms / "slip.zip")
    with zipfile.ZipFile(f["egms_slip"], "w") as z:
        z.writestr("../../evil.csv", _egms_csv([_egms_row(0)]))
    f["egms_bomb"] = str(egms / "bomb.zip")
    with zipfile.ZipFile(f["egms_bomb"], "w", compression=zipfile.ZIP_DEFLATED) as z:
        # 300 MB of one repeated row: a few hundred kB compressed
        row = (",".join(_egms_row(1)) + "\n").encode()
        with z.open("bomb.csv", "w", force_zip64=True) as m:
            m.write(_egms_csv([]).encode())
            block = row * (1 << 16)
            for _ in range((300 << 20) // len(block) + 1):
                m.write(block)
    f["gnss_inf"] = str(egms / "gnss_inf.csv")
    Path(f["gnss_inf"]).write_text("station,lon,lat,ve,vn,vu\nAAAA,13.18,38.71,1,inf,3\n")
    f["tenv_inf"] = str(egms / "AAAA.tenv")
    Path(f["tenv_inf"]).write_text("AAAA 20JAN01 2020.0014 58849 2087 3 0.1 0.2 inf 0.0 0.001 0.001 0.003\n")
    f["gnss"] = str(egms / "gnss.csv")
    Path(f["gnss"]).write_text("station,lon,lat,ve,vn,vu\nAAAA,13.18,38.71,1,2,3\n")

    from cryokit.synthetic.landcover import make_landcover_scene, write_landcover_scene

    lc = write_landcover_scene(make_landcover_scene(64, seed=1, n_features=4), d / "lc")
    f.update({f"lc_{k}": v for k, v in lc.items()})
    f["model"] = str(d / "lc-model" / "m.npz")
    assert main(["-q", "landcover", "train", lc["features"], "--labels", lc["labels"], "-o",
                 f["model"], "--trees", "4", "--max-depth", "4"]) == 0
    pickle = d / "lc-model" / "pickled.joblib"
    pickle.write_bytes(b"\x80\x04\x95\x00")   # what an old joblib model looks like to us
    meta = json.loads(Path(f["model"] + ".json").read_text()) | {"format_version": 2}
    Path(str(pickle) + ".json").write_text(json.dumps(meta))
    f["pickle"] = str(pickle)
    f["foreign"] = str(d / "someone-elses")
    Path(f["foreign"]).mkdir()
    (Path(f["foreign"]) / "thesis.docx").write_text("years of work")
    f["plots"] = str(d / "plots")
    Path(f["plots"]).mkdir()
    (Path(f["plots"]) / "velocity_map.png").write_bytes(b"my own figure")
    f["precious"] = str(d / "precious.txt")
    Path(f["precious"]).write_text("keep me")
    return f


def _snapshot(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))} | {"": sorted(p.name for p in root.iterdir())}


def _o(f, name="out"):
    return str(f["dir"] / name)


# (case id, argv builder, words the message must contain)
CASES = [
    # usage
    ("no-command", lambda f: [], None),
    ("unknown-command", lambda f: ["velocty"], "velocty"),
    ("unknown-option", lambda f: ["velocity", f["ref"], f["sec"], "-o", _o(f), "--bogus"], "--bogus"),
    ("missing-output", lambda f: ["velocity", f["ref"], f["sec"]], "-o"),
    ("step-not-int", lambda f: ["velocity", f["ref"], f["sec"], "-o", _o(f), "--step", "abc"], "--step"),
    ("missing-arg-sbas", lambda f: ["sbas", "-o", _o(f)], "ifgs"),
    ("egms-no-sub", lambda f: ["egms"], None),
    # input files
    ("velocity-missing-file", lambda f: ["velocity", _o(f, "nope.tif"), f["sec"], "-o", _o(f)], "not found"),
    ("velocity-text-file", lambda f: ["velocity", f["text"], f["sec"], "-o", _o(f)], "notes.tif"),
    ("velocity-empty-file", lambda f: ["velocity", f["empty"], f["sec"], "-o", _o(f)], "empty.tif"),
    ("velocity-dir-as-file", lambda f: ["velocity", f["foreign"], f["sec"], "-o", _o(f)], "someone-elses"),
    ("velocity-constant", lambda f: ["velocity", f["ref"], f["const"], "-o", _o(f), "--dates", "2016-07-18", "2016-08-20"], "constant"),
    ("velocity-all-nodata", lambda f: ["velocity", f["ref"], f["nodata"], "-o", _o(f), "--dates", "2016-07-18", "2016-08-21"], "nodata"),
    ("velocity-dates-reversed", lambda f: ["velocity", f["sec"], f["ref"], "-o", _o(f)], "before"),
    ("velocity-bad-date", lambda f: ["velocity", f["ref"], f["sec"], "-o", _o(f), "--dates", "2016-13-45", "2016-08-03"], "2016-13-45"),
    ("velocity-date-clash", lambda f: ["velocity", f["ref"], f["clash"], "-o", _o(f)], "tag says"),
    # output paths: never over an input, a file, or someone else's folder
    ("velocity-out-is-input-folder", lambda f: ["velocity", f["ref"], f["sec"], "-o", str(f["dir"])], "holds the input"),
    ("velocity-out-is-file", lambda f: ["velocity", f["ref"], f["sec"], "-o", f["precious"]], "not a folder"),
    ("velocity-out-foreign", lambda f: ["velocity", f["ref"], f["sec"], "-o", f["foreign"]], "no cryokit output"),
    ("series-missing-file", lambda f: ["velocity-series", _o(f, "nope.tif"), f["sec"], "-o", _o(f)], "not found"),
    ("series-text-file", lambda f: ["velocity-series", f["ref"], f["text"], "-o", _o(f)], "notes.tif"),
    ("series-one-image", lambda f: ["velocity-series", f["ref"], "-o", _o(f)], "two images"),
    ("series-grid-mismatch", lambda f: ["velocity-series", f["ref"], f["geo"], "-o", _o(f)], "grid"),
    ("series-dates-count", lambda f: ["velocity-series", f["ref"], f["sec"], "-o", _o(f), "--dates", "2016-07-18"], "one per image"),
    ("series-bad-date", lambda f: ["velocity-series", f["ref"], f["sec"], "-o", _o(f), "--dates", "2016-07-18", "--dates", "2016-02-30"], "2016-02-30"),
    ("series-bad-period", lambda f: ["velocity-series", f["ref"], f["sec"], "-o", _o(f), "--period", "fortnight"], "--period"),
    ("series-bad-pairs", lambda f: ["velocity-series", f["ref"], f["sec"], "-o", _o(f), "--pairs", "every"], "--pairs"),
    ("series-pairs-file-unknown", lambda f: ["velocity-series", f["ref"], f["sec"], "-o", _o(f), "--pairs", f["pairs_bad"]], "names none"),
    ("series-every-pair-fails", lambda f: ["velocity-series", f["ref"], f["const"], "-o", _o(f)], "every pair failed"),
    ("series-out-is-input-folder", lambda f: ["velocity-series", f["ref"], f["sec"], "-o", str(f["dir"])], "holds the input"),
    ("series-out-foreign", lambda f: ["velocity-series", f["ref"], f["sec"], "-o", f["foreign"]], "no cryokit output"),
    ("sar-out-is-input-folder", lambda f: ["sar-velocity", f["s1a"], f["s1b"], "--dem", f["dem"], "-o", str(f["dir"])], "holds the input"),
    ("sar-out-foreign", lambda f: ["sar-velocity", f["s1a"], f["s1b"], "--dem", f["dem"], "-o", f["foreign"]], "no cryokit output"),
    ("dem-out-is-input-folder", lambda f: ["dem-change", f["dem"], f["dem2"], "-o", str(f["dir"]), "--ref-date", "2010-01-01", "--tba-date", "2020-01-01"], "holds the input"),
    ("dem-out-is-file", lambda f: ["dem-change", f["dem"], f["dem2"], "-o", f["precious"], "--ref-date", "2010-01-01", "--tba-date", "2020-01-01"], "not a folder"),
    ("sbas-out-foreign", lambda f: ["sbas", f["ifg0"], f["ifg1"], "-o", f["foreign"]], "no cryokit output"),
    ("egms-stats-out-is-input", lambda f: ["egms", "stats", f["egms"], "-o", f["egms"]], "also an input"),
    ("egms-convert-out-exists", lambda f: ["egms", "convert", f["egms"], "-o", f["precious"]], "--overwrite"),
    ("egms-reference-out-exists", lambda f: ["egms", "reference", f["egms"], "-o", f["precious"], "--pid", "P00001"], "--overwrite"),
    ("egms-compare-out-is-input", lambda f: ["egms", "compare", f["egms"], f["egms"], "-o", f["egms"]], "also an input"),
    ("egms-ortho-out-foreign", lambda f: ["egms", "ortho", f["egms"], "-o", f["foreign"]], "no cryokit output"),
    ("egms-plot-out-exists", lambda f: ["egms", "plot", f["egms"], "--pid", "P00001", "-o", f["plots"]], "--overwrite"),
    ("lc-features-out-exists", lambda f: ["landcover", "features", f["lc_features"], "-o", f["precious"]], "--overwrite"),
    ("lc-train-out-is-input", lambda f: ["landcover", "train", f["lc_features"], "--labels", f["lc_labels"], "-o", f["lc_features"]], "also an input"),
    ("lc-predict-out-beside-inputs", lambda f: ["landcover", "predict", f["lc_features"], "--model", f["model"], "-o", str(Path(f["lc_features"]).parent / "map.tif")], "holds the input"),
    ("lc-assess-out-is-input", lambda f: ["landcover", "assess", f["lc_truth"], "--reference", f["lc_labels"], "-o", f["lc_truth"]], "also an input"),
    ("demo-out-foreign", lambda f: ["demo", "-o", f["foreign"]], "no cryokit output"),
    ("demo-out-is-file", lambda f: ["demo", "-o", f["precious"]], "not a folder"),
    # option values
    ("velocity-step-0", lambda f: ["velocity", f["ref"], f["sec"], "-o", _o(f), "--step", "0"], "--step"),
    ("velocity-chip-neg", lambda f: ["velocity", f["ref"], f["sec"], "-o", _o(f), "--chip", "-8"], "--chip"),
    ("velocity-workers-0", lambda f: ["velocity", f["ref"], f["sec"], "-o", _o(f), "--workers", "0"], "--workers"),
    ("velocity-units", lambda f: ["velocity", f["ref"], f["sec"], "-o", _o(f), "--units", "furlongs"], "furlongs"),
    ("sar-step-0", lambda f: ["sar-velocity", f["s1a"], f["s1b"], "--dem", f["dem"], "-o", _o(f), "--step", "0"], "--step"),
    ("sar-degree-5", lambda f: ["sar-velocity", f["s1a"], f["s1b"], "--dem", f["dem"], "-o", _o(f), "--degree", "5"], "--degree"),
    ("dem-block-rows-0", lambda f: ["dem-change", f["dem"], f["dem2"], "-o", _o(f), "--ref-date", "2010-01-01", "--tba-date", "2020-01-01", "--block-rows", "0"], "--block-rows"),
    ("dem-ref-vref-alone", lambda f: ["dem-change", f["dem"], f["dem2"], "-o", _o(f), "--ref-date", "2010-01-01", "--tba-date", "2020-01-01", "--ref-vref", "ellipsoid"], "--tba-vref"),
    ("dem-vref-missing-file", lambda f: ["dem-change", f["dem"], f["dem2"], "-o", _o(f), "--ref-date", "2010-01-01", "--tba-date", "2020-01-01", "--ref-vref", "nope.gtx", "--tba-vref", "ellipsoid"], "nope.gtx"),
    ("dem-bad-date", lambda f: ["dem-change", f["dem"], f["dem2"], "-o", _o(f), "--ref-date", "2010-02-30", "--tba-date", "2020-01-01"], "2010-02-30"),
    ("sbas-wavelength-0", lambda f: ["sbas", f["ifg0"], f["ifg1"], "-o", _o(f), "--wavelength", "0"], "--wavelength"),
    ("sbas-wavelength-neg", lambda f: ["sbas", f["ifg0"], f["ifg1"], "-o", _o(f), "--wavelength", "-0.05"], "--wavelength"),
    ("sbas-block-rows-0", lambda f: ["sbas", f["ifg0"], f["ifg1"], "-o", _o(f), "--block-rows", "0"], "--block-rows"),
    ("sbas-workers-0", lambda f: ["sbas", f["ifg0"], f["ifg1"], "-o", _o(f), "--workers", "0"], "--workers"),
    ("egms-ortho-step-0", lambda f: ["egms", "ortho", f["egms"], "-o", _o(f), "--step-days", "0"], "--step-days"),
    ("egms-calibrate-radius-0", lambda f: ["egms", "calibrate", f["egms"], "--gnss", f["gnss"], "-o", _o(f, "c.csv"), "--radius", "0"], "--radius"),
    ("lc-predict-block-0", lambda f: ["landcover", "predict", f["lc_features"], "--model", f["model"], "-o", _o(f, "map/m.tif"), "--block", "0"], "--block"),
    ("lc-train-trees-0", lambda f: ["landcover", "train", f["lc_features"], "--labels", f["lc_labels"], "-o", _o(f, "m2.npz"), "--trees", "0"], "--trees"),
    ("demo-size-0", lambda f: ["demo", "-o", _o(f), "--size", "0"], "--size"),
    ("dataset-init-exists", lambda f: ["dataset", "init", "-o", f["text"]], "exists"),
    ("catalog-add-not-a-dataset", lambda f: ["catalog", "add", str(f["dir"]), "-o", _o(f)], "dataset.json"),
    ("catalog-list-not-a-catalogue", lambda f: ["catalog", "list", str(f["dir"])], "index.parquet"),
    ("catalog-search-bad-bbox", lambda f: ["catalog", "search", str(f["dir"]), "--bbox", "1,2,3"], "--bbox"),
    ("catalog-site-not-a-catalogue", lambda f: ["catalog", "site", str(f["dir"]), "-o", _o(f)], "no dataset"),
    ("catalog-serve-not-a-site", lambda f: ["catalog", "serve", str(f["dir"])], "index.html"),
    ("dataset-build-bad-definition", lambda f: ["dataset", "build", f["text"], str(f["dir"]), "-o", _o(f)], "notes.tif"),
    # data content
    ("sar-dem-disjoint", lambda f: ["sar-velocity", f["s1a"], f["s1b"], "--dem", f["dem_far"], "-o", _o(f)], "overlap"),
    ("sar-one-image", lambda f: ["sar-velocity", f["s1a"], "--dem", f["dem"], "-o", _o(f)], "two images"),
    ("sar-geographic", lambda f: ["sar-velocity", f["geo"], f["geo2"], "-o", _o(f)], "geographic"),
    ("sar-geographic-mismatch", lambda f: ["sar-velocity", f["s1a"], f["geo"], "--dem", f["dem"], "-o", _o(f)], "grid"),
    ("dem-no-stable", lambda f: ["dem-change", f["dem"], f["dem2"], "-o", _o(f), "--ref-date", "2010-01-01", "--tba-date", "2020-01-01"], "--stable-mask"),
    ("dem-class-mask", lambda f: ["dem-change", f["dem"], f["dem2"], "-o", _o(f), "--ref-date", "2010-01-01", "--tba-date", "2020-01-01", "--stable-mask", f["classes"]], "--stable-values"),
    ("dem-stable-values-text", lambda f: ["dem-change", f["dem"], f["dem2"], "-o", _o(f), "--ref-date", "2010-01-01", "--tba-date", "2020-01-01", "--stable-mask", f["classes"], "--stable-values", "one"], "--stable-values"),
    ("dem-disjoint", lambda f: ["dem-change", f["dem"], f["dem_far"], "-o", _o(f), "--ref-date", "2010-01-01", "--tba-date", "2020-01-01", "--stable-mask", f["dem"]], "overlap"),
    ("sbas-text-file", lambda f: ["sbas", f["text"], f["ifg1"], "-o", _o(f)], "notes.tif"),
    ("egms-missing-pid", lambda f: ["egms", "stats", f["egms_nopid"], "-o", _o(f, "s.csv")], "pid"),
    ("egms-duplicate-pid", lambda f: ["egms", "stats", f["egms_dup"], "-o", _o(f, "s.csv")], "duplicate"),
    ("egms-header-only", lambda f: ["egms", "stats", f["egms_header_only"], "-o", _o(f, "s.csv")], "no point"),
    ("egms-text-in-dates", lambda f: ["egms", "convert", f["egms_text"], "-o", _o(f, "s.parquet")], "abc"),
    ("egms-inf", lambda f: ["egms", "stats", f["egms_inf"], "-o", _o(f, "s.csv")], "infinite"),
    ("egms-bad-date-header", lambda f: ["egms", "convert", f["egms_baddate"], "-o", _o(f, "s.csv")], "2020011X"),
    ("egms-zip-slip", lambda f: ["egms", "convert", f["egms_slip"], "-o", _o(f, "s.csv")], "outside"),
    ("egms-zip-bomb", lambda f: ["egms", "stats", f["egms_bomb"], "-o", _o(f, "s.csv")], "zip bomb"),
    ("egms-reference-unknown-pid", lambda f: ["egms", "reference", f["egms"], "-o", _o(f, "r.csv"), "--pid", "NOPE"], "NOPE"),
    ("egms-reference-radius-ignored", lambda f: ["egms", "reference", f["egms"], "-o", _o(f, "r.csv"), "--pid", "P00001", "--radius", "100"], "--radius"),
    ("egms-reference-no-data", lambda f: ["egms", "reference", f["egms_gap"], "-o", _o(f, "r.csv"), "--pid", "P00001"], "no displacement"),
    ("egms-calibrate-gnss-inf", lambda f: ["egms", "calibrate", f["egms"], "--gnss", f["gnss_inf"], "-o", _o(f, "c.csv")], "finite"),
    ("egms-calibrate-tenv-inf", lambda f: ["egms", "calibrate", f["egms"], "--gnss", f["tenv_inf"], "-o", _o(f, "c.csv")], "infinite"),
    ("egms-plot-unknown-pid", lambda f: ["egms", "plot", f["egms"], "--pid", "../../x", "-o", _o(f, "plots2")], "not found"),
    ("lc-pickled-model", lambda f: ["landcover", "predict", f["lc_features"], "--model", f["pickle"], "-o", _o(f, "map/m.tif")], "--trust-model"),
    ("lc-model-is-text", lambda f: ["landcover", "predict", f["lc_features"], "--model", f["text"], "-o", _o(f, "map/m.tif")], None),
    ("lc-features-block-0", lambda f: ["landcover", "features", f["lc_features"], "-o", _o(f, "feat.tif"), "--block", "0"], "--block"),
    ("lc-features-scale-0", lambda f: ["landcover", "features", f["lc_features"], "-o", _o(f, "feat.tif"), "--scale", "0"], "--scale"),
    ("lc-features-dem-disjoint", lambda f: ["landcover", "features", f["lc_features"], "--dem", f["dem_far"], "-o", _o(f, "feat.tif")], "does not overlap"),
    ("lc-features-not-raster", lambda f: ["landcover", "features", f["text"], "-o", _o(f, "feat.tif")], "notes.tif"),
    ("lc-train-labels-missing", lambda f: ["landcover", "train", f["lc_features"], "--labels", _o(f, "nolabels.gpkg"), "-o", _o(f, "m3.npz")], "nolabels.gpkg"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(case, inputs, capsys):
    _, argv, words = case
    args = argv(inputs)
    before = _snapshot(inputs["dir"])
    capsys.readouterr()
    rc = main(args)
    out = capsys.readouterr()
    err = out.err.strip()
    assert rc == 2, (rc, err, out.out[-400:])
    assert "Traceback" not in out.err + out.out
    if args and args[-1] not in ("egms",) and args:
        assert len(err.splitlines()) == 1, err
        assert err.startswith("cryokit: error: "), err
        if words:
            assert words in err, err
    assert _snapshot(inputs["dir"]) == before


def test_every_command_is_in_the_matrix():
    """A new command must bring its bad-input cases."""
    import typer

    from cryokit.cli import app

    covered = {" ".join(a for a in c[1](_FakeInputs()) if not a.startswith("/")
                        and not a.startswith("-"))[:40] for c in CASES}
    root = typer.main.get_command(app)
    for cmd in cli_commands():
        assert any(c.startswith(cmd) for c in covered), f"no bad-input case for '{cmd}'"
        node = root
        for part in cmd.split():
            node = node.commands[part]
        if cmd in READ_ONLY:
            continue
        outs = [p for p in node.params if "-o" in getattr(p, "opts", [])]
        assert outs and "--output" in outs[0].opts, f"'{cmd}': -o is not --output"
        assert any("--overwrite" in getattr(p, "opts", []) for p in node.params) or \
            cmd in ("demo", "catalog add"), f"'{cmd}' has no --overwrite"


#: commands that write nothing (they print, or serve); "catalog add" updates its catalogue
READ_ONLY = ("catalog list", "catalog search", "catalog serve")


class _FakeInputs(dict):
    def __missing__(self, key):
        return Path("/x") if key == "dir" else "/x"


def test_version_and_help_exit_0(capsys):
    from cryokit import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cryokit {__version__}"
    for argv in (["-h"], ["--help"], ["velocity", "-h"], ["egms", "stats", "--help"]):
        assert main(argv) == 0
        assert "Usage: cryokit" in capsys.readouterr().out


def test_internal_error_is_one_line_exit_1_and_debug_shows_it(monkeypatch, inputs, capsys):
    import cryokit.velocity.product as product

    def broken(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(product, "make_velocity", broken)
    args = ["velocity", inputs["ref"], inputs["sec"], "-o", _o(inputs, "internal")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", *args])


def test_cli_start_up_imports_no_science_stack():
    """`cryokit --help` and usage errors need typer only: numpy, pandas, rasterio and the rest
    load inside the command that uses them (start-up under half a second)."""
    import subprocess
    import sys
    code = ("import sys, cryokit.cli; heavy = [m for m in ('numpy', 'pandas', 'rasterio', "
            "'scipy', 'numba', 'xarray', 'sklearn', 'matplotlib', 'duckdb') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout
