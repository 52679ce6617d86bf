"""`cryokit demo` runs every product on synthetic scenes and reports errors against truth."""

import json

from cryokit.cli import main
from cryokit.core.outputs import walk_files


def test_demo_runs_all_products(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "velocity" in text and "SAR" in text
    # the runs published: three datasets, a catalogue and its site
    rec = json.loads((out / "datasets" / "landcover" / "dataset.json").read_text())
    assert len(rec["ds_runs"]) == 2 and len(set(rec["ds_runs"])) == 2
    assert (out / "catalogue" / "index.parquet").is_file()
    site = (out / "site" / "index.html").read_text()
    assert site.count('class="card"') == 3
    for d in ("velocity", "sar-velocity", "dem-change", "sbas", "landcover/local"):
        assert (out / d / "metadata.json").exists() and (out / d / "stac-item.json").exists()
        # the record is written last, from the files as they are
        meta = json.loads((out / d / "metadata.json").read_text())
        listed, present = set(meta["files"]), set(walk_files(out / d))
        # (the demo's assessment is written into the map's folder after the map's record)
        assert listed <= present and present - listed <= {"assessment.json",
                                                           "assessment.png"}, d
        item = json.loads((out / d / "stac-item.json").read_text())
        assert {a["href"] for a in item["assets"].values()} <= listed, d
    opt = json.loads((out / "velocity-truth-error.json").read_text())
    assert opt["all_valid_nodes"]["rmse_px"] < 0.06
    sar = json.loads((out / "sar-velocity-truth-error.json").read_text())
    assert max(sar["ice_rmse_px_per_pair"]) < 0.2
    dem = json.loads((out / "dem-change-truth-error.json").read_text())
    assert max(abs(e) for e in dem["shift_error_m"]) < 0.05
    assert all(abs(v - dem["thinning_true_m"]) < 0.2 for v in dem["mean_dh_m"])
    sbas = json.loads((out / "sbas-truth-error.json").read_text())
    assert sbas["series_rmse_mm"] <= 1.0 and sbas["velocity_median_abs_error_mm_per_yr"] < 3.0
    lc = json.loads((out / "landcover-truth-error.json").read_text())["overall_accuracy"]
    # Done-when of the land cover issue, through the product with its default settings.
    assert lc["local"] - lc["global"] >= 0.05, lc
