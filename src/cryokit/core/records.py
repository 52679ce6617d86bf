"""The product record: metadata JSON (fields of PRODUCTS.md), STAC Item, file listing and sizes.

Every product directory ends with two records written by :func:`write_records`:

- ``metadata.json``: the data-centre record (title, abstract, source, method, quality, time
  span, place, bbox, resolution, format, CRS, file count and size, licence, units, thumbnail,
  keywords);
- ``stac-item.json``: a STAC Item (projection and raster extensions) with one asset per file,
  hrefs relative to the directory.

Quick-look images are drawn by :mod:`cryokit.core.quicklook`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pystac
import rasterio
from pyproj import CRS as ProjCRS, Transformer
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension

from .. import __version__
from .atomic import atomic_file
from .raster import Grid

METADATA_NAME = "metadata.json"
STAC_NAME = "stac-item.json"

_MEDIA = {
    ".png": pystac.MediaType.PNG, ".jpg": pystac.MediaType.JPEG, ".json": pystac.MediaType.JSON,
    ".geojson": pystac.MediaType.GEOJSON, ".nc": pystac.MediaType.NETCDF,
    ".csv": "text/csv", ".gpkg": pystac.MediaType.GEOPACKAGE,
    ".parquet": pystac.MediaType.PARQUET, ".zip": "application/zip",
    ".xml": pystac.MediaType.XML, ".txt": pystac.MediaType.TEXT, ".h5": pystac.MediaType.HDF5,
}
_FORMAT = {
    ".tif": "GeoTIFF", ".tiff": "GeoTIFF", ".nc": "NetCDF", ".csv": "CSV", ".gpkg": "GeoPackage",
    ".parquet": "GeoParquet", ".zip": "ZIP", ".h5": "HDF5", ".geojson": "GeoJSON",
}
_DATA_SUFFIXES = {".tif", ".tiff", ".nc", ".csv", ".gpkg", ".parquet", ".zip", ".h5", ".geojson"}


# --------------------------------------------------------------------------- files

def product_files(outdir: str | os.PathLike) -> list[tuple[str, int]]:
    """Files of a product directory as (relative POSIX path, size in bytes), sorted.

    Hidden files and folders are left out: they are temporary files of
    :func:`cryokit.core.atomic.atomic_file` still being written, not part of the product.
    """
    root = Path(outdir)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith("."):
                p = Path(dirpath) / name
                out.append((p.relative_to(root).as_posix(), p.stat().st_size))
    return sorted(out)


def _is_geotiff(rel: str) -> bool:
    return Path(rel).suffix.lower() in (".tif", ".tiff")


def _tif_info(path: Path) -> dict:
    """Layout, dtype, nodata and per-band description/unit of a GeoTIFF (header only)."""
    with rasterio.open(path) as ds:
        units = [ds.units[i] or ds.tags(i + 1).get("units") or None for i in range(ds.count)]
        return {"cog": ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG",
                "dtype": ds.dtypes[0], "nodata": ds.nodata, "res": ds.res,
                "descriptions": list(ds.descriptions), "units": units}


# --------------------------------------------------------------------------- time and CRS

def _as_datetime(t: dt.date | dt.datetime, *, end: bool = False) -> dt.datetime:
    """UTC datetime; a bare date covers its whole day, so an end date maps to 23:59:59."""
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            return t.replace(tzinfo=dt.timezone.utc)
        return t.astimezone(dt.timezone.utc)
    clock = dt.time(23, 59, 59) if end else dt.time(0, 0, 0)
    return dt.datetime.combine(t, clock, tzinfo=dt.timezone.utc)


def _iso(t: dt.date | dt.datetime) -> str:
    if isinstance(t, dt.datetime):
        return _as_datetime(t).isoformat().replace("+00:00", "Z")
    return t.isoformat()


def _crs_info(grid: Grid) -> dict:
    """Name, EPSG, datum, projection and linear unit of the grid's CRS."""
    if grid.crs is None:
        raise ValueError("grid has no CRS")
    crs = ProjCRS.from_user_input(grid.crs.to_wkt())
    epsg = crs.to_epsg()
    op = crs.coordinate_operation
    if crs.is_geographic or op is None:
        projection = "none (geographic coordinates)"
    elif op.method_name.lower() in op.name.lower():
        projection = op.name
    else:
        projection = f"{op.name} ({op.method_name})"
    unit = crs.axis_info[0].unit_name if crs.axis_info else "unknown"
    datum = crs.geodetic_crs.name if crs.geodetic_crs is not None else None
    return {"name": crs.name, "epsg": epsg, "datum": datum, "projection": projection,
            "unit": unit, "wkt2": None if epsg else crs.to_wkt()}


# --------------------------------------------------------------------------- metadata record

def metadata_record(outdir: str | os.PathLike, *, title: str | Mapping[str, str], abstract: str,
                    source: str, method: str, quality: str | Mapping[str, Any],
                    start: dt.date | dt.datetime, end: dt.date | dt.datetime, grid: Grid,
                    place: str | None = None,
                    altitude_range: tuple[float, float] | None = None,
                    temporal_resolution: str | None = None, licence: str = "CC-BY-4.0",
                    usage: str | None = None, units: str | Mapping[str, str] | None = None,
                    keywords: Iterable[str] = (), thumbnail: str = "quicklook.png",
                    format: str | None = None, extra: Mapping[str, Any] | None = None) -> dict:
    """The metadata record of a product directory (fields of PRODUCTS.md, last section).

    Parameters
    ----------
    outdir : path
        The product directory; file count, size, format, units and thumbnail describe the
        files in it *now*, so call it last (or use :func:`write_records`, which makes the
        count and size include the two record files themselves).
    title : str or dict
        A plain string is taken as English: ``{"en": title}``.
    quality : str or dict
        Measured quality, e.g. ``{"stable_ground_nmad_m_per_yr": 6.8}``.
    start, end : date or datetime
        Time span of the inputs; written as ISO 8601 (naive datetimes are taken as UTC).
    grid : Grid
        Grid of the main rasters: gives bbox (degrees), resolution and coordinate system.
    altitude_range : (low, high), optional
        Metres, where a DEM is involved.
    usage, units : optional
        Default: built from the GeoTIFFs' dtype, band description and ``units`` tag.
    keywords : iterable of str
        The place name and the years spanned are appended (theme, place, time).
    thumbnail : str
        Recorded only when that file exists in ``outdir``.
    format : str, optional
        Default: the formats of the data files found (e.g. ``"Cloud-optimised GeoTIFF"``).
    extra : dict, optional
        Further product-specific fields, merged last.

    Returns
    -------
    dict
        JSON-serialisable record (numpy scalars are converted when written).
    """
    outdir = Path(outdir)
    files = product_files(outdir)
    tifs = {rel: _tif_info(outdir / rel) for rel, _ in files if _is_geotiff(rel)}
    crs = _crs_info(grid)
    west, south, east, north = grid.bounds_lonlat()
    years = [str(y) for y in range(start.year, end.year + 1)]
    kw = list(dict.fromkeys([*keywords, *([place] if place else []), *years]))
    rec = {
        "title": dict(title) if isinstance(title, Mapping) else {"en": title},
        "abstract": abstract,
        "source": source,
        "processing_method": method,
        "software": f"cryokit {__version__}",
        "quality": quality,
        "acquisition_start": _iso(start),
        "acquisition_end": _iso(end),
        "place_name": place,
        "bbox": {"west": west, "east": east, "south": south, "north": north},
        "altitude_range": None if altitude_range is None else
        {"low": float(altitude_range[0]), "high": float(altitude_range[1]), "units": "m"},
        "spatial_resolution": {"x": grid.res[0], "y": grid.res[1], "units": crs["unit"]},
        "temporal_resolution": temporal_resolution,
        "format": format or _formats(files, tifs),
        "coordinate_system": {"name": crs["name"], "epsg": crs["epsg"], "datum": crs["datum"],
                              **({"wkt2": crs["wkt2"]} if crs["wkt2"] else {})},
        "projection": crs["projection"],
        "file_count": len(files),
        "total_size_bytes": sum(size for _, size in files),
        "files": [rel for rel, _ in files],
        "licence": licence,
        "usage_note": usage if usage is not None else _usage(tifs),
        "units": units if units is not None else _units(tifs),
        "thumbnail": thumbnail if (outdir / thumbnail).is_file() else None,
        "keywords": kw,
    }
    rec.update(extra or {})
    return rec


def _formats(files: Sequence[tuple[str, int]], tifs: Mapping[str, dict]) -> str:
    names = []
    for rel, _ in files:
        if ".zarr/" in rel:
            names.append("Zarr")
            continue
        suffix = Path(rel).suffix.lower()
        if suffix not in _DATA_SUFFIXES:
            continue
        name = _FORMAT[suffix]
        if rel in tifs and tifs[rel]["cog"]:
            name = "Cloud-optimised GeoTIFF"
        names.append(name)
    return ", ".join(dict.fromkeys(names)) or "none"


def _band_label(rel: str, info: dict, i: int) -> str:
    desc = info["descriptions"][i]
    if desc:
        return desc
    stem = Path(rel).stem
    return stem if len(info["units"]) == 1 else f"{stem} band {i + 1}"


def _usage(tifs: Mapping[str, dict]) -> str:
    parts = []
    for rel, info in tifs.items():
        bands = ", ".join(f"{_band_label(rel, info, i)} in {u or 'unitless'}"
                          for i, u in enumerate(info["units"]))
        nodata = info["nodata"]
        nd = "NaN" if nodata is not None and np.isnan(nodata) else nodata
        parts.append(f"{rel}: {info['dtype']}, {bands}; nodata {nd}")
    return "; ".join(parts)


def _units(tifs: Mapping[str, dict]) -> dict:
    return {_band_label(rel, info, i): u for rel, info in tifs.items()
            for i, u in enumerate(info["units"]) if u}


# --------------------------------------------------------------------------- STAC

def footprint_lonlat(grid: Grid, densify: int = 21) -> list[list[float]]:
    """Closed ring (counter-clockwise) of the grid outline in lon/lat, ``densify`` points per edge.

    Edges are densified because a straight edge in a projected CRS is curved in lon/lat.
    """
    left, bottom, right, top = grid.bounds
    s = np.linspace(0.0, 1.0, densify)[:-1]
    xs = np.concatenate([left + s * (right - left), np.full_like(s, right),
                         right - s * (right - left), np.full_like(s, left)])
    ys = np.concatenate([np.full_like(s, bottom), bottom + s * (top - bottom),
                         np.full_like(s, top), top - s * (top - bottom)])
    tr = Transformer.from_crs(grid.crs.to_wkt(), "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(xs, ys)
    ring = [[round(float(a), 8), round(float(b), 8)] for a, b in zip(lon, lat)]  # ~1 mm
    return ring + [ring[0]]


def _default_roles(rel: str, thumbnail: str) -> list[str]:
    suffix = Path(rel).suffix.lower()
    if rel == thumbnail:
        return ["thumbnail"]
    if suffix in (".png", ".jpg"):
        return ["overview"]
    if suffix in (".json", ".xml", ".txt", ".md"):
        return ["metadata"]
    return ["data"]


def _asset_keys(rels: Sequence[str]) -> dict[str, str]:
    """Asset key per file: the path without suffix, or the full path where that would collide."""
    stems = [rel.rsplit(".", 1)[0] for rel in rels]
    return {rel: stem if stems.count(stem) == 1 else rel for rel, stem in zip(rels, stems)}


def stac_item(outdir: str | os.PathLike, *, item_id: str, grid: Grid,
              start: dt.date | dt.datetime, end: dt.date | dt.datetime,
              properties: Mapping[str, Any] | None = None,
              asset_roles: Mapping[str, Sequence[str]] | None = None,
              thumbnail: str = "quicklook.png") -> pystac.Item:
    """A STAC Item for the product directory, one asset per file (relative hrefs).

    Parameters
    ----------
    item_id : str
        Item identifier (e.g. ``"yahtse-velocity-20160301-20160317"``).
    grid : Grid
        Grid of the main rasters: footprint, bbox and the projection extension fields.
    start, end : date or datetime
        ``start_datetime`` / ``end_datetime``; a bare end date means the end of that day.
        ``datetime`` is null (allowed by STAC when both are set) unless start equals end.
    properties : dict, optional
        Extra item properties (e.g. ``title``, ``description``, ``license``).
    asset_roles : dict, optional
        Roles by relative path, overriding the guess from the file name (GeoTIFF, NetCDF,
        CSV, ... -> data; ``thumbnail`` -> thumbnail; other PNG -> overview; JSON -> metadata).

    Notes
    -----
    ``stac-item.json`` itself is not an asset. GeoTIFF assets carry ``raster:bands`` with
    data type, nodata, resolution, ``unit`` (the band ``units`` tag) and the band description.
    Nothing is validated against remote schemas, so it works offline.
    """
    outdir = Path(outdir)
    t0, t1 = _as_datetime(start), _as_datetime(end, end=True)
    if t1 < t0:
        raise ValueError(f"end {end} is before start {start}")
    ring = footprint_lonlat(grid)
    west, south, east, north = grid.bounds_lonlat()
    item = pystac.Item(id=item_id, geometry={"type": "Polygon", "coordinates": [ring]},
                       bbox=[west, south, east, north], datetime=t0 if t0 == t1 else None,
                       start_datetime=t0, end_datetime=t1, properties=dict(properties or {}))
    crs = _crs_info(grid)
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.apply(code=f"EPSG:{crs['epsg']}" if crs["epsg"] else None, wkt2=crs["wkt2"],
               shape=list(grid.shape), transform=list(grid.transform)[:6],
               bbox=list(grid.bounds))
    if crs["unit"] == "metre":
        item.common_metadata.gsd = float(min(grid.res))
    RasterExtension.add_to(item)
    for prefix, schema in _EXTENSIONS.items():    # sar:, sat:, view: properties
        if any(k.startswith(prefix) for k in item.properties) and schema not in item.stac_extensions:
            item.stac_extensions.append(schema)
    rels = [rel for rel, _ in product_files(outdir) if rel != STAC_NAME]
    for rel, key in _asset_keys(rels).items():
        item.add_asset(key, _asset(outdir, rel, thumbnail, (asset_roles or {}).get(rel)))
    return item


_EXTENSIONS = {"sar:": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
               "sat:": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
               "view:": "https://stac-extensions.github.io/view/v1.0.0/schema.json"}


def _asset(outdir: Path, rel: str, thumbnail: str, roles: Sequence[str] | None) -> pystac.Asset:
    suffix = Path(rel).suffix.lower()
    roles = list(roles) if roles else _default_roles(rel, thumbnail)
    if not _is_geotiff(rel):
        return pystac.Asset(href=rel, media_type=_MEDIA.get(suffix), roles=roles, title=rel)
    info = _tif_info(outdir / rel)
    media = pystac.MediaType.COG if info["cog"] else pystac.MediaType.GEOTIFF
    nodata = info["nodata"]
    bands = []
    for i, unit in enumerate(info["units"]):
        band = {"data_type": info["dtype"], "spatial_resolution": float(info["res"][0])}
        if nodata is not None:
            band["nodata"] = "nan" if np.isnan(nodata) else float(nodata)
        if unit:
            band["unit"] = unit
        if info["descriptions"][i]:
            band["description"] = info["descriptions"][i]
        bands.append(band)
    title = "; ".join(d for d in info["descriptions"] if d) or rel
    return pystac.Asset(href=rel, media_type=media, roles=roles, title=title,
                        extra_fields={"raster:bands": bands})


# --------------------------------------------------------------------------- writing

def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (dt.date, dt.datetime)):
        return _iso(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_safe(obj: Any) -> Any:
    """NaN and infinities -> None (null) through dicts, lists and arrays, numpy scalars ->
    Python: JSON has no NaN, and an undefined statistic (no glacier pixel, no point) is null,
    not an error.

    Examples
    --------
    >>> json_safe({"a": [1.0, float("nan")], "b": np.float64(np.inf)})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON atomically (numpy scalars and dates converted,
    NaN and infinities as null)."""
    text = json.dumps(json_safe(obj), indent=2, ensure_ascii=False, allow_nan=False,
                      default=_json_default)
    with atomic_file(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def write_records(outdir: str | os.PathLike, *, item_id: str, grid: Grid,
                  start: dt.date | dt.datetime, end: dt.date | dt.datetime,
                  stac_properties: Mapping[str, Any] | None = None,
                  asset_roles: Mapping[str, Sequence[str]] | None = None,
                  **record_kwargs: Any) -> tuple[dict, pystac.Item]:
    """Write ``metadata.json`` and ``stac-item.json`` into a finished product directory.

    Call it after every other file is written. ``record_kwargs`` are those of
    :func:`metadata_record` (title, abstract, source, method, quality, place, ...). The STAC
    Item gets ``title`` (English or first language), ``description`` (the abstract),
    ``license`` and ``keywords`` from the record, then ``stac_properties``.

    Returns
    -------
    (dict, pystac.Item)
        The record and the item as written. The record's ``file_count`` and
        ``total_size_bytes`` equal the directory's, the two record files included.
    """
    outdir = Path(outdir)
    thumbnail = record_kwargs.get("thumbnail", "quicklook.png")
    # The record states the size of the directory that holds it, so its own length feeds
    # back; the size only grows with digit count, so this reaches a fixed point in a few rounds.
    for _ in range(10):
        rec = metadata_record(outdir, grid=grid, start=start, end=end, **record_kwargs)
        write_json(outdir / METADATA_NAME, rec)
        props = {"title": next(iter(rec["title"].values()), None), "description": rec["abstract"],
                 "license": rec["licence"], "keywords": rec["keywords"], **(stac_properties or {})}
        item = stac_item(outdir, item_id=item_id, grid=grid, start=start, end=end,
                         properties=props, asset_roles=asset_roles, thumbnail=thumbnail)
        write_json(outdir / STAC_NAME, item.to_dict(include_self_link=False))
        files = product_files(outdir)
        if (len(files), sum(s for _, s in files)) == (rec["file_count"], rec["total_size_bytes"]) \
                and [r for r, _ in files] == rec["files"]:
            return rec, item
    raise RuntimeError(f"{outdir}: file count/size did not settle")  # pragma: no cover
