"""Mean velocity of a six-image SAR series on speckle that does not flatter the tracker,
through the whole product (``make_sar_velocity``: matching, orbit/terrain model, mean).

Scene: :func:`cryokit.synthetic.make_sar_series`, six images 12 days apart, 512² px of 20 m,
10 looks, nearly white speckle (``speckle_sigma_px=0.5``), coherence 0.5 on rock and 0.05 on
the glacier, default ice texture, the real Yahtse SRTM heights for the terrain offsets.
Truth: the mean over the pairs of each pair's orbit/terrain-corrected feature offset per day
(``SarSeries.corrected``), on moving-ice nodes. Errors are in px per 12-day pair interval.

Besides the error of the mean, the script splits the per-pair errors into the part common to
all pairs (their mean: what averaging pairs cannot remove) and the rest, and prints the error
that smoothing the true offsets by the Lucas-Kanade window (a Gaussian of ``lk_window x chip``
px) alone would make: the chip averages a curved flow profile.

Run: ``python benchmarks/sar_mean.py [--seeds 3]``; needs ``../shared/data`` for the DEM (a
fractal DEM otherwise).
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time
import warnings

import numpy as np
import rasterio
from scipy import ndimage

from cryokit.synthetic import make_sar_series, write_sar_series
from cryokit.velocity.accuracy import mask_at_nodes, truth_at_nodes
from cryokit.velocity.sar import sar_params
from cryokit.velocity.sar_product import SarOptions, make_sar_velocity

DEM = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "velocity" \
    / "yahtse_landsat8_2016" / "yahtse_srtm_dem.tif"
SIZE, N, DAYS = 512, 6, 12


def run(seed: int, root: pathlib.Path) -> dict:
    s = make_sar_series((SIZE, SIZE), n=N, seed=seed, looks=10, coherence=0.5,
                        ice_coherence=0.05, speckle_sigma_px=0.5, interval=DAYS,
                        dem=str(DEM) if DEM.exists() else None)
    files = write_sar_series(s, root / f"in{seed}")
    out = root / f"out{seed}"
    p = sar_params()
    t0 = time.perf_counter()
    rep = make_sar_velocity(files["images"], str(out), files["dem"], p,
                            stable_mask=files["stable"],
                            options=SarOptions(heading=s.heading))
    wall = time.perf_counter() - t0
    px = s.grid.res[0]
    with rasterio.open(out / "mean_velocity.tif") as ds:
        vr, va = ds.read(2) / px, ds.read(3) / px
    nodes = vr.shape
    truth_r, truth_a = np.zeros(nodes), np.zeros(nodes)
    for k in range(N - 1):
        tr, ta = truth_at_nodes(*s.corrected(k, k + 1), nodes, p.step, p.chip)
        truth_r += tr / DAYS / (N - 1)
        truth_a += ta / DAYS / (N - 1)
    mr, ma = truth_at_nodes(*s.motion(0, 1), nodes, p.step, p.chip)
    moving = mask_at_nodes(s.glacier, nodes, p.step, p.chip) & (np.hypot(mr, ma) > 0.5)
    e = np.hypot(vr - truth_r, va - truth_a) * DAYS
    ok = np.isfinite(e) & moving
    errors, smoothing = [], []
    width = p.lk_window * p.chip
    for k, pr in enumerate(rep["pairs"]):
        true_r, true_a = s.corrected(k, k + 1)
        tr, ta = truth_at_nodes(true_r, true_a, nodes, p.step, p.chip)
        sr, sa = truth_at_nodes(ndimage.gaussian_filter(true_r, width),
                                ndimage.gaussian_filter(true_a, width), nodes, p.step, p.chip)
        smoothing.append(np.hypot(sr - tr, sa - ta)[moving])
        with rasterio.open(out / "pairs" / f"{pr['pair']}.real.tif") as ds:
            r = ds.read(1) / px
        with rasterio.open(out / "pairs" / f"{pr['pair']}.imag.tif") as ds:
            a = ds.read(1) / px
        errors.append(np.stack([r - tr, a - ta])[:, moving])
    errors = np.array(errors)                         # (pairs, 2, moving nodes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        common = np.nanmean(errors, axis=0)
    rms = lambda x: float(np.sqrt(np.nanmean(x ** 2)))  # noqa: E731
    return dict(valid=float(ok.sum() / moving.sum()), rmse=rms(e[ok]),
                median=float(np.median(e[ok])), pair_rmse=rms(np.hypot(*errors.transpose(1, 0, 2))),
                common=rms(np.hypot(*common)), rest=rms(np.hypot(*(errors - common).transpose(1, 0, 2))),
                smoothing=rms(np.array(smoothing)), wall=wall)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args(argv)
    print("| seed | moving nodes valid % | mean velocity RMSE / median (px per interval) "
          "| per-pair RMSE px | common to all pairs px | rest px | window smoothing of the truth px "
          "| wall s |")
    print("|---" * 8 + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            m = run(seed, pathlib.Path(tmp))
            print(f"| {seed} | {100 * m['valid']:.0f} | {m['rmse']:.3f} / {m['median']:.3f} | "
                  f"{m['pair_rmse']:.3f} | {m['common']:.3f} | {m['rest']:.3f} | "
                  f"{m['smoothing']:.3f} | {m['wall']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
