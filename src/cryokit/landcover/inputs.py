"""Land-cover input files: training and reference labels (points, polygons in any OGR format,
or a label raster) on a raster grid, and legends (JSON, CSV, or embedded in a class map).

The result of :func:`read_labels` is an int32 array on the grid with 0 = unlabelled; labels
given as names become codes through :func:`.labels.class_codes_from`.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Mapping

import numpy as np
import pandas as pd
import pyogrio
import shapely
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize

from ..core.errors import UserError, require_file
from ..core.raster import Grid, open_raster, read_band, reproject_band
from .labels import LABEL_COLUMNS, Labels, class_codes_from, label_key
from .legend import Legend, legend_from_tags, parse_colour


# --------------------------------------------------------------------------- labels

def _is_raster(path: str) -> bool:
    try:
        with open_raster(path) as ds:
            return ds.count > 0 and ds.driver not in ("XYZ", "CSV")
    except UserError:
        return False


def _raster_labels(path: str, grid: Grid, codes: Mapping[str, int] | None) -> Labels:
    with open_raster(path) as ds:
        src_crs, shape = ds.crs, (ds.height, ds.width)
        src_grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
    if src_crs is None or grid.crs is None:
        if shape != grid.shape:
            raise UserError("label raster has no CRS and a different shape from the grid", path)
        values = read_band(path)
    elif src_grid.same_as(grid):
        values = read_band(path)
    else:
        values = reproject_band(path, grid, resampling=Resampling.nearest)
    valid = np.isfinite(values) & (values > 0)
    if not valid.any():
        full = read_band(path)
        if not (np.isfinite(full) & (full > 0)).any():
            raise UserError("has no labels (all pixels are nodata or 0)", path)
        raise UserError("labels do not overlap the grid", path)
    v = values[valid]
    if np.any(v != np.round(v)) or np.any(v > 255):
        raise UserError("label raster values must be integer class codes 1..255", path)
    out = np.zeros(grid.shape, np.int32)
    out[valid] = v.astype(np.int32)
    present = np.unique(out[valid])
    if codes is not None:
        # A raster holds codes already; a mapping only serves to check they are known.
        known = {int(c) for c in codes.values()}
        unknown = [int(c) for c in present if int(c) not in known]
        if unknown:
            raise UserError(f"class code(s) {unknown} not in the class mapping", path)
    return Labels(out, {str(int(c)): int(c) for c in present}, None)


def _pick_column(df: pd.DataFrame, column: str | None, path: str) -> str:
    cols = [c for c in df.columns if c != "geometry"]
    if column is not None:
        if column in cols:
            return column
        lower = {c.lower(): c for c in cols}
        if column.lower() in lower:
            return lower[column.lower()]
        raise UserError(f"no column {column!r}; available: {', '.join(cols) or '(none)'}", path)
    lower = {c.lower(): c for c in cols}
    for name in LABEL_COLUMNS:
        if name in lower:
            return lower[name]
    if len(cols) == 1:
        return cols[0]
    raise UserError(f"name the label column (--label-column); available: "
                    f"{', '.join(cols) or '(none)'}", path)


def _vector_labels(path: str, grid: Grid, column: str | None, legend: Legend | None,
                   codes: Mapping[str, int] | None, all_touched: bool) -> Labels:
    try:
        df = pyogrio.read_dataframe(path)
    except Exception:  # pyogrio raises several error types for unreadable files
        raise UserError("not a raster or vector file GDAL can read", path) from None
    col = _pick_column(df, column, path)
    df = df[df.geometry.notna() & ~df.geometry.is_empty]
    keys = [label_key(v) for v in df[col]]
    keep = np.array([k is not None for k in keys], bool)
    if not keep.any():
        raise UserError(f"has no labels (column {col!r} is empty)", path)
    df, keys = df[keep], [k for k in keys if k is not None]
    try:
        mapping = class_codes_from(keys, legend, codes)
    except ValueError as e:
        raise UserError(f"column {col!r}: {e}", path) from None
    labelled = np.array([k in mapping for k in keys], bool)
    if not labelled.all():      # features labelled 0: unlabelled
        df, keys = df[labelled], [k for k, ok in zip(keys, labelled) if ok]
        if not keys:
            raise UserError(f"has no labels (column {col!r} holds only 0 = unlabelled)", path)
    value = np.array([mapping[k] for k in keys], np.int32)
    if df.crs is not None and grid.crs is not None:
        df = df.to_crs(CRS.from_user_input(grid.crs).to_wkt())
    geoms = shapely.force_2d(np.asarray(df.geometry.values, dtype=object))
    out = np.zeros(grid.shape, np.int32)
    points = shapely.get_type_id(geoms) == shapely.GeometryType.POINT
    if points.any():
        x, y = shapely.get_x(geoms[points]), shapely.get_y(geoms[points])
        inv = ~grid.transform
        col_f, row_f = inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f
        r, c = np.floor(row_f).astype(np.int64), np.floor(col_f).astype(np.int64)
        inside = (r >= 0) & (r < grid.height) & (c >= 0) & (c < grid.width)
        out[r[inside], c[inside]] = value[points][inside]
    if (~points).any():
        x0, y0, x1, y1 = grid.bounds
        b = shapely.bounds(geoms[~points])
        near = (b[:, 0] < x1) & (b[:, 2] > x0) & (b[:, 1] < y1) & (b[:, 3] > y0)
        shapes = [(g, int(v)) for g, v in zip(geoms[~points][near], value[~points][near])]
        if shapes:
            burnt = rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=0,
                              all_touched=all_touched, dtype="int32")
            out = np.where(burnt > 0, burnt, out)
    if not out.any():
        raise UserError("labels do not overlap the grid", path)
    return Labels(out, mapping, col, _name_column(df, col, keys, mapping))


def _name_column(df, col: str, keys, mapping) -> dict[int, str] | None:
    """Names of numeric label codes from a text column that matches them one to one
    (``LULC_ID`` and ``LULC_NAME``); None when the labels are names or no column fits."""
    from .labels import _is_number

    if not all(_is_number(k) for k in mapping):
        return None
    codes = np.array([mapping[k] for k in keys])
    for other in df.columns:
        if other in (col, df.geometry.name) or not (pd.api.types.is_object_dtype(df[other])
                                                    or pd.api.types.is_string_dtype(df[other])):
            continue
        text = df[other].fillna("").astype(str).str.strip().to_numpy()
        if (text == "").any():
            continue
        pairs = set(zip(codes.tolist(), text.tolist()))
        if len(pairs) == len(set(codes.tolist())) == len({t for _, t in pairs}):
            return {int(c): t for c, t in pairs}
    return None


def read_labels(path: str | os.PathLike, grid: Grid, column: str | None = None, *,
                legend: Legend | None = None, codes: Mapping[str, int] | None = None,
                all_touched: bool = False) -> Labels:
    """Labels on ``grid`` from a label raster (nearest resampling) or a point/polygon file.

    Parameters
    ----------
    path : raster (band 1 = class codes, nodata/0 = unlabelled) or any OGR vector (first layer).
        Vectors are reprojected to the grid CRS (taken to be in it when they declare none).
        A point labels the pixel that contains it; a polygon the pixels whose centre it holds
        (later features win where they overlap).
    column : attribute holding the labels; default: the first of :data:`LABEL_COLUMNS` present.
    legend : maps label names to codes (see :func:`class_codes_from`).
    codes : an existing name -> code mapping (e.g. stored with a model); takes precedence.
    all_touched : polygons label every pixel they touch, not only those whose centre they hold
        (how GRASS rasterised the NC training polygons).

    Raises
    ------
    UserError
        Naming the file: unreadable, column missing (listing the available ones), names not
        in the legend/mapping, labels outside the grid, no labels at all.

    Examples
    --------
    >>> lab = read_labels("points.shp", read_grid("image.tif"), "label")  # doctest: +SKIP
    >>> lab.array.shape, lab.codes                                       # doctest: +SKIP
    ((443, 489), {'agriculture': 1, 'developed': 2, ...})
    """
    p = require_file(path)
    if _is_raster(p):
        return _raster_labels(p, grid, codes)
    return _vector_labels(p, grid, column, legend, codes, all_touched)


def label_raster(path: str | os.PathLike, grid: Grid, column: str | None = None, *,
                 legend: Legend | None = None,
                 codes: Mapping[str, int] | None = None, all_touched: bool = False) -> np.ndarray:
    """int32 (H, W) labels on ``grid``, 0 = unlabelled; :func:`read_labels` without the mapping.

    Examples
    --------
    >>> y = label_raster("landsat96_polygons.shp", read_grid("b4.tif"), "id")  # doctest: +SKIP
    """
    return read_labels(path, grid, column, legend=legend, codes=codes,
                       all_touched=all_touched).array


# --------------------------------------------------------------------------- legends

def read_raster_legend(path: str | os.PathLike) -> Legend | None:
    """The legend embedded in a class map: the ``LEGEND`` tag, else its colour table (names
    ``class <code>``), else None.

    Examples
    --------
    >>> legend = read_raster_legend("map.tif")  # doctest: +SKIP
    """
    with open_raster(path) as ds:
        found = legend_from_tags(ds.tags())
        if found is not None:
            return found
        try:
            cmap = ds.colormap(1)
        except ValueError:  # no colour table
            return None
    codes = sorted(c for c, rgba in cmap.items() if c > 0 and rgba[3] > 0 and c <= 255)
    # A colour table fills all 256 entries; keep the coloured ones that are not default black.
    codes = [c for c in codes if tuple(cmap[c][:3]) != (0, 0, 0)]
    if not codes:
        return None
    return Legend(tuple(codes), tuple(f"class {c}" for c in codes),
                  tuple(tuple(cmap[c][:3]) for c in codes))


def load_legend(path: str | os.PathLike) -> Legend:
    """Read a legend file: JSON ``{"classes": [{"code", "name", "colour": "#rrggbb"}]}`` or CSV
    with a header ``code,name,colour`` (``color`` also accepted; colour optional, grey).

    Raises
    ------
    UserError
        One line naming the file (and the CSV line) when it cannot be read as a legend.

    Examples
    --------
    >>> legend = load_legend("calc2020.json")  # doctest: +SKIP
    """
    p = require_file(path)
    try:
        with open(p, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read legend ({e.__class__.__name__})", p) from None
    if text.lstrip().startswith(("{", "[")):
        try:
            d = json.loads(text)
        except ValueError as e:
            raise UserError(f"not valid JSON: {e}", p) from None
        if isinstance(d, list):
            d = {"classes": d}
        try:
            return Legend.from_dict(d)
        except (KeyError, TypeError) as e:
            raise UserError('legend JSON must be {"classes": [{"code": 1, "name": "...", '
                            f'"colour": "#rrggbb"}}, ...]}} (missing {e})', p) from None
        except ValueError as e:
            raise UserError(f"bad legend: {e}", p) from None
    return _legend_from_csv(text, p)


def _legend_from_csv(text: str, path: str) -> Legend:
    rows = list(csv.reader(line for line in text.splitlines() if line.strip()))
    if not rows:
        raise UserError("empty legend file", path)
    header = [h.strip().lower() for h in rows[0]]
    if "code" not in header or "name" not in header:
        raise UserError(f"CSV legend needs a header with columns code,name[,colour]; found "
                        f"{','.join(rows[0])}", path)
    ic, iname = header.index("code"), header.index("name")
    icol = next((header.index(k) for k in ("colour", "color") if k in header), None)
    codes, names, colours = [], [], []
    for lineno, row in enumerate(rows[1:], 2):
        try:
            codes.append(int(row[ic]))
            names.append(row[iname].strip())
            colours.append(parse_colour(row[icol]) if icol is not None and row[icol].strip()
                           else (128, 128, 128))
        except (ValueError, IndexError) as e:
            raise UserError(f"line {lineno}: {e if isinstance(e, ValueError) else 'too few columns'}",
                            path) from None
    try:
        return Legend(tuple(codes), tuple(names), tuple(colours))
    except ValueError as e:
        raise UserError(f"bad legend: {e}", path) from None
