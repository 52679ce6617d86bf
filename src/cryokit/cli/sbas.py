"""``cryokit sbas``: small-baseline inversion of unwrapped interferograms to EGMS-style points."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..core.errors import UserError
from ..core.outputs import guarded_dir
from . import options


def sbas(
    ifgs: list[Path] = typer.Argument(..., help="Unwrapped interferograms: GeoTIFFs in radians on one grid (dates from FIRST_DATE/SECOND_DATE tags or *_YYYYMMDD-YYYYMMDD_* names; nodata and 0 = no data; coherence files *cc*/*coh* with the same dates beside them are found), or one HDF5 file with igram (n_ifg, rows, cols), Jmat (+1/-1 per ifg) and dates."),
    outdir: Path = options.output_dir("Output folder: new, empty, or an earlier sbas output (with --overwrite)."),
    wavelength: Optional[float] = typer.Option(None, "--wavelength", help="Radar wavelength in metres [default: WAVELENGTH_METRES tag, else Sentinel-1 0.05546576]."),
    weight: str = typer.Option("none", "--weight", help="Weights of the interferograms from the coherence files, as MintPy's weight_func: none (ordinary least squares) | fim (= coherence): Fisher information 2Lγ²/(1-γ²) | coh: γ | var: 1 / phase variance of a distributed scatterer with --looks looks (Tough et al. 1995)."),
    looks: float = typer.Option(1.0, "--looks", help="Independent looks L of the coherence estimate (MintPy: NCORRLOOKS, or range x azimuth looks / 1.94 for Sentinel-1 IW), rounded, 1 to 80; changes the solution only with --weight var."),
    reference: Optional[tuple[float, float]] = typer.Option(None, "--reference", metavar="LON LAT", help="Reference point (degrees); default: automatic (coherent pixel moving like the median of the most coherent 10 %)."),
    reference_pixel: Optional[tuple[int, int]] = typer.Option(None, "--reference-pixel", metavar="ROW COL", help="Reference pixel by row and column instead of --reference."),
    min_coherence: float = typer.Option(0.7, "--min-coherence", help="Points need at least this temporal coherence (0-1)."),
    units: str = typer.Option("rad", "--units", help="Unit of an HDF5 igram: rad | mm (GeoTIFFs are radians)."),
    lon: Optional[Path] = typer.Option(None, "--lon", help="HDF5 input: longitude grid (raw float32 .flt or raster of the igram shape)."),
    lat: Optional[Path] = typer.Option(None, "--lat", help="HDF5 input: latitude grid."),
    dem: Optional[Path] = typer.Option(None, "--dem", help="DEM (m) for the points' height column."),
    allow_subsets: bool = typer.Option(False, "--allow-subsets", help="Solve a disconnected network per connected subset (each zero at its own first date) instead of failing."),
    block_rows: int = typer.Option(256, "--block-rows", help="Rows per inversion block."),
    workers: Optional[int] = options.workers("row blocks"),
    scheduler: Optional[str] = options.scheduler("row blocks"),
    place: Optional[str] = options.place(),
    overwrite: bool = options.overwrite(),
):
    """Ground motion points from a network of unwrapped interferograms (SBAS).

    Each pixel's phase series is the (weighted) least-squares solution over its valid
    interferograms (0 at the first date); interferograms are first referred to one pixel.
    Displacement d = -phase * wavelength / (4 pi) in mm along the line of sight, positive
    towards the satellite (MintPy's convention). Writes OUTDIR/points.csv and points.parquet
    (EGMS columns: pid, latitude, longitude, easting, northing in EPSG:3035, [height],
    line, pixel, rmse, temporal_coherence, mean_velocity ... then YYYYMMDD columns in mm),
    velocity.tif (LOS velocity and its std in mm/yr, temporal coherence), timeseries.nc
    (displacement in mm on x, y, time), report.json (network, reference, weights, counts,
    units, sign convention), metadata.json, stac-item.json and quicklook.png.
    """
    from ..sbas.product import SbasOptions, make_sbas

    options.positive("--block-rows", block_rows)
    options.positive("--workers", workers)
    if wavelength is not None and not (wavelength > 0 and wavelength < 10):
        raise UserError(f"--wavelength: must be a radar wavelength in metres (0 < L < 10), "
                        f"got {wavelength}")
    if not 0 <= min_coherence <= 1:
        raise UserError(f"--min-coherence: must be in [0, 1], got {min_coherence}")

    opts = SbasOptions(wavelength_m=wavelength, weight=weight, looks=looks,
                       reference_lonlat=reference, reference_rowcol=reference_pixel,
                       min_coherence=min_coherence,
                       units=units, allow_subsets=allow_subsets, block_rows=block_rows,
                       workers=workers, scheduler=scheduler, progress=True,
                       dem=str(dem) if dem else None, lon=str(lon) if lon else None,
                       lat=str(lat) if lat else None, place=place)
    with guarded_dir(outdir, "sbas", inputs=(*ifgs, dem, lon, lat), overwrite=overwrite):
        rep = make_sbas([str(p) for p in ifgs], str(outdir), opts)
    net, ref = rep["network"], rep["reference"]["series"]
    v = rep["velocity"]
    options.summary("cryokit sbas", [
        ("network", f"{net['n_interferograms']} interferograms, {net['n_dates']} dates, "
                    f"{net['n_components']} subset(s), min redundancy {net['min_redundancy']}"),
        ("reference", f"row {ref['row']}, col {ref['col']} ({ref['lon']:.5f}, {ref['lat']:.5f})"),
        ("points", f"{rep['counts']['points']} of {rep['counts']['pixels']} pixels "
                   f"(temporal coherence >= {rep['temporal_coherence']['threshold']})"),
        ("velocity", f"p5 {v['p05_mm_per_yr']} / median {v['median_mm_per_yr']} mm/yr (LOS, "
                     "+ towards the satellite)" if v["median_mm_per_yr"] is not None else "-"),
        ("output", str(outdir))])


def register(app: typer.Typer) -> None:
    """Add the ``sbas`` command to the top-level app."""
    app.command("sbas")(sbas)
