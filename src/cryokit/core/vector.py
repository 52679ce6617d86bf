"""Stable-ground masks on a raster grid, from polygons (any OGR format, GMT text) or rasters."""

from __future__ import annotations

import os
import re

import numpy as np
import pyogrio
import rasterio
import shapely
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioIOError
from rasterio.features import rasterize

from .errors import UserError, require_file
from .raster import Grid, open_raster, read_band, reproject_band

_UNREADABLE = "not a vector file GDAL can read"
_GMT_EPSG, _GMT_PROJ = re.compile(r"@Je(\d+)"), re.compile(r'@J[pw]"(.+?)"(?=\s|$)')
_GMT_HOLE = re.compile(r"#\s*@H(\s|$)")


def _to_crs(value) -> CRS | None:
    return None if value is None else CRS.from_user_input(value)


def _read_ogr(path: str):
    """Geometries and CRS of the first layer via OGR, or None when OGR cannot read it."""
    try:
        df = pyogrio.read_dataframe(path, columns=[])
    except Exception:  # pyogrio raises several error types for unreadable files
        return None
    crs = CRS.from_wkt(df.crs.to_wkt()) if df.crs is not None else None
    return list(df.geometry.dropna()), crs


def _gmt_crs(line: str) -> CRS | None:
    m = _GMT_EPSG.search(line)
    if m:
        return CRS.from_epsg(int(m.group(1)))
    m = _GMT_PROJ.search(line)
    return CRS.from_user_input(m.group(1).replace('\\"', '"')) if m else None


def _looks_like_gmt(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096)
    try:
        lines = [s.strip() for s in head.decode("ascii").splitlines()]
    except UnicodeDecodeError:
        return False
    if len(head) == 4096:
        lines = lines[:-1]  # may be cut
    data = [s for s in lines if s and s[0] not in ">#"]
    if not any(s.startswith(">") for s in lines) or not data:
        return False
    try:
        return all(len([float(v) for v in s.split()]) >= 2 for s in data)
    except ValueError:
        return False


def _read_gmt(path: str):
    """Polygons of a GMT multi-segment file: ``>`` starts a ring; ``# @H`` marks a hole."""
    rings, crs = [], None  # rings: [is_hole, [(x, y), ...]]
    with open(path, encoding="ascii", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            s = line.strip()
            if not s:
                continue
            if s[0] == ">":
                rings.append([False, []])
            elif s[0] == "#":
                if rings and _GMT_HOLE.match(s):
                    rings[-1][0] = True
                try:
                    crs = crs or _gmt_crs(s)
                except CRSError:
                    raise UserError(f"line {lineno}: CRS not understood", path) from None
            else:
                if not rings:
                    rings.append([False, []])
                v = s.split()
                try:
                    rings[-1][1].append((float(v[0]), float(v[1])))
                except (ValueError, IndexError):
                    raise UserError(f"line {lineno} is not 'x y [z]'", path) from None
    polys = []
    for hole, pts in rings:
        if len(pts) < 3:
            continue
        if hole and polys:
            polys[-1] = shapely.Polygon(polys[-1].exterior, [*polys[-1].interiors, pts])
        else:
            polys.append(shapely.Polygon(pts))
    return polys, crs


def _polygonal(geoms) -> list:
    """Polygons and multipolygons; closed rings become polygons, collections are opened."""
    out = []
    for g in shapely.get_parts(np.asarray(geoms, dtype=object)):
        g = shapely.force_2d(g)
        if isinstance(g, (shapely.Polygon, shapely.MultiPolygon)) and not g.is_empty:
            out.append(g)
        elif isinstance(g, (shapely.LineString, shapely.LinearRing)) and len(g.coords) >= 4 \
                and g.is_closed:
            out.append(shapely.Polygon(g.coords))
    return out


def read_polygons(path: str | os.PathLike, crs=None) -> tuple[list, CRS | None]:
    """Read the polygons of a vector file.

    Any format OGR reads (first layer), plus GMT multi-segment text polygons.

    Parameters
    ----------
    path : vector file.
    crs : CRS assumed when the file declares none (e.g. a GMT file without ``# @J``).

    Returns
    -------
    polygons : list of shapely Polygon / MultiPolygon (2-D)
    crs : rasterio CRS of the file, else ``crs``, else None

    Examples
    --------
    >>> polys, crs = read_polygons("rock.gmt", crs="EPSG:32607")  # doctest: +SKIP
    """
    p = require_file(path)
    found = _read_ogr(p)
    # OGR reads a GMT file without a @GPOLYGON header as lines (holes then come out as
    # separate rings), so such text goes to the GMT parser.
    if (found is None or not found[0] or not all(
            isinstance(g, (shapely.Polygon, shapely.MultiPolygon)) for g in found[0])) \
            and (p.lower().endswith(".gmt") or _looks_like_gmt(p)):
        found = _read_gmt(p)
    if found is None:
        raise UserError(_UNREADABLE, p)
    polys = _polygonal(found[0])
    if not polys:
        raise UserError("has no polygons", p)
    return polys, found[1] or _to_crs(crs)


def polygon_mask(path: str | os.PathLike, grid: Grid) -> np.ndarray:
    """True on ``grid`` pixels whose centre lies in a polygon of ``path``.

    Polygons without a CRS are taken to be in ``grid.crs``; others are reprojected to it.

    Examples
    --------
    >>> mask = polygon_mask("rock.gmt", read_grid("image.tif"))  # doctest: +SKIP
    """
    polys, crs = read_polygons(path, grid.crs)
    geoms = np.asarray(polys, dtype=object)
    if crs is not None and grid.crs is not None and crs != grid.crs:
        # Outline vertices are dense compared with the pixels, so edges are not densified.
        tr = Transformer.from_crs(crs, grid.crs, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(*xy.T)))
    # Bounding boxes only: intersects() can fail on the invalid rings real outlines have.
    x0, y0, x1, y1 = grid.bounds
    b = shapely.bounds(geoms)
    geoms = geoms[(b[:, 0] < x1) & (b[:, 2] > x0) & (b[:, 1] < y1) & (b[:, 3] > y0)]
    if not len(geoms):
        return np.zeros(grid.shape, bool)
    return rasterize(((g, 1) for g in geoms), out_shape=grid.shape, transform=grid.transform,
                     fill=0, dtype="uint8").astype(bool)


def raster_mask(path: str | os.PathLike, grid: Grid,
                values: tuple[int, ...] | None = None) -> np.ndarray:
    """True on ``grid`` pixels where the raster at ``path`` is valid and one of ``values``
    (nearest); without ``values``, non-zero.

    A class raster (a few integer codes, e.g. 1 = stable, 2 = glacier) without ``values`` is
    an error: taking every non-zero class as stable would count glaciers as stable ground.

    Examples
    --------
    >>> mask = raster_mask("classes.tif", read_grid("image.tif"), values=(1,))  # doctest: +SKIP
    """
    with open_raster(path) as ds:
        src_crs, shape = ds.crs, (ds.height, ds.width)
    if src_crs is None or grid.crs is None:
        if shape != grid.shape:
            raise UserError("raster mask has no CRS and a different shape from the image", path)
        data = read_band(path)
    else:
        data = reproject_band(path, grid, resampling=Resampling.nearest)
    if values is not None:
        return np.isin(data, np.asarray(values, float))
    codes = np.unique(data[np.isfinite(data) & (data != 0)])
    if 1 < codes.size <= 16 and np.all(codes == np.round(codes)):
        shown = ", ".join(f"{c:g}" for c in codes)
        raise UserError(f"stable mask holds the classes {shown}: say which are stable with "
                        "--stable-values (e.g. --stable-values 1)", path)
    return np.isfinite(data) & (data != 0)


def _is_raster(path: str) -> bool:
    try:
        with rasterio.open(path) as ds:
            return ds.count > 0 and ds.driver != "XYZ"  # XYZ would take GMT-like text
    except RasterioIOError:
        return False


def load_mask(path: str | os.PathLike, grid: Grid,
              values: tuple[int, ...] | None = None) -> np.ndarray:
    """Stable-ground mask on ``grid`` from a raster (its pixels of ``values``, else non-zero:
    :func:`raster_mask`) or a polygon file.

    Raises
    ------
    UserError
        One line naming the file: missing, unreadable, no polygons, or no overlap.

    Examples
    --------
    >>> stable = load_mask("StEliasMtn_utm7v_rock.gmt", read_grid("B8.TIF"))  # doctest: +SKIP
    """
    p = require_file(path)
    if _is_raster(p):
        mask = raster_mask(p, grid, values)
    else:
        if values is not None:
            raise UserError("--stable-values applies to a raster mask, not to polygons", p)
        try:
            mask = polygon_mask(p, grid)
        except UserError as e:
            if e.problem == _UNREADABLE:
                raise UserError("not a raster or vector file GDAL can read", p) from None
            raise
    if not mask.any():
        raise UserError("stable mask does not overlap the image grid", p)
    return mask
