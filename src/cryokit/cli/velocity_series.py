"""``cryokit velocity-series``: optical glacier velocity from many images, per pair, per
period and on average, with an ITS_LIVE-style cube."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..core.errors import UserError
from ..core.outputs import guarded_dir
from . import options
from .velocity import OPTICAL, optical_params


def velocity_series(
    images: list[Path] = typer.Argument(..., help="Optical images on one grid (any GDAL raster, band 1), in any order. Date-times from the file names (Landsat, Sentinel-2, YYYYMMDD[THHMMSS]) and acquisition tags, or --dates."),
    outdir: Path = options.output_dir("Output folder: new, empty, or an earlier velocity-series output, in which a re-run resumes."),
    pairs: str = typer.Option("consecutive", "--pairs", help="Pairs: consecutive | all-within-DAYS (e.g. all-within-400) | a pairs file (two images per line by file name, stem, date or year)."),
    period: str = typer.Option("year", "--period", help="One velocity per period, by each pair's mid-date: year | N days (e.g. 90d) | none."),
    dates: Optional[list[str]] = typer.Option(None, "--dates", metavar="DATE", help="Acquisition date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM:SS, UTC) of each image, in the order given; repeat once per image."),
    stable_mask: Optional[Path] = typer.Option(None, "--stable-mask", help="Stable ground (polygons or raster): each pair's offset there is removed, and its NMAD scales the per-pixel errors (no errors without it)."),
    chip: int = typer.Option(OPTICAL.chip, help="Template (chip) size in pixels (even)."),
    step: Optional[int] = typer.Option(None, help=f"Node spacing in pixels [default: {OPTICAL.step}, or from --out-res]."),
    search: int = typer.Option(OPTICAL.search, help="Largest displacement searched, pixels per axis (coarse-to-fine)."),
    prefilter: str = typer.Option("highpass", help="Pre-filter: none | highpass | wallis."),
    matcher: str = typer.Option("ncc", help="Matcher: ncc | oc (orientation correlation, for strong radiometric change)."),
    units: str = typer.Option("m/yr", help="Velocity units: m/d | m/yr (365.25 d)."),
    out_res: Optional[float] = options.out_res(),
    out_crs: Optional[str] = options.out_crs(),
    stable_model: str = typer.Option("median", "--stable-model", help="Stable-ground correction per pair: median | plane."),
    stable_values: Optional[str] = options.stable_values(),
    workers: Optional[int] = options.workers("tiles of each pair"),
    place: Optional[str] = options.place(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in an earlier velocity-series output (only the files cryokit wrote are removed); without it a re-run resumes."),
):
    """Glacier velocity from a series of optical images (feature tracking).

    Writes OUTDIR/pairs/{t1}_{t2}/ (a 'cryokit velocity' product per pair: vx, vy, speed,
    v_error, snr), velocity_{period}.tif per period and mean_velocity.tif (bands: vx, vy,
    speed, 1-sigma speed error, pairs used; error-weighted means of the pairs),
    velocity_cube.zarr and velocity_cube.nc (mid_date, y, x; ITS_LIVE variable names),
    report.json, metadata.json, stac-item.json, quicklook.png. Finished pairs are not redone on
    a re-run; a failed pair is reported and left out (exit code 1).
    """
    from ..velocity.optical_series import SeriesOptions, make_velocity_series
    from ..velocity.product import VelocityOptions

    options.positive("--workers", workers)
    if not images:
        raise UserError("give at least two images")
    params = optical_params(images[0], chip=chip, step=step, search=search, out_res=out_res,
                            out_crs=out_crs, prefilter=prefilter, matcher=matcher)
    if stable_model not in ("median", "plane"):
        raise UserError(f"--stable-model must be median or plane, got {stable_model!r}")
    vo = VelocityOptions(units=units, stable_model=stable_model, workers=workers, place=place,
                         out_crs=out_crs, out_res=out_res if out_crs else None,
                         stable_values=options.parse_codes("--stable-values", stable_values))
    opts = SeriesOptions(pairs=pairs, period=None if period == "none" else period,
                         dates=tuple(dates) if dates else None, velocity=vo, overwrite=overwrite)
    pairs_file = Path(pairs) if Path(pairs).is_file() else None
    with guarded_dir(outdir, "velocity-series", inputs=(*images, stable_mask, pairs_file),
                     overwrite=overwrite, resume=True):
        rep = make_velocity_series([str(p) for p in images], str(outdir), params,
                                   stable_mask=str(stable_mask) if stable_mask else None,
                                   options=opts)
    sg = rep["mean"].get("stable_ground")
    rows = [("images", f"{len(rep['images'])} ({rep['images'][0]['time']} -> "
                       f"{rep['images'][-1]['time']})"),
            ("pairs", f"{len(rep['pairs'])} ok; {len(rep['computed'])} computed, "
                      f"{len(rep['skipped'])} already done"),
            ("periods", ", ".join(p["period"] for p in rep["periods"]) or "-"),
            ("stable NMAD", f"{sg['nmad'][0]:.3g} / {sg['nmad'][1]:.3g} {units} (x / y, mean)"
             if sg and sg["nmad"][0] is not None else "-"),
            ("output", str(outdir))]
    for f in rep["failures"]:
        rows.append(("FAILED " + f["pair"], f["error"]))
    options.summary("cryokit velocity-series", rows)
    if rep["failures"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``velocity-series`` to the top-level app."""
    app.command("velocity-series")(velocity_series)
