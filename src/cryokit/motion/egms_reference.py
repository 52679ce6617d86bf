"""EGMS product step: re-reference every series of a burst or tile to a point or an area.

Sign convention: LOS displacement in mm, positive towards the satellite; the reference series
is subtracted from every series and the statistics are recomputed (:mod:`.egms_io`).
"""

from __future__ import annotations

import os

import numpy as np

from .. import __version__
from ..core.errors import UserError
from . import reference as ref
from .egms_io import LAEA, LOS_CONVENTION, load_points, to_laea, with_series, write_points, xy
from .stats import seasonal_model


def make_reference(inp, out, *, pid: str | None = None, point: tuple[float, float] | None = None,
                   radius: float | None = None, area=None) -> dict:
    """Re-reference every series of INPUT to a point (``pid``), the median of the points within
    ``radius`` m of ``point`` (lon, lat), or the median of the points inside polygons ``area``.

    Returns the report (also written as OUT.json and into the header of EGMS outputs).
    """
    given = sum(x is not None for x in (pid, point, area))
    if given != 1:
        raise UserError("give exactly one of --pid, --point (with --radius) or --area")
    if radius is not None and point is None:
        raise UserError("--radius goes with --point (it would be ignored)")
    pts = load_points(inp)
    x, y = xy(pts, inp)
    pids = pts.attrs["pid"].astype(str).to_numpy()
    if pid is not None:
        mask = pids == str(pid)
        if not mask.any():
            raise UserError(f"pid {pid} not found", inp)
        desc = {"type": "point", "pid": str(pid)}
    elif point is not None:
        if radius is None or radius <= 0:
            raise UserError("--point needs --radius M (metres, > 0)")
        cx, cy = to_laea(*point)
        mask = ref.points_within(x, y, float(cx), float(cy), radius)
        if not mask.any():
            raise UserError(f"no point within {radius:g} m of lon {point[0]:g}, lat {point[1]:g}",
                            inp)
        desc = {"type": "median of points within radius", "lon": point[0], "lat": point[1],
                "radius_m": radius}
    else:
        import shapely
        from pyproj import Transformer

        from ..core.vector import read_polygons
        polys, crs = read_polygons(area, crs="EPSG:4326")
        geoms = np.asarray(polys, dtype=object)
        if crs is not None and str(crs) != LAEA:
            tr = Transformer.from_crs(crs, LAEA, always_xy=True)
            geoms = shapely.transform(geoms, lambda c: np.column_stack(tr.transform(*c.T)))
        union = shapely.union_all(shapely.make_valid(geoms))
        mask = shapely.contains_xy(union, x, y)
        if not mask.any():
            raise UserError("no point inside the polygon(s)", area)
        desc = {"type": "median of points inside area", "area": os.path.basename(str(area))}
    refser = ref.reference_series(pts.disp, mask)
    gaps = np.flatnonzero(~np.isfinite(refser))
    if gaps.size:
        raise UserError(f"the reference has no displacement at {gaps.size} of {refser.size} dates "
                        f"(first {pts.dates[gaps[0]]}); every series would lose them: choose a "
                        "point with a complete series, or an area (--point/--radius, --area)", inp)
    new = ref.rereference(pts.disp, refser)
    # velocity of the reference series: the EGMS mean-velocity model, fitted on its valid dates
    vref = seasonal_model(pts.years(), refser)[1] if np.isfinite(refser).sum() > 4 else np.nan
    desc.update(n_points=int(mask.sum()), reference_pids=pids[mask][:50].tolist(),
                reference_velocity_mm_yr=vref)
    report = {"input": os.path.basename(str(inp)), "n_points": int(len(pids)),
              "reference": desc, "conventions": LOS_CONVENTION,
              "method": "reference series (the point's, or the per-date median of the selected "
                        "points) subtracted from every series; statistics recomputed",
              "software": f"cryokit {__version__}"}
    pts2 = with_series(pts, new, {"cryokit_reference": {k: v for k, v in desc.items()
                                                         if k != "reference_pids"}})
    report["outputs"] = write_points(pts2, out, report)
    return report
