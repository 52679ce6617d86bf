"""Readers of unwrapped interferogram stacks: GeoTIFF files and HDF5 (igram + connectivity).

Both give an :class:`IfgStack`: dates, (earlier, later) index pairs, the grid, and a
``read(rows)`` method returning a block of rows as float32 arrays with NaN for no data, with
every interferogram as ``value(later) - value(earlier)`` (reversed pairs are negated).

GeoTIFF: one file per interferogram, all on one grid (else :class:`UserError`); dates from
the tags ``FIRST_DATE`` / ``SECOND_DATE`` (GAMMA/PyRate), else from a name holding
``YYYYMMDD-YYYYMMDD`` or ``YYYYMMDD_YYYYMMDD``; nodata from the file, and exact 0 as well
(the fill value of unwrapped phase, as MintPy reads it); coherence files beside them are
matched by their dates (names containing ``cc`` or ``coh``).

HDF5: datasets ``igram`` (K, H, W), ``Jmat`` (K, n) with +1/-1 at the two dates of each
interferogram (``igram = Jmat @ series``, the KFTS-InSAR layout), ``dates`` (ordinal days,
YYYYMMDD integers or strings); names are options; optional ``lat``/``lon`` datasets or
arrays give coordinates.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from ..core.errors import UserError, require_file
from ..core.raster import Grid, open_raster, read_band, read_grid
from .network import pairs_from_dates

_PAIR = re.compile(r"(?<!\d)((?:19|20)\d{6})[-_]((?:19|20)\d{6})(?!\d)")


def _ymd(s: str) -> dt.date:
    return dt.datetime.strptime(s, "%Y%m%d").date()


def dates_from_name(path: str | os.PathLike) -> tuple[dt.date, dt.date] | None:
    """(date1, date2) from a file name like ``*_20180106-20180130_*``, or None.

    >>> dates_from_name("cropA_20180106-20180130_VV_8rlks_eqa_unw.tif")
    (datetime.date(2018, 1, 6), datetime.date(2018, 1, 30))
    """
    m = _PAIR.search(os.path.basename(os.fspath(path)))
    if not m:
        return None
    try:
        return _ymd(m.group(1)), _ymd(m.group(2))
    except ValueError:
        return None


def pair_dates_of(path: str, tags: dict) -> tuple[dt.date, dt.date]:
    """Dates of an interferogram file: tags FIRST_DATE/SECOND_DATE, else its name."""
    from ..core.dates import parse_date

    for a, b in (("FIRST_DATE", "SECOND_DATE"), ("DATE1", "DATE2"), ("date1", "date2")):
        if a in tags and b in tags:
            return parse_date(tags[a], path), parse_date(tags[b], path)
    d = dates_from_name(path)
    if d is None:
        raise UserError("no interferogram dates: neither FIRST_DATE/SECOND_DATE tags nor "
                        "YYYYMMDD-YYYYMMDD in the file name", path)
    return d


@dataclass
class IfgStack:
    """A stack of interferograms (metadata; pixels read by :meth:`read`)."""

    dates: list[dt.date]
    pairs: np.ndarray               # (K, 2) earlier, later
    sign: np.ndarray                # (K,) multiplies the stored value to get later - earlier
    grid: Grid
    units: str                      # "rad" or "mm"
    sources: list[str]
    coherence_sources: list[str] | None = None
    wavelength_m: float | None = None
    kind: str = "geotiff"
    lonlat: tuple[np.ndarray, np.ndarray] | None = None   # HDF5 only: (lon, lat) per pixel
    info: dict = field(default_factory=dict)
    _h5: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    @property
    def n_ifgs(self) -> int:
        return len(self.pairs)

    def read(self, rows: tuple[int, int] | None = None,
             coherence: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows [r0, r1) of every interferogram (K, r1 - r0, W) float32, NaN = no data, and of
        the coherence when asked and available."""
        r0, r1 = rows or (0, self.grid.height)
        if self.kind == "hdf5":
            return self._read_h5(r0, r1), None
        win = Window(0, r0, self.grid.width, r1 - r0)
        ifg = np.empty((self.n_ifgs, r1 - r0, self.grid.width), np.float32)
        for k, p in enumerate(self.sources):
            ifg[k] = _read_nodata(p, win) * np.float32(self.sign[k])
        coh = None
        if coherence and self.coherence_sources:
            coh = np.empty_like(ifg)
            for k, p in enumerate(self.coherence_sources):
                coh[k] = _read_nodata(p, win)
        return ifg, coh

    def _read_h5(self, r0: int, r1: int) -> np.ndarray:
        import h5py

        h = self._h5
        with h5py.File(self.sources[0], "r") as f:
            data = f[h["igram"]]
            if h["flip"]:
                H = data.shape[1]
                a = data[:, H - r1:H - r0, :][:, ::-1, :]
            else:
                a = data[:, r0:r1, :]
        a = np.asarray(a, np.float32) * self.sign[:, None, None].astype(np.float32)
        return a


def _read_nodata(path: str, window: Window) -> np.ndarray:
    """Band 1 in ``window`` as float32, NaN at nodata, at exact 0 and at +-inf."""
    out = read_band(path, window=window)
    out[(out == 0) | ~np.isfinite(out)] = np.nan
    return out


def _find_coherence(path: str, d: tuple[dt.date, dt.date], exclude: set[str]) -> str | None:
    folder = Path(path).parent
    key = f"{d[0]:%Y%m%d}"
    for cand in sorted(folder.glob(f"*{key}*")):
        name = cand.name.lower()
        if str(cand) in exclude or not name.endswith((".tif", ".tiff")):
            continue
        if ("cc" in re.split(r"[_.\-]", name) or "coh" in name) and dates_from_name(cand) == d:
            return str(cand)
    return None


def read_geotiff_stack(paths: Sequence[str | os.PathLike], *,
                       coherence: str | Sequence[str] | None = "auto") -> IfgStack:
    """Stack metadata of GeoTIFF interferograms (radians); see the module docstring.

    Parameters
    ----------
    coherence : "auto", list of paths or None
        "auto": coherence files beside each interferogram, matched by dates (used only when
        every interferogram has one); a list: one per interferogram, same order; None: none.
    """
    paths = [require_file(p) for p in paths]
    if not paths:
        raise UserError("no interferogram files given")
    grid, date_pairs, wl = None, [], set()
    for p in paths:
        with open_raster(p) as ds:
            tags = ds.tags()
            g = Grid(ds.crs, ds.transform, ds.width, ds.height)
        if grid is None:
            grid = g
        elif (why := g.mismatch(grid)) is not None:
            raise UserError(f"is not on the grid of {paths[0]} ({why}); resample the "
                            "interferograms onto one grid first", p)
        date_pairs.append(pair_dates_of(p, tags))
        if "WAVELENGTH_METRES" in tags:
            wl.add(round(float(tags["WAVELENGTH_METRES"]), 9))
    seen = {}
    for p, d in zip(paths, date_pairs):
        key = tuple(sorted(d))
        if key in seen:
            raise UserError(f"has the same dates {d[0]}..{d[1]} as {seen[key]}", p)
        if d[0] == d[1]:
            raise UserError(f"interferogram with the same date twice ({d[0]})", p)
        seen[key] = p
    dates, pairs, sign = pairs_from_dates(date_pairs)
    coh = None
    if coherence == "auto":
        found = [_find_coherence(p, d, set(paths)) for p, d in zip(paths, date_pairs)]
        coh = found if all(found) else None
    elif coherence is not None:
        coh = [require_file(c) for c in coherence]
        if len(coh) != len(paths):
            raise UserError(f"{len(coh)} coherence files for {len(paths)} interferograms")
    # Found or given, a coherence file off the interferograms' grid is a user error.
    for c in coh or ():
        if (why := read_grid(c).mismatch(grid)) is not None:
            raise UserError(f"coherence is not on the interferograms' grid ({why})", c)
    return IfgStack(dates=dates, pairs=pairs, sign=sign, grid=grid, units="rad",
                    sources=paths, coherence_sources=coh,
                    wavelength_m=wl.pop() if len(wl) == 1 else None, kind="geotiff")


def _h5_dates(raw: np.ndarray, path: str) -> list[dt.date]:
    out = []
    for v in np.asarray(raw).ravel():
        if isinstance(v, (bytes, np.bytes_)):
            v = v.decode()
        try:
            if isinstance(v, str):
                out.append(_ymd(v.strip()[:8]))
            elif 19000101 <= int(v) <= 21001231:
                out.append(_ymd(str(int(v))))
            else:
                out.append(dt.date.fromordinal(int(v)))
        except (ValueError, OverflowError):
            raise UserError(f"cannot read date {v!r} (ordinal days, YYYYMMDD or string)",
                            path) from None
    return out


def _grid_from_lonlat(lon: np.ndarray, lat: np.ndarray) -> Grid:
    """EPSG:4326 affine grid fitted to pixel-centre coordinates (least squares)."""
    h, w = lon.shape
    rr, cc = np.mgrid[0:h, 0:w]
    g = np.column_stack([cc.ravel() + 0.5, rr.ravel() + 0.5, np.ones(h * w)])
    ok = np.isfinite(lon.ravel()) & np.isfinite(lat.ravel())
    (a, b, c), *_ = np.linalg.lstsq(g[ok], lon.ravel()[ok], rcond=None)
    (d, e, f), *_ = np.linalg.lstsq(g[ok], lat.ravel()[ok], rcond=None)
    return Grid(CRS.from_epsg(4326), Affine(a, b, c, d, e, f), w, h)


def read_hdf5_stack(path: str | os.PathLike, *, units: str = "mm", igram: str = "igram",
                    connectivity: str = "Jmat", dates: str = "dates",
                    lon: str | np.ndarray | None = "lon",
                    lat: str | np.ndarray | None = "lat",
                    wavelength_m: float | None = None) -> IfgStack:
    """Stack metadata of an HDF5 file (see the module docstring).

    Parameters
    ----------
    units : {"mm", "rad"}
        Unit of ``igram`` (the file does not say).
    lon, lat : dataset names or (H, W) arrays, optional
        Pixel-centre coordinates; without them the grid is pixel indices with no CRS. Rows
        are flipped to north-up when latitude grows with the row.
    """
    import h5py

    path = require_file(path)
    if units not in ("mm", "rad"):
        raise UserError(f"units must be mm or rad, got {units!r}", path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise UserError("not an HDF5 file h5py can read", path) from None
    with f:
        for name in (igram, connectivity, dates):
            if name not in f:
                raise UserError(f"has no dataset {name!r} (datasets: {', '.join(f)})", path)
        shape = f[igram].shape
        jmat = np.asarray(f[connectivity][:], float)
        dl = _h5_dates(f[dates][:], path)
        coords = []
        for c in (lon, lat):
            if isinstance(c, str):
                coords.append(np.asarray(f[c][:], float) if c in f else None)
            else:
                coords.append(None if c is None else np.asarray(c, float))
    if len(shape) != 3:
        raise UserError(f"dataset {igram!r} must be (n_ifg, rows, cols), got {shape}", path)
    if jmat.shape != (shape[0], len(dl)):
        raise UserError(f"{connectivity!r} is {jmat.shape}, expected ({shape[0]}, {len(dl)})",
                        path)
    pos, neg = jmat == 1, jmat == -1
    if not (np.all(pos.sum(1) == 1) and np.all(neg.sum(1) == 1)
            and np.all(pos | neg | (jmat == 0))):
        raise UserError(f"each row of {connectivity!r} must hold one +1 and one -1", path)
    order = np.argsort(dl, kind="stable")
    if np.any(np.diff(np.array([d.toordinal() for d in dl])[order]) == 0):
        raise UserError("repeated dates", path)
    rank = np.empty(len(dl), int)
    rank[order] = np.arange(len(dl))
    ip, ineg = rank[np.argmax(pos, 1)], rank[np.argmax(neg, 1)]
    pairs = np.column_stack([np.minimum(ip, ineg), np.maximum(ip, ineg)])
    # value(later) - value(earlier): igram = x[+1] - x[-1], so negate where +1 is earlier
    sign = np.where(ip > ineg, 1.0, -1.0)
    lo_, la_ = coords
    flip = False
    if lo_ is not None and la_ is not None:
        if lo_.shape != shape[1:] or la_.shape != shape[1:]:
            raise UserError(f"lon/lat shape {lo_.shape} differs from {shape[1:]}", path)
        flip = bool(np.nanmean(np.diff(la_, axis=0)) > 0)
        if flip:
            lo_, la_ = lo_[::-1], la_[::-1]
        grid = _grid_from_lonlat(lo_, la_)
        lonlat = (lo_, la_)
    else:
        grid = Grid(None, Affine.identity(), shape[2], shape[1])
        lonlat = None
    return IfgStack(dates=[dl[k] for k in order], pairs=pairs, sign=sign, grid=grid,
                    units=units, sources=[path], wavelength_m=wavelength_m, kind="hdf5",
                    lonlat=lonlat, info={"rows_flipped": flip},
                    _h5={"igram": igram, "flip": flip})


def read_flat(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """A raw float32 grid (``.flt``) of ``shape``, or any GDAL raster of that shape."""
    p = require_file(path)
    if str(p).lower().endswith(".flt") and os.path.getsize(p) == 4 * shape[0] * shape[1]:
        return np.fromfile(p, np.float32).reshape(shape).astype(float)
    a = read_band(p)
    if a.shape != tuple(shape):
        raise UserError(f"shape {a.shape} differs from the stack's {tuple(shape)}", p)
    return a.astype(float)


def read_stack(paths: Sequence[str | os.PathLike], **kwargs) -> IfgStack:
    """HDF5 (one ``.h5``/``.hdf5``/``.he5`` file) or GeoTIFF stack, by file suffix."""
    paths = [os.fspath(p) for p in paths]
    if len(paths) == 1 and paths[0].lower().endswith((".h5", ".hdf5", ".he5")):
        return read_hdf5_stack(paths[0], **kwargs)
    return read_geotiff_stack(paths, **kwargs)
