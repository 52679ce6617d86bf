"""Which definition of the EGMS statistics matches the published columns best?

    python benchmarks/egms_match.py [--shared ../shared] [--seeds 3]

On the two real L2b bursts of release 2020-2024 (Ustica, tracks 117 and 22) every variant
below recomputes ``rmse`` (``rmse_ts``), ``seasonality``, ``seasonality_std``,
``mean_velocity`` and ``acceleration`` from the published series and prints the share of
points within the issue's tolerances (0.05 mm, 0.05 mm, 0.05 mm, 0.1 mm/yr, 0.02 mm/yr²):

- ``cryokit``: :func:`cryokit.egms.stats.timeseries_stats` as shipped.
- ``sheppard``: Sheppard's correction for the 0.1 mm quantisation of the series:
  ``rmse² − (n−p)/n·q²/12`` and ``seasonality² − q²/12·(C_cc + C_ss)``.
- ``yr365.25``: t = days / 365.25 (velocity per Julian year, annual period 365.25 d).
- ``n-p``: rmse with the unbiased denominator n − p (p = 6) instead of n.
- ``rmse-vel`` / ``rmse-acc``: rmse (and seasonality) from the velocity [t, 1, cos, sin] or
  the acceleration [t²/2, t, 1, cos, sin] fit instead of the cubic + seasonal one.
- ``float32``: the cubic + seasonal fit solved in single precision.
- ``float32-mid``: the same with t centred on the middle of the period.

And a floor: ``simulated`` treats ``published series + U(−q/2, q/2)`` as the unrounded truth,
rounds its statistics like the service and recomputes them from the re-rounded series: the
share of points such a pure rounding effect puts inside the tolerance (mean over ``--seeds``).
No variant is tuned on the published values point by point: each is a fixed definition.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from cryokit.egms.formats import read_egms
from cryokit.egms.stats import TOLERANCES, timeseries_stats

BURSTS = {"117 asc": "EGMS_L2b_117_0227_IW2_VV_2020_2024_1.zip",
          "022 desc": "EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip"}
COLUMNS = ("rmse", "seasonality", "seasonality_std", "mean_velocity", "acceleration")
Q = 0.1  # mm, the decimals of the published series


def _fit(t, x, cols, period=1.0, dtype=np.float64):
    """Least squares of the columns ``cols`` of [t³, t², t, 1, cos, sin]; coefficients,
    residual RMS (denominator n) and (GᵀG)⁻¹."""
    w = 2 * np.pi * t / period
    full = np.column_stack([t ** 3, t ** 2, t, np.ones_like(t), np.cos(w), np.sin(w)])
    g = full[:, cols].astype(dtype)
    coef, *_ = np.linalg.lstsq(g, x.T.astype(dtype), rcond=None)
    r = x.T.astype(dtype) - g @ coef
    rms = np.sqrt(np.mean(r.astype(np.float64) ** 2, axis=0))
    return coef.T.astype(np.float64), rms, np.linalg.inv(g.T.astype(np.float64) @ g.astype(np.float64))


def _seasonal(coef, rms, c, i_cos, i_sin):
    amp = np.hypot(coef[:, i_cos], coef[:, i_sin])
    std = np.sqrt((4 - np.pi) / 2 * (c[i_cos, i_cos] + c[i_sin, i_sin]) / 2) * rms
    return amp, std


def variant(name, t, x):
    """Statistics of one variant: dict column -> (n_points,) array."""
    s = timeseries_stats(t, x)
    out = {k: s[k] for k in COLUMNS}
    n = t.size
    cub = [0, 1, 2, 3, 4, 5]
    if name == "cryokit":
        return out
    if name == "sheppard":
        coef, rms, c = _fit(t, x, cub)
        out["rmse"] = np.sqrt(np.maximum(rms ** 2 - (n - 6) / n * Q ** 2 / 12, 0))
        amp2 = np.hypot(coef[:, 4], coef[:, 5]) ** 2 - Q ** 2 / 12 * (c[4, 4] + c[5, 5])
        out["seasonality"] = np.sqrt(np.maximum(amp2, 0))
        out["seasonality_std"] = _seasonal(coef, out["rmse"], c, 4, 5)[1]
        return out
    if name == "yr365.25":
        s = timeseries_stats(t * 365 / 365.25, x)
        return {k: s[k] for k in COLUMNS}
    if name == "n-p":
        out["rmse"] = s["rmse"] * np.sqrt(n / (n - 6))
        return out
    if name in ("rmse-vel", "rmse-acc"):
        cols = [2, 3, 4, 5] if name == "rmse-vel" else [1, 2, 3, 4, 5]
        coef, rms, c = _fit(t, x, cols)
        out["rmse"] = rms
        out["seasonality"], out["seasonality_std"] = _seasonal(coef, rms, c, len(cols) - 2, len(cols) - 1)
        return out
    if name in ("float32", "float32-mid"):
        tt = t - (t[0] + t[-1]) / 2 if name == "float32-mid" else t
        coef, rms, c = _fit(tt, x, cub, dtype=np.float32)
        out["rmse"] = rms
        out["seasonality"], out["seasonality_std"] = _seasonal(coef, rms, c, 4, 5)
        return out
    raise ValueError(name)


def within(stats, published):
    return {k: float(np.mean(np.abs(stats[k] - published[k]) <= TOLERANCES[k] + 1e-9)) for k in COLUMNS}


def simulated(t, x, seeds):
    """Share within tolerance if rounding the series to q were the only difference."""
    acc = {k: 0.0 for k in COLUMNS}
    decimals = {"rmse": 1, "seasonality": 1, "seasonality_std": 1, "mean_velocity": 1, "acceleration": 2}
    for seed in range(seeds):
        truth = x + np.random.default_rng(seed).uniform(-Q / 2, Q / 2, x.shape)
        st = timeseries_stats(t, truth)
        pub = {k: np.round(st[k], decimals[k]) for k in COLUMNS}
        for k, v in within(timeseries_stats(t, np.round(truth, 1)), pub).items():
            acc[k] += v / seeds
    return acc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    folder = os.path.join(args.shared, "data", "insar", "egms_2020_2024_E45N17_ustica", "L2b")
    names = ("cryokit", "sheppard", "yr365.25", "n-p", "rmse-vel", "rmse-acc", "float32", "float32-mid")
    print(f"{'variant':12s} {'burst':9s} " + " ".join(f"{k:>16s}" for k in COLUMNS))
    for label, fname in BURSTS.items():
        p = read_egms(os.path.join(folder, fname))
        t, x = p.years(), p.disp.astype(np.float64)
        pub = {k: p.column(k).to_numpy(dtype=np.float64) for k in COLUMNS}
        for name in names:
            w = within(variant(name, t, x), pub)
            print(f"{name:12s} {label:9s} " + " ".join(f"{100 * w[k]:15.2f}%" for k in COLUMNS))
        w = simulated(t, x, args.seeds)
        print(f"{'simulated':12s} {label:9s} " + " ".join(f"{100 * w[k]:15.2f}%" for k in COLUMNS))


if __name__ == "__main__":
    main()
