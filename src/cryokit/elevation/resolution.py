"""Resolution bias as a smoothing: dh explained by Gaussian high-passes of the sharper DEM.

A coarser (or smoother) DEM is, to first order, the sharper one convolved with a kernel K, so
the resolution part of ``dh = ref - tba`` is ``z - K * z`` of the sharper DEM ``z`` (with a sign
that says which one is smoother).  :class:`ResolutionBias` writes K as a mix of Gaussians and
fits ``dh = c + sum_k a_k (z - G_k * z)`` on stable terrain by iteratively reweighted least
squares.  Unlike a table of dh against curvature, it predicts the bias at every scale and in
the tails of the curvature distribution (ridges, gullies), where a per-bin median is weakest.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..core.robust import nmad

__all__ = ["ResolutionBias", "highpasses", "kernel_sigmas"]

SIGMAS = (0.5, 1.0, 2.0, 4.0)   # Gaussian widths in units of the coarser DEM's pixel
TRUNCATE = 4.0
MAX_RATIO = 8.0                 # widest kernel: 32 common-grid pixels


def kernel_sigmas(coarse_m: float, grid_m: float) -> tuple[float, ...]:
    """The Gaussians' standard deviations in pixels of the common grid: :data:`SIGMAS`
    times the coarser DEM's pixel (``coarse_m``) over the grid's (``grid_m``), capped at
    :data:`MAX_RATIO`.

    Examples
    --------
    >>> kernel_sigmas(90.0, 90.0), kernel_sigmas(90.0, 30.0)
    ((0.5, 1.0, 2.0, 4.0), (1.5, 3.0, 6.0, 12.0))
    """
    ratio = min(max(coarse_m / grid_m, 1.0), MAX_RATIO)
    return tuple(round(s * ratio, 6) for s in SIGMAS)


def halo_rows(sigmas) -> int:
    """Rows of context a block needs so that its high-passes do not depend on the cut."""
    return int(np.ceil(TRUNCATE * max(sigmas))) + 1 if sigmas else 0


def highpasses(z: np.ndarray, sigmas) -> np.ndarray:
    """``z - G_s * z`` for each ``s`` in ``sigmas`` (pixels), stacked on a last axis.

    Voids do not spread: the smoothing is normalised by the smoothed validity, and void
    pixels stay NaN. Next to a void (or the grid's edge) the window is lopsided, so the normalised mean of a
    slope sits off its centre; a first-order term (the local gradient times the offset of
    the window's centroid) puts it back, so that a plane keeps no high-pass there. In
    float64, so that a block's values do not depend on its neighbours' rounding.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.add.outer(np.arange(20.0), np.arange(20.0))    # a plane: no high-pass
    >>> z[8:10, 8:10] = np.nan                               # even beside a void
    >>> hp = highpasses(z, (1.0, 2.0))
    >>> hp.shape, float(np.nanmax(np.abs(hp[4:-4, 4:-4]))) < 1e-6
    ((20, 20, 2), True)
    """
    z = np.asarray(z, dtype=np.float64)
    valid = np.isfinite(z)
    out = np.full(z.shape + (len(sigmas),), np.nan)
    if not valid.any():
        return out
    full = bool(valid.all())
    filled = z if full else np.where(valid, z, 0.0)
    w = valid.astype(np.float64)
    gy, gx = _gradient(np.where(valid, z, np.nan), 0), _gradient(np.where(valid, z, np.nan), 1)
    r_idx = np.arange(z.shape[0], dtype=np.float64)
    c_idx = np.arange(z.shape[1], dtype=np.float64)

    def smooth(a, s):
        # Beyond the grid is void, as a void is: one first-order rule for both.
        return ndimage.gaussian_filter(a, s, mode="constant", cval=0.0, truncate=TRUNCATE)

    def smooth1(a, s):
        return ndimage.gaussian_filter1d(a, s, mode="constant", cval=0.0, truncate=TRUNCATE)

    for k, s in enumerate(sigmas):
        if full:
            # No void: the weights and the centroid offsets are separable, so 1-D filters
            # give them (only the grid's edges make them differ from 1 and 0).
            wr, wc = smooth1(np.ones(z.shape[0]), s), smooth1(np.ones(z.shape[1]), s)
            den = np.multiply.outer(wr, wc)
            dr = (smooth1(r_idx, s) / wr - r_idx)[:, None]
            dc = (smooth1(c_idx, s) / wc - c_idx)[None, :]
        else:
            den = smooth(w, s)
            inv = 1.0 / np.maximum(den, 1e-12)
            dr = smooth(r_idx[:, None] * w, s) * inv - r_idx[:, None]
            dc = smooth(c_idx[None, :] * w, s) * inv - c_idx[None, :]
        hp = z - smooth(filled, s) / np.maximum(den, 1e-12)
        hp += gy * dr
        hp += gx * dc
        out[..., k] = np.where(valid & (den > 0.25), hp, np.nan)
    return out


def _gradient(z: np.ndarray, axis: int) -> np.ndarray:
    """Central differences, one-sided where a neighbour is void, 0 where both are."""
    z = np.moveaxis(z, axis, 0)
    fwd = np.full(z.shape, np.nan)
    bwd = np.full(z.shape, np.nan)
    fwd[:-1] = z[1:] - z[:-1]
    bwd[1:] = z[1:] - z[:-1]
    g = np.where(np.isfinite(fwd) & np.isfinite(bwd), 0.5 * (fwd + bwd),
                 np.where(np.isfinite(fwd), fwd, bwd))
    return np.moveaxis(np.nan_to_num(g), 0, axis)


class ResolutionBias:
    """``dh ~ c + sum_k a_k hp_k``: the resolution bias from high-passes of the sharper DEM.

    ``fit(dh, hp)`` on stable samples (``hp`` from :func:`highpasses`, shape ``(n, k)``);
    ``predict(hp)`` returns the bias to ADD to TBA (the expected ``ref - tba``), NaN where a
    high-pass is. Fitted on at most ``subsample`` pixels (every k-th). Robust: Huber-like weights (3 NMAD) for ``iterations`` passes, so that
    unmasked change on stable ground does not steer the fit; the intercept then puts the
    residuals' median at 0.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> hp = rng.normal(size=(5000, 2))
    >>> dh = 0.3 + 0.8 * hp[:, 1] + rng.normal(0, 0.1, 5000)
    >>> rb = ResolutionBias((1.0, 2.0)).fit(dh, hp)
    >>> [round(abs(v), 2) for v in rb.meta["coefficients"]], round(rb.meta["intercept"], 2)
    ([0.0, 0.8], 0.3)
    """

    def __init__(self, sigmas, iterations: int = 5, subsample: int = 500_000):
        self.sigmas = tuple(float(s) for s in sigmas)
        self.iterations, self.subsample = int(iterations), int(subsample)
        self.meta: dict = {}

    def fit(self, dh, hp) -> "ResolutionBias":
        dh, hp = np.asarray(dh, np.float64), np.asarray(hp, np.float64)
        ok = np.isfinite(dh) & np.isfinite(hp).all(axis=1)
        if ok.sum() < 100 * (hp.shape[1] + 1):
            raise ValueError(f"ResolutionBias: {int(ok.sum())} valid stable pixels, need "
                             f">= {100 * (hp.shape[1] + 1)}")
        # A few weights from half a million pixels are known to ~1e-3 of their spread; a
        # regular stride keeps the sample spread over the grid and fixed.
        idx = np.flatnonzero(ok)[::max(1, -(-int(ok.sum()) // self.subsample))]
        y, x = dh[idx], np.column_stack([np.ones(idx.size), hp[idx]])
        w = np.ones(y.size)
        before = nmad(y)
        for _ in range(self.iterations):
            # Normal equations: a handful of columns, so x'Wx is tiny and well-conditioned
            # (the high-passes are of different widths); far faster than an SVD of x.
            xw = x * w[:, None]
            coef = np.linalg.solve(xw.T @ x, xw.T @ y)
            r = y - x @ coef
            s = max(nmad(r), 1e-6)
            w = np.minimum(1.0, 3.0 * s / np.maximum(np.abs(r - np.median(r)), 1e-12))
        # The vertical shift before it left the stable median at 0: so does this step.
        coef[0] += np.median(r)
        r -= np.median(r)
        self.meta = {"model": "dh = intercept + sum_k a_k (z - G(sigma_k) * z), z the sharper DEM",
                     "sigmas_px": list(self.sigmas), "intercept": float(coef[0]),
                     "coefficients": [float(v) for v in coef[1:]], "count": int(y.size),
                     "nmad_before": float(before), "nmad_after": float(nmad(r))}
        return self

    def predict(self, hp) -> np.ndarray:
        if not self.meta:
            raise RuntimeError("ResolutionBias is not fitted yet: call fit() first")
        hp = np.asarray(hp)
        out = np.full(hp.shape[:-1], self.meta["intercept"])
        for k, a in enumerate(self.meta["coefficients"]):
            out += a * hp[..., k]
        return out
