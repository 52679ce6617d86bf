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
