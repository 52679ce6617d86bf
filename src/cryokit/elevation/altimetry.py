"""Altimetry points as a check of the DEMs: ICESat-2 ATL06, ICESat GLAH14 and point tables.

Readers return :class:`Points` (longitude/latitude or x/y in ``crs``, heights, times, the vertical
reference they are on, and the quality rule applied). :func:`point_stats` is the comparison
itself (pure numpy). The product samples its grids at the points and reports the bias and
NMAD of each DEM against them on stable terrain (:mod:`.product`).

- ATL06 (Land Ice Along-Track Height): the six beams' ``land_ice_segments`` ``latitude``,
  ``longitude``, ``h_li`` (m above the WGS84 ellipsoid), ``delta_time`` (s since
  ``ancillary_data/atlas_sdp_gps_epoch``, GPS) and ``atl06_quality_summary`` (0 = no problem
  found: the segments kept).
- GLAH14 (GLAS/ICESat L2 land surface altimetry, HDF5 releases): ``Data_40HZ`` ``d_lat``,
  ``d_lon``, ``d_elev`` (m above the TOPEX/Poseidon ellipsoid, converted to WGS84 by PROJ),
  ``DS_UTCTime_40`` (s since 2000-01-01 12:00 UTC), ``elev_use_flg`` (0 kept) and, when
  present, the saturation correction ``d_satElevCorr`` added where ``sat_corr_flg`` < 3.
- Tables (CSV, Parquet, any OGR vector): columns ``x``/``y`` or ``lon``/``lat`` (or point
  geometries), ``z``/``h``/``height``/``elevation``, optional ``date``/``time`` and ``datum``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..core.errors import UserError
from ..core.robust import nmad

__all__ = ["Points", "read_points", "point_stats"]

BEAMS = ("gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r")
GPS_EPOCH = np.datetime64("1980-01-06T00:00:00", "ns")
GPS_UTC_LEAP_S = 18            # GPS - UTC since 2017-01-01 (ICESat-2 launched 2018)
J2000 = np.datetime64("2000-01-01T12:00:00", "ns")
TOPEX = "+proj=longlat +a=6378136.3 +rf=298.257 +no_defs +type=crs"
_FILL = 1e30                   # ATL06 and GLAS fill values are 3.4e38 and 1.8e308


@dataclass(frozen=True)
class Points:
    """Altimetry or survey points: coordinates in ``crs``, heights ``z`` (m) on ``vref``."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    time: np.ndarray | None       # datetime64[ns] (UTC) or None
    crs: str
    vref: str                     # ellipsoid, a geoid name, or a geoid grid file
    source: str                   # what they are
    rule: str                     # the quality rule applied
    n_read: int                   # points in the file before the rule

    def __len__(self) -> int:
        return int(self.z.size)


def _h5(path):
    import h5py
    try:
        return h5py.File(path, "r")
    except OSError:
        raise UserError("not an HDF5 file h5py can read", path) from None


def read_atl06(path) -> Points:
    """The good segments (quality summary 0, no fill value) of all beams of an ATL06 file."""
    xs, ys, zs, ts, n = [], [], [], [], 0
    with _h5(path) as f:
        epoch = float(np.asarray(f["ancillary_data/atlas_sdp_gps_epoch"]).ravel()[0]) \
            if "ancillary_data/atlas_sdp_gps_epoch" in f else 1198800018.0
        for beam in BEAMS:
            g = f.get(f"{beam}/land_ice_segments")
            if g is None:
                continue
            try:
                lat, lon = np.asarray(g["latitude"], float), np.asarray(g["longitude"], float)
                h = np.asarray(g["h_li"], float)
                q = np.asarray(g["atl06_quality_summary"])
                t = np.asarray(g["delta_time"], float)
            except KeyError as e:
                raise UserError(f"{beam}/land_ice_segments has no {e.args[0]}: not ATL06",
                                path) from None
            n += h.size
            ok = (q == 0) & np.isfinite(h) & (np.abs(h) < _FILL)
            xs.append(lon[ok]), ys.append(lat[ok]), zs.append(h[ok])
            sec = (epoch + t[ok] - GPS_UTC_LEAP_S) * 1e9
            ts.append(GPS_EPOCH + sec.astype("int64").astype("timedelta64[ns]"))
    if n == 0:
        raise UserError("has no gt*/land_ice_segments group: not an ICESat-2 ATL06 file", path)
    return Points(np.concatenate(xs), np.concatenate(ys), np.concatenate(zs),
                  np.concatenate(ts), "EPSG:4326", "ellipsoid", "ICESat-2 ATL06",
                  "atl06_quality_summary == 0, h_li not the fill value", n)


def read_glah14(path) -> Points:
    """GLAS/ICESat GLAH14 40 Hz land elevations, on the WGS84 ellipsoid."""
    from pyproj import Transformer
    with _h5(path) as f:
        try:
            g = f["Data_40HZ"]
            lat = np.asarray(g["Geolocation/d_lat"], float)
            lon = np.asarray(g["Geolocation/d_lon"], float)
            h = np.asarray(g["Elevation_Surfaces/d_elev"], float)
            use = np.asarray(g["Quality/elev_use_flg"])
            t = np.asarray(g["DS_UTCTime_40"], float)
        except KeyError as e:
            raise UserError(f"has no Data_40HZ/{e.args[0]}: not a GLAH14 file", path) from None
        sat = np.zeros(h.size)
        if "Elevation_Corrections/d_satElevCorr" in g and "Quality/sat_corr_flg" in g:
            corr = np.asarray(g["Elevation_Corrections/d_satElevCorr"], float)
            flag = np.asarray(g["Quality/sat_corr_flg"])
            sat = np.where((flag < 3) & (np.abs(corr) < _FILL), corr, np.nan)
    ok = (use == 0) & np.isfinite(h) & (np.abs(h) < _FILL) & np.isfinite(sat)
    lon = np.where(lon > 180, lon - 360, lon)
    to_wgs84 = Transformer.from_crs(f"{TOPEX} +vunits=m", "EPSG:4979", always_xy=True)
    x, y, z = to_wgs84.transform(lon[ok], lat[ok], h[ok] + sat[ok])
    sec = (t[ok] * 1e9).astype("int64").astype("timedelta64[ns]")
    return Points(np.asarray(x), np.asarray(y), np.asarray(z), J2000 + sec, "EPSG:4326",
                  "ellipsoid", "ICESat GLAH14",
                  "elev_use_flg == 0, saturation correction added (sat_corr_flg < 3), "
                  "TOPEX/Poseidon ellipsoid to WGS84", int(h.size))


_X, _Y = ("x", "easting", "lon", "longitude"), ("y", "northing", "lat", "latitude")
_Z = ("z", "h", "height", "elevation", "h_li", "h_ell")
_T = ("time", "datetime", "date", "acquisition_time")


def _column(cols, names):
    low = {c.lower(): c for c in cols}
    return next((low[n] for n in names if n in low), None)


def read_table(path, crs: str | None = None, vref: str | None = None) -> Points:
    """Points from a CSV, Parquet or vector file (columns named as the module says)."""
    import pandas as pd
    ext = os.path.splitext(str(path))[1].lower()
    geo = None
    try:
        if ext in (".csv", ".txt"):
            df = pd.read_csv(path)
        elif ext in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            import geopandas as gpd
            geo = gpd.read_file(path)
            df = pd.DataFrame(geo.drop(columns=geo.geometry.name))
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - any reader failure is a user error about this file
        raise UserError("not a point table cryokit can read (CSV, Parquet or a vector file)",
                        path) from None
    zc = _column(df.columns, _Z)
    xc, yc = _column(df.columns, _X), _column(df.columns, _Y)
    if geo is not None and (xc is None or yc is None) and len(geo):
        df["x"], df["y"] = geo.geometry.x.to_numpy(), geo.geometry.y.to_numpy()
        xc, yc = "x", "y"
        if zc is None and geo.geometry.has_z.all():
            df["z"], zc = geo.geometry.z.to_numpy(), "z"
        crs = crs or (geo.crs.to_string() if geo.crs is not None else None)
    if xc is None or yc is None or zc is None:
        raise UserError(f"needs x/y (or lon/lat) and z (or h, height, elevation) columns; has "
                        f"{', '.join(map(str, df.columns))}", path)
    if crs is None:
        if xc.lower() in ("lon", "longitude"):
            crs = "EPSG:4326"
        else:
            raise UserError("has x/y columns but no CRS: give --points-crs", path)
    dc = _column(df.columns, ("datum", "vref", "vertical_reference"))
    if dc is not None:
        named = df[dc].dropna().astype(str).str.strip().unique()
        if len(named) > 1:
            raise UserError(f"column {dc!r} names {len(named)} vertical references "
                            f"({', '.join(named[:4])}): split the table", path)
        if len(named) and vref and named[0].lower() != vref.lower():
            raise UserError(f"column {dc!r} says {named[0]} but --points-vref is {vref}", path)
        vref = vref or (named[0] if len(named) else None)
    tc = _column(df.columns, _T)
    time = None
    if tc is not None:
        time = pd.to_datetime(df[tc], utc=True, errors="coerce").dt.tz_localize(None) \
            .to_numpy("datetime64[ns]")
    z = pd.to_numeric(df[zc], errors="coerce").to_numpy(float)
    x, y = (pd.to_numeric(df[c], errors="coerce").to_numpy(float) for c in (xc, yc))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    return Points(x[ok], y[ok], z[ok], None if time is None else time[ok], crs,
                  vref or "ellipsoid", f"point table {os.path.basename(str(path))}",
                  "rows with finite x, y, z", int(z.size))


def read_points(path, crs: str | None = None, vref: str | None = None) -> Points:
    """ATL06, GLAH14 (recognised by their groups) or a point table."""
    if not os.path.exists(path):
        raise UserError("does not exist", path)
    with open(path, "rb") as fh:
        hdf5 = fh.read(8) == b"\x89HDF\r\n\x1a\n"
    if hdf5:
        with _h5(path) as f:
            kind = ("atl06" if any(f"{b}/land_ice_segments" in f for b in BEAMS)
                    else "glah14" if "Data_40HZ" in f else None)
        if kind is None:
            raise UserError("is HDF5 but neither ICESat-2 ATL06 (gt*/land_ice_segments) nor "
                            "ICESat GLAH14 (Data_40HZ)", path)
        if vref not in (None, "ellipsoid"):
            raise UserError(f"--points-vref {vref}: {kind.upper()} heights are ellipsoidal",
                            path)
        pts = read_atl06(path) if kind == "atl06" else read_glah14(path)
    else:
        pts = read_table(path, crs, vref)
    if len(pts) == 0:
        raise UserError(f"no point passes the quality rule ({pts.rule}) out of {pts.n_read}",
                        path)
    return pts


def point_stats(dem_z: np.ndarray, pts_z: np.ndarray) -> dict:
    """Bias (median of DEM - points), NMAD, mean, std and count of the valid pairs; nulls
    (None) when there is none.

    Examples
    --------
    >>> import numpy as np
    >>> s = point_stats(np.array([1.0, 2.0, np.nan, 4.0]), np.array([0.5, 1.5, 0.0, 3.5]))
    >>> s["median"], s["count"]
    (0.5, 3)
    """
    d = np.asarray(dem_z, float) - np.asarray(pts_z, float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"median": None, "nmad": None, "mean": None, "std": None, "count": 0}
    return {"median": float(np.median(d)), "nmad": float(nmad(d)), "mean": float(d.mean()),
            "std": float(d.std()), "count": int(d.size)}


def time_range(t: np.ndarray | None) -> list[str] | None:
    """First and last time as ISO strings (UTC), or None."""
    if t is None:
        return None
    t = t[~np.isnat(t)]
    if t.size == 0:
        return None
    return [str(np.datetime_as_string(v, unit="s")) + "Z" for v in (t.min(), t.max())]
