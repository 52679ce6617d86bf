"""Fused per-node normalised cross-correlation kernel (numba), the hot loop of
:func:`.correlate.correlation_surfaces` for gap-free chips.

For each node the template is centred once; for every integer offset the dot product with the
search window is taken directly and normalised by the window's standard deviation from a small
summed-area table of that node's search area. Direct sums beat an FFT at these sizes (a 40 px
chip over +-4 px is 81 dot products of 1600) and, unlike one ``cv2.matchTemplate`` call per
node, need no Python call or allocation per node. Each node's arithmetic is independent of the
others, so tiled and serial runs agree exactly.
"""

from __future__ import annotations

import math

import numpy as np

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
            for j in range(chip):
                v = ref[r0[q] + i, c0[q] + j]
                t[i, j] = v
                mean += v
        mean /= n_px
        tt = 0.0
        for i in range(chip):
            for j in range(chip):
                v = t[i, j] - mean
                t[i, j] = v
                tt += v * v
        if not tt > 1e-12:
            continue
        # Summed-area tables of the search window (float64: the differences of large sums
        # must keep the precision of the window variance).
        s1 = np.zeros((m + 1, m + 1))
        s2 = np.zeros((m + 1, m + 1))
        for i in range(m):
            r = sr0[q] + i
            a1 = 0.0
            a2 = 0.0
            for j in range(m):
                c = sc0[q] + j
                v = 0.0
                if 0 <= r < H and 0 <= c < W:
                    v = sec[r, c]
                a1 += v
                a2 += v * v
                s1[i + 1, j + 1] = s1[i, j + 1] + a1
                s2[i + 1, j + 1] = s2[i, j + 1] + a2
        for a in range(k):
            ra = sr0[q] + a
            if ra < 0 or ra + chip > H:
                continue
            for b in range(k):
                cb = sc0[q] + b
                if cb < 0 or cb + chip > W:
                    continue
                acc = np.float32(0.0)
                for i in range(chip):
                    row = ra + i
                    for j in range(chip):
                        acc += t[i, j] * sec[row, cb + j]
                sm = s1[a + chip, b + chip] - s1[a, b + chip] - s1[a + chip, b] + s1[a, b]
                sq = s2[a + chip, b + chip] - s2[a, b + chip] - s2[a + chip, b] + s2[a, b]
                var = sq - sm * sm / n_px
                if var > 1e-12:
                    out[q, a, b] = min(1.0, max(-1.0, acc / math.sqrt(tt * var)))


# Reassociation lets LLVM vectorise the dot products; no 'nnan'/'ninf', which would let it drop
# the finiteness tests.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

if AVAILABLE:
    _surfaces = njit(parallel=True, cache=True, fastmath=FASTMATH)(_surfaces)


def surfaces(ref, sec, r0, c0, sr0, sc0, todo, out, *, chip, threads):
    """Fill ``out[todo]`` (N, k, k) with the NCC of each template (top-left r0, c0 in ``ref``)
    over the search window (top-left sr0, sc0 in ``sec``); offsets where the template would
    leave ``sec`` stay untouched. Templates must lie inside ``ref`` and hold no NaN."""
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    _surfaces(ref, sec, np.ascontiguousarray(r0, np.int64), np.ascontiguousarray(c0, np.int64),
              np.ascontiguousarray(sr0, np.int64), np.ascontiguousarray(sc0, np.int64),
              chip, out.shape[1], np.ascontiguousarray(todo, np.int64), out)
