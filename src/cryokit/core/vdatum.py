"""Vertical references by name: the geoid models DEMs are delivered on, and where PROJ keeps
their grids.

SRTM heights are above EGM96, Copernicus DEM and FABDEM above EGM2008, ArcticDEM and REMA
above the WGS84 ellipsoid, US DEMs above NAVD88 (GEOID18). A geoid model is used through PROJ's
own grid file of geoid undulations N (h = H + N), looked up in ``CRYOKIT_GEOID_DIR``, PROJ's
user directory and PROJ's data directories (``PROJ_DATA``): install it with PROJ's
``projsync --file NAME`` (or copy it there). A geoid grid file can also be given by its path.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError

#: name -> (PROJ grid file of undulations, what it is)
GEOIDS = {
    "egm96": ("us_nga_egm96_15.tif", "EGM96, 15' grid (SRTM, ASTER GDEM heights)"),
    "egm2008": ("us_nga_egm08_25.tif", "EGM2008, 2.5' grid (Copernicus DEM, FABDEM, ALOS)"),
    "navd88": ("us_noaa_g2018u0.tif", "NAVD88 through GEOID18 (conterminous US)"),
}
ALIASES = {"egm08": "egm2008", "ellipsoidal": "ellipsoid", "wgs84": "ellipsoid",
           "geoid18": "navd88"}
NAMES = ("ellipsoid", *GEOIDS)


def search_dirs() -> list[Path]:
    """Where geoid grids are looked for, in order."""
    import pyproj

    dirs = []
    if os.environ.get("CRYOKIT_GEOID_DIR"):
        dirs.append(Path(os.environ["CRYOKIT_GEOID_DIR"]))
    dirs.append(Path(pyproj.datadir.get_user_data_dir()))
    for d in (os.environ.get("PROJ_DATA") or os.environ.get("PROJ_LIB") or "").split(os.pathsep):
        if d:
            dirs.append(Path(d))
    dirs.append(Path(pyproj.datadir.get_data_dir()))
    return list(dict.fromkeys(dirs))


def resolve(vref: str, flag: str = "--vref") -> str:
    """``"ellipsoid"``, or the path of the geoid grid of a named model or a grid file.

    Raises
    ------
    UserError
        An unknown name, or a named model whose grid is not installed (naming the grid file).

    Examples
    --------
    >>> resolve("Ellipsoid"), resolve("wgs84")
    ('ellipsoid', 'ellipsoid')
    """
    v = str(vref).strip()
    key = ALIASES.get(v.lower(), v.lower())
    if key == "ellipsoid":
        return "ellipsoid"
    if key in GEOIDS:
        name, what = GEOIDS[key]
        for d in search_dirs():
            if (d / name).is_file():
                return str(d / name)
        raise UserError(f"{v} ({what}) needs PROJ's geoid grid {name}, which is not installed "
                        f"(looked in {', '.join(str(d) for d in search_dirs())}); install it "
                        f"with 'projsync --file {name}' or give the grid file's path", flag)
    if os.path.isfile(v):
        return v
    raise UserError(f"{v!r} is neither a vertical reference cryokit knows "
                    f"({', '.join(NAMES)}) nor an existing geoid grid file", flag)


def describe(vref: str | None) -> str | None:
    """A vertical reference as the records state it: its name and model, or the file."""
    if vref is None:
        return None
    key = ALIASES.get(str(vref).lower(), str(vref).lower())
    if key == "ellipsoid":
        return "WGS84 ellipsoid"
    if key in GEOIDS:
        return f"{key.upper()} geoid ({GEOIDS[key][0]})"
    return f"geoid grid file {os.path.basename(str(vref))}"


def undulation_at(vref: str, lon, lat):
    """Geoid undulation N (m) of a resolved reference (:func:`resolve`) at points given in
    WGS84 longitude/latitude, interpolated bilinearly; 0 for ``"ellipsoid"``, NaN outside
    the grid."""
    import numpy as np
    import rasterio
    from pyproj import Transformer
    from rasterio.windows import Window
    from scipy import ndimage

    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    if vref == "ellipsoid":
        return np.zeros(lon.shape)
    with rasterio.open(vref) as ds:
        x, y = (Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True).transform(lon, lat)
                if ds.crs is not None and not ds.crs.is_geographic else (lon, lat))
        inv = ~ds.transform
        x, y = np.asarray(x), np.asarray(y)
        col = inv.a * x + inv.b * y + inv.c - 0.5     # pixel-centre coordinates
        row = inv.d * x + inv.e * y + inv.f - 0.5
        c0 = int(max(np.floor(np.nanmin(col)) - 1, 0))
        r0 = int(max(np.floor(np.nanmin(row)) - 1, 0))
        c1 = int(min(np.ceil(np.nanmax(col)) + 2, ds.width))
        r1 = int(min(np.ceil(np.nanmax(row)) + 2, ds.height))
        if c1 <= c0 or r1 <= r0:
            return np.full(lon.shape, np.nan)
        n = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True)
        n = n.astype(float).filled(np.nan)
    out = ndimage.map_coordinates(n, [row - r0, col - c0], order=1, mode="constant",
                                  cval=np.nan)
    inside = (row >= -0.5) & (row <= ds.height - 0.5) & (col >= -0.5) & (col <= ds.width - 0.5)
    return np.where(inside, out, np.nan)
