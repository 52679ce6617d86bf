"""Terrain-dependent elevation bias: correction of dh against maximum curvature.

Resolution differences between two DEMs show up as an elevation difference that grows
with curvature (the coarser DEM cuts ridges and fills valleys).  :class:`CurvatureBias`
estimates it as in xDEM ``TerrainBias(terrain_attribute="max_curvature")``, binning dh by
curvature and taking the median per bin, then fitting a smooth curve to the bin medians.
Optionally a second variable (minimum curvature, or elevation) adds a 2-D table of the
remaining bias: block-averaging acts on the Laplacian, the *sum* of both principal
curvatures, so maximum curvature alone leaves much of the resolution bias in place.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CurvatureBias"]


def _sample_valid(valid, n, seed):
    # Local copy of the co-registration sampler's idea, kept small: sort-free when all fit.
    idx = np.flatnonzero(valid)
    if n is not None and idx.size > n:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=n, replace=False))
    return idx


class CurvatureBias:
    """Bias of ``dh = ref - tba`` as a function of maximum curvature.

    Fitting: pixels where ``stable`` and both inputs are valid (a deterministic random
    subsample of at most ``subsample``) are split into ``bins`` quantile bins of
    curvature (equal counts); each bin gives the median curvature and the median dh
    (robust to outliers).  ``fit="polynomial"`` (default) fits a polynomial to the bin
    medians (weighted by bin counts), its degree (0..``max_degree``) chosen by 5-fold
    cross-validation over the bins; ``fit="linear"`` interpolates the bin medians linearly
    (xDEM's ``bin_apply_method="linear"``); ``fit="auto"`` picks whichever of the two has
    the smaller cross-validated error.  Outside the fitted curvature range the curve is
    held constant at its end values (no polynomial extrapolation).

    With ``second`` given to ``fit`` (and then to ``predict``), the stable residuals of that
    curve are binned in ``second_bins`` x ``second_bins`` quantile bins of (maximum
    curvature, second variable); the median per bin (bins with fewer than ``min_count``
    pixels count as 0) is interpolated bilinearly between bin centres and added to the
    curve.  Use the minimum curvature of the reference DEM
    (:func:`cryokit.elevation.terrain.principal_curvatures`) or its elevation.

    Use the curvature of the reference DEM (:func:`cryokit.elevation.terrain.max_curvature`,
    100 m^-1) for both ``fit`` and ``predict``.

    ``predict`` returns the bias to ADD to TBA, i.e. the expected ``ref - tba`` at that
    curvature: ``tba_corrected = tba + predict(curv)`` and
    ``dh_corrected = dh - predict(curv)``.

    Parameters
    ----------
    bins : int
        Number of quantile bins.
    fit : {"auto", "polynomial", "linear"}
    max_degree : int
        Largest polynomial degree tried by the cross-validation.
    subsample : int or None
    seed : int
    second_bins, min_count : int
        Size of the 2-D table of the optional second variable, and the smallest bin used.

    Examples
    --------
    >>> import numpy as np
    >>> curv = np.linspace(-2, 2, 2001)
    >>> dh = 0.5 * curv + 0.1 * curv ** 2          # a curvature-dependent bias
    >>> cb = CurvatureBias(bins=20, fit="polynomial").fit(dh, curv, np.ones(curv.shape, bool))
    >>> cb.meta["degree"], float(np.abs(dh - cb.predict(curv))[200:-200].max()) < 0.01
    (2, True)
    """

    def __init__(self, bins: int = 100, fit: str = "auto", max_degree: int = 6,
                 subsample: int | None = 2_000_000, seed: int = 0, second_bins: int = 24,
                 min_count: int = 30):
        if fit not in ("auto", "polynomial", "linear"):
            raise ValueError("fit must be 'auto', 'polynomial' or 'linear'")
        self.second_bins, self.min_count = int(second_bins), int(min_count)
        if bins < 2:
            raise ValueError("bins must be >= 2")
        self.bins, self.fit_method, self.max_degree = int(bins), fit, int(max_degree)
        self.subsample, self.seed = subsample, seed
        self.meta: dict = {}

    @staticmethod
    def _polyfit(x, y, w, deg):
        return np.polynomial.polynomial.polyfit(x, y, deg, w=np.sqrt(w))

    def fit(self, dh, curvature, stable, second=None) -> "CurvatureBias":
        """Fit on ``stable`` pixels; ``dh = ref - tba`` (m), ``curvature`` in 100 m^-1.

        ``second``: optional second variable on the same grid (e.g. minimum curvature).
        """
        dh = np.asarray(dh)
        curvature = np.asarray(curvature)
        if dh.shape != curvature.shape:
            raise ValueError(f"dh {dh.shape} and curvature {curvature.shape} differ in shape")
        valid = np.isfinite(dh) & np.isfinite(curvature)
        if second is not None:
            second = np.asarray(second)
            if second.shape != dh.shape:
                raise ValueError(f"second variable {second.shape} and dh {dh.shape} differ in shape")
            valid &= np.isfinite(second)
        if stable is not None:
            valid &= np.asarray(stable, bool)
        idx = _sample_valid(valid.ravel(), self.subsample, self.seed)
        if idx.size < 10 * self.bins:
            raise ValueError(f"CurvatureBias: {idx.size} valid stable pixels, need >= {10 * self.bins}")
        c = curvature.ravel()[idx].astype(np.float64)
        d = dh.ravel()[idx].astype(np.float64)
        order = np.argsort(c, kind="stable")
        c, d = c[order], d[order]
        v = None if second is None else second.ravel()[idx].astype(np.float64)[order]
        # Equal-count bins on the sorted sample: quantile bins without ties trouble.
        cuts = np.linspace(0, c.size, self.bins + 1).round().astype(int)
        xs, ys, ns, edges = [], [], [], [float(c[0])]
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            xs.append(float(np.median(c[lo:hi])))
            ys.append(float(np.median(d[lo:hi])))
            ns.append(int(hi - lo))
            edges.append(float(c[hi - 1]))
        x, y, n = np.array(xs), np.array(ys), np.array(ns, float)
        x0 = float(np.median(x))
        xscale = float(max(np.abs(x - x0).max(), 1e-12))
        meta = {"fit": self.fit_method, "bins": self.bins, "bin_edges": edges,
                "bin_curvature": xs, "bin_medians": ys, "bin_counts": ns,
                "range": [float(x.min()), float(x.max())], "x_centre": x0, "x_scale": xscale,
                "count": int(idx.size)}
        folds = np.arange(x.size) % 5
        if self.fit_method in ("auto", "polynomial"):
            u = (x - x0) / xscale
            scores = []
            for deg in range(0, min(self.max_degree, x.size - 2) + 1):
                err = 0.0
                for k in range(5):
                    tr, te = folds != k, folds == k
                    coef = self._polyfit(u[tr], y[tr], n[tr], deg)
                    err += float(np.sum(n[te] * (y[te] - np.polynomial.polynomial.polyval(u[te], coef)) ** 2))
                scores.append(err / n.sum())
            # Smallest degree within 2 % of the best score: the simpler curve when they tie.
            best = min(scores)
            deg = next(i for i, s in enumerate(scores) if s <= best * 1.02 + 1e-12)
            coef = self._polyfit(u, y, n, deg)
            meta.update({"degree": int(deg), "coefficients": [float(v) for v in coef],
                         "cv_mse": [float(s) for s in scores]})
        if self.fit_method == "auto":
            # Same folds for the bin interpolation: each left-out bin from its neighbours.
            err = 0.0
            for k in range(5):
                tr, te = folds != k, folds == k
                err += float(np.sum(n[te] * (y[te] - np.interp(x[te], x[tr], y[tr])) ** 2))
            meta["cv_mse_linear"] = err / n.sum()
            meta["fit"] = "linear" if meta["cv_mse_linear"] < best else "polynomial"
        self.meta = meta
        if v is not None:
            self._fit_second(c, v, d - self._curve(c))
        return self

    def _fit_second(self, c, v, resid) -> None:
        nb = self.second_bins
        q = np.linspace(0.0, 1.0, nb + 1)
        ec, ev = np.quantile(c, q), np.quantile(v, q)
        ic = np.clip(np.searchsorted(ec, c, side="right") - 1, 0, nb - 1)
        iv = np.clip(np.searchsorted(ev, v, side="right") - 1, 0, nb - 1)
        cell = ic * nb + iv
        order = np.argsort(cell, kind="stable")
        cell, r = cell[order], resid[order]
        starts = np.searchsorted(cell, np.arange(nb * nb + 1))
        table = np.zeros(nb * nb)
        counts = np.diff(starts)
        for b in np.flatnonzero(counts >= self.min_count):
            table[b] = np.median(r[starts[b]:starts[b + 1]])
        self.meta["second"] = {"bins": nb, "min_count": self.min_count,
                               "curvature_centres": (0.5 * (ec[:-1] + ec[1:])).tolist(),
                               "second_centres": (0.5 * (ev[:-1] + ev[1:])).tolist(),
                               "table": table.reshape(nb, nb).tolist(),
                               "counts": counts.reshape(nb, nb).tolist()}

    def curve(self, curvature) -> np.ndarray:
        """The fitted bias against maximum curvature alone (no second-variable table)."""
        if not self.meta:
            raise RuntimeError("CurvatureBias is not fitted yet: call fit() first")
        lo, hi = self.meta["range"]
        return self._curve(np.clip(np.asarray(curvature, dtype=np.float64), lo, hi))

    def _curve(self, cc):
        if self.meta["fit"] == "polynomial":
            u = (cc - self.meta["x_centre"]) / self.meta["x_scale"]
            return np.polynomial.polynomial.polyval(u, np.array(self.meta["coefficients"]))
        return np.interp(cc, self.meta["bin_curvature"], self.meta["bin_medians"])


    def predict(self, curvature, second=None) -> np.ndarray:
        """Bias to ADD to TBA (= expected ``ref - tba``) at each curvature; NaN stays NaN.

        ``second`` is required when the model was fitted with a second variable.
        """
        if not self.meta:
            raise RuntimeError("CurvatureBias is not fitted yet: call fit() first")
        curv = np.asarray(curvature)
        lo, hi = self.meta["range"]
        cc = np.clip(curv.astype(np.float64), lo, hi)
        out = self._curve(cc)
        bad = ~np.isfinite(curv)
        sec = self.meta.get("second")
        if sec is not None:
            if second is None:
                raise ValueError("this CurvatureBias was fitted with a second variable: pass it to predict()")
            from scipy.interpolate import RegularGridInterpolator
            xc, vc = np.array(sec["curvature_centres"]), np.array(sec["second_centres"])
            sv = np.asarray(second, dtype=np.float64)
            bad |= ~np.isfinite(sv)
            interp = RegularGridInterpolator((xc, vc), np.array(sec["table"]), method="linear")
            # NaN pixels are masked below; any in-range value keeps the interpolator quiet.
            pts = np.stack([np.clip(np.nan_to_num(curv.astype(np.float64), nan=xc[0]), xc[0], xc[-1]).ravel(),
                            np.clip(np.nan_to_num(sv, nan=vc[0]), vc[0], vc[-1]).ravel()], axis=1)
            out = out + interp(pts).reshape(curv.shape)
        out = np.where(bad, np.nan, out)
        return out.astype(np.float32) if curv.dtype == np.float32 else out
