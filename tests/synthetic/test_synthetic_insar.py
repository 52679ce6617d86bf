"""The synthetic interferogram stack: its truth is self-consistent."""

from __future__ import annotations

import numpy as np

from cryokit.sbas.network import check_network
from cryokit.synthetic.insar import make_insar_stack, write_insar_stack


def test_stack_consistent_with_truth():
    s = make_insar_stack(shape=(30, 40), n_dates=10, neighbours=3, seed=4)
    assert check_network(s.pairs, 10).connected and len(s.pairs) == 24
    k_mm = -4 * np.pi / (s.wavelength_m * 1000)
    phase = s.series_mm * k_mm
    exact = phase[s.pairs[:, 1]] - phase[s.pairs[:, 0]]
    noise = s.ifgs - exact
    # noise std follows the Cramér-Rao std of the coherence (L = 20): within 15 % overall
    sig = np.sqrt((1 - s.coherence ** 2) / (2 * s.looks * s.coherence ** 2))
    ok = np.isfinite(noise)
    assert abs(np.std(noise[ok] / sig[ok]) - 1) < 0.15
    assert 0 < (~ok).mean() < 0.3                 # some NaN, not most
    assert np.all(s.series_mm[0] == 0)
    # the bowl is the fastest motion, at the rate asked for (trend adds at most 4 mm/yr)
    assert abs(s.velocity_mm_per_yr.min() - (-60)) < 4.1


def test_write_and_max_ifgs(tmp_path):
    s = make_insar_stack(shape=(8, 9), n_dates=5, neighbours=2, max_ifgs=6, seed=1)
    assert len(s.pairs) == 6
    paths = write_insar_stack(s, tmp_path)
    assert len(paths) == 6 and len(list(tmp_path.glob("*_cc.tif"))) == 6
    import rasterio
    with rasterio.open(paths[0]) as ds:
        assert ds.tags()["FIRST_DATE"] == s.dates[0].isoformat() and ds.nodata == 0
