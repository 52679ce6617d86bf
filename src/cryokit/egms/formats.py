"""EGMS point files: read and write the zip (CSV + XML header) and CSV formats, export to
GeoParquet / GeoPackage.

An EGMS burst (Basic L2a, Calibrated L2b) or Ortho tile (L3) is a CSV with one row per
measurement point: attribute columns (``pid``, coordinates, statistics...) followed by one
column per acquisition date named ``YYYYMMDD`` holding the line-of-sight (LOS) displacement in
mm, positive towards the satellite (``los_*`` is the ground-to-satellite unit vector).  Units:
mm, mm/yr, mm/yr^2, degrees; ``easting``/``northing`` in EPSG:3035.  Release 2020-2024 names
three columns ``height_ortho``, ``height_ellipse``, ``rmse_ts`` where older releases say
``height``, ``height_wgs84``, ``rmse``; :meth:`EgmsPoints.column` accepts either.

Reading goes through the pyarrow CSV engine (multi-threaded, no Python object per value);
:func:`iter_egms` streams large bursts in chunks of points.  Writing reproduces the text
format: same column order, numbers with the number of decimals each column has in the
source (``-0.0`` kept), so ``read(write(read(x)))`` equals ``read(x)``.  Every problem with
the input is a :class:`~cryokit.core.errors.UserError` naming the file, and the column and line
where there is one.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ..core.atomic import atomic_file
from ..core.errors import UserError, require_file
from .gnss import GnssSeries

UNITS = ("LOS displacement in mm, positive = towards the satellite (los_east/north/up is the "
         "ground-to-satellite unit vector); velocities mm/yr, acceleration mm/yr^2, heights m, "
         "angles degrees, easting/northing EPSG:3035; date columns YYYYMMDD")

# Canonical name -> (2020-2024 name, legacy name)
_NAMINGS = {"height": ("height_ortho", "height"), "height_ellipse": ("height_ellipse", "height_wgs84"),
            "rmse": ("rmse_ts", "rmse")}
_INT_COLUMNS = {"mp_type", "line", "pixel", "cluster_label"}
_FLOAT_COLUMNS = {
    "latitude", "longitude", "easting", "northing", "height_ortho", "height_ellipse", "height",
    "height_wgs84", "rmse_ts", "rmse", "temporal_coherence", "amplitude_dispersion",
    "incidence_angle", "track_angle", "los_east", "los_north", "los_up", "mean_velocity",
    "mean_velocity_std", "acceleration", "acceleration_std", "seasonality", "seasonality_std",
    "gnss_velocity", "gnss_velocity_n", "gnss_velocity_e", "gnss_velocity_u"}
_DATE = re.compile(r"^\d{8}$")
_LEVEL = re.compile(r"EGMS_(L2a|L2b|L3)_", re.IGNORECASE)
# What a damaged zip or CSV raises while read (zipfile says NotImplementedError for a corrupt
# compression method or flag bit)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)


@dataclass
class EgmsPoints:
    """EGMS measurement points: attributes, dates and LOS displacement series.

    Attributes
    ----------
    attrs : pandas.DataFrame
        One row per point, the non-date columns in file order; ``pid`` holds str.
    dates : numpy.ndarray
        Acquisition dates, ``datetime64[D]``, shape (n_dates,), strictly increasing.
    disp : numpy.ndarray
        float64 (n_points, n_dates) LOS displacement in mm, + = towards the satellite;
        NaN where a point has no value (SBAS products).
    header : dict
        The XML header as a nested dict ``{root_tag: {...}}``; repeated tags become lists;
        ``{}`` when there is none.
    name : str
        File stem, e.g. ``"EGMS_L2b_117_0227_IW2_VV_2020_2024_1"``.
    level : str
        ``"L2a"``, ``"L2b"`` or ``"L3"``.
    naming : str
        ``"2020-2024"`` (height_ortho/height_ellipse/rmse_ts) or ``"legacy"``
        (height/height_wgs84/rmse).

    Examples
    --------
    >>> p = EgmsPoints(attrs=pd.DataFrame({"pid": ["a", "b"], "rmse": [1.0, 2.0]}),
    ...                dates=np.array(["2020-01-01", "2020-01-13"], dtype="datetime64[D]"),
    ...                disp=np.zeros((2, 2)), header={}, name="x", level="L2a", naming="legacy")
    >>> p.column("rmse").tolist(), p.years().tolist()
    ([1.0, 2.0], [0.0, 0.03287671232876712])
    """

    attrs: pd.DataFrame
    dates: np.ndarray
    disp: np.ndarray
    header: dict = field(default_factory=dict)
    name: str = ""
    level: str = "L2b"
    naming: str = "2020-2024"

    def __len__(self) -> int:
        return len(self.attrs)

    def column(self, canonical: str) -> pd.Series:
        """Attribute column by canonical name; ``'height'``, ``'height_ellipse'`` and ``'rmse'``
        work with both namings, other names are looked up as they are."""
        for name in _NAMINGS.get(canonical, (canonical,)):
            if name in self.attrs.columns:
                return self.attrs[name]
        raise KeyError(f"{self.name}: no column {canonical!r} (columns: {', '.join(self.attrs.columns)})")

    def column_name(self, canonical: str) -> str:
        """The name this file uses for a canonical column (e.g. ``'rmse'`` -> ``'rmse_ts'``)."""
        names = _NAMINGS.get(canonical, (canonical,))
        for name in names:
            if name in self.attrs.columns:
                return name
        return names[0] if self.naming == "2020-2024" else names[-1]

    def years(self) -> np.ndarray:
        """Time of each date in years from the first date (days / 365, as EGMS does)."""
        return (self.dates - self.dates[0]).astype("timedelta64[D]").astype(np.float64) / 365.0

    def date_columns(self) -> list[str]:
        """The date column names, ``YYYYMMDD``."""
        return [str(d).replace("-", "") for d in self.dates.astype("datetime64[D]")]

    def subset(self, rows) -> "EgmsPoints":
        """The points selected by a boolean mask or index array, same dates and header."""
        rows = np.asarray(rows)
        return EgmsPoints(self.attrs.iloc[rows].reset_index(drop=True), self.dates,
                          self.disp[rows], self.header, self.name, self.level, self.naming)


# ----------------------------------------------------------------------------- XML header

def _xml_to_dict(elem: ET.Element):
    children = list(elem)
    if not children and not elem.attrib:
        return (elem.text or "").strip()
    out: dict = {f"@{k}": v for k, v in elem.attrib.items()}
    for child in children:
        value = _xml_to_dict(child)
        if child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def _dict_to_xml(tag: str, value, parent: ET.Element | None = None) -> ET.Element:
    elem = ET.Element(tag) if parent is None else ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for k, v in value.items():
            if k.startswith("@"):
                elem.set(k[1:], str(v))
            elif isinstance(v, list):
                for item in v:
                    _dict_to_xml(k, item, elem)
            else:
                _dict_to_xml(k, v, elem)
    elif value is not None:
        elem.text = str(value)
    return elem


def parse_header(text: bytes | str, path: str | os.PathLike | None = None) -> dict:
    """The XML header as a nested dict ``{root_tag: {...}}``.

    Examples
    --------
    >>> parse_header("<BURST><track>117</track><a><i>1</i><i>2</i></a></BURST>")
    {'BURST': {'track': '117', 'a': {'i': ['1', '2']}}}
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise UserError(f"XML header is not valid XML ({e})", path) from None
    return {root.tag: _xml_to_dict(root)}


def header_xml(header: dict) -> bytes:
    """The XML text of a header dict, in the layout EGMS uses (2-space indent)."""
    (tag, value), = header.items()
    root = _dict_to_xml(tag, value)
    ET.indent(root, space="  ")
    buf = io.BytesIO()
    ET.ElementTree(root).write(buf, encoding="UTF-8", xml_declaration=True)
    return buf.getvalue()


# ----------------------------------------------------------------------------- sources

# An EGMS CSV deflates 3-6x; far beyond that, or beyond what memory holds, is a zip bomb.
_MAX_RATIO = 100
_MAX_INFLATED = 1 << 28


def _check_members(zf: zipfile.ZipFile, path: str) -> None:
    """Refuse members whose names leave the archive or that inflate far beyond their size."""
    for info in zf.infolist():
        parts = Path(info.filename.replace("\\", "/")).parts
        if info.filename.startswith(("/", "\\")) or ".." in parts or ":" in info.filename:
            raise UserError(f"zip member {info.filename!r} has a path outside the archive", path)
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _MAX_INFLATED and ratio > _MAX_RATIO:
            raise UserError(f"zip member {info.filename} inflates {ratio:.0f}x to "
                            f"{info.file_size / 1e9:.1f} GB: refused as a zip bomb", path)


class _Source:
    """A CSV inside a zip or on disk that can be opened more than once (errors re-read it)."""

    def __init__(self, path: str | os.PathLike):
        self.path = require_file(path)
        self.name = Path(self.path).stem
        self.header: dict = {}
        self.member: str | None = None
        if self.path.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(self.path) as zf:
                    names = zf.namelist()
                    _check_members(zf, self.path)
                    csvs = [n for n in names if n.lower().endswith(".csv")]
                    xmls = [n for n in names if n.lower().endswith(".xml")]
                    if not csvs:
                        raise UserError(f"zip holds no .csv file (members: {', '.join(names) or 'none'})",
                                        self.path)
                    if len(csvs) > 1:
                        raise UserError(f"zip holds {len(csvs)} .csv files, expected one", self.path)
                    self.member = csvs[0]
                    self.name = Path(self.member).stem
                    if xmls:
                        self.header = parse_header(zf.read(xmls[0]), f"{self.path}:{xmls[0]}")
            except _READ_ERRORS as e:
                raise UserError(f"not a readable zip file ({e})", self.path) from None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.member}" if self.member else self.path

    def open(self) -> IO[bytes]:
        if self.member is None:
            return open(self.path, "rb")
        zf = zipfile.ZipFile(self.path)
        try:
            f = zf.open(self.member)
        except BaseException:
            zf.close()
            raise
        f._cryokit_zip = zf  # keep the archive open as long as the member
        return f


def _read_header_line(src: _Source) -> list[str]:
    try:
        with src.open() as f:
            raw = f.readline(1 << 24)
    except _READ_ERRORS as e:
        raise UserError(f"cannot read ({e})", src.where) from None
    try:
        line = raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise UserError("line 1: header is not UTF-8 text", src.where) from None
    if not line.strip():
        raise UserError("empty file: no header line", src.where)
    names = line.split(",")
    if "pid" not in names:
        for delim, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if delim in line and "pid" in line.split(delim):
                raise UserError(f"line 1: the file uses {label} as delimiter; EGMS CSV files are "
                                "comma-separated", src.where)
    return [n.strip().strip('"') for n in names]


def _classify(names: list[str], where: str) -> tuple[list[str], list[str], np.ndarray]:
    """Split header names into attribute and date columns; every check on the header."""
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise UserError(f"line 1: column {n!r} appears twice (columns {seen[n] + 1} and {i + 1})", where)
        seen[n] = i
    if "pid" not in seen:
        raise UserError("line 1: missing required column 'pid'", where)
    if not ({"latitude", "longitude"} <= seen.keys() or {"easting", "northing"} <= seen.keys()):
        raise UserError("line 1: missing required coordinate columns 'latitude'/'longitude' "
                        "(or 'easting'/'northing')", where)
    first = next((i for i, n in enumerate(names) if _DATE.match(n)), None)
    attrs = names if first is None else names[:first]
    for i, n in enumerate(attrs):
        if n[:1].isdigit():
            raise UserError(f"line 1, column {i + 1}: cannot read date column header {n!r} "
                            "(expected YYYYMMDD)", where)
    date_names = [] if first is None else names[first:]
    dates = []
    for i, n in enumerate(date_names, start=len(attrs)):
        try:
            if not _DATE.match(n):
                raise ValueError
            dates.append(dt.datetime.strptime(n, "%Y%m%d").date())
        except ValueError:
            raise UserError(f"line 1, column {i + 1}: cannot read date column header {n!r} "
                            "(expected YYYYMMDD; date columns must come last)", where) from None
    if len(dates) < 2:
        raise UserError(f"line 1: {len(dates)} date column(s) (YYYYMMDD); a displacement series "
                        "needs at least 2", where)
    d = np.array(dates, dtype="datetime64[D]")
    bad = np.nonzero(np.diff(d) <= np.timedelta64(0, "D"))[0]
    if bad.size:
        i = int(bad[0]) + 1
        raise UserError(f"line 1, column {len(attrs) + i + 1}: date {date_names[i]} is not after "
                        f"{date_names[i - 1]} (dates must increase)", where)
    return attrs, date_names, d


def _column_types(attrs: list[str], date_names: list[str], infer: bool) -> dict:
    types = {"pid": pa.string(), **{n: pa.float64() for n in date_names}}
    if not infer:  # streaming reads cannot infer across chunks: fix the known columns
        types.update({n: pa.int64() for n in attrs if n in _INT_COLUMNS})
        types.update({n: pa.float64() for n in attrs if n in _FLOAT_COLUMNS})
    return types


def _arrow_error(src: _Source, names: list[str], types: dict, err: Exception) -> UserError:
    """Turn a pyarrow parse/convert error into a UserError with column and line."""
    msg = str(err)
    m = re.search(r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'", msg)
    if m:
        col = names[int(m.group(1))]
        line = _find_bad_value(src, col, types.get(col, pa.float64()), m.group(3))
        where = f"line {line}, " if line else ""
        return UserError(f"{where}column {col!r}: {m.group(3)!r} is not a number", src.where)
    m = re.search(r"Expected (\d+) columns, got (\d+)", msg)
    if m:
        line = _find_bad_row(src, len(names))
        where = f"line {line}: " if line else ""
        return UserError(f"{where}expected {m.group(1)} values (one per header column), got "
                         f"{m.group(2)}", src.where)
    return UserError(f"cannot read CSV ({msg.splitlines()[0] if msg else type(err).__name__})", src.where)


def _find_bad_row(src: _Source, n_columns: int) -> int | None:
    """Line number of the first row whose field count differs from the header (error path)."""
    try:
        with src.open() as f:
            for i, line in enumerate(f, start=1):
                line = line.rstrip(b"\r\n")
                if i > 1 and line and line.count(b",") + 1 != n_columns:
                    return i
    except Exception:  # noqa: BLE001 - locating the line is best effort
        return None
    return None


def _find_bad_value(src: _Source, col: str, typ: pa.DataType, value: str) -> int | None:
    try:
        with src.open() as f:
            tab = pcsv.read_csv(f, convert_options=pcsv.ConvertOptions(
                include_columns=[col], column_types={col: pa.string()}))
    except Exception:  # noqa: BLE001 - locating the line is best effort
        return None
    s = tab.column(0).to_pandas()
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna() & (s.str.strip() != "")
    if pa.types.is_integer(typ):
        bad |= num.notna() & (num != np.floor(num))
    idx = np.flatnonzero(bad.to_numpy())
    return int(idx[0]) + 2 if idx.size else None


def _level(name: str, header: dict, attrs: list[str]) -> str:
    m = _LEVEL.search(name)
    if m:
        return {"L2A": "L2a", "L2B": "L2b", "L3": "L3"}[m.group(1).upper()]
    for root in header.values():
        if isinstance(root, dict) and isinstance(root.get("product_level"), str):
            lvl = root["product_level"].strip()
            if lvl in ("L2a", "L2b", "L3"):
                return lvl
    if "cluster_label" in attrs:
        return "L2a"
    if "gnss_velocity_n" in attrs or ("easting" in attrs and "latitude" not in attrs):
        return "L3"
    return "L2b" if "gnss_velocity" in attrs else "L2a"


def _naming(attrs: list[str]) -> str:
    legacy = {"height", "height_wgs84", "rmse"} & set(attrs)
    new = {"height_ortho", "height_ellipse", "rmse_ts"} & set(attrs)
    return "legacy" if legacy and not new else "2020-2024"


def _to_points(tab: pa.Table, attrs: list[str], date_names: list[str], dates: np.ndarray,
               src: _Source, first_line: int) -> EgmsPoints:
    bad_attr = [n for n in attrs if n != "pid" and (n in _INT_COLUMNS or n in _FLOAT_COLUMNS)
                and not (pa.types.is_integer(tab.schema.field(n).type)
                         or pa.types.is_floating(tab.schema.field(n).type)
                         or pa.types.is_null(tab.schema.field(n).type))]
    if bad_attr:
        col = bad_attr[0]
        s = tab.column(col).to_pandas()
        idx = np.flatnonzero((pd.to_numeric(s, errors="coerce").isna() & s.notna()).to_numpy())
        line = f"line {first_line + int(idx[0])}, " if idx.size else ""
        val = f"{s.iloc[int(idx[0])]!r} " if idx.size else ""
        raise UserError(f"{line}column {col!r}: {val}is not a number", src.where)
    casts = {}
    for n in attrs:
        typ = tab.schema.field(n).type
        if n in _FLOAT_COLUMNS and not pa.types.is_floating(typ):
            casts[n] = pa.float64()
        elif n in _INT_COLUMNS and pa.types.is_null(typ):
            casts[n] = pa.float64()
    frame = tab.select(attrs)
    for n, typ in casts.items():
        i = attrs.index(n)
        frame = frame.set_column(i, n, pc.cast(frame.column(i), typ))
    df = frame.to_pandas()
    df["pid"] = df["pid"].astype(object)
    pid = tab.column("pid")
    if pid.null_count:
        i = int(np.flatnonzero(pid.is_null().to_numpy(zero_copy_only=False))[0])
        raise UserError(f"line {first_line + i}, column 'pid': empty pid", src.where)
    dup = df["pid"].duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = df["pid"].iloc[rows[0]]
        lines = [first_line + int(r) for r in rows if df["pid"].iloc[r] == first][:2]
        raise UserError(f"column 'pid': duplicate pid {first!r} on lines {lines[0]} and {lines[1]}",
                        src.where)
    disp = np.empty((tab.num_rows, len(date_names)), dtype=np.float64)
    for j, n in enumerate(date_names):
        disp[:, j] = tab.column(n).to_numpy()
    _refuse_infinite(df, disp, date_names, src, first_line)
    return EgmsPoints(attrs=df, dates=dates, disp=disp, header=src.header, name=src.name,
                      level=_level(src.name, src.header, attrs), naming=_naming(attrs))


def _refuse_infinite(df: pd.DataFrame, disp: np.ndarray, date_names: list[str], src: _Source,
                     first_line: int) -> None:
    """inf is no measurement: name its line and column (NaN, an empty cell, is a gap)."""
    bad = np.isinf(disp)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise UserError(f"line {first_line + int(r)}, column {date_names[c]!r}: infinite "
                        "displacement", src.where)
    for col in df.columns:
        if col != "pid" and pd.api.types.is_float_dtype(df[col]):
            inf = np.isinf(df[col].to_numpy())
            if inf.any():
                raise UserError(f"line {first_line + int(np.flatnonzero(inf)[0])}, column "
                                f"{col!r}: infinite value", src.where)


def _read_table(src: _Source, names: list[str], types: dict) -> pa.Table:
    try:
        with src.open() as f:
            return pcsv.read_csv(f, read_options=pcsv.ReadOptions(block_size=16 << 20),
                                 convert_options=pcsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as e:
        raise _arrow_error(src, names, types, e) from None
    except (*_READ_ERRORS, pa.ArrowException) as e:
        raise UserError(f"cannot read ({e})", src.where) from None


def read_egms(path: str | os.PathLike, *, chunksize: int | None = None) -> EgmsPoints:
    """Read an EGMS burst or tile: a ``.zip`` (CSV + XML header) or a ``.csv``.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    chunksize : int, optional
        Read this many points at a time (lower peak memory for millions of points).

    Returns
    -------
    EgmsPoints

    Raises
    ------
    UserError
        On any malformed input, naming the file, the column and the line.

    Examples
    --------
    >>> pts = read_egms("EGMS_L2b_117_0227_IW2_VV_2020_2024_1.zip")   # doctest: +SKIP
    >>> pts.disp.shape, pts.level, pts.naming                         # doctest: +SKIP
    ((11759, 207), 'L2b', '2020-2024')
    """
    if chunksize:
        parts = list(iter_egms(path, chunk_points=chunksize))
        first = parts[0]
        attrs = pd.concat([p.attrs for p in parts], ignore_index=True)
        dup = attrs["pid"].duplicated(keep=False).to_numpy()
        if dup.any():
            rows = np.flatnonzero(dup)[:2]
            raise UserError(f"column 'pid': duplicate pid {attrs['pid'].iloc[rows[0]]!r} on lines "
                            f"{rows[0] + 2} and {rows[1] + 2}", os.fspath(path))
        return EgmsPoints(attrs, first.dates, np.concatenate([p.disp for p in parts]),
                          first.header, first.name, first.level, first.naming)
    src = _Source(path)
    names = _read_header_line(src)
    attrs, date_names, dates = _classify(names, src.where)
    types = _column_types(attrs, date_names, infer=True)
    tab = _read_table(src, names, types)
    if tab.num_rows == 0:
        raise UserError("holds a header line but no point", src.where)
    return _to_points(tab, attrs, date_names, dates, src, first_line=2)


def iter_egms(path: str | os.PathLike, chunk_points: int = 200_000) -> Iterator[EgmsPoints]:
    """Stream an EGMS file as :class:`EgmsPoints` chunks of at most ``chunk_points`` points.

    Known columns get fixed types (integers for ``mp_type``, ``line``, ``pixel``,
    ``cluster_label``; float64 for the others and the dates), so every chunk has the same
    dtypes.  ``pid`` uniqueness is checked within each chunk (:func:`read_egms` checks all).
    """
    if chunk_points < 1:
        raise UserError(f"chunk size must be >= 1 point, got {chunk_points}")
    src = _Source(path)
    names = _read_header_line(src)
    attrs, date_names, dates = _classify(names, src.where)
    types = _column_types(attrs, date_names, infer=False)
    line = 2
    pending: list[pa.RecordBatch] = []
    n_pending = 0
    emitted = False
    try:
        with src.open() as f:
            reader = pcsv.open_csv(f, read_options=pcsv.ReadOptions(block_size=16 << 20),
                                   convert_options=pcsv.ConvertOptions(column_types=types))
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    batch = None
                if batch is not None:
                    pending.append(batch)
                    n_pending += batch.num_rows
                while n_pending >= chunk_points or (batch is None and n_pending):
                    tab = pa.Table.from_batches(pending, schema=reader.schema)
                    head, rest = tab.slice(0, chunk_points), tab.slice(chunk_points)
                    pending = rest.to_batches() if rest.num_rows else []
                    n_pending = rest.num_rows
                    yield _to_points(head, attrs, date_names, dates, src, first_line=line)
                    emitted = True
                    line += head.num_rows
                if batch is None:
                    break
    except pa.ArrowInvalid as e:
        raise _arrow_error(src, names, types, e) from None
    except (*_READ_ERRORS, pa.ArrowException) as e:
        raise UserError(f"cannot read ({e})", src.where) from None
    if not emitted:  # a header without points is a valid (empty) burst
        empty = pa.table({n: pa.array([], type=types.get(n, pa.float64())) for n in names})
        yield _to_points(empty, attrs, date_names, dates, src, first_line=2)


# ----------------------------------------------------------------------------- writing

def _decimals(x: np.ndarray, max_dec: int = 12) -> int | None:
    """Fewest decimals whose text parses back to exactly these doubles, or None."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 1
    for d in range(max_dec + 1):
        scale = 10.0 ** d
        with np.errstate(over="ignore", invalid="ignore"):
            s = np.rint(x * scale)
            exact = np.all(np.abs(s) < 2.0 ** 53) and np.array_equal(s / scale, x)
        if exact:
            # an exact integer over an exact power of ten is rounded once, like a text parser
            return d
    return None


def _format_float(x: np.ndarray, decimals: int | None) -> pa.Array:
    """Text of float values with a fixed number of decimals (shortest repr when None); NaN -> empty."""
    finite = np.isfinite(x)
    mask = pa.array(~finite)
    if decimals is None:
        text = pc.cast(pa.array(np.where(finite, x, 0.0)), pa.string())
        return pc.if_else(mask, pa.scalar(None, pa.string()), text)
    scale = 10 ** decimals
    a = np.abs(np.rint(np.where(finite, x, 0.0) * float(scale))).astype(np.int64)
    ip = pc.cast(pa.array(a // scale), pa.string())
    sign = pc.if_else(pa.array(np.signbit(x) & finite), "-", "")
    if decimals == 0:
        text = pc.binary_join_element_wise(sign, ip, "")
    else:
        # EGMS writes round(x, d) in shortest form: trailing zeros dropped, one decimal kept
        fp = pc.utf8_rtrim(pc.utf8_lpad(pc.cast(pa.array(a % scale), pa.string()), decimals, "0"), "0")
        fp = pc.if_else(pc.equal(fp, ""), "0", fp)
        text = pc.binary_join_element_wise(sign, ip, ".", fp, "")
    return pc.if_else(mask, pa.scalar(None, pa.string()), text)


def _formatters(points: EgmsPoints) -> list[Callable[[slice], pa.Array]]:
    """One function per output column turning a row slice into its text."""
    out = []
    for name in points.attrs.columns:
        s = points.attrs[name]
        if pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            v = s.to_numpy().astype(np.int64)
            out.append(lambda sl, v=v: pc.cast(pa.array(v[sl]), pa.string()))
        elif pd.api.types.is_float_dtype(s.dtype):
            v = s.to_numpy(dtype=np.float64)
            dec = _decimals(v)
            if dec is not None and name not in _FLOAT_COLUMNS:
                dec = max(dec, 1)  # "1.0" keeps an unknown column float when read back
            out.append(lambda sl, v=v, d=dec: _format_float(v[sl], d))
        else:
            v = s.astype(object).where(s.notna(), None).to_numpy()
            out.append(lambda sl, v=v: pa.array(v[sl], type=pa.string()))
    dec = _decimals(points.disp.ravel()) if points.disp.size else 1
    dec = None if dec is None else max(dec, 1)
    for j in range(points.disp.shape[1]):
        out.append(lambda sl, j=j, d=dec: _format_float(points.disp[sl, j], d))
    return out


def _check_writable(points: EgmsPoints) -> None:
    n, nd = points.disp.shape if points.disp.ndim == 2 else (-1, -1)
    if n != len(points.attrs) or nd != len(points.dates):
        raise UserError(f"{points.name}: disp shape {points.disp.shape} does not match "
                        f"{len(points.attrs)} points x {len(points.dates)} dates")
    if "pid" not in points.attrs.columns:
        raise UserError(f"{points.name}: no 'pid' column")
    for name in points.attrs.columns:
        if "," in str(name) or "\n" in str(name):
            raise UserError(f"{points.name}: column name {name!r} cannot be written to CSV")
    for name in points.attrs.columns:
        s = points.attrs[name]
        if s.dtype == object and s.astype(str).str.contains(r'[,\n\r"]', regex=True).any():
            raise UserError(f"{points.name}: column {name!r} holds text with ',', quotes or "
                            "line breaks, which EGMS CSV cannot hold")


def _write_csv_stream(points: EgmsPoints, f: IO[bytes], rows_per_block: int = 50_000) -> None:
    names = [str(c) for c in points.attrs.columns] + points.date_columns()
    f.write((",".join(names) + "\n").encode())
    fmts = _formatters(points)
    opts = pcsv.WriteOptions(include_header=False, quoting_style="none")
    sink = pa.PythonFile(f, mode="w")
    for start in range(0, len(points.attrs), rows_per_block):
        sl = slice(start, start + rows_per_block)
        tab = pa.table([fmt(sl) for fmt in fmts], names=[f"c{i}" for i in range(len(fmts))])
        pcsv.write_csv(tab, sink, write_options=opts)
    sink.flush()


def write_egms(points: EgmsPoints, path: str | os.PathLike) -> None:
    """Write points as EGMS text: ``.zip`` (CSV + XML header, members named after the zip)
    or ``.csv``; the file appears only when complete.

    Columns keep their order, numbers keep the decimals they have (``-0.0`` stays),
    NaN is written as an empty field.

    Examples
    --------
    >>> write_egms(points, "out/EGMS_L2b_117_0227_IW2_VV_2020_2024_1.zip")   # doctest: +SKIP
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".zip", ".csv"):
        raise UserError("EGMS output must end in .zip or .csv", path)
    _check_writable(points)
    with atomic_file(path) as tmp:
        if suffix == ".csv":
            with open(tmp, "wb") as f:
                _write_csv_stream(points, f)
        else:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                if points.header:
                    zf.writestr(f"{path.stem}.xml", header_xml(points.header))
                with zf.open(f"{path.stem}.csv", "w", force_zip64=True) as f:
                    _write_csv_stream(points, f)


# ----------------------------------------------------------------------------- GIS export

def to_geodataframe(points: EgmsPoints, crs: str = "EPSG:4326"):
    """Points as a GeoDataFrame: attributes, one column per date (``YYYYMMDD``, mm), point
    geometry in ``crs`` (from latitude/longitude or EPSG:3035 easting/northing).

    Examples
    --------
    >>> p = EgmsPoints(pd.DataFrame({"pid": ["a"], "latitude": [38.7], "longitude": [13.2]}),
    ...                np.array(["2020-01-03", "2020-01-09"], dtype="datetime64[D]"),
    ...                np.array([[0.0, 1.5]]))
    >>> to_geodataframe(p).columns.tolist()
    ['pid', 'latitude', 'longitude', '20200103', '20200109', 'geometry']
    """
    import geopandas as gpd
    from pyproj import CRS

    cols = points.attrs.columns
    target = CRS.from_user_input(crs)
    if {"longitude", "latitude"} <= set(cols):
        x, y, src_crs = points.attrs["longitude"], points.attrs["latitude"], "EPSG:4326"
    elif {"easting", "northing"} <= set(cols):
        x, y, src_crs = points.attrs["easting"], points.attrs["northing"], "EPSG:3035"
    else:
        raise UserError(f"{points.name}: no latitude/longitude or easting/northing columns")
    if target == CRS.from_epsg(3035) and {"easting", "northing"} <= set(cols):
        x, y, src_crs = points.attrs["easting"], points.attrs["northing"], "EPSG:3035"
    series = pd.DataFrame(points.disp, columns=points.date_columns(), index=points.attrs.index)
    df = pd.concat([points.attrs, series], axis=1)
    gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(x, y), crs=src_crs)
    return gdf if gdf.crs == target else gdf.to_crs(target)


def _export_metadata(points: EgmsPoints) -> dict:
    return {"name": points.name, "level": points.level, "naming": points.naming,
            "units": UNITS, "time_reference": f"first date {points.date_columns()[0]}" if len(points.dates) else "",
            "header": points.header}


def write_geoparquet(points: EgmsPoints, path: str | os.PathLike, crs: str = "EPSG:4326") -> None:
    """Write points as GeoParquet (date columns ``YYYYMMDD`` in mm); the file-level metadata
    key ``egms`` holds name, level, units and the XML header as JSON."""
    import pyarrow.parquet as pq

    gdf = to_geodataframe(points, crs)
    with atomic_file(path) as tmp:
        try:
            from geopandas.io.arrow import _geopandas_to_arrow
            table = _geopandas_to_arrow(gdf, index=False)
        except (ImportError, TypeError):  # private helper moved: plain GeoParquet, no extra metadata
            gdf.to_parquet(tmp, index=False)
            return
        meta = dict(table.schema.metadata or {})
        meta[b"egms"] = json.dumps(_export_metadata(points)).encode()
        pq.write_table(table.replace_schema_metadata(meta), tmp)


def write_gpkg(points: EgmsPoints, path: str | os.PathLike, crs: str = "EPSG:4326") -> None:
    """Write points as a GeoPackage layer named after the burst; units and the XML header are
    in the layer metadata."""
    import pyogrio

    gdf = to_geodataframe(points, crs)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in _export_metadata(points).items()}
    with atomic_file(path) as tmp:
        tmp.unlink(missing_ok=True)  # GDAL refuses to create over an existing empty file
        pyogrio.write_dataframe(gdf, tmp, layer=points.name or "points", driver="GPKG",
                                layer_metadata=meta)


OUTPUT_SUFFIXES = (".zip", ".csv", ".parquet", ".gpkg")


def write_points(points: EgmsPoints, path: str | os.PathLike, crs: str = "EPSG:4326") -> str:
    """Write points in the format named by the suffix: ``.zip``/``.csv`` (EGMS text),
    ``.parquet`` (GeoParquet) or ``.gpkg`` (GeoPackage); returns the format name."""
    suffix = Path(path).suffix.lower()
    if suffix in (".zip", ".csv"):
        write_egms(points, path)
        return "EGMS " + suffix[1:]
    if suffix == ".parquet":
        write_geoparquet(points, path, crs)
        return "GeoParquet"
    if suffix == ".gpkg":
        write_gpkg(points, path, crs)
        return "GeoPackage"
    raise UserError(f"unknown output format {suffix or '(no suffix)'!r}; use one of "
                    f"{', '.join(OUTPUT_SUFFIXES)}", path)


# ----------------------------------------------------------------------------- GNSS files

_TENV_COLUMNS = ["station", "date", "decyear", "mjd", "gps_week", "gps_day", "de", "dn", "du",
                 "antenna_height", "sig_e", "sig_n", "sig_u", "corr_en", "corr_eu", "corr_nu"]


def read_tenv(path: str | os.PathLike) -> GnssSeries:
    """Read a Nevada Geodetic Laboratory ``.tenv`` file (whitespace separated, no header).

    Columns: station, YYMMMDD, decimal year, MJD, GPS week, day, dE, dN, dU (m), antenna
    height (m), sigma E/N/U (m), correlations EN/EU/NU. Returned in mm.

    Examples
    --------
    >>> s = read_tenv("BARC.IGS08.tenv.txt")        # doctest: +SKIP
    >>> s.enu.shape                                  # doctest: +SKIP
    (3925, 3)
    """
    p = require_file(path)
    try:
        df = pd.read_csv(p, sep=r"\s+", header=None, comment="#", dtype={0: str, 1: str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"not a readable NGL .tenv file ({e})", p) from None
    if df.shape[1] < 13:
        raise UserError(f"has {df.shape[1]} columns, an NGL .tenv line has 13 or more "
                        "(station, date, decyear, MJD, week, day, dE, dN, dU, antenna, sE, sN, sU)", p)
    df = df.iloc[:, :16]
    df.columns = _TENV_COLUMNS[:df.shape[1]]
    try:
        num = df.iloc[:, 2:13].astype(np.float64)
    except ValueError:
        bad = pd.to_numeric(df.iloc[:, 2:13].stack(), errors="coerce").isna()
        line = int(bad[bad].index[0][0]) + 1
        raise UserError(f"line {line}: non-numeric value in a numeric column", p) from None
    inf = np.isinf(num.to_numpy())
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise UserError(f"line {int(r) + 1}, column {num.columns[c]}: infinite value", p)
    if not len(num):
        raise UserError("holds no observation", p)
    stations = df["station"].unique()
    if len(stations) != 1:
        raise UserError(f"holds {len(stations)} stations ({', '.join(map(str, stations[:5]))}); "
                        "one .tenv file per station expected", p)
    order = np.argsort(num["mjd"].to_numpy(), kind="stable")
    return GnssSeries(station=str(stations[0]), mjd=num["mjd"].to_numpy()[order],
                      t=num["decyear"].to_numpy()[order],
                      enu=1000.0 * num[["de", "dn", "du"]].to_numpy()[order],
                      sigma=1000.0 * num[["sig_e", "sig_n", "sig_u"]].to_numpy()[order])


def read_station_csv(path: str | os.PathLike, need_velocity: bool = False) -> pd.DataFrame:
    """Read a station table: ``station, lon, lat`` and, for velocities, ``ve, vn, vu`` (mm/yr)
    with optional ``sve, svn, svu`` (1-sigma, mm/yr). Column names are case-insensitive.

    Examples
    --------
    >>> df = read_station_csv("stations.csv")        # doctest: +SKIP
    """
    p = require_file(path)
    try:
        df = pd.read_csv(p, sep=None, engine="python", dtype={"station": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"not a readable CSV ({e})", p) from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    need = ["station", "lon", "lat"] + (["ve", "vn", "vu"] if need_velocity else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise UserError(f"missing column(s) {', '.join(missing)}; a station CSV has "
                        "station, lon, lat[, ve, vn, vu (mm/yr), sve, svn, svu]", p)
    num = [c for c in ("lon", "lat", "ve", "vn", "vu", "sve", "svn", "svu") if c in df.columns]
    for c in num:
        v = pd.to_numeric(df[c], errors="coerce")
        if v.isna().any() or np.isinf(v).any():
            raise UserError(f"column {c}, line {int(np.flatnonzero(~np.isfinite(v))[0]) + 2}: "
                            "not a finite number", p)
        df[c] = v.astype(np.float64)
    if df.empty:
        raise UserError("holds a header but no station", p)
    if ((df["lat"].abs() > 90) | (df["lon"].abs() > 360)).any():
        raise UserError("lon/lat out of range (degrees expected)", p)
    df["station"] = df["station"].astype(str).str.strip()
    return df
