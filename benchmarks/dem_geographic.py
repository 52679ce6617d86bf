"""Benchmark: SRTM-like against FABDEM-like DEMs as they are delivered (EPSG:4326, heights above
EGM96 and EGM2008), cryokit ``dem-change`` against xDEM on the same case, one run.

Case: the real NPI DEM ``dem/longyearbyen/DEM_1990.tif`` (20 m, EPSG:25833, 78 N) taken as
ellipsoidal truth. REF ("FABDEM"): block-averaged onto a 1 x 4.7 arcsec grid (30 m) and
written as heights above a synthetic EGM2008 geoid; TBA ("SRTM"): the terrain moved by
(+9.3 m E, -5.7 m N), -2.5 m, + N(0, 1 m), averaged onto a 3 x 14 arcsec grid (90 m), heights
above a synthetic EGM96 geoid (EGM2008 - EGM96 = 0.9 m + 0.4 m per degree of longitude: the
real difference is of this size). The geoid grids carry PROJ's file names, found through
``CRYOKIT_GEOID_DIR``. Stable terrain: class 1 of the stable/glacier mask.

cryokit: ``dem-change --ref-vref egm2008 --tba-vref egm96 --coreg nuth_kaab,vertical_shift
--no-curvature-bias`` (common grid: SRTM's 90 m in the UTM zone of REF's centre). xDEM: the
same geoids added by hand (its own vertical CRS handling needs the PROJ grids too), both DEMs
reprojected to EPSG:32633 at 90 m (average for the 30 m REF, bilinear for TBA, as cryokit
resamples), NuthKaab + VerticalShift on the same stable mask. Fresh
process per tool; wall time includes reading, reprojection and writing for cryokit.

    /tmp/peers/bin/python benchmarks/dem_geographic.py     # needs xdem
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dem" / "longyearbyen"
DX, DY, DZ, SIGMA = 9.3, -5.7, -2.5, 1.0
LAT_M, LON_M = 111_600.0, 22_950.0      # metres per degree at 78.1 N


def n96(lon, lat):
    return 30.0 + 0.8 * (lon - 15.5) + 0.5 * (lat - 78.2)


def n08(lon, lat):
    return n96(lon, lat) + 0.9 + 0.4 * (lon - 15.5)


def _geographic(z, tr, crs, metres, geoid, path, blur=0.0):
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import calculate_default_transform, reproject

    from cryokit.core.raster import Grid, write_cog
    h, w = z.shape
    bounds = rasterio.transform.array_bounds(h, w, tr)
    gt, gw, gh = calculate_default_transform(crs, "EPSG:4326", w, h, *bounds,
                                             resolution=(metres / LON_M, metres / LAT_M))
    out = np.full((gh, gw), np.nan, np.float32)
    reproject(z.astype(np.float32), out, src_transform=tr, src_crs=crs, dst_transform=gt,
              dst_crs="EPSG:4326", src_nodata=np.nan, dst_nodata=np.nan,
              resampling=Resampling.average)
    if blur:
        # SRTM's effective resolution is coarser than its pixel: a further Gaussian of `blur`
        # pixels. Its padding by edge copies is not terrain: 6 pixels of each edge are cut.
        from scipy import ndimage
        ok = np.isfinite(out)
        out = np.where(ok, ndimage.gaussian_filter(np.where(ok, out, np.nanmean(out)), blur,
                                                   mode="nearest"), np.nan).astype(np.float32)
        out[:6], out[-6:], out[:, :6], out[:, -6:] = np.nan, np.nan, np.nan, np.nan
    cols, rows = np.meshgrid(np.arange(gw) + 0.5, np.arange(gh) + 0.5)
    lon, lat = gt.c + gt.a * cols, gt.f + gt.e * rows
    write_cog(path, (out - geoid(lon, lat)).astype(np.float32),
              Grid(rasterio.crs.CRS.from_epsg(4326), gt, gw, gh), units="m")


def _geoid_file(path, fn):
    import rasterio
    from affine import Affine

    from cryokit.core.raster import Grid, write_cog
    lon = np.arange(14.0, 17.0, 0.05) + 0.025
    lat = np.arange(79.0, 77.5, -0.05) - 0.025
    LON, LAT = np.meshgrid(lon, lat)
    write_cog(path, fn(LON, LAT).astype(np.float32),
              Grid(rasterio.crs.CRS.from_epsg(4326), Affine(0.05, 0, 14.0, 0, -0.05, 79.0),
                   lon.size, lat.size), units="m")


def make_case(d: Path, blur: float = 0.0) -> None:
    import rasterio
    from scipy import ndimage
    with rasterio.open(DATA / "DEM_1990.tif") as src:
        z = src.read(1, masked=True).astype(np.float64).filled(np.nan)
        tr, crs = src.transform, src.crs
    filled = np.where(np.isfinite(z), z, np.nanmean(z))
    moved = ndimage.shift(filled, (-DY / 20, DX / 20), order=3, mode="nearest")
    tba = np.where(np.isfinite(z), moved + DZ + np.random.default_rng(42).normal(0, SIGMA, z.shape),
                   np.nan)
    _geographic(z, tr, crs, 30.0, n08, d / "fabdem_2019.tif")
    _geographic(tba, tr, crs, 90.0, n96, d / "srtm_2000.tif", blur)
    (d / "geoids").mkdir(exist_ok=True)
    _geoid_file(d / "geoids" / "us_nga_egm96_15.tif", n96)
    _geoid_file(d / "geoids" / "us_nga_egm08_25.tif", n08)


def curvature_correlation(dh, transform, crs) -> tuple[float, float]:
    """|corr(dh, maximum curvature)| and |corr(dh, Laplacian)| on stable terrain, curvatures of
    the 30 m REF averaged onto dh's grid (the same measure for both tools)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from cryokit.core.terrain import principal_curvatures
    ref = np.full(dh.shape, np.nan)
    m = np.zeros(dh.shape, np.uint8)
    with rasterio.open(d_case / "fabdem_2019.tif") as src:
        reproject(rasterio.band(src, 1), ref, dst_transform=transform, dst_crs=crs,
                  dst_nodata=np.nan, resampling=Resampling.average)
    with rasterio.open(DATA / "derived" / "landcover_mask_1990grid_1stable_2glacier.tif") as src:
        reproject(rasterio.band(src, 1), m, dst_transform=transform, dst_crs=crs,
                  resampling=Resampling.nearest)
    kmax, kmin = principal_curvatures(ref, (transform.a, -transform.e))
    ok = (m == 1) & np.isfinite(dh) & np.isfinite(kmax) & np.isfinite(kmin)
    return (abs(float(np.corrcoef(dh[ok], kmax[ok])[0, 1])),
            abs(float(np.corrcoef(dh[ok], (kmax + kmin)[ok])[0, 1])))


d_case = Path(".")


def run_cryokit(d: Path, curvature: bool = False) -> dict:
    out = d / "cryokit"
    env = os.environ | {"CRYOKIT_GEOID_DIR": str(d / "geoids")}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cryokit", "-q", "dem-change", str(d / "fabdem_2019.tif"),
                    str(d / "srtm_2000.tif"), "-o", str(out), "--ref-date", "2019-06-01",
                    "--tba-date", "2000-02-15", "--ref-vref", "egm2008", "--tba-vref", "egm96",
                    "--stable-mask", str(DATA / "derived" / "landcover_mask_1990grid_1stable_2glacier.tif"),
                    "--stable-values", "1"] + ([] if curvature else ["--no-curvature-bias"]),
                   check=True, env=env)
    wall = time.perf_counter() - t
    rep = json.loads((out / "report.json").read_text())
    c, st = rep["coregistration"], rep["statistics"]["after"]["stable"]
    import rasterio
    with rasterio.open(out / "dh.tif") as src:
        corr = curvature_correlation(src.read(1).astype(np.float64), src.transform, src.crs)
    return {"tool": "cryokit" + (" (kernel + curvature table)" if curvature else ""),
            "wall_s": wall, "shift": [c["shift_x"], c["shift_y"], c["shift_z"]],
            "median": st["median"], "nmad": st["nmad"], "corr": corr,
            "grid": f"{rep['grid']['crs']} {rep['grid']['res_m'][0]:g} m"}


def run_xdem(d: Path, curvature: bool = False) -> dict:
    import rasterio
    import xdem
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    t = time.perf_counter()
    dems = []
    for name, geoid in (("fabdem_2019.tif", n08), ("srtm_2000.tif", n96)):
        dem = xdem.DEM(str(d / name))
        tr = dem.transform
        h, w = dem.shape
        cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        lon, lat = tr.c + tr.a * cols, tr.f + tr.e * rows
        dem = dem + geoid(lon, lat).astype(np.float32)       # to the ellipsoid by hand
        # as cryokit does: average where coarsening (REF 30 -> 90 m), bilinear otherwise
        dems.append(dem.reproject(crs="EPSG:32633", res=90.0,
                                  resampling="average" if name.startswith("fabdem") else "bilinear"))
    ref, tba = dems
    tba = tba.reproject(ref)
    with rasterio.open(DATA / "derived" / "landcover_mask_1990grid_1stable_2glacier.tif") as src:
        m = np.zeros(ref.shape, np.uint8)
        reproject(rasterio.band(src, 1), m, dst_transform=ref.transform, dst_crs=ref.crs,
                  resampling=Resampling.nearest)
    stable = m == 1
    pipe = xdem.coreg.NuthKaab() + xdem.coreg.VerticalShift()
    pipe.fit(ref, tba, inlier_mask=stable)
    aligned = pipe.apply(tba).reproject(ref)
    if curvature:
        curv = xdem.terrain.max_curvature(ref)
        tb = xdem.coreg.TerrainBias(terrain_attribute="max_curvature")
        tb.fit(ref, aligned, inlier_mask=stable, bias_vars={"max_curvature": curv})
        aligned = tb.apply(aligned, bias_vars={"max_curvature": curv})
    wall = time.perf_counter() - t
    dh = (ref - aligned).data.filled(np.nan)
    s = dh[stable & np.isfinite(dh)]
    nk = pipe.pipeline[0]
    sx, sy, sz = (float(v) for v in nk.to_translations()) if hasattr(nk, "to_translations") else (np.nan,) * 3
    corr = curvature_correlation(dh.astype(np.float64), ref.transform, ref.crs)
    return {"tool": f"xDEM {xdem.__version__}" + (" (+ TerrainBias max curvature)" if curvature else ""),
            "wall_s": wall, "shift": [sx, sy, sz], "corr": corr,
            "median": float(np.median(s)), "nmad": float(1.4826 * np.median(np.abs(s - np.median(s)))),
            "grid": "EPSG:32633 90 m"}


def main() -> None:
    global d_case
    cases = (("datums, shift", 0.0, False), ("SRTM blur 1 px: resolution bias", 1.0, True))
    print("| case | tool | common grid | wall s | shift x / y / z (m) | error x / y (m) | "
          "stable median (m) | stable NMAD (m) | abs corr(dh, max curvature / Laplacian) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case, blur, curvature in cases:
        with tempfile.TemporaryDirectory() as tmp:
            d = d_case = Path(tmp)
            make_case(d, blur)
            rows = [run_cryokit(d, curvature)]
            try:
                rows.append(run_xdem(d, curvature))
            except ImportError:
                print("xdem is not installed: cryokit only")
        for r in rows:
            sx, sy, sz = r["shift"]
            print(f"| {case} | {r['tool']} | {r['grid']} | {r['wall_s']:.1f} | {sx:+.2f} / {sy:+.2f} / "
                  f"{sz:+.2f} | {sx + DX:+.2f} / {sy + DY:+.2f} | {r['median']:+.3f} | "
                  f"{r['nmad']:.3f} | {r['corr'][0]:.3f} / {r['corr'][1]:.3f} |")


if __name__ == "__main__":
    main()
