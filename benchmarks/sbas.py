"""SBAS inversion: cryokit against MintPy's estimator, unweighted and coherence-weighted.

    python benchmarks/inversion.py                      # 100 interferograms x 1000 x 1000 px
    python benchmarks/inversion.py --size 300           # smaller, quicker
    python benchmarks/inversion.py --weights fim var    # which weighted cases (default: both)

A synthetic stack (cryokit.synthetic.insar.make_insar_stack: 28 dates 12 days apart, each
paired with its next 4, the first 100 pairs kept; NaN where coherence < 0.2 and in random
unwrapping-failure discs) is built once. Each method then runs in a forked child, so its
peak memory (ru_maxrss of the child minus its RSS at start) is its own:

- cryokit: :func:`cryokit.sbas.inversion.invert` (numba kernel per pixel, its default);
  weights from :func:`cryokit.sbas.inversion.coherence_weights` (``fim``, and ``var``: inverse
  DS phase variance, MintPy's default ``weight_func``), L = the stack's looks (20).
- MintPy: ``mintpy.ifgram_inversion.estimate_timeseries`` called as
  ``run_ifgram_inversion_patch`` does: unweighted, one call for the pixels valid in every
  interferogram and one call per other pixel; weighted, one call per pixel with
  ``weight_sqrt = sqrt(coherence2weight(coh, func, L))``; ``min_norm_velocity=True``,
  ``rcond=1e-5``, ``min_redundancy=1`` (its defaults).

Reported: wall time, peak memory, and the largest difference of the phase series (rad) and
of the temporal coherence over the pixels both solve. Pixels where some date has no valid
interferogram are zeros in MintPy and NaN in cryokit; pixels whose valid interferograms
connect all dates only through a minimum-norm solution (disconnected) are NaN in cryokit.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_cryokit(y, pairs, n_dates, coh, weighted, looks=1):
    from cryokit.sbas import inversion

    w = inversion.coherence_weights(coh, looks, weighted) if weighted else None
    res = inversion.invert(y, pairs, n_dates, w)
    return res.phase.astype(np.float32), res.temporal_coherence.astype(np.float32)


def run_mintpy(y, pairs, n_dates, coh, weighted, looks=1):
    import contextlib
    import io

    from mintpy.ifgram_inversion import estimate_timeseries
    from mintpy.simulation import decorrelation as decor

    from cryokit.sbas.network import design_matrix

    K = len(pairs)
    P = y.shape[1] * y.shape[2]
    obs = y.reshape(K, P)
    A = design_matrix(pairs, n_dates).astype(np.float32)
    tbase = np.arange(n_dates, dtype=np.float32) * 12 / 365.25
    tbase_diff = np.diff(tbase).reshape(-1, 1)
    # B: differential temporal baselines (MintPy get_design_matrix4timeseries)
    B = np.zeros_like(A)
    for k, (i, j) in enumerate(pairs):
        B[k, i:j] = tbase_diff[i:j, 0]
    kw = dict(A=A, B=B, tbase_diff=tbase_diff, min_norm_velocity=True, min_redundancy=1.0,
              inv_quality_name="temporalCoherence", print_msg=False)
    ts = np.zeros((n_dates, P), np.float32)
    tc = np.zeros(P, np.float32)
    mask = ~np.all(np.isnan(obs), axis=0)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        if not weighted:
            full = np.all(~np.isnan(obs), axis=0) & mask
            if full.any():
                t, q, _ = estimate_timeseries(y=obs[:, full], weight_sqrt=None, **kw)
                ts[:, full], tc[full] = t, q
            for idx in np.flatnonzero(mask & ~full):
                t, q, _ = estimate_timeseries(y=obs[:, idx], weight_sqrt=None, **kw)
                ts[:, idx], tc[idx] = t.ravel(), q
        else:
            wsq = np.sqrt(decor.coherence2weight(coh.reshape(K, P).copy(), weighted, L=looks,
                                                 epsilon=5e-2, print_msg=False))
            for idx in np.flatnonzero(mask):
                t, q, _ = estimate_timeseries(y=obs[:, idx], weight_sqrt=wsq[:, idx], **kw)
                ts[:, idx], tc[idx] = t.ravel(), q
    return ts.reshape((n_dates,) + y.shape[1:]), tc.reshape(y.shape[1:])


def _child(fn, args, conn):
    y, pairs, n_dates, coh, weighted, looks = args
    # warm-up on a tiny block: numba compilation / cache loading is not part of the timing
    fn(y[:, :4, :4], pairs, n_dates, coh[:, :4, :4], weighted, looks)
    base = _rss_mb()
    t = time.perf_counter()
    out = fn(*args)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(conn + ".ts.npy", out[0])
    np.save(conn + ".tc.npy", out[1])
    with open(conn + ".txt", "w") as f:
        f.write(f"{wall} {peak - base}")


def measure(fn, args, tmp):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    p = ctx.Process(target=_child, args=(fn, args, tmp))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"{fn.__name__} failed with exit code {p.exitcode}")
    wall, mem = (float(v) for v in open(tmp + ".txt").read().split())
    return wall, mem, np.load(tmp + ".ts.npy"), np.load(tmp + ".tc.npy")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1000, help="scene side in pixels")
    ap.add_argument("--ifgs", type=int, default=100, help="number of interferograms")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-mintpy-weighted", action="store_true",
                    help="leave out the slow MintPy weighted runs")
    ap.add_argument("--weights", nargs="*", default=["fim", "var"], choices=["fim", "coh", "var"],
                    help="weighted cases to run after the unweighted one")
    a = ap.parse_args(argv)
    import tempfile

    # No numba kernel may run here: its OpenMP pool does not survive fork().
    from cryokit.synthetic.insar import make_insar_stack

    n_dates = int(np.ceil((a.ifgs + 10) / 4))
    t = time.perf_counter()
    s = make_insar_stack(shape=(a.size, a.size), n_dates=n_dates, neighbours=4,
                         max_ifgs=a.ifgs, seed=a.seed)
    y, coh, pairs, looks = s.ifgs, s.coherence, s.pairs, s.looks
    nan_px = float(np.isnan(y).any(0).mean())
    print(f"stack: {len(pairs)} interferograms x {a.size} x {a.size} px, {n_dates} dates; "
          f"{100 * np.isnan(y).mean():.1f} % NaN values, {100 * nan_px:.1f} % of pixels with "
          f"some NaN; made in {time.perf_counter() - t:.1f} s; numba threads "
          f"{os.environ.get('NUMBA_NUM_THREADS', 'all cores')}, {os.cpu_count()} CPUs")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for weighted in (None, *a.weights):
            label = f"weighted ({weighted})" if weighted else "unweighted"
            args = (y, pairs, n_dates, coh, weighted, looks)
            wc, mc, tsc, tcc = measure(run_cryokit, args, f"{tmp}/c{weighted}")
            if weighted and a.skip_mintpy_weighted:
                rows.append((label, wc, mc, None, None, None, None))
                continue
            wm, mm, tsm, tcm = measure(run_mintpy, args, f"{tmp}/m{weighted}")
            both = np.isfinite(tsc).all(0) & (tcm > 0)
            dphase = float(np.max(np.abs(tsc[:, both] - tsm[:, both]))) if both.any() else np.nan
            dtc = float(np.max(np.abs(tcc[both] - tcm[both]))) if both.any() else np.nan
            rows.append((label, wc, mc, wm, mm, dphase, dtc, int(both.sum()),
                         int(np.isfinite(tsc).all(0).sum()), int((tcm > 0).sum())))
    print()
    print(f"{'mode':<16}{'cryokit s':>11}{'MintPy s':>11}{'speed-up':>10}"
          f"{'cryokit MB':>12}{'MintPy MB':>11}{'max |dphase| rad':>18}{'max |dtcoh|':>13}")
    for r in rows:
        if r[3] is None:
            print(f"{r[0]:<16}{r[1]:>11.2f}{'-':>11}{'-':>10}{r[2]:>12.0f}{'-':>11}")
            continue
        print(f"{r[0]:<16}{r[1]:>11.2f}{r[3]:>11.2f}{r[3] / r[1]:>9.1f}x{r[2]:>12.0f}"
              f"{r[4]:>11.0f}{r[5]:>18.2e}{r[6]:>13.2e}")
    for r in rows:
        if r[3] is not None:
            print(f"{r[0]}: pixels compared {r[7]} (cryokit solved {r[8]}, MintPy solved {r[9]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
