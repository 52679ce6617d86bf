"""``cryokit demo``: every product made from a synthetic scene with known truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .core.raster import write_cog


def velocity_demo(outdir: Path, size: int = 768, seed: int = 0) -> list[tuple[str, str]]:
    """Synthetic valley-glacier pair -> velocity product -> error against the exact field."""
    from .synthetic import make_glacier_pair
    from .velocity.accuracy import error_stats, mask_at_nodes, truth_at_nodes
    from .velocity.product import VelocityOptions, make_velocity
    from .velocity.track import TrackParams

    pair = make_glacier_pair((size, size), seed=seed, max_speed_px=6.0)
    inputs = outdir / "inputs"
    d1, d2 = pair.dates
    ref = inputs / f"synthetic_{d1:%Y%m%d}.tif"
    sec = inputs / f"synthetic_{d2:%Y%m%d}.tif"
    tags = {"source": "cryokit synthetic scene (make_glacier_pair)", "seed": seed}
    write_cog(ref, pair.ref, pair.grid, descriptions=["reflectance (synthetic)"], tags=tags)
    write_cog(sec, pair.sec, pair.grid, descriptions=["reflectance (synthetic)"], tags=tags)
    mask = inputs / "stable.tif"
    write_cog(mask, pair.stable.astype("uint8"), pair.grid, nodata=None,
              descriptions=["1 = stable ground"])
    params = TrackParams(step=16, search=16)
    rep = make_velocity(str(ref), str(sec), str(outdir / "velocity"), params,
                        stable_mask=str(mask),
                        options=VelocityOptions(place="synthetic valley glacier"))

    import rasterio
    with rasterio.open(outdir / "velocity" / "vx.tif") as a, \
            rasterio.open(outdir / "velocity" / "vy.tif") as b:
        vx, vy = a.read(1), b.read(1)
    # Back to pixels (north-up grid, m/d) to compare with the truth.
    px = pair.params["pixel_size"]
    dt = rep["dt_days"]
    dx, dy = vx * dt / px, -vy * dt / px
    nodes = dx.shape
    tx, ty = truth_at_nodes(pair.dx, pair.dy, nodes, params.step, params.chip)
    moving = mask_at_nodes(pair.glacier, nodes, params.step, params.chip)
    allv = error_stats(dx, dy, tx, ty)
    ice = error_stats(dx, dy, tx, ty, moving)
    truth = {"all_valid_nodes": allv, "moving_ice": ice,
             "moving_nodes_valid_fraction": float(np.mean(np.isfinite(dx[moving])))}
    (outdir / "velocity-truth-error.json").write_text(json.dumps(truth, indent=2))
    sg = rep["stable_ground"]
    return [
        ("scene", f"{size} x {size} px, 15 m, 16 days, max {pair.params['max_speed_px']} px"),
        ("valid nodes", f"{100 * rep['valid_fraction']:.1f} %"),
        ("RMSE vs truth", f"{allv['rmse_px']:.3f} px = {allv['rmse_px'] * px / dt:.4f} m/d "
                          f"({allv['n']} nodes; on moving ice {ice['rmse_px']:.3f} px)"),
        ("vectors off > 1 px", f"{100 * allv['share_over_1px']:.2f} %"),
        ("stable NMAD", f"({sg['nmad_px'][0]:.3f}, {sg['nmad_px'][1]:.3f}) px"),
        ("matching time", f"{rep['timings_s']['match_s']:.2f} s"),
        ("product", str(outdir / "velocity")),
    ]


def sar_demo(outdir: Path, size: int = 512, n: int = 8, seed: int = 0) -> list[tuple[str, str]]:
    """Synthetic SAR series -> sar-velocity product -> per-pair error against the truth."""
    from .core.raster import read_band
    from .synthetic import make_sar_series, write_sar_series
    from .velocity.accuracy import mask_at_nodes, truth_at_nodes
    from .velocity.sar import sar_params
    from .velocity.sar_product import SarOptions, make_sar_velocity

    s = make_sar_series((size, size), n=n, seed=seed, max_speed_px_per_day=0.15)
    files = write_sar_series(s, outdir / "inputs" / "sar")
    params = sar_params()
    out = outdir / "sar-velocity"
    rep = make_sar_velocity(files["images"], str(out), files["dem"], params,
                            stable_mask=files["stable"],
                            options=SarOptions(heading=s.heading, place="synthetic glacier"))
    nodes = (size // params.step, size // params.step)
    ice = mask_at_nodes(s.glacier, nodes, params.step, params.chip)
    px = s.grid.res[0]
    rmse, h_err = [], []
    for k, pr in enumerate(rep["pairs"]):
        tr, ta = truth_at_nodes(*s.corrected(k, k + 1), nodes, params.step, params.chip)
        r = read_band(out / "pairs" / f"{pr['pair']}.real.tif") / px
        a = read_band(out / "pairs" / f"{pr['pair']}.imag.tif") / px
        rmse.append(float(np.sqrt(np.nanmean((np.hypot(r - tr, a - ta)[ice]) ** 2))))
        h_err.append(pr["model"]["range"]["height"][0] / s.model(k, k + 1)["range"]["height"] - 1)
    truth = {"ice_rmse_px_per_pair": rmse, "terrain_coefficient_relative_error": h_err}
    (outdir / "sar-velocity-truth-error.json").write_text(json.dumps(truth, indent=2))
    nm = rep["stable_nmad_px_median"]
    return [
        ("series", f"{n} images {size} x {size} px, 20 m, 15 days apart, 4 looks"),
        ("pairs", f"{rep['n_pairs_ok']} of {rep['n_pairs']}"),
        ("stable NMAD", f"({nm[0]:.3f}, {nm[1]:.3f}) px range/azimuth, median over pairs"),
        ("ice RMSE vs truth", f"{np.median(rmse):.3f} px median, {max(rmse):.3f} px worst pair"),
        ("terrain coefficient", f"{100 * np.median(np.abs(h_err)):.1f} % median error"),
        ("product", str(out)),
    ]


def dem_demo(outdir: Path, seed: int = 0) -> list[tuple[str, str]]:
    """Synthetic DEM pair -> dem-change product -> shift and glacier change against the truth."""
    import geopandas as gpd
    from rasterio.features import shapes
    from shapely.geometry import shape

    from .elevation.product import DemChangeOptions, make_dem_change
    from .synthetic import make_dem_pair

    p = make_dem_pair((400, 400), seed=seed)
    inputs = outdir / "inputs" / "dem"
    d_ref, d_tba = p.dates
    ref, tba = inputs / f"dem_{d_ref:%Y}.tif", inputs / f"dem_{d_tba:%Y}.tif"
    for path, z in ((ref, p.ref), (tba, p.tba)):
        write_cog(path, z, p.grid, units="m", descriptions=["elevation (m, synthetic)"])
    polys = [shape(g) for g, v in shapes(p.glacier.astype("uint8"), mask=p.glacier,
                                         transform=p.grid.transform) if v == 1]
    outlines = inputs / "glaciers.gpkg"
    gpd.GeoDataFrame({"glacier_id": [f"G{i + 1}" for i in range(len(polys))]}, geometry=polys,
                     crs=p.grid.crs).to_file(outlines)
    out = outdir / "dem-change"
    rep = make_dem_change(str(ref), str(tba), str(out), ref_date=str(d_ref),
                          tba_date=str(d_tba), glaciers=str(outlines),
                          options=DemChangeOptions(id_column="glacier_id",
                                                   place="synthetic mountains"))
    import pandas as pd
    t = pd.read_csv(out / "glaciers.csv")
    c = rep["coregistration"]
    err = np.subtract((c["shift_x"], c["shift_y"], c["shift_z"]), p.shift)
    truth = {"shift_true_m": list(p.shift), "shift_error_m": err.tolist(),
             "thinning_true_m": p.thinning, "mean_dh_m": t.mean_dh_m.tolist()}
    (outdir / "dem-change-truth-error.json").write_text(json.dumps(truth, indent=2))
    sa = rep["statistics"]["after"]["stable"]
    return [
        ("DEMs", f"400 x 400 px, 20 m, {d_tba} and {d_ref}, TBA shifted by {p.shift} m"),
        ("shift error", f"x {err[0]:+.3f} m, y {err[1]:+.3f} m, z {err[2]:+.3f} m"),
        ("stable after", f"median {sa['median']:+.2f} m, NMAD {sa['nmad']:.2f} m "
                         f"(noise {p.params['noise']} m)"),
        ("glacier dh", f"{', '.join(f'{v:.2f}' for v in t.mean_dh_m)} m "
                       f"(truth {p.thinning} m)"),
        ("product", str(out)),
    ]


def sbas_demo(outdir: Path, seed: int = 0) -> list[tuple[str, str]]:
    """Synthetic interferogram stack -> sbas product (EGMS-style points) -> error against truth."""
    from .egms.formats import read_egms
    from .sbas.product import SbasOptions, make_sbas
    from .synthetic.insar import make_insar_stack, write_insar_stack

    s = make_insar_stack(shape=(80, 100), n_dates=25, seed=seed)
    paths = write_insar_stack(s, outdir / "inputs" / "insar")
    out = outdir / "sbas"
    rep = make_sbas(paths, str(out), SbasOptions(weight="coherence",
                                                 place="synthetic subsidence bowl"))
    ref = (rep["reference"]["series"]["row"], rep["reference"]["series"]["col"])  # chosen automatically
    pts = read_egms(out / "points.csv")
    r, c = pts.attrs["line"].to_numpy(), pts.attrs["pixel"].to_numpy()
    truth = s.series_mm - s.series_mm[:, ref[0], ref[1]][:, None, None]
    err = pts.disp - truth[:, r, c].T
    rmse = float(np.sqrt(np.nanmean(err ** 2)))
    from .core.raster import read_band
    vt = s.velocity_mm_per_yr - s.velocity_mm_per_yr[ref]
    verr = float(np.nanmedian(np.abs(read_band(out / "velocity.tif") - vt)))
    (outdir / "sbas-truth-error.json").write_text(json.dumps(
        {"series_rmse_mm": rmse, "points": int(len(pts)),
         "velocity_median_abs_error_mm_per_yr": verr}, indent=2))
    return [
        ("stack", f"{len(paths)} interferograms, {len(s.dates)} dates 12 days apart, "
                  f"80 x 100 px, subsidence bowl {s.params.get('bowl_mm_per_yr', -60)} mm/yr"),
        ("points", f"{len(pts)} (temporal coherence >= {rep.get('options', {}).get('min_coherence', 0.7)})"),
        ("series RMSE vs truth", f"{rmse:.2f} mm (LOS, towards the satellite positive)"),
        ("velocity.tif vs truth", f"median |error| {verr:.2f} mm/yr (linear rate; the "
                                  f"{(s.dates[-1] - s.dates[0]).days}-day series also holds "
                                  f"seasonal motion and atmosphere)"),
        ("product", str(out)),
    ]


def landcover_demo(outdir: Path, seed: int = 0) -> list[tuple[str, str]]:
    """Synthetic drifting land-cover scene -> global and local models -> maps -> assessment."""
    from .landcover.assess import assess_map
    from .landcover.classify import ModelParams
    from .landcover.product import TrainOptions, predict_map, train_model
    from .synthetic.landcover import make_landcover_scene, write_landcover_scene

    scene = make_landcover_scene(320, seed=seed)
    files = write_landcover_scene(scene, outdir / "inputs" / "landcover")
    out = outdir / "landcover"
    oa = {}
    for name, local in (("global", None), ("local", 64)):
        model = out / "models" / f"{name}.npz"
        train_model(files["features"], files["labels"], model,
                    TrainOptions(label_column="class", local=local, model=ModelParams(seed=seed)))
        predict_map(files["features"], model, out / name / "landcover.tif",
                    regions=files["regions"], region_column="code")
        rep = assess_map(out / name / "landcover.tif", files["truth"],
                         out / name / "assessment.json")
        oa[name] = rep["overall_accuracy"]
    (outdir / "landcover-truth-error.json").write_text(json.dumps(
        {"overall_accuracy": oa}, indent=2))
    return [
        ("scene", f"320 x 320 px, {scene.features.shape[0]} features, class spectra drift "
                  f"across the region; {scene.labels.size} training pixels"),
        ("OA vs truth", f"global model {100 * oa['global']:.1f} %, locally adaptive (64 px tiles) "
                        f"{100 * oa['local']:.1f} %"),
        ("product", str(out / "local")),
    ]


def publish_demo(outdir: Path) -> list[tuple[str, str]]:
    """The demo's runs published: three datasets, their catalogue and its web site."""
    import tomllib

    from .core.atomic import staged_dir
    from .publish.build import build_dataset
    from .publish.catalog import add_datasets
    from .publish.definition import TEMPLATE, definition_from_mapping
    from .publish.site import build_site

    base = tomllib.loads(TEMPLATE)
    for k in ("doi", "citation", "supersedes"):
        base.pop(k, None)
    base.update(identifier_note="demo dataset made from synthetic scenes: not registered",
                source="cryokit's synthetic scenes with known truth",
                method="see each run's record", quality="see each run's truth-error report")
    specs = [("dem-change", ["dem-change"], "Synthetic glacier elevation change",
              "合成冰川高程变化", ["glacier", "elevation change"]),
             ("velocity", ["velocity"], "Synthetic glacier surface velocity",
              "合成冰川表面流速", ["glacier", "velocity"]),
             ("landcover", ["landcover/global", "landcover/local"], "Synthetic land cover maps",
              "合成土地覆盖图", ["land cover"])]
    folders = []
    for name, runs, title, title_zh, kws in specs:
        defn = definition_from_mapping({
            **base, "title": {"en": f"{title} (cryokit demo)", "zh": title_zh},
            "abstract": {"en": f"{title} made by 'cryokit demo' from synthetic scenes."},
            "keywords": {"topic": kws, "place": ["synthetic"]}})
        folders.append(outdir / "datasets" / name)
        build_dataset(defn, [outdir / r for r in runs], folders[-1])
    add_datasets(outdir / "catalogue", folders)
    with staged_dir(outdir / "site", "catalog site") as stage:
        build_site(outdir / "catalogue", stage, "cryokit demo catalogue")
    return [("datasets", ", ".join(str(f.relative_to(outdir)) for f in folders)),
            ("catalogue", str(outdir / "catalogue")),
            ("web site", str(outdir / "site" / "index.html"))]


def run_demo(outdir: str | Path, size: int = 768, seed: int = 0):
    """Run each product's demo; yield (name, summary rows).

    ``outdir`` must be new, empty or an earlier demo output, which is replaced.
    """
    from .core.outputs import check_output_dir, write_marker

    outdir = Path(outdir)
    check_output_dir(outdir, "demo", overwrite=True)
    outdir.mkdir(parents=True, exist_ok=True)
    write_marker(outdir, "demo")
    yield "velocity (optical feature tracking)", velocity_demo(outdir, size, seed)
    yield "SAR offset tracking (series)", sar_demo(outdir, seed=seed)
    yield "glacier elevation change (DEM differencing)", dem_demo(outdir, seed=seed)
    yield "ground motion (SBAS to EGMS-style points)", sbas_demo(outdir, seed=seed)
    yield "land cover (locally adaptive classification)", landcover_demo(outdir, seed=seed)
    yield "published datasets, catalogue and web site", publish_demo(outdir)
    write_marker(outdir, "demo")
