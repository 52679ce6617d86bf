"""Outputs of the DEM-differencing product: the rasters written block by block (with the
hypsometric void filling), the per-glacier table and GeoPackage, report, figures, quick-look
and metadata records, all staged and moved into OUTDIR when complete.
"""

from __future__ import annotations

import contextlib
import glob
import os

import numpy as np

from ..core.atomic import staged_dir
from ..core.records import write_json, write_records
from ..core.quicklook import raster_quicklook
from ..core.raster import TiledWriter
from ..core import terrain
from .tables import fill_block, glacier_table


_STEP_TEXT = {"nuth_kaab": "Nuth & Kaab (2011) co-registration",
              "vertical_shift": "vertical shift", "deramp": "deramp (plane)"}


def write_outputs(outdir, pair, setup, results, gdf, report, opts) -> int:
    """Fill, write the rasters block by block, then tables, figures and records.

    ``pair`` is the :class:`.product.DemPair` of the run, ``setup`` its
    :class:`.blocks.BlockSetup` and ``results`` the :class:`.blocks.BlockResults` of the
    block passes, whose dh and aligned TBA wait in ``setup.scratch`` (deleted here block by
    block); ``gdf`` the glacier outlines (or None), ``report`` the product report (its sign
    convention, software and vertical reference tag the rasters).  Returns the number of
    void-filled pixels.

    Examples
    --------
    >>> write_outputs("out", pair, setup, results, None, report, options)  # doctest: +SKIP
    """
    from . import figures

    grid, d_ref, d_tba, years = pair.grid, pair.d_ref, pair.d_tba, pair.years
    parts, tables, dec, cb = results.parts, results.tables, results.decimated, results.bias

    d1, d2 = sorted((d_ref, d_tba))
    tags = {"date_earlier": d1.isoformat(), "date_later": d2.isoformat(),
            "sign_convention": report["sign_convention"], "software": report["software"],
            "vertical_reference": report["vertical_reference"]}
    res, k = grid.res, setup.decimate
    nlab = 0
    if setup.labels_path:
        labels_all = np.load(setup.labels_path, mmap_mode="r")
        nlab = int(len(gdf)) + 1
    acc = {n: np.zeros(nlab) for n in ("count", "valid", "sums", "nfill")}
    dh_dec = []
    with staged_dir(outdir, "dem-change") as stage:
        # The writers publish their COGs when they close: before the records are made.
        with contextlib.ExitStack() as writers:
            w_dh = writers.enter_context(TiledWriter(
                stage / "dh.tif", grid, count=2, units=["m", "1"], tags=tags | {"units": "m"},
                descriptions=[f"elevation change {d1} to {d2} (m, later minus earlier)",
                              "1 = void filled (hypsometric), 0 = measured"]))
            # two DEMs of one epoch (a co-registration check of two sources) have no rate
            w_rate = writers.enter_context(TiledWriter(
                stage / "dhdt.tif", grid, units="m/yr", tags=tags | {"units": "m/yr"},
                descriptions=[f"rate of elevation change {d1} to {d2} (m/yr)"])) if years > 0 else None
            w_al = writers.enter_context(TiledWriter(
                stage / "tba_coregistered.tif", grid, units="m", tags=tags | {"units": "m"},
                descriptions=["TBA DEM co-registered and bias-corrected onto REF (m)"]))
            for p in parts:
                r0, r1 = p["span"]
                dh = np.load(os.path.join(setup.scratch, f"dh_{r0}.npy"))
                filled = np.zeros(dh.shape, bool)
                if setup.labels_path:
                    labels = np.asarray(labels_all[r0:r1])
                    ref_file = os.path.join(setup.scratch, f"ref_{r0}.npy")
                    if p["void_labels"].size and tables:
                        filled = fill_block(dh, labels, np.load(ref_file), tables, setup.band)
                    fin = np.isfinite(dh)
                    acc["count"] += np.bincount(labels.ravel(), minlength=nlab)[:nlab]
                    acc["valid"] += np.bincount(labels[fin], minlength=nlab)[:nlab]
                    acc["sums"] += np.bincount(labels[fin], weights=dh[fin].astype(float),
                                               minlength=nlab)[:nlab]
                    acc["nfill"] += np.bincount(labels[filled], minlength=nlab)[:nlab]
                w_dh.write([dh, filled.astype(np.float32)], r0)
                if w_rate is not None:
                    w_rate.write((dh / years).astype(np.float32), r0)
                w_al.write(np.load(os.path.join(setup.scratch, f"aligned_{r0}.npy")), r0)
                dh_dec.append(dh[np.arange((-r0) % k, r1 - r0, k), ::k])
                for f in glob.glob(os.path.join(setup.scratch, f"*_{r0}.npy")):
                    os.unlink(f)
        n_filled = int(acc["nfill"].sum())
        s_after = report["statistics"]["after"]["stable"]
        if setup.labels_path:
            table = glacier_table(gdf, acc["count"], acc["valid"], acc["sums"], acc["nfill"],
                                   res, years, s_after["nmad"], report["variogram"]["range_m"],
                                   opts)
            table.to_csv(stage / "glaciers.csv", index=False, float_format="%.6g")
            # GeoPackage field names are case-insensitive: 'Name' and 'name' collide.
            taken = {c.lower() for c in table.columns}
            out = gdf.drop(columns=[c for c in gdf.columns
                                    if c.lower() in taken and c != gdf.geometry.name])
            out = out.join(table).set_geometry(gdf.geometry.name)
            out.to_file(stage / "glaciers.gpkg", driver="GPKG")
        write_json(stage / "report.json", report | {"void_filled_pixels": n_filled})
        (stage / "figures").mkdir()
        figures.histograms(stage / "figures" / "dh_histogram.png", dec["before"], dec["after"],
                           report["statistics"])
        if cb is not None:
            figures.curvature(stage / "figures" / "curvature_bias.png", cb)
        nk = next((s for s in (report["coregistration"]["pipeline"] or {}).get("steps", [])
                   if s.get("name") == "NuthKaab"), None)
        if nk:
            figures.nuth_kaab(stage / "figures" / "nuth_kaab.png", dec["ref"], dec["tba"],
                              (res[0] * k, res[1] * k), nk)
        b = grid.bounds
        dh_q = np.concatenate(dh_dec)
        shade = terrain.hillshade(dec["ref"], (res[0] * k, res[1] * k))
        lim = float(np.nanpercentile(np.abs(dh_q), 98)) if np.isfinite(dh_q).any() else 1.0
        raster_quicklook(stage / "quicklook.png", dh_q, extent=(b[0], b[2], b[1], b[3]),
                         cmap="RdBu", label="dh (m)", vmin=-lim, vmax=lim, background=shade,
                         title=f"Elevation change {d1} to {d2} (m)", diverging=True)
        quality = (f"stable terrain after co-registration: median {s_after['median']:.2f} m, "
                   f"NMAD {s_after['nmad']:.2f} m over {s_after['count']} pixels")
        steps = report["coregistration"]["steps"]
        coreg_text = ", ".join(_STEP_TEXT.get(s, s) for s in steps) or "no co-registration"
        kernel = (report["curvature_bias"] or {}).get("kernel")
        bias_text = ((("resolution-bias correction as a smoothing of the sharper DEM (Gaussian "
                       "high-passes of " + ", ".join(f"{v:g}" for v in kernel["sigmas_px"])
                       + " px), then " if kernel else "")
                      + "curvature-dependent bias correction (" + " x ".join(
                          report["curvature_bias"]["variables"]) + ")") if cb is not None
                     else "no curvature-bias correction")
        ranges = [p["ref_range"] for p in results.parts if p.get("ref_range")]
        altitude = ((min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None)
        write_records(
            stage, item_id=f"dem_change_{d1:%Y%m%d}_{d2:%Y%m%d}", grid=grid, start=d1, end=d2,
            altitude_range=altitude,
            title={"en": f"Glacier elevation change {d1} to {d2}"},
            abstract=(f"Elevation change from differencing {os.path.basename(report['reference_dem'])}"
                      f" and {os.path.basename(report['tba_dem'])} after {coreg_text} and "
                      f"{bias_text} on stable terrain. {quality}."),
            source=f"{os.path.basename(report['reference_dem'])} ({d_ref}), "
                   f"{os.path.basename(report['tba_dem'])} ({d_tba})",
            method=(f"{coreg_text} fitted on stable terrain; {bias_text}; hypsometric void "
                    "filling; per-glacier uncertainty from a spherical variogram of stable dh "
                    "(Rolstad et al. 2009); density 850 +- 60 kg m-3"),
            quality=quality, place=opts.place, licence=opts.licence,
            temporal_resolution=f"{report['years']:.2f} years",
            keywords=("glacier", "elevation change", "DEM", "mass balance", "cryosphere"))
    return n_filled
