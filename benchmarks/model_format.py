"""The land-cover model file: arrays + JSON (no code on load) against a joblib pickle.

    python benchmarks/model_format.py               # 512 px scene, global and local models
    python benchmarks/model_format.py --size 256

For each model (rf, lgbm, rf+lgbm; global and 128 px local tiles) prints the save and load time
and file size of cryokit's ``.npz`` archive and of ``joblib.dump(..., compress=3)`` of the same
fitted object (what earlier releases wrote), best of 3, and checks that the loaded model gives
the same probabilities to the last bit.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def best(fn, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()

    import joblib

    from cryokit.landcover.classify import GlobalClassifier, LocalClassifier
    from cryokit.landcover.model_store import dump_classifier, load_classifier
    from cryokit.synthetic.landcover import make_landcover_scene

    s = make_landcover_scene(args.size, seed=0)
    X = s.features[:, s.rows, s.cols].T
    tmp = Path(tempfile.mkdtemp(prefix="cryokit-model-"))
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(X), 20000)
    print(f"{len(X)} samples, {X.shape[1]} features; times in s, best of 3; sizes in MB")
    print(f"{'model':22s} {'npz save':>9s} {'npz load':>9s} {'npz MB':>7s} "
          f"{'joblib save':>12s} {'joblib load':>12s} {'joblib MB':>10s}  same")
    for model in ("rf", "lgbm", "rf+lgbm"):
        for local in (None, 128):
            kw = dict(model=model, n_estimators=64)
            clf = (LocalClassifier(local, **kw) if local else GlobalClassifier(**kw))
            clf.fit(X, s.labels, s.rows, s.cols)
            a, b = tmp / "m.npz", tmp / "m.joblib"
            ts_n, _ = best(lambda: dump_classifier(clf, a))
            tl_n, back = best(lambda: load_classifier(a))
            ts_j, _ = best(lambda: joblib.dump(clf, b, compress=3))
            tl_j, _ = best(lambda: joblib.load(b))
            same = np.array_equal(back.predict_proba(X[idx], s.rows[idx], s.cols[idx]),
                                  clf.predict_proba(X[idx], s.rows[idx], s.cols[idx]))
            name = f"{model} {'local ' + str(local) if local else 'global'}"
            print(f"{name:22s} {ts_n:9.3f} {tl_n:9.3f} {os.path.getsize(a) / 1e6:7.2f} "
                  f"{ts_j:12.3f} {tl_j:12.3f} {os.path.getsize(b) / 1e6:10.2f}  {same}")


if __name__ == "__main__":
    main()
