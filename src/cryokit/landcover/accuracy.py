"""Accuracy of a class map: confusion matrix, overall accuracy, kappa, per-class precision /
recall / F1, area-adjusted accuracy and class areas with 95 % confidence intervals (Olofsson
et al. 2014), and spatially blocked cross-validation folds.

Conventions
-----------
The error matrix has **rows = map classes, columns = reference classes** (Olofsson et al.
2014, Congalton).  User's accuracy of class i = precision = n_ii / n_i. (row); producer's
accuracy = recall = n_ii / n_.i (column).

Area-adjusted estimates treat the map classes as strata of a stratified random sample:
``W_i = A_i / A`` is the mapped proportion of class i, ``p_ij = W_i n_ij / n_i.`` the estimated
area proportion of map class i and reference class j.  Standard errors are eqs. 4-7 and 10 of
Olofsson et al. (2014), "Good practices for estimating area and assessing accuracy of land
change", Remote Sensing of Environment 148, 42-57; intervals are +/- 1.96 SE.  They assume the
reference sample is a stratified random sample of the map classes; for a wall-to-wall reference
they equal the census values and the intervals shrink to almost nothing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Z95 = 1.959963984540054


def confusion_matrix(map_codes: np.ndarray, ref_codes: np.ndarray,
                     classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Error matrix in sample counts, rows = map class, columns = reference class.

    Pairs where either code is 0 (unlabelled / nodata) or not in ``classes`` are left out.

    Parameters
    ----------
    map_codes, ref_codes : integer arrays of the same shape.
    classes : class codes in matrix order (default: the union of codes present, sorted).

    Returns
    -------
    matrix : (K, K) int64
    classes : (K,) int

    Examples
    --------
    >>> m, c = confusion_matrix(np.array([1, 1, 2, 2, 0]), np.array([1, 2, 2, 2, 1]))
    >>> m.tolist(), c.tolist()
    ([[1, 1], [0, 2]], [1, 2])
    """
    m = np.asarray(map_codes).ravel().astype(np.int64)
    r = np.asarray(ref_codes).ravel().astype(np.int64)
    if m.shape != r.shape:
        raise ValueError(f"map and reference sizes differ: {m.size} vs {r.size}")
    ok = (m > 0) & (r > 0)
    m, r = m[ok], r[ok]
    classes = np.unique(np.concatenate([m, r])) if classes is None else np.asarray(classes, int)
    lut = np.full(max(int(classes.max(initial=0)), int(m.max(initial=0)),
                      int(r.max(initial=0))) + 1, -1, np.int64)
    lut[classes] = np.arange(len(classes))
    mi, ri = lut[m], lut[r]
    keep = (mi >= 0) & (ri >= 0)
    k = len(classes)
    mat = np.bincount(mi[keep] * k + ri[keep], minlength=k * k).reshape(k, k)
    return mat, classes


def _div(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1), np.nan)


def accuracy_metrics(matrix: np.ndarray) -> dict:
    """Sample-based accuracy of an error matrix (rows = map, columns = reference).

    Returns
    -------
    dict with ``overall_accuracy``, ``kappa`` (Cohen), ``precision`` (= user's accuracy, per
    map class), ``recall`` (= producer's accuracy, per reference class), ``f1``, ``macro_f1``
    (mean F1 over classes present in the map or the reference), ``n`` (samples),
    ``n_map``, ``n_reference`` (row and column totals).  Undefined ratios are NaN.

    Examples
    --------
    >>> r = accuracy_metrics(np.array([[45, 5], [10, 40]]))
    >>> r["overall_accuracy"], round(r["kappa"], 4), r["precision"].tolist()
    (0.85, 0.7, [0.9, 0.8])
    """
    from sklearn.metrics import accuracy_score, cohen_kappa_score, precision_recall_fscore_support

    mat = np.asarray(matrix, float)
    n = mat.sum()
    rows, cols = mat.sum(1), mat.sum(0)
    k = mat.shape[0]
    # scikit-learn's metrics on the matrix's cells as weighted (map, reference) samples
    m_idx, r_idx = np.divmod(np.arange(k * k), k)
    w = mat.ravel()
    keep = w > 0
    if keep.any():
        yt, yp, ww = r_idx[keep], m_idx[keep], w[keep]
        oa = accuracy_score(yt, yp, sample_weight=ww)
        kappa = (cohen_kappa_score(yt, yp, sample_weight=ww, labels=np.arange(k))
                 if len(np.unique(np.concatenate([yt, yp]))) > 1 or oa < 1 else np.nan)
        precision, recall, f1, _ = precision_recall_fscore_support(
            yt, yp, labels=np.arange(k), sample_weight=ww, zero_division=np.nan)
        kappa = float(kappa) if np.isfinite(kappa) else np.nan
    else:
        oa = kappa = np.nan
        precision = recall = f1 = np.full(k, np.nan)
    present = (rows + cols) > 0
    return {"n": int(n), "overall_accuracy": float(oa), "kappa": float(kappa),
            "precision": precision, "recall": recall, "f1": f1,
            "macro_f1": float(np.nanmean(np.where(present, np.nan_to_num(f1), np.nan)))
            if present.any() else float("nan"),
            "n_map": rows.astype(int), "n_reference": cols.astype(int)}


def area_adjusted(matrix: np.ndarray, mapped_area: Sequence[float], z: float = Z95) -> dict:
    """Stratified area and accuracy estimates (Olofsson et al. 2014), map classes as strata.

    Parameters
    ----------
    matrix : (K, K) sample counts, rows = map class (stratum), columns = reference class.
    mapped_area : (K,) area of each map class over the whole map (any unit; the estimated
        areas come back in the same unit).
    z : multiplier of the standard errors for the interval half-widths (1.96: 95 %).

    Returns
    -------
    dict of arrays (per class) and floats: ``weights`` W_i, ``proportions`` p_ij (K, K),
    ``area`` and ``area_ci`` (estimated area of each reference class, +/- half-width),
    ``users_accuracy``/``users_ci``, ``producers_accuracy``/``producers_ci``,
    ``overall_accuracy``/``overall_ci``.  A stratum with fewer than 2 samples gives NaN
    standard errors where it contributes.

    Examples
    --------
    Olofsson et al. (2014), section 5 (30 m pixels, areas in pixels, 0.09 ha each):

    >>> m = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
    >>> r = area_adjusted(m, [200_000, 150_000, 3_200_000, 6_450_000])
    >>> (r["area"][0] * 0.09).round(), (r["area_ci"][0] * 0.09).round()
    (np.float64(21158.0), np.float64(6158.0))
    >>> round(r["overall_accuracy"], 2), r["producers_accuracy"].round(2).tolist()
    (0.95, [0.75, 0.85, 0.93, 0.96])
    """
    n = np.asarray(matrix, float)
    area = np.asarray(mapped_area, float)
    if n.shape != (len(area), len(area)):
        raise ValueError(f"matrix {n.shape} does not match {len(area)} mapped areas")
    total = area.sum()
    w = area / total
    ni = n.sum(1)                                     # samples per stratum (map class)
    frac = _div(n, ni[:, None])                       # n_ij / n_i.
    frac = np.where(ni[:, None] > 0, frac, 0.0)
    p = w[:, None] * frac                             # eq. 9 (estimated area proportions)
    pj = p.sum(0)                                     # p_.j
    dof = np.where(ni > 1, ni - 1, np.nan)
    # eq. 10: SE of the area proportion of reference class k
    se_pj = np.sqrt(np.nansum(w[:, None] ** 2 * frac * (1 - frac) / dof[:, None], axis=0)
                    + np.where(np.any((ni <= 1)[:, None] & (frac > 0), axis=0), np.nan, 0))
    ua = _div(np.diag(p), p.sum(1))                   # eq. 2
    pa = _div(np.diag(p), pj)                         # eq. 3
    oa = float(np.trace(p))                           # eq. 1
    se_ua = np.sqrt(ua * (1 - ua) / dof)              # eq. 6
    se_oa = float(np.sqrt(np.nansum(w ** 2 * ua * (1 - ua) / dof)))  # eq. 5
    # eq. 7 with estimated reference totals N_.j = sum_i N_i. n_ij / n_i. (N in area units)
    nj_hat = (area[:, None] * frac).sum(0)
    se_pa = np.full(len(area), np.nan)
    for j in range(len(area)):
        if not nj_hat[j] > 0:
            continue
        others = [i for i in range(len(area)) if i != j]
        t1 = area[j] ** 2 * (1 - pa[j]) ** 2 * ua[j] * (1 - ua[j]) / dof[j] if ni[j] > 0 else 0.0
        t2 = pa[j] ** 2 * sum(area[i] ** 2 * frac[i, j] * (1 - frac[i, j]) / dof[i]
                              for i in others if frac[i, j] > 0)
        se_pa[j] = np.sqrt((t1 + t2) / nj_hat[j] ** 2)
    return {"weights": w, "proportions": p, "area": pj * total, "area_ci": z * se_pj * total,
            "users_accuracy": ua, "users_ci": z * se_ua,
            "producers_accuracy": pa, "producers_ci": z * se_pa,
            "overall_accuracy": oa, "overall_ci": z * se_oa}


def blocked_folds(rows: np.ndarray, cols: np.ndarray, block: int, k: int = 5,
                  seed: int = 0) -> np.ndarray:
    """Fold number (0..k-1) of each sample for spatially blocked cross-validation.

    Samples are grouped in square blocks of ``block`` x ``block`` pixels; whole blocks go to
    folds (in random order, each to the fold with fewest samples so far), so training and test
    samples of a fold are never in the same block and spatial autocorrelation does not inflate
    the estimate.  Folds hold about equal sample counts when there are many blocks.

    Examples
    --------
    >>> rows, cols = np.divmod(np.arange(400), 20)          # a 20 x 20 grid of samples
    >>> f = blocked_folds(rows, cols, block=5, k=4, seed=1)
    >>> np.bincount(f).tolist()                              # 16 blocks of 25 samples
    [100, 100, 100, 100]
    >>> len(np.unique(f[(rows < 5) & (cols < 5)]))           # one block, one fold
    1
    """
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    if block < 1 or k < 2:
        raise ValueError("block must be >= 1 and k >= 2")
    br, bc = rows // block, cols // block
    keys = br * (int(bc.max(initial=0)) + 1) + bc
    ids, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    if len(ids) < k:
        raise ValueError(f"only {len(ids)} block(s) hold samples; need at least k={k} "
                         "(use a smaller block)")
    order = np.random.default_rng(seed).permutation(len(ids))
    load = np.zeros(k, np.int64)
    fold_of_block = np.empty(len(ids), np.int64)
    for b in order:
        f = int(np.argmin(load))
        fold_of_block[b] = f
        load[f] += counts[b]
    return fold_of_block[inverse.ravel()]
