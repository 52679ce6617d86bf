"""Tables of the DEM-differencing product: hypsometric band medians of all blocks, void filling
of one block from them, and the per-glacier change table (dh, dh/dt, volume and mass change).

Pure functions on arrays and the block results of :func:`.blocks.apply_block`; no I/O.
"""

from __future__ import annotations

import numpy as np

from . import uncertainty, voids

ICE_DENSITY, ICE_DENSITY_ERR = 850.0, 60.0   # kg m-3, Huss (2013)


def hypsometric_tables(parts) -> dict[int, tuple[int, np.ndarray]]:
    """Glacier k -> (first band, dh per band) from the kept glacier pixels of all blocks,
    for the glaciers with voids: :func:`.voids.fill_hypsometric` on one probe pixel per band.

    Parameters
    ----------
    parts : list of dict
        Block results with ``void_labels`` (labels of the glaciers with voids in the block)
        and ``hyps`` = (label, band number, dh) of the kept glacier pixels.

    Examples
    --------
    >>> hyps = (np.ones(30, int), np.repeat([4, 5, 6], 10), np.repeat([-1.0, -2.0, -3.0], 10))
    >>> first, med = hypsometric_tables([{"void_labels": np.array([1]), "hyps": hyps}])[1]
    >>> first, med.tolist()
    (4, [-1.0, -2.0, -3.0])
    """
    want = np.unique(np.concatenate([p["void_labels"] for p in parts]))
    if want.size == 0:
        return {}
    lab, band, dh = (np.concatenate(c) for c in zip(*(p["hyps"] for p in parts)))
    sel = np.isin(lab, want)
    lab, band, dh = lab[sel], band[sel], dh[sel]
    if lab.size == 0:
        return {}
    n = int(want.max()) + 1
    lo = np.full(n, np.iinfo(np.int32).max, np.int64)
    hi = np.full(n, np.iinfo(np.int32).min, np.int64)
    np.minimum.at(lo, lab, band)
    np.maximum.at(hi, lab, band)
    ks = [int(k) for k in want if lo[k] <= hi[k]]
    probe_lab = np.concatenate([np.full(hi[k] - lo[k] + 1, k) for k in ks])
    probe_band = np.concatenate([np.arange(lo[k], hi[k] + 1) for k in ks])
    # Band numbers as elevations with a band height of 1: the bands are exactly the same.
    out, filled = voids.fill_hypsometric(
        np.concatenate([dh, np.full(probe_lab.size, np.nan, np.float32)]),
        np.concatenate([band, probe_band]).astype(np.float64) + 0.5,
        np.concatenate([lab, probe_lab]), band=1.0)
    vals, got = out[dh.size:], filled[dh.size:]
    tables, start = {}, 0
    for k in ks:
        m = hi[k] - lo[k] + 1
        if got[start:start + m].all():
            tables[k] = (int(lo[k]), vals[start:start + m].copy())
        start += m
    return tables


def fill_block(dh, labels, ref_z, tables, band):
    """Fill the voids of one block from the band tables, in place; the filled-pixel mask.

    Examples
    --------
    >>> dh = np.array([[np.nan, np.nan, 5.0]])
    >>> filled = fill_block(dh, np.ones((1, 3), int), np.array([[10.0, 60.0, 70.0]]),
    ...                     {1: (0, np.array([-1.0, -2.0]))}, band=50.0)
    >>> dh.tolist(), filled.tolist()
    ([[-1.0, -2.0, 5.0]], [[True, True, False]])
    """
    filled = np.zeros(dh.shape, bool)
    if ref_z is None:
        return filled
    void = ~np.isfinite(dh) & (labels > 0) & np.isfinite(ref_z)
    for k in np.unique(labels[void]):
        if int(k) not in tables:
            continue
        lo, med = tables[int(k)]
        hole = void & (labels == k)
        b = np.clip(np.floor(ref_z[hole] / band).astype(int) - lo, 0, med.size - 1)
        dh[hole] = med[b]
        filled[hole] = True
    return filled


def glacier_table(gdf, count, valid, sums, nfill, res, years, nmad_stable, range_m, options):
    """Per-glacier change: one row per outline of ``gdf`` (label k = row k - 1).

    ``count``, ``valid``, ``sums`` and ``nfill`` are per-label pixel counts, valid-pixel
    counts, sums of dh (m) and filled-pixel counts; ``res`` the pixel size (m), ``years`` the
    time span; ``nmad_stable`` (m) and ``range_m`` the stable-terrain NMAD and variogram range
    of the uncertainty (:func:`.uncertainty.mean_error`).  Mass balance in m w.e. per year at
    :data:`ICE_DENSITY` +- :data:`ICE_DENSITY_ERR`.
    """
    import pandas as pd

    px_area = res[0] * res[1]
    nz = np.flatnonzero(count)
    n = int(nz[-1]) if nz.size else 0
    rows = []
    for k in range(1, n + 1):
        area = count[k] * px_area
        mean = sums[k] / valid[k] if valid[k] else float("nan")
        err = uncertainty.mean_error(nmad_stable, area, range_m, px_area)
        # one epoch (a check of two sources): no rate, volume or mass balance
        rate = mean / years if years > 0 else float("nan")
        rate_err = err / years if years > 0 else float("nan")
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
