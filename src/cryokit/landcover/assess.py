"""The ``landcover assess`` product: a class map against reference labels, read block by
block, to a JSON report with the accuracy of :mod:`.accuracy` and a confusion-matrix figure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .accuracy import _div, accuracy_metrics, area_adjusted


def _pixel_areas(grid, r0: int, r1: int) -> np.ndarray:
    """Area (m^2) of one pixel in each row r0..r1-1 (rows differ only on geographic grids)."""
    xres, yres = grid.res
    if grid.crs is not None and grid.crs.is_geographic:
        rows = np.arange(r0, r1) + 0.5
        lat = grid.transform.f + grid.transform.e * rows
        # Spherical approximation; enough for class proportions (errors cancel in W_i).
        return xres * 111320.0 * np.cos(np.radians(lat)) * yres * 110540.0
    return np.full(r1 - r0, xres * yres)


def _tally(map_path: str, grid, ref: np.ndarray, block: int):
    """Mapped area per code and the (map, reference) pairs, reading the map window by window."""
    from rasterio.windows import Window

    from ..core.raster import open_raster

    areas = np.zeros(256)
    counts = np.zeros(256, np.int64)
    pairs = np.zeros(256 * 256, np.int64)
    with open_raster(map_path) as ds:
        for r0 in range(0, grid.height, block):
            r1 = min(r0 + block, grid.height)
            data = ds.read(1, window=Window(0, r0, grid.width, r1 - r0), masked=True)
            valid = ~np.ma.getmaskarray(data)
            v = np.ma.getdata(data)
            if np.issubdtype(v.dtype, np.floating):
                valid &= np.isfinite(v)
                if np.any(v[valid] != np.round(v[valid])):
                    raise _user_error("map values must be integer class codes", map_path)
            codes = np.where(valid, v, 0).astype(np.int64)
            if codes.min() < 0 or codes.max() > 255:
                raise _user_error("map class codes must be 0..255 (0 = nodata)", map_path)
            px = _pixel_areas(grid, r0, r1)
            areas += np.bincount(codes.ravel(), weights=np.repeat(px, grid.width), minlength=256)
            counts += np.bincount(codes.ravel(), minlength=256)
            rr = ref[r0:r1]
            ok = (codes > 0) & (rr > 0)
            pairs += np.bincount(codes[ok] * 256 + rr[ok], minlength=256 * 256)
    areas[0], counts[0] = 0, 0
    return areas, counts, pairs.reshape(256, 256)


def _user_error(msg, path):
    from ..core.errors import UserError

    return UserError(msg, path)


def assess_map(map_path: str | os.PathLike, reference: str | os.PathLike,
               out: str | os.PathLike, *, column: str | None = None, legend=None,
               codes: Mapping[str, int] | None = None, all_touched: bool = False,
               block: int = 1024, figure: bool = True) -> dict:
    """Assess a class map against reference labels and write a JSON report (+ PNG figure).

    Parameters
    ----------
    map_path : class map (band 1 integer codes, 0/nodata = none); its embedded legend
        (``LEGEND`` tag or colour table) names the classes unless ``legend`` is given.
    reference : wall-to-wall raster, points or polygons (see :func:`.inputs.read_labels`),
        brought onto the map's grid.  Label names are matched to the legend's names.
    out : report path (JSON); the confusion-matrix figure goes beside it as ``<stem>.png``.

    Returns
    -------
    The report dict (also written to ``out``).

    Examples
    --------
    >>> rep = assess_map("map.tif", "strata.tif", "report.json")  # doctest: +SKIP
    >>> rep["overall_accuracy"]                                    # doctest: +SKIP
    0.54
    """
    from ..core.errors import UserError
    from ..core.records import json_safe, write_json
    from ..core.raster import read_grid
    from .inputs import read_labels, read_raster_legend

    map_path, reference = os.fspath(map_path), os.fspath(reference)
    grid = read_grid(map_path)
    embedded = read_raster_legend(map_path)
    legend = legend or embedded
    labels = read_labels(reference, grid, column, legend=legend, codes=codes,
                         all_touched=all_touched)
    if any(not k.lstrip("-").replace(".", "", 1).isdigit() for k in labels.codes) \
            and legend is None and codes is None:
        raise UserError("reference labels are names but the map has no embedded legend; "
                        "give --legend", reference)
    areas, counts, pairs = _tally(map_path, grid, labels.array, max(16, block))
    present = sorted(set(np.flatnonzero(counts)) | set(np.flatnonzero(pairs.sum(0))))
    if not pairs.sum():
        raise UserError("no labelled reference pixel falls on a mapped pixel", reference)
    classes = np.array(present, int)
    mat = pairs[np.ix_(classes, classes)]
    names = [legend.name(c) if legend is not None else f"class {c}" for c in classes]
    sm = accuracy_metrics(mat)
    aa = area_adjusted(mat, areas[classes])
    warnings = []
    for i, c in enumerate(classes):
        if counts[c] and mat[i].sum() < 2:
            warnings.append(f"map class {c} ({names[i]}) has {int(mat[i].sum())} reference "
                            "sample(s): its area-adjusted intervals are undefined and its mapped "
                            "area is not redistributed")
    per_class = []
    for i, c in enumerate(classes):
        per_class.append({
            "code": int(c), "name": names[i],
            "n_map_samples": int(sm["n_map"][i]), "n_reference_samples": int(sm["n_reference"][i]),
            "precision_users_accuracy": sm["precision"][i],
            "recall_producers_accuracy": sm["recall"][i], "f1": sm["f1"][i],
            "mapped_pixels": int(counts[c]), "mapped_area_m2": areas[c],
            "area_adjusted": {
                "area_m2": aa["area"][i], "area_ci95_m2": aa["area_ci"][i],
                "users_accuracy": aa["users_accuracy"][i], "users_ci95": aa["users_ci"][i],
                "producers_accuracy": aa["producers_accuracy"][i],
                "producers_ci95": aa["producers_ci"][i], "map_weight": aa["weights"][i]},
        })
    report = {
        "map": map_path, "reference": reference,
        "reference_kind": "raster" if labels.column is None else f"vector column {labels.column!r}",
        "legend_source": "argument" if legend is not None and legend is not embedded
        else ("map" if embedded is not None else "none"),
        "conventions": {
            "confusion_matrix": "rows = map class, columns = reference class, sample counts "
                                "(pixels), in the order of 'classes'",
            "precision": "user's accuracy = n_ii / n_i. (row)",
            "recall": "producer's accuracy = n_ii / n_.i (column)",
            "area_adjusted": "Olofsson et al. (2014) stratified estimators, map classes as "
                             "strata, mapped areas from every map pixel; ci95 = 1.96 SE. They "
                             "assume a stratified random reference sample; for a wall-to-wall "
                             "reference they equal the census and the intervals are tiny.",
            "units": "areas in m^2 (pixel area of the map grid); accuracies are fractions 0..1",
        },
        "classes": [{"code": int(c), "name": n} for c, n in zip(classes, names)],
        "n_samples": sm["n"],
        "confusion_matrix": mat.tolist(),
        "overall_accuracy": sm["overall_accuracy"], "kappa": sm["kappa"],
        "macro_f1": sm["macro_f1"],
        "area_adjusted_overall_accuracy": aa["overall_accuracy"],
        "area_adjusted_overall_accuracy_ci95": aa["overall_ci"],
        "per_class": per_class,
        "mapped_area_total_m2": float(areas.sum()),
        "label_codes": labels.codes,
        "warnings": warnings,
    }
    report = json_safe(report)
    if figure:
        report["figure"] = Path(out).with_suffix(".png").name
        confusion_figure(mat, names, Path(out).with_suffix(".png"),
                         title=f"{Path(map_path).name} vs {Path(reference).name}: "
                               f"OA {sm['overall_accuracy']:.3f}, kappa {sm['kappa']:.3f}")
    write_json(out, report)
    return report


def confusion_figure(matrix: np.ndarray, names: Sequence[str], path: str | os.PathLike,
                     title: str = "") -> str:
    """PNG of an error matrix: counts written in the cells, colour = share of the map class row.

    Examples
    --------
    >>> confusion_figure(np.array([[5, 1], [0, 4]]), ["a", "b"], "cm.png")  # doctest: +SKIP
    'cm.png'
    """
    from matplotlib.figure import Figure

    from ..core.quicklook import save_figure

    mat = np.asarray(matrix)
    k = len(names)
    share = _div(mat, mat.sum(1, keepdims=True))
    size = 2.5 + 0.55 * k
    fig = Figure(figsize=(size + 1.2, size), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(np.nan_to_num(share), cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if mat[i, j]:
                ax.text(j, i, str(int(mat[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("reference class")
    ax.set_ylabel("map class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of map-class samples")
    return save_figure(fig, path, credit="cryokit landcover assess")
