"""The optical velocity series: many images -> one velocity product per pair, one velocity
per period (e.g. per year, as the Karakoram product), an error-weighted mean, and a cube with
the ITS_LIVE conventions.

Each pair is an ordinary :func:`.product.make_velocity` product in ``pairs/{t1}_{t2}/``, with a
stamp ``pairs/{t1}_{t2}.json`` (content digests of its inputs and every setting) written after
it: a re-run keeps the pairs whose stamp still matches and redoes the rest. A pair that fails
is reported and left out; the period products, the mean and the cube are made from the pairs
that finished.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.console import info, warn
from ..core.dates import acquisition_times, day_of, days_between, parse_time
from ..core.errors import UserError
from ..core.outputs import (check_output_dir, file_digest, remove_listed, remove_stale_products,
                            walk_files, write_marker)
from ..core.raster import Grid, grid_in_crs, one_grid, projected_grid, read_band, write_cog
from ..core.records import json_safe, write_json, write_records
from ..core.robust import nmad
from . import cube, landsat, quality, series
from .product import CONVENTION, UNITS, VelocityOptions, make_velocity
from .track import NodeGrid, TrackParams

COMMAND = "velocity-series"
BANDS = ("vx", "vy", "v", "v_error", "count")


@dataclass(frozen=True)
class SeriesOptions:
    """Options of the series (the tracking parameters travel as :class:`TrackParams`).

    pairs : ``consecutive``, ``all-within-DAYS`` or the path of a pairs file (two images per
        line: file names, stems, ISO dates or unique years, separated by commas, semicolons or
        blanks; a first line that names no image is a header).
    period : ``year``, ``<N>d`` or None (no period products).
    dates : one acquisition date or date-time per image, in the order given (default: from
        the file names and tags).
    """

    pairs: str = "consecutive"
    period: str | None = "year"
    dates: tuple[str, ...] | None = None
    velocity: VelocityOptions = field(default_factory=VelocityOptions)
    overwrite: bool = False


def pair_name(t1, t2) -> str:
    """``YYYYMMDD_YYYYMMDD``, the stem of a pair's files."""
    return f"{t1:%Y%m%d}_{t2:%Y%m%d}"


# ----------------------------------------------------------------------------- inputs

def _inputs(images: list[str], dates: tuple[str, ...] | None) -> tuple[list[str], list, Grid]:
    if len(images) < 2:
        raise UserError(f"need at least two images, got {len(images)}")
    if dates is not None:
        if len(dates) != len(images):
            raise UserError(f"--dates gives {len(dates)} dates for {len(images)} images; give "
                            "one per image, in the order of the images")
        times = [parse_time(d, "--dates") for d in dates]
        if len({type(t) for t in times}) > 1:
            times = [day_of(t) for t in times]
    else:
        scene_times = [landsat.image_time(p) for p in images]
        times = scene_times if all(scene_times) else acquisition_times(images)
    grid = one_grid(images)
    for path, t in zip(images, times):
        if t is None:
            raise UserError("no acquisition date in its file name or tags; give --dates "
                            "(one per image)", path)
    paths, times = series.sort_by_time(images, times)
    return paths, times, grid


_SPLIT = re.compile(r"[,;\s]+")


def read_pairs_file(path: str, paths: list[str], times: list) -> list[tuple[int, int]]:
    """Pairs (i, j) of a pairs file, each image named by file name, stem, date or year."""
    keys: dict[str, set[int]] = {}
    for k, (p, t) in enumerate(zip(paths, times)):
        name = os.path.basename(p)
        for key in {p, name, name.split(".")[0], day_of(t).isoformat(), f"{day_of(t):%Y%m%d}",
                    f"{t.year}"}:
            keys.setdefault(key.lower(), set()).add(k)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot be read as a text pairs file ({e})", path) from None
    pairs = []
    for n, line in enumerate(lines, 1):
        tokens = [s for s in _SPLIT.split(line.strip()) if s]
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) != 2:
            raise UserError(f"line {n}: expected two images, got {len(tokens)} fields", path)
        hits = [keys.get(s.lower(), set()) for s in tokens]
        if not all(hits):
            if not pairs and not any(hits):
                continue      # a header line
            raise UserError(f"line {n}: {tokens[hits.index(set())]!r} names none of the images",
                            path)
        if any(len(h) > 1 for h in hits):
            raise UserError(f"line {n}: {tokens[[len(h) > 1 for h in hits].index(True)]!r} "
                            "names several images; use file names", path)
        i, j = sorted(next(iter(h)) for h in hits)
        if i == j:
            raise UserError(f"line {n}: both entries name the same image", path)
        pairs.append((i, j))
    if not pairs:
        raise UserError("lists no pair", path)
    return sorted(set(pairs))


def _pairs(rule: str, paths, times) -> list[tuple[int, int]]:
    if rule == "consecutive" or rule.startswith("all-within-"):
        try:
            return series.pair_network(times, rule)
        except ValueError as e:
            raise UserError(f"--pairs: {e}") from None
    if os.path.isfile(rule):
        return read_pairs_file(rule, paths, times)
    raise UserError(f"--pairs: {rule!r} is neither consecutive, all-within-DAYS nor a pairs file")


# ----------------------------------------------------------------------------- pairs

def _stamp(params: TrackParams, options: SeriesOptions, mask, digests) -> dict:
    vo = options.velocity
    return {"params": params.as_dict() | {"threads": None}, "units": vo.units,
            "out_crs": vo.out_crs, "out_res": vo.out_res,
            "stable_model": vo.stable_model, "stable_values": vo.stable_values,
            "stable_mask": mask and os.path.abspath(mask), "software": __version__,
            "input_digests": digests}


def _pair_done(out: Path, name: str, stamp: dict) -> bool:
    import json

    try:
        rec = json.loads((out / "pairs" / f"{name}.json").read_text())
    except (OSError, ValueError):
        return False
    return rec == json_safe(stamp) and (out / "pairs" / name / "report.json").exists()


def _track_pairs(out, paths, times, pairs, params, mask, options, digests):
    done, failures, computed, kept = {}, [], [], []
    vo = replace(options.velocity, progress=False)
    for n, (i, j) in enumerate(pairs, 1):
        name = pair_name(times[i], times[j])
        stamp = _stamp(params, options, mask, [digests[paths[i]], digests[paths[j]],
                                               digests.get(mask)])
        if _pair_done(out, name, stamp):
            done[(i, j)] = name
            kept.append(name)
            continue
        info(f"pair {n}/{len(pairs)}: {name}")
        (out / "pairs" / f"{name}.json").unlink(missing_ok=True)
        try:
            make_velocity(paths[i], paths[j], str(out / "pairs" / name), params,
                          dates=(times[i].isoformat(), times[j].isoformat()),
                          stable_mask=mask, options=vo)
        except Exception as e:  # a failed pair is reported; the series goes on
            msg = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
            failures.append({"pair": name, "images": [paths[i], paths[j]], "error": msg})
            continue
        write_json(out / "pairs" / f"{name}.json", stamp)   # last: the pair is finished
        done[(i, j)] = name
        computed.append(name)
    return done, failures, computed, kept


def _read_pair(folder: Path):
    """A pair product's vx, vy and v_error (None when it has no error layer)."""
    vx, vy = read_band(folder / "vx.tif"), read_band(folder / "vy.tif")
    err = folder / "v_error.tif"
    sigma = read_band(err) if err.exists() else None
    return vx, vy, sigma


# ----------------------------------------------------------------------------- products

def _mean_product(path: Path, stack, ngrid: Grid, units: str, tags: dict, weighted: bool,
                  stable) -> dict:
    vx, vy, sigma = stack
    mx, my, v, err, count = series.weighted_mean_velocity(vx, vy, sigma)
    if not weighted:
        err = np.full(err.shape, np.nan)
    write_cog(path, [mx.astype(np.float32), my.astype(np.float32), v.astype(np.float32),
                     err.astype(np.float32), count.astype(np.float32)], ngrid,
              descriptions=[f"velocity easting component ({units})",
                            f"velocity northing component ({units})", f"speed ({units})",
                            f"speed error, 1 sigma ({units}), of the error-weighted mean",
                            "pairs used (count)"],
              units=[units, units, units, units, "1"], tags=tags)
    out = {"file": path.name, "valid_fraction": float(np.isfinite(v).mean()),
           "quality_metrics": quality.glaft_metrics(
               mx, my, stable, None if stable is None else ~stable, abs(ngrid.res[0]),
               abs(ngrid.res[1]), units) if stable is not None and not ngrid.crs.is_geographic
           else None,
           "speed_p50": _finite_pct(v, 50), "speed_p95": _finite_pct(v, 95),
           "pairs_per_pixel_max": int(count.max(initial=0))}
    out["arrays"] = (mx, my, v)      # for the quick-look; not part of the report
    if stable is not None:
        use = stable & np.isfinite(mx)
        out["stable_ground"] = {"n_nodes": int(use.sum()),
                                "median": [_f(np.median(mx[use])) if use.any() else None,
                                           _f(np.median(my[use])) if use.any() else None],
                                "nmad": [_f(nmad(mx[use])), _f(nmad(my[use]))],
                                "units": units}
    return out


def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _finite_pct(a, q) -> float | None:
    a = a[np.isfinite(a)]
    return float(np.percentile(a, q)) if a.size else None


# ----------------------------------------------------------------------------- the series

def _open_output(out: Path, inputs, stable_mask, options: SeriesOptions) -> dict | None:
    """Check the output folder, start afresh with --overwrite, mark it ours; return the
    earlier marker (None: a new output)."""
    marker = check_output_dir(out, COMMAND, inputs=(*inputs, stable_mask), resume=True,
                              overwrite=options.overwrite)
    if marker is not None and options.overwrite:
        remove_listed(out, set(marker.get("files", [])) | set(walk_files(out / "pairs")))
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, COMMAND, files=walk_files(out))
    return marker


def make_velocity_series(images: list[str], outdir: str, params: TrackParams = TrackParams(), *,
                         stable_mask: str | None = None,
                         options: SeriesOptions = SeriesOptions()) -> dict:
    """Make the velocity series of ``images`` in ``outdir``; return the report.

    The report's ``failures`` lists the pairs that failed (their error message); the others
    and the period, mean and cube products are still written. Raises :class:`UserError`
    before writing anything when the inputs or options are wrong, and when every pair failed.
    """
    t0 = time.perf_counter()
    units = options.velocity.units
    if units not in UNITS:
        raise UserError(f"unknown units {units!r}; use m/d or m/yr")
    images = given = [os.fspath(p) for p in images]
    out = Path(outdir)
    scenes, marker = [], None
    if any(landsat.is_mtl(p) for p in images):
        for p in images:
            if landsat.is_mtl(p):
                landsat.scene(p)          # checked before anything is written
        marker = _open_output(out, images, stable_mask, options)
        dated = [(landsat.image_time(p), p) for p in images] if options.dates is None else None
        try:
            images, scenes = landsat.prepare(images, out / "inputs")
        except Exception:
            if marker is None:
                shutil.rmtree(out, ignore_errors=True)
            raise
        if dated is not None and all(t for t, _ in dated):
            options = replace(options, dates=tuple(t.isoformat() for t, _ in dated))
    try:
        paths, times, grid = _inputs(images, options.dates)
    except UserError:
        if scenes and marker is None:
            shutil.rmtree(out, ignore_errors=True)
        raise
    pairs = _pairs(options.pairs, paths, times)
    if not pairs:
        raise UserError(f"no pair of images within the --pairs rule {options.pairs!r}")
    mids = [cube.as_datetime(times[i]) + (cube.as_datetime(times[j]) - cube.as_datetime(times[i])) / 2 for i, j in pairs]
    if options.period:
        try:
            series.period_bins(mids, options.period)
        except ValueError as e:
            raise UserError(f"--period: {e}") from None
    grid = projected_grid(grid)    # where the pairs are tracked (UTM for geographic images)
    nodes = NodeGrid.of(grid.shape, params)
    if min(nodes.shape) < 1:
        raise UserError(f"images of {grid.width} x {grid.height} px are smaller than one step",
                        paths[0])
    ngrid = nodes.georeferenced(grid)
    vo = options.velocity
    if vo.out_crs:                 # every pair is written on this grid too
        ngrid = grid_in_crs(ngrid, vo.out_crs, vo.out_res)
    stable = None
    if stable_mask:
        from ..core.vector import load_mask  # geopandas is imported only when a mask is used
        stable = load_mask(stable_mask, ngrid, options.velocity.stable_values)

    if not scenes:
        marker = _open_output(out, given, stable_mask, options)
    (out / "pairs").mkdir(parents=True, exist_ok=True)
    digests = {p: file_digest(p) for p in paths}
    if stable_mask:
        digests[stable_mask] = file_digest(stable_mask)

    done, failures, computed, kept = _track_pairs(out, paths, times, pairs, params,
                                                  stable_mask, options, digests)
    t_pairs = time.perf_counter() - t0
    if not done:
        if marker is None:   # a new output: leave nothing behind
            shutil.rmtree(out, ignore_errors=True)
        msg = "; ".join(f"{f['pair']}: {f['error']}" for f in failures[:3])
        raise UserError(f"every pair failed ({len(failures)}): {msg}")
    for f in failures:   # one line each, after the pairs: the run goes on without them
        warn(f"pair {f['pair']} failed: {f['error']}")

    ok = [p for p in pairs if p in done]
    names = [done[p] for p in ok]
    dts = [days_between(times[i], times[j]) for i, j in ok]
    read = [_read_pair(out / "pairs" / n) for n in names]
    weighted = all(r[2] is not None for r in read)
    # Without per-pair errors (no stable ground) the pairs count alike: sigma 1, and the
    # mean's error is not stated.
    stacks = tuple(np.array([r[k] if r[k] is not None else np.ones_like(r[0]) for r in read])
                   for k in range(3))
    base_tags = {"units": units, "sign_convention": CONVENTION, "time_reference": "UTC",
                 "software": f"cryokit {__version__}"}
    periods = []
    if options.period:
        mid_of = dict(zip(pairs, mids))
        bins = series.period_bins([mid_of[p] for p in ok], options.period)
        for label in dict.fromkeys(b[0] for b in bins):
            sel = [k for k, b in enumerate(bins) if b[0] == label]
            a, b = bins[sel[0]][1], bins[sel[0]][2]
            sub = tuple(s[sel] for s in stacks)
            rec = _mean_product(out / f"velocity_{label}.tif", sub, ngrid, units,
                                base_tags | {"period": label, "period_start": a.isoformat(),
                                             "period_end": b.isoformat(),
                                             "pairs": " ".join(names[k] for k in sel)},
                                weighted, stable)
            rec.pop("arrays")
            periods.append({"period": label, "start": a.isoformat(), "end": b.isoformat(),
                            "pairs": [names[k] for k in sel], **rec})
    remove_stale_products(out, "velocity_*.tif", [p["file"] for p in periods])
    mean = _mean_product(out / "mean_velocity.tif", stacks, ngrid, units,
                         base_tags | {"pairs": " ".join(names)}, weighted, stable)
    mean_arrays = mean.pop("arrays")
    sensors = [(cube.sensor(paths[i]), cube.sensor(paths[j])) for i, j in ok]
    cube_files = cube.write_pair_cube(out, ngrid, names, [(times[i], times[j]) for i, j in ok], stacks,
                       units, sensors)

    report = {
        "product": "glacier surface velocity series (optical feature tracking)",
        "software": f"cryokit {__version__}", "units": units, "sign_convention": CONVENTION,
        "time_reference": "UTC; rates use the acquisition date-times where the inputs carry them",
        "images": [{"file": os.path.abspath(p), "time": t.isoformat()} for p, t in zip(paths, times)],
        "pair_rule": options.pairs, "period": options.period,
        "pairs": [{"pair": n, "dates": [times[i].isoformat(), times[j].isoformat()],
                   "dt_days": d, "folder": f"pairs/{n}"} for n, (i, j), d in zip(names, ok, dts)],
        "periods": periods, "mean": mean,
        "weighting": ("1 / v_error^2 per pixel (each pair's error layer), pair values over 3 "
                      "spreads from the pixel median left out" if weighted else
                      "equal weights: no pair has an error layer (give --stable-mask)"),
        "cube": cube_files, "failures": failures, **({"landsat": scenes} if scenes else {}), "computed": computed, "skipped": kept,
        "node_grid": {"rows": ngrid.height, "cols": ngrid.width,
                      "spacing_m": [ngrid.res[0], ngrid.res[1]]},
        "timings_s": {"pairs": round(t_pairs, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    write_json(out / "report.json", report)
    _quicklook(out, mean_arrays, ngrid, units)
    _records(out, report, times, ngrid, params)
    write_marker(out, COMMAND, files=walk_files(out))
    return report


def _quicklook(out: Path, arrays, ngrid: Grid, units: str) -> None:
    from ..core.quicklook import vector_quicklook

    vx, vy, v = arrays
    b = ngrid.bounds
    vector_quicklook(out / "quicklook.png", v, v, vx, vy, extent=(b[0], b[2], b[1], b[3]),
                     units=units, title=f"Mean speed ({units})")


def _records(out: Path, report: dict, times, ngrid: Grid, params: TrackParams) -> None:
    t1, t2 = times[0], times[-1]
    sg = report["mean"].get("stable_ground")
    quality = (f"stable-ground NMAD of the mean velocity {sg['nmad'][0]:.3g} (x), "
               f"{sg['nmad'][1]:.3g} (y) {report['units']} over {sg['n_nodes']} nodes"
               if sg and sg["nmad"][0] is not None else "no stable ground given: error not "
               "estimated")
    periods = ", ".join(p["period"] for p in report["periods"]) or "none"
    write_records(
        out, item_id=f"velocity_series_{t1:%Y%m%d}_{t2:%Y%m%d}", grid=ngrid, start=t1, end=t2,
        title={"en": f"Glacier surface velocity series {day_of(t1)} to {day_of(t2)}"},
        abstract=(f"Surface velocity from feature tracking of {len(report['images'])} optical "
                  f"images: {len(report['pairs'])} pairs ({report['pair_rule']}), a velocity per "
                  f"period ({periods}) and the error-weighted mean, east and north components, "
                  f"speed, 1-sigma speed error and pair count in {report['units']} on a "
                  f"{ngrid.res[0]:g} m node grid, and a cube of every pair. {quality}."),
        source=", ".join(os.path.basename(i["file"]) for i in report["images"]),
        method=(f"{params.matcher.upper()} chip matching (chip {params.chip} px, step "
                f"{params.step} px) with Lucas-Kanade sub-pixel refinement per pair, "
                + ("stable-ground correction, per-node error from correlation quality scaled by "
                   "the stable-ground NMAD; periods and mean as error-weighted means of the pairs"
                   if report["mean"].get("stable_ground") else
                   "no stable-ground correction; periods and mean as plain means of the pairs")),
        quality=quality, temporal_resolution=f"{len(report['pairs'])} pairs",
        keywords=("glacier", "velocity", "feature tracking", "time series", "cryosphere"))
