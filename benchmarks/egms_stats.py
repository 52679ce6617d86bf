"""Time of the EGMS per-point statistics on 1,000,000 points x 300 dates (target <= 30 s on
2 cores), of a plain numpy baseline, and of reading / writing a real-size EGMS CSV.

    python benchmarks/egms_stats.py [--points 1000000] [--dates 300] [--read-points 200000]

Synthetic series on the irregular EGMS sampling (6/12-day gaps, t = days/365): velocity,
acceleration, annual term and 1.5 mm noise, float32 as a reader of 0.1 mm text would keep
them.  The baseline solves each regression with ``np.linalg.lstsq`` and forms every residual
array (what a direct transcription of the EGMS formulas does); it runs on a subset and is
scaled.  The CSV part writes ``--read-points`` points with :func:`write_egms` and reads them
back with :func:`read_egms` (pyarrow engine) and with :func:`iter_egms` in 100k-point chunks.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from cryokit.egms.formats import EgmsPoints, iter_egms, read_egms, write_egms
from cryokit.egms.stats import WAVELENGTH_MM, timeseries_stats


def synthetic(n_points: int, n_dates: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gaps = rng.choice([6, 12], size=n_dates - 1, p=[0.7, 0.3])
    days = np.concatenate([[0], np.cumsum(gaps)])
    t = days / 365.0
    disp = np.empty((n_points, n_dates), dtype=np.float32)
    step = 100_000
    for s in range(0, n_points, step):
        m = min(step, n_points - s)
        v = rng.normal(0, 5, (m, 1))
        acc = rng.normal(0, 0.5, (m, 1))
        amp = rng.uniform(0, 4, (m, 1))
        ph = rng.uniform(0, 2 * np.pi, (m, 1))
        x = v * t + 0.5 * acc * t ** 2 + amp * np.cos(2 * np.pi * t - ph) + rng.normal(0, 1.5, (m, n_dates))
        disp[s:s + m] = np.round(x, 1)
    return t, disp, days


def baseline(t, disp):
    """Direct numpy transcription: lstsq per regression, residual arrays formed."""
    x = disp.astype(np.float64).T
    one, c, s = np.ones_like(t), np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)
    out = {}
    g = np.column_stack([t, one, c, s])
    coef = np.linalg.lstsq(g, x, rcond=None)[0]
    r = x - g @ coef
    out["mean_velocity"] = coef[0]
    out["mean_velocity_std"] = np.sqrt(np.linalg.inv(g.T @ g)[0, 0]) * r.std(0)
    g = np.column_stack([0.5 * t ** 2, t, one, c, s])
    coef = np.linalg.lstsq(g, x, rcond=None)[0]
    out["acceleration"] = coef[0]
    g = np.column_stack([t ** 3, t ** 2, t, one, c, s])
    coef = np.linalg.lstsq(g, x, rcond=None)[0]
    r = x - g @ coef
    out["rmse"] = np.sqrt((r ** 2).mean(0))
    out["seasonality"] = np.hypot(coef[4], coef[5])
    g = np.column_stack([t, one])
    coef = np.linalg.lstsq(g, x, rcond=None)[0]
    r = x - g @ coef
    out["temporal_coherence"] = np.abs(np.exp(1j * 4 * np.pi / WAVELENGTH_MM * r).mean(0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--dates", type=int, default=300)
    ap.add_argument("--baseline-points", type=int, default=50_000)
    ap.add_argument("--read-points", type=int, default=200_000, help="0 skips the CSV timing")
    a = ap.parse_args()

    t, disp, days = synthetic(a.points, a.dates)
    timeseries_stats(t, disp[:100])  # compile the coherence loop (cached on disk afterwards)
    rows = []
    t0 = time.perf_counter()
    s = timeseries_stats(t, disp)
    t_ours = time.perf_counter() - t0
    rows.append(("cryokit timeseries_stats", f"{a.points:,} x {a.dates}", t_ours, t_ours))

    nb = min(a.baseline_points, a.points)
    t0 = time.perf_counter()
    b = baseline(t, disp[:nb])
    t_base = time.perf_counter() - t0
    scaled = t_base * a.points / nb
    rows.append(("numpy lstsq baseline", f"{nb:,} x {a.dates}", t_base, scaled))
    worst = max(float(np.max(np.abs(s[k][:nb] - b[k]))) for k in b)

    if a.read_points:
        n = min(a.read_points, a.points)
        dates = np.datetime64("2020-01-03") + days.astype("timedelta64[D]")
        pid = np.char.add("P", np.arange(n).astype(str)).astype(object)
        import pandas as pd
        attrs = pd.DataFrame({"pid": pid, "latitude": np.round(38.7 + np.arange(n) * 1e-6, 6),
                              "longitude": np.round(np.full(n, 13.17), 6),
                              "mean_velocity": np.round(s["mean_velocity"][:n], 1)})
        pts = EgmsPoints(attrs, dates, np.round(disp[:n].astype(np.float64), 1), {}, "bench", "L2b", "2020-2024")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bench.csv")
            t0 = time.perf_counter()
            write_egms(pts, path)
            t_w = time.perf_counter() - t0
            mb = os.path.getsize(path) / 1e6
            t0 = time.perf_counter()
            back = read_egms(path)
            t_r = time.perf_counter() - t0
            t0 = time.perf_counter()
            n_iter = sum(len(c) for c in iter_egms(path, chunk_points=100_000))
            t_i = time.perf_counter() - t0
            assert np.array_equal(back.disp, pts.disp) and n_iter == n
        size = f"{n:,} x {a.dates} ({mb:.0f} MB)"
        rows += [("write_egms .csv", size, t_w, t_w * a.points / n),
                 ("read_egms .csv (pyarrow)", size, t_r, t_r * a.points / n),
                 ("iter_egms .csv, 100k chunks", size, t_i, t_i * a.points / n)]

    print(f"\nEGMS statistics benchmark ({os.cpu_count()} CPUs)")
    print(f"{'step':32s} {'size':30s} {'time s':>8s} {'per 1M pts s':>13s}")
    for name, size, sec, per in rows:
        print(f"{name:32s} {size:30s} {sec:8.2f} {per * 1e6 / a.points:13.2f}")
    print(f"speed-up over the numpy baseline: {scaled / t_ours:.1f}x; "
          f"max |cryokit - baseline| on the subset: {worst:.2e}")
    print(f"target: 1M x 300 statistics <= 30 s -> {'met' if t_ours <= 30 else 'NOT met'} "
          f"({t_ours:.1f} s for {a.points:,} x {a.dates})")


if __name__ == "__main__":
    main()
