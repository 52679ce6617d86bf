"""The optical velocity series end to end, on a Karakoram-like synthetic series and the real
Kaiserberg orthophotos, and GLAFT's quality figures against its published values.

1. Karakoram-like: four yearly Landsat-7-like pairs of one valley glacier (768² px of 15 m,
   6 px/yr on the centreline, the last two with SLC-off gaps), named in a pairs file, through
   ``cryokit velocity-series --period year``: per year the RMSE against the truth (m/yr, all
   nodes), the stable-ground NMAD the product states, and the mean's RMSE.
2. Kaiserberg: the four real orthophotos (1953-2023, 1 m) with orientation correlation: periods,
   median creep on the rock glacier and on stable ground, wall time.
3. GLAFT metrics on GLAFT's own Kaskawulsh demo velocity (``kaskawulsh_glaft_reference``)
   against the values its quickstart publishes for the same files.

Run: ``python benchmarks/velocity_series.py`` (needs ``../shared/data``).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import rasterio

from cryokit.core.raster import read_grid
from cryokit.core.vector import load_mask
from cryokit.velocity import quality
from cryokit.velocity.accuracy import truth_at_nodes

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "velocity"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "velocity"))
from test_velocity_series import write_karakoram  # noqa: E402


def _cli(*args) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cryokit", "-q", *map(str, args)], check=False)
    return time.perf_counter() - t


def karakoram(tmp: pathlib.Path) -> None:
    images, truth = write_karakoram(tmp)    # the test's scene: the same files
    out = tmp / "karakoram"
    wall = _cli("velocity-series", *images, "-o", out, "--pairs", tmp / "pairs.csv",
                "--stable-mask", tmp / "stable.tif", "--search", 16)
    rep = json.loads((out / "report.json").read_text())
    print("| year | pair | SLC-off | RMSE m/yr (px) | stable NMAD x / y m/yr | GLAFT delta x / y m/yr |")
    print("|---|---|---|---|---|---|")
    for per, ((t1, t2), p) in zip(rep["periods"], truth.items()):
        with rasterio.open(out / per["file"]) as ds:
            vx, vy = ds.read(1), ds.read(2)
        tx, ty = truth_at_nodes(p.dx, p.dy, vx.shape, 16, 40)
        k = 15.0 / (t2 - t1).days * 365.25
        rmse = float(np.sqrt(np.nanmean((vx - tx * k) ** 2 + (vy + ty * k) ** 2)))
        sg, qm = per["stable_ground"], per["quality_metrics"]["static_terrain"]
        print(f"| {per['period']} | {per['pairs'][0]} | {'yes' if p.params['slc_off'] else 'no'} "
              f"| {rmse:.2f} ({rmse / k:.3f}) | {sg['nmad'][0]:.2f} / {sg['nmad'][1]:.2f} "
              f"| {qm['delta'][0]:.2f} / {qm['delta'][1]:.2f} |")
    print(f"\nfour pairs of 768², periods, mean and cube: {wall:.1f} s wall "
          f"(cryokit velocity-series, fresh process)\n")


def kaiserberg(tmp: pathlib.Path) -> None:
    k = DATA / "kaiserberg_rockglacier_ortho"
    out = tmp / "kaiserberg"
    wall = _cli("velocity-series", *[k / f"{y}_ortho_1m_RG_rend_bw.tif" for y in (1953, 1970, 2003, 2023)],
                "--dates", "1953-09-02", "--dates", "1970-09-02", "--dates", "2003-09-01",
                "--dates", "2023-09-01", "--matcher", "oc", "--stable-mask",
                k / "Area_outside_rock_glacier.shp", "-o", out)
    rep = json.loads((out / "report.json").read_text())
    grid = read_grid(out / "mean_velocity.tif")
    inside = load_mask(str(k / "Area_inside_rock_glacier.shp"), grid, None)
    outside = load_mask(str(k / "Area_outside_rock_glacier.shp"), grid, None)
    print("| product | pairs | rock glacier median speed m/yr | valid on it % | stable median m/yr | stable NMAD x / y m/yr |")
    print("|---|---|---|---|---|---|")
    for per in [*rep["periods"], {"period": "mean", "pairs": [p["pair"] for p in rep["pairs"]], **rep["mean"]}]:
        with rasterio.open(out / per["file"]) as ds:
            v = ds.read(3)
        sg = per["stable_ground"]
        print(f"| {per['period']} | {', '.join(per['pairs'])} | {np.nanmedian(v[inside]):.3f} | "
              f"{100 * np.isfinite(v[inside]).mean():.0f} | {np.nanmedian(v[outside]):.4f} | "
              f"{sg['nmad'][0]:.4f} / {sg['nmad'][1]:.4f} |")
    print(f"\nthree pairs, periods, mean, cube: {wall:.1f} s wall\n")


def glaft() -> None:
    g = DATA / "kaskawulsh_glaft_reference"
    v = [rasterio.open(g / f"20180304-20180405_velo-raw_{c}.tif").read(1, masked=True)
         .filled(np.nan).astype(float) for c in ("vx", "vy")]
    grid = read_grid(g / "20180304-20180405_velo-raw_vx.tif")
    stable = load_mask(str(g / "bedrock_V2.shp"), grid, None)
    ice = load_mask(str(g / "glacier_V1_Kaskawulsh_s_inwardBuffer600m.shp"), grid, None)
    t = time.perf_counter()
    m = quality.glaft_metrics(*v, stable, ice, 60.0, 60.0, "m/d")
    wall = time.perf_counter() - t
    st, sr = m["static_terrain"], m["along_flow_strain"]
    print("| figure | cryokit | GLAFT published |")
    print("|---|---|---|")
    print(f"| static terrain delta x / y (m/d) | {st['delta'][0]:.4f} / {st['delta'][1]:.4f} | 0.1501 / 0.1598 |")
    print(f"| static terrain KDE peak (m/d) | {st['peak'][0]:.4f} / {st['peak'][1]:.4f} | -0.0195 / -0.0245 |")
    print(f"| incorrect-match share | {100 * st['outside_share']:.1f} % | 7.1 % |")
    print(f"| along-flow strain delta x'x' / x'y' | {sr['delta'][0]:.6f} / {sr['delta'][1]:.6f} | 0.001755 / 0.001646 |")
    print(f"\nboth metrics on 926 x 602 px: {wall:.1f} s\n")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        karakoram(tmp)
        kaiserberg(tmp)
    glaft()


if __name__ == "__main__":
    main()
