"""``cryokit landcover features|assess``: feature stacks and accuracy assessment."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import numpy as np

from ..core.errors import UserError
from ..core.outputs import guarded_file
from . import overwrite_option, positive, summary

landcover_app = typer.Typer(
    name="landcover", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Land cover maps with locally adaptive classifiers (CALC-2020 legend or your own): "
         "feature stacks, training, block-wise prediction and accuracy assessment.")


def register(app: typer.Typer) -> None:
    app.add_typer(landcover_app, name="landcover")


def _split(text: Optional[str]) -> Optional[tuple[str, ...]]:
    if text is None:
        return None
    return tuple(s.strip() for s in text.split(",") if s.strip())


@landcover_app.command("features")
def features(
    inputs: list[Path] = typer.Argument(..., help="Optical rasters (one or many dates; single- or multi-band). The first one's grid is the output grid; the others are resampled to it."),
    out: Path = typer.Option(..., "-o", "--output", "--out", help="Output feature stack (float32 cloud-optimised GeoTIFF, nodata NaN)."),
    bands: Optional[str] = typer.Option(None, "--bands", help="Comma-separated names for every input band, in order (e.g. B1,B2,B3,B4,B5,B7 or blue,green,red,nir,swir1,swir2; a YYYY-MM-DD_ prefix sets the date). Default: band descriptions (YYYY-MM-DD_B04, B04, red), else a _Bn file-name suffix."),
    sensor: Optional[str] = typer.Option(None, "--sensor", help="Meaning of Bn band numbers: sentinel2 | landsat8 | landsat9 | landsat7 | landsat5. Default: sentinel2 for zero-padded names (B04, B8A); required for B4-style names."),
    indices: Optional[str] = typer.Option(None, "--indices", help="Comma-separated indices among NDVI, NDWI, NDSI, NBR, NDBI, SAVI, or 'none'. Default: all the band roles allow."),
    stats: str = typer.Option("median,p10,p90", "--stats", help="Per-pixel statistics over dates (NaN ignored) of every band and index, when there are 2 dates or more: median, mean, std, min, max, pNN; 'none' for none."),
    per_date: bool = typer.Option(True, "--per-date/--stats-only", help="Keep every date's bands and indices, or only the temporal statistics."),
    sar: Optional[Path] = typer.Option(None, "--sar", help="SAR backscatter raster with VV and VH bands (by description, else bands 1, 2): adds VV, VH and VH-VV, all in dB."),
    sar_units: str = typer.Option("auto", "--sar-units", help="Units of the SAR input: auto (dB when tagged so or mostly negative) | db | linear (power, converted with 10 log10)."),
    dem: Optional[Path] = typer.Option(None, "--dem", help="DEM (metres, any CRS): adds elevation (m), slope (degrees, Horn) and aspect as sin/cos (clockwise from north, downhill direction)."),
    scale: float = typer.Option(1.0, "--scale", help="Optical values become value * scale + offset (e.g. 0.0001 for int16 surface reflectance). SAVI assumes reflectance 0..1."),
    offset: float = typer.Option(0.0, "--offset", help="See --scale."),
    optical_units: str = typer.Option("reflectance", "--optical-units", help="Unit written for optical bands (e.g. reflectance, DN)."),
    resampling: str = typer.Option("bilinear", "--resampling", help="Resampling of inputs on another grid: nearest | bilinear | cubic | average."),
    block: int = typer.Option(512, "--block", help="Block size in pixels: memory holds a few blocks of all features, never the whole stack."),
    context: Optional[str] = typer.Option(None, "--context", metavar="SCALES", help="Spatial-context bands: comma-separated odd window sides in pixels (e.g. 3,5). For each side K and each band NAME, adds NAME_meanKxK and NAME_stdKxK: mean and population standard deviation of the valid pixels in the KxK window centred on the pixel, in the band's units (NaN and outside the raster ignored; NaN where the band is NaN). Texture for roads and field edges, stable values for mixed pixels. Default: none. Adds 2 x len(SCALES) bands per band."),
    context_bands: Optional[str] = typer.Option(None, "--context-bands", help="Comma-separated shell patterns (e.g. '*_median,NDVI*') of the band names that get --context bands. Default: every band."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Compute blocks on a local dask cluster of N processes."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Compute blocks on an existing dask.distributed scheduler (tcp://host:port)."),
    overwrite: bool = overwrite_option(),
):
    """Feature stack for land cover classification, on the first input's grid.

    Bands, in order: for each date, its optical bands then its indices (names
    YYYY-MM-DD_B04, YYYY-MM-DD_NDVI; no prefix without dates); with 2+ dates, the temporal
    statistics of each band and index (B04_median, NDVI_p10...); then VV, VH, VH-VV (dB) and
    elevation, slope, aspect_sin, aspect_cos; then, with --context, the local means and
    standard deviations (NAME_mean3x3, ..., NAME_std3x3, ...). Band descriptions hold the names, band tag
    'units' the units (reflectance or --optical-units, 1 for indices, dB, m, degree); dataset
    tags record dates, band roles, index formulas and conventions. Nodata is NaN.
    """
    from ..landcover.features import FeatureOptions, plan_features, write_features

    positive("--block", block)
    positive("--workers", workers)
    if not np.isfinite(scale) or scale == 0 or not np.isfinite(offset):
        raise UserError(f"--scale must be a finite non-zero number and --offset finite, got "
                        f"{scale}, {offset}")
    if sar_units not in ("auto", "db", "linear"):
        raise UserError(f"--sar-units must be auto, db or linear, got {sar_units!r}")
    if resampling not in ("nearest", "bilinear", "cubic", "average"):
        raise UserError(f"--resampling must be nearest, bilinear, cubic or average, got {resampling!r}")
    idx = _split(indices)
    idx = () if idx == ("none",) else idx
    st = _split(stats) or ()
    st = () if st == ("none",) else st
    bad = [s for s in st if s not in ("median", "mean", "std", "min", "max")
           and not (s.startswith("p") and s[1:].isdigit() and 0 <= int(s[1:]) <= 100)]
    if bad:
        raise UserError(f"--stats: unknown statistic {', '.join(bad)}")
    ctx: tuple[int, ...] = ()
    if context is not None and context.strip().lower() not in ("", "none"):
        try:
            ctx = tuple(int(v) for v in _split(context))
        except ValueError:
            raise UserError(f"--context: window sides must be integers, got {context!r}") from None
    opts = FeatureOptions(bands=_split(bands), sensor=sensor, indices=idx, stats=st,
                          per_date=per_date, scale=scale, offset=offset,
                          optical_units=optical_units,
                          sar_db={"auto": None, "db": True, "linear": False}[sar_units],
                          resampling=resampling, block=block, context=ctx,
                          context_bands=_split(context_bands))
    plan = plan_features([str(p) for p in inputs], opts, sar=str(sar) if sar else None,
                         dem=str(dem) if dem else None)
    with guarded_file(out, inputs=(*inputs, sar, dem), overwrite=overwrite):
        write_features(plan, out, workers=workers, scheduler=scheduler, progress=True)
    g = plan.grid
    summary("cryokit landcover features", [
        ("grid", f"{g.height} x {g.width} px, {g.res[0]:g} m, {g.crs}"),
        ("dates", ", ".join(d for d in plan.dates if d) or "none"),
        ("indices", ", ".join(plan.indices) or "none"),
        ("context", (f"{len(plan.context_index)} band(s) x windows "
                     + ", ".join(f"{k}x{k}" for k in plan.options.context) + " px")
         if plan.context_index else "none"),
        ("bands", f"{len(plan.names)}: {', '.join(plan.names[:6])}"
                  f"{', ...' if len(plan.names) > 6 else ''}"),
        ("output", str(out))])


@landcover_app.command("assess")
def assess(
    map_path: Path = typer.Argument(..., metavar="MAP", help="Class map (band 1 = integer class codes, 0/nodata = unmapped)."),
    reference: Path = typer.Option(..., "--reference", help="Reference labels: a wall-to-wall or sparse label raster (resampled nearest), or points/polygons in any OGR format (reprojected)."),
    out: Path = typer.Option(..., "-o", "--output", "--out", help="Report (JSON). The confusion-matrix figure is written beside it (same name, .png)."),
    column: Optional[str] = typer.Option(None, "--label-column", help="Label column of a vector reference (default: class, code, label... whichever exists). Names are matched to the legend's class names."),
    legend_file: Optional[Path] = typer.Option(None, "--legend", help="Legend (JSON or CSV code,name,colour) naming the classes; default: the legend embedded in MAP."),
    all_touched: bool = typer.Option(False, "--all-touched", help="Reference polygons label every pixel they touch (default: pixels whose centre is inside)."),
    block: int = typer.Option(1024, "--block", help="Rows of MAP read at a time."),
    overwrite: bool = overwrite_option(),
):
    """Accuracy of a class map against reference labels.

    Writes a JSON report: confusion matrix (rows = map class, columns = reference class, pixel
    counts), overall accuracy, Cohen's kappa, per-class precision (user's accuracy), recall
    (producer's accuracy) and F1, macro-F1; and the area-adjusted overall, user's and
    producer's accuracies and class areas (m^2) with 95 % confidence intervals (Olofsson et
    al. 2014, map classes as strata, mapped areas from every map pixel). Classes are named from
    --legend or the map's embedded legend.
    """
    from ..landcover.accuracy import assess_map
    from ..landcover.legend import load_legend

    legend = load_legend(legend_file) if legend_file else None
    positive("--block", block)
    with guarded_file(out, inputs=(map_path, reference, legend_file), overwrite=overwrite,
                      beside=[Path(out).with_suffix(".png")]):
        rep = assess_map(str(map_path), str(reference), str(out), column=column, legend=legend,
                         all_touched=all_touched, block=block)
    worst = min((c for c in rep["per_class"] if c["f1"] is not None),
                key=lambda c: c["f1"], default=None)
    rows = [("samples", f"{rep['n_samples']} labelled pixels, {len(rep['classes'])} classes"),
            ("overall accuracy", f"{rep['overall_accuracy']:.3f} (area-adjusted "
             f"{rep['area_adjusted_overall_accuracy']:.3f} +- "
             f"{rep['area_adjusted_overall_accuracy_ci95'] or 0:.3f})"),
            ("kappa", f"{rep['kappa']:.3f}"), ("macro-F1", f"{rep['macro_f1']:.3f}")]
    if worst:
        rows.append(("weakest class", f"{worst['name']} (F1 {worst['f1']:.3f})"))
    for w in rep["warnings"]:
        rows.append(("warning", w))
    rows.append(("report", str(out)))
    summary("cryokit landcover assess", rows)
