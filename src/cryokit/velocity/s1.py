"""Sentinel-1 products in (the I/O edge for SAFE folders and zips): calibrated sigma0 on a DEM grid.

Each product is read with xarray-sentinel (annotation, calibration, geolocation grid, orbit
state vectors, sensing times) and terrain-corrected onto the grid of the DEM by sarsen's
range-Doppler geocoding with the product's own orbit, so that every date of a series lands on
one map grid and the terrain's layover and foreshortening are the same in all of them. The
heading and incidence angle at the grid centre come from the orbit (:mod:`.orbit`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..core.errors import UserError
from ..core.raster import Grid, read_band, read_grid, write_cog
from . import orbit

# S1A_IW_GRDH_1SDV_20210401T052623_20210401T052648_026269_032297_ECC8
_NAME = re.compile(r"S1[A-D]_(IW|EW|WV|S[1-6])_(GRD[FHM]|SLC_)_\w{4}_(\d{8}T\d{6})_(\d{8}T\d{6})"
                   r"_\d{6}_[0-9A-F]{6}_[0-9A-F]{4}")
CO_POL = ("VV", "HH")


def is_product(path: str | os.PathLike) -> bool:
    """True for a Sentinel-1 SAFE folder, its ``manifest.safe`` or a zipped SAFE."""
    p = Path(path)
    if p.name == "manifest.safe":
        p = p.parent
    return bool(_NAME.match(p.name)) and (p.is_dir() or p.suffix.lower() == ".zip"
                                          or p.suffix.upper() == ".SAFE")


def product_name(path: str | os.PathLike) -> str:
    """The product identifier (the SAFE name without ``.SAFE`` or ``.zip``)."""
    p = Path(path)
    if p.name == "manifest.safe":
        p = p.parent
    m = _NAME.match(p.name)
    return m.group(0) if m else p.name.split(".")[0]


def _urlpath(path: str | os.PathLike) -> str:
    p = Path(path)
    if p.name == "manifest.safe":
        p = p.parent
    if not p.exists():
        raise UserError("file not found", p)
    if p.is_dir():
        if not (p / "manifest.safe").exists():
            raise UserError("is not a SAFE folder (no manifest.safe)", p)
        return os.fspath(p)
    return f"zip://*/manifest.safe::{os.fspath(p)}"


@contextmanager
def safe_folder(path: str | os.PathLike, polarisation: str, workdir: str | os.PathLike):
    """The SAFE folder of ``path``; a zip is unpacked (manifest, annotation and the one
    polarisation's measurement) into a temporary folder under ``workdir``, removed after.
    xarray-sentinel reads a zip's annotation but not its measurement TIFF."""
    p = Path(path)
    if p.name == "manifest.safe":
        p = p.parent
    if p.is_dir():
        yield p
        return
    import zipfile

    tag = f"-{polarisation.lower()}-"
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".unzip-") as tmp:
        try:
            with zipfile.ZipFile(p) as z:
                names = [n for n in z.namelist() if n.endswith("manifest.safe")
                         or "/annotation/" in n or ("/measurement/" in n and tag in n)]
                if not any(n.endswith("manifest.safe") for n in names):
                    raise UserError("is not a zipped SAFE product (no manifest.safe)", p)
                z.extractall(tmp, names)
        except zipfile.BadZipFile as e:
            raise UserError(f"not a valid zip archive ({e})", p) from None
        safe = next(Path(tmp).rglob("manifest.safe")).parent
        yield safe


def _open(path, group: str | None = None):
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return xr.open_dataset(_urlpath(path), engine="sentinel-1", group=group)
        except UserError:
            raise
        except (OSError, ValueError, KeyError, SyntaxError) as e:
            what = f"group {group}" if group else "product"
            raise UserError(f"cannot read the Sentinel-1 {what}: "
                            f"{' '.join(str(e).split())[:160]}", path) from None


def describe(path: str | os.PathLike, polarisation: str | None = None) -> dict:
    """What the product is: mission, mode, type, pass, orbit, sensing times and the measurement
    group to geocode (``polarisation`` or the co-polarisation, VV or HH)."""
    root = _open(path).attrs
    ptype, mode = root["product_type"], root["mode"]
    pols = list(root["transmitter_receiver_polarisations"])
    pol = (polarisation or next((p for p in CO_POL if p in pols), pols[0])).upper()
    if pol not in pols:
        raise UserError(f"has no {pol} polarisation (it has {', '.join(pols)})", path)
    if ptype == "GRD":
        swath = root["swaths"][0]
    elif ptype == "SLC" and mode not in ("IW", "EW", "WV"):
        swath = root["swaths"][0]     # stripmap SLC: one continuous image
    else:
        raise UserError(f"{mode} {ptype} products are not supported: TOPS bursts must be "
                        "debursted first; use the GRD product of the same acquisition", path)
    start, stop = (dt.datetime.fromisoformat(root[k]) for k in ("start_time", "stop_time"))
    return {"product": product_name(path), "mission": f"Sentinel-1{root['number']}",
            "mode": mode, "product_type": ptype, "polarisation": pol,
            "group": f"{swath}/{pol}", "pass": root["pass"].lower(),
            "relative_orbit": int(root["relative_orbit_number"]),
            "absolute_orbit": int(root["orbit_number"]),
            "start": start, "stop": stop, "mid": start + (stop - start) / 2}


def _sar_product(path, group: str, calibrated: bool):
    from sarsen.sentinel1 import Sentinel1SarProduct

    class _Sigma0(Sentinel1SarProduct):
        # sarsen geocodes what beta_nought returns; give it sigma0 (or DN^2 uncalibrated).
        def beta_nought(self, persist: bool = False):
            import xarray_sentinel

            m = self.measurement.data_vars["measurement"]
            if calibrated:
                s0 = xarray_sentinel.calibrate_intensity(m, self.calibration.sigmaNought)
            else:
                s0 = (abs(m) ** 2).astype("float32")
            return s0.where(abs(m) > 0).drop_vars(["pixel", "line"], errors="ignore")

    return _Sigma0(_urlpath(path), measurement_group=group)


def _has_calibration(path, group: str) -> bool:
    try:
        _open(path, f"{group}/calibration")
    except UserError:
        return False
    return True


def _centre_lonlat(grid: Grid) -> tuple[float, float]:
    from pyproj import Transformer

    x, y = grid.xy(grid.height / 2 - 0.5, grid.width / 2 - 0.5)
    return Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(float(x), float(y))


def geometry(path, group: str, grid: Grid, height: float) -> dict:
    """Heading, look side, incidence (centre and range over the grid corners) and slant range
    at the grid from the product's orbit state vectors. ``heading_deg`` is a bearing on the
    grid (from grid north), the frame of the range/azimuth components; ``heading_true_deg``
    from true north."""
    from pyproj import Transformer

    orb = _open(path, f"{group}/orbit")
    t = orb.azimuth_time.values
    ts = (t - t[0]) / np.timedelta64(1, "s")
    pos, vel = orb.position.values.T, orb.velocity.values.T
    to_ll = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    lon, lat = _centre_lonlat(grid)
    centre = orbit.view_geometry(ts, pos, vel, lon, lat, height)
    corners = []
    for r, c in ((0, 0), (0, grid.width - 1), (grid.height - 1, 0),
                 (grid.height - 1, grid.width - 1)):
        x, y = grid.xy(r, c)
        clon, clat = to_ll.transform(float(x), float(y))
        corners.append(orbit.view_geometry(ts, pos, vel, clon, clat, height)["incidence_deg"])
    gamma = grid_convergence(grid.crs, lon, lat)
    return {"heading_deg": round(centre["heading_deg"] - gamma, 4),
            "heading_true_deg": round(centre["heading_deg"], 4),
            "grid_convergence_deg": round(gamma, 4), "look": centre["look"],
            "incidence_deg": round(centre["incidence_deg"], 3),
            "incidence_range_deg": [round(min(corners), 3), round(max(corners), 3)],
            "slant_range_m": round(centre["slant_range_m"], 1),
            "centre_lonlat": [round(lon, 6), round(lat, 6)],
            "zero_doppler_time": str(t[0] + np.timedelta64(int(centre["time_s"] * 1e9), "ns"))}


def grid_convergence(crs, lon: float, lat: float) -> float:
    """Degrees from true north to the grid's north at a point, clockwise (a bearing on the map
    is the true bearing minus this): 1.2 deg in UTM 32N at 10.65 E, 46.6 N."""
    from pyproj import Geod, Transformer

    to_grid = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    lon2, lat2, _ = Geod(ellps="WGS84").fwd(lon, lat, 0.0, 1000.0)
    (x1, x2), (y1, y2) = to_grid.transform([lon, lon2], [lat, lat2])
    return -float(np.degrees(np.arctan2(x2 - x1, y2 - y1)))


def geocode(path: str | os.PathLike, dem: str | os.PathLike, out: str | os.PathLike,
            polarisation: str | None = None, interp: str = "linear", stamp: str = "",
            info: dict | None = None) -> dict:
    """Terrain-correct one product's sigma0 (linear intensity) onto the grid of ``dem`` and write
    it to ``out`` (GeoTIFF, NaN outside the swath); return its description and geometry.

    The DEM heights are taken as ellipsoidal (what sarsen's range-Doppler solution needs); a
    geoid-referenced DEM shifts every date of a series alike, so pair offsets do not change.
    ``interp`` is linear by default: nearest-neighbour resampling would lock the tracked
    offsets to whole pixels.
    """
    info = info or describe(path, polarisation)
    with safe_folder(path, info["polarisation"], Path(out).parent) as safe:
        return _geocode(safe, dem, out, info, interp, os.fspath(path), stamp)


def _geocode(path, dem, out, info, interp, source, stamp="") -> dict:
    from sarsen import apps, scene

    grid = read_grid(dem)
    if grid.crs is None or grid.crs.is_geographic:
        raise UserError("needs a DEM in a projected CRS (metres): its grid is the grid of the "
                        "geocoded images (prepare_series warps a geographic one)", dem)
    calibrated = _has_calibration(path, info["group"])
    if not calibrated:
        warnings.warn(f"{source}: no calibration annotation for {info['group']}; tracking on "
                      "uncalibrated DN^2", stacklevel=2)
    heights = read_band(dem)
    if not np.isfinite(heights).any():
        raise UserError("has no valid height", dem)
    h0 = float(np.nanmedian(heights))
    product = _sar_product(path, info["group"], calibrated)
    dem_raster = scene.open_dem_raster(os.fspath(dem), chunks=None).fillna(h0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sigma0, _ = apps.do_terrain_correction(product=product, dem_raster=dem_raster,
                                               interp_method=interp)
        values = np.asarray(sigma0.transpose("y", "x").values, np.float32)
    if sigma0.y.values[0] < sigma0.y.values[-1]:     # sarsen works south-up
        values = values[::-1]
    values[~(values > 0)] = np.nan
    if not np.isfinite(values).any():
        raise UserError(f"does not cover the DEM {dem}", path)
    geo = geometry(path, info["group"], grid, h0)
    tags = {"ACQUISITION_DATE": info["mid"].isoformat(), "start_time": info["start"].isoformat(),
            "stop_time": info["stop"].isoformat(), "source_product": info["product"],
            "polarisation": info["polarisation"], "pass": info["pass"],
            "relative_orbit": info["relative_orbit"], "heading_deg": geo["heading_deg"],
            "incidence_deg": geo["incidence_deg"], "look": geo["look"],
            "calibration": "sigma0" if calibrated else "uncalibrated DN^2",
            "geocoding": f"sarsen range-Doppler terrain correction on {os.path.basename(dem)}",
            "cryokit_inputs": stamp}
    result = {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
              for k, v in (info | geo | {"calibrated": calibrated, "source": source}).items()}
    write_cog(out, values, grid, units="1", tags=tags | {"cryokit_geometry": json.dumps(result)},
              descriptions=[f"sigma0 {info['polarisation']} (linear)" if calibrated
                            else f"DN^2 {info['polarisation']} (uncalibrated)"])
    return result | {"file": os.fspath(out)}


# ----------------------------------------------------------------------------- a series

def _stamp(path, dem_digest: str, pol: str | None) -> str:
    """What a geocoded image depends on; a SAFE's size and time stand for its content (hashing
    gigabytes of measurement on every resume would cost more than it saves)."""
    from .. import __version__

    p = Path(path)
    files = sorted(p.rglob("*")) if p.is_dir() else [p]
    size = sum(f.stat().st_size for f in files if f.is_file())
    mtime = max((f.stat().st_mtime for f in files if f.is_file()), default=0)
    return json.dumps({"product": product_name(p), "size": size, "mtime": round(mtime, 3),
                       "dem": dem_digest, "polarisation": pol, "software": __version__},
                      sort_keys=True)


def check_series(products: list[str], dem: str | None, polarisation: str | None) -> list[dict]:
    """Describe every product of a series; UserError when one is unreadable, when there is no
    DEM, or when the products come from different tracks (their geometry differs)."""
    if dem is None:
        raise UserError("Sentinel-1 products need --dem: they are terrain-corrected onto the "
                        "DEM's grid (a geographic DEM's UTM zone)", products[0])
    infos = [describe(p, polarisation) for p in products]
    tracks = {(i["relative_orbit"], i["pass"]) for i in infos}
    if len(tracks) > 1:
        raise UserError("the products come from different tracks (relative orbit, pass: "
                        + "; ".join(f"{o} {p}" for o, p in sorted(tracks))
                        + "); track one track at a time", products[0])
    return infos


def projected_dem(dem: str | os.PathLike, workdir: Path) -> str:
    """``dem`` where it is projected; a geographic DEM (e.g. Copernicus GLO-30 in EPSG:4326)
    warped bilinearly to its UTM zone as ``workdir/dem_EPSG.tif`` (kept while the DEM is the
    same), whose grid the products are then geocoded onto."""
    from ..core.outputs import file_digest
    from ..core.raster import projected_grid, reproject_band

    grid = read_grid(dem)
    if grid.crs is None:
        raise UserError("has no coordinate reference system", dem)
    target = projected_grid(grid)
    if target is grid:
        return os.fspath(dem)
    out = workdir / f"dem_{target.crs.to_epsg()}.tif"
    digest = file_digest(dem)
    if out.exists():
        import rasterio

        with rasterio.open(out) as ds:
            if ds.tags().get("source_digest") == digest:
                return os.fspath(out)
    write_cog(out, reproject_band(dem, target), target, units="m",
              tags={"source": os.path.abspath(dem), "source_digest": digest},
              descriptions=["height (m), as in the source DEM, warped bilinearly"])
    return os.fspath(out)


def prepare_series(products: list[str], workdir: str | os.PathLike, dem: str,
                   polarisation: str | None = None) -> tuple[list[str], list[dict]]:
    """Geocode every product onto the DEM grid as ``workdir/{product}_{pol}_sigma0.tif``; an
    image already made from the same product, DEM and settings is kept (a resumed run)."""
    from ..core.outputs import file_digest

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    dem = projected_dem(dem, work)
    dem_digest = file_digest(dem)
    paths, geoms = [], []
    for p in products:
        info = describe(p, polarisation)
        out = work / f"{info['product']}_{info['polarisation']}_sigma0.tif"
        stamp = _stamp(p, dem_digest, info["polarisation"])
        if out.exists():
            import rasterio

            with rasterio.open(out) as ds:
                tags = ds.tags()
            if tags.get("cryokit_inputs") == stamp:
                geoms.append(json.loads(tags["cryokit_geometry"]) | {"file": os.fspath(out)})
                paths.append(os.fspath(out))
                continue
        g = geocode(p, dem, out, info["polarisation"], stamp=stamp, info=info)
        paths.append(os.fspath(out))
        geoms.append(g)
    return paths, geoms
