"""GLAFT-style quality figures of a velocity field (Zheng et al. 2023, The Cryosphere 17,
4063-4078): the spread of the velocities on static terrain, and of the along-flow strain rates
on the ice, each as the half-widths of the 2-sigma region of a kernel density estimate.

Metric 1 (static terrain): the (vx, vy) pairs of stable ground should all be zero; an
Epanechnikov KDE with the rule-of-thumb bandwidth 2.1991 s n^(-1/6) (s = (var_x var_y)^(1/4))
is evaluated on a 60 x 60 mesh around the median, then on a finer mesh spanning the region
where the density exceeds max / exp(2^2 / 2) (what a Gaussian has within 2 sigma); the
half-widths of that region are delta_x, delta_y, its density peak the bias, and the share of
points outside it the incorrect-match share. Metric 2 (along-flow strain): the strain-rate
tensor from Sobel gradients, rotated into the flow direction (median-filtered over about
1.5 km), and the same KDE on (e_x'x', e_x'y') of the ice. As in GLAFT the Sobel gradients are
not normalised (a factor 8 over a central difference), so the strain figures compare with
GLAFT's published ones, not with strain rates in 1/time.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.signal import medfilt2d

THRES_SIGMA = 2.0
MESH = 60


def _kde_region(x: np.ndarray, y: np.ndarray, thres_sigma: float = THRES_SIGMA,
                mesh: int = MESH) -> dict:
    from sklearn.neighbors import KernelDensity

    xy = np.vstack([x, y])
    cov = np.cov(xy)
    s = float((cov[0, 0] * cov[1, 1]) ** 0.25)
    n = xy.shape[1]
    kde = KernelDensity(kernel="epanechnikov", bandwidth=2.1991 * s * n ** (-1 / 6)).fit(xy.T)
    mx, my = float(np.median(x)), float(np.median(y))
    cut = np.exp(thres_sigma ** 2 / 2)

    def evaluate(half):
        gx, gy = np.meshgrid(np.linspace(mx - half, mx + half, mesh),
                             np.linspace(my - half, my + half, mesh))
        pts = np.column_stack([gx.ravel(), gy.ravel()])
        z = np.exp(kde.score_samples(pts))
        return pts, z, z >= z.max() / cut

    pts, z, inside = evaluate((thres_sigma + 1) * s)
    span = ((np.ptp(pts[inside, 0]) + np.ptp(pts[inside, 1])) / 2)
    pts, z, inside = evaluate(span)
    lo, hi = pts[inside].min(0), pts[inside].max(0)
    outside = (x < lo[0]) | (x > hi[0]) | (y < lo[1]) | (y > hi[1])
    peak = pts[np.argmax(z)]
    return {"delta": [float((hi[0] - lo[0]) / 2), float((hi[1] - lo[1]) / 2)],
            "peak": [float(peak[0]), float(peak[1])], "outside_share": float(outside.mean()),
            "n": int(n)}


def static_terrain(vx: np.ndarray, vy: np.ndarray, stable: np.ndarray) -> dict | None:
    """Metric 1 on the valid stable nodes: ``delta`` (x, y half-widths, velocity units),
    ``peak`` (the density peak: the remaining bias), ``outside_share`` (incorrect matches).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> vx, vy = rng.normal(0, 0.1, (2, 60, 60))
    >>> m = static_terrain(vx, vy, np.ones((60, 60), bool))
    >>> [bool(abs(d / 0.1 - 2) < 0.2) for d in m["delta"]]        # 2 sigma
    [True, True]
    """
    use = np.asarray(stable, bool) & np.isfinite(vx) & np.isfinite(vy)
    if use.sum() < 10:
        return None
    return _kde_region(vx[use], vy[use])


def flow_strain(vx: np.ndarray, vy: np.ndarray, ice: np.ndarray, dx: float, dy: float) -> dict | None:
    """Metric 2 on the valid ice nodes: ``delta`` = half-widths of (e_x'x', e_x'y') in GLAFT's
    units (velocity units per metre, unnormalised Sobel), with their peak and outside share.

    ``vx, vy`` are on a north-up grid (row 0 at the top), ``dx, dy`` its spacing in metres.
    """
    vx, vy = np.asarray(vx, float), np.asarray(vy, float)
    on_ice = np.asarray(ice, bool) & np.isfinite(vx) & np.isfinite(vy)
    if on_ice.sum() < 10:
        return None
    k = int(1500 / dx // 2 * 2 + 1)
    k = min(max(k, 3), 35)
    # the flow direction of the whole field, smoothed; NaN nodes stay NaN
    theta = medfilt2d(np.nan_to_num(np.arctan2(vy, vx)), k)
    cx, cy = np.where(on_ice, vx, np.nan), np.where(on_ice, vy, np.nan)
    # Cartesian orientation (row 0 at the bottom) for the y gradients, as GLAFT does
    fx, fy = np.flipud(cx), np.flipud(cy)
    sob = lambda a, ax: ndimage.sobel(a, axis=ax, mode="constant", cval=np.nan)  # noqa: E731
    exx = np.flipud(sob(fx, 1) / dx)
    eyy = np.flipud(sob(fy, 0) / dy)
    exy = np.flipud(0.5 * (sob(fx, 0) / dy + sob(fy, 1) / dx))
    c2, s2 = np.cos(2 * theta), np.sin(2 * theta)
    e_long = exx * np.cos(theta) ** 2 + eyy * np.sin(theta) ** 2 + exy * s2
    e_shear = 0.5 * (eyy - exx) * s2 + exy * c2
    use = on_ice & np.isfinite(e_long) & np.isfinite(e_shear)
    if use.sum() < 10:
        return None
    return _kde_region(e_long[use], e_shear[use])


def glaft_metrics(vx, vy, stable, ice, dx, dy, units: str) -> dict:
    """Both metrics and the invalid share, ready for a report."""
    valid = np.isfinite(vx) & np.isfinite(vy)
    m1 = static_terrain(vx, vy, stable) if stable is not None else None
    m2 = flow_strain(vx, vy, ice, dx, dy) if ice is not None else None
    return {"method": "GLAFT (Zheng et al. 2023): half-widths of the 2-sigma region of an "
                      "Epanechnikov KDE",
            "static_terrain": m1 and m1 | {"units": units},
            "along_flow_strain": m2 and m2 | {"units": f"{units} per m (unnormalised Sobel, "
                                                       "as GLAFT)"},
            "invalid_share": float(1 - valid.mean())}
