"""Synthetic glacier pairs: realistic texture, exact truth, SLC-off gaps."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import ndimage

from cryokit.synthetic import SyntheticPair, make_glacier_pair, make_uniform_shift_pair
from cryokit.synthetic.velocity import _forward


def _phase_shift(a, b, kmax=0.15):
    """(dy, dx) with b(x) ~ a(x - d): weighted plane fit to the low-frequency cross-power phase."""
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    q = np.fft.fft2((b - b.mean()) * win) * np.conj(np.fft.fft2((a - a.mean()) * win))
    ky, kx = np.meshgrid(np.fft.fftfreq(a.shape[0]), np.fft.fftfreq(a.shape[1]), indexing="ij")
    k = np.hypot(ky, kx)
    sel = (k > 0) & (k < kmax)
    w = np.sqrt(np.abs(q[sel]))
    g = -2 * np.pi * np.column_stack([ky[sel], kx[sel]]) * w[:, None]
    return np.linalg.lstsq(g, np.angle(q[sel]) * w, rcond=None)[0]


def _sample(coef, rows, cols):
    return ndimage.map_coordinates(coef, [rows, cols], order=5, mode="mirror", prefilter=False)


def _match(ref, sec, r, c, h, d0=(0.0, 0.0), n=6):
    """Sub-pixel offset of the ref patch at (r, c) in sec: phase correlation on the patch
    resampled at the current estimate, repeated so the window bias vanishes at the end."""
    coef = ndimage.spline_filter(sec.astype(float), order=5, mode="mirror")
    rr, cc = np.mgrid[r - h:r + h + 1, c - h:c + h + 1].astype(float)
    a = ref[r - h:r + h + 1, c - h:c + h + 1].astype(float)
    d = np.asarray(d0, float)
    for _ in range(n):
        d = d + _phase_shift(a, _sample(coef, rr + d[0], cc + d[1]))
    return d


def _radial_slope(img):
    a = (img - img.mean()) * np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    p = np.abs(np.fft.fft2(a)) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(img.shape[0]), np.fft.fftfreq(img.shape[1]),
                              indexing="ij"))
    edges = np.geomspace(0.01, 0.25, 12)
    idx = np.digitize(k, edges)
    power = [p[idx == i].mean() for i in range(1, len(edges))]
    return np.polyfit(np.log(np.sqrt(edges[1:] * edges[:-1])), np.log(power), 1)[0]


@pytest.fixture(scope="module")
def pair() -> SyntheticPair:
    return make_glacier_pair((384, 384), seed=2)


def test_fields_and_metadata(pair):
    assert pair.ref.dtype == pair.sec.dtype == np.float32
    assert pair.dx.dtype == np.float64 and pair.ref.shape == pair.dx.shape == (384, 384)
    assert pair.grid.crs.to_epsg() == 32607 and pair.grid.res == (15.0, 15.0)
    assert pair.grid.transform.e < 0  # north-up
    assert pair.dates[1] - pair.dates[0] == dt.timedelta(days=16)
    assert isinstance(pair.dates[0], dt.date) and pair.params["max_speed_px"] == 6.0
    assert -0.2 < np.percentile(pair.ref, 1) and np.percentile(pair.ref, 99) < 1.2
    assert not np.isnan(pair.ref).any()
    assert 0.1 < pair.glacier.mean() < 0.5 and 0.3 < pair.stable.mean()
    assert not (pair.glacier & pair.stable).any()


def test_seed_reproducible():
    a, b = make_glacier_pair((96, 96), seed=4), make_glacier_pair((96, 96), seed=4)
    c = make_glacier_pair((96, 96), seed=5)
    assert np.array_equal(a.sec, b.sec) and np.array_equal(a.dx, b.dx)
    assert not np.array_equal(a.ref, c.ref)


def test_spectrum_is_terrain_like_not_white(pair):
    assert _radial_slope(pair.ref) < -1.5
    assert _radial_slope(np.where(pair.glacier, pair.ref, pair.ref[pair.glacier].mean())) < -1.5
    assert abs(_radial_slope(np.random.default_rng(0).standard_normal((384, 384)))) < 0.3


def test_ice_is_textured_and_brighter(pair):
    hp = pair.ref - ndimage.gaussian_filter(pair.ref, 4)  # trackable detail at chip scale
    core = pair.glacier & (np.hypot(pair.dx, pair.dy) > 3)
    assert np.median(pair.ref[core]) > np.median(pair.ref[pair.stable])
    assert hp[core].std() > 3 * pair.params["noise"]


def test_stable_still_and_max_speed(pair):
    speed = np.hypot(pair.dx, pair.dy)
    assert np.all(pair.dx[pair.stable] == 0) and np.all(pair.dy[pair.stable] == 0)
    assert speed.max() == pytest.approx(6.0, rel=0.05)
    assert speed[pair.glacier].min() >= 0 and np.median(speed[pair.glacier]) > 2


@pytest.mark.parametrize("dx, dy", [(0.3, -0.2), (0.5, 0.5), (1.37, -0.81), (-2.6, 3.3)])
def test_uniform_shift_truth_is_exact(dx, dy):
    p = make_uniform_shift_pair((160, 160), dx, dy, seed=1, noise=0.0)
    assert np.all(p.dx == dx) and np.all(p.dy == dy)
    est = _match(p.ref, p.sec, 80, 80, 56, d0=(round(dy), round(dx)))
    assert est == pytest.approx([dy, dx], abs=0.01)


def test_forward_solves_backward_warp():
    # Linear backward flow u_b(p) = A p has the forward solution u_f(q) = (I - A)^-1 A q.
    a = np.array([[0.05, -0.2], [0.1, 0.15]])

    def flow(rows, cols):
        return a[0, 0] * rows + a[0, 1] * cols, a[1, 0] * rows + a[1, 1] * cols

    uy, ux = _forward(flow, (20, 30))
    rr, cc = np.mgrid[0:20, 0:30]
    m = np.linalg.solve(np.eye(2) - a, a)
    assert np.allclose(uy, m[0, 0] * rr + m[0, 1] * cc, atol=1e-6)
    assert np.allclose(ux, m[1, 0] * rr + m[1, 1] * cc, atol=1e-6)


def test_glacier_truth_matches_local_matching():
    p = make_glacier_pair((320, 320), seed=2, noise=0.0, contrast_change=0.0)
    # Where the truth is nearly uniform, matching a 21 px patch must recover it; the
    # estimator alone scatters ~0.001 px (median) on a uniform shift, and the truth 5 %
    # off would be ~0.25 px off here.
    grad = sum(np.abs(g) for u in (p.dx, p.dy) for g in np.gradient(u))
    speed = np.hypot(p.dx, p.dy)
    ok = p.glacier & (grad < 0.015) & (speed > 2)
    ok[:30], ok[-30:], ok[:, :30], ok[:, -30:] = False, False, False, False
    pts = np.argwhere(ok)
    pts = pts[np.random.default_rng(0).choice(len(pts), 20, replace=False)]
    err = [_match(p.ref, p.sec, r, c, 10, d0=(round(p.dy[r, c]), round(p.dx[r, c])))
           - (p.dy[r, c], p.dx[r, c]) for r, c in pts]
    err = np.abs(err)
    assert np.median(err) < 0.015 and np.percentile(err, 90) < 0.04 and err.max() < 0.1


def test_slc_off_gaps_are_wedges():
    p = make_glacier_pair((300, 400), seed=3, slc_off=True)
    for img in (p.ref, p.sec):
        gap = np.isnan(img)
        assert 0.19 <= gap.mean() <= 0.25
        assert gap[:, :20].mean() > 0.35 and gap[:, 190:210].mean() < 0.05  # wide at the edges
        rows_with_gap = gap[:, 0].astype(int)
        assert 6 <= np.count_nonzero(np.diff(rows_with_gap) == 1) <= 14  # ~every 30 rows
    assert not np.array_equal(np.isnan(p.ref), np.isnan(p.sec))
    assert np.isfinite(p.dx).all()  # the truth has no gaps
