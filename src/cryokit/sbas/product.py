"""The ``cryokit sbas`` product: unwrapped interferograms -> SBAS series -> EGMS-style points.

Steps: read the stack (:mod:`.interferograms`), check the network (:mod:`.network`), refer
every interferogram to one pixel (given, or provisional: the pixel valid in every
interferogram with the highest mean coherence, else the smoothest phase), invert blocks of
rows (:func:`.inversion.invert`, through :func:`cryokit.core.parallel.run_tasks`), convert to LOS
millimetres (positive towards the satellite), move the reference to the final reference
pixel (given, or automatic: :func:`.inversion.choose_reference`) by subtracting its series, keep
pixels with temporal coherence >= ``min_coherence`` and a full series as points, and write:

``points.csv`` / ``points.parquet`` (EGMS columns, date columns YYYYMMDD in mm),
``velocity.tif``, ``timeseries.nc``, ``report.json``, ``metadata.json``, ``stac-item.json``,
``quicklook.png``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..core import parallel
from ..core.atomic import staged_dir
from ..core.cube import GRID_MAPPING, spatial_ref, write_cube, xy_coords
from ..core.errors import UserError
from ..core.records import write_json, write_records
from ..core.raster import write_cog
from . import inversion
from .interferograms import IfgStack, read_flat, read_stack
from .network import check_network, require_connected

# --weight name -> cryokit.sbas.inversion.coherence_weights func ("coherence" is the original
# name of the Fisher-information weights, kept as an alias of "fim")
WEIGHTS = {"none": None, "coherence": "fim", "fim": "fim", "coh": "coh", "var": "var"}
_WEIGHT_TEXT = {
    "fim": ("Fisher information index 2Lγ²/(1-γ²) of the coherence γ (clipped to [0.05, "
            "0.999]), as MintPy weight_func='fim'; L does not change the solution"),
    "coh": "the coherence γ itself (clipped at 0.05), as MintPy weight_func='coh'",
    "var": ("inverse phase variance of a distributed scatterer of coherence γ (clipped at "
            "0.05) with L = {looks} looks (Tough et al. 1995 phase PDF, MintPy's 200-bin "
            "look-up table), as MintPy weight_func='var'"),
}


@dataclass(frozen=True)
class SbasOptions:
    """Options of :func:`make_sbas` (written as they are into the report)."""

    wavelength_m: float | None = None    # None: WAVELENGTH_METRES tag, else Sentinel-1
    weight: str = "none"                 # none | coherence (= fim) | fim | coh | var (MintPy)
    looks: float = 1.0                   # independent looks L of the coherence (var weights)
    reference_lonlat: tuple[float, float] | None = None
    reference_rowcol: tuple[int, int] | None = None
    min_coherence: float = 0.7           # temporal coherence of a point (MintPy default)
    units: str = "rad"                   # HDF5 input: rad | mm
    allow_subsets: bool = False
    block_rows: int = 256
    workers: int | None = None
    scheduler: str | None = None
    progress: bool = False
    dem: str | None = None
    lon: str | None = None               # HDF5: coordinate grids (raw .flt or raster)
    lat: str | None = None
    place: str | None = None
    licence: str = "CC-BY-4.0"


# ----------------------------------------------------------------------------- blocks

def _rows(n: int, size: int) -> list[tuple[int, int]]:
    return parallel.split_range(n, max(1, size))


def _scan_rows(rows, *, stack: IfgStack):
    """Per pixel of a block: all interferograms valid, and the mean coherence when the stack
    has coherence (else None) or else the phase roughness (else None)."""
    import warnings

    y, c = stack.read(rows, coherence=True)
    valid = np.isfinite(y).all(0)
    if c is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            return valid, np.nanmean(c, 0), None
    # roughness: mean |laplacian| over interferograms (the block's edge rows are left inf)
    rough = np.full(valid.shape, np.inf)
    if min(y.shape[1:]) > 2:
        lap = np.abs(4 * y[:, 1:-1, 1:-1] - y[:, :-2, 1:-1] - y[:, 2:, 1:-1]
                     - y[:, 1:-1, :-2] - y[:, 1:-1, 2:])
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            rough[1:-1, 1:-1] = np.nanmean(lap, 0)
    return valid, None, rough


def invert_rows(rows, *, stack: IfgStack, ref_values: np.ndarray, weight_func: str | None,
                phase_scale: float, allow_subsets: bool, looks: float = 1.0) -> tuple:
    """Invert rows [r0, r1) of the stack, interferograms referred to ``ref_values``."""
    y, c = stack.read(rows, coherence=weight_func is not None)
    y -= ref_values[:, None, None].astype(np.float32)
    w = None
    if weight_func is not None:
        w = inversion.coherence_weights(c, looks, weight_func)
        w[~np.isfinite(y)] = 0.0
    res = inversion.invert(y, stack.pairs, len(stack.dates), w, allow_subsets=allow_subsets,
                      phase_scale=phase_scale)
    return res.phase.astype(np.float64), res.temporal_coherence, res.n_obs, res.info


# ----------------------------------------------------------------------------- helpers

def _reference_pixel(stack: IfgStack, opts: SbasOptions, source: str) -> tuple[int, int] | None:
    if opts.reference_rowcol is not None:
        r, c = (int(v) for v in opts.reference_rowcol)
    elif opts.reference_lonlat is not None:
        lon, lat = opts.reference_lonlat
        if stack.lonlat is not None:
            d = (stack.lonlat[0] - lon) ** 2 + (stack.lonlat[1] - lat) ** 2
            r, c = np.unravel_index(int(np.nanargmin(d)), d.shape)
        else:
            if stack.grid.crs is None:
                raise UserError("--reference LON LAT needs georeferenced interferograms", source)
            from pyproj import Transformer

            x, yy = Transformer.from_crs("EPSG:4326", stack.grid.crs.to_wkt(),
                                         always_xy=True).transform(lon, lat)
            col, row = ~stack.grid.transform @ (x, yy)
            r, c = int(np.floor(row)), int(np.floor(col))
    else:
        return None
    if not (0 <= r < stack.grid.height and 0 <= c < stack.grid.width):
        raise UserError(f"reference pixel (row {r}, col {c}) is outside the "
                        f"{stack.grid.height} x {stack.grid.width} grid", source)
    return int(r), int(c)


def _pixel_values(stack: IfgStack, r: int, c: int) -> np.ndarray:
    y, _ = stack.read((r, r + 1))
    return y[:, 0, c].astype(np.float64)


def _lonlat(stack: IfgStack) -> tuple[np.ndarray, np.ndarray]:
    if stack.lonlat is not None:
        return stack.lonlat
    g = stack.grid
    rr, cc = np.mgrid[0:g.height, 0:g.width]
    x, y = g.xy(rr, cc)
    from pyproj import Transformer

    tr = Transformer.from_crs(g.crs.to_wkt(), "EPSG:4326", always_xy=True)
    return tr.transform(x, y)


# ----------------------------------------------------------------------------- product

def make_sbas(inputs: list[str], outdir: str, options: SbasOptions = SbasOptions()) -> dict:
    """Make the SBAS product of ``inputs`` (GeoTIFF interferograms or one HDF5 file) in
    ``outdir`` (replaced whole when complete); return the report."""
    t_start = time.perf_counter()
    opts = options
    if opts.weight not in WEIGHTS:
        raise UserError(f"--weight must be one of {', '.join(WEIGHTS)}, got {opts.weight!r}")
    if not opts.looks > 0:
        raise UserError(f"--looks must be positive, got {opts.looks}")
    if not 0 <= opts.min_coherence <= 1:
        raise UserError(f"--min-coherence must be in [0, 1], got {opts.min_coherence}")
    inputs = [os.fspath(p) for p in inputs]
    source = inputs[0]
    is_h5 = len(inputs) == 1 and inputs[0].lower().endswith((".h5", ".hdf5", ".he5"))
    if is_h5:
        kw = {"units": opts.units}
        shape = None
        if opts.lon or opts.lat:
            if not (opts.lon and opts.lat):
                raise UserError("give both --lon and --lat coordinate grids")
            import h5py
            with h5py.File(source, "r") as f:
                shape = f["igram"].shape[1:] if "igram" in f else None
            if shape is None:
                raise UserError("has no dataset 'igram'", source)
            kw.update(lon=read_flat(opts.lon, shape), lat=read_flat(opts.lat, shape))
        stack = read_stack(inputs, **kw)
    else:
        stack = read_stack(inputs)
    if stack.grid.crs is None:
        raise UserError("no coordinates: give --lon/--lat grids (or lat/lon datasets) so "
                        "points can be located", source)
    units = stack.units
    wavelength = opts.wavelength_m or stack.wavelength_m or inversion.SENTINEL1_WAVELENGTH_M
    phase_scale = 1.0 if units == "rad" else 4 * np.pi / (wavelength * 1000.0)
    net = check_network(stack.pairs, len(stack.dates))
    if not opts.allow_subsets:
        require_connected(net, stack.dates, source)
    weight_func = WEIGHTS[opts.weight]
    if weight_func and not stack.coherence_sources:
        raise UserError(f"--weight {opts.weight} needs a coherence file beside every "
                        "interferogram (names with 'cc' or 'coh' and the same dates)", source)
    H, W = stack.shape
    blocks = _rows(H, opts.block_rows)

    # 1. reference of the interferograms (before the inversion, as MintPy)
    t0 = time.perf_counter()
    given = _reference_pixel(stack, opts, source)
    if given is not None:
        ref0, how0 = given, "given"
    else:
        scans = [_scan_rows(b, stack=stack) for b in blocks]
        valid = np.concatenate([s[0] for s in scans])
        if not valid.any():
            raise UserError("no pixel is valid in every interferogram: give --reference",
                            source)
        if scans[0][1] is not None:
            score = np.where(valid, np.concatenate([s[1] for s in scans]), -np.inf)
            ref0, how0 = np.unravel_index(int(np.argmax(score)), valid.shape), \
                "valid in every interferogram, highest mean coherence"
        else:
            rough = np.where(valid, np.concatenate([s[2] for s in scans]), np.inf)
            if not np.isfinite(rough).any():
                rough = np.where(valid, 0.0, np.inf)
            ref0, how0 = np.unravel_index(int(np.argmin(rough)), valid.shape), \
                "valid in every interferogram, smoothest phase (least mean |Laplacian|)"
        ref0 = (int(ref0[0]), int(ref0[1]))
    ref_values = _pixel_values(stack, *ref0)
    if not np.isfinite(ref_values).all():
        raise UserError(f"reference pixel (row {ref0[0]}, col {ref0[1]}) has no data in "
                        f"{int((~np.isfinite(ref_values)).sum())} interferogram(s)", source)

    # 2. inversion, blocks of rows
    results = parallel.run_tasks(
        invert_rows, blocks, workers=opts.workers, scheduler=opts.scheduler,
        progress=opts.progress, description="SBAS inversion",
        shared=dict(stack=stack, ref_values=ref_values, weight_func=weight_func,
                    phase_scale=phase_scale, allow_subsets=opts.allow_subsets,
                    looks=opts.looks))
    phase = np.concatenate([r[0] for r in results], axis=1)
    tcoh = np.concatenate([r[1] for r in results], axis=0)
    counts = {k: int(sum(r[3][k] for r in results))
              for k in ("pixels", "solved", "solved_by_group", "solved_per_pixel",
                        "not_connected", "no_data")}
    t_inv = time.perf_counter() - t0

    # 3. millimetres, final reference, velocity
    disp = inversion.phase_to_mm(phase, wavelength) if units == "rad" else phase
    t_years = np.array([(d - stack.dates[0]).days / 365.25 for d in stack.dates])
    if given is not None:
        ref, ref_info = given, {"rule": "given"}
    else:
        vel0, _ = inversion.linear_velocity(disp, t_years)   # before referencing: to choose it
        try:
            r, c, ref_info = inversion.choose_reference(tcoh, vel0, min_coherence=opts.min_coherence)
        except ValueError:
            raise UserError("no pixel has a full series; nothing to reference", source) from None
        ref = (r, c)
    if not np.isfinite(disp[:, ref[0], ref[1]]).all():
        raise UserError(f"reference pixel (row {ref[0]}, col {ref[1]}) has no full series "
                        "(not connected in its valid interferograms)", source)
    disp = disp - disp[:, ref[0], ref[1]][:, None, None]
    vel, vel_std = inversion.linear_velocity(disp, t_years)
    keep = np.isfinite(disp).all(0) & (tcoh >= opts.min_coherence)
    lon, lat = _lonlat(stack)

    with staged_dir(outdir, "sbas") as out:
        n_points = _write_points(out, stack, disp, tcoh, keep, lon, lat, wavelength, opts)
        _write_velocity(out, stack, vel, vel_std, tcoh, keep, ref, opts)
        _write_cube(out / "timeseries.nc", stack, disp, vel, tcoh, keep, ref)
        _quicklook(out, stack, vel, keep, ref, lon, lat)
        report = {
            "product": "SBAS LOS displacement series as EGMS-style points",
            "software": f"cryokit {__version__}",
            "inputs": {"kind": stack.kind, "files": [os.path.abspath(p) for p in stack.sources],
                       "coherence_files": len(stack.coherence_sources or []),
                       "units": units, **stack.info},
            "options": {k: v for k, v in asdict(opts).items() if k not in ("progress",)},
            "network": net.as_dict(stack.dates) | {
                "interferograms": [[stack.dates[i].isoformat(), stack.dates[j].isoformat()]
                                   for i, j in stack.pairs],
                "subset_reference": ("each connected subset is solved on its own and is zero "
                                     "at its own first date" if net.n_components > 1 else None)},
            "weights": ("none (ordinary least squares)" if weight_func is None else
                        _WEIGHT_TEXT[weight_func].format(
                            looks=min(max(int(np.rint(opts.looks)), 1), 80))),
            "wavelength_m": wavelength,
            "sign_convention": inversion.SIGN_CONVENTION if units == "rad" else
            "input in mm, taken as LOS displacement with the input's own sign",
            "units": {"displacement": "mm", "velocity": "mm/yr", "temporal_coherence": "1"},
            "time_reference": f"series are 0 at the first date {stack.dates[0].isoformat()}",
            "reference": {
                "interferograms": {"row": ref0[0], "col": ref0[1], "rule": how0},
                "series": {"row": ref[0], "col": ref[1], "lon": float(lon[ref]),
                           "lat": float(lat[ref]), **ref_info,
                           "note": "series referred to this pixel by subtracting its series"}},
            "temporal_coherence": {
                "definition": "|mean_k exp(j r_k)|, r the residual of the inversion in "
                              "radians over the pixel's valid interferograms (MintPy)",
                "median": _nanstat(np.nanmedian, tcoh),
                "threshold": opts.min_coherence},
            "counts": counts | {"points": n_points},
            "velocity": {"definition": "least-squares slope of [t, 1] (t in days / 365.25); "
                                       "points.csv mean_velocity follows EGMS (with seasonal "
                                       "terms, t in days / 365)",
                         "p05_mm_per_yr": _nanstat(lambda a: np.nanpercentile(a, 5),
                                                   np.where(keep, vel, np.nan)),
                         "median_mm_per_yr": _nanstat(np.nanmedian, np.where(keep, vel, np.nan)),
                         "p95_mm_per_yr": _nanstat(lambda a: np.nanpercentile(a, 95),
                                                   np.where(keep, vel, np.nan))},
            "dates": [d.isoformat() for d in stack.dates],
            "timings_s": {"inversion": round(t_inv, 3),
                          "total": round(time.perf_counter() - t_start, 3)},
        }
        write_json(out / "report.json", report)
        _records(out, report, stack, opts)
    return report


def _nanstat(f, a):
    a = np.asarray(a, float)
    return float(f(a)) if np.isfinite(a).any() else None


def _write_points(out: Path, stack: IfgStack, disp, tcoh, keep, lon, lat, wavelength: float,
                  opts: SbasOptions) -> int:
    from ..egms.formats import EgmsPoints, write_egms, write_geoparquet
    from ..egms.stats import timeseries_stats
    from pyproj import Transformer

    rows, cols = np.nonzero(keep)
    series = disp[:, rows, cols].T
    t365 = np.array([(d - stack.dates[0]).days / 365.0 for d in stack.dates])
    st = timeseries_stats(t365, series, wavelength_mm=wavelength * 1000)
    la, lo = np.asarray(lat)[rows, cols], np.asarray(lon)[rows, cols]
    e, n = Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True).transform(lo, la)
    attrs = {"pid": [f"{r:05d}{c:05d}" for r, c in zip(rows, cols)],
             "latitude": np.round(la, 7), "longitude": np.round(lo, 7),
             "easting": np.round(e, 1), "northing": np.round(n, 1)}
    if opts.dem:
        from ..core.raster import reproject_band

        hgt = reproject_band(opts.dem, stack.grid)
        attrs["height"] = np.round(hgt[rows, cols].astype(float), 1)
    attrs |= {"line": rows, "pixel": cols, "rmse": np.round(st["rmse"], 2),
              "temporal_coherence": np.round(tcoh[rows, cols], 3)}
    for k in ("mean_velocity", "mean_velocity_std", "acceleration", "acceleration_std",
              "seasonality", "seasonality_std"):
        attrs[k] = np.round(st[k], 2)
    points = EgmsPoints(attrs=pd.DataFrame(attrs),
                        dates=np.array(stack.dates, dtype="datetime64[D]"),
                        disp=np.round(series, 2), header={}, name="points", level="L2a",
                        naming="legacy")
    write_egms(points, out / "points.csv")
    write_geoparquet(points, out / "points.parquet")
    return int(len(rows))


def _write_velocity(out: Path, stack, vel, vel_std, tcoh, keep, ref, opts) -> None:
    d0, d1 = stack.dates[0], stack.dates[-1]
    tags = {"date_start": d0.isoformat(), "date_end": d1.isoformat(),
            "sign_convention": inversion.SIGN_CONVENTION, "reference_row": ref[0],
            "reference_col": ref[1], "min_temporal_coherence": opts.min_coherence,
            "software": f"cryokit {__version__}"}
    write_cog(out / "velocity.tif",
              [np.where(keep, vel, np.nan).astype(np.float32),
               np.where(keep, vel_std, np.nan).astype(np.float32),
               tcoh.astype(np.float32)], stack.grid,
              units=["mm/yr", "mm/yr", "1"], tags=tags,
              descriptions=[f"LOS velocity {d0} to {d1} (mm/yr, + towards the satellite)",
                            "LOS velocity standard error (mm/yr)",
                            "temporal coherence of the SBAS inversion"])


def _write_cube(path: Path, stack: IfgStack, disp, vel, tcoh, keep, ref) -> None:
    import xarray as xr

    g = stack.grid
    gm = GRID_MAPPING
    ds = xr.Dataset(
        {"displacement": (("time", "y", "x"), disp.astype(np.float32),
                          gm | {"units": "mm", "long_name": "LOS displacement since the first "
                                "date, positive towards the satellite"}),
         "velocity": (("y", "x"), np.where(keep, vel, np.nan).astype(np.float32),
                      gm | {"units": "mm/yr", "long_name": "LOS velocity (linear fit)"}),
         "temporal_coherence": (("y", "x"), tcoh.astype(np.float32),
                                gm | {"units": "1", "long_name": "SBAS temporal coherence"}),
         "spatial_ref": spatial_ref(g)},
        coords={**xy_coords(g),
                "time": ("time", np.array(stack.dates, "datetime64[ns]"),
                         {"long_name": "acquisition date"})},
        attrs={"title": "SBAS LOS displacement series", "Conventions": "CF-1.8",
               "sign_convention": inversion.SIGN_CONVENTION, "reference_row": ref[0],
               "reference_col": ref[1], "source": f"cryokit {__version__}"})
    write_cube(ds, path, since=stack.dates[0])


def _quicklook(out: Path, stack, vel, keep, ref, lon, lat) -> None:
    from ..core.quicklook import raster_quicklook

    b = stack.grid.bounds
    raster_quicklook(out / "quicklook.png", np.where(keep, vel, np.nan),
                     extent=(b[0], b[2], b[1], b[3]), cmap="RdBu", diverging=True,
                     label="LOS velocity (mm/yr, + towards the satellite)",
                     title=f"SBAS LOS velocity {stack.dates[0]} to {stack.dates[-1]}, "
                           f"reference row {ref[0]} col {ref[1]}")


def _records(out: Path, report: dict, stack: IfgStack, opts: SbasOptions) -> None:
    d0, d1 = stack.dates[0], stack.dates[-1]
    n = report["counts"]["points"]
    quality = {"points": n, "median_temporal_coherence": report["temporal_coherence"]["median"],
               "min_temporal_coherence": opts.min_coherence,
               "pixels_not_connected": report["counts"]["not_connected"]}
    gaps = sorted({(b - a).days for a, b in zip(stack.dates, stack.dates[1:])})
    write_records(
        out, item_id=f"sbas_{d0:%Y%m%d}_{d1:%Y%m%d}", grid=stack.grid, start=d0, end=d1,
        title={"en": f"SBAS ground motion points {d0} to {d1}"},
        abstract=(f"Line-of-sight displacement series (mm, positive towards the satellite) "
                  f"of {n} points from a small-baseline inversion of {len(stack.pairs)} "
                  f"interferograms over {len(stack.dates)} dates ({d0} to {d1}), referred "
                  f"to one pixel, kept where the temporal coherence is at least "
                  f"{opts.min_coherence}; EGMS-style point table, velocity raster and "
                  "displacement cube."),
        source=", ".join(os.path.basename(p) for p in stack.sources[:5])
        + (" ..." if len(stack.sources) > 5 else ""),
        method=(f"SBAS least squares per pixel ({report['weights']}); interferograms "
                "referred to one pixel before the inversion; temporal coherence as MintPy; "
                "EGMS per-point statistics"),
        quality=quality, place=opts.place, licence=opts.licence,
        temporal_resolution=f"{gaps[0]} days" if gaps else None,
        keywords=("InSAR", "SBAS", "ground motion", "EGMS", "line of sight"))
