"""Quick-look PNGs of products: a vector (velocity) map, a generic single-layer map and a
categorical (class) map with a legend.

Figures are drawn on an explicit Agg canvas, never through ``pyplot``: no global backend switch,
no figure registry to leak memory in batch runs, safe in worker processes.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .atomic import atomic_file

Extent = Sequence[float]  # (left, right, bottom, top) in map units, north up

_WIDTH_IN, _DPI = 10.0, 100  # about 1000 px wide: enough to judge, small beside the data
_MAX_PX = 2000  # bigger images are decimated before drawing; the PNG cannot show more


def _decimate(a: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(max(a.shape) / _MAX_PX)))
    return a[::step, ::step]


def _limits(a: np.ndarray, lo: float = 2, hi: float = 98) -> tuple[float, float]:
    """Percentile stretch of the finite values; (0, 1) when there are none."""
    v = a[np.isfinite(a)]
    if v.size == 0:
        return 0.0, 1.0
    a0, a1 = (float(x) for x in np.percentile(v, [lo, hi]))
    return (a0, a1) if a1 > a0 else (a0 - 0.5, a0 + 0.5)


def _figure(extent: Extent, title: str) -> tuple[Figure, object]:
    left, right, bottom, top = extent
    aspect = abs(top - bottom) / max(abs(right - left), 1e-12)
    # map ~7.5 in wide (the rest: colour bar), plus room for title, ticks and credit
    height = float(np.clip(7.5 * aspect + 1.2, 3.5, 14.0))
    fig = Figure(figsize=(_WIDTH_IN, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=8)
    ax.set_xlabel("easting", fontsize=8)
    ax.set_ylabel("northing", fontsize=8)
    return fig, ax


def _background(ax, background: np.ndarray | None, extent: Extent) -> None:
    if background is None:
        return
    bg = _decimate(np.asarray(background, dtype=np.float32))
    lo, hi = _limits(bg)
    ax.imshow(np.ma.masked_invalid(bg), cmap="gray", vmin=lo, vmax=hi, extent=tuple(extent),
              origin="upper", interpolation="antialiased")


def _map(extent: Extent, title: str, background: np.ndarray | None, layer: np.ndarray,
         dtype=np.float32) -> tuple[Figure, object, np.ndarray]:
    """Figure and axes for ``extent``, the grey ``background`` drawn, and ``layer`` decimated."""
    fig, ax = _figure(extent, title)
    _background(ax, background, extent)
    return fig, ax, _decimate(np.asarray(layer, dtype=dtype))


def save_figure(fig: Figure, path: str | os.PathLike, credit: str | None = None,
                dpi: int = _DPI) -> str:
    """Write ``fig`` as PNG atomically (temporary name, then rename), with an optional credit
    line at the bottom left; returns ``path``. Shared by every product's figures."""
    if credit:
        fig.text(0.005, 0.003, credit, fontsize=7, color="0.3", ha="left", va="bottom")
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return os.fspath(path)


def _nice(x: float) -> float:
    """1, 2 or 5 times a power of ten, close to ``x`` (for the arrow key)."""
    e = np.floor(np.log10(x))
    m = x / 10 ** e
    return float((1 if m < 1.5 else 2 if m < 3.5 else 5 if m < 7.5 else 10) * 10 ** e)


def vector_quicklook(path: str | os.PathLike, background: np.ndarray | None, speed: np.ndarray,
                     vx: np.ndarray, vy: np.ndarray, *, extent: Extent, units: str, title: str,
                     credit: str | None = None, arrow_step: int | None = None) -> str:
    """Quick-look of a vector field: greyscale image, speed colours and flow arrows.

    Parameters
    ----------
    path : path
        PNG to write (atomically), about 1000 px wide.
    background : (H, W) array or None
        Image shown in grey (2-98 % stretch, NaN transparent), e.g. the reference image.
    speed : (h, w) array
        Speed on the node grid, drawn semi-transparent with a colour bar labelled ``units``.
    vx, vy : (h, w) arrays
        Easting and northing components on the node grid (row 0 = north), same units.
    extent : (left, right, bottom, top)
        Map coordinates covered by ``background`` and by the node grid (which may differ
        in shape).
    arrow_step : int, optional
        Node step between arrows; default gives about 25 arrows across.
    credit : str, optional
        Attribution line at the bottom left.

    Returns
    -------
    str
        ``path``.
    """
    fig, ax, sp = _map(extent, title, background, speed)
    _, hi = _limits(sp, 1, 99)
    im = ax.imshow(np.ma.masked_invalid(sp), cmap="viridis", vmin=0.0, vmax=max(hi, 1e-12),
                   alpha=0.6, extent=tuple(extent), origin="upper", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"speed ({units})")
    _arrows(ax, np.asarray(vx, float), np.asarray(vy, float), extent, units, arrow_step)
    return save_figure(fig, path, credit)


def _arrows(ax, vx: np.ndarray, vy: np.ndarray, extent: Extent, units: str,
            step: int | None) -> None:
    left, right, bottom, top = extent
    h, w = vx.shape
    step = step or max(1, round(w / 25))
    rows, cols = np.arange(step // 2, h, step), np.arange(step // 2, w, step)
    dx, dy = (right - left) / w, (top - bottom) / h
    x, y = np.meshgrid(left + (cols + 0.5) * dx, top - (rows + 0.5) * dy)
    u, v = vx[np.ix_(rows, cols)], vy[np.ix_(rows, cols)]
    ok = np.isfinite(u) & np.isfinite(v)
    if not ok.any():
        return
    mag = np.hypot(u[ok], v[ok])
    ref = float(np.percentile(mag, 90))
    if ref <= 0:
        return
    # the 90th-percentile arrow spans ~0.9 of the arrow spacing: long enough to read, few overlaps
    scale = ref / (0.9 * step * min(abs(dx), abs(dy)))
    q = ax.quiver(x[ok], y[ok], u[ok], v[ok], angles="xy", scale_units="xy", scale=scale,
                  color="white", edgecolor="black", linewidth=0.4, width=0.0025)
    key = _nice(ref)
    ax.quiverkey(q, 0.82, 1.015, key, f"{key:g} {units}", labelpos="E", coordinates="axes",
                 fontproperties={"size": 8})


def raster_quicklook(path: str | os.PathLike, array: np.ndarray, *, extent: Extent, cmap: str,
                     label: str, title: str, vmin: float | None = None,
                     vmax: float | None = None, background: np.ndarray | None = None,
                     credit: str | None = None, diverging: bool = False) -> str:
    """Quick-look of one layer with a colour bar, optionally over a grey background.

    Parameters
    ----------
    array : (H, W) array
        The layer (NaN transparent), covering ``extent`` = (left, right, bottom, top).
    cmap : str
        Matplotlib colour map name (e.g. ``"RdBu"`` for elevation change).
    label : str
        Colour bar label, with units (e.g. ``"dh (m)"``).
    vmin, vmax : float, optional
        Colour limits; default 2-98 % of the finite values.
    background : (h, w) array, optional
        Grey layer under the data (e.g. a hillshade); the data are then drawn semi-transparent.
    diverging : bool
        Centre the colours on zero (limits +-max(|vmin|, |vmax|)).

    Returns
    -------
    str
        ``path``.
    """
    fig, ax, a = _map(extent, title, background, array)
    lo, hi = _limits(a)
    lo = lo if vmin is None else vmin
    hi = hi if vmax is None else vmax
    if diverging:
        m = max(abs(lo), abs(hi)) or 1.0
        lo, hi = -m, m
    im = ax.imshow(np.ma.masked_invalid(a), cmap=cmap, vmin=lo, vmax=hi, extent=tuple(extent),
                   origin="upper", interpolation="nearest",
                   alpha=0.7 if background is not None else None)
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    return save_figure(fig, path, credit)


def class_quicklook(path: str | os.PathLike, codes: np.ndarray, *, extent: Extent,
                    classes: Sequence[tuple[int, str, tuple[int, int, int]]], title: str,
                    credit: str | None = None) -> str:
    """Quick-look of a categorical map: each class code in its colour, a legend below the map.

    Parameters
    ----------
    codes : (H, W) integer array
        Class codes 0..255 covering ``extent`` = (left, right, bottom, top); codes without an
        entry in ``classes`` (e.g. 0 = nodata) are transparent.
    classes : sequence of (code, name, (r, g, b))
        Colours 0..255.  The legend lists the classes present in the drawn image, labelled
        ``"<code> <name>"``.

    Returns
    -------
    str
        ``path``.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, ax, a = _map(extent, title, None, codes, dtype=None)
    lut = np.zeros((256, 4))
    for c, _, rgb in classes:
        lut[c] = (*(v / 255 for v in rgb), 1.0)
    ax.imshow(a, cmap=ListedColormap(lut), vmin=-0.5, vmax=255.5, interpolation="nearest",
              extent=tuple(extent), origin="upper")
    present = set(np.unique(a).tolist())
    handles = [Patch(facecolor=np.array(rgb) / 255, edgecolor="0.3", label=f"{c} {n}")
               for c, n, rgb in classes if c in present]
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.07), fontsize=8,
                  frameon=False, ncol=min(4, len(handles)))
    return save_figure(fig, path, credit)
