"""The DEM-differencing product: REF + TBA DEMs -> co-registered dh, dh/dt, per-glacier change.

Reading, grid alignment, vertical references and writing live here; the algorithms are in
:mod:`.coreg`, :mod:`.bias`, :mod:`.terrain`, :mod:`.stats`, :mod:`.voids` and
:mod:`.uncertainty`. Everything is checked before anything is written; outputs are staged and
moved into OUTDIR when complete.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
from rasterio.enums import Resampling

from .. import __version__
from ..atomic import staged_dir
from ..dates import parse_date
from ..errors import UserError
from ..product import write_json, write_records
from ..quicklook import raster_quicklook
from ..raster import Grid, read_band, read_grid, reproject_band, write_cog
from . import bias, coreg, stats, terrain, uncertainty, voids

COREG_STEPS = {"nuth_kaab": coreg.NuthKaab, "vertical_shift": coreg.VerticalShift,
               "deramp": coreg.Deramp}
ICE_DENSITY, ICE_DENSITY_ERR = 850.0, 60.0   # kg m-3, Huss (2013)
CONVENTION = "dh = later DEM minus earlier DEM (metres); negative = surface lowering"


@dataclass(frozen=True)
class DemChangeOptions:
    grid: str = "coarser"                   # coarser | ref | tba
    coreg: tuple[str, ...] = ("nuth_kaab", "vertical_shift")
    curvature_bias: bool = True
    curvature_second: str = "min_curvature"  # min_curvature | elevation | none
    ref_vref: str | None = None             # "ellipsoid" or a geoid grid file; None = undeclared
    tba_vref: str | None = None
    id_column: str | None = None
    name_column: str | None = None
    place: str | None = None
    licence: str = "CC-BY-4.0"


CURVATURE_SECOND = ("min_curvature", "elevation", "none")


def parse_coreg(text: str) -> tuple[str, ...]:
    """``"nuth_kaab,deramp"`` -> steps, checked; ``"none"`` or ``""`` -> no co-registration."""
    steps = tuple(s.strip().lower() for s in text.split(",") if s.strip())
    if steps in ((), ("none",)):
        return ()
    bad = [s for s in steps if s not in COREG_STEPS]
    if bad:
        raise UserError(f"unknown --coreg step(s) {', '.join(bad)}; choose from "
                        f"{', '.join(COREG_STEPS)} (comma-separated, in pipeline order)")
    return steps


# ----------------------------------------------------------------------------- inputs

def _target_grid(ref: str, tba: str, mode: str) -> tuple[Grid, Grid, Grid]:
    g_ref, g_tba = read_grid(ref), read_grid(tba)
    for g, p in ((g_ref, ref), (g_tba, tba)):
        if g.crs is None:
            raise UserError("has no coordinate reference system", p)
    if mode not in ("coarser", "ref", "tba"):
        raise UserError(f"--grid must be coarser, ref or tba, got {mode!r}")
    if mode == "coarser":
        mode = "tba" if abs(g_tba.res[0]) > abs(g_ref.res[0]) * 1.001 else "ref"
    grid = g_ref if mode == "ref" else g_tba
    if grid.crs.is_geographic:
        raise UserError("is in geographic coordinates; DEM differencing needs a projected CRS "
                        "in metres", ref if mode == "ref" else tba)
    return grid, g_ref, g_tba


def _on_grid(path: str, src: Grid, grid: Grid) -> np.ndarray:
    """The DEM on ``grid``: read directly when it is the grid, else resampled (average when
    coarsening, bilinear otherwise)."""
    if src.same_as(grid):
        return read_band(path)
    coarser = abs(grid.res[0]) > abs(src.res[0]) * 1.5
    return reproject_band(path, grid, resampling=Resampling.average if coarser
                          else Resampling.bilinear)


def _to_ellipsoid(z: np.ndarray, grid: Grid, vref: str, path: str) -> np.ndarray:
    """Heights above a geoid (grid of undulation N, metres, any GDAL raster PROJ reads, e.g.
    a PROJ-data GeoTIFF) -> ellipsoidal heights h = H + N."""
    if vref == "ellipsoid":
        return z
    n = reproject_band(vref, grid, resampling=Resampling.bilinear)
    if not np.isfinite(n[np.isfinite(z)]).any():
        raise UserError(f"geoid grid does not cover the DEM {os.path.basename(path)}", vref)
    return z + n


def _vertical(ref_z, tba_z, grid, opts: DemChangeOptions, ref, tba) -> tuple:
    r, t = opts.ref_vref, opts.tba_vref
    if r is None or t is None or r == t:
        return ref_z, tba_z, r or t or "undeclared (both DEMs taken as on the same reference)"
    for v, p in ((r, ref), (t, tba)):
        if v != "ellipsoid" and not os.path.exists(v):
            raise UserError(f"vertical reference of {os.path.basename(p)} is neither "
                            "'ellipsoid' nor an existing geoid grid file", v)
    return (_to_ellipsoid(ref_z, grid, r, ref), _to_ellipsoid(tba_z, grid, t, tba),
            "ellipsoid (converted)")


def _glacier_labels(path: str, grid: Grid, id_column, name_column):
    """Rasterised outlines (labels 1..n) and the outlines table in the grid's CRS."""
    import geopandas as gpd
    from rasterio.features import rasterize

    try:
        gdf = gpd.read_file(path)
    except Exception:  # noqa: BLE001 - any OGR failure is a user error about this file
        raise UserError("not a vector file OGR can read", path) from None
    gdf = gdf[gdf.geometry.notna() & gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if gdf.empty:
        raise UserError("has no polygon", path)
    if gdf.crs is None:
        raise UserError("has no coordinate reference system", path)
    gdf = gdf.to_crs(grid.crs).reset_index(drop=True)
    for col in (id_column, name_column):
        if col and col not in gdf.columns:
            raise UserError(f"has no column {col!r} (columns: {', '.join(map(str, gdf.columns))})",
                            path)
    labels = rasterize(((g, i + 1) for i, g in enumerate(gdf.geometry)), out_shape=grid.shape,
                       transform=grid.transform, fill=0, dtype="int32")
    if not (labels > 0).any():
        raise UserError("glacier outlines do not overlap the DEMs", path)
    return labels, gdf


# ----------------------------------------------------------------------------- product

def make_dem_change(ref: str, tba: str, outdir: str, *, ref_date: str, tba_date: str,
                    glaciers: str | None = None, stable_mask: str | None = None,
                    options: DemChangeOptions = DemChangeOptions()) -> dict:
    """Make the elevation-change product of REF and TBA in ``outdir``; return the report."""
    t0 = time.perf_counter()
    d_ref, d_tba = parse_date(ref_date, "--ref-date"), parse_date(tba_date, "--tba-date")
    if d_ref == d_tba:
        raise UserError(f"--ref-date and --tba-date are equal ({d_ref}): no time span")
    if options.curvature_second not in CURVATURE_SECOND:
        raise UserError(f"--curvature-second {options.curvature_second!r}: choose from "
                        f"{', '.join(CURVATURE_SECOND)}")
    grid, g_ref, g_tba = _target_grid(ref, tba, options.grid)
    ref_z, tba_z = _on_grid(ref, g_ref, grid), _on_grid(tba, g_tba, grid)
    for z, p in ((ref_z, ref), (tba_z, tba)):
        if not np.isfinite(z).any():
            raise UserError("has no valid elevation over the common grid (all nodata or no "
                            "overlap with the other DEM)", p)
    both = np.isfinite(ref_z) & np.isfinite(tba_z)
    if not both.any():
        raise UserError("the two DEMs do not overlap", tba)
    ref_z, tba_z, vref = _vertical(ref_z, tba_z, grid, options, ref, tba)
    labels, gdf = (None, None)
    if glaciers:
        labels, gdf = _glacier_labels(glaciers, grid, options.id_column, options.name_column)
    if stable_mask:
        from ..vector import load_mask
        stable = load_mask(stable_mask, grid)
    elif labels is not None:
        stable = labels == 0
    else:
        raise UserError("give --glaciers (stable terrain = outside the outlines) or --stable-mask")
    stable &= both
    if stable.sum() < 100:
        raise UserError(f"only {int(stable.sum())} stable pixels with both DEMs valid (need "
                        "100)", stable_mask or glaciers)
    t_read = time.perf_counter() - t0

    res = (abs(grid.res[0]), abs(grid.res[1]))
    before = ref_z - tba_z
    t = time.perf_counter()
    steps = [COREG_STEPS[s]() for s in options.coreg]
    pipe = coreg.CoregPipeline(steps) if steps else None
    aligned = tba_z
    if pipe is not None:
        try:
            pipe.fit(ref_z, tba_z, stable, grid.transform)
        except ValueError as e:
            raise UserError(f"co-registration failed: {e}", tba) from None
        aligned = pipe.apply(tba_z, grid.transform)
    t_coreg = time.perf_counter() - t
    curv_fit, curv, cb = None, None, None
    t = time.perf_counter()
    if options.curvature_bias:
        curv, kmin = terrain.principal_curvatures(ref_z, res)
        second = {"min_curvature": kmin, "elevation": ref_z}.get(options.curvature_second)
        cb = bias.CurvatureBias().fit(ref_z - aligned, curv, stable, second=second)
        # Curvature is undefined on the DEM's outer pixels: leave those uncorrected.
        aligned = aligned + np.nan_to_num(cb.predict(curv, second), nan=0.0)
        curv_fit = {"variables": ["max_curvature"] + ([options.curvature_second] if second is not None else []),
                    "units": "curvature in 100 m^-1, bias in m (added to TBA)", **cb.meta}
    t_bias = time.perf_counter() - t
    after = ref_z - aligned
    later_first = d_ref > d_tba
    dh = after if later_first else -after          # later minus earlier
    years = abs((d_ref - d_tba).days) / 365.25
    glacier_mask = labels > 0 if labels is not None else ~stable & both
    filled = np.zeros(dh.shape, bool)
    if labels is not None:
        dh, filled = voids.fill_hypsometric(dh, ref_z, labels)
    dhdt = dh / years
    st = {"before": {"stable": stats.dh_stats(before, stable),
                     "glacier": stats.dh_stats(before, glacier_mask)},
          "after": {"stable": stats.dh_stats(after, stable),
                    "glacier": stats.dh_stats(after, glacier_mask)}}
    vario = uncertainty.variogram(after, stable, res[0])
    shift = (pipe.meta.get("shift_x", 0.0), pipe.meta.get("shift_y", 0.0),
             pipe.meta.get("shift_z", 0.0)) if pipe else (0.0, 0.0, 0.0)
    table = _glacier_table(gdf, labels, dh, filled, res, years, st["after"]["stable"]["nmad"],
                           vario["range_m"], options) if labels is not None else None
    report = {
        "product": "glacier elevation change from DEM differencing",
        "software": f"cryokit {__version__}",
        "reference_dem": os.path.abspath(ref), "tba_dem": os.path.abspath(tba),
        "dates": {"ref": d_ref.isoformat(), "tba": d_tba.isoformat()},
        "years": years, "sign_convention": CONVENTION, "vertical_reference": vref,
        "grid": {"crs": grid.crs.to_string(), "res_m": list(res), "shape": list(grid.shape),
                 "chosen": options.grid},
        "coregistration": {"steps": list(options.coreg), "shift_x": shift[0],
                           "shift_y": shift[1], "shift_z": shift[2],
                           "note": "translation (m) that, added to TBA's coordinates and "
                                   "elevations, aligns it on REF",
                           "pipeline": pipe.meta if pipe else None},
        "curvature_bias": curv_fit,
        "statistics": st, "variogram": vario,
        "void_filled_pixels": int(filled.sum()),
        "density_kg_m3": [ICE_DENSITY, ICE_DENSITY_ERR],
        "timings_s": {"read": round(t_read, 3), "coreg": round(t_coreg, 3),
                      "curvature_bias": round(t_bias, 3)},
    }
    _write(outdir, grid, ref_z, before, after, aligned, dh, dhdt, filled, cb, table, gdf,
           report, d_ref, d_tba, options)
    report["timings_s"]["total"] = round(time.perf_counter() - t0, 3)
    return report


def _glacier_table(gdf, labels, dh, filled, res, years, nmad_stable, range_m, options):
    import pandas as pd

    px_area = res[0] * res[1]
    n = labels.max()
    count = np.bincount(labels.ravel(), minlength=n + 1)
    fin = np.isfinite(dh)
    valid = np.bincount(labels[fin], minlength=n + 1)
    sums = np.bincount(labels[fin], weights=dh[fin].astype(float), minlength=n + 1)
    nfill = np.bincount(labels[filled], minlength=n + 1)
    rows = []
    for k in range(1, n + 1):
        area = count[k] * px_area
        mean = sums[k] / valid[k] if valid[k] else float("nan")
        err = uncertainty.mean_error(nmad_stable, area, range_m, px_area)
        rate = mean / years
        rate_err = err / years
        mb = rate * ICE_DENSITY / 1000.0
        mb_err = float(np.hypot(rate_err * ICE_DENSITY, rate * ICE_DENSITY_ERR) / 1000.0)
        g = gdf.iloc[k - 1]
        rows.append({
            "id": str(g[options.id_column]) if options.id_column else str(k),
            "name": str(g[options.name_column]) if options.name_column else "",
            "area_km2": area / 1e6, "valid_fraction": valid[k] / max(count[k], 1),
            "filled_fraction": nfill[k] / max(count[k], 1),
            "mean_dh_m": mean, "mean_dh_err_m": err, "dhdt_m_per_yr": rate,
            "dhdt_err_m_per_yr": rate_err, "volume_change_m3_per_yr": rate * area,
            "volume_change_err_m3_per_yr": rate_err * area,
            "mass_balance_mwe_per_yr": mb, "mass_balance_err_mwe_per_yr": mb_err})
    return pd.DataFrame(rows)


def _write(outdir, grid, ref_z, before, after, aligned, dh, dhdt, filled, cb, table, gdf,
           report, d_ref, d_tba, opts):
    from . import figures

    d1, d2 = sorted((d_ref, d_tba))
    tags = {"date_earlier": d1.isoformat(), "date_later": d2.isoformat(),
            "sign_convention": CONVENTION, "software": report["software"],
            "vertical_reference": report["vertical_reference"]}
    res = (abs(grid.res[0]), abs(grid.res[1]))
    with staged_dir(outdir) as stage:
        write_cog(stage / "dh.tif", [dh.astype(np.float32), filled.astype(np.float32)], grid,
                  units=["m", "1"], tags=tags | {"units": "m"},
                  descriptions=[f"elevation change {d1} to {d2} (m, later minus earlier)",
                                "1 = void filled (hypsometric), 0 = measured"])
        write_cog(stage / "dhdt.tif", dhdt.astype(np.float32), grid, units="m/yr",
                  tags=tags | {"units": "m/yr"},
                  descriptions=[f"rate of elevation change {d1} to {d2} (m/yr)"])
        write_cog(stage / "tba_coregistered.tif", aligned.astype(np.float32), grid, units="m",
                  tags=tags | {"units": "m"},
                  descriptions=["TBA DEM co-registered and bias-corrected onto REF (m)"])
        if table is not None:
            table.to_csv(stage / "glaciers.csv", index=False, float_format="%.6g")
            # GeoPackage field names are case-insensitive: 'Name' and 'name' collide.
            taken = {c.lower() for c in table.columns}
            out = gdf.drop(columns=[c for c in gdf.columns
                                    if c.lower() in taken and c != gdf.geometry.name])
            out = out.join(table).set_geometry(gdf.geometry.name)
            out.to_file(stage / "glaciers.gpkg", driver="GPKG")
        write_json(stage / "report.json", report)
        (stage / "figures").mkdir()
        figures.histograms(stage / "figures" / "dh_histogram.png", before, after,
                           report["statistics"])
        if cb is not None:
            figures.curvature(stage / "figures" / "curvature_bias.png", cb)
        nk = next((s for s in (report["coregistration"]["pipeline"] or {}).get("steps", [])
                   if s.get("name") == "NuthKaab"), None)
        if nk:
            figures.nuth_kaab(stage / "figures" / "nuth_kaab.png", ref_z, ref_z - before, res,
                              nk)
        b = grid.bounds
        shade = terrain.hillshade(ref_z, res)
        lim = float(np.nanpercentile(np.abs(dh), 98)) if np.isfinite(dh).any() else 1.0
        raster_quicklook(stage / "quicklook.png", dh, extent=(b[0], b[2], b[1], b[3]),
                         cmap="RdBu", label="dh (m)", vmin=-lim, vmax=lim, background=shade,
                         title=f"Elevation change {d1} to {d2} (m)", diverging=True)
        s_after = report["statistics"]["after"]["stable"]
        quality = (f"stable terrain after co-registration: median {s_after['median']:.2f} m, "
                   f"NMAD {s_after['nmad']:.2f} m over {s_after['count']} pixels")
        write_records(
            stage, item_id=f"dem_change_{d1:%Y%m%d}_{d2:%Y%m%d}", grid=grid, start=d1, end=d2,
            title={"en": f"Glacier elevation change {d1} to {d2}"},
            abstract=(f"Elevation change from differencing {os.path.basename(report['reference_dem'])}"
                      f" and {os.path.basename(report['tba_dem'])} after co-registration "
                      f"({', '.join(report['coregistration']['steps']) or 'none'}) and "
                      f"curvature-bias correction on stable terrain. {quality}."),
            source=f"{os.path.basename(report['reference_dem'])} ({d_ref}), "
                   f"{os.path.basename(report['tba_dem'])} ({d_tba})",
            method=("Nuth & Kaab (2011) co-registration, vertical shift and deramp fitted on "
                    "stable terrain; curvature-dependent bias correction; hypsometric void "
                    "filling; per-glacier uncertainty from a spherical variogram of stable dh "
                    "(Rolstad et al. 2009); density 850 +- 60 kg m-3"),
            quality=quality, place=opts.place, licence=opts.licence,
            temporal_resolution=f"{report['years']:.2f} years",
            keywords=("glacier", "elevation change", "DEM", "mass balance", "cryosphere"))

