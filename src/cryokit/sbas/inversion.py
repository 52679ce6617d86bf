"""Small-baseline (SBAS) inversion: unwrapped interferograms -> phase series per pixel.

Model: interferogram ``k`` between dates ``i < j`` is ``phase[j] - phase[i]`` (radians, or
any unit: the inversion is linear), with ``phase[0] = 0``; see :mod:`.network`. Each pixel
is solved by (weighted) least squares over its valid (finite) interferograms:

- **unweighted**: with ``min_group``, pixels are grouped by their validity pattern (which
  interferograms are finite); a pattern shared by at least ``min_group`` pixels gets one
  pseudo-inverse and a matrix product over all its pixels, rarer patterns go to the kernel
  below. By default every pixel goes to the kernel, which was faster when measured (see
  :func:`invert`).
- **weighted** (``weights`` given, e.g. from coherence by :func:`coherence_weights`): every
  pixel has its own normal equations ``AᵀWA x = AᵀWy``; a numba kernel builds them from the
  pair list (A has two non-zeros per row), factorises them by Cholesky and solves, in
  parallel over pixels. It is the same estimator as MintPy's weighted least squares
  (``scipy.linalg.lstsq`` on ``sqrt(W) A``), without a Python loop per pixel.

A pixel whose valid interferograms do not connect all dates (zero pivot in the Cholesky
factor, or a disconnected pattern) gets NaN: no minimum-norm solution is made up for the
dates it cannot see. Its temporal coherence is NaN too and ``n_obs`` says how many
interferograms it had.

Temporal coherence is MintPy's: ``|mean_k exp(j r_k)|`` over the pixel's valid
interferograms, ``r`` the (unweighted) residual in radians; it is meaningful only for phase
in radians (for other units, scale first, see :func:`invert`'s ``phase_scale``).

Conversion to displacement: ``d = -phase * wavelength / (4 pi)``, positive **towards the
satellite** (range shortening), as MintPy (``phase2range = -wavelength / (4 pi)``), GAMMA and
ISCE, whose unwrapped phase grows with range.

Examples
--------
>>> import numpy as np
>>> from cryokit.sbas.network import sequential_network
>>> truth = np.array([0.0, 1.0, 1.5, 3.0])[:, None]          # 4 dates, 1 pixel, radians
>>> pairs = sequential_network(4, 2)
>>> ifgs = truth[pairs[:, 1]] - truth[pairs[:, 0]]
>>> res = invert(ifgs, pairs, 4)
>>> np.round(res.phase[:, 0], 6).tolist(), round(float(res.temporal_coherence[0]), 6)
([0.0, 1.0, 1.5, 3.0], 1.0)
>>> ifgs[[0, 2, 3]] = np.nan      # date 1 loses all its interferograms
>>> bool(np.isnan(invert(ifgs, pairs, 4).phase[1, 0]))
True
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numba
import numpy as np

from .network import check_network, design_matrix, subset_design

SENTINEL1_WAVELENGTH_M = 0.05546576
SIGN_CONVENTION = ("LOS displacement positive towards the satellite (range shortening); "
                   "d = -phase * wavelength / (4 pi), interferogram = phase(later) - "
                   "phase(earlier), as MintPy")


@dataclass
class SbasResult:
    """Output of :func:`invert`, pixels in the shape of the input's trailing axes.

    Attributes
    ----------
    phase : (n_dates, ...) float64
        Phase (input unit) relative to the first date (or to the first date of each subset,
        see ``subset``); NaN where the pixel's network is not connected.
    temporal_coherence : (...) float64
        ``|mean exp(j residual)|`` over the pixel's valid interferograms, in [0, 1].
    n_obs : (...) int32
        Valid interferograms used per pixel.
    subset : (n_dates,) int
        Connected subset of each date (all 0 for a connected network).
    info : dict
        Counts (pixels solved, by group / by kernel, disconnected) for the report.
    """

    phase: np.ndarray
    temporal_coherence: np.ndarray
    n_obs: np.ndarray
    subset: np.ndarray
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- weights

def _phase_pdf_ds(looks: int, coherence: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """PDF of the interferometric phase of a distributed scatterer, (len(phi), len(coherence)).

    Tough et al. (1995) eq. 66 / Hanssen (2001) eq. 4.2.23, for ``looks`` independent looks,
    written as MintPy's ``phase_pdf_ds``; the Gamma-function ratios go through ``lgamma``
    so that they stay finite up to L = 80.
    """
    L = looks
    g = coherence[None, :]
    beta = g * np.cos(phi)[:, None]
    one_b = 1.0 - beta ** 2
    b = math.exp(math.lgamma(2 * L - 1) - 2 * math.lgamma(L) - 2 * (L - 1) * math.log(2.0))
    c = (2 * L - 1) * beta / one_b ** (L + 0.5) * (np.pi / 2 + np.arcsin(beta)) + 1 / one_b ** L
    d = np.zeros_like(beta)
    for r in range(L - 1):
        ratio = math.exp(math.lgamma(L - 0.5) - math.lgamma(L - 0.5 - r)
                         + math.lgamma(L - 1 - r) - math.lgamma(L - 1))
        d += ratio * (1 + (2 * r + 1) * beta ** 2) / one_b ** (r + 2)
    if L > 1:
        d /= 2 * (L - 1)
    return (1 - g ** 2) ** L / (2 * np.pi) * (b * c + d)


_COH_STEP = 0.005


@functools.lru_cache(maxsize=16)
def _phase_variance_lut(looks: int) -> tuple[np.ndarray, np.ndarray]:
    """MintPy's look-up table of DS phase variance: coherence bin centres 0.0025 ... 0.9975
    and the variance (rad²) integrated on as many phase samples over [-π, π]."""
    n = int(1.0 / _COH_STEP)
    coh = np.linspace(_COH_STEP, 1.0, num=n) - _COH_STEP / 2.0
    phi = np.linspace(-np.pi, np.pi, n)
    var = np.sum(phi[:, None] ** 2 * _phase_pdf_ds(looks, coh, phi), axis=0) * (2 * np.pi / n)
    # near γ = 1 the coarse quadrature can go <= 0; MintPy takes the least positive value
    bad = var <= 0
    var[bad] = np.min(var[~bad]) if not bad.all() else np.finfo(np.float64).eps
    return coh, var


def phase_variance(coherence, looks: float = 1.0) -> np.ndarray:
    """Phase variance (rad²) of distributed scatterers from their coherence, as MintPy.

    MintPy ``coherence2phase_variance(..., scatter='DS')``: the variance of the Tough et al.
    (1995) phase PDF for L looks (L rounded, at least 1 and at most 80, where MintPy caps it
    to keep the Gamma functions finite), tabulated on 200 coherence bins of 0.005 and
    looked up by the bin below (coherence clipped to the table's [0.0025, 0.9975]).
    The table is kept as MintPy's so that weights (and solutions) agree with it: its phase
    quadrature is within 2 % of the exact variance for γ <= 0.95, but overestimates it near
    γ = 1 for many looks (x1.8 at γ = 0.99, L = 80), where the PDF is narrower than a step.

    Examples
    --------
    >>> v = phase_variance(np.array([0.1, 0.5, 0.9]), looks=10)
    >>> bool(v[0] > v[1] > v[2]), round(float(v[2]), 4)
    (True, 0.0136)
    """
    L = min(max(int(np.rint(looks)), 1), 80)
    coh_lut, var_lut = _phase_variance_lut(L)
    g = np.clip(np.asarray(coherence, dtype=np.float64), coh_lut.min(), coh_lut.max())
    idx = ((g - coh_lut.min()) / _COH_STEP).astype(np.int16)
    return var_lut[idx]


def coherence_weights(coherence: np.ndarray, looks: float = 1.0, func: str = "fim",
                      epsilon: float = 0.05) -> np.ndarray:
    """Weights (not square roots) of interferograms from their spatial coherence, as MintPy.

    Parameters
    ----------
    coherence : array
        Coherence in [0, 1]; NaN and values below ``epsilon`` are set to ``epsilon``.
    looks : float
        Number of independent looks L (MintPy: ``NCORRLOOKS`` or looks / 1.94 for S1 IW),
        rounded and at least 1. It scales ``fim`` weights uniformly (no effect on the
        solution) but changes the shape of ``var`` weights.
    func : {"fim", "coh", "var"}
        ``"fim"``: Fisher information index ``2 L γ² / (1 - γ²)`` with γ <= 1 - 1e-3
        (Seymour & Cumming 1994; MintPy ``weight_func='fim'``). ``"coh"``: γ itself
        (MintPy ``'coh'``). ``"var"``: inverse of the phase variance of a distributed
        scatterer, :func:`phase_variance` (Tough et al. 1995; MintPy ``'var'``, its default).

    Examples
    --------
    >>> coherence_weights(np.array([0.0, 0.5, 1.0]), looks=4).round(2).tolist()
    [0.02, 2.67, 3994.0]
    >>> coherence_weights(np.array([0.3, 0.9]), looks=10, func="var").round(1).tolist()
    [1.2, 73.8]
    """
    g = np.array(coherence, dtype=np.float64)
    g = np.where(np.isnan(g) | (g < epsilon), epsilon, g)
    L = max(int(np.rint(looks)), 1)
    if func == "fim":
        g = np.minimum(g, 1.0 - 1e-3)
        return 2.0 * L * g ** 2 / (1.0 - g ** 2)
    if func == "coh":
        return g
    if func == "var":
        return 1.0 / phase_variance(g, L)
    raise ValueError(f"weight function must be one of fim, coh, var; got {func!r}")


# --------------------------------------------------------------------------- kernel

@numba.njit(parallel=True, cache=True, fastmath=False)
def _solve_pixels(y, w, use_w, pi, pj, m, x, tcoh, nobs):  # pragma: no cover - numba
    """Per pixel: normal equations from the pair list, Cholesky, solve, temporal coherence.

    y, w: (K, P); pi, pj: (K,) date indices (earlier, later); m = n_dates - 1 unknowns;
    x: (m, P) out; tcoh, nobs: (P,) out.
    """
    K, P = y.shape
    for p in numba.prange(P):
        N = np.zeros((m, m))
        b = np.zeros(m)
        n = 0
        for k in range(K):
            v = y[k, p]
            if not np.isfinite(v):
                continue
            wk = w[k, p] if use_w else 1.0
            if not (wk > 0.0):
                continue
            n += 1
            i = pi[k] - 1
            j = pj[k] - 1
            if j >= 0:
                N[j, j] += wk
                b[j] += wk * v
            if i >= 0:
                N[i, i] += wk
                b[i] -= wk * v
                if j >= 0:
                    N[i, j] -= wk
                    N[j, i] -= wk
        nobs[p] = n
        if n == 0:
            for a in range(m):
                x[a, p] = np.nan
            tcoh[p] = np.nan
            continue
        scale = 0.0
        for a in range(m):
            scale = max(scale, N[a, a])
        ok = scale > 0.0
        # Cholesky, lower triangle in place; a zero pivot means a date not connected to date 0.
        for a in range(m):
            if not ok:
                break
            s = N[a, a]
            for c in range(a):
                s -= N[a, c] * N[a, c]
            if s <= 1e-10 * scale:
                ok = False
                break
            d = np.sqrt(s)
            N[a, a] = d
            for r in range(a + 1, m):
                t = N[r, a]
                for c in range(a):
                    t -= N[r, c] * N[a, c]
                N[r, a] = t / d
        if not ok:
            for a in range(m):
                x[a, p] = np.nan
            tcoh[p] = np.nan
            continue
        for a in range(m):             # L z = b
            t = b[a]
            for c in range(a):
                t -= N[a, c] * b[c]
            b[a] = t / N[a, a]
        for a in range(m - 1, -1, -1):  # Lᵀ x = z
            t = b[a]
            for c in range(a + 1, m):
                t -= N[c, a] * b[c]
            b[a] = t / N[a, a]
        cs = 0.0
        sn = 0.0
        for k in range(K):
            v = y[k, p]
            if not np.isfinite(v):
                continue
            if use_w and not (w[k, p] > 0.0):
                continue
            i = pi[k] - 1
            j = pj[k] - 1
            r = v - ((b[j] if j >= 0 else 0.0) - (b[i] if i >= 0 else 0.0))
            cs += np.cos(r)
            sn += np.sin(r)
        tcoh[p] = np.sqrt(cs * cs + sn * sn) / n
        for a in range(m):
            x[a, p] = b[a]


# --------------------------------------------------------------------------- grouping

def _pattern_keys(valid: np.ndarray) -> np.ndarray:
    """One hashable key per pixel (column) of a (K, P) boolean validity array."""
    packed = np.packbits(valid, axis=0)                   # (ceil(K/8), P) uint8
    nb = packed.shape[0]
    pad = (-nb) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros((pad, packed.shape[1]), np.uint8)])
    words = np.ascontiguousarray(packed.T).view(np.uint64)  # (P, nwords)
    if words.shape[1] == 1:
        return words[:, 0]
    return words.view(np.dtype((np.void, 8 * words.shape[1])))[:, 0]


def _solve_block(y: np.ndarray, w: np.ndarray | None, pairs: np.ndarray, n_dates: int,
                 a: np.ndarray, min_group: int, stats: dict) -> tuple:
    """Solve a (K, P) block; returns x (n_dates - 1, P), tcoh (P,), nobs (P,)."""
    K, P = y.shape
    m = n_dates - 1
    x = np.full((m, P), np.nan)
    tcoh = np.full(P, np.nan)
    nobs = np.zeros(P, np.int32)
    rest = np.arange(P)
    if w is None and P and min_group <= P:
        valid = np.isfinite(y)
        keys = _pattern_keys(valid)
        uniq, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                                 return_counts=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts)])
        in_group = np.zeros(P, bool)
        for g in np.flatnonzero(counts >= min_group):
            cols = order[bounds[g]:bounds[g + 1]]
            rows = valid[:, first[g]]
            in_group[cols] = True
            k = int(rows.sum())
            nobs[cols] = k
            if k == 0:
                continue
            sub = pairs[rows]
            if check_network(sub, n_dates).n_components > 1:
                stats["disconnected"] += len(cols)
                continue
            ag = a[rows]
            pinv = np.linalg.pinv(ag)        # full column rank here: the LS solution
            yg = y[rows][:, cols].astype(np.float64)
            xg = pinv @ yg
            x[:, cols] = xg
            r = yg - ag @ xg
            tcoh[cols] = np.hypot(np.cos(r).sum(0), np.sin(r).sum(0)) / k
            stats["grouped"] += len(cols)
            stats["groups"] += 1
        rest = np.flatnonzero(~in_group)
    if len(rest):
        yr = np.ascontiguousarray(y[:, rest], dtype=np.float64)
        wr = (np.ascontiguousarray(w[:, rest], dtype=np.float64) if w is not None
              else np.zeros((1, 1)))
        xr = np.empty((m, len(rest)))
        tr = np.empty(len(rest))
        nr = np.empty(len(rest), np.int32)
        _solve_pixels(yr, wr, w is not None, pairs[:, 0].astype(np.int64),
                      pairs[:, 1].astype(np.int64), m, xr, tr, nr)
        x[:, rest], tcoh[rest], nobs[rest] = xr, tr, nr
        stats["per_pixel"] += len(rest)
        stats["disconnected"] += int(np.sum(np.isnan(tr) & (nr > 0)))
    return x, tcoh, nobs


# --------------------------------------------------------------------------- public

def invert(ifgs: np.ndarray, pairs: np.ndarray, n_dates: int, weights: np.ndarray | None = None,
           *, allow_subsets: bool = False, min_group: int | None = None,
           block_pixels: int = 65536, phase_scale: float = 1.0) -> SbasResult:
    """Invert a network of interferograms to a phase series per pixel.

    Parameters
    ----------
    ifgs : (K, ...) array
        Unwrapped interferograms ``phase[later] - phase[earlier]``; NaN = no data.
    pairs : (K, 2) int array
        (earlier, later) date indices of each interferogram.
    n_dates : int
        Number of dates.
    weights : (K, ...) array, optional
        Weights (e.g. :func:`coherence_weights`); None for unweighted least squares. A
        weight <= 0 drops that observation.
    allow_subsets : bool
        When the network is not connected: False raises ``ValueError``; True solves each
        connected subset on its own, each referenced to (zero at) its own first date.
    min_group : int, optional
        Smallest number of pixels sharing a validity pattern that is solved by one
        pseudo-inverse and a matrix product; default: none, every pixel goes to the numba
        kernel. Per pixel the matrix product (2 K m flops) and the kernel's Cholesky
        (4 K + m³/6) cost about the same (K = 100, m = 27), and the kernel won when measured
        on 2 cores: 0.47-0.53 s against 0.67-1.57 s with ``min_group=2048`` for 160 000
        pixels, 85 % in one pattern (BLAS threads compete with numba's, and the grouped
        residual's cos/sin run on one core). Both give the same solution to rounding.
    block_pixels : int
        Pixels per block (bounds temporary memory).
    phase_scale : float
        Factor from the input unit to radians, for the temporal coherence only (e.g.
        ``4 pi / wavelength_mm`` for millimetres).

    Returns
    -------
    SbasResult
    """
    ifgs = np.asarray(ifgs)
    pairs = np.asarray(pairs, int).reshape(-1, 2)
    K = ifgs.shape[0]
    if len(pairs) != K:
        raise ValueError(f"{K} interferograms but {len(pairs)} pairs")
    if weights is not None and np.shape(weights) != ifgs.shape:
        raise ValueError(f"weights shape {np.shape(weights)} differs from {ifgs.shape}")
    if np.any(pairs[:, 0] >= pairs[:, 1]):
        raise ValueError("pairs must be (earlier, later) date indices")
    space = ifgs.shape[1:]
    y = ifgs.reshape(K, -1)
    w = None if weights is None else np.asarray(weights).reshape(K, -1)
    P = y.shape[1]
    net = check_network(pairs, n_dates)
    if not net.connected and not allow_subsets:
        raise ValueError(f"network not connected ({net.n_components} subsets)")
    phase = np.full((n_dates, P), np.nan)
    tcoh = np.full(P, np.nan)
    nobs = np.zeros(P, np.int32)
    stats = {"grouped": 0, "groups": 0, "per_pixel": 0, "disconnected": 0}
    subsets = subset_design(pairs, net.labels)
    for dates_c, ifg_c in subsets:
        nd = len(dates_c)
        if nd == 1:
            phase[dates_c[0]] = 0.0
            continue
        local = np.searchsorted(dates_c, pairs[ifg_c])
        a = design_matrix(local, nd)
        mg = min_group if min_group is not None else P + 1   # default: kernel only
        yc = y[ifg_c] * phase_scale if phase_scale != 1.0 else y[ifg_c]
        for p0 in range(0, P, block_pixels):
            p1 = min(p0 + block_pixels, P)
            wb = None if w is None else w[ifg_c, p0:p1]
            xb, tb, nb = _solve_block(yc[:, p0:p1], wb, local, nd, a, mg, stats)
            phase[dates_c[0], p0:p1] = np.where(np.isnan(xb[0]), np.nan, 0.0)
            phase[dates_c[1:], p0:p1] = xb / phase_scale
            nobs[p0:p1] += nb
            if len(subsets) == 1:
                tcoh[p0:p1] = tb
    if len(subsets) > 1:    # residuals of all subsets together, as for a connected network
        for p0 in range(0, P, block_pixels):
            p1 = min(p0 + block_pixels, P)
            tcoh[p0:p1] = temporal_coherence(y[:, p0:p1] * phase_scale, pairs,
                                             phase[:, p0:p1] * phase_scale)
        tcoh[np.isnan(phase).any(axis=0)] = np.nan
    info = {"pixels": int(P), "solved": int(np.isfinite(phase).all(axis=0).sum()),
            "solved_by_group": stats["grouped"], "groups": stats["groups"],
            "solved_per_pixel": stats["per_pixel"],
            "not_connected": stats["disconnected"],
            "no_data": int((nobs == 0).sum()), "n_subsets": len(subsets)}
    return SbasResult(phase.reshape((n_dates,) + space), tcoh.reshape(space),
                      nobs.reshape(space), net.labels, info)


def temporal_coherence(ifgs: np.ndarray, pairs: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """``|mean exp(j r)|`` over the valid interferograms, r = ifg - (phase[j] - phase[i]).

    Inputs in radians; shapes (K, ...) and (n_dates, ...).
    """
    pairs = np.asarray(pairs, int).reshape(-1, 2)
    r = ifgs - (phase[pairs[:, 1]] - phase[pairs[:, 0]])
    ok = np.isfinite(r)
    z = np.where(ok, np.exp(1j * np.where(ok, r, 0.0)), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(z.sum(0)) / ok.sum(0)


def phase_to_mm(phase: np.ndarray, wavelength_m: float = SENTINEL1_WAVELENGTH_M) -> np.ndarray:
    """LOS displacement in mm, positive towards the satellite: ``-phase * λ / (4 π)``.

    >>> round(float(phase_to_mm(-2 * np.pi)), 4)          # one fringe = λ / 2
    27.7329
    """
    return -np.asarray(phase) * (wavelength_m * 1000.0 / (4.0 * np.pi))


def linear_velocity(series: np.ndarray, t_years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope of ``series`` (n_dates, ...) over ``t_years`` and its std error.

    NaN-aware per pixel only in the all-or-nothing sense: a pixel with any NaN date gets NaN.

    >>> t = np.array([0.0, 0.5, 1.0])
    >>> v, s = linear_velocity(np.array([1.0, 2.0, 3.0])[:, None], t)
    >>> round(float(v[0]), 9), round(float(s[0]), 9)
    (2.0, 0.0)
    """
    t = np.asarray(t_years, float)
    g = np.column_stack([t, np.ones_like(t)])
    n = len(t)
    y = np.asarray(series, float).reshape(n, -1)
    coef, *_ = np.linalg.lstsq(g, np.nan_to_num(y), rcond=None)
    r = y - g @ coef
    dof = max(n - 2, 1)
    cov00 = np.linalg.inv(g.T @ g)[0, 0]
    std = np.sqrt(np.sum(r ** 2, axis=0) / dof * cov00)
    bad = np.isnan(y).any(axis=0)
    v = np.where(bad, np.nan, coef[0])
    std = np.where(bad, np.nan, std)
    return v.reshape(np.shape(series)[1:]), std.reshape(np.shape(series)[1:])


# --------------------------------------------------------------------------- reference

def choose_reference(temporal_coherence: np.ndarray, velocity: np.ndarray,
                     quantile: float = 0.9, min_coherence: float = 0.0) -> tuple[int, int, dict]:
    """Automatic reference pixel: coherent and moving like the bulk of coherent ground.

    Candidates are pixels with a full series whose temporal coherence is at least the
    ``quantile`` of all such pixels (and ``min_coherence``); among them, the pixel whose
    velocity is closest to the median velocity of the candidates, i.e. the most common
    motion of reliable ground, taken as stable (the interferograms' own arbitrary offsets
    move all pixels alike, so an absolute "low velocity" test is not meaningful before
    referencing). Ties go to the higher coherence.

    Returns
    -------
    row, col : int
    info : dict
        Rule and candidate count, for the report.

    Examples
    --------
    >>> tc = np.array([[0.99, 0.5], [0.98, 0.97]]); v = np.array([[1.0, 9.0], [5.0, 2.0]])
    >>> choose_reference(tc, v, quantile=0.0)[:2]   # median 3.5: tie of 5 and 2, coherence
    (1, 0)
    """
    tc = np.asarray(temporal_coherence, float)
    ok = np.isfinite(tc) & np.isfinite(velocity)
    if not ok.any():
        raise ValueError("no pixel with a full series to use as reference")
    thr = max(float(np.quantile(tc[ok], quantile)), min_coherence)
    cand = ok & (tc >= thr)
    if not cand.any():
        cand = ok & (tc >= float(np.max(tc[ok])))
    med = float(np.median(velocity[cand]))
    score = np.where(cand, np.abs(velocity - med) - 1e-6 * tc, np.inf)
    r, c = np.unravel_index(int(np.argmin(score)), tc.shape)
    return int(r), int(c), {
        "rule": (f"temporal coherence >= {thr:.3f} (quantile {quantile}), velocity closest "
                 "to the median velocity of those candidates"),
        "n_candidates": int(cand.sum()), "candidate_median_velocity": med}
