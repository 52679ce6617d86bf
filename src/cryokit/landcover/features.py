"""Feature stacks for land cover classification: optical bands and indices per date, temporal
statistics, SAR backscatter and terrain, all on one grid, computed block by block.

Algorithms (:func:`spectral_indices`, :func:`temporal_stats`, :func:`sar_features`,
:func:`terrain_features`) take and return numpy arrays.  :func:`plan_features` reads band names
and dates from the inputs and decides the output bands; :func:`write_features` computes them
window by window (each window reads only its part of every input, reprojected to the first
input's grid) and writes a tiled float32 GeoTIFF (nodata NaN, band descriptions = feature names,
band tag ``units``), converted to a COG at the end.

Band roles
----------
Indices need to know which band is red, NIR... A band named by role (``red``, ``nir``,
``swir1``...) is used as is; a band named ``Bn``/``B0n``/``B8A`` (the Sentinel-2/Landsat
convention, optionally after a date ``YYYY-MM-DD_``) gets its role from the sensor's band table
(:data:`SENSOR_BANDS`).  Zero-padded names (``B04``, ``B8A``) mean Sentinel-2; otherwise the
sensor must be said (``B4`` is red on Sentinel-2 and Landsat 8, NIR on Landsat 5/7).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window

from ..atomic import atomic_file
from ..dates import date_from_name
from ..elevation.terrain import horn_gradient, slope_aspect_from_gradient
from ..errors import UserError, require_file
from ..raster import Grid, open_raster

#: Band number -> role for each sensor (``"8A"`` for Sentinel-2's narrow NIR).
SENSOR_BANDS: dict[str, dict[str, str]] = {
    "sentinel2": {"1": "coastal", "2": "blue", "3": "green", "4": "red", "5": "rededge1",
                  "6": "rededge2", "7": "rededge3", "8": "nir", "8A": "nir08", "9": "watervapour",
                  "10": "cirrus", "11": "swir1", "12": "swir2"},
    "landsat8": {"1": "coastal", "2": "blue", "3": "green", "4": "red", "5": "nir", "6": "swir1",
                 "7": "swir2", "8": "pan", "9": "cirrus", "10": "tir1", "11": "tir2"},
    "landsat7": {"1": "blue", "2": "green", "3": "red", "4": "nir", "5": "swir1", "6": "tir",
                 "7": "swir2", "8": "pan"},
}
SENSOR_BANDS["landsat9"] = SENSOR_BANDS["landsat8"]
SENSOR_BANDS["landsat5"] = SENSOR_BANDS["landsat7"]

ROLES = ("coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
         "watervapour", "cirrus", "swir1", "swir2", "pan", "tir", "tir1", "tir2")
_ROLE_ALIASES = {"nir08": "nir08", "nir_narrow": "nir08", "swir16": "swir1", "swir22": "swir2",
                 "re1": "rededge1", "re2": "rededge2", "re3": "rededge3"}

#: Normalised-difference indices: name -> (a, b) for (a - b) / (a + b); see :func:`spectral_indices`.
NORMALISED_DIFFERENCES = {
    "NDVI": ("nir", "red"),      # vegetation (Rouse et al. 1974)
    "NDWI": ("green", "nir"),    # open water (McFeeters 1996)
    "NDSI": ("green", "swir1"),  # snow and ice (Hall et al. 1995); equals MNDWI (Xu 2006)
    "NBR": ("nir", "swir2"),     # burn ratio, also moisture of vegetation
    "NDBI": ("swir1", "nir"),    # built-up (Zha et al. 2003)
}
#: Every index :func:`spectral_indices` can compute, in output order.
INDEX_NAMES = ("NDVI", "NDWI", "NDSI", "NBR", "NDBI", "SAVI")
#: Soil-brightness factor of SAVI (Huete 1988); assumes reflectance 0..1 (see ``scale``).
SAVI_L = 0.5

STATS = ("median", "p10", "p90")

_DESC = re.compile(r"^(\d{4}-\d{2}-\d{2})[_ ](.+)$")
_BNUM = re.compile(r"^(?:SR_)?B0*(\d{1,2}A?)$", re.IGNORECASE)


# --------------------------------------------------------------------------- algorithms

def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / (a + b)
    return np.where(np.isfinite(out), out, np.nan).astype(np.float32, copy=False)


def available_indices(roles: Sequence[str]) -> list[str]:
    """The indices of :data:`INDEX_NAMES` that the band roles allow.

    Examples
    --------
    >>> available_indices(["blue", "green", "red", "nir"])
    ['NDVI', 'NDWI', 'SAVI']
    """
    have = set(roles)
    out = [n for n, (a, b) in NORMALISED_DIFFERENCES.items() if a in have and b in have]
    if {"nir", "red"} <= have:
        out.append("SAVI")
    return [n for n in INDEX_NAMES if n in out]


def spectral_indices(bands: Mapping[str, np.ndarray],
                     names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Spectral indices from bands keyed by role (``red``, ``nir``, ``green``, ``swir1``...).

    All are dimensionless, NaN where an input is NaN or the denominator is 0.  Normalised
    differences do not depend on a common scale of the bands; SAVI assumes reflectance 0..1.

    Parameters
    ----------
    bands : role -> array (same shapes)
    names : indices wanted (default: all that the roles allow, :func:`available_indices`).

    Examples
    --------
    >>> import numpy as np
    >>> out = spectral_indices({"red": np.array([0.1]), "nir": np.array([0.5])})
    >>> sorted(out), round(float(out["NDVI"][0]), 4), round(float(out["SAVI"][0]), 4)
    (['NDVI', 'SAVI'], 0.6667, 0.5455)
    """
    names = available_indices(list(bands)) if names is None else list(names)
    out = {}
    for name in names:
        if name == "SAVI":
            nir, red = bands["nir"], bands["red"]
            with np.errstate(divide="ignore", invalid="ignore"):
                v = (1 + SAVI_L) * (nir - red) / (nir + red + SAVI_L)
            out[name] = np.where(np.isfinite(v), v, np.nan).astype(np.float32, copy=False)
        else:
            a, b = NORMALISED_DIFFERENCES[name]
            out[name] = _nd(bands[a], bands[b])
    return out


def nan_quantiles(stack: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """Quantiles (0..1) over axis 0 ignoring NaN, linear interpolation (numpy's default).

    Vectorised: one sort of the stack instead of ``np.nanpercentile``'s per-pixel loop, which
    is ~100 times slower when any pixel holds NaN.

    Examples
    --------
    >>> [float(v[0]) for v in nan_quantiles(np.array([[4.0], [np.nan], [1.0], [2.0]]), [0.5, 1])]
    [2.0, 4.0]
    """
    srt = np.sort(np.asarray(stack, np.float64), axis=0)  # NaN sorts last
    n = np.sum(~np.isnan(srt), axis=0)
    out = []
    for q in qs:
        pos = (np.maximum(n, 1) - 1) * float(q)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        a = np.take_along_axis(srt, lo[None], 0)[0]
        b = np.take_along_axis(srt, hi[None], 0)[0]
        v = a + (b - a) * frac
        out.append(np.where(n > 0, v, np.nan).astype(np.float32))
    return out


def temporal_stats(stack: np.ndarray, stats: Sequence[str] = STATS) -> dict[str, np.ndarray]:
    """Per-pixel statistics over the first axis (dates), ignoring NaN (cloudy/missing dates).

    ``median``, ``mean``, ``std``, ``min``, ``max`` or ``pNN`` (percentile NN, linear
    interpolation).  A pixel NaN on every date is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> s = temporal_stats(np.array([[1.0], [np.nan], [3.0], [5.0]]))
    >>> [round(float(s[k][0]), 4) for k in ("median", "p10", "p90")]
    [3.0, 1.4, 4.6]
    """
    stack = np.asarray(stack, np.float32)
    quant = {s: (0.5 if s == "median" else float(s[1:]) / 100) for s in stats
             if s == "median" or re.fullmatch(r"p\d{1,3}", s)}
    if any(not 0 <= q <= 1 for q in quant.values()):
        raise ValueError(f"percentiles must be 0..100, got {list(stats)}")
    out = dict(zip(quant, nan_quantiles(stack, list(quant.values())))) if quant else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels give NaN, as wanted
        for s in stats:
            if s in quant:
                continue
            funcs = {"mean": np.nanmean, "std": np.nanstd, "min": np.nanmin, "max": np.nanmax}
            if s not in funcs:
                raise ValueError(f"unknown statistic {s!r}")
            out[s] = np.asarray(funcs[s](stack, axis=0), np.float32)
    return {s: out[s] for s in stats}


def to_db(linear: np.ndarray) -> np.ndarray:
    """Backscatter intensity (power) in dB: ``10 log10``; NaN for values <= 0.

    Examples
    --------
    >>> to_db(np.array([0.1, 1.0, 0.0])).tolist()
    [-10.0, 0.0, nan]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(np.where(linear > 0, linear, np.nan))
    return out.astype(np.float32, copy=False)


def sar_features(vv: np.ndarray, vh: np.ndarray, db: bool = True) -> dict[str, np.ndarray]:
    """``VV``, ``VH`` and the cross-pol ratio ``VH-VV`` (VH/VV as a difference), all in dB.

    Parameters
    ----------
    vv, vh : backscatter, in dB when ``db`` is True, else linear power (sigma0/gamma0).

    Examples
    --------
    >>> f = sar_features(np.array([0.1]), np.array([0.01]), db=False)
    >>> [round(float(f[k][0]), 3) for k in ("VV", "VH", "VH-VV")]
    [-10.0, -20.0, -10.0]
    """
    vv = np.asarray(vv, np.float32) if db else to_db(vv)
    vh = np.asarray(vh, np.float32) if db else to_db(vh)
    return {"VV": vv, "VH": vh, "VH-VV": (vh - vv).astype(np.float32)}


def terrain_features(dem: np.ndarray, res: tuple[float, float]) -> dict[str, np.ndarray]:
    """``elevation`` (m), ``slope`` (degrees, Horn) and aspect as ``aspect_sin``/``aspect_cos``
    (aspect clockwise from north of the direction the slope faces; flat: sin 0, cos 1).

    The circular aspect becomes two continuous features, so 359 and 1 degrees are close.  The
    1-pixel border of ``dem`` is NaN in slope/aspect (Horn needs a 3 x 3 window).

    Examples
    --------
    >>> dem = np.repeat(np.arange(5.0)[None, :] * -20.0, 4, axis=0)  # falls to the east
    >>> t = terrain_features(dem, (20.0, 20.0))
    >>> [round(float(t[k][1, 2]), 6) + 0.0 for k in ("slope", "aspect_sin", "aspect_cos")]
    [45.0, 1.0, 0.0]
    """
    dem = np.asarray(dem, np.float32)
    slp, asp = slope_aspect_from_gradient(*horn_gradient(dem, res))
    rad = np.radians(asp)
    return {"elevation": dem, "slope": slp.astype(np.float32),
            "aspect_sin": np.sin(rad).astype(np.float32),
            "aspect_cos": np.cos(rad).astype(np.float32)}


# --------------------------------------------------------------------------- planning

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


def _parse_name(text: str) -> tuple[str, str]:
    """(date, band name) from ``2015-07-11_B04`` / ``B04`` / ``red``."""
    m = _DESC.match(text.strip())
    return (m.group(1), m.group(2).strip()) if m else ("", text.strip())


def band_role(name: str, sensor: str | None) -> str | None:
    """Role of a band name (``red``...), via :data:`SENSOR_BANDS` for ``Bn`` names.

    Examples
    --------
    >>> band_role("B04", None), band_role("B4", "landsat7"), band_role("NIR", None)
    ('red', 'nir', 'nir')
    """
    low = name.strip().lower()
    if low in ROLES:
        return low
    if low in _ROLE_ALIASES:
        return _ROLE_ALIASES[low]
    m = _BNUM.match(name.strip())
    if not m:
        return None
    num = m.group(1).upper()
    if sensor is None:
        if not re.match(r"^(?:SR_)?B(0\d|8A|1[0-2])$", name.strip(), re.IGNORECASE):
            return None  # "B4" is ambiguous without a sensor
        sensor = "sentinel2"
    return SENSOR_BANDS[sensor].get(num)


def _file_date(path: str) -> str:
    """``YYYY-MM-DD`` from the file name (:func:`cryokit.dates.date_from_name`), else ``""``."""
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
    if sar is not None:
        sar_info = _sar_bands(require_file(sar), options)
        names += ["VV", "VH", "VH-VV"]
        units += ["dB"] * 3
    if dem is not None:
        require_file(dem)
        names += ["elevation", "slope", "aspect_sin", "aspect_cos"]
        units += ["m", "degree", "1", "1"]
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
    if dem is not None:
        tags["terrain"] = (f"{Path(dem).name}: slope Horn (1981) in degrees; aspect clockwise "
                           "from north of the downhill direction, as sin/cos (flat: 0, 1)")
    return FeaturePlan(grid, tuple(optical), dates, tuple(indices), tuple(names), tuple(units),
                       options, sar_info, None if dem is None else os.fspath(dem), tags)


# --------------------------------------------------------------------------- computing

_RESAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear,
               "cubic": Resampling.cubic, "average": Resampling.average}


def _read_window(path: str, indexes: list[int], grid: Grid, resampling: Resampling) -> np.ndarray:
    """Bands ``indexes`` of ``path`` on the (sub-)grid ``grid``, float32, NaN = nodata/outside."""
    with open_raster(path) as ds:
        src = Grid(ds.crs, ds.transform, ds.width, ds.height)
        inv = ~src.transform
        off = (inv.a * grid.transform.c + inv.b * grid.transform.f + inv.c,
               inv.d * grid.transform.c + inv.e * grid.transform.f + inv.f)
        aligned = (src.crs == grid.crs and np.allclose(np.array(src.transform)[[0, 1, 3, 4]],
                                                       np.array(grid.transform)[[0, 1, 3, 4]])
                   and np.allclose(off, np.round(off), atol=1e-6))
        if aligned or src.crs is None or grid.crs is None:
            col0, row0 = (int(round(v)) for v in off) if aligned else (0, 0)
            win = Window(col0, row0, grid.width, grid.height)
            data = ds.read(indexes, window=win, boundless=True, masked=True,
                           fill_value=ds.nodata)
            return np.where(np.ma.getmaskarray(data), np.float32(np.nan),
                            np.ma.getdata(data).astype(np.float32))
        dst = np.full((len(indexes), *grid.shape), np.nan, np.float32)
        reproject(rasterio.band(ds, indexes), dst, src_nodata=ds.nodata, dst_nodata=np.nan,
                  dst_transform=grid.transform, dst_crs=grid.crs, resampling=resampling)
        return dst


def _metre_res(grid: Grid) -> tuple[float, float]:
    xres, yres = grid.res
    if grid.crs is not None and grid.crs.is_geographic:
        # Degrees to metres at the window centre (spherical Earth is enough for slopes).
        lat = grid.transform.f + grid.transform.e * grid.height / 2
        return (xres * 111320.0 * np.cos(np.radians(lat)), yres * 110540.0)
    return (xres, yres)


def compute_window(window: tuple[int, int, int, int], plan: FeaturePlan) -> np.ndarray:
    """All features of ``plan`` for rows [r0, r1) and columns [c0, c1): (B, h, w) float32."""
    r0, r1, c0, c1 = window
    sub = plan.grid.window(r0, r1, c0, c1)
    opts = plan.options
    rs = _RESAMPLING[opts.resampling]
    values: dict[tuple[str, str], np.ndarray] = {}  # (date, band name or index) -> array
    by_file: dict[str, list[BandRef]] = {}
    for r in plan.optical:
        by_file.setdefault(r.path, []).append(r)
    for path, refs in by_file.items():
        arr = _read_window(path, [r.index for r in refs], sub, rs)
        for r, a in zip(refs, arr):
            values[(r.date, r.name)] = a * np.float32(opts.scale) + np.float32(opts.offset)
    for d in plan.dates:
        roles = {r.role: values[(r.date, r.name)] for r in plan.optical if r.date == d and r.role}
        if not plan.indices:
            continue
        # A date lacking a role gets NaN for the indices that need it.
        need = {x for i in plan.indices for x in NORMALISED_DIFFERENCES.get(i, ("nir", "red"))}
        for role in need - roles.keys():
            roles[role] = np.full(sub.shape, np.nan, np.float32)
        for name, a in spectral_indices(roles, plan.indices).items():
            values[(d, name)] = a
    out = []
    per_date = opts.per_date or len(plan.dates) < 2
    band_names = list(dict.fromkeys(r.name for r in plan.optical))
    if per_date:
        for d in plan.dates:
            out += [values[(d, b)] for b in band_names if (d, b) in values]
            out += [values[(d, i)] for i in plan.indices]
    if len(plan.dates) >= 2:
        nan = np.full(sub.shape, np.nan, np.float32)
        for b in [*band_names, *plan.indices]:
            st = temporal_stats(np.stack([values.get((d, b), nan) for d in plan.dates]),
                                opts.stats)
            out += [st[s] for s in opts.stats]
    if plan.sar is not None:
        path, ivv, ivh, db = plan.sar
        vv, vh = _read_window(path, [ivv, ivh], sub, rs)
        f = sar_features(vv, vh, db)
        out += [f["VV"], f["VH"], f["VH-VV"]]
    if plan.dem is not None:
        halo = plan.grid.window(r0 - 1, r1 + 1, c0 - 1, c1 + 1)
        dem = _read_window(plan.dem, [1], halo, rs)[0]
        t = terrain_features(dem, _metre_res(halo))
        out += [t[k][1:-1, 1:-1] for k in ("elevation", "slope", "aspect_sin", "aspect_cos")]
    return np.stack(out).astype(np.float32, copy=False)


def write_features(plan: FeaturePlan, out: str | os.PathLike, *, workers: int | None = None,
                   scheduler: str | None = None, progress: bool = False) -> str:
    """Compute the features of ``plan`` block by block and write them as a float32 COG.

    Memory holds a batch of blocks (one per worker, at least one) of all output bands, never
    the whole stack.  The file appears only when complete.

    Examples
    --------
    >>> write_features(plan_features(["s2.tif"]), "features.tif")  # doctest: +SKIP
    """
    from ..parallel import run_tasks, tiles

    grid, n = plan.grid, len(plan.names)
    block = max(16, int(plan.options.block))
    windows = [(r.start, r.stop, c.start, c.stop) for r, c in tiles(grid.shape, (block, block))]
    batch = max(1, workers or 1) * 2
    tags = {**plan.tags, "units_note": "band tag 'units' per band; NaN = nodata"}
    with atomic_file(out) as tmp:
        stage = tmp.with_name(tmp.stem + ".blocks.tif")
        try:
            profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=n,
                           dtype="float32", crs=grid.crs, transform=grid.transform,
                           nodata=np.nan, tiled=True, blockxsize=256, blockysize=256,
                           BIGTIFF="IF_SAFER", interleave="band")  # temporary: no compression
            if grid.width < 256 or grid.height < 256:
                profile.update(tiled=False, blockxsize=None, blockysize=None)
                profile = {k: v for k, v in profile.items() if v is not None}
            with rasterio.open(stage, "w", **profile) as ds:
                ds.update_tags(**{k: str(v) for k, v in tags.items()})
                for i, (name, unit) in enumerate(zip(plan.names, plan.units), 1):
                    ds.set_band_description(i, name)
                    ds.set_band_unit(i, unit)
                    ds.update_tags(i, units=unit)
                for k in range(0, len(windows), batch):
                    part = windows[k:k + batch]
                    results = run_tasks(compute_window, part, workers=workers,
                                        scheduler=scheduler, shared={"plan": plan})
                    for (r0, r1, c0, c1), arr in zip(part, results):
                        ds.write(arr, window=Window(c0, r0, c1 - c0, r1 - r0))
            rasterio.shutil.copy(stage, tmp, driver="COG", compress="deflate", predictor="3",
                                 BIGTIFF="IF_SAFER", overview_resampling="average")
        finally:
            if stage.exists():
                stage.unlink()
    return os.fspath(out)
