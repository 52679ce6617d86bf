"""Raster grids, reading with nodata as NaN, reprojection and atomic COG writing (rasterio/GDAL)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from .atomic import atomic_file
from .errors import UserError, require_file


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform and shape (pixel-is-area, GDAL convention)."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        t = self.transform
        xs = [t.c, t.c + t.a * self.width]
        ys = [t.f, t.f + t.e * self.height]
        return (min(xs), min(ys), max(xs), max(ys))

    def bounds_lonlat(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees (EPSG:4326)."""
        if self.crs is None:
            raise ValueError("grid has no CRS")
        return tuple(transform_bounds(self.crs, "EPSG:4326", *self.bounds, densify_pts=21))

    def same_as(self, other: "Grid", tol: float = 1e-6) -> bool:
        """True when both grids have the same CRS, shape and transform (to ``tol`` of a pixel)."""
        return self.mismatch(other, tol) is None

    def mismatch(self, other: "Grid", tol: float = 1e-6) -> str | None:
        """What differs from ``other`` ("CRS differs", "shape differs", "transform differs"),
        or None when the grids are the same (transform to ``tol`` of a pixel)."""
        if (self.crs is None) != (other.crs is None) or (
                self.crs is not None and self.crs != other.crs):
            return "CRS differs"
        if self.shape != other.shape:
            return "shape differs"
        a, b = np.array(self.transform)[:6], np.array(other.transform)[:6]
        if not np.all(np.abs(a - b) <= tol * max(self.res)):
            return "transform differs"
        return None

    def window(self, row0: int, row1: int, col0: int, col1: int) -> "Grid":
        """The sub-grid of rows [row0, row1) and columns [col0, col1)."""
        t = self.transform @ Affine.translation(col0, row0)
        return Grid(self.crs, t, col1 - col0, row1 - row0)

    def xy(self, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates of pixel centres."""
        rows, cols = np.asarray(rows, float), np.asarray(cols, float)
        t = self.transform
        return (t.c + t.a * (cols + 0.5) + t.b * (rows + 0.5),
                t.f + t.d * (cols + 0.5) + t.e * (rows + 0.5))

    def profile(self) -> dict:
        return {"crs": self.crs, "transform": self.transform, "width": self.width, "height": self.height}


def open_raster(path: str | os.PathLike):
    """Open a raster for reading, raising :class:`UserError` for a missing or non-raster file."""
    p = require_file(path)
    try:
        return rasterio.open(p)
    except RasterioIOError:
        raise UserError("not a raster GDAL can read", p) from None


def read_grid(path: str | os.PathLike) -> Grid:
    """The :class:`Grid` of a raster file."""
    with open_raster(path) as ds:
        return Grid(ds.crs, ds.transform, ds.width, ds.height)


def _to_float(ds, data: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    out = data.astype(np.float32, copy=False)
    if mask is not None:
        out = np.where(mask, np.float32(np.nan), out)
    return out


def read_band(path: str | os.PathLike, band: int = 1, window: Window | None = None,
              out_shape: tuple[int, int] | None = None,
              resampling: Resampling = Resampling.average) -> np.ndarray:
    """Read one band as float32 with nodata (and masked pixels) as NaN.

    ``window`` may extend past the raster edge: the outside is NaN (boundless read).
    ``out_shape`` reads a decimated overview-friendly version (used by coarse passes).
    """
    with open_raster(path) as ds:
        if band > ds.count:
            raise UserError(f"has {ds.count} band(s), band {band} requested", path)
        boundless = window is not None and (
            window.col_off < 0 or window.row_off < 0
            or window.col_off + window.width > ds.width or window.row_off + window.height > ds.height)
        data = ds.read(band, window=window, out_shape=out_shape, resampling=resampling,
                       masked=True, boundless=boundless, fill_value=ds.nodata)
        return _to_float(ds, np.ma.getdata(data), np.ma.getmaskarray(data))


def reproject_band(path: str | os.PathLike, grid: Grid, band: int = 1,
                   resampling: Resampling = Resampling.bilinear) -> np.ndarray:
    """Read a band resampled onto ``grid`` (float32, NaN outside the source or at nodata)."""
    with open_raster(path) as ds:
        dst = np.full(grid.shape, np.nan, np.float32)
        src_nodata = ds.nodata
        reproject(rasterio.band(ds, band), dst, src_nodata=src_nodata, dst_nodata=np.nan,
                  dst_transform=grid.transform, dst_crs=grid.crs, resampling=resampling)
        return dst


def grid_in_crs(grid: Grid, crs: str, res: float | None = None) -> Grid:
    """The grid that covers ``grid`` in ``crs`` at about its resolution: GDAL's default warp
    grid (as ``gdalwarp -t_srs`` chooses it), except that a geographic ``crs`` from a projected
    grid gets the grid's spacing in metres on each axis at the centre latitude (square degree
    pixels would be several times coarser in latitude at high latitudes). ``res`` (units of
    ``crs``: metres, or degrees) sets square pixels of that size instead.

    Raises
    ------
    UserError
        ``crs`` is not a CRS that PROJ knows.
    """
    from rasterio.errors import CRSError
    from rasterio.warp import calculate_default_transform

    try:
        dst = CRS.from_user_input(crs)
    except CRSError as e:
        raise UserError(f"--out-crs: not a coordinate reference system ({e})") from None
    resolution = None
    if res is not None:
        if not res > 0:
            raise UserError(f"--out-res: must be > 0, got {res}")
        resolution = (float(res), float(res))
    elif dst.is_geographic and not grid.crs.is_geographic:
        lat = grid.bounds_lonlat()
        phi = np.radians((lat[1] + lat[3]) / 2)
        metres = min(abs(grid.res[0]), abs(grid.res[1]))
        resolution = (metres / (111320.0 * np.cos(phi)), metres / 110574.0)
    transform, width, height = calculate_default_transform(
        grid.crs, dst, grid.width, grid.height, *grid.bounds, resolution=resolution)
    return Grid(dst, transform, width, height)


def one_grid(paths, hint: str = "resample the series onto one grid first") -> Grid:
    """The grid all of ``paths`` share; a UserError names the first file without a CRS or on
    another grid (``hint`` says what to do)."""
    grid = None
    for path in paths:
        g = read_grid(path)
        if g.crs is None:
            raise UserError("has no coordinate reference system", path)
        if grid is None:
            grid = g
        elif (why := g.mismatch(grid)) is not None:
            raise UserError(f"is not on the grid of {paths[0]} ({why}); {hint}", path)
    return grid


def utm_crs(grid: Grid) -> CRS:
    """The WGS84 UTM zone (EPSG:326xx / 327xx) of the grid's centre."""
    west, south, east, north = grid.bounds_lonlat()
    lon, lat = (west + east) / 2, (south + north) / 2
    zone = int(np.clip((lon + 180) // 6 + 1, 1, 60))
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def projected_grid(grid: Grid) -> Grid:
    """A geographic grid's cover in its UTM zone at about its spacing, in whole metres (1 arcsec
    at 46 N: 21 m x 31 m -> 21 m); a projected grid as it is."""
    from rasterio.warp import calculate_default_transform

    if grid.crs is None or not grid.crs.is_geographic:
        return grid
    dst = utm_crs(grid)
    transform, _, _ = calculate_default_transform(grid.crs, dst, grid.width, grid.height,
                                                  *grid.bounds)
    res = max(1.0, round(min(abs(transform.a), abs(transform.e))))
    transform, width, height = calculate_default_transform(
        grid.crs, dst, grid.width, grid.height, *grid.bounds, resolution=(res, res))
    return Grid(dst, transform, width, height)


def warp_array(data: np.ndarray, src: Grid, dst: Grid,
               resampling: Resampling = Resampling.bilinear) -> np.ndarray:
    """``data`` (H, W) on ``src`` resampled onto ``dst`` (float32, NaN = nodata or outside)."""
    out = np.full(dst.shape, np.nan, np.float32)
    reproject(np.asarray(data, np.float32), out, src_transform=src.transform, src_crs=src.crs,
              dst_transform=dst.transform, dst_crs=dst.crs, src_nodata=np.nan,
              dst_nodata=np.nan, resampling=resampling)
    return out


def write_cog(path: str | os.PathLike, bands: np.ndarray | Sequence[np.ndarray], grid: Grid, *,
              nodata: float | int | None = np.nan, descriptions: Sequence[str] | None = None,
              tags: Mapping[str, str] | None = None,
              band_tags: Sequence[Mapping[str, str]] | None = None,
              units: Sequence[str] | str | None = None, dtype: str | None = None,
              colormap: Mapping[int, tuple] | None = None,
              compress: str = "deflate") -> str:
    """Write a cloud-optimised GeoTIFF atomically (temporary name, then rename).

    Parameters
    ----------
    bands : array (H, W) or (B, H, W) or sequence of (H, W)
        Data; float NaN is written as ``nodata``.
    units : str or one per band
        Stored as band tag ``units`` and as GDAL band unit type, so QGIS shows it.
    tags : dataset-level metadata (e.g. dates, sign conventions).
    """
    arr = np.asarray(bands)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape[1:] != grid.shape:
        raise ValueError(f"array shape {arr.shape[1:]} does not match grid {grid.shape}")
    dtype = dtype or arr.dtype.name
    if np.issubdtype(np.dtype(dtype), np.integer) and nodata is not None and np.isnan(nodata):
        nodata = None
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)) \
            and np.issubdtype(arr.dtype, np.floating):
        arr = np.where(np.isnan(arr), nodata, arr)
    if isinstance(units, str):
        units = [units] * arr.shape[0]
    profile = dict(driver="COG", width=grid.width, height=grid.height, count=arr.shape[0],
                   dtype=dtype, crs=grid.crs, transform=grid.transform, nodata=nodata,
                   compress=compress, overview_resampling="nearest" if colormap else "average",
                   BIGTIFF="IF_SAFER")
    if np.issubdtype(np.dtype(dtype), np.floating):
        profile["predictor"] = 3
    with atomic_file(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(arr.astype(dtype, copy=False))
            if tags:
                ds.update_tags(**{k: str(v) for k, v in tags.items()})
            for i in range(arr.shape[0]):
                if descriptions:
                    ds.set_band_description(i + 1, descriptions[i])
                bt = dict(band_tags[i]) if band_tags else {}
                if units:
                    bt.setdefault("units", units[i])
                    ds.set_band_unit(i + 1, units[i])
                if bt:
                    ds.update_tags(i + 1, **{k: str(v) for k, v in bt.items()})
            if colormap:
                ds.write_colormap(1, colormap)
    return os.fspath(path)


class TiledWriter:
    """Write a raster block by block, then publish it as a COG, atomically.

    For products too big to hold whole: blocks of rows go into a temporary uncompressed
    tiled GeoTIFF beside ``path`` (random-access writes, no re-compression of tiles shared
    by two blocks); on a clean exit it is converted to a cloud-optimised GeoTIFF at ``path``
    with the same options, tags, band descriptions and units as :func:`write_cog`.  On an
    exception nothing appears at ``path`` and the temporary file is removed.

    Parameters
    ----------
    path : output file.
    grid : :class:`Grid` of the whole raster.
    count, dtype : number of bands and their data type.
    nodata, descriptions, tags, band_tags, units, colormap, compress : as :func:`write_cog`.
    tile : tile size (pixels) of the temporary GeoTIFF.
    cache_mb : GDAL block cache while writing and converting (bounds memory; GDAL's default
        is 5 % of RAM).

    Examples
    --------
    >>> g = Grid(None, Affine(10, 0, 0, 0, -10, 40), 4, 4)
    >>> with TiledWriter("dh.tif", g, units="m") as w:           # doctest: +SKIP
    ...     w.write(np.zeros((2, 4), np.float32), row=0)
    ...     w.write(np.ones((2, 4), np.float32), row=2)
    """

    def __init__(self, path: str | os.PathLike, grid: Grid, *, count: int = 1,
                 dtype: str = "float32", nodata: float | int | None = np.nan,
                 descriptions: Sequence[str] | None = None,
                 tags: Mapping[str, str] | None = None,
                 band_tags: Sequence[Mapping[str, str]] | None = None,
                 units: Sequence[str] | str | None = None,
                 colormap: Mapping[int, tuple] | None = None, compress: str = "deflate",
                 tile: int = 256, cache_mb: int = 256):
        self.path, self.grid, self.count, self.dtype = os.fspath(path), grid, int(count), dtype
        if np.issubdtype(np.dtype(dtype), np.integer) and nodata is not None and np.isnan(nodata):
            nodata = None
        self.nodata, self.descriptions, self.tags = nodata, descriptions, tags
        self.band_tags, self.colormap, self.compress = band_tags, colormap, compress
        self.units = [units] * self.count if isinstance(units, str) else units
        self.tile, self.cache_mb = int(tile), int(cache_mb)
        self._ds = self._tmp = self._env = None

    def __enter__(self) -> "TiledWriter":
        import tempfile

        folder, name = os.path.split(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tiled.tmp.tif", dir=folder)
        os.close(fd)
        self._tmp = tmp
        self._env = rasterio.Env(GDAL_CACHEMAX=self.cache_mb * 2 ** 20)
        self._env.__enter__()
        g = self.grid
        tiled = g.width >= self.tile and g.height >= self.tile
        self._ds = rasterio.open(
            tmp, "w", driver="GTiff", width=g.width, height=g.height, count=self.count,
            dtype=self.dtype, crs=g.crs, transform=g.transform, nodata=self.nodata,
            tiled=tiled, BIGTIFF="IF_SAFER",
            **({"blockxsize": self.tile, "blockysize": self.tile} if tiled else {}))
        return self

    def write(self, bands: np.ndarray | Sequence[np.ndarray], row: int) -> None:
        """Write rows ``row .. row + h`` of every band: ``bands`` is (h, W) or (B, h, W)."""
        arr = np.asarray(bands)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.shape[0] != self.count or arr.shape[2] != self.grid.width \
                or not 0 <= row <= self.grid.height - arr.shape[1]:
            raise ValueError(f"block {arr.shape} at row {row} does not fit a "
                             f"{self.count}-band {self.grid.shape} raster")
        nd = self.nodata
        if nd is not None and not (isinstance(nd, float) and np.isnan(nd)) \
                and np.issubdtype(arr.dtype, np.floating):
            arr = np.where(np.isnan(arr), nd, arr)
        self._ds.write(arr.astype(self.dtype, copy=False),
                       window=Window(0, row, self.grid.width, arr.shape[1]))

    def __exit__(self, exc_type, exc, tb) -> bool:
        from rasterio.shutil import copy as gdal_copy

        try:
            ds, self._ds = self._ds, None
            if exc_type is None:
                if self.tags:
                    ds.update_tags(**{k: str(v) for k, v in self.tags.items()})
                for i in range(self.count):
                    if self.descriptions:
                        ds.set_band_description(i + 1, self.descriptions[i])
                    bt = dict(self.band_tags[i]) if self.band_tags else {}
                    if self.units:
                        bt.setdefault("units", self.units[i])
                        ds.set_band_unit(i + 1, self.units[i])
                    if bt:
                        ds.update_tags(i + 1, **{k: str(v) for k, v in bt.items()})
                if self.colormap:
                    ds.write_colormap(1, self.colormap)
            ds.close()
            if exc_type is None:
                opts = dict(compress=self.compress, BIGTIFF="IF_SAFER",
                            overview_resampling="nearest" if self.colormap else "average")
                if np.issubdtype(np.dtype(self.dtype), np.floating):
                    opts["predictor"] = 3
                with atomic_file(self.path) as out:
                    gdal_copy(self._tmp, out, driver="COG", **opts)
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)
            self._env.__exit__(exc_type, exc, tb)
        return False


def vectors_to_crs(vx: np.ndarray, vy: np.ndarray, grid: Grid, crs) -> tuple[np.ndarray, np.ndarray]:
    """Re-express vectors given along ``grid``'s axes (x east, y north, in grid metres) along
    the axes of ``crs`` in ground metres, at each pixel of ``grid``.

    A projected grid's north is not true north away from its central meridian (meridian
    convergence), and its metres are not ground metres (point scale factor). Both come from
    PROJ here, by moving a step north and east at each pixel: the vector is rotated to true
    east/north and divided by the scale; for a projected ``crs`` it is then rotated onto that
    CRS's grid axes (still in ground metres). A geographic ``crs`` gets true east/north.

    Examples
    --------
    >>> from affine import Affine
    >>> g = Grid(CRS.from_epsg(32633), Affine(1000, 0, 700000, 0, -1000, 8700000), 1, 1)
    >>> e, n = vectors_to_crs(np.array([[0.0]]), np.array([[1.0]]), g, "EPSG:4326")
    >>> bool(e[0, 0] > 0.05), round(float(np.hypot(e, n)[0, 0]), 3)   # grid north points east of true north
    (True, 1.0)
    """
    from pyproj import Geod, Transformer

    dst = CRS.from_user_input(crs)
    rows, cols = np.indices(grid.shape)
    x, y = grid.xy(rows.ravel(), cols.ravel())
    x, y = np.asarray(x, float), np.asarray(y, float)
    to_ll = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(x, y)
    step = 0.5 * min(abs(grid.res[0]), abs(grid.res[1]))
    # True bearing and ground length of a grid step along x and along y.
    geod = Geod(ellps="WGS84")
    bear, length = [], []
    for dx, dy in ((step, 0.0), (0.0, step)):
        lo2, la2 = to_ll.transform(x + dx, y + dy)
        az, _, dist = geod.inv(lon, lat, lo2, la2)
        bear.append(np.radians(az))
        length.append(dist / step)
    u, v = np.asarray(vx, float).ravel(), np.asarray(vy, float).ravel()
    east = u * length[0] * np.sin(bear[0]) + v * length[1] * np.sin(bear[1])
    north = u * length[0] * np.cos(bear[0]) + v * length[1] * np.cos(bear[1])
    if not dst.is_geographic:
        # Bearing of the target grid's north at each point: rotate true east/north onto it.
        to_dst = Transformer.from_crs("EPSG:4326", dst, always_xy=True)
        X, Y = to_dst.transform(lon, lat)
        Xn, Yn = to_dst.transform(lon, np.minimum(lat + 1e-4, 90.0))
        gamma = np.arctan2(Xn - X, Yn - Y)      # grid bearing of true north
        c, s = np.cos(gamma), np.sin(gamma)
        east, north = east * c + north * s, -east * s + north * c
    return east.reshape(grid.shape), north.reshape(grid.shape)
