"""Figures of point products: velocity map and the time series of one point with its model.

Drawn on an explicit Agg canvas (no ``pyplot``), written atomically with
:func:`cryokit.core.quicklook.save_figure`.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..core.quicklook import save_figure
from .stats import seasonal_model

CREDIT = "Contains modified Copernicus EGMS data; cryokit"


def symmetric_limit(values, percentile: float = 98.0) -> float:
    """Colour limit ``m`` for a diverging map [-m, m]: the given percentile of |values|.

    Examples
    --------
    >>> symmetric_limit(np.array([-1.0, 0.5, 3.0, np.nan]), 100)
    3.0
    """
    v = np.abs(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    m = float(np.percentile(v, percentile)) if v.size else 1.0
    return m if m > 0 else 1.0


def velocity_map(path: str | os.PathLike, x, y, velocity, *, title: str,
                 label: str = "mean LOS velocity (mm/yr), + towards satellite",
                 highlight: tuple[float, float] | None = None, xlabel: str = "easting (m)",
                 ylabel: str = "northing (m)") -> str:
    """Scatter map of points coloured by velocity, diverging colours with symmetric limits.

    Examples
    --------
    >>> velocity_map("v.png", [0, 1], [0, 1], [-1, 2], title="t")   # doctest: +SKIP
    """
    x, y, v = (np.asarray(a, dtype=np.float64) for a in (x, y, velocity))
    fig = Figure(figsize=(9, 7.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    m = symmetric_limit(v)
    order = np.argsort(np.abs(v))          # strongest motion drawn last, on top
    size = max(1.0, min(12.0, 4e4 / max(v.size, 1)))
    sc = ax.scatter(x[order], y[order], c=v[order], s=size, cmap="RdBu", vmin=-m, vmax=m,
                    linewidths=0)
    if highlight is not None:
        ax.plot(*highlight, marker="o", mfc="none", mec="k", ms=14, mew=1.5)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.ticklabel_format(useOffset=False, style="plain")
    fig.colorbar(sc, ax=ax, shrink=0.8, label=label, extend="both")
    fig.tight_layout()
    return save_figure(fig, path, CREDIT)


def timeseries_plot(path: str | os.PathLike, dates, disp, *, title: str,
                    label: str = "LOS displacement (mm), + towards satellite") -> str:
    """Time series of one point with its fitted linear + seasonal model and velocity.

    Examples
    --------
    >>> timeseries_plot("ts.png", dates, series, title="pid 1")     # doctest: +SKIP
    """
    dates = np.asarray(dates, dtype="datetime64[D]")
    y = np.asarray(disp, dtype=np.float64)
    t = (dates - dates[0]).astype(np.float64) / 365.0
    model, v = seasonal_model(t, y)
    fig = Figure(figsize=(10, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    d = dates.astype("datetime64[D]").astype(object)
    ax.plot(d, y, ".", ms=4, color="0.3", label="displacement")
    ax.plot(d, model, "-", color="C3", lw=1.5,
            label=f"linear + seasonal fit: {v:+.2f} mm/yr")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_title(title)
    ax.set_ylabel(label)
    ax.set_xlabel(f"date (t = 0 at {dates[0]})")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path, CREDIT)
