"""The DEM-differencing product on a known-answer case made from the real Longyearbyen DEM."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.features import shapes
from rasterio.windows import Window
from scipy import ndimage

from cryokit.cli import main

from conftest import shared_path

SHIFT = (9.3, -5.7, -2.5)     # m: TBA is REF's terrain moved by -shift (so +shift realigns it)
THINNING = -6.0               # m on glaciers between the dates
NOISE = 0.5


def write_case(root, voids: slice | None = None):
    """The known-answer pair in ``root``: a 400 x 360 crop of the Longyearbyen DEM as REF
    (2010, glaciers thinned by THINNING), TBA (1990) = REF's terrain moved by -SHIFT plus NOISE,
    and the glacier outlines; ``voids`` (rows) blanks REF's glacier pixels there. Returns the
    outlines."""
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
        cls = ds.read(1, window=win)
    glacier = cls == 2
    assert np.isfinite(z).all() and glacier.mean() > 0.05
    res = prof["transform"].a
    # TBA (earlier) = terrain seen with coordinates shifted by -shift: T(x) = Z(x + shift).
    moved = ndimage.shift(z, (SHIFT[1] / res, -SHIFT[0] / res), order=3, mode="nearest")
    rng = np.random.default_rng(0)
    tba = moved - SHIFT[2] + rng.normal(0, NOISE, z.shape)
    ref = z + np.where(glacier, THINNING, 0.0)
    if voids is not None:
        ref[voids] = np.where(glacier[voids], np.nan, ref[voids])
    for name, arr in (("ref_2010.tif", ref), ("tba_1990.tif", tba)):
        with rasterio.open(root / name, "w", **prof) as dst:
            dst.write(arr.astype(np.float32), 1)
    import geopandas as gpd
    from shapely.geometry import shape
    polys = [shape(g) for g, v in shapes(glacier.astype("uint8"), mask=glacier,
                                         transform=prof["transform"]) if v == 1]
    polys = [p for p in polys if p.area > 50 * res * res]
    gdf = gpd.GeoDataFrame({"RGIId": [f"G{i:03d}" for i in range(len(polys))],
                            "Name": [f"glacier {i}" for i in range(len(polys))]},
                           geometry=polys, crs=prof["crs"])
    gdf.to_file(root / "outlines.gpkg")
    return gdf


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("dem")
    gdf = write_case(root)
    out = root / "out"
    code = main(["dem-change", str(root / "ref_2010.tif"), str(root / "tba_1990.tif"),
                 "-o", str(out), "--ref-date", "2010-08-01", "--tba-date", "1990-08-01",
                 "--glaciers", str(root / "outlines.gpkg"), "--id-column", "RGIId",
                 "--name-column", "Name", "--no-curvature-bias"])
    assert code == 0
    return root, out, gdf


def test_known_shift_recovered(case):
    root, out, gdf = case
    rep = json.loads((out / "report.json").read_text())
    c = rep["coregistration"]
    # Noise and glacier change make this harder than the clean algorithm tests: 0.1 m / 0.05 m.
    assert c["shift_x"] == pytest.approx(SHIFT[0], abs=0.1)
    assert c["shift_y"] == pytest.approx(SHIFT[1], abs=0.1)
    assert c["shift_z"] == pytest.approx(SHIFT[2], abs=0.05)
    after = rep["statistics"]["after"]["stable"]
    assert abs(after["median"]) < 0.05
    assert after["nmad"] == pytest.approx(NOISE, rel=0.1)
    assert rep["statistics"]["before"]["stable"]["nmad"] > 2 * NOISE


def test_change_products(case):
    root, out, gdf = case
    for f in ("dh.tif", "dhdt.tif", "tba_coregistered.tif", "glaciers.csv", "glaciers.gpkg",
              "report.json", "metadata.json", "stac-item.json", "quicklook.png",
              "figures/dh_histogram.png", "figures/nuth_kaab.png"):
        assert (out / f).exists(), f
    with rasterio.open(out / "dhdt.tif") as ds:
        assert ds.units[0] == "m/yr" and ds.crs.to_epsg() == 25833
    import pandas as pd
    t = pd.read_csv(out / "glaciers.csv")
    big = t[t.area_km2 > 0.5]
    assert len(big) >= 1
    # Later (2010, thinned) minus earlier: -6 m over 20 years.
    assert np.allclose(big.mean_dh_m, THINNING, atol=0.5)
    assert np.allclose(big.dhdt_m_per_yr, THINNING / 20.0, atol=0.03)
    assert np.allclose(big.mass_balance_mwe_per_yr, big.dhdt_m_per_yr * 0.85, rtol=1e-4)
    assert (big.mean_dh_err_m > 0).all() and (big.mass_balance_err_mwe_per_yr > 0).all()
    assert set(t.id) == set(gdf.RGIId)
    import geopandas as gpd
    g = gpd.read_file(out / "glaciers.gpkg")
    assert "mass_balance_mwe_per_yr" in g.columns and g.crs.to_epsg() == 25833


def test_bad_inputs_exit_2(case, tmp_path, capsys):
    root, out, gdf = case
    far = tmp_path / "far.tif"                                   # same CRS, 100 km away
    with rasterio.open(root / "tba_1990.tif") as src:
        t = src.transform
        prof = src.profile | {"transform": t.__class__(t.a, t.b, t.c + 100000, t.d, t.e, t.f)}
        with rasterio.open(far, "w", **prof) as dst:
            dst.write(src.read())
    args = ["dem-change", str(root / "ref_2010.tif"), str(root / "tba_1990.tif"),
            "--ref-date", "2010-08-01", "--tba-date", "1990-08-01"]
    cases = [
        args + ["-o", str(tmp_path / "a")],                                   # no stable terrain
        args + ["-o", str(tmp_path / "c"), "--glaciers", str(root / "outlines.gpkg"),
                "--coreg", "icp"],
        args + ["-o", str(tmp_path / "d"), "--glaciers", str(root / "ref_2010.tif")],
        args + ["-o", str(tmp_path / "e"), "--glaciers", str(root / "outlines.gpkg"),
                "--ref-vref", "ellipsoid", "--tba-vref", str(tmp_path / "missing_geoid.tif")],
        [args[0], args[1], str(far)] + args[3:] + ["-o", str(tmp_path / "f"), "--glaciers",
                                                   str(root / "outlines.gpkg")],
    ]
    for a in cases:
        assert main(a) == 2, a
        err = capsys.readouterr().err.strip()
        assert err.startswith("cryokit: error:") and len(err.splitlines()) == 1
    assert not any((tmp_path / k).exists() for k in "acdef")


def test_vertical_reference_conversion(case, tmp_path):
    # TBA heights are above a geoid 30 m over the ellipsoid; REF is ellipsoidal. Declared, they
    # are converted (h = H + N), and the vertical shift is the true one, not 30 m off.
    root, out, gdf = case
    with rasterio.open(root / "ref_2010.tif") as src:
        prof = src.profile
        with rasterio.open(tmp_path / "ref_ell.tif", "w", **prof) as dst:
            dst.write(src.read(1) + np.float32(30.0), 1)
        coarse = prof | {"width": 20, "height": 20,
                         "transform": src.transform @ src.transform.scale(
                             src.width / 20, src.height / 20)}
        with rasterio.open(tmp_path / "geoid.tif", "w", **coarse) as dst:
            dst.write(np.full((1, 20, 20), 30.0, np.float32))
    o = tmp_path / "out"
    assert main(["dem-change", str(tmp_path / "ref_ell.tif"), str(root / "tba_1990.tif"),
                 "-o", str(o), "--ref-date", "2010-08-01", "--tba-date", "1990-08-01",
                 "--glaciers", str(root / "outlines.gpkg"), "--no-curvature-bias",
                 "--ref-vref", "ellipsoid", "--tba-vref", str(tmp_path / "geoid.tif")]) == 0
    rep = json.loads((o / "report.json").read_text())
    assert rep["coregistration"]["shift_z"] == pytest.approx(SHIFT[2], abs=0.05)
    assert "ellipsoid" in rep["vertical_reference"]


def _synthetic_case(tmp_path, seed):
    """A small synthetic DEM pair with its known shift, written with a 0/1 stable mask."""
    from cryokit.core.raster import write_cog
    from cryokit.synthetic import make_dem_pair

    p = make_dem_pair((200, 200), seed=seed)
    ref, tba, mask = tmp_path / "ref.tif", tmp_path / "tba.tif", tmp_path / "stable.tif"
    write_cog(ref, p.ref, p.grid, units="m")
    write_cog(tba, p.tba, p.grid, units="m")
    write_cog(mask, (~p.glacier).astype(np.uint8), p.grid, nodata=None)
    return p, ref, tba, mask


def test_class_raster_stable_mask_needs_its_stable_values(tmp_path, capsys):
    """A 1 = stable / 2 = glacier raster: taking every non-zero pixel as stable would count the
    glaciers as stable ground, so it is refused without --stable-values; with it, the result
    equals that of a 0/1 mask of the same pixels."""
    from cryokit.core.raster import write_cog

    p, ref, tba, binary = _synthetic_case(tmp_path, seed=2)
    classes = tmp_path / "classes.tif"
    write_cog(classes, np.where(p.glacier, 2, 1).astype(np.uint8), p.grid, nodata=None)
    args = ["-q", "dem-change", str(ref), str(tba), "--ref-date", str(p.dates[0]),
            "--tba-date", str(p.dates[1])]
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "a"), "--stable-mask", str(classes)]) == 2
    err = capsys.readouterr().err
    assert "classes 1, 2" in err and "--stable-values" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "-o", str(tmp_path / "b"), "--stable-mask", str(classes),
                 "--stable-values", "1"]) == 0
    assert main([*args, "-o", str(tmp_path / "c"), "--stable-mask", str(binary)]) == 0
    b, c = (json.loads((tmp_path / k / "report.json").read_text())["coregistration"]
            for k in ("b", "c"))
    assert [b[k] for k in ("shift_x", "shift_y", "shift_z")] == \
        [c[k] for k in ("shift_x", "shift_y", "shift_z")]


def test_record_method_names_only_the_steps_that_ran(tmp_path):
    p, ref, tba, mask = _synthetic_case(tmp_path, seed=3)
    common = ["-q", "dem-change", str(ref), str(tba), "--ref-date", str(p.dates[0]),
              "--tba-date", str(p.dates[1]), "--stable-mask", str(mask)]
    assert main([*common, "-o", str(tmp_path / "a"), "--coreg", "vertical_shift",
                 "--no-curvature-bias"]) == 0
    meta = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert meta["processing_method"].startswith("vertical shift fitted on stable terrain; no curvature-bias")
    assert "deramp" not in meta["processing_method"] and "Nuth" not in meta["processing_method"]
    assert main([*common, "-o", str(tmp_path / "b")]) == 0
    meta = json.loads((tmp_path / "b" / "metadata.json").read_text())
    assert "Nuth & Kaab (2011) co-registration, vertical shift fitted" in meta["processing_method"]
    assert "curvature-dependent bias correction (max_curvature x min_curvature)" in meta["processing_method"]


def test_record_lists_the_rasters(case):
    """The rasters are published before the record that lists them."""
    from cryokit.core.outputs import walk_files

    _, out, _ = case
    meta = json.loads((out / "metadata.json").read_text())
    assert {"dh.tif", "dhdt.tif", "tba_coregistered.tif"} <= set(meta["files"])
    assert set(meta["files"]) == set(walk_files(out))
    item = json.loads((out / "stac-item.json").read_text())
    assert "dh" in item["assets"]


def test_two_dems_of_one_epoch_check_coregistration(tmp_path):
    """Two sources of one date: co-registration and dh, no rate (no dhdt.tif, null rates)."""
    p, ref, tba, mask = _synthetic_case(tmp_path, seed=4)
    out = tmp_path / "same"
    assert main(["-q", "dem-change", str(ref), str(tba), "-o", str(out), "--ref-date",
                 "2020-08-01", "--tba-date", "2020-08-01", "--stable-mask", str(mask)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["years"] == 0
    shift = np.subtract([rep["coregistration"][k] for k in ("shift_x", "shift_y", "shift_z")],
                        p.shift)
    assert np.abs(shift).max() < 0.1
    assert (out / "dh.tif").exists() and not (out / "dhdt.tif").exists()


def test_blunders_are_left_out_and_reported(tmp_path):
    """Spikes above the summits (a source's blunders) on stable ground: left out by the
    10-NMAD rule, so the shift and the stable statistics are those of the clean pair."""
    p, ref, tba, mask = _synthetic_case(tmp_path, seed=4)
    rng = np.random.default_rng(1)
    rows, cols = np.nonzero(~p.glacier)
    pick = rng.choice(rows.size, 60, replace=False)
    spiky = p.tba.copy()
    spiky[rows[pick], cols[pick]] += 800.0
    from cryokit.core.raster import write_cog
    write_cog(tmp_path / "tba_spiky.tif", spiky, p.grid, units="m")
    reps = []
    for name, t in (("clean", tba), ("spiky", tmp_path / "tba_spiky.tif")):
        out = tmp_path / name
        assert main(["-q", "dem-change", str(ref), str(t), "-o", str(out), "--ref-date",
                     "2010-08-01", "--tba-date", "1990-08-01", "--stable-mask", str(mask),
                     "--stable-values", "1", "--no-curvature-bias"]) == 0
        reps.append(json.loads((out / "report.json").read_text()))
    clean, spiky_rep = reps
    assert spiky_rep["blunders"]["blunder_px"] == 60 and clean["blunders"]["blunder_px"] == 0
    assert "10 NMAD" in spiky_rep["blunders"]["rule"]
    for k in ("shift_x", "shift_y", "shift_z"):
        assert spiky_rep["coregistration"][k] == pytest.approx(clean["coregistration"][k], abs=0.05)
    a, b = (r["statistics"]["after"]["stable"] for r in reps)
    assert b["median"] == pytest.approx(a["median"], abs=0.02)
    assert b["nmad"] == pytest.approx(a["nmad"], rel=0.02) and b["std"] < 2 * a["std"]
