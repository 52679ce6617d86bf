"""Shared layer of the EGMS point products: reading points, their columns and coordinates,
new series with recomputed statistics, and writing points with a JSON report beside them.

The product steps (:mod:`.egms_reference`, :mod:`.egms_calibration`, :mod:`.egms_ortho`,
:mod:`.egms_compare`, :mod:`.egms_plots`) read their inputs through this module, check them,
call the algorithms and write atomically. Point outputs are EGMS zips/CSVs, or GeoParquet /
GeoPackage chosen by the output suffix; a JSON report beside them (same name, ``.json``) states
what was done (reference, calibration, units, sign conventions).

Sign convention: LOS displacement positive towards the satellite (``los_*`` is the
ground-to-satellite unit vector), mm; velocities mm/yr; t in years from the first date.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import UserError
from ..core.records import write_json
from . import formats
from .stats import EGMS_DECIMALS, timeseries_stats

LAEA = "EPSG:3035"
LOS_CONVENTION = ("LOS displacement in mm, positive towards the satellite (los_east/north/up = "
                  "ground-to-satellite unit vector); velocities in mm/yr; t in years from the "
                  "first date (days/365)")
_CANONICAL = {"height_ortho": "height", "rmse_ts": "rmse", "height_ellipse": "height_ellipse"}


def load_points(path):
    """Read an EGMS file (zip/CSV, any level and naming) as :class:`EgmsPoints`."""
    return formats.read_egms(path)


def column_name(points, canonical: str) -> str:
    """The attrs column holding ``canonical`` in this file's naming (e.g. rmse -> rmse_ts)."""
    return points.column_name(_CANONICAL.get(canonical, canonical))


def numeric_column(points, canonical: str, path=None) -> np.ndarray:
    """Column ``canonical`` (any release's naming) as float64, unparsable values NaN; a
    :class:`~cryokit.core.errors.UserError` naming ``path`` when the file lacks it."""
    name = column_name(points, canonical)
    if name not in points.attrs.columns:
        raise UserError(f"has no {canonical} column", path or points.name)
    return pd.to_numeric(points.attrs[name], errors="coerce").to_numpy(np.float64)


def xy(points, path=None) -> tuple[np.ndarray, np.ndarray]:
    """Easting, northing (m, EPSG:3035) of the points."""
    return numeric_column(points, "easting", path), numeric_column(points, "northing", path)


def stats_and_shifted(t, disp) -> tuple[dict, np.ndarray]:
    """EGMS statistics of ``disp`` and the series shifted so that each one's cubic+seasonal
    model is 0 at t = 0, as the service publishes them."""
    st = timeseries_stats(t, disp)
    return st, disp - st["reference_shift"][:, None]


def with_series(points, disp: np.ndarray, header_extra: dict | None = None,
                level: str | None = None):
    """A copy of ``points`` with new series and their statistics recomputed (EGMS model,
    each series shifted so its cubic+seasonal model is 0 at the first date); ``level`` (e.g.
    ``"L2b"`` once calibrated to GNSS) replaces the product level in the name and header."""
    st, disp = stats_and_shifted(points.years(), disp)
    attrs = points.attrs.copy()
    for key, dec in EGMS_DECIMALS.items():
        attrs[column_name(points, key)] = np.round(st[key], dec)
    header = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (points.header or {}).items()}
    if header_extra:
        root = next(iter(header)) if header else ("TILE" if points.level == "L3" else "BURST")
        header.setdefault(root, {})
        if not isinstance(header[root], dict):
            header[root] = {}
        header[root].update(header_extra)
    name = points.name
    if level and level != points.level:
        import re
        name = re.sub(r"EGMS_L2a_", f"EGMS_{level}_", name, flags=re.IGNORECASE)
        for v in header.values():
            if isinstance(v, dict) and "product_level" in v:
                v["product_level"] = level
    # EGMS publishes displacements to 0.1 mm; more digits would only inflate the files
    return type(points)(attrs=attrs, dates=points.dates, disp=np.round(disp, 1),
                        header=header, name=name, level=level or points.level,
                        naming=points.naming)


def write_points(points, out, report: dict) -> list[str]:
    """Write points by suffix (.zip/.csv EGMS format, .parquet, .gpkg) and ``report`` as
    OUT.json beside them; returns the paths written."""
    out = Path(out)
    if out.suffix.lower() not in formats.OUTPUT_SUFFIXES:
        raise UserError("output must end in .zip or .csv (EGMS format), .parquet or .gpkg", out)
    formats.write_points(points, out)
    rep = out.with_suffix(".json")
    write_json(rep, report)
    return [str(out), str(rep)]


def to_laea(lon, lat):
    """Longitude, latitude (degrees, WGS84) -> easting, northing (m) in EPSG:3035, the EGMS grid."""
    from pyproj import Transformer
    tr = Transformer.from_crs("EPSG:4326", LAEA, always_xy=True)
    return tr.transform(np.asarray(lon, float), np.asarray(lat, float))
