"""Fused per-node Lucas-Kanade kernel (numba), the hot loop of :func:`.correlate.refine_lk`.

Same mathematics as the numpy path of ``refine_lk`` (Lanczos-3 resampling renormalised near
nodata, weighted mean/contrast normalisation, 2 x 2 Gauss-Newton step), but one node at a time
in registers and small buffers instead of (N, chip, chip) temporaries, in parallel over nodes.
Each node's arithmetic does not depend on the others, so tiled and serial runs agree exactly.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a core dependency; numpy path remains
    numba = None

AVAILABLE = numba is not None


def _lanczos(frac, out):
    s = 0.0
    for k in range(6):
        x = frac - (k - 2)
        if abs(x) < 1e-12:
            w = 1.0
        else:
            px = math.pi * x
            w = math.sin(px) / px * math.sin(px / 3.0) / (px / 3.0)
        out[k] = w
        s += w
    for k in range(6):
        out[k] /= s


def _refine(ref, sec, gx, gy, r0, c0, dy, dx, chip, taper, iterations, tol, need, max_move,
            out_y, out_x, out_s):
    H, W = sec.shape
    n = r0.shape[0]
    m = chip + 5
    for q in prange(n):
        out_y[q] = np.nan
        out_x[q] = np.nan
        out_s[q] = np.nan
        if not (math.isfinite(dy[q]) and math.isfinite(dx[q])):
            continue
        t = np.empty((chip, chip), np.float32)
        tx = np.empty((chip, chip), np.float32)
        ty = np.empty((chip, chip), np.float32)
        base = np.zeros((chip, chip), np.bool_)
        for i in range(chip):
            for j in range(chip):
                r, c = r0[q] + i, c0[q] + j
                if 0 <= r < H and 0 <= c < W:
                    a, b, g = ref[r, c], gx[r, c], gy[r, c]
                    if math.isfinite(a) and math.isfinite(b) and math.isfinite(g):
                        t[i, j], tx[i, j], ty[i, j] = a, b, g
                        base[i, j] = True
        win = np.empty((m, m), np.float32)
        good = np.empty((m, m), np.bool_)
        tmp = np.empty((m, chip), np.float32)
        tmpn = np.empty((m, chip), np.float32)
        samp = np.empty((chip, chip), np.float32)
        valid = np.empty((chip, chip), np.bool_)
        wy = np.empty(6)
        wx = np.empty(6)
        py, px = dy[q], dx[q]
        ok = True
        se = np.nan
        for _ in range(iterations):
            iy, ix = math.floor(py), math.floor(px)
            _lanczos(py - iy, wy)
            _lanczos(px - ix, wx)
            holed = False
            for i in range(m):
                for j in range(m):
                    r, c = r0[q] + iy - 2 + i, c0[q] + ix - 2 + j
                    v = sec[r, c] if (0 <= r < H and 0 <= c < W) else np.nan
                    if math.isfinite(v):
                        win[i, j] = v
                        good[i, j] = True
                    else:
                        win[i, j] = 0.0
                        good[i, j] = False
                        holed = True
            for i in range(m):
                for j in range(chip):
                    s = 0.0
                    sn = 0.0
                    for k in range(6):
                        s += wx[k] * win[i, j + k]
                        if holed and good[i, j + k]:
                            sn += wx[k]
                    tmp[i, j] = s
                    tmpn[i, j] = sn
            for i in range(chip):
                for j in range(chip):
                    s = 0.0
                    sn = 0.0
                    for k in range(6):
                        s += wy[k] * tmp[i + k, j]
                        sn += wy[k] * tmpn[i + k, j]
                    if holed:
                        near = (good[i + 2, j + 2] and good[i + 3, j + 2]
                                and good[i + 2, j + 3] and good[i + 3, j + 3])
                        if near and sn > 0.75:
                            samp[i, j] = s / sn
                            valid[i, j] = base[i, j]
                        else:
                            valid[i, j] = False
                    else:
                        samp[i, j] = s
                        valid[i, j] = base[i, j]
            # weighted means over the valid pixels
            cnt = 0
            sw = 0.0
            mt = 0.0
            ms = 0.0
            mgx = 0.0
            mgy = 0.0
            for i in range(chip):
                for j in range(chip):
                    if valid[i, j]:
                        w = taper[i, j]
                        cnt += 1
                        sw += w
                        mt += w * t[i, j]
                        ms += w * samp[i, j]
                        mgx += w * tx[i, j]
                        mgy += w * ty[i, j]
            if cnt < need or sw <= 0:
                ok = False
                break
            mt /= sw
            ms /= sw
            mgx /= sw
            mgy /= sw
            vt = 0.0
            vs = 0.0
            for i in range(chip):
                for j in range(chip):
                    if valid[i, j]:
                        w = taper[i, j]
                        vt += w * (t[i, j] - mt) ** 2
                        vs += w * (samp[i, j] - ms) ** 2
            if vt <= 0 or vs <= 0:
                ok = False
                break
            gain = math.sqrt(vt / vs)
            hxx = 0.0
            hyy = 0.0
            hxy = 0.0
            bx = 0.0
            by = 0.0
            rr = 0.0
            for i in range(chip):
                for j in range(chip):
                    if valid[i, j]:
                        w = taper[i, j]
                        res = (samp[i, j] - ms) * gain - (t[i, j] - mt)
                        ax = tx[i, j] - mgx
                        ay = ty[i, j] - mgy
                        hxx += w * ax * ax
                        hyy += w * ay * ay
                        hxy += w * ax * ay
                        bx += w * ax * res
                        by += w * ay * res
                        rr += w * res * res
            det = hxx * hyy - hxy * hxy
            if not det > 1e-12:
                ok = False
                break
            ux = (hyy * bx - hxy * by) / det
            uy = (hxx * by - hxy * bx) / det
            se = math.sqrt(rr / sw * (hxx + hyy) / det)
            px -= ux
            py -= uy
            if math.hypot(ux, uy) < tol:
                break
        if ok and abs(py - dy[q]) <= max_move and abs(px - dx[q]) <= max_move:
            out_y[q] = py
            out_x[q] = px
            out_s[q] = se


if AVAILABLE:
    _lanczos = njit(cache=True, inline="always")(_lanczos)
    _refine = njit(parallel=True, cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"})(_refine)


def refine(ref, sec, gx, gy, r0, c0, dy, dx, *, chip, taper, iterations, tol, need, max_move,
           threads):
    """Run the kernel; returns (dy, dx, sigma) arrays (NaN where refinement failed)."""
    n = len(r0)
    out = [np.empty(n) for _ in range(3)]
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    _refine(ref, sec, gx, gy, np.ascontiguousarray(r0, np.int64),
            np.ascontiguousarray(c0, np.int64), np.ascontiguousarray(dy, np.float64),
            np.ascontiguousarray(dx, np.float64), chip, taper.astype(np.float32), iterations,
            tol, need, max_move, *out)
    return tuple(out)
