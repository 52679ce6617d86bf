"""``cryokit landcover features|train|predict|assess``: feature stacks, models, maps, accuracy."""

from __future__ import annotations

import math

import re
from pathlib import Path
from typing import Optional

import typer


from ..core.errors import UserError
from ..core.outputs import guarded_dir, guarded_file
from . import options

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
    out: Path = options.output_file("Output feature stack (float32 cloud-optimised GeoTIFF, nodata NaN)."),
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
    workers: Optional[int] = options.workers("blocks"),
    scheduler: Optional[str] = options.scheduler("blocks"),
    overwrite: bool = options.overwrite(),
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

    options.positive("--block", block)
    options.positive("--workers", workers)
    if not math.isfinite(scale) or scale == 0 or not math.isfinite(offset):
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
    options.summary("cryokit landcover features", [
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
    out: Path = options.output_file("Report (JSON). The confusion-matrix figure is written beside it (same name, .png)."),
    column: Optional[str] = typer.Option(None, "--label-column", help="Label column of a vector reference (default: class, code, label... whichever exists). Names are matched to the legend's class names."),
    legend_file: Optional[Path] = typer.Option(None, "--legend", help="Legend (JSON or CSV code,name,colour) naming the classes; default: the legend embedded in MAP."),
    all_touched: bool = typer.Option(False, "--all-touched", help="Reference polygons label every pixel they touch (default: pixels whose centre is inside)."),
    block: int = typer.Option(1024, "--block", help="Rows of MAP read at a time."),
    overwrite: bool = options.overwrite(),
):
    """Accuracy of a class map against reference labels.

    Writes a JSON report: confusion matrix (rows = map class, columns = reference class, pixel
    counts), overall accuracy, Cohen's kappa, per-class precision (user's accuracy), recall
    (producer's accuracy) and F1, macro-F1; and the area-adjusted overall, user's and
    producer's accuracies and class areas (m^2) with 95 % confidence intervals (Olofsson et
    al. 2014, map classes as strata, mapped areas from every map pixel). Classes are named from
    --legend or the map's embedded legend.
    """
    from ..landcover.assess import assess_map
    from ..landcover.inputs import load_legend

    legend = load_legend(legend_file) if legend_file else None
    options.positive("--block", block)
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
    options.summary("cryokit landcover assess", rows)


@landcover_app.command("train")
def train(
    features: Path = typer.Argument(..., help="Feature stack (multi-band GeoTIFF, NaN/nodata masked; band descriptions = feature names, e.g. from 'cryokit landcover features')."),
    labels: Path = typer.Option(..., "--labels", help="Training labels: points or polygons (any OGR format) or a label raster (class codes, 0 = unlabelled); reprojected onto the stack grid."),
    out: Path = options.output_file("Model file to write (arrays and JSON in a zip, e.g. model.npz: loading it runs no code); MODEL.json beside it holds legend, feature names and parameters."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Attribute with the class codes or names (default: first of class, code, label, ...)."),
    balance: str = typer.Option("none", "--balance", help="Class weights: none; balanced (inverse of the class sample counts: rare-class recall up, overall accuracy usually down); sqrt (inverse square root of the counts: a compromise); subsample (rf: balanced weights recomputed on each tree's bootstrap sample)."),
    model: str = typer.Option("rf", "--model", help="rf (random forest, compiled for fast prediction), lgbm (LightGBM) or rf+lgbm (mean of both models' class probabilities; prediction as slow as lgbm)."),
    local: Optional[int] = typer.Option(None, "--local", help="Locally adaptive: one model per tile of this many pixels, trained on the tile and its neighbours, blended at edges (default: one global model)."),
    blend: float = typer.Option(1.0, "--blend", help="With --local: width of the blending ramp across tile edges as a fraction of the tile; 1 (default) blends bilinearly between the four nearest tile centres (4 models per pixel), 0.5 lets the inner half of each tile use its own model alone (1.4x faster prediction on the synthetic benchmark at -0.04 points of accuracy)."),
    legend: Optional[str] = typer.Option(None, "--legend", help="Legend file (JSON or CSV code,name,colour), or 'calc' for the CALC-2020 legend (codes 1-10, label names matched to its classes). Default: the labels' own classes, named by the label values (or by a text column that matches numeric codes one to one, else 'class N'), coloured as CALC-2020 where a name matches."),
    trees: int = typer.Option(64, "--trees", help="Trees (rf) or boosting rounds (lgbm) per model."),
    max_depth: int = typer.Option(12, "--max-depth", help="Tree depth limit of rf models (prediction time grows with the depth)."),
    min_leaf: int = typer.Option(1, "--min-leaf", help="Fewest training samples in an rf leaf (1 = fully grown trees)."),
    max_features: Optional[float] = typer.Option(None, "--max-features", help="Fraction (0-1] of the features an rf split chooses from (default: sqrt(n) of n features)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    lgbm_balance: Optional[str] = typer.Option(None, "--lgbm-balance", help="With --model rf+lgbm: class weights of the LightGBM member (none | balanced | sqrt), e.g. an unweighted rf (overall accuracy) with a balanced lgbm (rare classes). Default: --balance."),
    lgbm_rounds: Optional[int] = typer.Option(None, "--lgbm-rounds", help="With --model rf+lgbm: boosting rounds of the LightGBM member. Default: --trees."),
    prior: str = typer.Option("none", "--prior", help="Class-prior correction (global models): none (default); train = multiply the class probabilities by per-class weights, fitted on out-of-fold predictions of a 3-fold CV in 10 px blocks of the training pixels, so that the predicted class frequencies match the training class frequencies (training takes 4x longer; prediction speed unchanged)."),
    overwrite: bool = options.overwrite(),
):
    """Train a land cover classifier on labelled pixels of a feature stack.

    A labelled class missing from the legend is an error; legend classes without samples are
    noted in MODEL.json and never predicted.  Samples with missing (NaN) features are kept:
    the models learn which side of each split missing values take.
    """
    from ..landcover.classify import ModelParams
    from ..landcover.product import TrainOptions, train_model

    # The parameters are checked where they are defined; their messages name the fields,
    # which become the options here.
    names = {"model": "--model", "balance": "--balance", "n_estimators": "--trees",
             "max_depth": "--max-depth", "min_samples_leaf": "--min-leaf",
             "max_features": "--max-features", "lgbm_balance": "--lgbm-balance",
             "lgbm_rounds": "--lgbm-rounds", "local tile size": "--local tile size",
             "blend": "--blend", "prior": "--prior", "local models": "--local models",
             "(not with local)": "(not with --local)", "to model rf+lgbm": "to --model rf+lgbm"}
    try:
        params = ModelParams(model=model, balance=balance, n_estimators=trees,
                             max_depth=max_depth, min_samples_leaf=min_leaf,
                             max_features="sqrt" if max_features is None else max_features,
                             seed=seed, lgbm_balance=lgbm_balance, lgbm_rounds=lgbm_rounds)
        opts = TrainOptions(label_column=label_column, local=local,
                            legend=str(legend) if legend else None, prior=prior, blend=blend,
                            model=params)
    except ValueError as e:
        msg = str(e)
        for field_name, option in sorted(names.items(), key=lambda kv: -len(kv[0])):
            msg = re.sub(rf"(?<![\w-]){re.escape(field_name)}(?![\w])", option, msg, count=1)
        raise UserError(msg) from None
    legend_file = legend if legend and legend.lower() not in ("calc", "calc-2020", "calc2020") \
        else None
    with guarded_file(out, inputs=(features, labels, legend_file), overwrite=overwrite,
                      beside=[f"{out}.json"]):
        m = train_model(str(features), str(labels), str(out), opts)
    rows = [("samples", f"{m.info['n_samples']} ({m.info['dropped_nan_samples']} dropped: NaN)"),
            ("classes", ", ".join(f"{k} {v}" for k, v in m.info["samples"].items())),
            ("model", f"{model}, balance {balance}"
                      + (f" (lgbm member {lgbm_balance or balance}, {lgbm_rounds or trees} rounds)"
                         if model == "rf+lgbm" else "")
                      + (", class-prior correction" if prior != "none" else "") + f", {'local ' + str(local) + ' px tiles, ' + str(m.info['local_models']) + ' local models' if local else 'global'}")]
    rows += [("note", n) for n in m.info["notes"]]
    options.summary("cryokit landcover train", rows + [("output", str(out))])


@landcover_app.command("predict")
def predict(
    features: Path = typer.Argument(..., help="Feature stack with the model's features in the same order (checked by band description)."),
    model: Path = typer.Option(..., "--model", help="Model written by 'cryokit landcover train'."),
    out: Path = options.output_file("Map GeoTIFF to write (uint8 class codes, 0 = nodata, colour table and legend embedded); quicklook.png, metadata.json and stac-item.json go beside it, so give it a folder of its own."),
    probability: bool = typer.Option(False, "--probability/--no-probability", help="Add band 2: confidence = probability of the mapped class in percent (255 = nodata)."),
    regions: Optional[Path] = typer.Option(None, "--regions", help="Polygons (any OGR format): also write one map per region, clipped to it (outside = 0), as <stem>_<CODE>.tif beside the map (the code from --region-column), with a quick-look <stem>_<CODE>.png and their mosaic <stem>_regions.vrt; one record for the set."),
    region_column: str = typer.Option("code", "--region-column", help="Column of --regions with the region code used in file names."),
    workers: Optional[int] = options.workers("blocks"),
    scheduler: Optional[str] = options.scheduler("blocks"),
    block: int = typer.Option(1024, "--block", help="Block side in pixels read at a time."),
    smooth: float = typer.Option(0.0, "--smooth", metavar="SIGMA_PX", help="Spatial regularisation: smooth each class probability with a Gaussian of this sigma (pixels) over the valid pixels before the arg-max; removes isolated misclassified pixels but also erodes thin features (1-px roads). 0 = off (default). The confidence band then holds the smoothed probability."),
    mmu: int = typer.Option(0, "--mmu", metavar="PIXELS", help="Minimum mapping unit: 8-connected patches of one class smaller than this many pixels take their next most probable class (after --smooth); thin but long features survive. 0 = off (default)."),
    dates: Optional[str] = typer.Option(None, "--dates", help="Date, or START,END, the map stands for (YYYY-MM-DD). Default: the dates of the feature stack (band names YYYY-MM-DD_..., its feature_dates tag, or an acquisition tag); a stack without any needs it."),
    overwrite: bool = options.overwrite(),
    trust_model: bool = typer.Option(False, "--trust-model", help="Load a model saved by an older cryokit as a pickle (joblib). Unpickling runs code from the file: use it only for a model you made yourself."),
):
    """Predict a land cover map block by block from a feature stack and a trained model.

    With --smooth/--mmu, blocks are read with a halo of max(3 sigma, mmu) pixels so the
    map is the same for any --block.
    """
    from ..core.errors import UserError
    from ..landcover.product import predict_map

    if smooth < 0:
        raise UserError(f"--smooth must be >= 0 pixels, got {smooth}")
    if mmu < 0:
        raise UserError(f"--mmu must be >= 0 pixels, got {mmu}")
    options.positive("--block", block)
    options.positive("--workers", workers)
    with guarded_dir(Path(out).absolute().parent, "landcover predict",
                     inputs=(features, model, f"{model}.json", regions), overwrite=overwrite):
        rep = predict_map(str(features), str(model), str(out), probability=probability,
                          regions=str(regions) if regions else None,
                          region_column=region_column, workers=workers, scheduler=scheduler,
                          block=block, progress=True, smooth=smooth, mmu=mmu,
                          trust_model=trust_model, dates=dates)
    total = sum(rep["classes"].values()) or 1
    rows = [("classes", ", ".join(f"{c}: {100 * n / total:.1f}%" for c, n in rep["classes"].items())),
            ("nodata pixels", str(rep["nodata_pixels"])), ("blocks", str(rep["blocks"])),
            ("regularisation", ", ".join(
                ([f"Gaussian sigma {smooth:g} px"] if smooth > 0 else [])
                + ([f"minimum mapping unit {mmu} px"] if mmu > 1 else [])) or "none")]
    rows += [(f"region {k}", v) for k, v in rep["regions"].items()]
    options.summary("cryokit landcover predict", rows + [("output", rep["out"])])
