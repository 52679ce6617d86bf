"""``cryokit egms reference|calibrate|ortho|compare|plot``: commands registered on the ``egms`` sub-app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..core.errors import UserError
from ..core.outputs import guarded_dir, guarded_file, safe_name
from . import overwrite_option, positive, summary
from .egms import egms_app


@egms_app.command("reference")
def reference(
    inp: Path = typer.Argument(..., metavar="INPUT", help="EGMS burst or tile (.zip or .csv, any release naming)."),
    out: Path = typer.Option(..., "-o", "--output", "--out", help="Output: .zip/.csv (EGMS format, reference in the XML header), .parquet or .gpkg; a JSON report is written beside it (same name, .json)."),
    pid: Optional[str] = typer.Option(None, "--pid", help="Reference point: this pid's series."),
    point: Optional[tuple[float, float]] = typer.Option(None, "--point", metavar="LON LAT", help="Reference area centre in degrees (WGS84); with --radius."),
    radius: Optional[float] = typer.Option(None, "--radius", help="Radius (m) around --point; the reference is the per-date median of the points inside."),
    area: Optional[Path] = typer.Option(None, "--area", help="Polygon file (any OGR format; WGS84 when it declares no CRS); the reference is the median of the points inside."),
    overwrite: bool = overwrite_option(),
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
    summary("cryokit egms reference", [
        ("reference", f"{r['type']}: {r['n_points']} point(s)"),
        ("reference velocity", f"{r['reference_velocity_mm_yr']:+.2f} mm/yr (removed)"),
        ("output", ", ".join(rep["outputs"]))])


@egms_app.command("calibrate")
def calibrate(
    inp: Path = typer.Argument(..., metavar="INPUT", help="EGMS burst (.zip or .csv)."),
    gnss_files: list[Path] = typer.Option(..., "--gnss", help="GNSS input, repeatable: NGL .tenv series (velocity fitted: linear + annual + semi-annual, outliers trimmed) or a CSV station,lon,lat,ve,vn,vu[,sve,svn,svu] in mm/yr."),
    out: Path = typer.Option(..., "-o", "--output", "--out", help="Output: .zip/.csv (EGMS), .parquet or .gpkg; report (per-station residuals) as OUT.json."),
    stations: Optional[Path] = typer.Option(None, "--stations", help="CSV station,lon,lat (degrees): coordinates for .tenv files, which carry none."),
    plate_model: str = typer.Option("eurasia", "--plate-model", help="Plate motion removed from the GNSS horizontal velocities: eurasia (ITRF2014 Euler pole, Altamimi et al. 2017: ETRF-like) | none (velocities already plate-fixed)."),
    model: str = typer.Option("offset", "--model", help="Correction fitted to GNSS-minus-InSAR residuals: offset | plane (needs 3+ stations)."),
    radius: float = typer.Option(250.0, "--radius", help="InSAR velocity at a station: median of the points within this radius (m)."),
    min_points: int = typer.Option(3, "--min-points", help="Stations with fewer points within --radius are not used."),
    overwrite: bool = overwrite_option(),
):
    """Calibrate a burst to GNSS: a per-burst offset or plane, fitted robustly, removed.

    GNSS ENU velocities are projected on the LOS of the points around each station and compared
    with their median velocity; the fitted correction is added to every velocity and
    correction x t (years) to every series; statistics are recomputed.
    LOS displacement in mm, positive towards the satellite (los_east/north/up =
    ground-to-satellite unit vector); velocities mm/yr; t in years from the first date.
    """
    from ..egms.product import make_calibration

    positive("--min-points", min_points)
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
    summary("cryokit egms calibrate", rows)


@egms_app.command("ortho")
def ortho_cmd(
    inputs: list[Path] = typer.Argument(..., metavar="ASC... DESC...", help="Calibrated (L2b) bursts, ascending and descending, any order (geometry from los_east)."),
    outdir: Path = typer.Option(..., "-o", "--output", "--outdir", help="Output folder: new, empty, or an earlier egms ortho output (with --overwrite)."),
    north_velocity: Optional[str] = typer.Option(None, "--north-velocity", help="North velocity model (mm/yr): a number, a CSV station,lon,lat,vn (inverse-distance interpolated) or a raster. Default 0 (stated in the outputs)."),
    step_days: int = typer.Option(6, "--step-days", help="Regular time grid step (days)."),
    max_gap: float = typer.Option(90.0, "--max-gap", help="Longest gap (days) bridged by interpolation."),
    min_points: int = typer.Option(3, "--min-points", help="Points a cell needs over both geometries."),
    version: Optional[int] = typer.Option(None, "--product-version", help="Version number in the file names (default: from the input names, else 1)."),
    place: Optional[str] = typer.Option(None, "--place", help="Place name for the metadata record."),
    overwrite: bool = overwrite_option(),
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
    positive("--step-days", step_days)
    positive("--min-points", min_points)
    if not max_gap > 0:
        raise UserError(f"--max-gap: must be > 0 days, got {max_gap}")
    nv = north_velocity if north_velocity and os.path.exists(north_velocity) else None
    with guarded_dir(outdir, "egms ortho", inputs=(*inputs, nv), overwrite=overwrite):
        rep = make_ortho([str(p) for p in inputs], outdir, opts)
    v = rep["velocity_summary_mm_yr"]
    summary("cryokit egms ortho", [
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
    out: Path = typer.Option(..., "-o", "--output", "--out", help="Per-point differences (.csv or .parquet); statistics as OUT.json."),
    max_distance: float = typer.Option(5.0, "--max-distance", help="Points whose pid is in one release only are matched to the nearest unmatched point within this distance (m)."),
    overwrite: bool = overwrite_option(),
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
    summary("cryokit egms compare", [
        ("matched", f"{c['matched']} ({c['matched_by_pid']} by pid, {c['matched_by_location']} "
                    f"by location); unmatched old {c['unmatched_old']}, new {c['unmatched_new']}"),
        ("velocity NEW-OLD", f"mean {d.get('mean', float('nan')):+.2f}, median "
                             f"{d.get('median', float('nan')):+.2f}, NMAD {d.get('nmad', float('nan')):.2f} mm/yr"),
        ("output", f"{out}, {Path(out).with_suffix('.json')}")])


@egms_app.command("plot")
def plot(
    inp: Path = typer.Argument(..., metavar="INPUT", help="EGMS burst or tile (.zip or .csv)."),
    pid: str = typer.Option(..., "--pid", help="Point whose time series is drawn (circled on the map)."),
    outdir: Path = typer.Option(..., "-o", "--output", "--outdir", help="Directory for velocity_map.png and timeseries_PID.png."),
    overwrite: bool = overwrite_option(),
):
    """Velocity map (diverging colours, symmetric limits) and one point's series with its fit."""
    from ..egms.product import make_plots

    files = [Path(outdir) / "velocity_map.png",
             Path(outdir) / f"timeseries_{safe_name(pid, 'pid')}.png"]
    with guarded_file(files[0], inputs=(inp,), overwrite=overwrite, beside=files[1:]):
        rep = make_plots(inp, pid, outdir)
    summary("cryokit egms plot", [("points", str(rep["n_points"])),
                                  ("output", f"{rep['velocity_map']}, {rep['timeseries']}")])


def register(app: typer.Typer) -> None:
    """Nothing to add at the top level: the commands live on ``egms_app``."""

