"""``cryokit velocity`` and ``cryokit sar-velocity``: glacier velocity from optical pairs and
SAR amplitude series."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..core.errors import UserError
from ..core.outputs import guarded_dir
from ..velocity.params import SAR_DEFAULTS, TrackParams
from . import options

OPTICAL = TrackParams()


def _velocity_summary(rep: dict, outdir: str) -> None:
    sg = rep["stable_ground"]
    rows = [("dates", f"{rep['dates'][0]} -> {rep['dates'][1]} ({rep['dt_days']:.4g} d)"),
            ("nodes", f"{rep['node_grid']['rows']} x {rep['node_grid']['cols']}, "
                      f"{100 * rep['valid_fraction']:.1f} % valid"),
            ("matching", f"{rep['timings_s']['match_s']:.2f} s")]
    if sg:
        rows.append(("stable ground", f"{sg['n_nodes']} nodes, median offset "
                     f"({sg['median_offset_px'][0]:+.3f}, {sg['median_offset_px'][1]:+.3f}) px, "
                     f"NMAD ({sg['nmad_px'][0]:.3f}, {sg['nmad_px'][1]:.3f}) px = "
                     f"({sg['nmad_units'][0]:.3f}, {sg['nmad_units'][1]:.3f}) {rep['units']}"))
    rows.append(("output", outdir))
    options.summary("cryokit velocity", rows)


def optical_params(ref: Path, *, chip: int, step: int | None, search: int,
                   out_res: float | None, out_crs: str | None = None, **kw) -> TrackParams:
    """Tracking parameters of the optical commands; without ``--out-crs``, ``--out-res``
    (metres) sets the step (with it, the output pixel size in that CRS)."""
    from ..core.raster import projected_grid, read_grid

    for name, v in (("--chip", chip), ("--step", step), ("--search", search)):
        options.positive(name, v)
    if out_res is not None and not out_res > 0:
        raise UserError(f"--out-res: must be > 0, got {out_res}")
    if out_res is not None and out_crs is None:
        res = projected_grid(read_grid(ref)).res[0]
        k = out_res / res
        if k < 1 or abs(k - round(k)) > 1e-6:
            raise UserError(f"--out-res {out_res:g} m is not a whole multiple of the pixel size "
                            f"({res:g} m)", ref)
        if step is not None and step != round(k):
            raise UserError(f"--step {step} and --out-res {out_res:g} m disagree "
                            f"(pixel size {res:g} m)")
        step = int(round(k))
    try:
        return TrackParams(chip=chip, step=step or OPTICAL.step, search=search, **kw)
    except ValueError as e:
        raise UserError(str(e)) from None


def velocity(
    ref: Path = typer.Argument(..., help="Reference (earlier) image: any GDAL raster, band 1."),
    sec: Path = typer.Argument(..., help="Secondary (later) image, on REF's grid unless --resample."),
    outdir: Path = options.output_dir("Output folder: new, empty, or an earlier velocity output (with --overwrite)."),
    dates: Optional[tuple[str, str]] = typer.Option(
        None, "--dates", metavar="D1 D2",
        help="Acquisition dates YYYY-MM-DD of REF and SEC. Default: from the file names "
             "(Landsat, Sentinel-2, YYYYMMDD) and acquisition tags; a conflict is an error."),
    stable_mask: Optional[Path] = typer.Option(
        None, "--stable-mask",
        help="Stable (non-moving) ground: polygons (any OGR format, or GMT multi-segment text) "
             "or a raster whose non-zero pixels are stable. Its median offset is removed and its "
             "NMAD is the product error."),
    chip: int = typer.Option(OPTICAL.chip, help="Template (chip) size in pixels (even); 40 px = 600 m at 15 m."),
    step: Optional[int] = typer.Option(None, help=f"Node spacing in pixels [default: {OPTICAL.step}, or from --out-res]."),
    search: int = typer.Option(OPTICAL.search, help=f"Largest displacement searched, pixels per axis (coarse-to-fine beyond {OPTICAL.fine_search})."),
    prefilter: str = typer.Option("highpass", help="Pre-filter: none | highpass (image minus its Gaussian blur, sigma 1.5 px) | wallis (21 px)."),
    matcher: str = typer.Option("ncc", help="Matcher: ncc (normalised cross-correlation) | oc (orientation correlation)."),
    units: str = typer.Option("m/d", help="Velocity units: m/d | m/yr (365.25 d)."),
    out_res: Optional[float] = options.out_res(),
    out_crs: Optional[str] = options.out_crs(),
    resample: bool = typer.Option(False, "--resample", help="Warp SEC onto REF's grid (bilinear) when the grids differ."),
    prior: Optional[Path] = typer.Option(None, "--prior", help="Prior velocity (2-band vx, vy raster or a cryokit velocity directory) that sets the search centres instead of the coarse pass."),
    stable_model: str = typer.Option("median", "--stable-model", help="Stable-ground correction: median | plane."),
    max_nodata: float = typer.Option(OPTICAL.max_nodata, "--max-nodata", help="Largest nodata fraction of a chip still matched (on its valid pixels)."),
    min_snr: float = typer.Option(OPTICAL.min_snr, "--min-snr", help="Nodes with peak/mean |correlation| below this are invalid."),
    fill_gaps: bool = typer.Option(False, "--fill-gaps", help="Fill isolated invalid nodes from neighbours (marked in filled.tif)."),
    workers: Optional[int] = options.workers("tiles"),
    scheduler: Optional[str] = options.scheduler("tiles"),
    tile_nodes: int = typer.Option(0, "--tile-nodes", help="Nodes per tile side (0: about 2048 px per tile)."),
    stable_values: Optional[str] = options.stable_values(),
    place: Optional[str] = options.place(),
    overwrite: bool = options.overwrite(),
):
    """Glacier velocity from an optical image pair (feature tracking).

    Writes OUTDIR/vx.tif, vy.tif (easting and northing components), speed.tif (in --units),
    v_error.tif (1-sigma speed error, with --stable-mask), snr.tif, report.json (dates, parameters, stable-ground offset and NMAD in px and units,
    valid fraction, timings), metadata.json, stac-item.json and quicklook.png. Rasters are
    cloud-optimised GeoTIFFs on the node grid (pixel = step x image pixel), nodata NaN.
    """
    from ..velocity.product import VelocityOptions, make_velocity

    for name, v in (("--workers", workers), ("--tile-nodes", tile_nodes if tile_nodes else None)):
        options.positive(name, v)
    params = optical_params(ref, chip=chip, step=step, search=search, out_res=out_res,
                            out_crs=out_crs, prefilter=prefilter, matcher=matcher,
                            max_nodata=max_nodata, min_snr=min_snr, fill_gaps=fill_gaps)
    if stable_model not in ("median", "plane"):
        raise UserError(f"--stable-model must be median or plane, got {stable_model!r}")
    opts = VelocityOptions(units=units, stable_model=stable_model, resample=resample,
                           tile_nodes=tile_nodes, workers=workers, scheduler=scheduler,
                           progress=True, place=place, out_crs=out_crs,
                           out_res=out_res if out_crs else None,
                           stable_values=options.parse_codes("--stable-values", stable_values))
    with guarded_dir(outdir, "velocity", inputs=(ref, sec, stable_mask, prior),
                     overwrite=overwrite):
        rep = make_velocity(str(ref), str(sec), str(outdir), params, dates=dates,
                            stable_mask=str(stable_mask) if stable_mask else None,
                            prior=str(prior) if prior else None, options=opts)
    _velocity_summary(rep, str(outdir))


def sar_velocity(
    images: list[Path] = typer.Argument(..., help="SAR images: Sentinel-1 GRD products as SAFE folders or zips (stripmap SLC is accepted, untested), terrain-corrected onto the --dem grid with their own orbits; or GeoTIFFs of amplitude, intensity or dB on one grid. Date-times from Sentinel-1 style names (start of sensing, UTC), else dates from YYYYMMDD / YYYY-MM-DD names or acquisition tags."),
    outdir: Path = options.output_dir("Output folder: new, empty, or an earlier sar-velocity output, in which a re-run resumes."),
    dem: Optional[Path] = typer.Option(None, "--dem", help="DEM (metres) covering the images, any CRS; heights at nodes model the terrain offset. Without it the model has no terrain term. Needed with Sentinel-1 products: its grid is the output grid (a geographic DEM is warped to its UTM zone), its heights (taken as ellipsoidal) the terrain of the geocoding."),
    polarisation: Optional[str] = typer.Option(None, "--polarisation", help="Polarisation of Sentinel-1 products to track (VV, HH, VH, HV). Default: the co-polarisation (VV or HH)."),
    stable_mask: Optional[Path] = typer.Option(None, "--stable-mask", help="Stable ground (polygons or raster) where the orbit/terrain model is fitted. Default: all nodes, moving ice trimmed as outliers."),
    heading: Optional[float] = typer.Option(None, "--heading", help="Track heading, degrees clockwise from grid north, for map-projected images (S1 ascending about -12, descending about -168). Default: from the orbit of Sentinel-1 products; radar geometry (x = range, y = azimuth) for GeoTIFFs."),
    pairs: str = typer.Option("consecutive", "--pairs", help="Pair network: consecutive | all-within-DAYS (e.g. all-within-36)."),
    units: str = typer.Option("m/d", help="Velocity units: m/d | m/yr (365.25 d). Pair and cumulative displacements are in metres."),
    chip: int = typer.Option(SAR_DEFAULTS.chip, help="Chip size in pixels (even); 64 px = 1.3 km at 20 m, needed against speckle."),
    step: int = typer.Option(SAR_DEFAULTS.step, help="Node spacing in pixels."),
    search: int = typer.Option(SAR_DEFAULTS.search, help="Largest displacement searched, pixels per axis (coarse-to-fine)."),
    oversample: int = typer.Option(1, "--oversample", help="Interpolate chips to N-times finer pixels before correlation (2 is classic for detected SAR; ~N^2 slower)."),
    degree: int = typer.Option(1, "--degree", help="Polynomial degree of the orbit model in image coordinates (0-2)."),
    workers: Optional[int] = options.workers("pairs"),
    scheduler: Optional[str] = options.scheduler("pairs"),
    input_units: str = typer.Option("auto", "--input-units", help="What the pixels hold: amplitude | intensity | db | auto (dB when most values are negative)."),
    out_crs: Optional[str] = typer.Option(None, "--out-crs", help="Write every raster and the cube in this CRS (e.g. EPSG:4326, as the Svalbard product is published), on GDAL's default warp grid of the node grid unless --out-res; range and azimuth stay the radar directions (stated in report.json)."),
    out_res: Optional[float] = options.out_res(),
    period: str = typer.Option("none", "--period", help="Also one mean velocity per period of the pairs' mid-dates: year | N days (e.g. 90d) | none."),
    offset_model: bool = typer.Option(True, "--offset-model/--no-offset-model", help="Fit the orbit/terrain offsets on stable ground and remove them; --no-offset-model keeps the offsets as measured (a scene with no stable ground, e.g. drifting sea ice)."),
    stable_values: Optional[str] = options.stable_values(),
    place: Optional[str] = options.place(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in an earlier output of sar-velocity (only the files cryokit wrote are removed); without it a re-run resumes."),
):
    """Glacier velocity from a series of SAR amplitude images (offset tracking).

    Writes OUTDIR/pairs/{t1}_{t2}.real.tif (range) and .imag.tif (azimuth) displacement in
    metres for each pair, with orbit and terrain offsets removed; cumulative/{t0}_{tk}.real/.imag.tif
    since the first date; mean_velocity.tif (speed, range, azimuth velocity in --units, pairs
    used); velocity_{period}.tif with --period; velocity_cube.nc and .zarr (x, y, time);
    report.json, metadata.json, stac-item.json,
    quicklook.png. Range is positive away from the track, azimuth along the flight direction.
    Finished pairs are not redone on a re-run. Exit code 1 when some pairs failed (listed).
    """
    from ..velocity.sar import sar_params
    from ..velocity.sar_product import SarOptions, make_sar_velocity

    for name, v in (("--chip", chip), ("--step", step), ("--search", search),
                    ("--workers", workers)):
        options.positive(name, v)
    if out_res is not None and not out_res > 0:
        raise UserError(f"--out-res: must be > 0, got {out_res}")
    if out_res is not None and out_crs is None:
        # on the images' grid: the node spacing (a whole number of pixels)
        from ..core.raster import read_grid

        first = images[0]
        if str(first).lower().endswith(".tif") or str(first).lower().endswith(".tiff"):
            res = read_grid(first).res[0]
        elif dem is not None:
            from ..core.raster import projected_grid
            res = projected_grid(read_grid(dem)).res[0]
        else:
            raise UserError("--out-res without --out-crs needs GeoTIFF images or --dem")
        k = out_res / res
        if k < 1 or abs(k - round(k)) > 1e-6:
            raise UserError(f"--out-res {out_res:g} m is not a whole multiple of the pixel size "
                            f"({res:g} m)", first)
        step = int(round(k))
    try:
        if oversample < 1:
            raise ValueError(f"--oversample must be >= 1, got {oversample}")
        params = sar_params(chip=chip, step=step, search=search, oversample=oversample)
    except ValueError as e:
        raise UserError(str(e)) from None
    if degree not in (0, 1, 2):
        raise UserError(f"--degree must be 0, 1 or 2, got {degree}")
    if input_units not in ("auto", "amplitude", "intensity", "db"):
        raise UserError(f"--input-units must be auto, amplitude, intensity or db, got "
                        f"{input_units!r}")
    opts = SarOptions(heading=heading, pairs=pairs, units=units, degree=degree,
                      workers=workers, scheduler=scheduler, progress=True, place=place,
                      overwrite=overwrite, input_units=input_units, offset_model=offset_model,
                      out_crs=out_crs, out_res=out_res if out_crs else None,
                      period=None if period == "none" else period,
                      polarisation=polarisation.upper() if polarisation else None,
                      stable_values=options.parse_codes("--stable-values", stable_values))
    with guarded_dir(outdir, "sar-velocity", inputs=(*images, dem, stable_mask),
                     overwrite=overwrite, resume=True):
        rep = make_sar_velocity([str(p) for p in images], str(outdir),
                                str(dem) if dem else None, params,
                                stable_mask=str(stable_mask) if stable_mask else None,
                                options=opts)
    med = rep["stable_nmad_px_median"]
    rows = [("images", f"{len(rep['images'])} ({rep['images'][0]['date']} -> {rep['images'][-1]['date']})"),
            ("pairs", f"{rep['n_pairs_ok']} of {rep['n_pairs']} ok; {len(rep['computed'])} computed, "
                      f"{len(rep['skipped'])} already done"),
            ("stable NMAD", f"{med[0]:.3f} px range, {med[1]:.3f} px azimuth (median over pairs)"
             if med else "-"),
            ("output", str(outdir))]
    for f in rep["failures"]:
        rows.append(("FAILED " + f["pair"], f["error"]))
    options.summary("cryokit sar-velocity", rows)
    if rep["failures"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``velocity`` and ``sar-velocity`` to the top-level app."""
    app.command("velocity")(velocity)
    app.command("sar-velocity")(sar_velocity)
