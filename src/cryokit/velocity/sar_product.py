"""The SAR offset-tracking product: a series of amplitude images -> pair offsets, series, velocity.

For every pair of the network, the offsets are tracked on log-amplitude, turned into range and
azimuth, cleaned of the orbit and terrain model fitted on stable ground, and written as
``pairs/{t1}_{t2}.real.tif`` (range) and ``.imag.tif`` (azimuth) in metres, with a
``pairs/{t1}_{t2}.json`` record. A pair whose three files are newer than its inputs and were
made with the same settings is not redone, so an interrupted run resumes where it stopped.
The stack (cumulative series, mean velocity, cube, records) is rebuilt from the pair files
every run, so a resumed run ends with the same outputs as an uninterrupted one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling

from .. import __version__
from ..core import parallel
from ..core.atomic import remove_stale_temps
from ..core.outputs import (check_output_dir, file_digest, read_marker, remove_listed,
                            remove_stale_products, write_marker)
from ..core.cube import GRID_MAPPING, spatial_ref, write_cube, write_zarr, xy_coords
from ..core.dates import acquisition_times, day_of, days_between
from ..core.errors import UserError
from ..core.records import write_json, write_records
from ..core.quicklook import vector_quicklook
from ..core.raster import (Grid, grid_in_crs, one_grid, read_band, reproject_band, warp_array,
                           write_cog)
from . import s1, sar, series
from .track import NodeGrid, TrackParams, track_pair

UNITS = {"m/d": 1.0, "m/yr": 365.25}
CONVENTION = ("range (.real): positive away from the satellite track (look direction, ground "
              "range increasing); azimuth (.imag): positive along the track (flight direction); "
              "displacement of features from the earlier to the later date")


@dataclass(frozen=True)
class SarOptions:
    """Product-level options of :func:`make_sar_velocity`."""

    heading: float | None = None   # track heading, deg clockwise from north; None: radar geometry
    pairs: str = "consecutive"
    units: str = "m/d"
    degree: int = 1                # polynomial degree of the orbit model in image coordinates
    workers: int | None = None
    scheduler: str | None = None
    progress: bool = False
    place: str | None = None
    licence: str = "CC-BY-4.0"
    overwrite: bool = False        # start afresh in an earlier output instead of resuming
    input_units: str = "auto"      # amplitude | intensity | db | auto (sar.to_log)
    out_crs: str | None = None     # CRS of every output raster and the cube (None: the images')
    stable_values: tuple[int, ...] | None = None   # classes of a raster stable mask that are stable
    offset_model: bool = True      # fit and remove the orbit/terrain offsets on stable ground
    polarisation: str | None = None   # of Sentinel-1 products (None: VV or HH)
    out_res: float | None = None   # pixel size of the --out-crs grid, in its units
    period: str | None = None      # one mean velocity per period of the pairs' mid-dates


def pair_name(d1: dt.date, d2: dt.date) -> str:
    """``YYYYMMDD_YYYYMMDD``, the stem of a pair's files."""
    return f"{d1:%Y%m%d}_{d2:%Y%m%d}"


# ----------------------------------------------------------------------------- inputs

def _series_inputs(images: list[str]) -> tuple[list[str], list[dt.datetime], Grid]:
    """Images sorted by time, their acquisition date-times (UTC; 00:00 where only the date is
    known) and the common grid; UserError on any problem."""
    if len(images) < 2:
        raise UserError(f"need at least two images, got {len(images)}")
    times = acquisition_times(images)
    grid = one_grid(images, "co-register or resample the series onto one grid first")
    if grid.crs.is_geographic:
        raise UserError("is in geographic coordinates: displacements need a grid in metres; "
                        "give images in a projected CRS (--out-crs EPSG:4326 writes "
                        "geographic outputs)", images[0])
    for path, d in zip(images, times):
        if d is None:
            raise UserError("no acquisition date in the file name (Sentinel-1 style or "
                            "YYYYMMDD / YYYY-MM-DD) or in its DATE/ACQUISITION_DATE tags", path)
    paths, times = series.sort_by_time([os.fspath(p) for p in images], times)
    return paths, times, grid


def _fingerprint(params: TrackParams, options: SarOptions, dem: str | None,
                 mask: str | None) -> dict:
    """Everything a pair's result depends on besides its two images."""
    return {"params": params.as_dict() | {"threads": None}, "heading": options.heading, "degree": options.degree,
            "dem": dem and os.path.abspath(dem), "stable_mask": mask and os.path.abspath(mask),
            "terrain_heights": "lk-effective", "software": __version__,
            "offset_model": options.offset_model, "input_units": options.input_units,
            "out_crs": options.out_crs, "out_res": options.out_res}


def _pair_done(outdir: Path, name: str, digests: list, fingerprint: dict) -> dict | None:
    """The pair's record when its outputs are complete and were made from inputs with the
    same content (``digests``) and the same settings; file times are not trusted (a copy
    with ``cp -p`` or rsync keeps an old time on new content)."""
    files = [outdir / "pairs" / f"{name}{s}" for s in (".real.tif", ".imag.tif", ".json")]
    if not all(f.exists() for f in files):
        return None
    try:
        rec = json.loads(files[2].read_text())
    except (OSError, ValueError):
        return None
    if rec.get("fingerprint") != fingerprint or rec.get("input_digests") != digests:
        return None
    return rec


_PAIR_FILE = re.compile(r"^\d{8}_\d{8}\.(real\.tif|imag\.tif|json)$")
_INPUT_FILE = re.compile(r"^(S1\w+_(VV|HH|VH|HV)_sigma0|dem_\d+)\.tif$")   # geocoded Sentinel-1 products


def _own_files(out: Path, marker: dict | None) -> set[str]:
    """Files of an earlier sar-velocity output: those its marker lists, and the pair and
    cumulative files a killed run wrote before it could list them."""
    own = set(marker.get("files", [])) if marker else set()
    for sub in ("pairs", "cumulative", "inputs"):
        if (out / sub).is_dir():
            own.update(f"{sub}/{p.name}" for p in (out / sub).iterdir()
                       if p.is_file() and (_PAIR_FILE.match(p.name) or _INPUT_FILE.match(p.name)))
    return own


def _remove_stale(out: Path, pair_names: set[str], cumulative_names: set[str]) -> list[str]:
    """Remove pair and cumulative files of an earlier run that this network does not make
    (a re-run with fewer images), so the record lists only this run's files."""
    removed = []
    for sub, keep in (("pairs", pair_names), ("cumulative", cumulative_names)):
        if not (out / sub).is_dir():
            continue
        for p in sorted((out / sub).iterdir()):
            if p.is_file() and _PAIR_FILE.match(p.name) and p.name.split(".")[0] not in keep:
                p.unlink()
                removed.append(f"{sub}/{p.name}")
    return removed


# ----------------------------------------------------------------------------- one pair

def process_pair(pair: tuple[int, int], *, paths: list[str], dates: list[dt.datetime], grid: Grid,
                 ngrid: Grid, ogrid: Grid, dem: np.ndarray, stable: np.ndarray | None,
                 params: TrackParams, options: SarOptions, outdir: str,
                 fingerprint: dict, digests: dict) -> dict:
    """Track one pair, remove the orbit/terrain model, write its rasters and record.

    ``dem`` is the terrain height on the image grid. The terrain term is fitted against the
    heights each node's offset actually responds to (:func:`.sar.effective_heights` of the
    pair's reference image); the DEM smoothed by a fixed kernel attenuated or inflated the
    coefficient depending on the texture and on how many nodes took the narrow LK window.
    """
    i, j = pair
    t0 = time.perf_counter()
    a, b = (sar.to_log(read_band(paths[k]), options.input_units) for k in (i, j))
    for img, k in ((a, i), (b, j)):
        if not np.isfinite(img).any():
            raise UserError("all pixels are nodata or <= 0", paths[k])
        if np.nanmax(img) == np.nanmin(img):
            raise UserError("constant image: no texture to track", paths[k])
    field = track_pair(a, b, params)
    t_match = time.perf_counter() - t0
    rng, az = sar.radar_components(field.dx, field.dy, options.heading)
    # Heights as the tracker saw them: each node's chip weighted by its own LK window.
    fit_mask = stable if stable is not None else np.ones(rng.shape, bool)
    if options.offset_model:
        height = (sar.effective_heights(a, dem, params, options.heading, field.narrow)[0]
                  if dem is not None else np.zeros(rng.shape))
        model = sar.GeometryModel(options.degree, height_degree=1 if dem is not None else 0)
        model.fit(rng, az, fit_mask, height)
        r, z = model.apply(rng, az, height)
        model_params = model.params
    else:   # no stable ground (sea ice): the offsets as measured
        r, z, model_params = rng, az, {"none": "no orbit/terrain model fitted (--no-offset-model)"}
    nmad_px = sar.residual_nmad(r, z, fit_mask)
    spacing = (abs(grid.res[0]), abs(grid.res[1]))
    if options.heading is not None:
        spacing = (spacing[0], spacing[0])   # north-up map grid: square pixels assumed
    r_m, z_m = (r * spacing[0]).astype(np.float32), (z * spacing[1]).astype(np.float32)
    d1, d2 = dates[i], dates[j]
    name = pair_name(d1, d2)
    tags = {"date1": d1.isoformat(), "date2": d2.isoformat(), "dt_days": f"{days_between(d1, d2):g}",
            "units": "m", "sign_convention": CONVENTION, "software": f"cryokit {__version__}",
            "image1": os.path.basename(paths[i]), "image2": os.path.basename(paths[j])}
    out = Path(outdir) / "pairs"
    out.mkdir(parents=True, exist_ok=True)
    valid = np.isfinite(r_m)
    if ogrid != ngrid:   # --out-crs: the pair's rasters on the output grid
        r_m, z_m = warp_array(r_m, ngrid, ogrid), warp_array(z_m, ngrid, ogrid)
    write_cog(out / f"{name}.real.tif", r_m, ogrid, units="m", tags=tags,
              descriptions=[f"range displacement {d1} to {d2} (m), orbit/terrain removed"])
    write_cog(out / f"{name}.imag.tif", z_m, ogrid, units="m", tags=tags,
              descriptions=[f"azimuth displacement {d1} to {d2} (m), orbit/terrain removed"])
    rec = {"pair": name, "dates": [d1.isoformat(), d2.isoformat()], "dt_days": days_between(d1, d2),
           "images": [paths[i], paths[j]], "valid_fraction": float(valid.mean()),
           "nodes": field.flags, "model": model_params,
           "stable_nmad_px": list(nmad_px),
           "stable_nmad_m": [nmad_px[0] * spacing[0], nmad_px[1] * spacing[1]],
           "timings_s": {"match": round(t_match, 3), "total": round(time.perf_counter() - t0, 3)},
           "fingerprint": fingerprint, "input_digests": _pair_digests(digests, paths, i, j)}
    # The record goes last: its presence marks the pair finished.
    write_json(out / f"{name}.json", rec)
    return rec


# ----------------------------------------------------------------------------- product

def make_sar_velocity(images: list[str], outdir: str, dem: str | None,
                      params: TrackParams = sar.SAR_DEFAULTS, *, stable_mask: str | None = None,
                      options: SarOptions = SarOptions()) -> dict:
    """Make the SAR offset-tracking product of ``images`` in ``outdir``; return the report.

    The report's ``failures`` lists pairs that raised (their error message); the other pairs
    and the stack are still written.
    """
    t0 = time.perf_counter()
    if options.units not in UNITS:
        raise UserError(f"unknown units {options.units!r}; use m/d or m/yr")
    images = [os.fspath(p) for p in images]
    out = Path(outdir)
    sentinel1 = None
    if any(s1.is_product(p) for p in images):
        if not all(s1.is_product(p) for p in images):
            raise UserError("mixes Sentinel-1 products with other images; give one kind",
                            next(p for p in images if not s1.is_product(p)))
        s1.check_series(images, dem, options.polarisation)
        _open_output(out, images, dem, stable_mask, options)
        images, sentinel1 = s1.prepare_series(images, out / "inputs", dem, options.polarisation)
        headings = np.radians([g["heading_deg"] for g in sentinel1])
        heading = float(np.degrees(np.arctan2(np.sin(headings).mean(), np.cos(headings).mean())))
        options = replace(options, input_units="intensity",
                          heading=options.heading if options.heading is not None
                          else round(heading, 4))
    paths, dates, grid = _series_inputs(images)
    try:
        pairs = series.pair_network(dates, options.pairs)
    except ValueError as e:
        raise UserError(str(e)) from None
    if not pairs:
        raise UserError(f"no pair of images within the --pairs rule {options.pairs!r}")
    nodes = NodeGrid.of(grid.shape, params)
    if min(nodes.shape) < 3:
        raise UserError(f"images of {grid.width} x {grid.height} px give fewer than 3 x 3 "
                        f"nodes at step {params.step}", paths[0])
    ngrid = nodes.georeferenced(grid)
    ogrid = grid_in_crs(ngrid, options.out_crs, options.out_res) if options.out_crs else ngrid
    if options.period:
        mids = [dates[i] + (dates[j] - dates[i]) / 2 for i, j in pairs]
        try:
            series.period_bins(mids, options.period)
        except ValueError as e:
            raise UserError(f"--period: {e}") from None
    dem_px = None
    if dem is not None:
        dem_px = reproject_band(dem, grid, resampling=Resampling.bilinear)
        if not np.isfinite(dem_px).any():
            raise UserError("does not overlap the images (no height on the image grid)", dem)
    stable = None
    if stable_mask:
        from ..core.vector import load_mask  # geopandas is imported only when a mask is used
        stable = load_mask(stable_mask, ngrid, options.stable_values)
    if options.scheduler or (options.workers or 0) >= 2:
        # One pair per single-threaded worker process; threads inside would oversubscribe.
        # Results do not depend on the thread count, so the fingerprint ignores it.
        params = replace(params, threads=1)
    fp = _fingerprint(params, options, dem, stable_mask)
    if sentinel1 is None:
        _open_output(out, paths, dem, stable_mask, options)
    _remove_stale(out, {pair_name(dates[i], dates[j]) for i, j in pairs},
                  {pair_name(dates[0], d) for d in dates[1:]})
    digests = {p: file_digest(p) for p in paths}
    digests["dem"] = file_digest(dem) if dem else None
    digests["stable_mask"] = file_digest(stable_mask) if stable_mask else None

    done, todo = {}, []
    for p in pairs:
        name = pair_name(dates[p[0]], dates[p[1]])
        rec = _pair_done(out, name, _pair_digests(digests, paths, *p), fp)
        if rec is None:
            todo.append(p)
        else:
            done[p] = rec
    results = parallel.run_tasks(
        process_pair, todo, workers=options.workers, scheduler=options.scheduler,
        progress=options.progress, description="tracking pairs", on_error="collect",
        shared=dict(paths=paths, dates=dates, grid=grid, ngrid=ngrid, ogrid=ogrid, dem=dem_px,
                    stable=stable, params=params, options=options, outdir=str(out),
                    fingerprint=fp, digests=digests))
    failures = []
    for p, res in zip(todo, results):
        if isinstance(res, parallel.TaskFailure):
            failures.append({"pair": pair_name(dates[p[0]], dates[p[1]]),
                             "images": [paths[p[0]], paths[p[1]]], "error": res.error_message})
        else:
            done[p] = res
    t_pairs = time.perf_counter() - t0

    if not done:
        msg = "; ".join(f"{f['pair']}: {f['error']}" for f in failures[:3])
        raise UserError(f"every pair failed ({len(failures)}), nothing to stack: {msg}",
                        paths[0])
    report = _stack(out, paths, dates, pairs, done, grid, ogrid, options, stable_mask, dem)
    if sentinel1:
        by_file = {os.path.abspath(g["file"]): g for g in sentinel1}
        report["sentinel1"] = [{k: v for k, v in by_file[os.path.abspath(p)].items() if k != "file"}
                               for p in paths]
        report["geometry"] = {
            "heading_deg": options.heading, "look": sentinel1[0]["look"],
            "incidence_deg": float(np.mean([g["incidence_deg"] for g in sentinel1])),
            "source": "orbit state vectors of the products, at the grid centre (zero Doppler)",
            "geocoding": "sarsen range-Doppler terrain correction onto the DEM grid"}
    report.update(
        failures=failures, skipped=sorted(pair_name(dates[p[0]], dates[p[1]]) for p in pairs
                                          if p not in todo),
        computed=sorted(pair_name(dates[p[0]], dates[p[1]]) for p in todo
                        if p in done),
        timings_s={"pairs": round(t_pairs, 3), "total": round(time.perf_counter() - t0, 3)})
    write_json(out / "report.json", report)
    _records(out, report, dates, ogrid, options)
    write_marker(out, "sar-velocity")
    return report


def _open_output(out: Path, inputs, dem, stable_mask, options: SarOptions) -> None:
    """Refuse a folder cryokit may not write, start afresh with --overwrite, mark it ours and
    clear what a killed run left half-written."""
    marker = check_output_dir(out, "sar-velocity", inputs=(*inputs, dem, stable_mask),
                              resume=True, overwrite=options.overwrite)
    if marker is not None and options.overwrite:
        remove_listed(out, _own_files(out, marker))
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "sar-velocity", files=sorted(_own_files(out, read_marker(out))))
    for folder in (out, out / "pairs", out / "cumulative", out / "inputs"):
        remove_stale_temps(folder)      # left by a killed run


def _pair_digests(digests: dict, paths: list[str], i: int, j: int) -> list[str]:
    """Content digests of what pair (i, j) is made from: its images, the DEM, the mask."""
    return [digests[paths[i]], digests[paths[j]], digests["dem"], digests["stable_mask"]]


def _stack(out: Path, paths, dates, pairs, done, grid, ngrid, options, mask, dem) -> dict:
    """Cumulative series, mean velocity and cube from the finished pairs, on ``ngrid`` (the
    node grid, or its warp to --out-crs)."""
    scale = UNITS[options.units]
    ok = [p for p in pairs if p in done]
    shape = (ngrid.height, ngrid.width)
    names = [pair_name(dates[i], dates[j]) for i, j in ok]
    rng = np.stack([read_band(out / "pairs" / f"{n}.real.tif") for n in names]) if ok \
        else np.zeros((0,) + shape, np.float32)
    az = np.stack([read_band(out / "pairs" / f"{n}.imag.tif") for n in names]) if ok \
        else np.zeros((0,) + shape, np.float32)
    dt_days = np.array([days_between(dates[i], dates[j]) for i, j in ok], float)
    sig = np.array([max(np.hypot(*done[p]["stable_nmad_m"]), 1e-6) for p in ok])
    cum_r = series.cumulative(rng, ok, len(dates), 1 / sig ** 2)
    cum_a = series.cumulative(az, ok, len(dates), 1 / sig ** 2)
    vr, nr, ve = series.mean_velocity(rng, dt_days, sig, return_error=True)
    va, _ = series.mean_velocity(az, dt_days, sig)
    vr, va, ve = vr * scale, va * scale, ve * scale
    speed = np.hypot(vr, va)
    units = options.units
    t0, tags = dates[0], {"software": f"cryokit {__version__}", "sign_convention": CONVENTION}
    (out / "cumulative").mkdir(exist_ok=True)
    for k in range(1, len(dates)):
        stem = out / "cumulative" / pair_name(t0, dates[k])
        span = {"date1": t0.isoformat(), "date2": dates[k].isoformat(), "units": "m"}
        write_cog(f"{stem}.real.tif", cum_r[k].astype(np.float32), ngrid, units="m",
                  tags=tags | span,
                  descriptions=[f"cumulative range displacement {t0} to {dates[k]} (m)"])
        write_cog(f"{stem}.imag.tif", cum_a[k].astype(np.float32), ngrid, units="m",
                  tags=tags | span,
                  descriptions=[f"cumulative azimuth displacement {t0} to {dates[k]} (m)"])
    span = {"date1": dates[0].isoformat(), "date2": dates[-1].isoformat(), "units": units}
    write_cog(out / "mean_velocity.tif",
              [speed.astype(np.float32), vr.astype(np.float32), va.astype(np.float32),
               nr.astype(np.float32), ve.astype(np.float32)], ngrid,
              units=[units, units, units, "1", units], tags=tags | span,
              descriptions=[f"mean speed ({units})", f"mean range velocity ({units})",
                            f"mean azimuth velocity ({units})", "pairs used", _error_band(units)])
    periods = []
    if options.period and ok:
        bins = series.period_bins([dates[i] + (dates[j] - dates[i]) / 2 for i, j in ok],
                                  options.period)
        for label in dict.fromkeys(b[0] for b in bins):
            sel = np.array([b[0] == label for b in bins])
            pr, pn, pe = series.mean_velocity(rng[sel], dt_days[sel], sig[sel], return_error=True)
            pa, _ = series.mean_velocity(az[sel], dt_days[sel], sig[sel])
            pr, pa, pe = pr * scale, pa * scale, pe * scale
            first = bins[int(np.argmax(sel))]
            name = f"velocity_{label}.tif"
            write_cog(out / name, [np.hypot(pr, pa).astype(np.float32), pr.astype(np.float32),
                                   pa.astype(np.float32), pn.astype(np.float32),
                                   pe.astype(np.float32)], ngrid,
                      units=[units, units, units, "1", units],
                      tags=tags | {"period": label, "period_start": first[1].isoformat(),
                                   "period_end": first[2].isoformat(), "units": units},
                      descriptions=[f"mean speed ({units})", f"mean range velocity ({units})",
                                    f"mean azimuth velocity ({units})", "pairs used",
                                    _error_band(units)])
            periods.append({"period": label, "file": name, "start": first[1].isoformat(),
                            "end": first[2].isoformat(),
                            "pairs": [n for n, s in zip(names, sel) if s],
                            "speed_p50": _median(np.hypot(pr, pa))})
    remove_stale_products(out, "velocity_*.tif", [p["file"] for p in periods])
    _cube(out / "velocity_cube.nc", ngrid, dates, ok, rng, az, dt_days, cum_r, cum_a,
          vr, va, speed, units, scale, options, sig, paths)
    bg = (read_band(paths[0], out_shape=shape) if ngrid.crs == grid.crs
          else reproject_band(paths[0], ngrid))
    vx, vy_down = sar.map_components(vr, va, options.heading)
    b = ngrid.bounds
    vector_quicklook(out / "quicklook.png", sar.to_log(bg, options.input_units), speed, vx, -vy_down,
                     extent=(b[0], b[2], b[1], b[3]), units=units,
                     title=f"Mean speed {dates[0]} to {dates[-1]} ({units})")
    stable_nmad = [done[p]["stable_nmad_px"] for p in ok]
    return {
        "product": "glacier velocity from SAR offset tracking (series)",
        "software": f"cryokit {__version__}",
        "images": [{"path": os.path.abspath(p), "date": d.isoformat()}
                   for p, d in zip(paths, dates)],
        "dem": dem and os.path.abspath(dem), "stable_mask": mask and os.path.abspath(mask),
        "heading_deg": options.heading, "pairs_rule": options.pairs, "units": units,
        "sign_convention": CONVENTION, "directions": _directions(options.heading),
        "grid": {"crs": ngrid.crs.to_string(), "res": list(ngrid.res),
                 "shape": list(ngrid.shape)},
        "pairs": [{k: v for k, v in done[p].items() if k != "fingerprint"} for p in ok],
        "n_pairs": len(pairs), "n_pairs_ok": len(ok),
        "stable_nmad_px_median": (np.median(stable_nmad, axis=0).tolist() if ok else None),
        "periods": periods,
        "mean_velocity": {"valid_fraction": float(np.isfinite(speed).mean()),
                          "speed_p50": float(np.nanmedian(speed)) if np.isfinite(speed).any()
                          else None},
    }


def _error_band(units: str) -> str:
    return (f"speed error, 1 sigma ({units}): the pairs' stable-ground NMAD propagated over "
            "the pairs used")


def _median(a) -> float | None:
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else None


def _directions(heading: float | None) -> dict:
    """The range and azimuth directions of the products, in words and as (east, north)."""
    if heading is None:
        return {"range": "image columns (x), positive to the right: radar geometry",
                "azimuth": "image rows (y), positive down the rows: radar geometry"}
    h = np.radians(heading)
    return {"range": "horizontal, away from the track",
            "range_east_north": [round(float(np.cos(h)), 6), round(float(-np.sin(h)), 6)],
            "azimuth": "along the flight direction",
            "azimuth_east_north": [round(float(np.sin(h)), 6), round(float(np.cos(h)), 6)]}


def _cube(path, ngrid, dates, pairs, rng, az, dt_days, cum_r, cum_a, vr, va, speed, units,
          scale, options, sig, paths):
    """velocity_cube.nc and .zarr: pair velocities on (mid_date, y, x) with the ITS_LIVE names
    (``vr``, ``va`` in radar directions; ``vx``, ``vy``, ``v`` on the map when the heading is
    known; ``v_error`` from the pair's stable-ground NMAD), the cumulative series on
    (date, y, x), and the means."""
    import xarray as xr

    t1 = np.array([np.datetime64(dates[i], "ns") for i, _ in pairs]).reshape(-1)
    t2 = np.array([np.datetime64(dates[j], "ns") for _, j in pairs]).reshape(-1)
    mid = t1 + (t2 - t1) // 2
    bnds = np.stack([t1, t2], axis=-1).reshape(-1, 2)
    dts = dt_days[:, None, None] if len(pairs) else dt_days
    gm = GRID_MAPPING
    dims = ("mid_date", "y", "x")
    v_r = (rng / dts * scale).astype(np.float32)
    v_a = (az / dts * scale).astype(np.float32)
    data = {
        "vr": (dims, v_r, gm | {"units": units, "long_name": "range velocity of the pair",
                                "description": "positive away from the track"}),
        "va": (dims, v_a, gm | {"units": units, "long_name": "azimuth velocity of the pair",
                                "description": "positive along the flight direction"}),
        "v_error": (dims, np.where(np.isfinite(v_r),
                                   (np.asarray(sig) / dt_days * scale)[:, None, None]
                                   if len(pairs) else v_r, np.nan).astype(np.float32),
                    gm | {"units": units, "long_name": "speed error of the pair, 1 sigma "
                          "(stable-ground NMAD over the time span)"}),
        "time_bnds": (("mid_date", "nv"), bnds),
        "cumulative_range": (("date", "y", "x"), cum_r.astype(np.float32),
                             gm | {"units": "m", "long_name":
                                   "range displacement since the first date"}),
        "cumulative_azimuth": (("date", "y", "x"), cum_a.astype(np.float32),
                               gm | {"units": "m", "long_name":
                                     "azimuth displacement since the first date"}),
        "mean_speed": (("y", "x"), speed.astype(np.float32),
                       gm | {"units": units, "long_name": "mean speed over all pairs"}),
        "mean_v_range": (("y", "x"), vr.astype(np.float32), gm | {"units": units}),
        "mean_v_azimuth": (("y", "x"), va.astype(np.float32), gm | {"units": units}),
        "spatial_ref": spatial_ref(ngrid),
    }
    if options.heading is not None:
        de, dd = sar.map_components(v_r, v_a, options.heading)
        data["vx"] = (dims, de.astype(np.float32), gm | {"units": units, "long_name":
                                                         "velocity towards grid east"})
        data["vy"] = (dims, (-dd).astype(np.float32), gm | {"units": units, "long_name":
                                                            "velocity towards grid north"})
        data["v"] = (dims, np.hypot(de, dd).astype(np.float32),
                     gm | {"units": units, "long_name": "speed of the pair"})
    sensor = [f"Sentinel-1{n[2]}" if re.match(r"S1[A-D]_", n) else "unknown"
              for n in (os.path.basename(p) for p in paths)]
    ds = xr.Dataset(
        data,
        coords={**xy_coords(ngrid),
                "mid_date": ("mid_date", mid, {"long_name": "middle of the pair (UTC)",
                                               "bounds": "time_bnds"}),
                "date_dt": ("mid_date", dt_days, {"units": "days",
                                                  "long_name": "time separation of the pair"}),
                "acquisition_date_img1": ("mid_date", t1),
                "acquisition_date_img2": ("mid_date", t2),
                "satellite_img1": ("mid_date", np.array([sensor[i] for i, _ in pairs], str)),
                "satellite_img2": ("mid_date", np.array([sensor[j] for _, j in pairs], str)),
                "date": ("date", np.array(dates, "datetime64[ns]"),
                         {"long_name": "acquisition date (UTC)"})},
        attrs={"title": "glacier velocity cube from SAR offset tracking (ITS_LIVE names)",
               "Conventions": "CF-1.8", "sign_convention": CONVENTION,
               "heading_deg": "none (radar geometry)" if options.heading is None
               else options.heading,
               "source": f"cryokit {__version__}"})
    ds["spatial_ref"].attrs["spatial_epsg"] = ngrid.crs.to_epsg() or 0
    write_cube(ds, path, since=day_of(dates[0]))
    write_zarr(ds, Path(path).with_suffix(".zarr"), {"mid_date": len(pairs),
                                                     "date": len(dates), "y": 32, "x": 32})


def _records(out: Path, report: dict, dates, ngrid: Grid, options: SarOptions) -> None:
    med = report["stable_nmad_px_median"]
    n_ok, n = report["n_pairs_ok"], report["n_pairs"]
    quality = (f"stable-ground residual NMAD after orbit/terrain removal, median over pairs: "
               f"{med[0]:.3f} px (range), {med[1]:.3f} px (azimuth); {n_ok} of {n} pairs "
               "succeeded" if med else f"no pair succeeded ({n} attempted)")
    write_records(
        out, item_id=f"sar_velocity_{dates[0]:%Y%m%d}_{dates[-1]:%Y%m%d}", grid=ngrid,
        start=dates[0], end=dates[-1],
        title={"en": f"Glacier velocity from SAR offset tracking {dates[0]} to {dates[-1]}"},
        abstract=(f"Range and azimuth displacement of {n_ok} image pairs ({options.pairs}), "
                  f"cumulative displacement since {dates[0]} and mean velocity in "
                  f"{options.units} from intensity offset tracking of {len(dates)} SAR "
                  f"amplitude images, with orbit- and terrain-induced offsets modelled on "
                  f"stable ground and removed. {quality}."),
        source=", ".join(i["product"] for i in report["sentinel1"]) if "sentinel1" in report
        else ", ".join(os.path.basename(i["path"]) for i in report["images"]),
        method=("log-amplitude normalised cross-correlation with Lucas-Kanade sub-pixel "
                "refinement; offsets = polynomial(x, y) + a term in terrain height (the DEM "
                "averaged as each node's LK window weights it) fitted on stable ground by "
                "trimmed least squares and removed; cumulative series by weighted least "
                "squares over the pair network; robust quality-weighted mean velocity"),
        quality=quality, place=options.place, licence=options.licence,
        temporal_resolution=f"{days_between(dates[0], dates[1]):.4g} days",
        keywords=("glacier", "velocity", "SAR", "offset tracking", "Sentinel-1", "cryosphere"),
        stac_properties=_s1_properties(report))


def _s1_properties(report: dict) -> dict | None:
    """STAC sar/sat/view properties of a series made from Sentinel-1 products."""
    if "sentinel1" not in report:
        return None
    first = report["sentinel1"][0]
    return {"platform": ",".join(sorted({g["mission"].lower() for g in report["sentinel1"]})),
            "constellation": "sentinel-1", "instruments": ["c-sar"],
            "sar:instrument_mode": first["mode"], "sar:frequency_band": "C",
            "sar:polarizations": [first["polarisation"]],
            "sar:product_type": first["product_type"], "sar:observation_direction": first["look"],
            "sat:orbit_state": first["pass"], "sat:relative_orbit": first["relative_orbit"],
            "view:incidence_angle": round(report["geometry"]["incidence_deg"], 3)}
