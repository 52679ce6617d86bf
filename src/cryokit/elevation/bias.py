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


def _sorted_quantiles(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(a, q)`` (linear method) of an already sorted ``a``."""
    pos = q * (a.size - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, a.size - 1)
    return a[lo] + (pos - lo) * (a[hi] - a[lo])


def _sorted_bins(a: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``clip(searchsorted(edges, a, "right") - 1, 0, nb - 1)`` for a sorted ``a``."""
    nb = edges.size - 1
    first = np.searchsorted(a, edges, side="left")   # where a reaches each edge
    step = np.zeros(a.size + 1, np.int32)
    np.add.at(step, first, 1)
    return np.clip(np.cumsum(step[:-1]) - 1, 0, nb - 1).astype(np.int32)


def _bracket(x: np.ndarray, knots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval ``k`` and fraction ``f`` of ``x`` (clipped to the knots) between increasing
    ``knots``, as ``np.interp`` uses them: ``knots[k] <= x <= knots[k + 1]``.

    A uniform look-up table with cells narrower than half the smallest knot gap gives each
    value's interval after at most one step forward: about 3x faster than a binary search
    (``searchsorted``/``interp``) per value.
    """
    n = knots.size
    shape = np.shape(x)
    if n < 2 or not knots[-1] > knots[0]:
        return np.zeros(shape, np.intp), np.zeros(shape)
    x = np.clip(np.nan_to_num(x, nan=knots[0]), knots[0], knots[-1])
    gaps = np.diff(knots)
    span = float(knots[-1] - knots[0])
    cells = int(min(2 * span / gaps[gaps > 0].min(), 1 << 20)) + 1
    left = knots[0] + np.arange(cells) * (span / cells)
    lut = np.clip(np.searchsorted(knots, left, side="right") - 1, 0, n - 2)
    u = ((x - knots[0]) * (cells / span)).astype(np.intp)
    np.clip(u, 0, cells - 1, out=u)
    k = lut[u]
    del u
    for _ in range(2):   # duplicated knots: one more step
        k += (x >= knots[np.minimum(k + 1, n - 1)]) & (k < n - 2)
    f = x - knots[k]
    g = gaps[k]
    np.divide(f, g, out=f, where=g > 0)
    f[g <= 0] = 0.0
    np.clip(f, 0.0, 1.0, out=f)
    return k, f


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
    (:func:`cryokit.core.terrain.principal_curvatures`) or its elevation.

    Use the curvature of the reference DEM (:func:`cryokit.core.terrain.max_curvature`,
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
        A constant ``meta["offset"]`` (m, 0 after ``fit``), when set, is added by ``predict``.
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
        c = curvature.ravel()[idx]
        # Sorting the curvature in its own dtype (SIMD argsort of float32) is ~8x faster
        # than a stable float64 sort; ties keep an arbitrary but fixed order.
        order = np.argsort(c)
        c = c[order].astype(np.float64)
        d = dh.ravel()[idx][order].astype(np.float64)
        v = None if second is None else second.ravel()[idx][order]
        # Equal-count bins on the sorted sample: quantile bins without ties trouble.
        cuts = np.linspace(0, c.size, self.bins + 1).round().astype(int)
        lo_, hi_ = cuts[:-1], cuts[1:]
        # c is sorted: a bin's median curvature is its middle element(s).
        xs = (0.5 * (c[(lo_ + hi_ - 1) // 2] + c[(lo_ + hi_) // 2])).tolist()
        ys = [float(np.median(d[a:b])) for a, b in zip(lo_, hi_)]
        ns = (hi_ - lo_).tolist()
        edges = [float(c[0])] + c[hi_ - 1].tolist()
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
        # c is sorted; v is sorted once.  Quantile edges and bin numbers then come from
        # positions in the sorted arrays instead of searches of every value.
        ec = _sorted_quantiles(c, q)
        order_v = np.argsort(v)
        v_sorted = v[order_v].astype(np.float64)
        ev = _sorted_quantiles(v_sorted, q)
        ic = _sorted_bins(c, ec)
        iv = np.empty(v.size, ic.dtype)
        iv[order_v] = _sorted_bins(v_sorted, ev)
        cell = ic * nb + iv
        # Small integer keys: numpy's stable sort is then a radix sort.
        order = np.argsort(cell.astype(np.int16) if nb * nb < 2 ** 15 else cell, kind="stable")
        r = resid[order]
        counts = np.bincount(cell, minlength=nb * nb)
        starts = np.concatenate([[0], np.cumsum(counts)])
        table = np.zeros(nb * nb)
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
        k, f = _bracket(cc, np.asarray(self.meta["bin_curvature"], float))
        ys = np.asarray(self.meta["bin_medians"], float)
        return ys[k] + f * (ys[np.minimum(k + 1, ys.size - 1)] - ys[k])


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
        del cc
        bad = ~np.isfinite(curv)
        sec = self.meta.get("second")
        if sec is not None:
            if second is None:
                raise ValueError("this CurvatureBias was fitted with a second variable: pass it to predict()")
            sv = np.asarray(second, dtype=np.float64)
            bad |= ~np.isfinite(sv)
            # Bilinear between bin centres, held constant beyond the outer ones.
            i, fi = _bracket(curv.astype(np.float64), np.array(sec["curvature_centres"]))
            j, fj = _bracket(sv, np.array(sec["second_centres"]))
            del sv
            table = np.array(sec["table"])
            nb_v = table.shape[1]
            flat = table.ravel()
            k = i * nb_v + j
            i1 = np.minimum(i + 1, table.shape[0] - 1) - i
            j1 = np.minimum(j + 1, nb_v - 1) - j
            out += ((1 - fi) * ((1 - fj) * flat[k] + fj * flat[k + j1])
                    + fi * ((1 - fj) * flat[k + i1 * nb_v] + fj * flat[k + i1 * nb_v + j1]))
        out += self.meta.get("offset", 0.0)
        out = np.where(bad, np.nan, out)
        return out.astype(np.float32) if curv.dtype == np.float32 else out
