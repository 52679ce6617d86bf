"""EGMS product step: compare two releases of one burst, point by point.

Points are matched by pid (nearest unmatched point within a distance as fallback); the
differences are NEW minus OLD (velocity mm/yr, acceleration mm/yr^2, seasonality and rmse mm).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..core.atomic import atomic_file
from ..core.errors import UserError
from ..core.records import write_json
from . import compare as cmp
from .egms_io import column_name, json_safe, load_points, numeric_column, xy


def make_compare(old, new, out, *, max_distance: float = 5.0) -> dict:
    """Two releases of one burst: points matched by pid (location fallback), differences
    NEW minus OLD of velocity, acceleration and seasonality; OUT (.csv or .parquet) per point
    and OUT.json with statistics."""
    suffix = Path(out).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UserError("output must end in .csv or .parquet", out)
    a, b = load_points(old), load_points(new)
    xa, ya = xy(a, old)
    xb, yb = xy(b, new)
    i, j, how, dist = cmp.match_points(a.attrs["pid"].astype(str).to_numpy(),
                                       b.attrs["pid"].astype(str).to_numpy(),
                                       np.column_stack([xa, ya]), np.column_stack([xb, yb]),
                                       max_distance)
    diff = pd.DataFrame({"pid_old": a.attrs["pid"].astype(str).to_numpy()[i],
                         "pid_new": b.attrs["pid"].astype(str).to_numpy()[j],
                         "match": how, "distance_m": np.round(dist, 3),
                         "easting": xb[j], "northing": yb[j]})
    stats = {}
    for c in ("mean_velocity", "acceleration", "seasonality", "rmse", "temporal_coherence"):
        if column_name(a, c) in a.attrs.columns and column_name(b, c) in b.attrs.columns:
            va, vb = numeric_column(a, c)[i], numeric_column(b, c)[j]
            diff[f"{c}_old"], diff[f"{c}_new"], diff[f"d_{c}"] = va, vb, vb - va
            stats[c] = cmp.difference_stats(vb - va)
    report = {"old": os.path.basename(str(old)), "new": os.path.basename(str(new)),
              "old_naming": a.naming, "new_naming": b.naming,
              "counts": {"old": int(len(xa)), "new": int(len(xb)), "matched": int(i.size),
                         "matched_by_pid": int((how == "pid").sum()),
                         "matched_by_location": int((how == "location").sum()),
                         "unmatched_old": int(len(xa) - i.size),
                         "unmatched_new": int(len(xb) - j.size)},
              "location_fallback_m": max_distance,
              "differences": stats,
              "convention": "differences are NEW minus OLD; velocities mm/yr, acceleration "
                            "mm/yr^2, seasonality and rmse mm",
              "software": f"cryokit {__version__}"}
    with atomic_file(out) as tmp:
        if suffix == ".csv":
            diff.to_csv(tmp, index=False)
        else:
            diff.to_parquet(tmp, index=False)
    write_json(Path(out).with_suffix(".json"), json_safe(report))
    return report
