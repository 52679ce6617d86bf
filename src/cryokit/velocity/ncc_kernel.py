"""Fused per-node normalised cross-correlation kernels (numba), the hot loops of
:func:`.correlate.correlation_surfaces`: gap-free chips (:func:`surfaces`) and chips touching
nodata or the image edge (:func:`masked_surfaces`).

For each node the template is centred once; for every integer offset the dot product with the
search window is taken directly and normalised by the window's standard deviation, from
running column sums of that node's search window. Direct sums beat an FFT at these sizes (a 40 px
chip over +-4 px is 81 dot products of 1600) and, unlike one ``cv2.matchTemplate`` call per
node, need no Python call or allocation per node. Each node's arithmetic is independent of the
others, so tiled and serial runs agree exactly.
"""

from __future__ import annotations

import math

import numpy as np

from .kernel_threads import set_threads

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a core dependency; OpenCV path remains
    numba = None

AVAILABLE = numba is not None


def _surfaces(ref, sec, r0, c0, sr0, sc0, chip, k, todo, out):
    H, W = sec.shape
    m = chip + k - 1
    n_px = chip * chip
    for ii in prange(todo.shape[0]):
        q = todo[ii]
        t = np.empty((chip, chip), np.float32)
        mean = 0.0
        for i in range(chip):
            t[i, :] = ref[r0[q] + i, c0[q]:c0[q] + chip]
            for j in range(chip):
                mean += t[i, j]
        mean = np.float32(mean / n_px)
        tt = 0.0
        for i in range(chip):
            for j in range(chip):
                v = t[i, j] - mean
                t[i, j] = v
                tt += v * v
        if not tt > 1e-12:
            continue
        # The search window, copied contiguous and zero outside the image.
        # One spare zero row: the flat dot products of the last offsets read k - 2 floats past
        # the window (times zero template padding).
        sw = np.zeros((m + 1, m), np.float32)
        if sr0[q] >= 0 and sc0[q] >= 0 and sr0[q] + m <= H and sc0[q] + m <= W:
            for i in range(m):
                sw[i, :] = sec[sr0[q] + i, sc0[q]:sc0[q] + m]
        else:
            for i in range(m):
                r = sr0[q] + i
                for j in range(m):
                    c = sc0[q] + j
                    if 0 <= r < H and 0 <= c < W:
                        sw[i, j] = sec[r, c]
        # Sums of the window and its square over every chip x chip placement: column sums
        # down the chip rows (vectorised across columns), then along the row (float64: the
        # differences of large sums must keep the precision of the window variance).
        c1 = np.zeros(m)
        c2 = np.zeros(m)
        for i in range(chip):
            for j in range(m):
                v = np.float64(sw[i, j])
                c1[j] += v
                c2[j] += v * v
        s1 = np.empty((k, k))
        s2 = np.empty((k, k))
        for a in range(k):
            if a > 0:
                for j in range(m):
                    v = np.float64(sw[a + chip - 1, j])
                    u = np.float64(sw[a - 1, j])
                    c1[j] += v - u
                    c2[j] += v * v - u * u
            x1 = 0.0
            x2 = 0.0
            for j in range(chip):
                x1 += c1[j]
                x2 += c2[j]
            s1[a, 0] = x1
            s2[a, 0] = x2
            for b in range(1, k):
                x1 += c1[b + chip - 1] - c1[b - 1]
                x2 += c2[b + chip - 1] - c2[b - 1]
                s1[a, b] = x1
                s2[a, b] = x2
        # Each offset's dot product is one flat loop: the template laid out with the search
        # window's row stride m (zeros past the chip) against the flat window from the
        # offset's first pixel. One long vectorised sum per offset, instead of a short one per
        # template row whose horizontal reductions dominated. Three offsets share each
        # template load.
        tp = np.zeros(chip * m, np.float32)
        for i in range(chip):
            for j in range(chip):
                tp[i * m + j] = t[i, j]
        swf = sw.reshape((m + 1) * m)
        L = chip * m
        acc = np.zeros((k, k), np.float32)
        for a in range(k):
            b = 0
            while b + 2 < k:
                o = a * m + b
                x0 = np.float32(0.0)
                x1 = np.float32(0.0)
                x2 = np.float32(0.0)
                for j in range(L):
                    tv = tp[j]
                    x0 += tv * swf[o + j]
                    x1 += tv * swf[o + 1 + j]
                    x2 += tv * swf[o + 2 + j]
                acc[a, b] = x0
                acc[a, b + 1] = x1
                acc[a, b + 2] = x2
                b += 3
            while b < k:
                o = a * m + b
                x0 = np.float32(0.0)
                for j in range(L):
                    x0 += tp[j] * swf[o + j]
                acc[a, b] = x0
                b += 1
        for a in range(k):
            if sr0[q] + a < 0 or sr0[q] + a + chip > H:
                continue
            for b in range(k):
                if sc0[q] + b < 0 or sc0[q] + b + chip > W:
                    continue
                sm = s1[a, b]
                var = s2[a, b] - sm * sm / n_px
                if var > 1e-12:
                    out[q, a, b] = min(1.0, max(-1.0, acc[a, b] / math.sqrt(tt * var)))


def _load_centred(img, r0, c0, n):
    """The n x n window at (r0, c0) of ``img``: values (zero off the valid pixels, i.e. NaN or
    outside the image, and centred on their valid mean so float32 sums keep the precision the
    NCC needs), their squares, the 0/1 weights and the number of valid pixels."""
    H, W = img.shape
    v = np.zeros((n, n), np.float32)
    w = np.zeros((n, n), np.float32)
    count = 0.0
    mean = 0.0
    for i in range(n):
        r = r0 + i
        for j in range(n):
            c = c0 + j
            if 0 <= r < H and 0 <= c < W:
                x = img[r, c]
                if math.isfinite(x):
                    v[i, j] = x
                    w[i, j] = 1.0
                    count += 1.0
                    mean += x
    v2 = np.zeros((n, n), np.float32)
    if count > 0:
        mean /= count
        for i in range(n):
            for j in range(n):
                if w[i, j] > 0:
                    v[i, j] -= mean
                    v2[i, j] = v[i, j] * v[i, j]
    return v, v2, w, count


def _masked(ref, sec, r0, c0, sr0, sc0, chip, k, min_overlap, todo, out):
    m = chip + k - 1
    for ii in prange(todo.shape[0]):
        q = todo[ii]
        tv, tv2, tm, n_t = _load_centred(ref, r0[q], c0[q], chip)
        sv, sv2, sm, n_s = _load_centred(sec, sr0[q], sc0[q], m)
        if n_t == 0 or n_s == 0:
            continue
        need = min_overlap * n_t - 0.5
        for a in range(k):
            for b in range(k):
                n = np.float32(0.0)
                st = np.float32(0.0)
                ss = np.float32(0.0)
                stt = np.float32(0.0)
                sss = np.float32(0.0)
                sts = np.float32(0.0)
                for i in range(chip):
                    for j in range(chip):
                        w = sm[a + i, b + j]
                        x = sv[a + i, b + j]
                        n += tm[i, j] * w
                        st += tv[i, j] * w
                        stt += tv2[i, j] * w
                        ss += tm[i, j] * x
                        sss += tm[i, j] * sv2[a + i, b + j]
                        sts += tv[i, j] * x
                if n < need or n < 1:
                    out[q, a, b] = np.nan
                    continue
                num = sts - st * ss / n
                den = (stt - st * st / n) * (sss - ss * ss / n)
                if den > 1e-12:
                    out[q, a, b] = min(1.0, max(-1.0, num / math.sqrt(den)))
                else:
                    out[q, a, b] = np.nan


# Reassociation lets LLVM vectorise the dot products; no 'nnan'/'ninf', which would let it drop
# the finiteness tests.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

if AVAILABLE:
    _surfaces = njit(parallel=True, cache=True, fastmath=FASTMATH)(_surfaces)
    _load_centred = njit(cache=True, inline="always")(_load_centred)
    _masked = njit(parallel=True, cache=True, fastmath=FASTMATH)(_masked)


def surfaces(ref, sec, r0, c0, sr0, sc0, todo, out, *, chip, threads):
    """Fill ``out[todo]`` (N, k, k) with the NCC of each template (top-left r0, c0 in ``ref``)
    over the search window (top-left sr0, sc0 in ``sec``); offsets where the template would
    leave ``sec`` stay untouched. Templates must lie inside ``ref`` and hold no NaN."""
    set_threads(threads)
    _surfaces(ref, sec, np.ascontiguousarray(r0, np.int64), np.ascontiguousarray(c0, np.int64),
              np.ascontiguousarray(sr0, np.int64), np.ascontiguousarray(sc0, np.int64),
              chip, out.shape[1], np.ascontiguousarray(todo, np.int64), out)


def masked_surfaces(ref, sec, r0, c0, sr0, sc0, todo, out, *, chip, min_overlap, threads):
    """Fill ``out[todo]`` with the masked NCC of :func:`.correlate.masked_ncc` (NaN and pixels
    outside the images left out of every sum; offsets where fewer than ``min_overlap`` of the
    template's valid pixels meet valid search pixels, or with no variance, are NaN), read
    straight from the images instead of through per-node FFTs."""
    set_threads(threads)
    _masked(ref, sec, np.ascontiguousarray(r0, np.int64), np.ascontiguousarray(c0, np.int64),
            np.ascontiguousarray(sr0, np.int64), np.ascontiguousarray(sc0, np.int64),
            chip, out.shape[1], float(min_overlap), np.ascontiguousarray(todo, np.int64), out)
