"""``cryokit landcover train|predict``: commands registered on the ``landcover`` sub-app."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..core.outputs import guarded_dir, guarded_file
from . import overwrite_option, positive, summary
from .landcover import landcover_app


@landcover_app.command("train")
def train(
    features: Path = typer.Argument(..., help="Feature stack (multi-band GeoTIFF, NaN/nodata masked; band descriptions = feature names, e.g. from 'cryokit landcover features')."),
    labels: Path = typer.Option(..., "--labels", help="Training labels: points or polygons (any OGR format) or a label raster (class codes, 0 = unlabelled); reprojected onto the stack grid."),
    out: Path = typer.Option(..., "-o", "--output", help="Model file to write (arrays and JSON in a zip, e.g. model.npz: loading it runs no code); MODEL.json beside it holds legend, feature names and parameters."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Attribute with the class codes or names (default: first of class, code, label, ...)."),
    balance: str = typer.Option("none", "--balance", help="Class weights: none; balanced (inverse of the class sample counts: rare-class recall up, overall accuracy usually down); sqrt (inverse square root of the counts: a compromise); subsample (rf: balanced weights recomputed on each tree's bootstrap sample)."),
    model: str = typer.Option("rf", "--model", help="rf (random forest, compiled for fast prediction), lgbm (LightGBM) or rf+lgbm (mean of both models' class probabilities; prediction as slow as lgbm)."),
    local: Optional[int] = typer.Option(None, "--local", help="Locally adaptive: one model per tile of this many pixels, trained on the tile and its neighbours, blended at edges (default: one global model)."),
    blend: float = typer.Option(1.0, "--blend", help="With --local: width of the blending ramp across tile edges as a fraction of the tile; 1 (default) blends bilinearly between the four nearest tile centres (4 models per pixel), 0.5 lets the inner half of each tile use its own model alone (1.4x faster prediction on the synthetic benchmark at -0.04 points of accuracy)."),
    legend: Optional[Path] = typer.Option(None, "--legend", help="Legend file (JSON or CSV code,name,colour); default CALC-2020 (codes 1-10)."),
    trees: int = typer.Option(64, "--trees", help="Trees (rf) or boosting rounds (lgbm) per model."),
    max_depth: int = typer.Option(12, "--max-depth", help="Tree depth limit of rf models (prediction time grows with the depth)."),
    min_leaf: int = typer.Option(1, "--min-leaf", help="Fewest training samples in an rf leaf (1 = fully grown trees)."),
    max_features: Optional[float] = typer.Option(None, "--max-features", help="Fraction (0-1] of the features an rf split chooses from (default: sqrt(n) of n features)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    lgbm_balance: Optional[str] = typer.Option(None, "--lgbm-balance", help="With --model rf+lgbm: class weights of the LightGBM member (none | balanced | sqrt), e.g. an unweighted rf (overall accuracy) with a balanced lgbm (rare classes). Default: --balance."),
    lgbm_rounds: Optional[int] = typer.Option(None, "--lgbm-rounds", help="With --model rf+lgbm: boosting rounds of the LightGBM member. Default: --trees."),
    prior: str = typer.Option("none", "--prior", help="Class-prior correction (global models): none (default); train = multiply the class probabilities by per-class weights, fitted on out-of-fold predictions of a 3-fold CV in 10 px blocks of the training pixels, so that the predicted class frequencies match the training class frequencies (training takes 4x longer; prediction speed unchanged)."),
    overwrite: bool = overwrite_option(),
):
    """Train a land cover classifier on labelled pixels of a feature stack.

    A labelled class missing from the legend is an error; legend classes without samples are
    noted in MODEL.json and never predicted.  Samples with a NaN feature are dropped.
    """
    from ..landcover.classify import BALANCES, MODELS, PRIORS
    from ..landcover.product import TrainOptions, train_model
    from ..core.errors import UserError

    if model not in MODELS:
        raise UserError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    if balance not in BALANCES:
        raise UserError(f"--balance must be one of {', '.join(BALANCES)}, got {balance!r}")
    if min_leaf < 1:
        raise UserError(f"--min-leaf must be >= 1, got {min_leaf}")
    if max_features is not None and not 0 < max_features <= 1:
        raise UserError(f"--max-features must be in (0, 1], got {max_features}")
    if lgbm_balance is not None and lgbm_balance not in BALANCES:
        raise UserError(f"--lgbm-balance must be one of {', '.join(BALANCES)}, got {lgbm_balance!r}")
    if (lgbm_balance is not None or lgbm_rounds is not None) and model != "rf+lgbm":
        raise UserError("--lgbm-balance and --lgbm-rounds apply to --model rf+lgbm only")
    if lgbm_rounds is not None and lgbm_rounds < 1:
        raise UserError(f"--lgbm-rounds must be >= 1, got {lgbm_rounds}")
    if prior not in PRIORS:
        raise UserError(f"--prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    if prior != "none" and local is not None:
        raise UserError("--prior applies to global models only (not with --local)")
    if not 0 < blend <= 1:
        raise UserError(f"--blend must be in (0, 1], got {blend}")
    if blend != 1.0 and local is None:
        raise UserError("--blend applies to --local models only")
    if local is not None and local < 8:
        raise UserError(f"--local tile size must be >= 8 pixels, got {local}")
    opts = TrainOptions(label_column=label_column, model=model, balance=balance, local=local,
                        legend=str(legend) if legend else None, n_estimators=trees,
                        max_depth=max_depth, min_samples_leaf=min_leaf,
                        max_features="sqrt" if max_features is None else max_features,
                        seed=seed, lgbm_balance=lgbm_balance, lgbm_rounds=lgbm_rounds,
                        prior=prior, blend=blend)
    for name, v in (("--trees", trees), ("--max-depth", max_depth), ("--local", local)):
        positive(name, v)
    with guarded_file(out, inputs=(features, labels, legend), overwrite=overwrite,
                      beside=[f"{out}.json"]):
        m = train_model(str(features), str(labels), str(out), opts)
    rows = [("samples", f"{m.info['n_samples']} ({m.info['dropped_nan_samples']} dropped: NaN)"),
            ("classes", ", ".join(f"{k} {v}" for k, v in m.info["samples"].items())),
            ("model", f"{model}, balance {balance}"
                      + (f" (lgbm member {lgbm_balance or balance}, {lgbm_rounds or trees} rounds)"
                         if model == "rf+lgbm" else "")
                      + (", class-prior correction" if prior != "none" else "") + f", {'local ' + str(local) + ' px tiles, ' + str(m.info['local_models']) + ' local models' if local else 'global'}")]
    rows += [("note", n) for n in m.info["notes"]]
    summary("cryokit landcover train", rows + [("output", str(out))])


@landcover_app.command("predict")
def predict(
    features: Path = typer.Argument(..., help="Feature stack with the model's features in the same order (checked by band description)."),
    model: Path = typer.Option(..., "--model", help="Model written by 'cryokit landcover train'."),
    out: Path = typer.Option(..., "-o", "--output", help="Map GeoTIFF to write (uint8 class codes, 0 = nodata, colour table and legend embedded); quicklook.png, metadata.json and stac-item.json go beside it, so give it a folder of its own."),
    probability: bool = typer.Option(False, "--probability/--no-probability", help="Add band 2: confidence = probability of the mapped class in percent (255 = nodata)."),
    regions: Optional[Path] = typer.Option(None, "--regions", help="Polygons (any OGR format): also write one map per region, clipped to it (outside = 0), in folder <stem>_<CODE>/."),
    region_column: str = typer.Option("code", "--region-column", help="Column of --regions with the region code used in file names."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local dask worker processes (>= 2); default: this process."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running dask scheduler (tcp://host:port)."),
    block: int = typer.Option(1024, "--block", help="Block side in pixels read at a time."),
    smooth: float = typer.Option(0.0, "--smooth", metavar="SIGMA_PX", help="Spatial regularisation: smooth each class probability with a Gaussian of this sigma (pixels) over the valid pixels before the arg-max; removes isolated misclassified pixels but also erodes thin features (1-px roads). 0 = off (default). The confidence band then holds the smoothed probability."),
    mmu: int = typer.Option(0, "--mmu", metavar="PIXELS", help="Minimum mapping unit: 8-connected patches of one class smaller than this many pixels take their next most probable class (after --smooth); thin but long features survive. 0 = off (default)."),
    overwrite: bool = overwrite_option(),
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
    positive("--block", block)
    positive("--workers", workers)
    with guarded_dir(Path(out).absolute().parent, "landcover predict",
                     inputs=(features, model, f"{model}.json", regions), overwrite=overwrite):
        rep = predict_map(str(features), str(model), str(out), probability=probability,
                          regions=str(regions) if regions else None,
                          region_column=region_column, workers=workers, scheduler=scheduler,
                          block=block, progress=True, smooth=smooth, mmu=mmu,
                          trust_model=trust_model)
    total = sum(rep["classes"].values()) or 1
    rows = [("classes", ", ".join(f"{c}: {100 * n / total:.1f}%" for c, n in rep["classes"].items())),
            ("nodata pixels", str(rep["nodata_pixels"])), ("blocks", str(rep["blocks"])),
            ("regularisation", ", ".join(
                ([f"Gaussian sigma {smooth:g} px"] if smooth > 0 else [])
                + ([f"minimum mapping unit {mmu} px"] if mmu > 1 else [])) or "none")]
    rows += [(f"region {k}", v) for k, v in rep["regions"].items()]
    summary("cryokit landcover predict", rows + [("output", rep["out"])])


def register(app: typer.Typer) -> None:
    """Nothing to add at the top level: the commands live on ``landcover_app``."""
