"""CF-1.8 NetCDF cubes on a raster grid: the grid-mapping variable and the atomic write.

Used by the products that write a cube beside their GeoTIFFs (``cryokit sar-velocity``'s
``velocity_cube.nc``, ``cryokit sbas``'s ``timeseries.nc``), so both carry the CRS the same
way (a scalar ``spatial_ref`` variable with ``crs_wkt``, ``spatial_ref`` and a GDAL
``GeoTransform``, which GDAL, QGIS, rioxarray and CF readers all understand) and are written
the same way (temporary name then rename, h5netcdf, deflate level 4, dates as float days
since the first date).
"""

from __future__ import annotations

import datetime as dt
import os

import numpy as np

from .atomic import atomic_file
from .raster import Grid

#: attributes linking a data variable to :func:`spatial_ref`
GRID_MAPPING = {"grid_mapping": "spatial_ref"}


def spatial_ref(grid: Grid) -> tuple:
    """The ``spatial_ref`` variable of a cube on ``grid`` (as an xarray ``(dims, data, attrs)``
    tuple): CRS as WKT and the GDAL geotransform."""
    wkt = grid.crs.to_wkt()
    return ((), np.int32(0), {"crs_wkt": wkt, "spatial_ref": wkt,
                              "GeoTransform": " ".join(str(v) for v in
                                                       grid.transform.to_gdal())})


def xy_coords(grid: Grid) -> dict:
    """CF ``x`` and ``y`` coordinates (pixel centres) of ``grid`` as xarray coordinate tuples,
    with units and standard names for a geographic or a projected CRS."""
    rows, cols = np.arange(grid.shape[0]), np.arange(grid.shape[1])
    x, _ = grid.xy(np.zeros_like(cols), cols)
    _, y = grid.xy(rows, np.zeros_like(rows))
    if grid.crs is not None and grid.crs.is_geographic:
        xa = {"units": "degrees_east", "standard_name": "longitude"}
        ya = {"units": "degrees_north", "standard_name": "latitude"}
    else:
        unit = "m"
        if grid.crs is not None and grid.crs.linear_units not in ("metre", "meter", "unknown", None):
            unit = grid.crs.linear_units
        xa = {"units": unit, "standard_name": "projection_x_coordinate"}
        ya = {"units": unit, "standard_name": "projection_y_coordinate"}
    return {"x": ("x", np.asarray(x, float), xa), "y": ("y", np.asarray(y, float), ya)}


def write_cube(ds, path: str | os.PathLike, since: dt.date) -> None:
    """Write the xarray Dataset ``ds`` to ``path`` atomically with h5netcdf.

    Every array data variable that is not a date is deflated (level 4); every date variable
    (coordinates and bounds alike) is stored as float64 days since ``since``.
    """
    units = f"days since {since.isoformat()} 00:00:00"
    enc = {}
    for name, var in ds.variables.items():
        if np.issubdtype(var.dtype, np.datetime64):
            enc[name] = {"units": units, "dtype": "float64"}
        elif name in ds.data_vars and var.ndim > 0:
            enc[name] = {"zlib": True, "complevel": 4}
    with atomic_file(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc)


def write_zarr(ds, path: str | os.PathLike, chunks: dict | None = None) -> None:
    """Write the xarray Dataset ``ds`` as a Zarr v3 store at ``path``: built in a hidden
    temporary folder beside it, then renamed (an earlier store is replaced whole). Version 3
    keeps no hidden files (v2 has ``.zarray``, ``.zattrs``...), so the product's file list
    holds the whole store. Its metadata is consolidated into the root ``zarr.json`` (what
    ``xarray.open_zarr`` looks for first), which zarr-python writes with a warning that
    consolidation is not part of the v3 specification yet; the warning is not the user's
    concern and is silenced here.

    ``chunks`` maps dimension names to chunk lengths for the array variables (dimensions not
    named are one chunk), e.g. the whole time axis by small tiles for time-series reads.
    """
    import shutil
    import tempfile
    import warnings
    from pathlib import Path

    path = Path(path)
    # Fixed-width unicode has no Zarr v3 data type yet; variable-length strings do.
    text = [n for n, v in ds.variables.items() if v.dtype.kind == "U"]
    if text:
        ds = ds.copy()
        for n in text:
            if n in ds.coords:
                ds = ds.assign_coords({n: ds[n].astype(object)})
            else:
                ds[n] = ds[n].astype(object)
    enc = {}
    for name, var in ds.data_vars.items():
        if var.ndim and chunks:
            enc[name] = {"chunks": tuple(min(chunks.get(d, n), n) for d, n in var.sizes.items())}
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not")
            ds.to_zarr(tmp / "store", mode="w", encoding=enc, zarr_format=3, consolidated=True)
        if path.exists():
            old = tmp / "old"
            os.replace(path, old)
        os.replace(tmp / "store", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
