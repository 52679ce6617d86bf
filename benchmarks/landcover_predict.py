"""Prediction throughput (Mpx/s) on a 2000 x 2000 x 15-feature synthetic raster, 2 cores.

cryokit compiled forest (64 trees, depth 12, breadth-first numba walk; global, and locally
adaptive with 256 px tiles and full or half-tile blending) vs scikit-learn
RandomForest (100 trees, unlimited depth, n_jobs=2) and LightGBM (100 rounds, 31 leaves,
2 threads), all trained on the same 0.2 % samples; accuracy of each against the exact
synthetic truth on every valid pixel.  Prints a table and speed ratios; times are the best
of 3 runs for the two forests (1 for the slow LightGBM rows).

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
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        p = fn(X)
        best = min(best, time.perf_counter() - t)
    return p, best


def main(size=2000):
    numba.set_num_threads(2)
    s = make_landcover_scene(size, seed=0, n_features=15, sample_fraction=0.002)
    X, y = s.sample_table(), s.labels
    f = s.features.reshape(15, -1).T
    ok = np.isfinite(f).all(axis=1)
    Xv, truth = np.ascontiguousarray(f[ok]), s.truth.ravel()[ok]
    rows = []
    ck = GlobalClassifier(n_estimators=64, max_depth=12, n_jobs=2).fit(X, y)
    rows.append(("cryokit rf (64 trees, depth 12)", ck.predict, 3))
    rf = RandomForestClassifier(100, n_jobs=2, random_state=0).fit(X, y)
    rows.append(("sklearn RF (100 trees)", rf.predict, 3))
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
    print(f"{Xv.shape[0] / 1e6:.2f} Mpx x 15 features, {y.size} training samples, "
          f"numba threads {numba.get_num_threads()}")
    print(f"{'model':34s} {'time s':>7s} {'Mpx/s':>7s} {'OA':>7s}")
    res = {}
    for name, fn, repeat in rows:
        p, dt = timed(fn, Xv, repeat)
        res[name] = (Xv.shape[0] / dt / 1e6, float((p == truth).mean()))
        print(f"{name:34s} {dt:7.2f} {res[name][0]:7.3f} {res[name][1]:7.4f}")
    c = res["cryokit rf (64 trees, depth 12)"]
    for other in ("sklearn RF (100 trees)", "LightGBM (100 rounds)"):
        o = res[other]
        print(f"cryokit rf / {other}: speed x{c[0] / o[0]:.1f}, OA {100 * (c[1] - o[1]):+.2f} points")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
