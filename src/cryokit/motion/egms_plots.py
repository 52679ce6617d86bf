"""EGMS product step: velocity map of all points and one point's series with its model.

Figures are drawn by :mod:`.plots`; velocities in mm/yr (LOS positive towards the satellite,
or up / east positive for Ortho tiles).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import UserError
from ..core.outputs import safe_name
from . import plots
from .egms_io import load_points, numeric_column, xy


def make_plots(inp, pid: str, outdir) -> dict:
    """Velocity map of all points and the series of point ``pid`` with its model (PNGs)."""
    pts = load_points(inp)
    pids = pts.attrs["pid"].astype(str).to_numpy()
    k = np.flatnonzero(pids == str(pid))
    if not k.size:
        raise UserError(f"pid {pid} not found", inp)
    k = int(k[0])
    x, y = xy(pts, inp)
    v = numeric_column(pts, "mean_velocity", inp)
    level = pts.level
    label = ("mean vertical velocity (mm/yr), up positive" if level == "L3" and "_U_" in pts.name
             else "mean east velocity (mm/yr), east positive" if level == "L3"
             else "mean LOS velocity (mm/yr), + towards satellite")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    m = plots.velocity_map(outdir / "velocity_map.png", x, y, v, title=f"{pts.name}",
                           label=label, highlight=(x[k], y[k]))
    ts = plots.timeseries_plot(outdir / f"timeseries_{safe_name(pid, 'pid')}.png", pts.dates, pts.disp[k],
                               title=f"{pts.name}: point {pid}",
                               label=label.replace("mean ", "").replace("velocity (mm/yr)",
                                                                      "displacement (mm)"))
    return {"velocity_map": m, "timeseries": ts, "n_points": int(len(pids))}
