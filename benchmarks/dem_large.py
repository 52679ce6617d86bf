"""Peak memory and time of Nuth & Kaab on a 10 000 x 10 000 DEM pair (issue target: <= 4 GB).

    python benchmarks/dem_large.py [--size 10000]

A synthetic pair (cryokit.synthetic.make_dem_pair: fractal terrain, 2500 m relief, TBA shifted
by (9.3, -5.7, -2.5) m plus 0.5 m noise) is made in one child process and saved as .npy; a
second child loads it and runs NuthKaab fit + apply, so its peak RSS (ru_maxrss) is the
co-registration's alone, inputs included.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

MAKE = """
import sys, numpy as np
from cryokit.synthetic import make_dem_pair
p = make_dem_pair((int(sys.argv[1]),) * 2, seed=0, relief=2500)
for k, a in (("ref", p.ref), ("tba", p.tba), ("stable", ~p.glacier)):
    np.save(f"{sys.argv[2]}/{k}.npy", a)
"""

RUN = """
import resource, sys, time, numpy as np
from affine import Affine
from cryokit.elevation import coreg
d = sys.argv[1]
ref, tba, st = (np.load(f"{d}/{k}.npy") for k in ("ref", "tba", "stable"))
tr = Affine(20, 0, 510000, 0, -20, 8670000)
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
nk = coreg.NuthKaab().fit(ref, tba, st, tr)
fit = time.perf_counter() - t
nk.apply(tba, tr)
total = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
err = np.subtract(nk.shift, (9.3, -5.7, -2.5))
print(f"| {ref.shape[0]} x {ref.shape[1]} | {fit:.1f} | {total:.1f} | {loaded:.0f} | {peak:.0f} | "
      f"{abs(err[:2]).max():.4f} / {abs(err[2]):.4f} |")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=10000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cryokit-dem-large-") as d:
        subprocess.run([sys.executable, "-c", MAKE, str(args.size), d], check=True)
        print("| pair | fit s | fit + apply s | RSS after loading inputs MB | peak RSS MB | "
              "shift error xy / z (m) |\n|---|---|---|---|---|---|", flush=True)
        subprocess.run([sys.executable, "-c", RUN, d], check=True)


if __name__ == "__main__":
    main()
