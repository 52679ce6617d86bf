"""``cryokit egms ...``: EGMS point products (read, statistics, reference, calibrate, ortho, compare)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..core.outputs import guarded_file
from . import overwrite_option, summary

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
    output: Path = typer.Option(..., "-o", "--output", help=_OUT_HELP),
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
    overwrite: bool = overwrite_option(),
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
    summary("cryokit egms stats", rows)


def _median(x):
    import numpy as np

    return np.nanmedian(x) if len(x) else float("nan")


@egms_app.command("convert")
def convert(
    input: Path = typer.Argument(..., help="EGMS burst or tile: .zip (CSV + XML) or .csv."),
    output: Path = typer.Option(..., "-o", "--output", help=_OUT_HELP),
    crs: str = typer.Option("EPSG:4326", "--crs", help="CRS of the geometry for .parquet/.gpkg: "
                            "EPSG:4326 (from latitude/longitude) or EPSG:3035 (easting/northing)."),
    overwrite: bool = overwrite_option(),
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
    summary("cryokit egms convert", [
        ("input", f"{points.name} ({points.level}, {points.naming} naming)"),
        ("points", f"{len(points)}"), ("dates", _span(points)),
        ("time", f"{time.perf_counter() - t0:.2f} s"), ("output", f"{output} ({fmt})")])
