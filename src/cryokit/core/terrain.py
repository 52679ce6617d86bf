"""Terrain attributes of a north-up DEM: slope, aspect, maximum curvature, hillshade.

All functions take a 2-D array (NaN = nodata) and ``res = (xres, yres)``, the pixel size in
metres (both positive).  Rows run north to south, columns west to east.  A pixel whose
window touches NaN or the array edge is NaN in the output.

Conventions follow GDAL ``gdaldem`` and xDEM so that numbers can be compared directly:
slope and aspect use Horn (1981); maximum curvature is xDEM's default ``max_curvature``
(Florinsky 5 x 5 surface fit, geometric maximal curvature of Shary 1995, in 100 m^-1).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["slope", "aspect", "max_curvature", "hillshade", "horn_gradient", "horn_gradient_at"]


def _res(res) -> tuple[float, float]:
    xres, yres = (float(res), float(res)) if np.isscalar(res) else (float(res[0]), float(res[1]))
    if not (xres > 0 and yres > 0):
        raise ValueError(f"res must be positive (xres, yres), got {res!r}")
    return xres, yres


def horn_gradient(dem, res) -> tuple[np.ndarray, np.ndarray]:
    """Horn (1981) gradient ``(dz/dx, dz/dy)``, x east and y NORTH, in metres per metre.

    Parameters
    ----------
    dem : (ny, nx) array
        Elevations; NaN = nodata.
    res : (float, float)
        ``(xres, yres)`` pixel size in metres, positive.

    Returns
    -------
    gx, gy : arrays like ``dem`` (float32 for float32 input), NaN on the 1-pixel border and
        wherever the 3 x 3 window has NaN.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(5.0)[None, :] * 10.0 * 0.5        # rises 0.5 m per metre to the east
    >>> gx, gy = horn_gradient(np.repeat(x, 4, axis=0), (10, 10))
    >>> float(gx[1, 1]), float(gy[1, 1]), bool(np.isnan(gx[0, 0]))
    (0.5, 0.0, True)
    """
    xres, yres = _res(res)
    z = np.asarray(dem)
    if z.dtype != np.float32:
        z = z.astype(np.float64, copy=False)
    gx = np.full(z.shape, np.nan, z.dtype)
    gy = np.full(z.shape, np.nan, z.dtype)
    if z.shape[0] < 3 or z.shape[1] < 3:
        return gx, gy
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    gx[1:-1, 1:-1] = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * xres)
    # Row 0 is the northern edge, so "north minus south" is top rows minus bottom rows.
    gy[1:-1, 1:-1] = ((a + 2 * b + c) - (g + 2 * h + i)) / (8 * yres)
    return gx, gy


def horn_gradient_at(dem, rows, cols, res) -> tuple[np.ndarray, np.ndarray]:
    """:func:`horn_gradient` evaluated only at pixels ``(rows, cols)`` (float64).

    Used by the co-registration fits, which need slope and aspect on a random sample only;
    this avoids two full-grid temporaries on large DEMs.  Border pixels give NaN.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(4.0)[::-1, None] * 10.0 * np.ones((1, 5))   # rises 1 m/m to the north
    >>> gx, gy = horn_gradient_at(y, np.array([1, 0]), np.array([2, 2]), (10, 10))
    >>> gx.tolist(), gy.tolist()
    ([0.0, nan], [1.0, nan])
    """
    xres, yres = _res(res)
    z = np.asarray(dem)
    rows = np.asarray(rows, dtype=np.intp)
    cols = np.asarray(cols, dtype=np.intp)
    inside = (rows >= 1) & (rows < z.shape[0] - 1) & (cols >= 1) & (cols < z.shape[1] - 1)
    r = np.where(inside, rows, 1)
    c = np.where(inside, cols, 1)

    flat = z.ravel()
    base = r * z.shape[1] + c

    def at(dr, dc):
        return flat[base + (dr * z.shape[1] + dc)].astype(np.float64)

    # Each of the 8 neighbours gathered once (the corners serve both gradients).
    nw, ne, sw, se = at(-1, -1), at(-1, 1), at(1, -1), at(1, 1)
    gx = ((ne + 2 * at(0, 1) + se) - (nw + 2 * at(0, -1) + sw)) / (8 * xres)
    gy = ((nw + 2 * at(-1, 0) + ne) - (sw + 2 * at(1, 0) + se)) / (8 * yres)
    gx[~inside] = np.nan
    gy[~inside] = np.nan
    return gx, gy


def slope_aspect_from_gradient(gx, gy) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect in degrees from a (east, north) gradient; see :func:`slope`, :func:`aspect`.

    Examples
    --------
    >>> slope_aspect_from_gradient(np.array([-1.0]), np.array([0.0]))   # falls to the east
    (array([45.]), array([90.]))
    """
    slp = np.degrees(np.arctan(np.hypot(gx, gy)))
    # Downhill direction is minus the gradient; azimuth is atan2(east, north).  Flat -> 0,
    # as xDEM does (GDAL would give its nodata value there).
    asp = np.degrees(np.arctan2(-gx, -gy)) % 360.0
    asp = np.where(asp == 360.0, 0.0, asp).astype(slp.dtype, copy=False)
    return slp, asp


def slope(dem, res) -> np.ndarray:
    """Slope in degrees, Horn (1981) 3 x 3 gradient, as ``gdaldem slope`` and xDEM.

    Parameters
    ----------
    dem : (ny, nx) array
        Elevations (m); NaN = nodata.
    res : (float, float)
        ``(xres, yres)`` pixel size in metres, positive.

    Returns
    -------
    array like ``dem``: 0..90 degrees; NaN on the border and next to nodata.

    Examples
    --------
    >>> import numpy as np
    >>> dem = np.repeat(np.arange(5.0)[None, :] * 20.0, 4, axis=0)   # 1 m/m to the east
    >>> round(float(slope(dem, (20, 20))[1, 2]), 6)
    45.0
    """
    return slope_aspect_from_gradient(*horn_gradient(dem, res))[0]


def aspect(dem, res) -> np.ndarray:
    """Aspect in degrees clockwise from north of the direction the slope FACES (downhill).

    Same convention as ``gdaldem aspect`` and xDEM: a slope falling to the east has aspect
    90, one falling to the south 180.  Horn (1981) gradient; flat pixels get 0.

    Parameters
    ----------
    dem : (ny, nx) array
        Elevations (m); NaN = nodata.
    res : (float, float)
        ``(xres, yres)`` pixel size in metres, positive.

    Examples
    --------
    >>> import numpy as np
    >>> north_high = np.repeat(np.arange(4.0)[::-1, None], 5, axis=1)  # falls to the south
    >>> float(aspect(north_high, (1, 1))[1, 2])
    180.0
    """
    return slope_aspect_from_gradient(*horn_gradient(dem, res))[1]


def _florinsky_kernels(xres: float, yres: float) -> dict[str, np.ndarray]:
    # Florinsky (2009): least-squares third-order polynomial on a 5 x 5 window.  Deriving
    # the kernels from the normal equations (rather than tabulating them) keeps anisotropic
    # pixels exact; for square pixels they equal Florinsky's / xDEM's tabulated ones.
    i, j = np.mgrid[-2:3, -2:3]
    x = (j * xres).ravel()
    y = (-i * yres).ravel()  # rows grow southwards
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y,
                       x ** 3, x * x * y, x * y * y, y ** 3], axis=1)
    pinv = np.linalg.pinv(design)
    k = {n: pinv[idx].reshape(5, 5) for n, idx in
         (("zx", 1), ("zy", 2), ("xx", 3), ("xy", 4), ("yy", 5))}
    k["xx"] = 2 * k["xx"]
    k["yy"] = 2 * k["yy"]
    return k


def principal_curvatures(dem, res) -> tuple[np.ndarray, np.ndarray]:
    """Maximal and minimal curvature (Shary 1995), in 100 m^-1, as xDEM computes them.

    Surface derivatives from the Florinsky (2009) 5 x 5 third-order least-squares fit;
    with mean curvature ``H`` and unsphericity ``M``

    ``H = -((1 + q^2) r - 2 p q s + (1 + p^2) t) / (2 (1 + p^2 + q^2)^1.5)``,
    ``M = sqrt(H^2 - (r t - s^2) / (1 + p^2 + q^2)^2)``,
    ``kmax = 100 (H + M)``, ``kmin = 100 (H - M)``

    (p, q first and r, t, s second derivatives).  Positive on convex forms (ridges,
    summits), about zero on planes; exactly flat pixels give 0 as in xDEM.  The 2-pixel
    border and pixels within 2 pixels of NaN are NaN (xDEM keeps more of them).  Values in
    100 m^-1: a value of 1 means a radius of curvature of 100 m.

    Parameters
    ----------
    dem : (ny, nx) array
        Elevations (m); NaN = nodata.
    res : (float, float)
        ``(xres, yres)`` pixel size in metres, positive.

    Returns
    -------
    (kmax, kmin) : two (ny, nx) arrays, float32 for a float32 DEM.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[-3:4, -3:4] * 1.0
    >>> ridge = -(xx ** 2) / 200.0                        # convex across x, straight along y
    >>> kmax, kmin = principal_curvatures(ridge, (1, 1))
    >>> round(float(kmax[3, 3]), 4), round(float(kmin[3, 3]), 4)
    (1.0, 0.0)
    """
    xres, yres = _res(res)
    z = np.asarray(dem)
    # float32 DEMs are filtered in float32 (the outputs are float32 anyway; elevations less
    # their median keep the rounding of the 5 x 5 sums at ~1e-5 of the curvatures).
    dtype = np.float32 if z.dtype == np.float32 else np.float64
    bad = ~np.isfinite(z)
    has_bad = bool(bad.any())
    sub = z[::7, ::7]
    sub = sub[np.isfinite(sub)]
    offset = float(np.median(sub)) if sub.size else (float(np.nanmedian(z)) if not bad.all() else 0.0)
    zf = z.astype(dtype)        # a copy, changed in place below
    if has_bad:
        zf[bad] = offset
    zf -= dtype(offset)
    # The kernels annihilate constants, so the offset changes nothing but the rounding.
    p, q, r, t, s = (_correlate_separable(zf, k) for k in _separable_kernels(xres, yres))
    del zf
    g2 = p * p + q * q
    w = 1.0 + g2
    hm = -((1 + q * q) * r - 2 * p * q * s + (1 + p * p) * t) / (2 * w * np.sqrt(w))
    m = np.sqrt(np.maximum(hm * hm - (r * t - s * s) / (w * w), 0.0))
    del p, q, r, t, s
    invalid = ndimage.binary_dilation(bad, structure=np.ones((5, 5), bool)) if has_bad else bad
    invalid[:2, :] = invalid[-2:, :] = True
    invalid[:, :2] = invalid[:, -2:] = True
    flat = g2 == 0.0
    out = []
    for k_ in (hm + m, hm - m):
        k_ *= dtype(100.0)
        k_[flat] = 0.0
        k_[invalid] = np.nan
        out.append(k_)
    return out[0], out[1]


def _separable_kernels(xres: float, yres: float):
    """The five Florinsky kernels (zx, zy, xx, yy, xy) as sums of outer products (rank <= 2)."""
    terms = []
    kernels = _florinsky_kernels(xres, yres)
    for name in ("zx", "zy", "xx", "yy", "xy"):
        u, sv, vt = np.linalg.svd(kernels[name])
        keep = sv > sv[0] * 1e-10
        terms.append([(u[:, i] * sv[i], vt[i]) for i in np.flatnonzero(keep)])
    return terms


def _correlate_separable(z, terms):
    """``ndimage.correlate(z, sum(outer(col, row)))`` (zero outside) as 1-D passes."""
    out = None
    for col, row in terms:
        part = ndimage.correlate1d(ndimage.correlate1d(z, row, axis=1, mode="constant"),
                                   col, axis=0, mode="constant")
        out = part if out is None else np.add(out, part, out=out)
    return out


def max_curvature(dem, res) -> np.ndarray:
    """Maximal curvature as xDEM ``max_curvature`` (its defaults), in 100 m^-1 (m^-1 x 100).

    The first of :func:`principal_curvatures` (see there for the formula and conventions).

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[-3:4, -3:4] * 1.0
    >>> dome = -(xx ** 2 + yy ** 2) / 200.0 + 0.05 * xx   # convex, z'' = -0.01 m^-1, tilted
    >>> round(float(max_curvature(dome, (1, 1))[3, 3]), 4)      # xDEM gives 0.99875 too
    0.9988
    >>> round(float(max_curvature(np.zeros((7, 7)), (1, 1))[3, 3]), 6)
    0.0
    """
    return principal_curvatures(dem, res)[0]


def hillshade(dem, res, azimuth=315, altitude=45) -> np.ndarray:
    """Hillshade 0..255 (float, NaN = nodata) for quick-looks, as ``gdaldem hillshade``.

    Lambertian shading with the sun at ``azimuth`` (degrees clockwise from north) and
    ``altitude`` (degrees above the horizon); Horn gradient.

    Examples
    --------
    >>> import numpy as np
    >>> round(float(hillshade(np.zeros((3, 3)), (1, 1))[1, 1]), 3)    # flat: 255 sin(45 deg)
    180.312
    """
    gx, gy = horn_gradient(dem, res)
    slp = np.arctan(np.hypot(gx, gy))
    # Downhill azimuth, then Lambert: cos(incidence) between the surface normal and the sun.
    asp = np.arctan2(-gx, -gy)
    az = np.radians(azimuth)
    alt = np.radians(altitude)
    shade = np.sin(alt) * np.cos(slp) + np.cos(alt) * np.sin(slp) * np.cos(az - asp)
    return np.clip(255.0 * shade, 0.0, 255.0)
