"""Landsat Level-1 scenes as velocity inputs: the MTL metadata file (acquisition date-time,
spacecraft, the panchromatic band, the pixel quality band) and a pan band with fill, SLC-off
gaps, clouds and cloud shadows set to nodata.

A scene is given by its ``*_MTL.txt`` file (Collection 2, Collection 1 or pre-collection);
its band files sit beside it. An image file whose name starts with a scene's id and has the
scene's MTL file beside it (``LC80630182016200LGN00_B8_crop.TIF`` next to
``LC80630182016200LGN00_MTL.txt``) takes the scene's date-time.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import UserError
from ..core.outputs import file_digest

_LINE = re.compile(r'^\s*([A-Z0-9_]+)\s*=\s*"?([^"]*)"?\s*$')
#: Collection 2 QA_PIXEL bits left out: fill (0), dilated cloud (1), cloud (3), cloud shadow (4)
C2_MASK_BITS = (0, 1, 3, 4)


@dataclass(frozen=True)
class LandsatScene:
    """What a velocity run needs of a Level-1 scene."""

    mtl: str
    scene_id: str
    time: dt.datetime            # DATE_ACQUIRED + SCENE_CENTER_TIME, UTC
    spacecraft: str              # "Landsat 8"
    collection: int | None       # 2, 1 or None (pre-collection)
    pan: str                     # band 8
    qa: str | None               # QA_PIXEL (C2) or BQA (C1), if present


def is_mtl(path: str | os.PathLike) -> bool:
    """True for a Landsat ``*_MTL.txt`` metadata file."""
    return str(path).upper().endswith("_MTL.TXT")


def read_mtl(path: str | os.PathLike) -> dict[str, str]:
    """The ``KEY = value`` pairs of an MTL file (groups flattened; quotes removed)."""
    out = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise UserError(f"cannot be read ({e.strerror})", path) from None
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) not in ("GROUP", "END_GROUP"):
            out.setdefault(m.group(1), m.group(2).strip())
    if "DATE_ACQUIRED" not in out:
        raise UserError("is not a Landsat MTL file (no DATE_ACQUIRED)", path)
    return out


def scene_time(meta: dict[str, str], path=None) -> dt.datetime:
    """Acquisition date-time (UTC) of the scene centre, to the second.

    >>> scene_time({"DATE_ACQUIRED": "2016-07-18", "SCENE_CENTER_TIME": "20:37:06.3391580Z"})
    datetime.datetime(2016, 7, 18, 20, 37, 6)
    """
    try:
        day = dt.date.fromisoformat(meta["DATE_ACQUIRED"])
        hms = meta.get("SCENE_CENTER_TIME", "00:00:00").rstrip("Z")
        h, m, s = hms.split(":")
        return dt.datetime(day.year, day.month, day.day, int(h), int(m), int(float(s)))
    except (KeyError, ValueError):
        raise UserError(f"bad DATE_ACQUIRED / SCENE_CENTER_TIME "
                        f"({meta.get('DATE_ACQUIRED')!r}, {meta.get('SCENE_CENTER_TIME')!r})",
                        path) from None


def scene(mtl: str | os.PathLike) -> LandsatScene:
    """The scene of an MTL file; UserError when its pan band is not beside it."""
    meta = read_mtl(mtl)
    folder = Path(mtl).parent
    pan = meta.get("FILE_NAME_BAND_8")
    if not pan:
        raise UserError(f"{meta.get('SPACECRAFT_ID', 'this scene')} has no panchromatic band "
                        "(band 8); give a band file instead of the MTL", mtl)
    if not (folder / pan).exists():
        raise UserError(f"its panchromatic band {pan} is not beside it", mtl)
    qa = meta.get("FILE_NAME_QUALITY_L1_PIXEL") or meta.get("FILE_NAME_BAND_QUALITY")
    collection = meta.get("COLLECTION_NUMBER")
    sid = meta.get("LANDSAT_PRODUCT_ID") or meta.get("LANDSAT_SCENE_ID") or Path(mtl).stem[:-4]
    craft = meta.get("SPACECRAFT_ID", "LANDSAT").replace("_", " ").title()
    return LandsatScene(str(mtl), sid, scene_time(meta, mtl), craft,
                        int(collection) if collection and collection.isdigit() else None,
                        str(folder / pan), str(folder / qa) if qa and (folder / qa).exists() else None)


def sibling_mtl(image: str | os.PathLike) -> str | None:
    """The MTL file beside ``image`` whose scene id starts the image's name, or None."""
    p = Path(image)
    try:
        candidates = sorted(p.parent.glob("*_MTL.txt")) + sorted(p.parent.glob("*_MTL.TXT"))
    except OSError:
        return None
    name = p.name.upper()
    for m in candidates:
        sid = m.name[:-8].upper()
        if sid and name.startswith(sid) and m != p:
            return str(m)
    return None


def image_time(image: str | os.PathLike) -> dt.datetime | None:
    """The date-time of an MTL file, or of an image with its scene's MTL beside it."""
    mtl = str(image) if is_mtl(image) else sibling_mtl(image)
    if mtl is None:
        return None
    return scene_time(read_mtl(mtl), mtl)


def qa_mask(qa: np.ndarray, collection: int | None) -> np.ndarray:
    """True where the quality band marks fill, cloud or cloud shadow.

    Collection 2 QA_PIXEL: bits 0 (fill), 1 (dilated cloud), 3 (cloud), 4 (cloud shadow).
    Collection 1 BQA: bit 0 (fill), bit 4 (cloud), cloud-shadow confidence high (bits 7-8 = 3).
    Pre-collection quality bands use other bits: only their fill (bit 0) is read.

    >>> qa_mask(np.array([21824, 22280, 23888, 1]), 2).tolist()   # clear, cloud, shadow, fill
    [False, True, True, True]
    """
    q = np.asarray(qa).astype(np.int64)
    if collection == 2:
        bits = sum(1 << b for b in C2_MASK_BITS)
        return (q & bits) != 0
    if collection == 1:
        return ((q & 1) != 0) | ((q & (1 << 4)) != 0) | (((q >> 7) & 3) == 3)
    return (q & 1) != 0


def _source_of(path: Path) -> str | None:
    """The source digests a masked band records, or None when there is none."""
    import rasterio

    if not path.exists():
        return None
    try:
        with rasterio.open(path) as ds:
            return ds.tags().get("source_digests")
    except rasterio.errors.RasterioIOError:
        return None


def masked_pan(sc: LandsatScene, out: str | os.PathLike, source: str = "") -> str:
    """Write the pan band with fill (DN 0, e.g. SLC-off gaps) and the quality band's clouds and
    shadows set to 0 = nodata to ``out`` (uint16 GeoTIFF, same grid), block by block; ``source``
    (the digests of the bands it is made from) goes into its tags."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    with rasterio.open(sc.pan) as src:
        profile = src.profile | {"driver": "GTiff", "nodata": 0, "compress": "deflate",
                                 "tiled": True, "blockxsize": 512, "blockysize": 512,
                                 "BIGTIFF": "IF_SAFER"}
        qa = rasterio.open(sc.qa) if sc.qa else None
        try:
            with rasterio.open(out, "w", **profile) as dst:
                for r0 in range(0, src.height, 2048):
                    for c0 in range(0, src.width, 2048):
                        win = Window(c0, r0, min(2048, src.width - c0), min(2048, src.height - r0))
                        band = src.read(1, window=win)
                        bad = band == 0
                        if qa is not None:
                            # QA is at 30 m, the pan band at 15 m: the QA pixels under this window
                            fx, fy = qa.width / src.width, qa.height / src.height
                            qwin = Window(c0 * fx, r0 * fy, win.width * fx, win.height * fy)
                            q = qa.read(1, window=qwin, out_shape=band.shape,
                                        resampling=Resampling.nearest)
                            bad |= qa_mask(q, sc.collection)
                        dst.write(np.where(bad, 0, band).astype(profile["dtype"]), 1, window=win)
                dst.update_tags(source_digests=source, mtl=os.path.basename(sc.mtl))
        finally:
            if qa is not None:
                qa.close()
    return str(out)


def prepare(paths: list[str], folder: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """Each MTL file of ``paths`` replaced by its masked pan band, written into ``folder``
    (kept when already there, from the same scene); other paths as they are. Returns the
    paths and a record per scene."""
    folder = Path(folder)
    out, records = [], []
    for p in paths:
        if not is_mtl(p):
            out.append(p)
            continue
        sc = scene(p)
        target = folder / f"{sc.scene_id}_B8_masked.tif"
        # Kept by content, as the pairs are: a band replaced with an old file time (cp -p)
        # must not leave a stale masked copy.
        source = " ".join(file_digest(f) for f in (sc.pan, sc.qa) if f)
        if _source_of(target) != source:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{target.name}.tmp-{os.getpid()}"
            masked_pan(sc, tmp, source)
            os.replace(tmp, target)
        out.append(str(target))
        records.append({"mtl": os.path.abspath(sc.mtl), "scene_id": sc.scene_id,
                        "time": sc.time.isoformat(), "spacecraft": sc.spacecraft,
                        "collection": sc.collection, "pan_band": os.path.basename(sc.pan),
                        "quality_band": sc.qa and os.path.basename(sc.qa),
                        "masked": "fill (DN 0, SLC-off gaps)" + (
                            ", cloud and cloud shadow from the quality band"
                            if sc.qa and sc.collection in (1, 2) else
                            "; the quality band is not read (pre-collection bits)"
                            if sc.qa else "; no quality band")})
    return out, records
