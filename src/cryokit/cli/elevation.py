"""``cryokit dem-change``: glacier elevation change from two DEMs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..core.outputs import guarded_dir
from . import options


def dem_change(
    ref: Path = typer.Argument(..., help="Reference DEM (heights in metres; any GDAL raster, projected or geographic CRS)."),
    tba: Path = typer.Argument(..., help="DEM to be aligned (other date/source/resolution/CRS)."),
    outdir: Path = options.output_dir("Output folder: new, empty, or an earlier dem-change output (with --overwrite)."),
    ref_date: str = typer.Option(..., "--ref-date", help="Date of REF (YYYY-MM-DD)."),
    tba_date: str = typer.Option(..., "--tba-date", help="Date of TBA (YYYY-MM-DD)."),
    glaciers: Optional[Path] = typer.Option(None, "--glaciers", help="Glacier outlines (any OGR vector format); stable terrain is the rest unless --stable-mask."),
    stable_mask: Optional[Path] = typer.Option(None, "--stable-mask", help="Stable terrain (polygons, or a raster whose non-zero pixels are stable)."),
    grid: str = typer.Option("coarser", "--grid", help="Common grid: coarser | ref | tba (pixel sizes compared in metres). A geographic DEM's grid goes to the UTM zone of REF's centre, in whole metres."),
    out_crs: Optional[str] = typer.Option(None, "--out-crs", help="CRS of the common grid and every output (projected, e.g. EPSG:32633). Default: the chosen DEM's, or REF's UTM zone for a geographic one."),
    out_res: Optional[float] = typer.Option(None, "--out-res", help="Pixel size of the common grid in metres. Default: the chosen DEM's."),
    coreg_steps: str = typer.Option("nuth_kaab,vertical_shift", "--coreg", help="Co-registration pipeline, in order: nuth_kaab, vertical_shift, deramp (comma-separated) or none."),
    curvature_bias: bool = typer.Option(True, "--curvature-bias/--no-curvature-bias", help="Remove the dh bias that depends on maximum curvature (resolution difference)."),
    curvature_second: str = typer.Option("min_curvature", "--curvature-second", help="Second variable of the curvature-bias table: min_curvature (default; with maximum curvature it describes the smoothing of a coarser DEM), elevation, or none (maximum curvature only, as xDEM TerrainBias)."),
    resolution_kernel: bool = typer.Option(True, "--resolution-kernel/--no-resolution-kernel", help="Before the curvature table, fit the resolution difference as a smoothing of the sharper DEM (Gaussian high-passes, robust least squares on stable terrain); only with --curvature-bias."),
    ref_vref: Optional[str] = typer.Option(None, "--ref-vref", help="Vertical reference of REF: ellipsoid, egm96 (SRTM), egm2008 (Copernicus DEM, FABDEM), navd88, or a geoid undulation grid file. Named geoids use PROJ's grids (us_nga_egm96_15.tif, us_nga_egm08_25.tif, us_noaa_g2018u0.tif) from CRYOKIT_GEOID_DIR or PROJ's data directories."),
    tba_vref: Optional[str] = typer.Option(None, "--tba-vref", help="Vertical reference of TBA (as --ref-vref). Different references are converted to the ellipsoid."),
    reference_points: Optional[list[Path]] = typer.Option(None, "--reference-points", help="Altimetry or survey points to check the DEMs with, on stable terrain, before and after co-registration (repeatable): ICESat-2 ATL06 (.h5; segments with atl06_quality_summary 0), ICESat GLAH14 (.h5), or a CSV/Parquet/vector table with x/y or lon/lat, z (or h), optional date and datum columns."),
    points_crs: Optional[str] = typer.Option(None, "--points-crs", help="CRS of a point table's x/y [default: EPSG:4326 for lon/lat columns, the layer's CRS for a vector file]."),
    points_vref: Optional[str] = typer.Option(None, "--points-vref", help="Vertical reference of a point table's heights (as --ref-vref) [default: its datum column, else ellipsoid]. ATL06 and GLAH14 heights are ellipsoidal."),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="Glacier id column of the outlines (default: row number)."),
    name_column: Optional[str] = typer.Option(None, "--name-column", help="Glacier name column of the outlines."),
    stable_values: Optional[str] = options.stable_values(),
    place: Optional[str] = options.place(),
    block_rows: Optional[int] = typer.Option(None, "--block-rows", help="Rows per block of the correction/differencing/writing pass [default: about 4 million pixels per block; grids smaller than that are one block]. Smaller blocks use less memory; the result does not depend on it (up to float32 rounding)."),
    workers: Optional[int] = options.workers("the blocks"),
    scheduler: Optional[str] = options.scheduler("the blocks"),
    overwrite: bool = options.overwrite(),
):
    """Glacier elevation change from two DEMs: co-registration, bias correction, per-glacier change.

    Writes OUTDIR/dh.tif (later minus earlier, m; band 2 marks hypsometrically filled voids),
    dhdt.tif (m/yr), tba_coregistered.tif, glaciers.csv and glaciers.gpkg (area, mean dh, dh/dt,
    volume change, mass balance in m w.e./yr with density 850 +- 60 kg/m3, and uncertainties from a
    variogram of stable dh), report.json (coregistration.shift_x/shift_y/shift_z: the translation
    that, added to TBA, aligns it on REF; statistics before/after of dh = REF - TBA in m),
    figures/, metadata.json, stac-item.json and quicklook.png.

    The co-registration is fitted on the whole grid; the rest runs by blocks of rows
    (--block-rows), serially or with --workers/--scheduler. Median and NMAD use every pixel up
    to 10 million per statistic, a fixed pseudo-random subsample beyond (noted in report.json).
    """
    from ..elevation.product import DemChangeOptions, make_dem_change, parse_coreg

    options.positive("--block-rows", block_rows)
    options.positive("--workers", workers)

    opts = DemChangeOptions(grid=grid, coreg=parse_coreg(coreg_steps),
                            curvature_bias=curvature_bias, curvature_second=curvature_second,
                            resolution_kernel=resolution_kernel,
                            reference_points=tuple(str(p) for p in reference_points or ()),
                            points_crs=points_crs, points_vref=points_vref,
                            ref_vref=ref_vref, tba_vref=tba_vref, id_column=id_column,
                            out_crs=out_crs, out_res=out_res,
                            name_column=name_column, place=place, block_rows=block_rows,
                            workers=workers, scheduler=scheduler, progress=True,
                            stable_values=options.parse_codes("--stable-values", stable_values))
    vref_files = [v for v in (ref_vref, tba_vref) if v and os.path.isfile(v)]
    with guarded_dir(outdir, "dem-change", inputs=(ref, tba, glaciers, stable_mask, *vref_files,
                                                   *(reference_points or ())),
                     overwrite=overwrite):
        rep = make_dem_change(str(ref), str(tba), str(outdir), ref_date=ref_date,
                              tba_date=tba_date, glaciers=str(glaciers) if glaciers else None,
                              stable_mask=str(stable_mask) if stable_mask else None,
                              options=opts)
    c = rep["coregistration"]
    sb, sa = rep["statistics"]["before"]["stable"], rep["statistics"]["after"]["stable"]
    options.summary("cryokit dem-change", [
        ("shift", f"x {c['shift_x']:+.2f} m, y {c['shift_y']:+.2f} m, z {c['shift_z']:+.2f} m"),
        ("stable before", f"median {sb['median']:+.2f} m, NMAD {sb['nmad']:.2f} m"),
        ("stable after", f"median {sa['median']:+.2f} m, NMAD {sa['nmad']:.2f} m"),
        *[(f"points {os.path.basename(p['file'])}",
           f"{p['points_on_stable_terrain']} on stable terrain; TBA - points median "
           + (f"{p['tba_before']['median']:+.2f} m before, {p['tba_after']['median']:+.2f} m after"
              if p["tba_after"]["count"] else "n/a"))
          for p in rep.get("reference_points", [])],
        ("blocks", f"{rep['blocks']['count']} of {rep['blocks']['rows']} rows"),
        ("output", str(outdir))])


def register(app: typer.Typer) -> None:
    """Add the ``dem-change`` command to the top-level app."""
    app.command("dem-change")(dem_change)
