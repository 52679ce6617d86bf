"""Optical velocity benchmark: cryokit vs OpenPIV on the same pair, in the same run.

Run from the repository root::

    python benchmarks/velocity_pair.py              # best of 3 after a warm-up (~2 min)
    python benchmarks/velocity_pair.py --warm-heap  # same, without first-touch page faults
    python benchmarks/velocity_pair.py --quick      # one repetition, smoke test

Cases
-----
1. Real Landsat 8 B8 pair over Yahtse Glacier (2016-07-18 -> 2016-08-03, 15 m), cryokit
   ``track_pair`` with ``TrackParams(step=16)``; stable ground = the rock polygons rasterised on
   the node grid. Also the full ``make_velocity`` product once.
2. The same pair with OpenPIV ``extended_search_area_piv`` on the same pre-filtered images
   (cryokit's ``highpass(img, 1.5)``, NaN -> 0), window 40 (= chip), node spacing 16 px,
   search area 64 (+-12 px), Gaussian sub-pixel, both 'circular' and 'linear' correlation.
   OpenPIV's windows are put on cryokit's node centres exactly (see ``openpiv_on_nodes``).
3. Synthetic ``make_glacier_pair((1024, 1024), seed=1, max_speed_px=6)``, with and without
   SLC-off gaps: error against the known displacement for both tools.

Timings are wall-clock seconds, best of the repetitions (the machine is shared, so the best run
is the least disturbed one). cryokit runs with its default ``threads`` (2); OpenPIV's
``extended_search_area_piv`` has no threading option and runs on one core (scipy.fft default).
The OpenPIV time includes the same high-pass pre-filter that cryokit applies internally.
"valid %" is over cryokit's node grid for both tools: cryokit's valid nodes after its quality
and outlier tests; for OpenPIV, which rejects nothing itself, its finite vectors (it has none
on the border nodes where a 64 px search area does not fit in the image).

``--warm-heap`` tells glibc's malloc never to return freed memory to the kernel, so repeated
runs reuse pages already mapped. On this VM a first touch of fresh memory is very slow (page
faults are most of OpenPIV's wall time: it materialises every window and correlation plane,
1-5 GB), so this mode measures the computation without that cost. The per-tool memory column
is meaningless in this mode and is left out.

The data folder defaults to /work/shared/data/velocity; override with --data or the
CRYOKIT_VELOCITY_DATA environment variable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = os.environ.get("CRYOKIT_VELOCITY_DATA", "/work/shared/data/velocity")
PAIR = ("LC80630182016200LGN00_B8_yahtse.TIF", "LC80630182016216LGN00_B8_yahtse.TIF")
DATES = ("2016-07-18", "2016-08-03")
ROCK = "StEliasMtn_utm7v_rock.gmt"
STEP, CHIP, SEARCH_RADIUS = 16, 40, 12       # OpenPIV search area = CHIP + 2 * SEARCH_RADIUS
SIGMA = 1.5                                  # cryokit's default high-pass sigma


# ----------------------------------------------------------------------------- machine / timing

def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cv2
    import openpiv
    import scipy

    import cryokit
    root = Path(cryokit.__file__).resolve().parent
    digest = hashlib.sha256()
    for f in sorted((root / "velocity").glob("*.py")):
        digest.update(f.read_bytes())
    try:
        commit = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {"nproc": nproc, "cpu_model": model, "python": platform.python_version(),
            "cryokit": cryokit.__version__, "openpiv": getattr(openpiv, "__version__", "?"),
            "numpy": np.__version__, "scipy": scipy.__version__, "opencv": cv2.__version__,
            "git": commit or "?", "velocity_src_sha256": digest.hexdigest()[:12],
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


class RssPeak:
    """Peak resident memory above the level at entry, sampled by a thread every ``dt`` s."""

    def __init__(self, dt: float = 0.01):
        import psutil
        self.proc, self.dt = psutil.Process(), dt
        self.peak_mb = 0.0

    def __enter__(self):
        self.base = self.proc.memory_info().rss
        self.top = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(self.dt):
            self.top = max(self.top, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.top = max(self.top, self.proc.memory_info().rss)
        self.peak_mb = (self.top - self.base) / 2**20
        return False


def keep_heap() -> bool:
    """Tell glibc malloc to neither trim nor mmap (freed memory stays mapped); False if no glibc."""
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        # -1 converts to SIZE_MAX inside glibc: never trim, never use mmap for big blocks.
        return bool(libc.mallopt(m_mmap_threshold, -1) and libc.mallopt(m_trim_threshold, -1))
    except (OSError, AttributeError):
        return False


def bench(fn, reps: int, warmup: bool):
    """Run ``fn`` (after a warm-up call if asked) ``reps`` times.

    Returns (best_s, times_s, last result, peak RSS above the start in MB).
    """
    if warmup:
        fn()
    times, out = [], None
    with RssPeak() as mem:
        for _ in range(reps):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
    return min(times), times, out, mem.peak_mb


# ----------------------------------------------------------------------------- OpenPIV on nodes

def openpiv_on_nodes(ref, sec, nodes, method: str, step: int = STEP, chip: int = CHIP,
                     radius: int = SEARCH_RADIUS):
    """OpenPIV ``extended_search_area_piv`` placed on cryokit's node grid.

    OpenPIV cuts search areas of S = chip + 2 radius px every ``step`` px from the image's
    top-left corner; the interrogation window is the central ``chip`` x ``chip`` part, so window
    k has its centre at s + k step + (S - 1) / 2 in an image cropped by s pixels at the top
    and left. cryokit's node i has its template centre at node_origins(i) + (chip - 1) / 2
    = i step + step / 2 - 1/2 (even step). Cropping s = (step/2 - S/2) mod step makes every
    OpenPIV centre coincide with a cryokit node centre (node i0 + k), checked below. OpenPIV's
    u is + columns (right) and v is + rows (down) for this raw call (checked on the synthetic
    pair), i.e. cryokit's dx and dy; no sign change is needed.

    Returns dx, dy on the ``nodes`` grid (NaN where OpenPIV has no window) and OpenPIV's own
    number of vectors.
    """
    from openpiv import pyprocess

    from cryokit.velocity.filters import highpass
    from cryokit.velocity.track import node_origins

    S = chip + 2 * radius
    s = (step // 2 - S // 2) % step
    i0 = (s + S // 2 - step // 2) // step
    centres = node_origins(max(nodes), step, chip) + (chip - 1) / 2
    assert centres[i0] == s + (S - 1) / 2 and centres[i0 + 1] == s + step + (S - 1) / 2
    a = np.nan_to_num(highpass(ref, SIGMA), nan=0.0)
    b = np.nan_to_num(highpass(sec, SIGMA), nan=0.0)
    u, v, _ = pyprocess.extended_search_area_piv(
        a[s:, s:], b[s:, s:], window_size=chip, overlap=S - step, search_area_size=S,
        correlation_method=method, subpixel_method="gaussian",
        normalized_correlation=(method == "linear"))
    dx = np.full(nodes, np.nan)
    dy = np.full(nodes, np.nan)
    nr, nc = min(u.shape[0], nodes[0] - i0), min(u.shape[1], nodes[1] - i0)
    dx[i0:i0 + nr, i0:i0 + nc] = u[:nr, :nc]
    dy[i0:i0 + nr, i0:i0 + nc] = v[:nr, :nc]
    return dx, dy, int(u.size)


# ----------------------------------------------------------------------------- statistics

def stable_stats(dx, dy, stable) -> dict:
    from cryokit.velocity.stable import fit_stable
    fit = fit_stable(dx, dy, stable)
    use = stable & np.isfinite(dx) & np.isfinite(dy)
    mx, my = fit["median_px"]
    off = np.hypot(dx[use] - mx, dy[use] - my)
    return {"n_stable": fit["n_stable"], "median_px": fit["median_px"], "nmad_px": fit["nmad_px"],
            "share_over_2px": float(np.mean(off > 2.0)) if off.size else float("nan")}


def row(case, tool, best, times, nnodes, nvalid, ngrid, acc, mem, **extra) -> dict:
    return dict(case=case, tool=tool, time_s=best, times_s=[round(t, 3) for t in times],
                nodes=nnodes, nodes_per_s=nnodes / best, valid=nvalid / ngrid, grid_nodes=ngrid,
                rss_peak_mb=mem, **acc, **extra)


# ----------------------------------------------------------------------------- cases

def case_yahtse(data: Path, reps: int, warmup: bool, log) -> list[dict]:
    import rasterio
    from affine import Affine

    from cryokit.core.raster import Grid
    from cryokit.core.vector import load_mask
    from cryokit.velocity.product import VelocityOptions, make_velocity
    from cryokit.velocity.track import TrackParams, node_shape, track_pair

    folder = data / "yahtse_landsat8_2016"
    paths = [folder / p for p in PAIR]
    imgs = []
    for p in paths:
        with rasterio.open(p) as ds:
            imgs.append(ds.read(1).astype(np.float32))
            crs, transform = ds.crs, ds.transform
    ref, sec = imgs
    ny, nx = node_shape(ref.shape, STEP)
    node_grid = Grid(crs, transform * Affine.scale(STEP), nx, ny)
    stable = load_mask(folder / ROCK, node_grid)
    log(f"[yahtse] {ref.shape[1]} x {ref.shape[0]} px, node grid {ny} x {nx} = {ny * nx}, "
        f"{int(stable.sum())} stable (rock) nodes")
    rows = []
    case = "Yahtse L8 (real)"

    params = TrackParams(step=STEP)
    best, times, f, mem = bench(lambda: track_pair(ref, sec, params), reps, warmup)
    st = stable_stats(f.dx, f.dy, stable)
    rows.append(row(case, f"cryokit (threads={params.threads})", best, times, f.dx.size,
                    int(f.valid.sum()), f.dx.size, st, mem, flags=f.flags))
    log(f"[yahtse] cryokit {best:.3f} s {times}, flags {f.flags}, stable {st}")
    ck = f
    mag = np.hypot(ck.dx, ck.dy)[ck.valid]
    beyond = float(np.mean(mag > SEARCH_RADIUS))
    log(f"[yahtse] cryokit |d| p50/p95/p99/max = "
        f"{np.round(np.percentile(mag, [50, 95, 99, 100]), 2).tolist()} px; "
        f"{100 * beyond:.2f} % of valid nodes beyond OpenPIV's +-{SEARCH_RADIUS} px search")

    p1 = TrackParams(step=STEP, threads=1)
    best1, times1, f1, mem1 = bench(lambda: track_pair(ref, sec, p1), reps, False)
    rows.append(row(case, "cryokit (threads=1)", best1, times1, f1.dx.size, int(f1.valid.sum()),
                    f1.dx.size, stable_stats(f1.dx, f1.dy, stable), mem1))
    log(f"[yahtse] cryokit threads=1 {best1:.3f} s {times1}")

    for method in ("circular", "linear"):
        if warmup:  # imports and FFT plans, on a small crop
            openpiv_on_nodes(ref[:256, :256], sec[:256, :256], (16, 16), method)
        best, times, (dx, dy, n), mem = bench(
            lambda: openpiv_on_nodes(ref, sec, (ny, nx), method), reps, False)
        st = stable_stats(dx, dy, stable)
        both = np.isfinite(dx) & ck.valid
        diff = np.hypot(dx - ck.dx, dy - ck.dy)[both]
        rows.append(row(case, f"OpenPIV {method}", best, times, n,
                        int(np.isfinite(dx).sum()), dx.size, st, mem,
                        share_differs_1px_from_cryokit=float(np.mean(diff > 1.0))))
        log(f"[yahtse] OpenPIV {method} {best:.3f} s {times}, {n} vectors, stable {st}, "
            f"{100 * np.mean(diff > 1):.2f} % of common valid nodes differ from cryokit by > 1 px")

    with tempfile.TemporaryDirectory() as tmp, RssPeak() as mem:
        t = time.perf_counter()
        rep = make_velocity(paths[0], paths[1], Path(tmp) / "v", params, dates=DATES,
                            stable_mask=str(folder / ROCK), options=VelocityOptions())
        total = time.perf_counter() - t
    sg = rep["stable_ground"]
    rows.append(dict(case=case, tool="cryokit make_velocity (1 run)", time_s=total,
                     times_s=[round(total, 3)], nodes=rep["nodes"]["nodes"],
                     nodes_per_s=rep["nodes"]["nodes"] / total, valid=rep["valid_fraction"],
                     grid_nodes=rep["nodes"]["nodes"], n_stable=sg["n_nodes"],
                     median_px=sg["median_offset_px"], nmad_px=sg["nmad_px"],
                     share_over_2px=float("nan"), rss_peak_mb=mem.peak_mb,
                     timings_s=rep["timings_s"]))
    log(f"[yahtse] make_velocity {total:.3f} s, timings_s {rep['timings_s']}, "
        f"valid {rep['valid_fraction']:.4f}, stable {sg['median_offset_px']} NMAD {sg['nmad_px']}")
    return rows


def case_synthetic(slc_off: bool, reps: int, warmup: bool, log) -> list[dict]:
    from cryokit.synthetic.velocity import make_glacier_pair
    from cryokit.velocity.accuracy import error_stats, mask_at_nodes, truth_at_nodes
    from cryokit.velocity.track import TrackParams, node_shape, track_pair

    t = time.perf_counter()
    pair = make_glacier_pair((1024, 1024), seed=1, max_speed_px=6, slc_off=slc_off)
    log(f"[synthetic slc_off={slc_off}] pair made in {time.perf_counter() - t:.1f} s")
    nodes = node_shape(pair.ref.shape, STEP)
    tx, ty = truth_at_nodes(pair.dx, pair.dy, nodes, STEP, CHIP)
    ice = mask_at_nodes(pair.glacier, nodes, STEP, CHIP)
    case = "synthetic 1024² " + ("SLC-off" if slc_off else "full")
    ngrid = nodes[0] * nodes[1]

    def acc(dx, dy, ck_valid=None):
        a = error_stats(dx, dy, tx, ty)
        out = {"rmse_px": a["rmse_px"], "share_over_1px": a["share_over_1px"],
               "rmse_ice_px": error_stats(dx, dy, tx, ty, ice)["rmse_px"]}
        if ck_valid is not None:
            out["rmse_on_cryokit_valid_px"] = error_stats(dx, dy, tx, ty, ck_valid)["rmse_px"]
        return out

    rows = []
    params = TrackParams(step=STEP)
    best, times, f, mem = bench(lambda: track_pair(pair.ref, pair.sec, params), reps, warmup)
    rows.append(row(case, f"cryokit (threads={params.threads})", best, times, f.dx.size,
                    int(f.valid.sum()), ngrid, acc(f.dx, f.dy), mem, flags=f.flags))
    log(f"[{case}] cryokit {best:.3f} s {times}, flags {f.flags}, {acc(f.dx, f.dy)}")
    for method in ("circular", "linear"):
        best, times, (dx, dy, n), mem = bench(
            lambda: openpiv_on_nodes(pair.ref, pair.sec, nodes, method), reps, False)
        a = acc(dx, dy, f.valid)
        flipped = error_stats(dx, -dy, tx, ty)["rmse_px"]
        log(f"[{case}] OpenPIV {method} sign check: RMSE {a['rmse_px']:.3f} px with v = +rows "
            f"(down), {flipped:.3f} px with v flipped")
        rows.append(row(case, f"OpenPIV {method}", best, times, n, int(np.isfinite(dx).sum()),
                        ngrid, a, mem))
        log(f"[{case}] OpenPIV {method} {best:.3f} s {times}, {n} vectors, {a}")
    return rows


# ----------------------------------------------------------------------------- report

def fmt_table(rows: list[dict], memory: bool = True) -> str:
    head = ("| case | tool | time s (best) | runs s | nodes | nodes/s | valid % | accuracy (px) "
            "| outliers | peak ΔRSS MB |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if "nmad_px" in r:
            acc = "stable NMAD x {:.3f} / y {:.3f}".format(*r["nmad_px"])
            out = ("—" if not np.isfinite(r["share_over_2px"])
                   else f"{100 * r['share_over_2px']:.1f} % stable > 2 px")
        else:
            acc = f"RMSE {r['rmse_px']:.3f} (ice {r['rmse_ice_px']:.3f})"
            if "rmse_on_cryokit_valid_px" in r:
                acc += f"; {r['rmse_on_cryokit_valid_px']:.3f} on cryokit's valid nodes"
            out = f"{100 * r['share_over_1px']:.1f} % > 1 px"
        runs = ", ".join(f"{t:.2f}" for t in r["times_s"])
        mem = f"{r['rss_peak_mb']:.0f}" if memory else "—"
        lines.append(f"| {r['case']} | {r['tool']} | {r['time_s']:.2f} | {runs} | {r['nodes']} | "
                     f"{r['nodes_per_s']:.0f} | {100 * r['valid']:.1f} | {acc} | {out} | {mem} |")
    return "\n".join(lines)


def ratios(rows: list[dict]) -> list[str]:
    out = []
    cases = dict.fromkeys(r["case"] for r in rows)
    for case in cases:
        rs = [r for r in rows if r["case"] == case]
        ck = rs[0]  # cryokit track_pair with default settings comes first in every case
        for r in rs:
            if not r["tool"].startswith("OpenPIV"):
                continue
            if "nmad_px" in r:
                acc = ("stable NMAD x/y {:.3f}/{:.3f} vs cryokit {:.3f}/{:.3f}; > 2 px "
                       "{:.1f} % vs {:.1f} %").format(*r["nmad_px"], *ck["nmad_px"],
                                                      100 * r["share_over_2px"],
                                                      100 * ck["share_over_2px"])
            else:
                acc = ("RMSE {:.3f} vs cryokit {:.3f} px (ice {:.3f} vs {:.3f}); on cryokit's "
                       "valid nodes {:.3f}").format(r["rmse_px"], ck["rmse_px"],
                                                    r["rmse_ice_px"], ck["rmse_ice_px"],
                                                    r["rmse_on_cryokit_valid_px"])
            out.append(f"{case}: {r['tool']} / {ck['tool']} time = "
                       f"{r['time_s'] / ck['time_s']:.1f}x; {acc}")
    return out


def targets(rows: list[dict]) -> list[str]:
    y = [r for r in rows if r["case"].startswith("Yahtse")]
    ck = y[0]
    piv = [r for r in y if r["tool"].startswith("OpenPIV")]
    lines = []
    for r in piv:
        speed = r["time_s"] / ck["time_s"]
        better = (ck["nmad_px"][0] <= r["nmad_px"][0] and ck["nmad_px"][1] <= r["nmad_px"][1]
                  and ck["share_over_2px"] <= r["share_over_2px"])
        lines.append(f">= 5x faster than {r['tool']} at equal or better accuracy: {speed:.1f}x, "
                     f"accuracy {'equal or better' if better else 'NOT better'} -> "
                     f"{'met' if speed >= 5 and better else 'not met'}")
    lines.append(f"Yahtse step 16 matching <= 1.5 s on 2 cores: {ck['time_s']:.2f} s -> "
                 f"{'met' if ck['time_s'] <= 1.5 else 'not met'} "
                 f"(autoRIFT, README, other run: 7.5 s -> {7.5 / ck['time_s']:.1f}x)")
    nx_, ny_ = ck["nmad_px"]
    lines.append(f"stable NMAD <= 0.07 px in x and y: {nx_:.3f} / {ny_:.3f} -> "
                 f"{'met' if max(nx_, ny_) <= 0.07 else 'not met'} (autoRIFT 0.093 / 0.093)")
    lines.append(f">= 90 % valid: {100 * ck['valid']:.1f} % -> "
                 f"{'met' if ck['valid'] >= 0.9 else 'not met'} (autoRIFT 93.8 %)")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repetition, no warm-up")
    ap.add_argument("--data", default=DEFAULT_DATA, help="velocity data folder")
    ap.add_argument("--warm-heap", action="store_true",
                    help="keep freed memory mapped (glibc), timing computation without "
                         "first-touch page faults")
    ap.add_argument("--json", help="also write all figures to this JSON file")
    args = ap.parse_args(argv)
    reps, warmup = (1, False) if args.quick else (3, True)

    def log(msg):
        print(msg, flush=True)

    t0 = time.perf_counter()
    info = machine()
    info["warm_heap"] = keep_heap() if args.warm_heap else False
    if args.warm_heap and not info["warm_heap"]:
        log("--warm-heap: mallopt not available (not glibc?); running as usual")
    log(f"machine: {info['nproc']} cores ({info['cpu_model']}), load {info['loadavg_start']}; "
        f"python {info['python']}, cryokit {info['cryokit']}, openpiv {info['openpiv']}, "
        f"numpy {info['numpy']}, scipy {info['scipy']}, opencv {info['opencv']}")
    log(f"source: git {info['git']}, sha256(src/cryokit/velocity/*.py) "
        f"{info['velocity_src_sha256']}")
    log(f"timing: best of {reps}" + (" after a warm-up" if warmup else "")
        + ("; warm heap (freed memory kept mapped)" if info["warm_heap"] else "") + "\n")
    rows = case_yahtse(Path(args.data), reps, warmup, log)
    rows += case_synthetic(False, reps, warmup, log)
    rows += case_synthetic(True, reps, warmup, log)
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    info["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info["total_s"] = time.perf_counter() - t0

    log("\n" + fmt_table(rows, memory=not info["warm_heap"]))
    log("\nratios (OpenPIV time / cryokit time, same run):")
    for line in ratios(rows):
        log("  " + line)
    log("\nissue targets (Yahtse, step 16):")
    for line in targets(rows):
        log("  " + line)
    log(f"\nprocess peak RSS (getrusage ru_maxrss): {info['ru_maxrss_mb']:.0f} MB; "
        f"load average end {info['loadavg_end']}; total {info['total_s']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=1,
                                              default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
