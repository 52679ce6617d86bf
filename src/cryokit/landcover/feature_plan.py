"""Planning a feature stack: which output bands the inputs give (names, dates, roles, units).

:func:`plan_features` reads only the inputs' headers (band descriptions, file names) and
returns a :class:`FeaturePlan`, which :func:`cryokit.landcover.features.write_features`
computes block by block.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.dates import date_from_name
from ..core.errors import UserError, require_file
from ..core.raster import Grid, open_raster
from .context import check_sizes, context_names
from .spectral import (INDEX_NAMES, NORMALISED_DIFFERENCES, SAVI_L, SENSOR_BANDS,
                       available_indices, band_role)
from .temporal import STATS

_DESC = re.compile(r"^(\d{4}-\d{2}-\d{2})[_ ](.+)$")


@dataclass(frozen=True)
class BandRef:
    """One optical input band: file, 1-based band index, date (``""`` if none), name, role."""

    path: str
    index: int
    date: str
    name: str
    role: str | None


@dataclass(frozen=True)
class FeatureOptions:
    """Options of :func:`plan_features`.

    Parameters
    ----------
    bands : names for every optical input band in order (overrides descriptions).
    sensor : key of :data:`SENSOR_BANDS` for ``Bn`` names (default: Sentinel-2 when the names
        are zero-padded, else required as soon as an index needs it).
    indices : indices wanted (default all the roles allow); ``()`` for none.
    stats : temporal statistics when there are 2 dates or more (``()`` for none).
    per_date : keep every date's bands and indices (else only the statistics).
    scale, offset : optical values become ``value * scale + offset`` (e.g. 1e-4 for int16 SR).
    optical_units : unit written for optical bands.
    sar_db : SAR input in dB (True), linear (False) or decided from the data (None).
    resampling : for inputs on another grid than the first input (``nearest``, ``bilinear``,
        ``cubic``, ``average``).
    block : block size in pixels.
    context : window sides (odd, pixels) of the spatial-context bands (local mean and standard
        deviation of each band, :mod:`.context`); ``()`` for none.
    context_bands : shell patterns (``fnmatch``) of the band names that get context bands
        (default: every band).
    """

    bands: tuple[str, ...] | None = None
    sensor: str | None = None
    indices: tuple[str, ...] | None = None
    stats: tuple[str, ...] = STATS
    per_date: bool = True
    scale: float = 1.0
    offset: float = 0.0
    optical_units: str = "reflectance"
    sar_db: bool | None = None
    resampling: str = "bilinear"
    block: int = 512
    context: tuple[int, ...] = ()
    context_bands: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FeaturePlan:
    """What :func:`write_features` computes: the grid, inputs and the output band list."""

    grid: Grid
    optical: tuple[BandRef, ...]
    dates: tuple[str, ...]
    indices: tuple[str, ...]
    names: tuple[str, ...]
    units: tuple[str, ...]
    options: FeatureOptions
    sar: tuple[str, int, int, bool] | None = None  # path, VV band, VH band, in dB
    dem: str | None = None
    tags: dict = field(default_factory=dict)
    context_index: tuple[int, ...] = ()  # bands (before context) that get context bands


def _parse_name(text: str) -> tuple[str, str]:
    """(date, band name) from ``2015-07-11_B04`` / ``B04`` / ``red``."""
    m = _DESC.match(text.strip())
    return (m.group(1), m.group(2).strip()) if m else ("", text.strip())



def _file_date(path: str) -> str:
    """``YYYY-MM-DD`` from the file name (:func:`cryokit.core.dates.date_from_name`), else ``""``."""
    d = date_from_name(path)
    return d.isoformat() if d else ""


def _optical_bands(inputs: Sequence[str], opts: FeatureOptions) -> list[BandRef]:
    raw = []  # (path, index, description)
    for p in inputs:
        with open_raster(p) as ds:
            for i, d in enumerate(ds.descriptions, 1):
                raw.append((p, i, d))
    if opts.bands is not None and len(opts.bands) != len(raw):
        raise UserError(f"--bands names {len(opts.bands)} band(s) but the inputs have {len(raw)}",
                        inputs[0])
    refs = []
    for k, (p, i, d) in enumerate(raw):
        text = opts.bands[k] if opts.bands is not None else d
        if not text:
            stem = Path(p).stem
            m = re.search(r"(?:^|[_\-.])((?:SR_)?B\d{1,2}A?)$", stem, re.IGNORECASE)
            text = m.group(1) if m and len(raw) == len(inputs) else ""
        if not text:
            raise UserError(f"band {i} has no name (no description); name every input band "
                            "with --bands, e.g. --bands B1,B2,B3,B4,B5,B7", p)
        date, name = _parse_name(text)
        date = date or _file_date(p)
        refs.append(BandRef(p, i, date, name, band_role(name, opts.sensor)))
    seen = {}
    for r in refs:
        key = (r.date, r.name.lower())
        if key in seen:
            raise UserError(f"band {r.name!r} of date {r.date or '(none)'} given twice "
                            f"({seen[key]} and band {r.index}); give dates in the band names "
                            "(YYYY-MM-DD_name)", r.path)
        seen[key] = f"{Path(r.path).name} band {r.index}"
    return refs


def _sar_bands(path: str, opts: FeatureOptions) -> tuple[str, int, int, bool]:
    with open_raster(path) as ds:
        desc = [(d or "").upper() for d in ds.descriptions]
        if ds.count < 2:
            raise UserError("SAR file needs two bands (VV, VH)", path)
        vv = next((i for i, d in enumerate(desc, 1) if "VV" in d and "VH" not in d), 1)
        vh = next((i for i, d in enumerate(desc, 1) if "VH" in d and "VV" not in d), 2)
        db = opts.sar_db
        if db is None:
            units = " ".join([ds.units[vv - 1] or "", ds.tags(vv).get("units", ""), desc[vv - 1]])
            if "DB" in units.upper():
                db = True
            else:
                # Linear backscatter is positive; dB over land and water is mostly negative.
                step = max(1, max(ds.height, ds.width) // 256)
                sample = ds.read(vv, out_shape=(max(1, ds.height // step), max(1, ds.width // step)),
                                 masked=True).compressed()
                sample = sample[np.isfinite(sample)]
                if not sample.size:
                    raise UserError("SAR VV band has no valid pixel", path)
                db = bool(np.median(sample) < 0)
    return path, vv, vh, db


def _check_overlap(path: str, grid: Grid, first) -> None:
    """UserError unless the raster at ``path`` covers part of the output grid: a SAR or DEM
    of another area would give a stack of NaN bands, not an error."""
    from rasterio.warp import transform_bounds

    with open_raster(path) as ds:
        if ds.crs is None or grid.crs is None:
            return
        left, bottom, right, top = transform_bounds(ds.crs, grid.crs, *ds.bounds, densify_pts=21)
    gl, gb, gr, gt = grid.bounds
    if left >= gr or right <= gl or bottom >= gt or top <= gb:
        raise UserError(f"does not overlap the grid of {Path(first).name} (the output grid)",
                        path)


def _value_level(optical) -> float:
    """99th percentile of the bands that indices use (a decimated read of each, at most 4)."""
    tops = []
    for r in [o for o in optical if o.role][:4]:
        with open_raster(r.path) as ds:
            step = max(1, max(ds.height, ds.width) // 256)
            a = ds.read(r.index, out_shape=(max(1, ds.height // step), max(1, ds.width // step)),
                        masked=True).astype(np.float64).filled(np.nan)
        a = a[np.isfinite(a)]
        if a.size:
            tops.append(float(np.percentile(a, 99)))
    return max(tops, default=0.0)


def plan_features(inputs: Sequence[str | os.PathLike], options: FeatureOptions = FeatureOptions(),
                  sar: str | os.PathLike | None = None,
                  dem: str | os.PathLike | None = None) -> FeaturePlan:
    """Decide the output bands from the inputs' band names and dates (reads headers only).

    Parameters
    ----------
    inputs : optical rasters; the first one's grid is the output grid.  Bands are named by
        their descriptions (``YYYY-MM-DD_Bxx``, ``Bxx``, ``red``...), a ``_Bn`` file-name
        suffix for single-band files, or ``options.bands``; a date in the file name applies
        to bands without one.
    sar : raster with VV and VH bands (found by description, else bands 1 and 2).
    dem : elevation raster (m).

    Examples
    --------
    >>> plan = plan_features(["S2_65bands.tif"], dem="dem.tif")  # doctest: +SKIP
    >>> plan.names[:2]                                           # doctest: +SKIP
    ('2015-07-11_B01', '2015-07-11_B02')
    """
    inputs = [require_file(p) for p in inputs]
    if not inputs:
        raise UserError("give at least one optical input raster")
    if options.sensor is not None and options.sensor not in SENSOR_BANDS:
        raise UserError(f"unknown sensor {options.sensor!r}; one of {', '.join(SENSOR_BANDS)}")
    with open_raster(inputs[0]) as ds:
        grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
    optical = _optical_bands(inputs, options)
    dates = tuple(sorted({r.date for r in optical}))
    band_names = list(dict.fromkeys(r.name for r in optical))
    roles = {r.role for r in optical if r.role}
    if options.indices is None:
        indices = available_indices(sorted(roles))
    else:
        indices = [i.upper() for i in options.indices]
        unknown = [i for i in indices if i not in INDEX_NAMES]
        if unknown:
            raise UserError(f"unknown index {', '.join(unknown)}; one of {', '.join(INDEX_NAMES)}")
        missing = [i for i in indices if i not in available_indices(sorted(roles))]
        if missing:
            raise UserError(f"index {', '.join(missing)} needs band roles the inputs lack (roles "
                            f"found: {', '.join(sorted(roles)) or 'none'}; name the bands or "
                            "give --sensor)", inputs[0])
    if indices and options.scale == 1.0 and options.offset == 0.0:
        top = _value_level(optical)
        if top > 1.5:
            from ..core.console import warn
            warn(f"{Path(optical[0].path).name}: optical values reach {top:g}, digital numbers "
                 f"rather than reflectance 0-1; the indices ({', '.join(indices)}) assume "
                 "reflectance (SAVI's soil term, NDSI thresholds): give --scale and --offset "
                 "(Landsat Collection 2 L2: 0.0000275 and -0.2; Sentinel-2 L2A: 0.0001)")
    for r in optical:  # two bands of one date with the same role would make indices ambiguous
        same = [o for o in optical if o.date == r.date and o.role == r.role and r.role]
        if len(same) > 1:
            raise UserError(f"bands {same[0].name} and {same[1].name} both have role {r.role} "
                            f"on date {r.date or '(none)'}", r.path)
    names, units = [], []
    per_date = options.per_date or len(dates) < 2
    ou = options.optical_units
    if per_date:
        for d in dates:
            pre = f"{d}_" if d else ""
            names += [pre + b for b in band_names if any(r.date == d and r.name == b
                                                         for r in optical)]
            units += [ou] * (len(names) - len(units))
            names += [pre + i for i in indices]
            units += ["1"] * len(indices)
    if len(dates) >= 2:
        for b in [*band_names, *indices]:
            for s in options.stats:
                names.append(f"{b}_{s}")
                units.append("1" if b in indices else ou)
    sar_info = None
    for extra in (*inputs[1:], sar, dem):
        if extra is not None:
            _check_overlap(require_file(extra), grid, inputs[0])
    if sar is not None:
        sar_info = _sar_bands(require_file(sar), options)
        names += ["VV", "VH", "VH-VV"]
        units += ["dB"] * 3
    if dem is not None:
        require_file(dem)
        names += ["elevation", "slope", "aspect_sin", "aspect_cos"]
        units += ["m", "degree", "1", "1"]
    ctx_idx: tuple[int, ...] = ()
    if options.context:
        try:
            sizes = check_sizes(options.context)
        except ValueError as e:
            raise UserError(f"--context: {e}") from None
        pats = options.context_bands or ("*",)
        ctx_idx = tuple(i for i, n in enumerate(names) if any(fnmatch(n, p) for p in pats))
        if not ctx_idx:
            raise UserError(f"--context-bands {','.join(pats)} matches no feature band "
                            f"(bands: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''})",
                            inputs[0])
        options = replace(options, context=sizes)
        base = [names[i] for i in ctx_idx]
        names += context_names(base, sizes)
        units += [units[i] for i in ctx_idx] * 2 * len(sizes)
    tags = {
        "feature_dates": ",".join(d for d in dates if d) or "none",
        "optical_inputs": ",".join(Path(p).name for p in inputs),
        "optical_scale": f"value * {options.scale} + {options.offset}",
        "band_roles": ",".join(f"{r.name}={r.role}" for r in
                               {r.name: r for r in optical}.values() if r.role),
        "indices": "normalised differences (a-b)/(a+b): " + ", ".join(
            f"{n}=({a}-{b})" for n, (a, b) in NORMALISED_DIFFERENCES.items() if n in indices)
        + (f"; SAVI=(1+L)(nir-red)/(nir+red+L), L={SAVI_L}" if "SAVI" in indices else ""),
        "temporal_statistics": (f"{', '.join(options.stats)} over {len(dates)} dates, NaN ignored"
                                if len(dates) >= 2 else "none (one date)"),
    }
    if sar_info:
        tags["sar"] = (f"{Path(sar_info[0]).name}: VV band {sar_info[1]}, VH band {sar_info[2]}, "
                       f"{'dB' if sar_info[3] else 'linear power -> dB'}; VH-VV = VH_dB - VV_dB")
    if ctx_idx:
        tags["spatial_context"] = (
            f"{len(ctx_idx)} band(s) x windows {', '.join(f'{k}x{k}' for k in options.context)}"
            " px: NAME_meanKxK / NAME_stdKxK = mean / population standard deviation of the "
            "valid pixels in the KxK window centred on the pixel (NaN and outside the raster "
            "ignored), in the band's units")
    if dem is not None:
        tags["terrain"] = (f"{Path(dem).name}: slope Horn (1981) in degrees; aspect clockwise "
                           "from north of the downhill direction, as sin/cos (flat: 0, 1)")
    return FeaturePlan(grid, tuple(optical), dates, tuple(indices), tuple(names), tuple(units),
                       options, sar_info, None if dem is None else os.fspath(dem), tags,
                       ctx_idx)

