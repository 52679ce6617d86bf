"""Stable-ground correction and error: offsets that should be zero on rock.

The median offset over stable nodes is the co-registration residual of the pair; it (or a
plane fitted on stable ground) is subtracted everywhere. The NMAD of the corrected stable
offsets is the product's error estimate (Höhle & Höhle 2009; the ±7 m/yr of the Karakoram
product is such a figure).
"""

from __future__ import annotations

import numpy as np

from ..core.robust import nmad, trimmed_lstsq

STABLE_MODELS = ("median", "plane")


def _design(rows: np.ndarray, cols: np.ndarray, scale: float) -> np.ndarray:
    return np.column_stack([np.ones(rows.size), cols / scale, rows / scale])


def fit_stable(dx: np.ndarray, dy: np.ndarray, stable: np.ndarray, model: str = "median",
               min_nodes: int = 10) -> dict:
    """Fit the non-motion offset on stable nodes.

    Parameters
    ----------
    dx, dy : node offsets (px), NaN where invalid.
    stable : bool node mask of stable ground.
    model : 'median' (constant) or 'plane' (a + b col + c row per component, fitted by
        iteratively trimmed least squares so moving or mismatched nodes in the mask don't pull).

    Returns
    -------
    dict with ``model``, ``n_stable``, the coefficients ``x``/``y`` (constant first; plane
    coefficients per node index), ``median_px`` (x, y) before correction and ``nmad_px`` (x, y)
    after correction. Plain values only, ready for a JSON report.
    """
    if model not in STABLE_MODELS:
        raise ValueError(f"model must be one of {STABLE_MODELS}, got {model!r}")
    use = stable & np.isfinite(dx) & np.isfinite(dy)
    n = int(use.sum())
    out = {"model": model, "n_stable": n}
    if n < min_nodes:
        out.update(x=[0.0], y=[0.0], median_px=[float("nan")] * 2, nmad_px=[float("nan")] * 2)
        return out
    out["median_px"] = [float(np.median(dx[use])), float(np.median(dy[use]))]
    if model == "median":
        out["x"], out["y"] = [out["median_px"][0]], [out["median_px"][1]]
    else:
        rows, cols = np.nonzero(use)
        scale = float(max(dx.shape))
        A = _design(rows, cols, scale)
        coef = []
        for u in (dx[use], dy[use]):
            c, *_ = trimmed_lstsq(A, u, k=3.0, passes=6, floor=1e-3)
            coef.append([float(v) for v in c])
        out["x"], out["y"], out["scale"] = coef[0], coef[1], scale
    cx, cy = model_offsets(out, dx.shape)
    out["nmad_px"] = [nmad((dx - cx)[use]), nmad((dy - cy)[use])]
    return out


def model_offsets(fit: dict, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of a :func:`fit_stable` model on a node grid of ``shape``."""
    if fit["model"] == "median" or len(fit["x"]) == 1:
        return (np.full(shape, fit["x"][0]), np.full(shape, fit["y"][0]))
    rows, cols = np.indices(shape)
    A = _design(rows.ravel(), cols.ravel(), fit["scale"])
    return ((A @ fit["x"]).reshape(shape), (A @ fit["y"]).reshape(shape))


def correct(dx: np.ndarray, dy: np.ndarray, fit: dict) -> tuple[np.ndarray, np.ndarray]:
    """Subtract the fitted stable-ground offset from every node."""
    cx, cy = model_offsets(fit, dx.shape)
    return dx - cx, dy - cy
