"""SBAS network, inversion and readers: known truth, MintPy-style estimator, real stacks."""

from __future__ import annotations

import datetime as dt

import h5py
import numpy as np
import pytest
from scipy import ndimage

from cryokit.core.errors import UserError
from cryokit.sbas import inversion
from cryokit.sbas.interferograms import (dates_from_name, read_geotiff_stack, read_hdf5_stack,
                                         read_stack)
from cryokit.sbas.network import (check_network, design_matrix, pairs_from_dates,
                                  require_connected, sequential_network)
from cryokit.synthetic.insar import make_insar_stack, write_insar_stack

from conftest import shared_path


# ----------------------------------------------------------------------------- network

def test_network_components_and_redundancy():
    pairs = np.array([(0, 1), (1, 2), (3, 4)])
    chk = check_network(pairs, 5)
    assert chk.n_components == 2 and chk.labels.tolist() == [0, 0, 0, 1, 1]
    assert chk.redundancy.tolist() == [1, 2, 1, 1, 1]
    d = [dt.date(2020, 1, 1) + dt.timedelta(days=12 * k) for k in range(5)]
    with pytest.raises(UserError, match="not connected: 2 subsets"):
        require_connected(chk, d, "stack")


def test_pairs_from_dates_sign():
    d = [dt.date(2020, 1, 1), dt.date(2020, 1, 13)]
    dates, pairs, sign = pairs_from_dates([(d[1], d[0])])
    assert pairs.tolist() == [[0, 1]] and sign.tolist() == [-1.0]
    assert design_matrix(pairs, 2).tolist() == [[1.0]]


# ----------------------------------------------------------------------------- inversion

def _random_problem(seed=0, n_dates=12, n_pix=500, nan_frac=0.1):
    rng = np.random.default_rng(seed)
    pairs = sequential_network(n_dates, 4)
    x = np.cumsum(rng.normal(0, 1, (n_dates, n_pix)), 0)
    x -= x[:1]
    y = x[pairs[:, 1]] - x[pairs[:, 0]] + rng.normal(0, 0.3, (len(pairs), n_pix))
    y[rng.random(y.shape) < nan_frac] = np.nan
    y[:, : n_pix // 2] = y[:, :1]  # half the pixels share one validity pattern: grouped path
    y[:, : n_pix // 2] += rng.normal(0, 0.3, (len(pairs), n_pix // 2)) * np.isfinite(y[:, :1])
    w = rng.uniform(0.1, 5, y.shape)
    return pairs, n_dates, y, w


@pytest.mark.parametrize("weighted,min_group", [(False, None), (False, 8), (True, None)])
def test_invert_matches_per_pixel_lstsq(weighted, min_group):
    pairs, n, y, w = _random_problem()
    res = inversion.invert(y, pairs, n, w if weighted else None, min_group=min_group)
    assert (res.info["solved_by_group"] > 0) == (min_group is not None)
    a = design_matrix(pairs, n)
    checked = 0
    for p in range(y.shape[1]):
        ok = np.isfinite(y[:, p])
        sw = np.sqrt(w[ok, p]) if weighted else np.ones(ok.sum())
        ga = a[ok] * sw[:, None]
        full = np.linalg.matrix_rank(ga) == n - 1
        assert full == np.isfinite(res.phase[:, p]).all()
        if full:
            xs = np.linalg.lstsq(ga, y[ok, p] * sw, rcond=None)[0]
            # both are exact LS solutions in float64: agreement to rounding
            np.testing.assert_allclose(res.phase[1:, p], xs, atol=1e-9)
            r = y[ok, p] - a[ok] @ xs
            assert abs(res.temporal_coherence[p] - abs(np.exp(1j * r).mean())) < 1e-9
            checked += 1
    assert checked > 400


def test_disconnected_pixel_is_nan_and_subsets():
    pairs = np.array([(0, 1), (1, 2), (2, 3), (0, 2)])
    truth = np.array([0.0, 1.0, 3.0, 2.0])
    y = np.repeat((truth[pairs[:, 1]] - truth[pairs[:, 0]])[:, None], 3, 1)
    y[2, 1] = np.nan                       # pixel 1 loses the only link to date 3
    res = inversion.invert(y, pairs, 4)
    np.testing.assert_allclose(res.phase[:, 0], truth, atol=1e-12)
    assert np.isnan(res.phase[:, 1]).all() and res.n_obs[1] == 3
    assert res.info["not_connected"] == 1
    # network made of two subsets: error by default, per-subset solution on request
    pairs2 = np.array([(0, 1), (2, 3)])
    y2 = np.array([[1.0], [5.0]])
    with pytest.raises(ValueError, match="not connected"):
        inversion.invert(y2, pairs2, 4)
    r2 = inversion.invert(y2, pairs2, 4, allow_subsets=True)
    assert r2.phase[:, 0].tolist() == [0.0, 1.0, 0.0, 5.0]   # each subset zero at its first date
    assert r2.subset.tolist() == [0, 0, 1, 1]


def test_phase_sign_convention():
    # Phase growing with time (range lengthening) is motion away from the satellite: negative.
    assert inversion.phase_to_mm(np.array([2 * np.pi]), 0.05546576)[0] == pytest.approx(-27.73288)


def test_synthetic_stack_rmse_below_1mm():
    s = make_insar_stack(seed=0)
    for w in (None, inversion.coherence_weights(s.coherence, s.looks)):
        res = inversion.invert(s.ifgs, s.pairs, len(s.dates), w)
        d = inversion.phase_to_mm(res.phase, s.wavelength_m)
        err = d - s.series_mm
        # Done-when: <= 1 mm RMSE over all dates and solved pixels. The interferogram noise
        # (coherence 0.2-0.9, 20 looks) is 0.1-0.7 rad = 0.5-3 mm per interferogram; with
        # about 6 interferograms per date the series error is about 0.8 mm.
        assert np.isfinite(d).all(0).mean() > 0.97
        assert np.sqrt(np.nanmean(err ** 2)) <= 1.0
        v, _ = inversion.linear_velocity(d, s.t_years)
        bowl = np.unravel_index(np.argmin(s.velocity_mm_per_yr), v.shape)
        # the linear rate of the true series (season and atmosphere included): a single pixel
        # has ~1 mm/yr noise (0.8 mm series error over 0.8 yr), a 5 x 5 mean ~0.2 mm/yr
        vt, _ = inversion.linear_velocity(s.series_mm, s.t_years)
        win = (slice(bowl[0] - 2, bowl[0] + 3), slice(bowl[1] - 2, bowl[1] + 3))
        assert abs(np.mean(v[win]) - np.mean(vt[win])) < 1.0 and vt[bowl] < -40
        assert np.sqrt(np.nanmean((v - vt) ** 2)) < 1.5


def test_weighting_helps_in_low_coherence():
    s = make_insar_stack(seed=3)
    err = []
    for w in (None, inversion.coherence_weights(s.coherence, s.looks)):
        d = inversion.phase_to_mm(inversion.invert(s.ifgs, s.pairs, len(s.dates), w).phase, s.wavelength_m)
        low = s.coherence.mean(0) < 0.5
        err.append(np.sqrt(np.nanmean(((d - s.series_mm)[:, low]) ** 2)))
    assert err[1] < err[0]


def test_phase_variance_matches_tough_pdf():
    from scipy import integrate, special

    # the PDF integrates to 1 (Tough et al. 1995 eq. 66 as written in the module)
    for L, g in ((1, 0.3), (4, 0.7), (30, 0.9)):
        f = lambda p: inversion._phase_pdf_ds(L, np.array([g]), np.array([p]))[0, 0]  # noqa: E731
        assert integrate.quad(f, -np.pi, np.pi, points=[0], limit=200)[0] == pytest.approx(1, abs=1e-8)
    # single look: closed form (Hanssen 2001 eq. 4.2.27) at the table's bin centres; MintPy's
    # 200-sample quadrature is within 1.6 % of it (measured 1.55 % at most)
    g = np.linspace(0.0025, 0.9975, 200)
    exact = (np.pi ** 2 / 3 - np.pi * np.arcsin(g) + np.arcsin(g) ** 2
             - special.spence(1 - g ** 2) / 2)
    np.testing.assert_allclose(inversion.phase_variance(g + 1e-9, 1), exact, rtol=0.02)
    # many looks, coherent: the Cramer-Rao bound (1 - γ²) / (2 L γ²), within 5 % at γ = 0.6-0.9
    for gg in (0.6025, 0.8025, 0.9025):
        crb = (1 - gg ** 2) / (2 * 80 * gg ** 2)
        assert inversion.phase_variance(np.array([gg]), 80)[0] == pytest.approx(crb, rel=0.05)
    # the look-up is by the bin below, as MintPy (coherence 0.0025 + k * 0.005 ...)
    v = inversion.phase_variance(np.array([0.503, 0.5074, 0.5076]), 5)
    assert v[0] == v[1] > v[2]
    w = inversion.coherence_weights(np.array([np.nan, 0.0, 0.05, 0.5, 0.9]), looks=5, func="var")
    assert w[0] == w[1] == w[2] and np.all(np.diff(w[2:]) > 0)    # NaN and < 0.05 -> 0.05
    with pytest.raises(ValueError, match="fim, coh, var"):
        inversion.coherence_weights(np.array([0.5]), func="bogus")


def test_var_weights_invert_matches_direct_weighted_lstsq():
    s = make_insar_stack(shape=(12, 15), n_dates=10, seed=5)
    w = inversion.coherence_weights(s.coherence, s.looks, "var")
    res = inversion.invert(s.ifgs, s.pairs, len(s.dates), w)
    a = design_matrix(s.pairs, len(s.dates))
    y = s.ifgs.reshape(len(s.pairs), -1)
    ww = w.reshape(len(s.pairs), -1)
    checked = 0
    for p in range(y.shape[1]):
        ok = np.isfinite(y[:, p])
        sw = np.sqrt(ww[ok, p])
        ga = a[ok] * sw[:, None]
        if np.linalg.matrix_rank(ga) < len(s.dates) - 1:
            continue
        xs = np.linalg.lstsq(ga, y[ok, p] * sw, rcond=None)[0]
        # both exact weighted LS solutions in float64 (weights up to ~1e3 apart): rounding
        np.testing.assert_allclose(res.phase[1:].reshape(len(s.dates) - 1, -1)[:, p], xs,
                                   atol=1e-8)
        checked += 1
    assert checked > 150
    # var and fim weights differ in shape, so the solutions differ (but not by much here)
    fim = inversion.invert(s.ifgs, s.pairs, len(s.dates), inversion.coherence_weights(s.coherence, s.looks))
    d = np.nanmax(np.abs(fim.phase - res.phase))
    assert 1e-6 < d < 2.0


# ----------------------------------------------------------------------------- readers

def test_geotiff_reader_dates_coherence_and_errors(tmp_path):
    s = make_insar_stack(shape=(12, 15), n_dates=6, seed=2)
    paths = write_insar_stack(s, tmp_path)
    st = read_geotiff_stack(paths[::-1])
    assert st.dates == s.dates and len(st.coherence_sources) == len(paths)
    y, c = st.read(coherence=True)
    order = [paths.index(p) for p in st.sources]
    np.testing.assert_allclose(y, s.ifgs[order], atol=1e-6, equal_nan=True)
    assert dates_from_name(paths[0]) == (s.dates[0], s.dates[1])
    import rasterio
    from affine import Affine
    bad = tmp_path / "other_20200101-20200113_unw.tif"
    with rasterio.open(bad, "w", driver="GTiff", width=5, height=5, count=1, dtype="float32",
                       crs="EPSG:32632", transform=Affine(50, 0, 0, 0, -50, 0)) as ds:
        ds.write(np.ones((1, 5, 5), np.float32))
    with pytest.raises(UserError, match="not on the grid") as e:
        read_geotiff_stack([paths[0], str(bad)])
    assert str(bad) in str(e.value)


def test_hdf5_reader(tmp_path):
    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f["igram"] = np.ones((2, 3, 4), np.float32)
        f["Jmat"] = np.array([[1, -1, 0], [0, 1, -1]], float)
        f["dates"] = np.array([737000, 737012, 737024])
    st = read_hdf5_stack(p, units="mm")
    assert st.pairs.tolist() == [[0, 1], [1, 2]] and st.sign.tolist() == [-1.0, -1.0]
    assert st.read()[0][0, 0, 0] == -1.0
    with pytest.raises(UserError, match="no dataset 'Jmat2'") as e:
        read_hdf5_stack(p, connectivity="Jmat2")
    assert str(p) in str(e.value)


# ----------------------------------------------------------------------------- real data

def test_etna_matches_direct_lstsq():
    """Done-when: the Etna stack equals a per-pixel numpy lstsq with its Jmat to 1e-6 mm."""
    path = shared_path("insar", "kfts_etna_envisat_sbas", "Etna_sample.h5")
    st = read_stack([path], units="mm", lon=None, lat=None)
    with h5py.File(path) as f:
        igram, jmat = f["igram"][:].astype(float), f["Jmat"][:]
    res = inversion.invert(st.read()[0], st.pairs, len(st.dates))
    n_full = 0
    for r in range(igram.shape[1]):
        for c in range(igram.shape[2]):
            ok = np.isfinite(igram[:, r, c])
            g = jmat[ok, 1:]
            full = np.linalg.matrix_rank(g) == g.shape[1]
            assert full == np.isfinite(res.phase[:, r, c]).all()
            if full:
                x = np.linalg.lstsq(g, igram[ok, r, c], rcond=None)[0]
                np.testing.assert_allclose(res.phase[1:, r, c], x, atol=1e-6)
                n_full += 1
    assert n_full > 250           # 263 of 400 pixels keep a connected network


def _mexico():
    folder = shared_path("insar", "pyrate_cropA_mexico_s1", "geotiffs")
    return read_geotiff_stack(sorted(folder.glob("*_unw.tif")))


def test_mexico_city_subsidence():
    """Done-when: the Mexico City stack shows its known fast subsidence, spatially coherent."""
    st = _mexico()
    assert len(st.dates) == 13 and st.n_ifgs == 30 and st.coherence_sources
    y, c = st.read(coherence=True)
    mc = np.where(np.isfinite(y).all(0), np.nanmean(np.nan_to_num(c), 0), -1)
    r0, c0 = np.unravel_index(np.argmax(mc), mc.shape)
    res = inversion.invert(y - y[:, r0:r0 + 1, c0:c0 + 1], st.pairs, len(st.dates))
    assert np.nanmedian(res.temporal_coherence) > 0.9    # consistent network once referred
    d = inversion.phase_to_mm(res.phase, st.wavelength_m)
    t = np.array([(x - st.dates[0]).days / 365.25 for x in st.dates])
    v, _ = inversion.linear_velocity(d, t)
    r, cc, _ = inversion.choose_reference(res.temporal_coherence, v)
    v = v - v[r, cc]
    # Published: up to ~35-40 cm/yr vertical in the east of the city (airport area), i.e.
    # ~27-30 cm/yr LOS at 39.7 deg incidence. The fastest 5 % of this crop must be below
    # -150 mm/yr LOS (half the published maximum: robust to the reference choice), and the
    # sign shows the convention: subsidence is away from the satellite (negative).
    assert np.nanpercentile(v, 5) < -150
    assert np.nanpercentile(v, 1) > -400           # no runaway values
    # the western hills (first 10 columns) are stable within 15 mm/yr of the reference
    assert abs(np.nanmedian(v[:, :10])) < 15
    # spatially coherent: departures from a 5x5 median are small beside the 250 mm/yr signal
    sm = ndimage.median_filter(np.nan_to_num(v), 5)
    assert np.nanmedian(np.abs(v - sm)) < 3.0
    # eastward increase of subsidence (column means decrease west to east)
    cols = [np.nanmean(v[:, k:k + 20]) for k in range(0, 100, 20)]
    assert all(a > b for a, b in zip(cols, cols[1:]))


def test_cli_var_weights_on_mexico_city(tmp_path, capsys):
    import json

    from cryokit.cli import main

    ifgs = [str(p) for p in sorted(_mexico().sources)]
    out = tmp_path / "mx"
    assert main(["sbas", *ifgs, "-o", str(out), "--weight", "var", "--looks", "8"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert "weight_func='var'" in rep["weights"] and "L = 8 looks" in rep["weights"]
    assert rep["options"]["looks"] == 8 and rep["options"]["weight"] == "var"
    # the known subsidence (see test_mexico_city_subsidence): weights do not change it
    assert rep["velocity"]["p05_mm_per_yr"] < -150
    assert main(["sbas", *ifgs, "-o", str(tmp_path / "o2"), "--weight", "var",
                 "--looks", "0"]) == 2
    assert main(["sbas", *ifgs, "-o", str(tmp_path / "o3"), "--weight", "variance"]) == 2
    err = capsys.readouterr().err
    assert "--looks must be positive" in err and "none, coherence, fim, coh, var" in err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
