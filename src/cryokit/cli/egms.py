"""``cryokit egms stats|convert|reference|calibrate|ortho|compare|plot``: the EGMS point products."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import typer

from ..core.errors import UserError
from ..core.outputs import guarded_dir, guarded_file, safe_name
from . import options

egms_app = typer.Typer(
    name="egms", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="EGMS ground-motion points (Basic L2a, Calibrated L2b, Ortho L3): statistics, "
         "re-referencing, calibration to GNSS, Ortho (vertical/east) tiles and release comparison.")

_OUT_HELP = ("Output file; the format follows the suffix: .zip (CSV + XML header, as EGMS "
             "delivers), .csv, .parquet (GeoParquet) or .gpkg (GeoPackage). Written atomically.")


def register(app: typer.Typer) -> None:
    app.add_typer(egms_app, name="egms")


def _span(points) -> str:
    if not len(points.dates):
        return "-"
    return f"{points.dates[0]} -> {points.dates[-1]} ({len(points.dates)} dates)"


@egms_app.command("stats")
def stats(
    input: Path = typer.Argument(..., help="EGMS burst or tile: .zip (CSV + XML) or .csv, any "
                                           "release (2020-2024 or legacy column names), L2a/L2b/L3."),
    output: Path = options.output_file(_OUT_HELP),
    compare: bool = typer.Option(False, "--compare", help="Report the agreement of the recomputed "
                                 "statistics with the columns published in INPUT."),
    rereference: bool = typer.Option(True, "--rereference/--no-rereference", help="Shift each "
                                     "series so that its cubic+seasonal model is 0 at the first date, "
                                     "as the service does."),
    full_precision: bool = typer.Option(False, "--full-precision", help="Keep full float precision "
                                        "instead of the published decimals (0.1 mm, 0.1 mm/yr, "
                                        "0.01 mm/yr^2, 0.01 coherence)."),
    crs: str = typer.Option("EPSG:4326", "--crs", help="CRS of the geometry for .parquet/.gpkg: "
                            "EPSG:4326 (from latitude/longitude) or EPSG:3035 (easting/northing)."),
    overwrite: bool = options.overwrite(),
):
    """Recompute the EGMS per-point statistics of every series and write the points.

    t is time in years from the first date (days/365). mean_velocity (mm/yr): slope of a fit of
    [t, 1, cos 2pi t, sin 2pi t]; acceleration (mm/yr^2): coefficient of 0.5 t^2 in [0.5t^2, t, 1,
    cos, sin]; rmse (rmse_ts in 2020-2024 files, mm) and seasonality (mm): residual RMS and cos/sin
    amplitude of [t^3, t^2, t, 1, cos, sin]; *_std from the fit covariance; temporal_coherence:
    |mean exp(j 4pi/lambda r)| of the linear-fit residual, lambda = 55.4658 mm. Displacements are
    LOS in mm, positive towards the satellite. Columns keep the input's order and naming; missing
    statistics are added before the dates.
    """
    from ..egms.formats import read_egms, write_points
    from ..egms.stats import agreement, points_with_stats

    t0 = time.perf_counter()
    with guarded_file(output, inputs=(input,), overwrite=overwrite):
        points = read_egms(input)
        t_read = time.perf_counter() - t0
        new, raw = points_with_stats(points, rereference=rereference,
                                     egms_precision=not full_precision)
        t_stats = time.perf_counter() - t0 - t_read
        fmt = write_points(new, output, crs=crs)
    rows = [("input", f"{points.name} ({points.level}, {points.naming} naming)"),
            ("points", f"{len(points)}"), ("dates", _span(points)),
            ("time", f"read {t_read:.2f} s, statistics {t_stats:.2f} s, "
                     f"total {time.perf_counter() - t0:.2f} s")]
    if rereference:
        shift = abs(raw["reference_shift"])
        rows.append(("re-reference", f"median |shift| {float(_median(shift)):.3f} mm"))
    if compare:
        agree = agreement(points, raw)
        if not agree:
            rows.append(("compare", "INPUT publishes no statistics columns"))
        for key, a in agree.items():
            rows.append((f"vs published {key}", f"{100 * a['fraction']:.2f} % within {a['tolerance']:g}, "
                         f"median |diff| {a['median_abs']:.4f}, max {a['max_abs']:.4f}"))
    rows.append(("output", f"{output} ({fmt})"))
    options.summary("cryokit egms stats", rows)


def _median(x):
    import numpy as np

    return np.nanmedian(x) if len(x) else float("nan")


@egms_app.command("convert")
def convert(
    input: Path = typer.Argument(..., help="EGMS burst or tile: .zip (CSV + XML) or .csv."),
    output: Path = options.output_file(_OUT_HELP),
    crs: str = typer.Option("EPSG:4326", "--crs", help="CRS of the geometry for .parquet/.gpkg: "
                            "EPSG:4326 (from latitude/longitude) or EPSG:3035 (easting/northing)."),
    overwrite: bool = options.overwrite(),
):
    """Convert EGMS points between formats without changing values.

    GeoParquet/GeoPackage hold the attributes, one column per date (YYYYMMDD, LOS displacement in
    mm, positive towards the satellite) and a point geometry; units, level and the XML header go
    into the file metadata.
    """
    from ..egms.formats import read_egms, write_points

    t0 = time.perf_counter()
    with guarded_file(output, inputs=(input,), overwrite=overwrite):
        points = read_egms(input)
        fmt = write_points(points, output, crs=crs)
    options.summary("cryokit egms convert", [
        ("input", f"{points.name} ({points.level}, {points.naming} naming)"),
        ("points", f"{len(points)}"), ("dates", _span(points)),
        ("time", f"{time.perf_counter() - t0:.2f} s"), ("output", f"{output} ({fmt})")])


@egms_app.command("reference")
def reference(
    inp: Path = typer.Argument(..., metavar="INPUT", help="EGMS burst or tile (.zip or .csv, any release naming)."),
    out: Path = options.output_file("Output: .zip/.csv (EGMS format, reference in the XML header), .parquet or .gpkg; a JSON report is written beside it (same name, .json)."),
    pid: Optional[str] = typer.Option(None, "--pid", help="Reference point: this pid's series."),
    point: Optional[tuple[float, float]] = typer.Option(None, "--point", metavar="LON LAT", help="Reference area centre in degrees (WGS84); with --radius."),
    radius: Optional[float] = typer.Option(None, "--radius", help="Radius (m) around --point; the reference is the per-date median of the points inside."),
    area: Optional[Path] = typer.Option(None, "--area", help="Polygon file (any OGR format; WGS84 when it declares no CRS); the reference is the median of the points inside."),
    overwrite: bool = options.overwrite(),
):
    """Re-reference every series to a point or area and recompute the statistics.

    The reference series (that point's, or the per-date median of the points within the radius
    or polygon) is subtracted from every series; mean velocity, acceleration, seasonality, RMSE
    and temporal coherence are recomputed (EGMS model).
    LOS displacement in mm, positive towards the satellite (los_east/north/up =
    ground-to-satellite unit vector); velocities mm/yr; t in years from the first date.
    """
    from ..egms.product import make_reference

    with guarded_file(out, inputs=(inp, area), overwrite=overwrite,
                      beside=[Path(out).with_suffix(".json")]):
        rep = make_reference(inp, out, pid=pid, point=point, radius=radius, area=area)
    r = rep["reference"]
    options.summary("cryokit egms reference", [
        ("reference", f"{r['type']}: {r['n_points']} point(s)"),
        ("reference velocity", f"{r['reference_velocity_mm_yr']:+.2f} mm/yr (removed)"),
        ("output", ", ".join(rep["outputs"]))])


@egms_app.command("calibrate")
def calibrate(
    inp: Path = typer.Argument(..., metavar="INPUT", help="EGMS burst (.zip or .csv)."),
    gnss_files: list[Path] = typer.Option(..., "--gnss", help="GNSS input, repeatable: NGL .tenv series (velocity fitted: linear + annual + semi-annual, outliers trimmed) or a CSV station,lon,lat,ve,vn,vu[,sve,svn,svu] in mm/yr."),
    out: Path = options.output_file("Output: .zip/.csv (EGMS), .parquet or .gpkg; report (per-station residuals) as OUT.json."),
    stations: Optional[Path] = typer.Option(None, "--stations", help="CSV station,lon,lat (degrees): coordinates for .tenv files, which carry none."),
    plate_model: str = typer.Option("eurasia", "--plate-model", help="Plate motion removed from the GNSS horizontal velocities: eurasia (ITRF2014 Euler pole, Altamimi et al. 2017: ETRF-like) | none (velocities already plate-fixed)."),
    model: str = typer.Option("offset", "--model", help="Correction fitted to GNSS-minus-InSAR residuals: offset | plane (needs 3+ stations)."),
    radius: float = typer.Option(250.0, "--radius", help="InSAR velocity at a station: median of the points within this radius (m)."),
    min_points: int = typer.Option(3, "--min-points", help="Stations with fewer points within --radius are not used."),
    overwrite: bool = options.overwrite(),
):
    """Calibrate a burst to GNSS: a per-burst offset or plane, fitted robustly, removed.

    GNSS ENU velocities are projected on the LOS of the points around each station and compared
    with their median velocity; the fitted correction is added to every velocity and
    correction x t (years) to every series; statistics are recomputed.
    LOS displacement in mm, positive towards the satellite (los_east/north/up =
    ground-to-satellite unit vector); velocities mm/yr; t in years from the first date.
    """
    from ..egms.product import make_calibration

    options.positive("--min-points", min_points)
    if not radius > 0:
        raise UserError(f"--radius: must be > 0 m, got {radius}")
    with guarded_file(out, inputs=(inp, *gnss_files, stations), overwrite=overwrite,
                      beside=[Path(out).with_suffix(".json")]):
        rep = make_calibration(inp, [str(g) for g in gnss_files], out, stations=stations,
                               plate_model=plate_model, model=model, radius=radius,
                               min_points=min_points)
    c = rep["calibration"]
    rows = [("model", f"{c['model']}: offset {c['offset_mm_yr']:+.2f} mm/yr, gradient "
                      f"({c['gradient_x_mm_yr_per_km']:+.3f}, {c['gradient_y_mm_yr_per_km']:+.3f}) mm/yr/km"),
            ("stations", f"{c['n_used']} used of {c['n_stations']} with InSAR points"),
            ("plate model", rep["plate_model"])]
    for s in rep["stations"]:
        rows.append((s["station"], f"residual {s['residual_before_mm_yr']:+.2f} -> "
                                   f"{s['residual_after_mm_yr']:+.2f} mm/yr ({s['n_insar_points']} pts)"))
    rows.append(("output", ", ".join(rep["outputs"])))
    options.summary("cryokit egms calibrate", rows)


@egms_app.command("ortho")
def ortho_cmd(
    inputs: list[Path] = typer.Argument(..., metavar="ASC... DESC...", help="Calibrated (L2b) bursts, ascending and descending, any order (geometry from los_east)."),
    outdir: Path = options.output_dir("Output folder: new, empty, or an earlier egms ortho output (with --overwrite)."),
    north_velocity: Optional[str] = typer.Option(None, "--north-velocity", help="North velocity model (mm/yr): a number, a CSV station,lon,lat,vn (inverse-distance interpolated) or a raster. Default 0 (stated in the outputs)."),
    step_days: int = typer.Option(6, "--step-days", help="Regular time grid step (days)."),
    max_gap: float = typer.Option(90.0, "--max-gap", help="Longest gap (days) bridged by interpolation."),
    min_points: int = typer.Option(3, "--min-points", help="Points a cell needs over both geometries."),
    version: Optional[int] = typer.Option(None, "--product-version", help="Version number in the file names (default: from the input names, else 1)."),
    place: Optional[str] = options.place(),
    overwrite: bool = options.overwrite(),
):
    """Ortho (L3) tiles: vertical (U) and east (E) velocity and series on the 100 m EPSG:3035 grid.

    Each burst is interpolated to a regular grid over the common span, points are averaged per
    100 m cell, and per cell and date d_LOS - los_north N = los_east E + los_up U is solved by
    least squares over the geometries. Writes per 100 km tile
    EGMS_L3_E{XX}N{YY}_100km_{U|E}_{y1}_{y2}_{v}.tif (mean velocity mm/yr, float32, nodata
    -9999; up / east positive) and .zip (CSV + XML), report.json, quicklook.png,
    metadata.json, stac-item.json.
    """
    from ..egms.ortho import OrthoOptions, make_ortho

    opts = OrthoOptions(step_days=step_days, max_gap_days=max_gap, min_points=min_points,
                        version=version, north_velocity=north_velocity, place=place)
    options.positive("--step-days", step_days)
    options.positive("--min-points", min_points)
    if not max_gap > 0:
        raise UserError(f"--max-gap: must be > 0 days, got {max_gap}")
    nv = north_velocity if north_velocity and os.path.exists(north_velocity) else None
    with guarded_dir(outdir, "egms ortho", inputs=(*inputs, nv), overwrite=overwrite):
        rep = make_ortho([str(p) for p in inputs], outdir, opts)
    v = rep["velocity_summary_mm_yr"]
    options.summary("cryokit egms ortho", [
        ("cells", f"{rep['n_cells']} solved of {rep['n_cells_with_points']} with points"),
        ("time grid", f"{rep['time_grid']['start']} -> {rep['time_grid']['end']}, "
                      f"{rep['time_grid']['n_dates']} dates"),
        ("north", rep["north"]),
        ("U", f"median {v['U']['median']:+.2f} mm/yr, NMAD {v['U']['nmad']:.2f}"),
        ("E", f"median {v['E']['median']:+.2f} mm/yr, NMAD {v['E']['nmad']:.2f}"),
        ("tiles", ", ".join(t["name"] for t in rep["tiles"])),
        ("output", str(outdir))])


@egms_app.command("compare")
def compare(
    old: Path = typer.Argument(..., help="Earlier release of the burst (.zip or .csv, any naming)."),
    new: Path = typer.Argument(..., help="Later release of the same burst."),
    out: Path = options.output_file("Per-point differences (.csv or .parquet); statistics as OUT.json."),
    max_distance: float = typer.Option(5.0, "--max-distance", help="Points whose pid is in one release only are matched to the nearest unmatched point within this distance (m)."),
    overwrite: bool = options.overwrite(),
):
    """Compare two releases of one burst: points matched by pid (location fallback).

    Differences NEW minus OLD of mean velocity (mm/yr), acceleration, seasonality, RMSE and
    temporal coherence, with count, mean, median, NMAD, RMS and percentiles.
    """
    from ..egms.product import make_compare

    if not max_distance >= 0:
        raise UserError(f"--max-distance: must be >= 0 m, got {max_distance}")
    with guarded_file(out, inputs=(old, new), overwrite=overwrite,
                      beside=[Path(out).with_suffix(".json")]):
        rep = make_compare(old, new, out, max_distance=max_distance)
    c, d = rep["counts"], rep["differences"].get("mean_velocity", {})
    options.summary("cryokit egms compare", [
        ("matched", f"{c['matched']} ({c['matched_by_pid']} by pid, {c['matched_by_location']} "
                    f"by location); unmatched old {c['unmatched_old']}, new {c['unmatched_new']}"),
        ("velocity NEW-OLD", f"mean {d.get('mean', float('nan')):+.2f}, median "
                             f"{d.get('median', float('nan')):+.2f}, NMAD {d.get('nmad', float('nan')):.2f} mm/yr"),
        ("output", f"{out}, {Path(out).with_suffix('.json')}")])


@egms_app.command("plot")
def plot(
    inp: Path = typer.Argument(..., metavar="INPUT", help="EGMS burst or tile (.zip or .csv)."),
    pid: Optional[str] = typer.Option(None, "--pid", help="Point whose time series is also drawn (circled on the map); without it, the map only."),
    outdir: Path = options.output_dir("Directory for velocity_map.png (and timeseries_PID.png with --pid)."),
    overwrite: bool = options.overwrite(),
):
    """Velocity map (diverging colours, symmetric limits) and, with --pid, one point's series with its fit."""
    from ..egms.product import make_plots

    files = [Path(outdir) / "velocity_map.png"]
    if pid is not None:
        files.append(Path(outdir) / f"timeseries_{safe_name(pid, 'pid')}.png")
    with guarded_file(files[0], inputs=(inp,), overwrite=overwrite, beside=files[1:]):
        rep = make_plots(inp, pid, outdir)
    options.summary("cryokit egms plot", [("points", str(rep["n_points"])),
                                  ("output", ", ".join(str(p) for p in (rep["velocity_map"],
                                                                         rep["timeseries"]) if p))])
