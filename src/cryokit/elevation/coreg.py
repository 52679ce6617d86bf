"""DEM co-registration: vertical shift, polynomial deramping, Nuth & Kääb (2011) shift.

Every step is a small fit/apply object working on plain arrays of ONE north-up grid:
``ref`` (reference DEM), ``tba`` (DEM to be aligned), ``stable`` (bool, where fitting is
allowed, e.g. off-glacier) and the grid's ``transform`` (:class:`affine.Affine`).  NaN is
nodata.  ``fit`` stores what it found in ``meta`` (a JSON-safe dict); ``apply`` returns
the corrected TBA on the same grid.

Sign convention (all steps): ``shift = (shift_x, shift_y, shift_z)`` in metres is the
translation that, ADDED to TBA's coordinates and elevations, aligns it on REF::

    aligned(x, y) = tba(x - shift_x, y - shift_y) + shift_z

so x is east and y is north, and a TBA that sits 2 m too low has ``shift_z = +2``.

Fits use a deterministic random subsample of the stable pixels (``subsample`` pixels,
``seed``), so results do not depend on the run and big grids stay cheap.
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine
from scipy import ndimage

from ..core.robust import nmad, trimmed_lstsq_large
from ..core.terrain import horn_gradient_at

__all__ = ["Coreg", "VerticalShift", "Deramp", "NuthKaab", "CoregPipeline", "translate",
           "nmad"]


# ----------------------------------------------------------------------------- helpers

def _grid_res(transform) -> tuple[float, float]:
    if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
        raise ValueError(f"only north-up grids are supported, got transform {tuple(transform)[:6]}")
    return float(transform.a), float(-transform.e)


def _check_pair(ref, tba, stable):
    ref = np.asarray(ref)
    tba = np.asarray(tba)
    if ref.ndim != 2 or ref.shape != tba.shape:
        raise ValueError(f"ref and tba must be 2-D arrays of one grid, got {ref.shape} and {tba.shape}")
    if stable is None:
        stable = np.ones(ref.shape, bool)
    stable = np.asarray(stable)
    if stable.shape != ref.shape:
        raise ValueError(f"stable mask shape {stable.shape} != grid shape {ref.shape}")
    return ref, tba, stable.astype(bool, copy=False)


def _sample(valid: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row/col indices of up to ``n`` valid pixels, random but fixed by ``seed``.

    Draws flat indices over the whole grid and keeps the valid ones instead of listing all
    valid pixels (``flatnonzero`` costs 8 bytes per valid pixel: 800 MB on 10^8 pixels).
    """
    total = valid.size
    nvalid = int(np.count_nonzero(valid))
    if nvalid == 0:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    if n is None or nvalid <= n:
        flat = np.flatnonzero(valid)
    else:
        rng = np.random.default_rng(seed)
        frac = nvalid / total
        vflat = valid.ravel()
        flat = np.empty(0, np.int64)
        while flat.size < n:
            draw = rng.integers(0, total, size=int(1.3 * (n - flat.size) / frac) + 100)
            flat = np.sort(np.concatenate([flat, draw[vflat[draw]]]))
            flat = flat[np.concatenate([[True], np.diff(flat) != 0])]
        # Sorted flat indices: the gathers that follow then walk memory in order.
        flat = np.sort(rng.choice(flat, size=n, replace=False))
    return np.unravel_index(flat, valid.shape)


def _fill_nan(z: np.ndarray, passes: int = 16) -> np.ndarray:
    """Copy of ``z`` with NaN replaced by a local mean of valid neighbours.

    Only the values near valid pixels matter (farther ones are masked out after the
    interpolation), but a smooth fill keeps the cubic spline from ringing into valid data.
    """
    bad = ~np.isfinite(z)
    out = np.where(bad, 0.0, z).astype(np.float32)
    if not bad.any():
        return out
    have = (~bad).astype(np.float32)
    for _ in range(passes):
        if have.all():
            break
        s = ndimage.uniform_filter(out * have, 3, mode="nearest")
        w = ndimage.uniform_filter(have, 3, mode="nearest")
        upd = (have == 0) & (w > 0)
        out[upd] = s[upd] / w[upd]
        have[upd] = 1.0
    rest = have == 0
    if rest.any():
        out[rest] = np.median(out[have > 0]) if (have > 0).any() else 0.0
    return out


def _window_any(bad: np.ndarray, lo: int = -2, hi: int = 3) -> np.ndarray:
    """``out[r, c]`` = any ``bad`` in rows ``r+lo..r+hi`` and columns ``c+lo..c+hi``."""
    out = bad.copy()
    for axis in (0, 1):
        src = out.copy()
        n = src.shape[axis]
        for d in range(lo, hi + 1):
            if d == 0 or abs(d) >= n:
                continue
            dst_sl = [slice(None)] * 2
            src_sl = [slice(None)] * 2
            dst_sl[axis] = slice(max(0, -d), n - max(0, d))
            src_sl[axis] = slice(max(0, d), n - max(0, -d))
            out[tuple(dst_sl)] |= src[tuple(src_sl)]
    return out


def _bspline_weights(f: float) -> np.ndarray:
    """Cubic B-spline weights of the taps at offsets -1, 0, 1, 2 for a fraction ``f`` in [0, 1)."""
    g = 1.0 - f
    return np.array([g ** 3 / 6.0, 2.0 / 3.0 - f * f + 0.5 * f ** 3,
                     2.0 / 3.0 - g * g + 0.5 * g ** 3, f ** 3 / 6.0])


def _split_shift(d: float, n: int) -> tuple[int, np.ndarray, int]:
    """Integer part, tap weights and last valid floor position of a shift ``d`` on ``n`` pixels.

    A floor position ``p`` is valid when its support (the taps with weight, p - 1 .. p + 2,
    or p + 1 at a whole-pixel shift) plus one pixel lies inside the grid: ``2 <= p <= last``.
    """
    n0 = math.floor(d)
    w = _bspline_weights(d - n0)
    return n0, w, n - 3 if w[3] == 0.0 else n - 4


class _Spline:
    """Cubic B-spline interpolant of a DEM with NaN, evaluated at uniformly shifted pixels.

    Coefficients come from a NaN-filled copy (float32, elevations less a typical value for
    precision).  A position is valid when its support (the 4 x 4 taps with weight) plus one
    pixel lies inside the grid and its 6 x 6 neighbourhood (floor - 2 .. floor + 3) holds no
    nodata: the prefilter spreads the filled values (decaying 0.27x per pixel), hence the
    margin.
    """

    def __init__(self, z: np.ndarray):
        z = np.asarray(z)
        bad = ~np.isfinite(z)
        has_bad = bool(bad.any())
        # Any typical elevation keeps float32 precise; a strided median is as good as a full one.
        sub = z[::7, ::7]
        sub = sub[np.isfinite(sub)]
        if sub.size:
            self.offset = float(np.median(sub))
        else:
            self.offset = float(np.median(z[~bad])) if has_bad and not bad.all() else 0.0
        filled = _fill_nan(z) if has_bad else z.astype(np.float32)
        filled -= np.float32(self.offset)
        self.coef = ndimage.spline_filter(filled, order=3, output=np.float32, mode="mirror")
        del filled
        self.blocked = _window_any(bad) if has_bad else None
        self.shape = z.shape

    def grid(self, dr: float, dc: float, dtype=np.float32, block: int = 512) -> np.ndarray:
        """The whole grid resampled at ``(i + dr, j + dc)``, NaN where not valid.

        Separable: each output row combines four coefficient rows, then four columns; done
        in blocks of rows to keep the temporaries small.
        """
        ny, nx = self.shape
        n0r, wr, last_r = _split_shift(dr, ny)
        n0c, wc, last_c = _split_shift(dc, nx)
        out = np.full(self.shape, np.nan, dtype)
        i_lo, i_hi = max(0, 2 - n0r), min(ny - 1, last_r - n0r)
        j_lo, j_hi = max(0, 2 - n0c), min(nx - 1, last_c - n0c)
        if i_lo > i_hi or j_lo > j_hi:
            return out
        wr, wc = wr.astype(dtype), wc.astype(dtype)
        c0 = j_lo + n0c
        width = j_hi - j_lo + 1
        for b0 in range(i_lo, i_hi + 1, block):
            b1 = min(b0 + block, i_hi + 1)
            r0 = b0 + n0r
            tmp = None
            for a in range(4):
                if wr[a] != 0:
                    part = self.coef[r0 - 1 + a:r0 - 1 + a + (b1 - b0)].astype(dtype, copy=False) * wr[a]
                    tmp = part if tmp is None else np.add(tmp, part, out=tmp)
            res = None
            for k in range(4):
                if wc[k] != 0:
                    part = tmp[:, c0 - 1 + k:c0 - 1 + k + width] * wc[k]
                    res = part if res is None else np.add(res, part, out=res)
            res += dtype(self.offset)
            if self.blocked is not None:
                res[self.blocked[r0:r0 + (b1 - b0), c0:c0 + width]] = np.nan
            out[b0:b1, j_lo:j_hi + 1] = res
        return out


class _ShiftSampler:
    """The spline of :class:`_Spline` at fixed pixels ``(rows, cols)`` under a uniform shift.

    The 4 x 4 coefficient patches are gathered once per integer part of the shift (the
    Nuth & Kaab iterations rarely change it), so each evaluation is 16 vector updates.
    """

    def __init__(self, spline: _Spline, rows: np.ndarray, cols: np.ndarray):
        self.spline = spline
        self.rows = np.asarray(rows, np.intp)
        self.cols = np.asarray(cols, np.intp)
        self.key = None

    def __call__(self, dr: float, dc: float) -> np.ndarray:
        """Values (float64) at ``(rows + dr, cols + dc)``; NaN where not valid."""
        sp = self.spline
        ny, nx = sp.shape
        n0r, wr, _ = _split_shift(dr, ny)
        n0c, wc, _ = _split_shift(dc, nx)
        key = (n0r, n0c)
        if key != self.key:
            r0, c0 = self.rows + n0r, self.cols + n0c
            # The rule for a fractional shift at any shift, so that the same points (and
            # patches) serve every shift with this integer part.
            ok = (r0 >= 2) & (r0 <= ny - 4) & (c0 >= 2) & (c0 <= nx - 4)
            if sp.blocked is not None:
                ok[ok] = ~sp.blocked[r0[ok], c0[ok]]
            base = r0[ok] * nx + c0[ok]
            flat = sp.coef.ravel()
            # One contiguous row per tap (16, n): the evaluation is then 16 axpy.
            self.patch = np.stack([flat[base + (a * nx + b)] for a in range(-1, 3)
                                   for b in range(-1, 3)]).astype(np.float64)
            self.ok, self.key = ok, key
        w = np.outer(wr, wc).ravel()
        val = np.full(self.patch.shape[1], sp.offset)
        for t in range(16):
            if w[t] != 0.0:
                val += w[t] * self.patch[t]
        out = np.full(self.rows.shape, np.nan)
        out[self.ok] = val
        return out


def translate(dem, shift_x: float, shift_y: float, transform, order: int = 3) -> np.ndarray:
    """Translate a DEM by ``(shift_x, shift_y)`` metres on its own grid.

    Returns ``out(x, y) = dem(x - shift_x, y - shift_y)`` (x east, y north), resampled
    with a cubic B-spline (``order=3``, default) or bilinear (``order=1``) interpolation
    on a NaN-filled copy.  Output pixels are NaN where the cubic support (its 4 x 4 taps
    with weight, plus one pixel of margin) leaves the grid or its 6 x 6 neighbourhood
    holds nodata; for bilinear, where the 2 x 2 support does.  Output dtype is
    float32 for float32 input, float64 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> dem = np.tile(np.arange(8.0), (6, 1))          # z = column index
    >>> out = translate(dem, 10.0, 0.0, Affine(10, 0, 0, 0, -10, 60))   # one pixel east
    >>> [round(float(v), 6) for v in out[3, 3:6]]        # float32 spline coefficients
    [2.0, 3.0, 4.0]
    """
    xres, yres = _grid_res(transform)
    z = np.asarray(dem)
    out_dtype = np.float32 if z.dtype == np.float32 else np.float64
    # Rows grow southwards: the value at row i comes from row i + shift_y / yres.
    dr, dc = shift_y / yres, -shift_x / xres
    if order == 3:
        return _Spline(z).grid(dr, dc, out_dtype)
    if order != 1:
        raise ValueError("order must be 3 (cubic spline) or 1 (bilinear)")
    bad = ~np.isfinite(z)
    offset = float(np.nanmedian(z)) if (~bad).any() else 0.0
    filled = _fill_nan(z) - np.float32(offset)
    # ndimage.shift: out[i] = in[i - s].
    s = (-dr, -dc)
    out = ndimage.shift(filled, s, order=1, mode="mirror", output=np.float32)
    out = out.astype(out_dtype, copy=False)
    out += offset
    # A shifted "nodata" indicator: any bad pixel (or off-grid) in the 2 x 2 support.
    ind = ndimage.shift(bad.astype(np.float32), s, order=1, mode="constant", cval=1.0,
                        output=np.float32)
    out[ind > 1e-4] = np.nan
    return out


def _pixel_xy(transform, rows, cols) -> tuple[np.ndarray, np.ndarray]:
    x = transform.c + (np.asarray(cols) + 0.5) * transform.a
    y = transform.f + (np.asarray(rows) + 0.5) * transform.e
    return x, y


# ----------------------------------------------------------------------------- classes

class Coreg:
    """Base class of co-registration steps: ``fit`` then ``apply``; results in ``meta``.

    Subclasses implement ``_fit`` and ``apply``.  ``shift`` is read from ``meta``
    (``shift_x``, ``shift_y``, ``shift_z``, metres; 0 for what a step does not estimate).
    """

    def __init__(self):
        self.meta: dict = {}

    def fit(self, ref, tba, stable, transform) -> "Coreg":
        """Estimate the correction from pixels where ``stable`` and both DEMs are valid."""
        ref, tba, stable = _check_pair(ref, tba, stable)
        _grid_res(transform)
        self.meta = {}
        self._fit(ref, tba, stable, transform)
        return self

    def _fit(self, ref, tba, stable, transform):  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, tba, transform) -> np.ndarray:  # pragma: no cover - abstract
        """TBA corrected, on the same grid (NaN where it cannot be computed)."""
        raise NotImplementedError

    def apply_georef(self, tba, transform):
        """TBA corrected without resampling: ``(elevations, shifted transform)``.

        The horizontal shift moves the georeferencing (``transform`` translated by
        ``(shift_x, shift_y)``) instead of interpolating the elevations, as xDEM's
        ``apply(resample=False)``; vertical terms are applied to the values.  Interpolation
        smooths noise (a cubic spline at a half-pixel shift leaves ~0.8 of white noise), so
        differencing a DEM kept this way against the other one resampled onto the shifted
        grid keeps TBA's own noise intact.
        """
        self._require_fit()
        tba = np.asarray(tba)
        # Integer DEMs become float32, as apply() returns them: a fractional shift must fit.
        out = tba.astype(tba.dtype if tba.dtype.kind == "f" else np.float32)
        out += out.dtype.type(self.meta.get("shift_z", 0.0))
        sx, sy = float(self.meta.get("shift_x", 0.0)), float(self.meta.get("shift_y", 0.0))
        return out, Affine.translation(sx, sy) @ transform

    def fit_apply(self, ref, tba, stable, transform) -> np.ndarray:
        """``fit`` then ``apply`` on the same TBA."""
        return self.fit(ref, tba, stable, transform).apply(tba, transform)

    def _require_fit(self):
        if not self.meta:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() first")

    @property
    def shift(self) -> tuple[float, float, float]:
        """``(shift_x, shift_y, shift_z)`` metres, to ADD to TBA's coordinates and elevations."""
        self._require_fit()
        return tuple(float(self.meta.get(k, 0.0)) for k in ("shift_x", "shift_y", "shift_z"))


class VerticalShift(Coreg):
    """Constant vertical offset: median (or mean) of ``ref - tba`` on stable pixels.

    Parameters
    ----------
    method : {"median", "mean"}
    subsample : int or None
        At most this many stable pixels are used (None: all).
    seed : int
        Seed of the subsample.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> ref = np.arange(20.0).reshape(4, 5)
    >>> vs = VerticalShift().fit(ref, ref - 1.5, np.ones((4, 5), bool), Affine(1, 0, 0, 0, -1, 4))
    >>> vs.shift
    (0.0, 0.0, 1.5)
    >>> float(vs.apply(ref - 1.5, Affine(1, 0, 0, 0, -1, 4))[0, 0])
    0.0
    """

    def __init__(self, method: str = "median", subsample: int | None = 5_000_000, seed: int = 0):
        super().__init__()
        if method not in ("median", "mean"):
            raise ValueError("method must be 'median' or 'mean'")
        self.method, self.subsample, self.seed = method, subsample, seed

    def _fit(self, ref, tba, stable, transform):
        valid = stable & np.isfinite(ref) & np.isfinite(tba)
        r, c = _sample(valid, self.subsample, self.seed)
        if r.size == 0:
            raise ValueError("VerticalShift: no stable pixel where both DEMs are valid")
        dh = ref[r, c].astype(np.float64) - tba[r, c]
        dz = float(np.median(dh) if self.method == "median" else np.mean(dh))
        self.meta = {"method": self.method, "shift_x": 0.0, "shift_y": 0.0, "shift_z": dz,
                     "count": int(r.size)}

    def apply(self, tba, transform) -> np.ndarray:
        self._require_fit()
        tba = np.asarray(tba)
        return tba + tba.dtype.type(self.meta["shift_z"]) if tba.dtype.kind == "f" else tba + self.meta["shift_z"]


class Deramp(Coreg):
    """Polynomial trend in x, y of ``ref - tba`` fitted on stable pixels and added to TBA.

    ``ramp(x, y) = sum_k c_k u^i_k v^j_k`` for all ``i + j <= order``, with normalised
    coordinates ``u = (x - x0) / scale``, ``v = (y - y0) / scale`` (x0, y0: centre of
    the fitted pixels, scale: their largest distance from it along x or y), so the
    coefficients are in metres and well conditioned.  Robust least squares: residuals
    beyond 3 NMAD are trimmed and the fit repeated (3 passes).  ``shift_z`` is the
    constant term, the ramp's value at the centre; shift_x = shift_y = 0.

    Parameters
    ----------
    order : int
        Polynomial order (1 = plane).
    subsample : int or None
        At most this many stable pixels enter the fit.
    seed : int

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> tr = Affine(10, 0, 0, 0, -10, 100)
    >>> rows, cols = np.mgrid[0:10, 0:10]
    >>> plane = 0.02 * cols * 10 - 0.01 * rows * 10 + 3     # metres
    >>> ref = np.zeros((10, 10))
    >>> d = Deramp(order=1).fit(ref, ref - plane, np.ones((10, 10), bool), tr)
    >>> float(np.abs(d.apply(ref - plane, tr)).max()) < 1e-9
    True
    """

    def __init__(self, order: int = 1, subsample: int | None = 2_000_000, seed: int = 0):
        super().__init__()
        if order < 0:
            raise ValueError("order must be >= 0")
        self.order, self.subsample, self.seed = int(order), subsample, seed

    def _powers(self):
        return [(i, t - i) for t in range(self.order + 1) for i in range(t, -1, -1)]

    def _fit(self, ref, tba, stable, transform):
        valid = stable & np.isfinite(ref) & np.isfinite(tba)
        r, c = _sample(valid, self.subsample, self.seed)
        powers = self._powers()
        if r.size < len(powers):
            raise ValueError(f"Deramp: {r.size} valid stable pixels, need >= {len(powers)}")
        x, y = _pixel_xy(transform, r, c)
        x0, y0 = float(x.mean()), float(y.mean())
        scale = float(max(np.abs(x - x0).max(), np.abs(y - y0).max(), 1e-9))
        u, v = (x - x0) / scale, (y - y0) / scale
        design = np.stack([u ** i * v ** j for i, j in powers], axis=1)
        dh = ref[r, c].astype(np.float64) - tba[r, c]
        coef, keep = trimmed_lstsq_large(design, dh)
        self.meta = {"order": self.order, "powers": [list(p) for p in powers],
                     "coefficients": [float(k) for k in coef],
                     "centre": [x0, y0], "scale": scale,
                     "shift_x": 0.0, "shift_y": 0.0, "shift_z": float(coef[0]),
                     "count": int(keep.sum()), "nmad_residual": nmad((dh - design @ coef)[keep])}

    def ramp(self, shape, transform, dtype=np.float32) -> np.ndarray:
        """The fitted polynomial on a grid, the correction ``apply`` adds."""
        self._require_fit()
        ny, nx = shape
        x, _ = _pixel_xy(transform, 0, np.arange(nx))
        _, y = _pixel_xy(transform, np.arange(ny), 0)
        x0, y0 = self.meta["centre"]
        u = (x - x0) / self.meta["scale"]
        v = (y - y0) / self.meta["scale"]
        out = np.zeros(shape, dtype)
        # One outer product per term keeps memory at one extra grid.
        for (i, j), k in zip(self.meta["powers"], self.meta["coefficients"]):
            out += np.multiply.outer((v ** j).astype(dtype), (k * u ** i).astype(dtype))
        return out

    def apply(self, tba, transform) -> np.ndarray:
        tba = np.asarray(tba)
        dtype = np.float32 if tba.dtype == np.float32 else np.float64
        return tba.astype(dtype, copy=False) + self.ramp(tba.shape, transform, dtype)

    def apply_georef(self, tba, transform):
        """The ramp is a vertical correction: values change, georeferencing does not."""
        return self.apply(tba, transform), transform


class NuthKaab(Coreg):
    """Horizontal and vertical shift by Nuth & Kääb (2011), iterated.

    Each iteration compares REF with TBA translated by the current shift on a fixed
    random sample of stable pixels with REF slope in ``[min_slope, max_slope]`` degrees,
    and fits Nuth & Kääb's model ``dh / tan(slope) = a cos(b - aspect) + c`` (aspect of
    REF, downhill azimuth).  The fit is done in the equivalent form
    ``dh = tan(slope) (A cos(aspect) + B sin(aspect)) + dz`` by least squares with
    3-NMAD residual trimming: that weights pixels by ``tan^2(slope)``, which is the
    maximum-likelihood weighting for elevation noise and keeps gentle slopes (where
    ``dh / tan`` explodes) from dominating; ``a = hypot(A, B)``, ``b = atan2(B, A)``
    and ``c = dz / mean(tan(slope))`` are reported as in the paper.  The shift update
    is ``(a sin b, a cos b)`` (east, north), the same as xDEM's.

    Iterations stop when the update is shorter than ``tolerance`` metres (default
    0.001 m: cheap, as an iteration only re-interpolates the sample), or when the updates
    shrink geometrically (each under half the previous one) and the rest of that series
    is under ``tolerance``, or after ``max_iterations``.  The vertical shift is then the
    median of ``ref - aligned TBA`` over the stable sample (all slopes).

    Resampling: TBA is interpolated with a cubic B-spline (:func:`translate`, order 3)
    on a NaN-filled copy; positions whose 4 x 4 support (plus one pixel) touches nodata are
    dropped.  ``apply`` uses the same interpolant on the full grid, and ``fit_apply`` reuses
    the fit's spline coefficients.
    ``apply`` uses the same interpolant on the full grid.

    Parameters
    ----------
    max_iterations : int
    tolerance : float
        Metres.
    min_slope, max_slope : float
        Degrees; pixels outside are not used for the horizontal fit.
    subsample : int or None
        Stable pixels sampled for the fit (default 200 000; None = all).  On the
        Longyearbyen known-answer case 200 000 pixels recover the shift to 0.005 m in a
        third of the time 500 000 take (0.002 m); xDEM's default reaches 0.02 m.
    seed : int

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> tr = Affine(10, 0, 0, 0, -10, 600)
    >>> rows, cols = np.mgrid[0:60, 0:60] * 10.0
    >>> ref = 50 * np.sin(cols / 90) * np.cos(rows / 70) + 0.3 * cols
    >>> tba = translate(ref, 4.0, -3.0, tr) - 1.0          # TBA moved (4, -3) m, 1 m low
    >>> nk = NuthKaab().fit(ref, tba, np.ones(ref.shape, bool), tr)
    >>> [round(s, 1) for s in nk.shift]
    [-4.0, 3.0, 1.0]
    """

    def __init__(self, max_iterations: int = 10, tolerance: float = 0.001, min_slope: float = 3.0,
                 max_slope: float = 70.0, subsample: int | None = 200_000, seed: int = 0):
        super().__init__()
        self.max_iterations, self.tolerance = int(max_iterations), float(tolerance)
        self.min_slope, self.max_slope = float(min_slope), float(max_slope)
        self.subsample, self.seed = subsample, seed

    def _fit(self, ref, tba, stable, transform):
        xres, yres = _grid_res(transform)
        valid = stable & np.isfinite(ref) & np.isfinite(tba)
        r, c = _sample(valid, self.subsample, self.seed)
        gx, gy = horn_gradient_at(ref, r, c, (xres, yres))
        tan_s = np.hypot(gx, gy)
        lo, hi = math.tan(math.radians(self.min_slope)), math.tan(math.radians(self.max_slope))
        use = np.isfinite(tan_s) & (tan_s >= lo) & (tan_s <= hi)
        if use.sum() < 100:
            raise ValueError(f"NuthKaab: only {int(use.sum())} stable pixels with slope in "
                             f"[{self.min_slope}, {self.max_slope}] deg, need >= 100")
        ref_s = ref[r, c].astype(np.float64)
        ref_u, tan_u = ref_s[use], tan_s[use]
        # tan(slope) cos(aspect), tan(slope) sin(aspect) of the downhill azimuth
        # aspect = atan2(-gx, -gy) are simply -gy and -gx: no trigonometry needed.
        design = np.stack([-gy[use], -gx[use], np.ones_like(tan_u)], axis=1)

        spline = _Spline(tba)
        if self._keep_spline:
            self._spline = spline
        at_use = _ShiftSampler(spline, r[use], c[use])
        sx = sy = 0.0
        history = []
        converged = False
        fit = {"a": 0.0, "b": 0.0, "c": 0.0}
        prev_step = None
        for it in range(1, self.max_iterations + 1):
            dh = ref_u - at_use(sy / yres, -sx / xres)
            ok = np.isfinite(dh)
            if ok.sum() < 100:
                raise ValueError("NuthKaab: shifted TBA no longer overlaps the stable pixels")
            (A, B, dz), keep = trimmed_lstsq_large(design[ok], dh[ok])
            a, b = math.hypot(A, B), math.atan2(B, A)
            dk = dh[ok][keep]
            fit = {"a": a, "b": b, "b_deg": math.degrees(b) % 360.0,
                   "c": float(dz / np.mean(tan_u[ok][keep])), "dz": float(dz),
                   "count": int(keep.sum()), "nmad_dh": nmad(dk[::max(1, dk.size // 40_000)])}
            # A = a cos b pairs with cos(aspect) (north), B = a sin b with sin(aspect) (east).
            ux, uy = float(B), float(A)
            sx += ux
            sy += uy
            step = math.hypot(ux, uy)
            history.append({"iteration": it, "update_x": ux, "update_y": uy, "shift_x": sx,
                            "shift_y": sy, "nmad_dh": fit["nmad_dh"], "count": fit["count"]})
            # Converged when the update, or the geometric remainder of updates shrinking at
            # this rate (step * q / (1 - q), q = step / previous step), is under tolerance.
            q = step / prev_step if prev_step else 1.0
            if step < self.tolerance or (q < 0.5 and step * q / (1 - q) < self.tolerance):
                converged = True
                break
            prev_step = step
        dh_all = ref_s - _ShiftSampler(spline, r, c)(sy / yres, -sx / xres)
        dh_all = dh_all[np.isfinite(dh_all)]
        sz = float(np.median(dh_all))
        self.meta = {"shift_x": sx, "shift_y": sy, "shift_z": sz, "iterations": len(history),
                     "converged": converged, "tolerance": self.tolerance,
                     "history": history, "fit": fit, "count": int(dh_all.size),
                     "nmad_after": nmad(dh_all)}

    _keep_spline = False

    def apply(self, tba, transform) -> np.ndarray:
        self._require_fit()
        out = translate(tba, self.meta["shift_x"], self.meta["shift_y"], transform, order=3)
        out += out.dtype.type(self.meta["shift_z"])
        return out

    def fit_apply(self, ref, tba, stable, transform) -> np.ndarray:
        """``fit`` then ``apply`` on the same TBA, reusing the fit's spline coefficients."""
        self._keep_spline = True
        try:
            self.fit(ref, tba, stable, transform)
            spline = self._spline
        finally:
            self._keep_spline = False
            self.__dict__.pop("_spline", None)
        xres, yres = _grid_res(transform)
        tba = np.asarray(tba)
        out = spline.grid(self.meta["shift_y"] / yres, -self.meta["shift_x"] / xres,
                          np.float32 if tba.dtype == np.float32 else np.float64)
        out += out.dtype.type(self.meta["shift_z"])
        return out


class CoregPipeline(Coreg):
    """Steps fitted in turn, each on the output of the previous one.

    ``meta = {"steps": [{"name": ..., **step.meta}, ...], "shift_x", "shift_y", "shift_z"}``
    where the shifts are the sums of the steps' shifts.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> tr = Affine(10, 0, 0, 0, -10, 100)
    >>> ref = np.zeros((10, 10))
    >>> p = CoregPipeline([VerticalShift(), VerticalShift(method="mean")])
    >>> out = p.fit_apply(ref, ref - 2.0, np.ones((10, 10), bool), tr)
    >>> p.shift, [s["name"] for s in p.meta["steps"]]
    ((0.0, 0.0, 2.0), ['VerticalShift', 'VerticalShift'])
    """

    def __init__(self, steps):
        super().__init__()
        self.steps = list(steps)
        if not self.steps:
            raise ValueError("CoregPipeline needs at least one step")

    def _fit(self, ref, tba, stable, transform):
        cur = tba
        for i, step in enumerate(self.steps):
            if i + 1 < len(self.steps):
                cur = step.fit_apply(ref, cur, stable, transform)
            else:
                step.fit(ref, cur, stable, transform)
        steps = [{"name": type(s).__name__, **s.meta} for s in self.steps]
        self.meta = {"steps": steps,
                     **{k: float(sum(s.meta.get(k, 0.0) for s in self.steps))
                        for k in ("shift_x", "shift_y", "shift_z")}}

    def apply(self, tba, transform) -> np.ndarray:
        self._require_fit()
        out = tba
        for step in self.steps:
            out = step.apply(out, transform)
        return out

    def apply_georef(self, tba, transform):
        """Each step's :meth:`Coreg.apply_georef` in turn: ``(elevations, transform)``."""
        self._require_fit()
        out, tr = tba, transform
        for step in self.steps:
            out, tr = step.apply_georef(out, tr)
        return out, tr
