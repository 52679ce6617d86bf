"""Class labels on a raster grid from points, polygons (any OGR format) or a label raster.

The result is an int32 array on the grid with 0 = unlabelled.  Labels given as names (e.g.
``"forest"``) become codes through :func:`class_codes_from` -- by a legend's names when one is
given, else in sorted order -- and the mapping is returned with the array (:class:`Labels`) so a
model can store it and a later assessment can use the same codes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import pyogrio
import shapely
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize

from ..core.errors import UserError, require_file
from ..core.raster import Grid, open_raster, read_band, reproject_band
from .legend import CALC2020, Legend

#: Columns tried, in order, when no label column is named (compared lower-case).
LABEL_COLUMNS = ("class", "classid", "class_id", "classvalue", "code", "label", "labels",
                 "lulc_id", "lc_code", "landcover", "land_cover", "lulc", "lc", "cover")


@dataclass(frozen=True)
class Labels:
    """Labels on a grid: ``array`` int32 (H, W), 0 = unlabelled; ``codes`` maps the label
    values found in the file (as strings) to codes; ``column`` is the column read (vectors)."""

    array: np.ndarray
    codes: dict[str, int]
    column: str | None = None

    def legend(self, base: Legend | None = CALC2020) -> Legend:
        """A legend naming the codes by the labels they came from; see :func:`legend_from_codes`."""
        return legend_from_codes(self.codes, base)


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def class_codes_from(values: Sequence, legend: Legend | None = None,
                     codes: Mapping[str, int] | None = None) -> dict[str, int]:
    """Map the distinct label values to class codes (1..255; 0 means unlabelled).

    - ``codes`` given: used as is (a model's stored mapping); values it lacks raise ValueError.
    - integer values all in 1..255: each is its own code.
    - names and a ``legend``: the legend's code of each name (case, spaces, punctuation ignored);
      a name the legend lacks raises ValueError naming it.
    - otherwise (names without legend, or numbers that include 0, negatives or fractions):
      codes 1..n in sorted order of the values.

    Missing values (None, NaN, empty string) are left out.

    Returns
    -------
    dict mapping ``str(value)`` (integers written without ``.0``) to the code.

    Examples
    --------
    >>> class_codes_from(["water", "forest", "water"])
    {'forest': 1, 'water': 2}
    >>> class_codes_from(["Forest", "open water"], legend=CALC2020)
    {'Forest': 2, 'open water': 6}
    >>> class_codes_from([3.0, 1.0, None])
    {'1': 1, '3': 3}
    >>> class_codes_from([0, 1, 2])          # 0 would read as unlabelled: shifted
    {'0': 1, '1': 2, '2': 3}
    """
    keys = _distinct_keys(values)
    if codes is not None:
        mapping = {str(k): int(v) for k, v in codes.items()}
        missing = [k for k in keys if k not in mapping]
        if missing:
            raise ValueError(f"label value(s) {', '.join(missing[:10])} not in the class mapping "
                             f"({', '.join(list(mapping)[:20])})")
        return {k: mapping[k] for k in keys}
    numeric = all(_is_number(k) for k in keys)
    if numeric and all(float(k).is_integer() and 1 <= float(k) <= 255 for k in keys):
        return {k: int(float(k)) for k in sorted(keys, key=float)}
    if not numeric and legend is not None:
        out, unknown = {}, []
        for k in keys:
            try:
                out[k] = legend.code(k)
            except KeyError:
                unknown.append(k)
        if unknown:
            raise ValueError(f"label name(s) {', '.join(unknown[:10])} not in the legend "
                             f"({', '.join(legend.names)})")
        return out
    ordered = sorted(keys, key=float) if numeric else sorted(keys)
    if len(ordered) > 255:
        raise ValueError(f"{len(ordered)} distinct labels; at most 255 classes are supported")
    return {k: i for i, k in enumerate(ordered, 1)}


def _key(v) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    s = str(v).strip()
    return s or None


def _distinct_keys(values) -> list[str]:
    return sorted({k for k in map(_key, values) if k is not None})


def legend_from_codes(codes: Mapping[str, int], base: Legend | None = CALC2020) -> Legend:
    """A legend for a label mapping: names are the label values; colours come from ``base``
    when a name matches one of its classes, else from a qualitative palette.

    Examples
    --------
    >>> lg = legend_from_codes({"forest": 1, "water": 2})
    >>> lg.names, lg.colours[0] == CALC2020.colours[1]
    (('forest', 'water'), True)
    """
    import matplotlib

    palette = matplotlib.colormaps["tab20"].colors
    items = sorted(codes.items(), key=lambda kv: kv[1])
    colours = []
    for i, (name, code) in enumerate(items):
        try:
            c = base.code(name) if base is not None else None
            colours.append(base.colours[base.codes.index(c)])
        except KeyError:
            colours.append(tuple(int(round(255 * v)) for v in palette[i % len(palette)]))
    return Legend(tuple(c for _, c in items), tuple(n for n, _ in items), tuple(colours))


# --------------------------------------------------------------------------- reading

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
    keys = [_key(v) for v in df[col]]
    keep = np.array([k is not None for k in keys], bool)
    if not keep.any():
        raise UserError(f"has no labels (column {col!r} is empty)", path)
    df, keys = df[keep], [k for k in keys if k is not None]
    try:
        mapping = class_codes_from(keys, legend, codes)
    except ValueError as e:
        raise UserError(f"column {col!r}: {e}", path) from None
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
    return Labels(out, mapping, col)


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


def parse_codes(text: str) -> dict[str, int]:
    """Parse ``"forest=2,water=6"`` into a mapping (a CLI helper).

    Examples
    --------
    >>> parse_codes("forest=2, open water=6")
    {'forest': 2, 'open water': 6}
    """
    out = {}
    for part in filter(None, (s.strip() for s in re.split(r"[,;]", text))):
        name, _, code = part.rpartition("=")
        if not name or not code.strip().isdigit():
            raise ValueError(f"{part!r} is not name=code")
        out[name.strip()] = int(code)
    return out
