"""Accuracy of a node field against a known displacement (synthetic truth)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .track import node_origins


def truth_at_nodes(dx: np.ndarray, dy: np.ndarray, nodes: tuple[int, int], step: int,
                   chip: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample a per-pixel truth (dx, dy) at the template centres of a node grid.

    Pixel centres are at integer (row, col); a template starting at pixel o has its centre
    at o + (chip - 1) / 2, where the truth is bilinearly interpolated.
    """
    rc = node_origins(nodes[0], step, chip) + (chip - 1) / 2
    cc = node_origins(nodes[1], step, chip) + (chip - 1) / 2
    R, C = np.meshgrid(rc, cc, indexing="ij")
    return (ndimage.map_coordinates(dx, [R, C], order=1, mode="nearest"),
            ndimage.map_coordinates(dy, [R, C], order=1, mode="nearest"))


def mask_at_nodes(mask: np.ndarray, nodes: tuple[int, int], step: int, chip: int) -> np.ndarray:
    """A pixel mask sampled (nearest) at the template centres of a node grid."""
    rc = np.clip(np.rint(node_origins(nodes[0], step, chip) + (chip - 1) / 2), 0, mask.shape[0] - 1)
    cc = np.clip(np.rint(node_origins(nodes[1], step, chip) + (chip - 1) / 2), 0, mask.shape[1] - 1)
    return mask[np.ix_(rc.astype(int), cc.astype(int))]


def error_stats(dx: np.ndarray, dy: np.ndarray, tx: np.ndarray, ty: np.ndarray,
                where: np.ndarray | None = None) -> dict:
    """RMSE (px) of the vector error, per component, and the share of vectors off by > 1 px.

    Only nodes with finite estimates (and inside ``where`` when given) count.
    """
    ok = np.isfinite(dx) & np.isfinite(dy)
    if where is not None:
        ok &= where
    ex, ey = dx[ok] - tx[ok], dy[ok] - ty[ok]
    e = np.hypot(ex, ey)
    n = int(ok.sum())
    nan = float("nan")
    return {"n": n,
            "rmse_px": float(np.sqrt(np.mean(e ** 2))) if n else nan,
            "rmse_x_px": float(np.sqrt(np.mean(ex ** 2))) if n else nan,
            "rmse_y_px": float(np.sqrt(np.mean(ey ** 2))) if n else nan,
            "share_over_1px": float(np.mean(e > 1.0)) if n else nan}
