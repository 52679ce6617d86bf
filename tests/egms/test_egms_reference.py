"""Re-referencing a real EGMS burst to a point or area, and the point plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_path
from cryokit.cli import main
from cryokit.egms import reference as ref
from cryokit.egms.formats import read_egms

EGMS = ("insar", "egms_2020_2024_E45N17_ustica", "L2b")
ASC = "EGMS_L2b_117_0227_IW2_VV_2020_2024_1.zip"


@pytest.fixture(scope="module")
def burst():
    path = shared_path(*EGMS, ASC)
    return path, read_egms(path)


def test_reference_median_ignores_outlier():
    d = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 50.0]])
    np.testing.assert_allclose(ref.reference_series(d, np.array([True, True, True])), [0, 2])
    with pytest.raises(ValueError):
        ref.reference_series(d, np.zeros(3, bool))


def test_reference_to_pid(burst, tmp_path):
    path, pts = burst
    pid = pts.attrs["pid"].iloc[1234]
    out = tmp_path / "ref.zip"
    assert main(["egms", "reference", str(path), "--pid", pid, "-o", str(out)]) == 0
    new = read_egms(out)
    assert len(new) == len(pts) and list(new.attrs.columns) == list(pts.attrs.columns)
    k = int(np.flatnonzero(new.attrs["pid"] == pid)[0])
    assert np.abs(new.disp[k]).max() == 0 and new.column("mean_velocity")[k] == 0
    # every velocity shifts by the reference point's (refitted) velocity, up to the published
    # column's own mismatch with the series (<= 0.1, README) and the new 0.05 rounding
    rep = json.loads(out.with_suffix(".json").read_text())
    v_ref = rep["reference"]["reference_velocity_mm_yr"]
    assert v_ref == pytest.approx(pts.column("mean_velocity").iloc[1234], abs=0.1)
    dv = (pts.column("mean_velocity") - new.column("mean_velocity")).to_numpy()
    assert np.abs(dv - v_ref).max() <= 0.15 + 1e-9 and np.median(np.abs(dv - v_ref)) <= 0.05
    assert rep["reference"]["pid"] == pid and rep["reference"]["n_points"] == 1
    assert new.header["BURST"]["cryokit_reference"]["pid"] == pid       # stated in the XML
    assert new.header["BURST"]["track"] == "117"                        # original header kept


def test_reference_to_area_and_point(burst, tmp_path):
    path, pts = burst
    lon, lat = pts.column("longitude").to_numpy(), pts.column("latitude").to_numpy()
    c = (float(np.median(lon)), float(np.median(lat)))
    out = tmp_path / "pt.parquet"
    assert main(["egms", "reference", str(path), "--point", str(c[0]), str(c[1]),
                 "--radius", "150", "-o", str(out)]) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    n = rep["reference"]["n_points"]
    assert n > 3
    import geopandas as gpd
    gdf = gpd.read_parquet(out)
    assert len(gdf) == len(pts)
    # the velocity of the per-date median series is removed from every point
    dv = pts.column("mean_velocity").to_numpy() - gdf["mean_velocity"].to_numpy()
    e = np.abs(dv - rep["reference"]["reference_velocity_mm_yr"])
    assert e.max() <= 0.15 + 1e-9 and np.median(e) <= 0.05
    # a polygon (GeoJSON, WGS84) around the same place selects points too
    d = 0.002
    poly = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
            "geometry": {"type": "Polygon", "coordinates": [[[c[0] - d, c[1] - d], [c[0] + d, c[1] - d],
                                                             [c[0] + d, c[1] + d], [c[0] - d, c[1] + d],
                                                             [c[0] - d, c[1] - d]]]}}]}
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps(poly))
    out2 = tmp_path / "area.gpkg"
    assert main(["egms", "reference", str(path), "--area", str(area), "-o", str(out2)]) == 0
    inside = (np.abs(lon - c[0]) < d) & (np.abs(lat - c[1]) < d)
    rep2 = json.loads(out2.with_suffix(".json").read_text())
    assert rep2["reference"]["n_points"] == int(inside.sum())


def test_reference_errors(burst, tmp_path, capsys):
    path, pts = burst
    assert main(["egms", "reference", str(path), "--pid", "nosuchpid0", "-o",
                 str(tmp_path / "a.zip")]) == 2
    assert "pid nosuchpid0 not found" in capsys.readouterr().err
    assert main(["egms", "reference", str(path), "--point", "0", "0", "--radius", "100",
                 "-o", str(tmp_path / "a.zip")]) == 2
    assert "no point within 100 m" in capsys.readouterr().err
    assert main(["egms", "reference", str(path), "-o", str(tmp_path / "a.zip")]) == 2
    assert not (tmp_path / "a.zip").exists()


def test_plots(burst, tmp_path, capsys):
    path, pts = burst
    pid = pts.attrs["pid"].iloc[10]
    out = tmp_path / "plots"
    assert main(["egms", "plot", str(path), "--pid", pid, "-o", str(out)]) == 0
    for f in ("velocity_map.png", f"timeseries_{pid}.png"):
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / f).stat().st_size > 20000
    assert main(["egms", "plot", str(path), "--pid", "zzz", "-o", str(out)]) == 2
    # without --pid: the map only
    only = tmp_path / "map-only"
    assert main(["-q", "egms", "plot", str(path), "-o", str(only)]) == 0
    assert sorted(p.name for p in only.iterdir() if not p.name.startswith(".")) == \
        ["velocity_map.png"]
    from cryokit.egms.plots import symmetric_limit
    from cryokit.egms.stats import seasonal_model
    v = pts.column("mean_velocity").to_numpy()
    assert symmetric_limit(v) == pytest.approx(np.percentile(np.abs(v), 98))
    _, vel = seasonal_model(pts.years(), pts.disp[10])
    # the EGMS mean-velocity model: published values match to their 0.1 mm/yr rounding
    assert vel == pytest.approx(pts.column("mean_velocity").iloc[10], abs=0.1)
