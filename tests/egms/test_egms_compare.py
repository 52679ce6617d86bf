"""Release comparison: a real burst against a perturbed copy written in legacy naming."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from cryokit.cli import main
from cryokit.egms import compare as cmp
from cryokit.egms.formats import EgmsPoints, read_egms, write_egms

BURST = ("insar", "egms_2020_2024_E45N17_ustica", "L2b", "EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip")


def test_match_is_mutual_and_bounded():
    xy_old = np.array([[0.0, 0], [3, 0], [100, 0]])
    xy_new = np.array([[1.0, 0], [100, 8]])
    i, j, how, d = cmp.match_points(["a", "b", "c"], ["x", "y"], xy_old, xy_new, 5.0)
    # new "x" is nearest to old "a" (1 m) and to nobody else; old "c" is 8 m from "y": too far
    assert i.tolist() == [0] and j.tolist() == [0] and how.tolist() == ["location"]
    s = cmp.difference_stats(np.array([1.0, 2, 3, 4, 100]))
    assert s["median"] == 3 and s["count"] == 5 and s["nmad"] == pytest.approx(1.4826)


def _legacy_copy(p: EgmsPoints, rng) -> tuple[EgmsPoints, dict]:
    """The burst as an older release would have it: legacy column names, no gnss_velocity,
    +0.8 mm/yr on the first half of the points, 200 points dropped, 300 pids changed (same
    place, moved by < 0.2 m: re-geocoded)."""
    n = len(p)
    attrs = p.attrs.drop(columns=["gnss_velocity"]).rename(
        columns={"height_ortho": "height", "height_ellipse": "height_wgs84", "rmse_ts": "rmse"})
    disp = p.disp.copy()
    t = p.years()
    half = np.arange(n) < n // 2
    disp[half] += 0.8 * t[None]
    attrs["mean_velocity"] = np.round(p.column("mean_velocity").to_numpy() + 0.8 * half, 1)
    renamed = rng.choice(np.arange(n // 2, n), 300, replace=False)
    attrs.loc[renamed, "pid"] = [f"NEW{i:07d}" for i in range(300)]
    attrs.loc[renamed, "easting"] = attrs.loc[renamed, "easting"] + rng.uniform(-0.2, 0.2, 300)
    keep = np.ones(n, bool)
    keep[rng.choice(np.setdiff1d(np.arange(n), renamed), 200, replace=False)] = False
    old = EgmsPoints(attrs[keep].reset_index(drop=True), p.dates, np.round(disp[keep], 1),
                     p.header, "EGMS_L2b_022_0845_IW2_VV_2019_2023_1", "L2b", "legacy")
    return old, {"half": half[keep], "n_keep": int(keep.sum())}


def test_compare_real_vs_perturbed_legacy(tmp_path):
    path = shared_path(*BURST)
    new = read_egms(path)
    old, truth = _legacy_copy(new, np.random.default_rng(0))
    old_path = tmp_path / "EGMS_L2b_022_0845_IW2_VV_2019_2023_1.zip"
    write_egms(old, old_path)
    assert read_egms(old_path).naming == "legacy"
    out = tmp_path / "diff.csv"
    assert main(["egms", "compare", str(old_path), str(path), "-o", str(out)]) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    c = rep["counts"]
    assert c["old"] == truth["n_keep"] and c["new"] == len(new)
    assert c["matched_by_location"] == 300                   # every renamed point found again
    assert c["matched"] == truth["n_keep"] and c["unmatched_new"] == 200
    assert rep["old_naming"] == "legacy" and rep["new_naming"] == "2020-2024"
    df = pd.read_csv(out, dtype={"pid_old": str, "pid_new": str})
    assert len(df) == c["matched"] and (df["distance_m"] <= 0.2 + 1e-6).all()
    d = df["d_mean_velocity"].to_numpy()
    first_half = df["pid_new"].isin(new.attrs["pid"].iloc[: len(new) // 2])
    # NEW - OLD = -0.8 mm/yr on the perturbed half, 0 elsewhere (0.1 mm/yr rounding)
    np.testing.assert_allclose(d[first_half], -0.8, atol=0.11)
    np.testing.assert_allclose(d[~first_half], 0.0, atol=1e-9)
    s = rep["differences"]["mean_velocity"]
    assert s["count"] == c["matched"] and s["p25"] == pytest.approx(-0.8, abs=0.11)
    assert s["mean"] == pytest.approx(-0.8 * first_half.mean(), abs=0.02)
    assert rep["differences"]["rmse"]["count"] == c["matched"]          # legacy rmse vs rmse_ts
    # parquet output, and a bad suffix is a user error
    assert main(["egms", "compare", str(old_path), str(path), "-o", str(tmp_path / "d.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "d.parquet")) == c["matched"]
    assert main(["egms", "compare", str(old_path), str(path), "-o", str(tmp_path / "d.txt")]) == 2
