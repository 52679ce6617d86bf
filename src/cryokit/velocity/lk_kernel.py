"""Fused per-node Lucas-Kanade kernel (numba), the hot loop of :func:`.correlate.refine_lk`.

Same mathematics as the numpy path of ``refine_lk`` (Lanczos-3 resampling renormalised near
nodata, weighted mean/contrast normalisation, 2 x 2 Gauss-Newton step), but one node at a time
in registers and small buffers instead of (N, chip, chip) temporaries, in parallel over nodes.
Each node's arithmetic does not depend on the others, so tiled and serial runs agree exactly.
"""

from __future__ import annotations

import math

import numpy as np

from .kernel_threads import set_threads

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a core dependency; numpy path remains
    numba = None

AVAILABLE = numba is not None
_CHUNK = 32


def _lanczos(frac, out):
    # sin(pi x) and sin(pi x / 3) at the six taps x = frac + 2 .. frac - 3 from one sine and one
    # sine-cosine pair by the angle-sum identities (3 calls instead of 12 per axis).
    s1 = math.sin(math.pi * frac)
    th = math.pi * frac / 3.0
    s3, c3 = math.sin(th), math.cos(th)
    h = 0.8660254037844386  # sin(pi / 3)
    tot = 0.0
    for k in range(6):
        x = frac - (k - 2)
        if abs(x) < 1e-12:
            w = 1.0
        else:
            n = 2 - k  # sin(pi x / 3) = sin(th + n pi / 3)
            if n == 2:
                sb = -0.5 * s3 + h * c3
            elif n == 1:
                sb = 0.5 * s3 + h * c3
            elif n == 0:
                sb = s3
            elif n == -1:
                sb = 0.5 * s3 - h * c3
            elif n == -2:
                sb = -0.5 * s3 - h * c3
            else:
                sb = -s3
            sa = s1 if k % 2 == 0 else -s1
            px = math.pi * x
            w = sa / px * sb / (px / 3.0)
        out[k] = w
        tot += w
    for k in range(6):
        out[k] /= tot


def _gauss_newton(hxx, hyy, hxy, det, bx, by, rr, sw):
    # The 2 x 2 Gauss-Newton update and the standard error of the shift (Cramer-Rao).
    ux = (hyy * bx - hxy * by) / det
    uy = (hxx * by - hxy * bx) / det
    return ux, uy, math.sqrt(rr / sw * (hxx + hyy) / det)


def _weighted_sums(w, a, b, c, d):
    # Sum of the weights and the weighted sums of four flat arrays (float64).
    sw = 0.0
    sa = 0.0
    sb = 0.0
    sc = 0.0
    sd = 0.0
    for k in range(w.shape[0]):
        x = w[k]
        sw += x
        sa += x * a[k]
        sb += x * b[k]
        sc += x * c[k]
        sd += x * d[k]
    return sw, sa, sb, sc, sd


def _refine(ref, sec, gx, gy, r0, c0, dy, dx, chip, taper, iterations, tol, need, max_move,
            out_y, out_x, out_s):
    H, W = sec.shape
    n = r0.shape[0]
    m = chip + 5
    # Buffers are allocated once per chunk of nodes, not per node (allocation was a
    # measurable share of the per-node cost).
    for ch in prange((n + _CHUNK - 1) // _CHUNK):
        t = np.empty((chip, chip), np.float32)
        tx = np.empty((chip, chip), np.float32)
        ty = np.empty((chip, chip), np.float32)
        base = np.empty((chip, chip), np.bool_)
        wb = np.empty((chip, chip), np.float32)
        tc = np.empty((chip, chip), np.float32)
        wgx = np.empty((chip, chip), np.float32)
        wgy = np.empty((chip, chip), np.float32)
        win = np.empty((m, m), np.float32)
        good = np.empty((m, m), np.bool_)
        tmp = np.empty((m, chip), np.float32)
        tmpn = np.empty((m, chip), np.float32)
        samp = np.empty((chip, chip), np.float32)
        goodf = np.empty((m, m), np.float32)
        wv = np.empty((chip, chip), np.float32)
        # Flat views for the sums over the chip: one loop of chip^2 vectorises better than
        # chip rows of chip.
        n2 = chip * chip
        wbf, tcf, sampf = wb.reshape(n2), tc.reshape(n2), samp.reshape(n2)
        wgxf, wgyf = wgx.reshape(n2), wgy.reshape(n2)
        tf, txf, tyf = t.reshape(n2), tx.reshape(n2), ty.reshape(n2)
        wvf = wv.reshape(n2)
        wy = np.empty(6)
        wx = np.empty(6)
        for q in range(ch * _CHUNK, min(n, (ch + 1) * _CHUNK)):
            out_y[q] = np.nan
            out_x[q] = np.nan
            out_s[q] = np.nan
            if not (math.isfinite(dy[q]) and math.isfinite(dx[q])):
                continue
            base[:] = False
            full = False
            if 0 <= r0[q] and r0[q] + chip <= H and 0 <= c0[q] and c0[q] + chip <= W:
                nbad = 0
                for i in range(chip):
                    rrow = ref[r0[q] + i, c0[q]:c0[q] + chip]
                    xrow = gx[r0[q] + i, c0[q]:c0[q] + chip]
                    yrow = gy[r0[q] + i, c0[q]:c0[q] + chip]
                    for j in range(chip):
                        t[i, j], tx[i, j], ty[i, j] = rrow[j], xrow[j], yrow[j]
                        nbad += not (math.isfinite(rrow[j]) and math.isfinite(xrow[j])
                                     and math.isfinite(yrow[j]))
                full = nbad == 0
            if full:
                base[:] = True
            else:
                for i in range(chip):
                    for j in range(chip):
                        r, c = r0[q] + i, c0[q] + j
                        t[i, j], tx[i, j], ty[i, j] = 0.0, 0.0, 0.0
                        if 0 <= r < H and 0 <= c < W:
                            a, b, g = ref[r, c], gx[r, c], gy[r, c]
                            if math.isfinite(a) and math.isfinite(b) and math.isfinite(g):
                                t[i, j], tx[i, j], ty[i, j] = a, b, g
                                base[i, j] = True
            # Template terms for windows without nodata, where the valid set is the template's
            # own and so the weighted means, contrast and Gauss-Newton matrix do not change from
            # one iteration to the next (the inverse-compositional saving). Zero weight (and zero
            # values) off the valid set keeps the loops branch-free, so LLVM vectorises them.
            wb[:] = 0.0
            cnt0 = 0
            for i in range(chip):
                for j in range(chip):
                    if base[i, j]:
                        wb[i, j] = taper[i, j]
                        cnt0 += 1
            sw0, mt0, mgx0, mgy0, _ = _weighted_sums(wbf, tf, txf, tyf, tf)
            if cnt0 < need or sw0 <= 0:
                continue
            mt0 /= sw0
            mgx0 /= sw0
            mgy0 /= sw0
            vt0 = 0.0
            hxx0 = 0.0
            hyy0 = 0.0
            hxy0 = 0.0
            for k in range(chip * chip):
                w = wbf[k]
                d = tf[k] - mt0
                ax = txf[k] - mgx0
                ay = tyf[k] - mgy0
                tcf[k] = d
                wgxf[k] = w * ax
                wgyf[k] = w * ay
                vt0 += w * d * d
                hxx0 += w * ax * ax
                hyy0 += w * ay * ay
                hxy0 += w * ax * ay
            det0 = hxx0 * hyy0 - hxy0 * hxy0
            py, px = dy[q], dx[q]
            was_holed = False
            ok = True
            se = np.nan
            for _ in range(iterations):
                iy, ix = math.floor(py), math.floor(px)
                _lanczos(py - iy, wy)
                _lanczos(px - ix, wx)
                wr, wc = r0[q] + iy - 2, c0[q] + ix - 2
                inside = 0 <= wr and wr + m <= H and 0 <= wc and wc + m <= W
                fm = np.float32(np.nan)
                if inside and not was_holed:  # a holed window mostly stays holed
                    for i in range(m):
                        srow = sec[wr + i, wc:wc + m]
                        for j in range(m):
                            win[i, j] = srow[j]
                    # Separable Lanczos-3 with the six taps in registers: each output is one
                    # expression of loads, so LLVM vectorises the pixel loop.
                    x0, x1, x2 = np.float32(wx[0]), np.float32(wx[1]), np.float32(wx[2])
                    x3, x4, x5 = np.float32(wx[3]), np.float32(wx[4]), np.float32(wx[5])
                    for i in range(m):
                        for j in range(chip):
                            tmp[i, j] = (x0 * win[i, j] + x1 * win[i, j + 1]
                                         + x2 * win[i, j + 2] + x3 * win[i, j + 3]
                                         + x4 * win[i, j + 4] + x5 * win[i, j + 5])
                    y0, y1, y2 = np.float32(wy[0]), np.float32(wy[1]), np.float32(wy[2])
                    y3, y4, y5 = np.float32(wy[3]), np.float32(wy[4]), np.float32(wy[5])
                    for i in range(chip):
                        for j in range(chip):
                            samp[i, j] = (y0 * tmp[i, j] + y1 * tmp[i + 1, j]
                                          + y2 * tmp[i + 2, j] + y3 * tmp[i + 3, j]
                                          + y4 * tmp[i + 4, j] + y5 * tmp[i + 5, j])
                    # float32 sums: 1600 terms lose < 1e-5 relative, far below the noise. Every
                    # window pixel reaches some sample, so nodata in the window makes fm NaN
                    # (NaN * 0 is NaN: no 'nnan' in the fast-math flags) and sends the node to
                    # the holed path; that is cheaper than counting nodata while copying.
                    fm = np.float32(0.0)
                    for k in range(chip * chip):
                        fm += wbf[k] * sampf[k]
                    fm /= np.float32(sw0)
                holed = not math.isfinite(fm)
                was_holed = holed
                if holed:
                    for i in range(m):
                        for j in range(m):
                            r, c = wr + i, wc + j
                            v = sec[r, c] if (0 <= r < H and 0 <= c < W) else np.nan
                            if math.isfinite(v):
                                win[i, j] = v
                                good[i, j] = True
                            else:
                                win[i, j] = 0.0
                                good[i, j] = False
                if not holed:
                    fv = np.float32(0.0)
                    for k in range(chip * chip):
                        fe = sampf[k] - fm
                        fv += wbf[k] * fe * fe
                    if vt0 <= 0 or fv <= 0 or not det0 > 1e-12:
                        ok = False
                        break
                    fg = np.float32(math.sqrt(vt0 / fv))
                    fbx = np.float32(0.0)
                    fby = np.float32(0.0)
                    frr = np.float32(0.0)
                    for k in range(chip * chip):
                        fr = (sampf[k] - fm) * fg - tcf[k]
                        fbx += wgxf[k] * fr
                        fby += wgyf[k] * fr
                        frr += wbf[k] * fr * fr
                    ux, uy, se = _gauss_newton(hxx0, hyy0, hxy0, det0, fbx, fby, frr, sw0)
                    px -= ux
                    py -= uy
                    if math.hypot(ux, uy) < tol:
                        break
                    continue
                # Holed window (nodata, or partly outside the image): Lanczos renormalised over
                # the valid taps, with 0/1 weights and selects instead of branches so that the
                # pixel loops vectorise like the gap-free path.
                for i in range(m):
                    for j in range(m):
                        goodf[i, j] = np.float32(1.0) if good[i, j] else np.float32(0.0)
                for i in range(m):
                    for j in range(chip):
                        tmp[i, j] = (wx[0] * win[i, j] + wx[1] * win[i, j + 1]
                                     + wx[2] * win[i, j + 2] + wx[3] * win[i, j + 3]
                                     + wx[4] * win[i, j + 4] + wx[5] * win[i, j + 5])
                        tmpn[i, j] = (wx[0] * goodf[i, j] + wx[1] * goodf[i, j + 1]
                                      + wx[2] * goodf[i, j + 2] + wx[3] * goodf[i, j + 3]
                                      + wx[4] * goodf[i, j + 4] + wx[5] * goodf[i, j + 5])
                cnt = 0
                for i in range(chip):
                    for j in range(chip):
                        s = (wy[0] * tmp[i, j] + wy[1] * tmp[i + 1, j] + wy[2] * tmp[i + 2, j]
                             + wy[3] * tmp[i + 3, j] + wy[4] * tmp[i + 4, j]
                             + wy[5] * tmp[i + 5, j])
                        sn = (wy[0] * tmpn[i, j] + wy[1] * tmpn[i + 1, j]
                              + wy[2] * tmpn[i + 2, j] + wy[3] * tmpn[i + 3, j]
                              + wy[4] * tmpn[i + 4, j] + wy[5] * tmpn[i + 5, j])
                        near = (goodf[i + 2, j + 2] * goodf[i + 3, j + 2]
                                * goodf[i + 2, j + 3] * goodf[i + 3, j + 3])
                        use = base[i, j] and near > 0 and sn > 0.75
                        samp[i, j] = s / sn if use else np.float32(0.0)
                        wv[i, j] = taper[i, j] if use else np.float32(0.0)
                        cnt += use
                # weighted means over the valid pixels (zero weight elsewhere)
                sw, mt, mgx, mgy, ms = _weighted_sums(wvf, tf, txf, tyf, sampf)
                if cnt < need or sw <= 0:
                    ok = False
                    break
                mt /= sw
                ms /= sw
                mgx /= sw
                mgy /= sw
                vt = 0.0
                vs = 0.0
                for k in range(chip * chip):
                    w = wvf[k]
                    vt += w * (tf[k] - mt) ** 2
                    vs += w * (sampf[k] - ms) ** 2
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
                for k in range(chip * chip):
                    w = wvf[k]
                    res = (sampf[k] - ms) * gain - (tf[k] - mt)
                    ax = txf[k] - mgx
                    ay = tyf[k] - mgy
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
                ux, uy, se = _gauss_newton(hxx, hyy, hxy, det, bx, by, rr, sw)
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
    _gauss_newton = njit(cache=True, inline="always")(_gauss_newton)
    # Reassociation lets LLVM vectorise the sums; no 'nnan': the NaN tests must survive.
    _fast = {"reassoc", "contract", "nsz", "arcp"}
    _weighted_sums = njit(cache=True, fastmath=_fast)(_weighted_sums)
    _refine = njit(parallel=True, cache=True, fastmath=_fast)(_refine)


def refine(ref, sec, gx, gy, r0, c0, dy, dx, *, chip, taper, iterations, tol, need, max_move,
           threads):
    """Run the kernel; returns (dy, dx, sigma) arrays (NaN where refinement failed)."""
    n = len(r0)
    out = [np.empty(n) for _ in range(3)]
    set_threads(threads)
    _refine(ref, sec, gx, gy, np.ascontiguousarray(r0, np.int64),
            np.ascontiguousarray(c0, np.int64), np.ascontiguousarray(dy, np.float64),
            np.ascontiguousarray(dx, np.float64), chip, taper.astype(np.float32), iterations,
            tol, need, max_move, *out)
    return tuple(out)
