"""The land cover map product: train a model on a feature stack, predict a map block by block.

:func:`train_model` reads the labelled pixels of a feature stack (written by ``cryokit
landcover features`` or any multi-band GeoTIFF whose band descriptions name the features),
fits a global or locally adaptive classifier (:mod:`.classify`) and saves it
(:mod:`.model_io`).  :func:`predict_map` classifies the stack window by window (through
:func:`cryokit.core.parallel.run_tasks`, so rasters larger than memory and dask clusters work) and
writes a uint8 class map (0 = nodata) with the legend embedded as a colour table, band
description, class-name tags and a JSON ``LEGEND`` / ``CLASSES`` tag; optionally a confidence
layer, spatial regularisation of the class probabilities before the arg-max (Gaussian
``smooth``, minimum mapping unit ``mmu``; blocks read with a halo) and one clipped map per
region.  Every map folder gets quicklook.png, metadata.json and stac-item.json.  Inputs are
checked before anything is written; outputs are staged in a hidden folder and moved into
place when complete.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.features import geometry_mask
from rasterio.windows import Window

from ..core.atomic import staged_dir
from ..core.errors import UserError, require_file
from ..core.outputs import safe_name
from ..core.parallel import run_tasks, tiles
from ..core.records import write_records
from ..core.quicklook import class_quicklook
from ..core.raster import Grid, open_raster, read_grid, write_cog
from .classify import PRIORS, GlobalClassifier, LocalClassifier, ModelParams, predict_image
from .inputs import load_legend
from .legend import CALC2020, Legend
from .model_io import TrainedModel, load_model, save_model
from .smooth import halo

BLOCK = 1024          # pixels per side of a prediction block (features: BLOCK^2 * F * 4 bytes)
CONF_NODATA = 255
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class TrainOptions:
    """Training options of the product (defaults: one global rf, unweighted, fully grown
    leaves, sqrt(n) features per split).  The class balancing and tree options that spatially
    blocked cross-validation preferred did not beat the plain forest on the held-out real
    test areas (``benchmarks/landcover_real.py``), so they stay options."""

    label_column: str | None = None
    local: int | None = None          # tile size in pixels; None = one global model
    legend: str | None = None         # legend file, "calc" (CALC-2020), None: the labels' own
    prior: str = "none"               # none | train: class-prior correction (global models)
    blend: float = 1.0                # local: blending ramp width, fraction of a tile
    model: ModelParams = field(default_factory=ModelParams)   # the estimators' parameters

    def __post_init__(self):
        if self.local is not None and self.local < 8:
            raise ValueError(f"local tile size must be >= 8 pixels, got {self.local}")
        if not 0 < self.blend <= 1:
            raise ValueError(f"blend must be in (0, 1], got {self.blend}")
        if self.blend != 1.0 and self.local is None:
            raise ValueError("blend applies to local models only")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        if self.prior != "none" and self.local is not None:
            raise ValueError("prior applies to global models only (not with local)")


# ----------------------------------------------------------------------------- stack

def feature_names(path: str) -> list[str]:
    """Band descriptions of the stack (``band<i>`` where a band has none)."""
    with open_raster(path) as ds:
        return [d or f"band{i + 1}" for i, d in enumerate(ds.descriptions)]


def read_samples(path: str, rows: np.ndarray, cols: np.ndarray, block: int = 512) -> np.ndarray:
    """Features (n, F) float32 at pixels (rows, cols), NaN at nodata; read in row blocks so
    only ``block`` rows of the stack are in memory at a time."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    with open_raster(path) as ds:
        out = np.empty((rows.size, ds.count), np.float32)
        for r0 in range(0, ds.height, block):
            sel = order[np.searchsorted(sorted_rows, r0):np.searchsorted(sorted_rows, r0 + block)]
            if sel.size == 0:
                continue
            win = Window(0, r0, ds.width, min(block, ds.height - r0))
            data = ds.read(window=win, masked=True).astype(np.float32).filled(np.nan)
            out[sel] = data[:, rows[sel] - r0, cols[sel]].T
    return out


CALC_NAMES = ("calc", "calc-2020", "calc2020")


def _legend(path: str | None) -> Legend | None:
    """The legend asked for: a file, CALC-2020 by name, or None (take it from the labels)."""
    if path is None:
        return None
    return CALC2020 if str(path).lower() in CALC_NAMES else load_legend(path)


# ----------------------------------------------------------------------------- training

def train_model(features: str | os.PathLike, labels: str | os.PathLike, out: str | os.PathLike,
                options: TrainOptions = TrainOptions()) -> TrainedModel:
    """Fit a classifier on the labelled pixels of ``features`` and save it to ``out``.

    Labels: points, polygons (any OGR format, column ``options.label_column`` or a usual
    name) or a label raster (0 = unlabelled), reprojected onto the stack grid.  A labelled
    class missing from the legend is an error; a legend class without samples is noted in the
    model sidecar (``notes``) and is never predicted.

    Raises
    ------
    UserError
        No overlap of labels and features, label column missing, class not in the legend,
        no labelled pixel with all features valid, fewer than two classes.

    Examples
    --------
    >>> train_model("features.tif", "labels.gpkg", "model.npz")  # doctest: +SKIP
    """
    from .inputs import read_labels

    features, labels = require_file(features), require_file(labels)
    grid = read_grid(features)
    names = feature_names(features)
    legend = _legend(options.legend)
    lab = read_labels(labels, grid, options.label_column, legend=legend)
    if legend is None:     # the user's classes, named as the labels name them
        legend = lab.legend(base=CALC2020)
    rows, cols = np.nonzero(lab.array)
    y = lab.array[rows, cols].astype(np.int64)
    unknown = sorted(set(np.unique(y).tolist()) - set(legend.codes))
    if unknown:
        raise UserError(f"labelled class code(s) {unknown} are not in the legend "
                        f"({options.legend}: codes {list(legend.codes)})", labels)
    X = read_samples(features, rows, cols)
    # Samples with some missing features are kept: the models learn where missing values go.
    ok = np.isfinite(X).any(axis=1)
    if not ok.any():
        raise UserError("no labelled pixel has a valid value in any feature band", features)
    X, y, rows, cols = X[ok], y[ok], rows[ok], cols[ok]
    present, counts = np.unique(y, return_counts=True)
    if present.size < 2:
        raise UserError(f"labels hold a single class ({legend.name(int(present[0]))}); "
                        "training needs at least two", labels)
    clf = (LocalClassifier(options.local, options.model, blend=options.blend) if options.local
           else GlobalClassifier(options.model, prior=options.prior))
    clf.fit(X, y, rows, cols)
    missing = [c for c in legend.codes if c not in present]
    notes = ([f"legend classes without samples, never predicted: "
              f"{', '.join(legend.name(c) for c in missing)}"] if missing else [])
    info = {"samples": {legend.name(int(c)): int(n) for c, n in zip(present, counts)},
            "n_samples": int(y.size), "dropped_nan_samples": int((~ok).sum()),
            "samples_with_missing_features": int((~np.isfinite(X)).any(axis=1).sum()),
            "features_file": os.path.abspath(features), "labels_file": os.path.abspath(labels),
            "label_column": lab.column, "label_codes": lab.codes, "grid_crs": str(grid.crs),
            "grid_shape": list(grid.shape), "notes": notes}
    if isinstance(clf, LocalClassifier):
        info["local_models"] = clf.n_local
        info["tiles"] = int(clf.tile_model_.size)
    model = TrainedModel(clf, names, legend, info)
    save_model(model, out)
    return model


# ----------------------------------------------------------------------------- prediction

def block_halo(smooth: float = 0.0, mmu: int = 0) -> int:
    """Margin in pixels a block needs so that spatial regularisation gives the same map as
    on the whole raster (0 without it).

    Examples
    --------
    >>> block_halo(), block_halo(1.0), block_halo(0.5, mmu=3)
    (0, 3, 3)
    """
    return max(halo(smooth), int(mmu) if mmu > 1 else 0)


def predict_block(window: tuple[int, int, int, int], *, features: str, classifier, stage: str,
                  probability: bool, smooth: float = 0.0, mmu: int = 0) -> str:
    """Classify one window (row0, row1, col0, col1) of the stack; saves class codes (uint8,
    0 = nodata) and confidence (uint8 percent, 255 = nodata) as ``.npy`` in ``stage``
    and returns the file name.  Pixels with no valid feature are nodata.  With ``smooth`` or
    ``mmu`` (:func:`.classify.predict_image`) the window is read grown by
    :func:`block_halo` pixels and cropped, so the map does not depend on the block size."""
    r0, r1, c0, c1 = window
    m = block_halo(smooth, mmu)
    with rasterio.open(features) as ds:
        g0, g1 = max(0, r0 - m), min(ds.height, r1 + m)
        h0, h1 = max(0, c0 - m), min(ds.width, c1 + m)
        data = ds.read(window=Window(h0, g0, h1 - h0, g1 - g0), masked=True)
    codes, p = predict_image(classifier, data.astype(np.float32).filled(np.nan),
                             row0=g0, col0=h0, smooth=smooth, mmu=mmu)
    core = np.s_[r0 - g0:r1 - g0, c0 - h0:c1 - h0]
    codes, p = codes[core], p[core]
    cls = codes.astype(np.uint8)
    conf = np.where(np.isfinite(p), np.clip(np.rint(100 * np.nan_to_num(p)), 0, 100),
                    CONF_NODATA).astype(np.uint8)
    name = os.path.join(stage, f".block_{r0}_{c0}.npy")
    np.save(name, np.stack([cls, conf]) if probability else cls[None])
    return name


@dataclass(frozen=True)
class _MapMeta:
    """What every class map carries, whether written window by window or by ``write_cog``."""

    tags: dict               # legend JSON, RAT-like class table, conventions
    descriptions: list[str]  # per band
    band_tags: list[dict]    # per band, ``units`` included


def _map_meta(legend: Legend, classes, conf_band: bool) -> _MapMeta:
    table = [{"value": 0, "class": "nodata", "colour": None}] + [
        {"value": k["code"], "class": k["name"], "colour": k["colour"],
         "predicted": k["code"] in classes} for k in legend.to_dict()["classes"]]
    tags = {**legend.to_tags(), "CLASSES": json.dumps(table, separators=(",", ":")),
            "NODATA_MEANING": "0 = no data (no valid feature) or outside the region",
            "UNITS": "class code"}
    desc = ["land cover class code (legend in colour table and LEGEND tag)"]
    band = [{**{f"CLASS_{c}": n for c, n in zip(legend.codes, legend.names)},
             "units": "class code"}]
    if conf_band:
        desc.append("confidence: probability of the mapped class (percent, 255 = nodata)")
        band.append({"units": "percent", "nodata": "255"})
    return _MapMeta(tags, desc, band)


def _open_map(path: Path, grid: Grid, count: int):
    """A tiled uint8 GeoTIFF for writing the full map window by window (larger than memory)."""
    prof = dict(driver="GTiff", width=grid.width, height=grid.height, count=count,
                dtype="uint8", crs=grid.crs, transform=grid.transform, nodata=0, tiled=True,
                blockxsize=256, blockysize=256, compress="deflate", BIGTIFF="IF_SAFER")
    return rasterio.open(path, "w", **prof)


def _finish_map(ds, meta: _MapMeta, legend: Legend) -> None:
    """Apply ``meta`` and the colour table to an open map (as :func:`write_cog` does)."""
    ds.update_tags(**meta.tags)
    for i, (desc, tags) in enumerate(zip(meta.descriptions, meta.band_tags), 1):
        ds.set_band_description(i, desc)
        ds.update_tags(i, **tags)
    ds.write_colormap(1, legend.colormap())


def _quicklook(path: Path, codes: np.ndarray, grid: Grid, legend: Legend, title: str) -> None:
    left, bottom, right, top = grid.bounds
    class_quicklook(path, codes, extent=(left, right, bottom, top),
                    classes=list(zip(legend.codes, legend.names, legend.colours)), title=title,
                    credit="cryokit land cover")


def _dates(names: list[str], path: str, given: str | None = None) -> tuple[dt.date, dt.date]:
    """The period a map stands for: ``given`` (``DATE`` or ``START,END``), else the stack's
    dates (band names, its ``feature_dates`` tag, an acquisition tag); never a file time."""
    from ..core.dates import acquisition_date, parse_date

    if given:
        parts = [x.strip() for x in str(given).split(",") if x.strip()]
        if len(parts) not in (1, 2):
            raise UserError(f"--dates: give DATE or START,END, got {given!r}")
        d = [parse_date(x, "--dates") for x in parts]
        if d[-1] < d[0]:
            raise UserError(f"--dates: END {d[-1]} is before START {d[0]}")
        return d[0], d[-1]
    found = {dt.date(*map(int, m.groups())) for n in names for m in [_DATE.search(n)] if m}
    with open_raster(path) as ds:
        tag = ds.tags().get("feature_dates", "")
    found |= {dt.date(*map(int, m.groups())) for m in _DATE.finditer(tag)}
    if not found:
        d = acquisition_date(path)
        found = {d} if d else set()
    if not found:
        raise UserError("the feature stack carries no date (band names, feature_dates tag, "
                        "acquisition tag): give --dates DATE or START,END", path)
    return min(found), max(found)


def _post_text(smooth: float, mmu: int) -> str:
    """How the probabilities were regularised in space, for the records ("" if not)."""
    steps = ([f"class probabilities smoothed by a Gaussian of sigma {smooth:g} px over the valid "
              "pixels"] if smooth and smooth > 0 else [])
    steps += ([f"patches smaller than {mmu} px (8-connected) given their next most probable "
               "class"] if mmu > 1 else [])
    return "; ".join(steps)


def _records(folder: Path, *, item_id: str, grid: Grid, names, features: str, model: TrainedModel,
             region: str | None, post: str = "", period=None, regions=()) -> None:
    start, end = period or _dates(names, features)
    p = model.classifier.params
    how = (f"locally adaptive: one {p['model']} model per {p['tile_size']}-pixel tile trained on "
           f"the samples of the tile and its neighbourhood, probabilities blended bilinearly "
           f"between the four nearest tile centres"
           + (f" over ramps {p['blend']:g} of a tile wide across tile edges"
              if p.get("blend", 1.0) != 1.0 else "") if p["kind"] == "local"
           else f"one global {p['model']} model")
    how += f"; {post}" if post else ""
    write_records(
        folder, item_id=item_id, grid=grid, start=start, end=end,
        title=f"Land cover map{f' ({region})' if region else ''}",
        abstract=(f"Pixel land cover classes ({len(model.legend)}-class legend) predicted from a "
                  f"{len(names)}-feature stack by {how}. Class codes per the embedded legend; "
                  "0 = no data."
                  + (f" One map per region ({', '.join(regions)}), cut from the whole map, and "
                     "their mosaic (VRT)." if regions else "")),
        source=f"feature stack {os.path.basename(features)} ({', '.join(names[:8])}"
               f"{', ...' if len(names) > 8 else ''}); training labels "
               f"{os.path.basename(str(model.info.get('labels_file', '?')))}",
        method=f"{how}; parameters {json.dumps(p)}",
        quality={"training_samples": model.info.get("samples"),
                 "note": "accuracy not assessed here: run 'cryokit landcover assess' against "
                         "independent reference data", "notes": model.info.get("notes", [])},
        units={"class": "class code", "confidence": "percent"}, place=region,
        keywords=["land cover", "classification",
                  *(["random forest"] if "rf" in p["model"] else []),
                  *(["gradient boosting"] if "lgbm" in p["model"] else [])],
        extra={"legend": model.legend.to_dict()})


def _regions(path: str, column: str, grid: Grid):
    import geopandas as gpd

    require_file(path)
    try:
        gdf = gpd.read_file(path)
    except Exception:  # noqa: BLE001 - any OGR failure is a user error about this file
        raise UserError("not a vector file OGR can read", path) from None
    if column not in gdf.columns:
        raise UserError(f"no column {column!r}; available: "
                        f"{', '.join(c for c in gdf.columns if c != 'geometry')}", path)
    gdf = gdf[gdf.geometry.notna()]
    if gdf.crs is not None and grid.crs is not None:
        gdf = gdf.to_crs(grid.crs)
    gdf = gdf.dissolve(by=column).reset_index()
    out = []
    left, bottom, right, top = grid.bounds
    for code, geom in zip(gdf[column], gdf.geometry):
        safe = safe_name(code, "region code")
        minx, miny, maxx, maxy = geom.bounds
        inv = ~grid.transform
        cs, rs = zip(*(inv @ (x, y) for x, y in ((minx, maxy), (maxx, miny))))
        r0, r1 = max(0, int(np.floor(min(rs)))), min(grid.height, int(np.ceil(max(rs))))
        c0, c1 = max(0, int(np.floor(min(cs)))), min(grid.width, int(np.ceil(max(cs))))
        out.append((str(code), safe, geom, (r0, r1, c0, c1)))
    names = [safe for _, safe, _, _ in out]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UserError(f"two region codes of column {column!r} give the same file name {dup!r}",
                        path)
    if not any(r1 > r0 and c1 > c0 for _, _, _, (r0, r1, c0, c1) in out):
        raise UserError("no region overlaps the feature stack", path)
    return out


def write_region_vrt(path: Path, grid: Grid, sources, legend: Legend, count: int,
                     meta: _MapMeta) -> None:
    """A GDAL VRT mosaic of the region maps (``sources``: file name, window in ``grid``),
    with the legend's colour table; each region's nodata (0, 255) lets the others show."""
    from xml.sax.saxutils import escape

    cmap = legend.colormap()
    entries = "".join(
        '<Entry c1="{}" c2="{}" c3="{}" c4="{}"/>'.format(*cmap.get(i, (0, 0, 0, 0)))
        for i in range(max(cmap) + 1))
    t = grid.transform
    bands = []
    for b in range(1, count + 1):
        nodata = 0 if b == 1 else CONF_NODATA
        srcs = "".join(
            f'<ComplexSource><SourceFilename relativeToVRT="1">{escape(f)}</SourceFilename>'
            f"<SourceBand>{b}</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{c1 - c0}" ySize="{r1 - r0}"/>'
            f'<DstRect xOff="{c0}" yOff="{r0}" xSize="{c1 - c0}" ySize="{r1 - r0}"/>'
            f"<NODATA>{nodata}</NODATA></ComplexSource>"
            for f, (r0, r1, c0, c1) in sources)
        colour = (f"<ColorInterp>Palette</ColorInterp><ColorTable>{entries}</ColorTable>"
                  if b == 1 else "")
        bands.append(f'<VRTRasterBand dataType="Byte" band="{b}">'
                     f"<Description>{escape(meta.descriptions[b - 1])}</Description>"
                     f"<NoDataValue>{nodata}</NoDataValue>{colour}{srcs}</VRTRasterBand>")
    xml = (f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">'
           f"<SRS>{escape(grid.crs.to_wkt()) if grid.crs else ''}</SRS>"
           f"<GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>"
           + "".join(bands) + "</VRTDataset>\n")
    path.write_text(xml, encoding="utf-8")


def predict_map(features: str | os.PathLike, model_path: str | os.PathLike,
                out: str | os.PathLike, *, probability: bool = False,
                regions: str | None = None, region_column: str = "code",
                workers: int | None = None, scheduler: str | None = None,
                block: int = BLOCK, progress: bool = False, smooth: float = 0.0,
                mmu: int = 0, trust_model: bool = False, dates: str | None = None) -> dict:
    """Classify ``features`` with a saved model into ``out`` (uint8 GeoTIFF, 0 = nodata).

    ``smooth`` (Gaussian sigma, pixels) and ``mmu`` (minimum mapping unit, pixels) regularise
    the map in space before the arg-max (:func:`.classify.predict_image`; off by default);
    blocks are read with a halo, so the map does not depend on ``block``.

    Writes beside ``out``: quicklook.png, metadata.json, stac-item.json (use a folder of its
    own); with ``probability`` a second band of confidence (percent); with ``regions`` one
    map ``<stem>_<CODE>.tif`` per region clipped to it (outside = 0; cut from the one map, so
    local models blend across region borders without seams), its quick-look
    ``<stem>_<CODE>.png``, and ``<stem>_regions.vrt``, their mosaic; one record for the set.
    Files appear only when all are written.

    Returns
    -------
    dict: out, classes (code -> pixel count), nodata_pixels, regions (code -> path), blocks.

    Examples
    --------
    >>> predict_map("features.tif", "model.npz", "map/landcover.tif")  # doctest: +SKIP
    """
    if not np.isfinite(smooth) or smooth < 0:
        raise UserError(f"smoothing sigma must be >= 0 pixels, got {smooth}")
    if mmu < 0:
        raise UserError(f"minimum mapping unit must be >= 0 pixels, got {mmu}")
    features = require_file(features)
    names = feature_names(features)
    model = load_model(model_path, names, trust=trust_model)
    grid = read_grid(features)
    out = Path(out).absolute()
    region_list = _regions(regions, region_column, grid) if regions else []
    period = _dates(names, features, dates)     # before any work: a missing date is an error
    folder = out.parent
    post = _post_text(smooth, mmu)
    with staged_dir(folder, "landcover predict") as stage:
        windows = [(r.start, r.stop, c.start, c.stop) for r, c in tiles(grid.shape, (block, block))]
        parts = run_tasks(predict_block, windows, workers=workers, scheduler=scheduler,
                          shared=dict(features=features, classifier=model.classifier,
                                      stage=str(stage), probability=probability,
                                      smooth=float(smooth), mmu=int(mmu)),
                          progress=progress, description="classifying blocks")
        count = 2 if probability else 1
        hist = np.zeros(256, np.int64)
        tmp_map = stage / out.name
        tiled = stage / f".{out.stem}.tiled.tif"
        meta = _map_meta(model.legend, [int(c) for c in model.classifier.classes_],
                         probability)
        with _open_map(tiled, grid, count) as ds:
            for (r0, r1, c0, c1), part in zip(windows, parts):
                a = np.load(part)
                ds.write(a, window=Window(c0, r0, c1 - c0, r1 - r0))
                hist += np.bincount(a[0].ravel(), minlength=256)
                os.remove(part)
            _finish_map(ds, meta, model.legend)
        # GDAL's COG driver lays out the overviews (nearest: class codes) before the data,
        # as a cloud-optimised GeoTIFF must be; tags, descriptions and colours go along.
        rasterio.shutil.copy(tiled, tmp_map, driver="COG", compress="deflate",
                             overview_resampling="nearest", BIGTIFF="IF_SAFER")
        tiled.unlink()
        with rasterio.open(tmp_map) as ds:
            step = max(1, int(np.ceil(max(grid.shape) / 2000)))
            preview = ds.read(1, out_shape=(-(-grid.height // step), -(-grid.width // step)),
                              resampling=rasterio.enums.Resampling.nearest)
        _quicklook(stage / "quicklook.png", preview, grid, model.legend,
                   f"Land cover {period[0]}" + (f" to {period[1]}" if period[1] != period[0]
                                                 else ""))
        region_paths, sources = {}, []
        for code, safe, geom, (r0, r1, c0, c1) in region_list:
            if r1 <= r0 or c1 <= c0:
                continue
            name = f"{out.stem}_{safe}"
            rgrid = grid.window(r0, r1, c0, c1)
            with rasterio.open(tmp_map) as src:
                data = src.read(window=Window(c0, r0, c1 - c0, r1 - r0))
            outside = geometry_mask([geom], out_shape=rgrid.shape, transform=rgrid.transform)
            data[0][outside] = 0
            if probability:
                data[1][outside] = CONF_NODATA
            write_cog(stage / f"{name}.tif", data, rgrid, nodata=0, dtype="uint8",
                      tags={**meta.tags, "REGION": code}, descriptions=meta.descriptions,
                      band_tags=meta.band_tags, colormap=model.legend.colormap())
            _quicklook(stage / f"{name}.png", data[0], rgrid, model.legend,
                       f"Land cover {code}, {period[0]}")
            region_paths[code] = str(folder / f"{name}.tif")
            sources.append((f"{name}.tif", (r0, r1, c0, c1)))
        if sources:
            write_region_vrt(stage / f"{out.stem}_regions.vrt", grid, sources, model.legend,
                             count, meta)
        _records(stage, item_id=out.stem, grid=grid, names=names, features=features,
                 model=model, region=None, post=post, period=period,
                 regions=tuple(region_paths))
    counts = {int(c): int(hist[c]) for c in np.flatnonzero(hist) if c != 0}
    return {"out": str(out), "classes": counts, "nodata_pixels": int(hist[0]),
            "regions": region_paths, "blocks": len(windows), "folder": str(folder)}
