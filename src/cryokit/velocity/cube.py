"""The velocity cube of a series of optical pairs in the layout of ITS_LIVE's cubes
(Zarr and NetCDF): dimension ``mid_date``, variables ``vx``, ``vy``, ``v``, ``v_error``,
coordinates ``date_dt``, ``acquisition_date_img1/2``, ``satellite_img1/2``, grid mapping
``mapping`` with ``spatial_epsg``."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.dates import days_between
from ..core.raster import Grid
from .product import CONVENTION


def write_pair_cube(out: Path, ngrid: Grid, names, times_pairs, stacks, units: str,
                    sensors) -> list[str]:
    """Write ``velocity_cube.zarr`` and ``velocity_cube.nc`` into ``out``: every pair's ``vx``,
    ``vy``, ``v``, ``v_error`` on (mid_date, y, x) with the ITS_LIVE names and coordinates.

    ``stacks`` are the (P, ny, nx) vx, vy, v_error of the pairs ``names``, ``times_pairs``
    their acquisition (date-)times, ``sensors`` their (satellite 1, satellite 2). Returns the
    files written."""
    import xarray as xr

    from ..core.atomic import atomic_file
    from ..core.cube import write_zarr, xy_coords

    vx, vy, sigma = stacks
    t1 = np.array([np.datetime64(as_datetime(a), "s") for a, _ in times_pairs])
    t2 = np.array([np.datetime64(as_datetime(b), "s") for _, b in times_pairs])
    dt_days = np.array([days_between(a, b) for a, b in times_pairs])
    mid = t1 + ((t2 - t1) / 2).astype("timedelta64[s]")
    order = np.argsort(mid, kind="stable")
    xy = xy_coords(ngrid)
    epsg = ngrid.crs.to_epsg() if ngrid.crs is not None else None
    from pyproj import CRS as ProjCRS

    # CF grid-mapping attributes from PROJ, plus what ITS_LIVE and GDAL read.
    mapping = {k: v for k, v in ProjCRS.from_wkt(ngrid.crs.to_wkt()).to_cf().items()
               if isinstance(v, (str, int, float))}
    mapping.update(spatial_epsg=epsg or 0, spatial_ref=ngrid.crs.to_wkt(),
                   GeoTransform=" ".join(str(v) for v in ngrid.transform.to_gdal()))
    gm = {"grid_mapping": "mapping"}

    def var(a, desc, std=None):
        attrs = {"units": units, "description": desc, **gm}
        if std:
            attrs["standard_name"] = std
        return (("mid_date", "y", "x"), np.asarray(a, np.float32)[order], attrs)

    ds = xr.Dataset(
        {"vx": var(vx, "velocity component in x direction (grid east)", "land_ice_x_velocity"),
         "vy": var(vy, "velocity component in y direction (grid north)", "land_ice_y_velocity"),
         "v": var(np.hypot(vx, vy), "velocity magnitude", "land_ice_speed"),
         "v_error": var(sigma, "velocity magnitude error, 1 sigma"),
         "mapping": ((), np.int32(0), mapping)},
        coords={"mid_date": ("mid_date", mid[order], {"description": "midpoint of the two "
                                                      "acquisitions (UTC)"}),
                "date_dt": ("mid_date", dt_days[order], {"units": "days", "description":
                                                         "time separation of the two images"}),
                "acquisition_date_img1": ("mid_date", t1[order]),
                "acquisition_date_img2": ("mid_date", t2[order]),
                "satellite_img1": ("mid_date", np.array([s[0] for s in sensors])[order]),
                "satellite_img2": ("mid_date", np.array([s[1] for s in sensors])[order]),
                "pair": ("mid_date", np.array(names)[order]), **xy},
        attrs={"Conventions": "CF-1.8", "title": "glacier velocity cube (ITS_LIVE layout)",
               "software": f"cryokit {__version__}", "sign_convention": CONVENTION,
               "time_reference": "UTC"})
    write_zarr(ds, out / "velocity_cube.zarr", {"mid_date": len(names), "y": 32, "x": 32})
    nc_enc = {k: {"zlib": True, "complevel": 4} for k in ("vx", "vy", "v", "v_error")}
    for k in ("mid_date", "acquisition_date_img1", "acquisition_date_img2"):
        nc_enc[k] = {"units": "days since 1970-01-01 00:00:00", "dtype": "float64"}
    with atomic_file(out / "velocity_cube.nc") as tmpf:
        ds.to_netcdf(tmpf, engine="h5netcdf", encoding=nc_enc)
    return ["velocity_cube.zarr", "velocity_cube.nc"]


def as_datetime(t) -> dt.datetime:
    """A date as the date-time of its midnight; a date-time as it is."""
    return t if isinstance(t, dt.datetime) else dt.datetime(t.year, t.month, t.day)


def sensor(path: str) -> str:
    """The satellite of an image, from its name (``Landsat 8``, ``Sentinel-2A``), or
    ``unknown``."""
    name = os.path.basename(path).upper()
    for key, label in (("LC09", "Landsat 9"), ("LC08", "Landsat 8"), ("LC8", "Landsat 8"),
                       ("LE07", "Landsat 7"), ("LE7", "Landsat 7"), ("LT05", "Landsat 5"),
                       ("S2A", "Sentinel-2A"), ("S2B", "Sentinel-2B"), ("S2C", "Sentinel-2C")):
        if name.startswith(key) or f"_{key}" in name:
            return label
    return "unknown"
