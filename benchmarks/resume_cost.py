"""What resuming by content costs: digest throughput, and a re-run that has nothing to do.

    python benchmarks/resume_cost.py                    # 1024 x 1024 px, 6 images (5 pairs)
    python benchmarks/resume_cost.py --size 512 --images 4

``sar-velocity`` keeps a finished pair only when the content digests (size + BLAKE2b) of its
images, DEM and mask match those it was made from, because file times lie after ``cp -p``,
tar or rsync. This prints, on the same machine and in the same run:

- digest throughput (MB/s) over the series and, where ``../shared/data`` is present, the real
  Sentinel-1 and Landsat files a user would feed in;
- the first run, a re-run with nothing to do (every pair digested and skipped), and a re-run
  after one image was replaced with new content but its old modification time (``cp -p``):
  the pairs of that image are redone, the others kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def digest_rate(paths: list[str]) -> tuple[float, float]:
    from cryokit.core.outputs import file_digest

    size = sum(os.path.getsize(p) for p in paths)
    t = time.perf_counter()
    for p in paths:
        file_digest(p)
    dt = time.perf_counter() - t
    return size / 1e6, size / 1e6 / dt


def run(files: dict, out: Path) -> tuple[float, dict]:
    cmd = [sys.executable, "-c", "from cryokit.cli import run; run()", "-q", "sar-velocity",
           *files["images"], "-o", str(out), "--dem", files["dem"], "--heading", "-12"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t, json.loads((out / "report.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--images", type=int, default=6)
    args = ap.parse_args()

    import rasterio

    from cryokit.synthetic import make_sar_series, write_sar_series

    tmp = Path(tempfile.mkdtemp(prefix="cryokit-resume-"))
    s = make_sar_series((args.size, args.size), n=args.images, seed=0)
    files = write_sar_series(s, tmp / "in")
    mb, rate = digest_rate(files["images"] + [files["dem"]])
    print(f"digest, synthetic series: {mb:.1f} MB at {rate:.0f} MB/s")
    real = sorted(str(p) for p in SHARED.glob("velocity/**/*") if p.suffix.lower() in
                  (".tif", ".tiff") and p.stat().st_size > 1e6)
    if real:
        mb, rate = digest_rate(real)
        print(f"digest, {len(real)} real rasters in ../shared/data/velocity: {mb:.1f} MB at "
              f"{rate:.0f} MB/s")
    out = tmp / "out"
    t1, r1 = run(files, out)
    t2, r2 = run(files, out)
    victim = files["images"][2]
    stamp = os.stat(victim).st_mtime_ns
    with rasterio.open(victim, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:
        ds.write(np.roll(ds.read(1), 1, axis=1), 1)
    os.utime(victim, ns=(stamp, stamp))
    t3, r3 = run(files, out)
    n = r1["n_pairs"]
    print(f"\n{args.size} x {args.size} px, {args.images} images, {n} pairs")
    print(f"{'run':44s} {'wall s':>7s} {'computed':>9s} {'kept':>5s}")
    print(f"{'first run':44s} {t1:7.2f} {len(r1['computed']):9d} {len(r1['skipped']):5d}")
    print(f"{'re-run, nothing changed':44s} {t2:7.2f} {len(r2['computed']):9d} "
          f"{len(r2['skipped']):5d}")
    print(f"{'re-run, one image replaced with its old time':44s} {t3:7.2f} "
          f"{len(r3['computed']):9d} {len(r3['skipped']):5d}")
    print(f"re-run / first run: {t2 / t1:.2f}")


if __name__ == "__main__":
    main()
