"""The numba per-node kernels against the numpy reference they replace (same inputs, both
paths): integer peaks of correlation surfaces, the normalised median test, the block mean."""

import numpy as np
import pytest

from cryokit.velocity import correlate, filter_kernel, filters, node_kernels, track

pytestmark = pytest.mark.skipif(not node_kernels.AVAILABLE, reason="numba not installed")


def _surfaces(n=400, k=9, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.uniform(-0.3, 0.4, (n, k, k)).astype(np.float32)
    pr, pc = rng.integers(0, k, n), rng.integers(0, k, n)
    v[np.arange(n), pr, pc] = rng.uniform(0.5, 1.0, n)          # peaks, some on the edge
    v[rng.random(v.shape) < 0.05] = np.nan                       # masked offsets
    v[:5] = np.nan                                               # unmatched nodes
    cy, cx = rng.integers(-6, 7, n), rng.integers(-6, 7, n)
    return correlate.Surfaces(v, cy, cx, k // 2)


def test_integer_peaks_kernel_matches_numpy(monkeypatch):
    s = _surfaces()
    fast = correlate.integer_peaks(s, threads=2)
    monkeypatch.setattr(node_kernels, "AVAILABLE", False)
    ref = correlate.integer_peaks(s)
    for name, a, b in zip(("dy", "dx", "peak", "snr", "ratio"), ref, fast):
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), name
        fin = np.isfinite(a)
        # float32 logs of two libms: the sub-pixel offsets agree to ~1e-6 px, the rest to
        # float32 rounding of the sums.
        np.testing.assert_allclose(b[fin], a[fin], rtol=1e-5, atol=2e-6, err_msg=name)
    assert np.isfinite(ref[0]).sum() > 150            # (7/9)^2 of the peaks are inside


def test_median_test_kernel_matches_numpy(monkeypatch):
    rng = np.random.default_rng(1)
    dx, dy = rng.normal(0, 0.3, (2, 40, 50))
    dx[rng.random(dx.shape) < 0.03] += 5                          # outliers
    gone = rng.random(dx.shape) < 0.15
    dx[gone] = dy[gone] = np.nan
    for radius, eps in ((1, 0.15), (2, 0.5)):
        fast = filters.normalized_median_test(dx, dy, radius=radius, eps=eps, threads=2)
        with monkeypatch.context() as m:
            m.setattr(node_kernels, "AVAILABLE", False)
            ref = filters.normalized_median_test(dx, dy, radius=radius, eps=eps)
        assert np.array_equal(fast, ref)
        assert ref.sum() > 20


def test_block_mean_matches_numpy():
    rng = np.random.default_rng(2)
    img = rng.normal(size=(103, 98)).astype(np.float32)
    img[10:30, 40:47] = np.nan
    fast = filter_kernel.block_mean(img, 4, threads=2)
    h, w = 100, 96
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanmean(img[:h, :w].astype(np.float64).reshape(25, 4, 24, 4), axis=(1, 3))
    np.testing.assert_allclose(fast, ref, rtol=1e-6, equal_nan=True)
    assert np.isnan(fast).sum() == 4 * 1             # whole blocks: rows 12..27 x cols 40..43
    assert track.decimate(img, 4).shape == (25, 24)
