"""Prediction throughput (Mpx/s) on a 2000 x 2000 x 20-feature synthetic raster, 2 cores.

cryokit compiled forest (100 trees of depth 12 or unlimited, 64 of depth 12; breadth-first
numba walk; global, on inputs with 10 % of the features missing, and locally adaptive with
256 px tiles and full or half-tile blending) vs scikit-learn RandomForest (the same 100
trees, n_jobs=2) and LightGBM (100 rounds, 31 leaves, 2 threads), all trained on the same
0.2 % samples; accuracy of each against the exact synthetic truth on every valid pixel.
Prints a table and speed ratios; times are the median of 3 runs for the forests (1 for the
slow LightGBM and local rows).

Run: ``python benchmarks/landcover_predict.py [size]``
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.ensemble import RandomForestClassifier

from cryokit.landcover.classify import GlobalClassifier, LocalClassifier
from cryokit.synthetic.landcover import make_landcover_scene


def timed(fn, X, repeat=1):
    fn(X[:1000])  # warm-up (numba compilation, thread pools)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        p = fn(X)
        times.append(time.perf_counter() - t)
    return p, float(np.median(times))


def main(size=2000):
    numba.set_num_threads(2)
    nf = 20
    s = make_landcover_scene(size, seed=0, n_features=nf, sample_fraction=0.002)
    X, y = s.sample_table(), s.labels
    f = s.features.reshape(nf, -1).T
    ok = np.isfinite(f).all(axis=1)
    Xv, truth = np.ascontiguousarray(f[ok]), s.truth.ravel()[ok]
    rows = []
    ck100 = GlobalClassifier(n_estimators=100, max_depth=12, n_jobs=2).fit(X, y)
    rows.append(("cryokit rf (100 trees, depth 12)", ck100.predict, 3))
    holes = np.where(np.random.default_rng(1).random(Xv.shape) < 0.1, np.nan, Xv)
    rows.append(("cryokit rf (100, depth 12), 10 % missing",
                 lambda a: ck100.predict(holes[:len(a)]), 3))
    rf12 = RandomForestClassifier(100, max_depth=12, n_jobs=2, random_state=0).fit(X, y)
    rows.append(("sklearn RF (100 trees, depth 12)", rf12.predict, 3))
    ckf = GlobalClassifier(n_estimators=100, max_depth=None, n_jobs=2).fit(X, y)
    rows.append(("cryokit rf (100 trees, unlimited)", ckf.predict, 3))
    rf = RandomForestClassifier(100, n_jobs=2, random_state=0).fit(X, y)
    rows.append(("sklearn RF (100 trees)", rf.predict, 3))
    ck = GlobalClassifier(n_estimators=64, max_depth=12, n_jobs=2).fit(X, y)
    rows.append(("cryokit rf (64 trees, depth 12)", ck.predict, 3))
    lg = LGBMClassifier(n_estimators=100, num_leaves=31, n_jobs=2, verbose=-1).fit(X, y)
    rows.append(("LightGBM (100 rounds)", lambda a: lg.predict(a, num_threads=2), 1))
    rr, cc = np.divmod(np.flatnonzero(ok), size)
    for blend in (1.0, 0.5):   # locally adaptive: up to 4 tile models per pixel
        loc = LocalClassifier(256, n_estimators=64, max_depth=12, n_jobs=2, blend=blend).fit(
            X, y, s.rows, s.cols)
        rows.append((f"cryokit rf local 256 px, blend {blend:g}",
                     (lambda m: lambda a: m.predict(a, rr[:len(a)], cc[:len(a)]))(loc), 1))
    ckl = GlobalClassifier("lgbm", n_estimators=100, n_jobs=2).fit(X, y)
    rows.append(("cryokit lgbm", ckl.predict, 1))
    print(f"{Xv.shape[0] / 1e6:.2f} Mpx x {nf} features, {y.size} training samples, "
          f"numba threads {numba.get_num_threads()}")
    print(f"{'model':42s} {'time s':>7s} {'Mpx/s':>7s} {'OA':>7s}")
    res = {}
    for name, fn, repeat in rows:
        p, dt = timed(fn, Xv, repeat)
        res[name] = (Xv.shape[0] / dt / 1e6, float((p == truth).mean()))
        print(f"{name:42s} {dt:7.2f} {res[name][0]:7.3f} {res[name][1]:7.4f}")
    for mine, other in (("cryokit rf (100 trees, depth 12)", "sklearn RF (100 trees, depth 12)"),
                        ("cryokit rf (100 trees, unlimited)", "sklearn RF (100 trees)"),
                        ("cryokit rf (100 trees, depth 12)", "LightGBM (100 rounds)")):
        c, o = res[mine], res[other]
        print(f"{mine} / {other}: speed x{c[0] / o[0]:.1f}, OA {100 * (c[1] - o[1]):+.2f} points")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
