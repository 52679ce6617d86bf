"""GNSS: .tenv reading, robust velocity, plate motion, and calibration of a burst to GNSS."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from cryokit.cli import main
from cryokit.egms import gnss
from cryokit.egms.calibrate import SurfaceCorrection, los_projection
from cryokit.egms.formats import EgmsPoints, read_egms, read_tenv, write_egms

GNSS = ("insar", "gnss_ngl_tenv_friuli_italy")
# Approximate positions (town of each FReDNet/NGL site, about +-0.05 deg): the Eurasian plate
# velocity changes by < 0.05 mm/yr over 0.1 deg, far below the tolerances used here.
STATIONS = {"BARC": (12.56, 46.19), "CODR": (12.98, 45.96), "MPRA": (12.99, 46.24),
            "PORD": (12.66, 45.96)}


def _stations_csv(path):
    pd.DataFrame([{"station": k, "lon": v[0], "lat": v[1]} for k, v in STATIONS.items()]
                 ).to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------- algorithms

def test_fit_velocity_with_step_and_outliers():
    rng = np.random.default_rng(0)
    t = 2010 + np.arange(0, 6, 1 / 365.25)
    y = 4.0 * (t - 2010) + 3 * np.cos(2 * np.pi * t) + 1.0 * np.sin(4 * np.pi * t)
    y += 12.0 * (t >= 2013.5) + rng.normal(0, 1.5, t.size)
    y[rng.choice(t.size, 60, replace=False)] += 50            # snow / multipath days
    f = gnss.fit_velocity(t, y, steps=[2013.5])
    # formal sigma with the step estimated is 0.036 mm/yr (step and trend correlate): 4 sigma
    assert abs(f["velocity"] - 4.0) < 0.15
    assert 0.01 < f["velocity_sigma"] < 0.1
    assert abs(f["offsets"][0] - 12.0) < 0.3
    assert abs(f["annual_amplitude"] - 3.0) < 0.2
    assert f["n_used"] <= t.size - 60
    # ignoring the step biases the rate: that is why steps can be given
    assert abs(gnss.fit_velocity(t, y)["velocity"] - 4.0) > 1.0
    with pytest.raises(ValueError):
        gnss.fit_velocity(t[:100], y[:100])


def test_plate_velocity_is_a_rigid_rotation():
    # |v| = |w| R sin(angular distance to the Euler pole); Eurasia ITRF2014 pole from w.
    w = np.array(gnss.EURASIA_ITRF2014)
    pole = w / np.linalg.norm(w)
    lon, lat = 13.0, 46.0
    ve, vn = gnss.plate_velocity(lon, lat)
    p = np.array([np.cos(np.radians(lat)) * np.cos(np.radians(lon)),
                  np.cos(np.radians(lat)) * np.sin(np.radians(lon)), np.sin(np.radians(lat))])
    rate = np.linalg.norm(w) * np.pi / 180 / 3.6e6                 # rad/yr
    expected = rate * 6371e3 * np.linalg.norm(np.cross(pole, p)) * 1000
    assert np.hypot(ve, vn) == pytest.approx(expected, rel=0.005)  # sphere vs ellipsoid
    # Eurasia moves north-east in ITRF in Europe (about 21 E, 15 N mm/yr in NE Italy)
    assert 19 < ve < 23 and 13 < vn < 17
    assert gnss.remove_plate_motion(lon, lat, ve, vn, "none") == (ve, vn)


# ----------------------------------------------------------------------------- real .tenv

def test_real_tenv_velocities_etrf():
    """NGL IGS08 series of four Friuli stations. In IGS08 they move about 27 mm/yr NE (the
    README's 'about 2.5 cm/yr'); with the Eurasian plate removed what is left is the slow
    northward push of Adria (published 1-3 mm/yr in Friuli, e.g. Serpelloni et al. 2016),
    which the measured values show (vn 1.4-2.2, |ve| <= 0.6 mm/yr)."""
    d = shared_path(*GNSS)
    for name, (lon, lat) in STATIONS.items():
        s = read_tenv(d / f"{name}.IGS08.tenv.txt")
        assert s.station == name and s.enu.shape[1] == 3 and len(s.t) > 1500
        assert np.all(np.diff(s.mjd) > 0) and abs(s.enu[0]).max() < 1e-9   # relative to epoch 1
        assert str(s.dates[0]) < str(s.dates[-1])
        v = gnss.series_velocity(s)
        assert 25 < np.hypot(v["ve"], v["vn"]) < 29
        ve, vn = gnss.remove_plate_motion(lon, lat, v["ve"], v["vn"])
        assert abs(ve) < 1.5 and 0.5 < vn < 3.5
        assert abs(v["vu"]) < 3                                   # no big vertical motion


def test_tenv_errors(tmp_path):
    from cryokit.core.errors import UserError
    bad = tmp_path / "BAD.tenv"
    bad.write_text("BAD 07JUN06 2007.4278 54257 1430 3 0.0 0.0 0.0 0.0 0.001 0.001 0.002 0 0 0\n"
                   "BAD 07JUN07 2007.4305 x 1430 4 0.0 0.0 0.0 0.0 0.001 0.001 0.002 0 0 0\n")
    with pytest.raises(UserError, match="line 2"):
        read_tenv(bad)
    short = tmp_path / "S.tenv"
    short.write_text("a b c\n")
    with pytest.raises(UserError, match="columns"):
        read_tenv(short)


# ----------------------------------------------------------------------------- calibration

LOS = np.array([-0.621, -0.098, 0.777])


def _synthetic_burst(offset, gx, gy, rng):
    """A burst over 20 x 20 km with a known LOS offset + plane (gx, gy in mm/yr per km),
    true ground motion 0 everywhere except a subsiding patch; 0.3 mm/yr point noise."""
    n = 6000
    x = 4590000 + rng.uniform(0, 20000, n)
    y = 1730000 + rng.uniform(0, 20000, n)
    true_los = np.where(np.hypot(x - 4600000, y - 1740000) < 2000, -5.0, 0.0)
    x0, y0 = 4600000.0, 1740000.0
    bias = offset + gx * (x - x0) / 1e3 + gy * (y - y0) / 1e3
    v = true_los + bias + rng.normal(0, 0.3, n)
    dates = np.arange(np.datetime64("2020-01-03"), np.datetime64("2024-01-03"), 12)
    t = (dates - dates[0]).astype(float) / 365
    disp = v[:, None] * t[None] + rng.normal(0, 1.0, (n, t.size))
    from pyproj import Transformer
    lon, lat = Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True).transform(x, y)
    attrs = pd.DataFrame({"pid": [f"P{i:09d}" for i in range(n)], "mp_type": 0,
                          "latitude": lat, "longitude": lon, "easting": x, "northing": y,
                          "height_ortho": 10.0, "height_ellipse": 50.0, "rmse_ts": 1.0,
                          "los_east": LOS[0], "los_north": LOS[1], "los_up": LOS[2],
                          "mean_velocity": np.round(v, 1), "gnss_velocity": 0.0})
    p = EgmsPoints(attrs, dates, np.round(disp, 1), {"BURST": {"product_level": "L2b"}},
                   "EGMS_L2b_117_0227_IW2_VV_2020_2024_1", "L2b")
    return p, true_los


def _station_table(path, rng, k=12):
    from pyproj import Transformer
    # stations away from the subsiding patch; true ETRF velocities small and known
    sx = 4591000 + rng.uniform(0, 18000, k)
    sy = 1731000 + rng.uniform(0, 18000, k)
    far = np.hypot(sx - 4600000, sy - 1740000) > 3000
    sx, sy = sx[far], sy[far]
    lon, lat = Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True).transform(sx, sy)
    df = pd.DataFrame({"station": [f"S{i:03d}" for i in range(sx.size)], "lon": lon, "lat": lat,
                       "ve": 0.0, "vn": 0.0, "vu": 0.0})
    df.to_csv(path, index=False)
    return df


@pytest.mark.parametrize("model,offset,gx,gy", [("offset", 2.3, 0.0, 0.0),
                                                ("plane", -1.7, 0.12, -0.08)])
def test_calibration_recovers_offset_and_plane(tmp_path, model, offset, gx, gy):
    rng = np.random.default_rng(3)
    p, true_los = _synthetic_burst(offset, gx, gy, rng)
    src = tmp_path / f"{p.name}.zip"
    write_egms(p, src)
    _station_table(tmp_path / "gnss.csv", rng)
    out = tmp_path / "cal.zip"
    assert main(["egms", "calibrate", str(src), "--gnss", str(tmp_path / "gnss.csv"),
                 "--plate-model", "none", "--model", model, "--radius", "1000",
                 "-o", str(out)]) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    c = rep["calibration"]
    # correction = -bias: recovered to < 0.1 mm/yr (each station: median of ~45 points with
    # 0.3 mm/yr noise, sigma ~0.05 mm/yr; the fit averages 8-12 stations)
    # the plane is written about the stations' centroid: evaluate it at the burst centre
    at_centre = (c["offset_mm_yr"] + c["gradient_x_mm_yr_per_km"] * (4600000 - c["x0"]) / 1e3
                 + c["gradient_y_mm_yr_per_km"] * (1740000 - c["y0"]) / 1e3)
    assert at_centre == pytest.approx(-offset, abs=0.1)
    if model == "plane":
        assert c["gradient_x_mm_yr_per_km"] == pytest.approx(-gx, abs=0.01)
        assert c["gradient_y_mm_yr_per_km"] == pytest.approx(-gy, abs=0.01)
        # gradients over the 10 km half-width: 0.01 mm/yr/km -> 0.1 mm/yr at the edge
    after = [s["residual_after_mm_yr"] for s in rep["stations"] if s["used_in_fit"]]
    assert len(after) >= 4 and max(abs(a) for a in after) < 0.2     # ~3.5 sigma per station
    cal = read_egms(out)
    v = cal.column("mean_velocity").to_numpy()
    err = v - true_los
    # < 0.1 mm/yr correction error plus the 0.05 rounding of the published column
    assert abs(np.median(err)) <= 0.15 and np.percentile(np.abs(err), 95) < 0.8
    assert "cryokit_calibration" in cal.header["BURST"]


def test_calibrated_basic_burst_becomes_l2b(tmp_path):
    """A Basic (L2a) burst calibrated to GNSS is a Calibrated (L2b) one: name, header and
    report say so."""
    rng = np.random.default_rng(4)
    p, _ = _synthetic_burst(1.0, 0.0, 0.0, rng)
    basic = EgmsPoints(p.attrs, p.dates, p.disp, {"BURST": {"product_level": "L2a"}},
                       "EGMS_L2a_117_0227_IW2_VV_2020_2024_1", "L2a")
    src = tmp_path / f"{basic.name}.zip"
    write_egms(basic, src)
    _station_table(tmp_path / "gnss.csv", rng)
    out = tmp_path / "cal.zip"
    assert main(["egms", "calibrate", str(src), "--gnss", str(tmp_path / "gnss.csv"),
                 "--plate-model", "none", "--radius", "1000", "-o", str(out)]) == 0
    assert read_egms(src).level == "L2a"
    cal = read_egms(out)
    assert cal.level == "L2b" and cal.header["BURST"]["product_level"] == "L2b"
    assert json.loads(out.with_suffix(".json").read_text())["product_level"] == "L2b"


def test_calibrate_tenv_needs_station_coordinates(tmp_path, capsys):
    d = shared_path(*GNSS)
    rng = np.random.default_rng(4)
    p, _ = _synthetic_burst(0.0, 0.0, 0.0, rng)
    src = tmp_path / f"{p.name}.zip"
    write_egms(p, src)
    rc = main(["egms", "calibrate", str(src), "--gnss", str(d / "BARC.IGS08.tenv.txt"),
               "-o", str(tmp_path / "o.zip")])
    assert rc == 2 and "--stations" in capsys.readouterr().err
    # with coordinates the station is read, but it is 800 km from the burst: no InSAR near it
    rc = main(["egms", "calibrate", str(src), "--gnss", str(d / "BARC.IGS08.tenv.txt"),
               "--stations", str(_stations_csv(tmp_path / "st.csv")), "-o", str(tmp_path / "o.zip")])
    assert rc == 2 and "at least 1 station" in capsys.readouterr().err


def test_surface_correction_rejects_outlier_station():
    sx = np.array([0.0, 1e4, 0, 1e4, 5e3, 2e3, 8e3])
    sy = np.array([0.0, 0, 1e4, 1e4, 5e3, 7e3, 3e3])
    r = 1.0 + 0.05 * sx / 1e3
    r[4] += 10                                               # a station on a landslide
    c = SurfaceCorrection("plane").fit(sx, sy, r)
    # the plane is written about the stations' centroid: its offset is the true plane there
    assert c.params["x0"] == pytest.approx(sx.mean()) and c.params["y0"] == pytest.approx(sy.mean())
    assert c.params["offset_mm_yr"] == pytest.approx(1.0 + 0.05 * c.params["x0"] / 1e3, abs=1e-6)
    assert c.params["used"][4] is False and c.params["n_used"] == 6
    assert float(c.apply(1e4, 0.0)) == pytest.approx(1.5, abs=1e-6)
    assert float(los_projection(1.0, 0.0, 0.0, *LOS)) == pytest.approx(LOS[0])
