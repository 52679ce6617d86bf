"""Throughput of the SAR offset-tracking product: pairs per minute, serial vs dask workers.

    python benchmarks/sar_series.py                 # 2000 x 2000 px, 4 images (3 pairs), step 16
    python benchmarks/sar_series.py --size 1000 --images 3    # smoke test

A synthetic Sentinel-1-like series (cryokit.synthetic.make_sar_series, 20 m pixels, 15 days
apart, 4 looks, coherence 0.7, real Yahtse DEM when ../shared/data is present) is written
once; ``cryokit sar-velocity`` then runs on it in a child process per mode, so each mode's
peak memory (ru_maxrss of the child and, for dask, its worker processes) is its own.
Reported: wall time, pairs per minute, nodes per second, peak RSS, and the stable NMAD and
ice RMSE against truth, so speed is never read without accuracy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "velocity" / \
    "yahtse_landsat8_2016" / "yahtse_srtm_dem.tif"


def run_mode(files: dict, out: Path, heading: float, extra: list[str]) -> dict:
    cmd = [sys.executable, "-c", "from cryokit.cli import run; run()", "sar-velocity",
           *files["images"], "-o", str(out), "--dem", files["dem"], "--stable-mask",
           files["stable"], "--heading", str(heading), *extra]
    # A fresh wrapper per mode, so the peak RSS (largest process among the run and its dask
    # workers, all reaped inside the wrapper) belongs to this mode alone.
    wrap = [sys.executable, "-c", "import resource, subprocess, sys; rc = subprocess.call("
            "sys.argv[1:], stdout=subprocess.DEVNULL); print('PEAK', resource.getrusage("
            "resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)", *cmd]
    t = time.perf_counter()
    proc = subprocess.run(wrap, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"sar-velocity failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    peak = int(proc.stderr.strip().splitlines()[-1].split()[1])
    rep = json.loads((out / "report.json").read_text())
    return {"wall_s": wall, "rep": rep, "peak_rss_mb": peak / 1024}


def ice_rmse(series, out: Path, rep: dict, step: int, chip: int) -> float:
    from cryokit.core.raster import read_band
    from cryokit.velocity.accuracy import mask_at_nodes, truth_at_nodes

    errs = []
    for k, pr in enumerate(rep["pairs"]):
        n = (series.images[0].shape[0] // step, series.images[0].shape[1] // step)
        tr, ta = truth_at_nodes(*series.corrected(k, k + 1), n, step, chip)
        ice = mask_at_nodes(series.glacier, n, step, chip)
        px = series.grid.res[0]
        r = read_band(out / "pairs" / f"{pr['pair']}.real.tif") / px
        a = read_band(out / "pairs" / f"{pr['pair']}.imag.tif") / px
        errs.append(np.hypot(r - tr, a - ta)[ice])
    e = np.concatenate(errs)
    return float(np.sqrt(np.nanmean(e ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="write the series and products here (kept)")
    args = ap.parse_args()

    from cryokit.synthetic import make_sar_series, write_sar_series
    from cryokit.velocity.sar import SAR_DEFAULTS

    root = args.keep or Path(tempfile.mkdtemp(prefix="cryokit-sar-bench-"))
    t = time.perf_counter()
    s = make_sar_series((args.size, args.size), n=args.images, seed=1,
                        max_speed_px_per_day=0.15, dem=str(DEM) if DEM.exists() else None)
    files = write_sar_series(s, root / "in")
    print(f"series {args.images} x {args.size}² made in {time.perf_counter() - t:.1f} s "
          f"(DEM: {'Yahtse SRTM' if DEM.exists() else 'synthetic'})", flush=True)
    step, chip = SAR_DEFAULTS.step, SAR_DEFAULTS.chip
    nodes = (args.size // step) ** 2
    rows = []
    for label, extra in (("serial (threads=2)", []),
                         (f"--workers {args.workers}", ["--workers", str(args.workers)])):
        out = root / label.split()[0].strip("-")
        shutil.rmtree(out, ignore_errors=True)
        r = run_mode(files, out, s.heading, extra)
        n_pairs = r["rep"]["n_pairs_ok"]
        rows.append((label, r["wall_s"], n_pairs, 60 * n_pairs / r["wall_s"],
                     n_pairs * nodes / r["wall_s"], r["peak_rss_mb"],
                     r["rep"]["stable_nmad_px_median"], ice_rmse(s, out, r["rep"], step, chip)))
        print(f"{label}: {r['wall_s']:.1f} s", flush=True)
    print(f"\n{args.size} x {args.size} px, {args.images} images, {args.images - 1} consecutive "
          f"pairs, chip {chip}, step {step} ({nodes} nodes per pair)\n")
    print("| mode | wall s (incl. start-up, stack, records) | pairs | pairs/min | nodes/s "
          "| peak RSS MB | stable NMAD px (r, az) | ice RMSE px |")
    print("|---|---|---|---|---|---|---|---|")
    for lab, wall, n, ppm, nps, mem, nm, rmse in rows:
        print(f"| {lab} | {wall:.1f} | {n} | {ppm:.1f} | {nps:.0f} | {mem:.0f} | "
              f"{nm[0]:.3f} / {nm[1]:.3f} | {rmse:.3f} |")
    print(f"\nspeed-up --workers {args.workers} / serial: {rows[0][1] / rows[1][1]:.2f}x")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
