"""Diagnostic figures of the DEM-differencing product (matplotlib, no pyplot state)."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..core.quicklook import save_figure
from ..core import terrain


def histograms(path, before: np.ndarray, after: np.ndarray, st: dict) -> None:
    """dh histograms on stable terrain before and after co-registration."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for arr, key, colour in ((before, "before", "0.6"), (after, "after", "C0")):
        v = arr[np.isfinite(arr)]
        s = st[key]["stable"]
        lim = 5 * max(st["before"]["stable"]["nmad"], 1e-3)
        ax.hist(np.clip(v, -lim, lim), bins=120, range=(-lim, lim), histtype="step",
                color=colour, label=f"{key}: median {s['median']:.2f} m, NMAD {s['nmad']:.2f} m")
    ax.set_xlabel("dh = REF - TBA (m), all valid pixels")
    ax.set_ylabel("pixels")
    ax.legend(title="stable terrain")
    save_figure(fig, path, dpi=110)


def curvature(path, model) -> None:
    """Median dh per maximum-curvature bin (stable terrain) and the fitted bias of ``model``
    (a fitted :class:`cryokit.elevation.bias.CurvatureBias`)."""
    m = model.meta
    sec = m.get("second")
    fig = Figure(figsize=(12 if sec else 7, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2 if sec else 1, 1)
    x = np.asarray(m["bin_curvature"], float)
    ax.plot(x, m["bin_medians"], "o", ms=3, color="0.4", label="median dh per bin (stable)")
    t = np.linspace(*m["range"], 200)
    ax.plot(t, model.curve(t), "C3-", label=f"fitted bias ({m['fit']})")
    ax.set_xlabel("maximum curvature (100 m$^{-1}$)")
    ax.set_ylabel("dh = REF - TBA (m)")
    ax.legend()
    if sec:
        # Second-variable table: what the max-curvature curve leaves, per (kmax, second) bin.
        ax2 = fig.add_subplot(1, 2, 2)
        t = np.asarray(sec["table"], float)
        v = float(np.nanmax(np.abs(t))) or 1.0
        im = ax2.imshow(t.T, origin="lower", cmap="RdBu", vmin=-v, vmax=v, aspect="auto")
        ax2.set_xlabel("maximum curvature bin (quantiles)")
        ax2.set_ylabel(f"{m.get('variables', ['', 'second variable'])[-1]} bin (quantiles)")
        fig.colorbar(im, ax=ax2, label="added bias (m)")
    save_figure(fig, path, dpi=110)


def nuth_kaab(path, ref: np.ndarray, tba: np.ndarray, res, meta: dict, n: int = 20000) -> None:
    """dh / tan(slope) against aspect before co-registration, with the first cosine fit."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    slope = np.radians(terrain.slope(ref, res))
    asp = terrain.aspect(ref, res)
    steep = np.degrees(slope) > 3      # flat ground says nothing about the shift direction
    y = np.full(ref.shape, np.nan)
    np.divide(ref - tba, np.tan(slope), out=y, where=steep)
    ok = np.isfinite(y) & steep & np.isfinite(asp)
    idx = np.flatnonzero(ok)
    if idx.size:
        pick = np.random.default_rng(0).choice(idx, size=min(n, idx.size), replace=False)
        yv = y.ravel()[pick]
        lim = np.percentile(np.abs(yv), 95)
        ax.plot(asp.ravel()[pick], yv, ".", ms=1, alpha=0.3, color="0.5")
        ax.set_ylim(-2 * lim, 2 * lim)
    hist = meta.get("history") or []
    if hist and idx.size:
        # The first iteration's shift is the cosine's amplitude and phase (Nuth & Kaab 2011:
        # shift_x = a sin b, shift_y = a cos b); its offset c is the median residual.
        ux, uy = hist[0]["update_x"], hist[0]["update_y"]
        a, b = float(np.hypot(ux, uy)), float(np.degrees(np.arctan2(ux, uy)))
        c = float(np.median(yv - a * np.cos(np.radians(b - asp.ravel()[pick]))))
        t = np.linspace(0, 360, 361)
        ax.plot(t, a * np.cos(np.radians(b - t)) + c, "C3-",
                label=f"first fit: a {a:.2f} m, b {b % 360:.1f} deg, c {c:.2f} m")
        ax.legend()
    ax.set_xlabel("aspect (degrees)")
    ax.set_ylabel("dh / tan(slope) (m)")
    ax.set_title(f"Nuth & Kaab: shift ({meta.get('shift_x', 0):.2f}, {meta.get('shift_y', 0):.2f}, "
                 f"{meta.get('shift_z', 0):.2f}) m")
    save_figure(fig, path, dpi=110)
