"""A dataset folder from product runs: the runs copied in, everything computable computed,
the records written last from the files as they are.

Layout of ``OUT``: ``runs/<item id>/`` (each run as the product wrote it), ``thumbnail.png``
(the runs' quick-looks side by side), ``dataset.json`` (the data-centre record),
``collection.json`` (STAC Collection, one Item per run, relative links), ``datacite.xml``,
``dataset.jsonld`` (schema.org Dataset), ``citation.ris`` and ``citation.bib``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

from ..core.atomic import staged_dir
from ..core.errors import UserError
from .definition import DatasetDefinition
from . import records

__all__ = ["build_dataset", "gather_runs"]


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _kind(item: dict) -> str:
    """A run's product kind: its STAC Item id without the dates (``dem_change``, ...)."""
    parts = [p for p in str(item["id"]).replace("-", "_").split("_")
             if not (p.isdigit() and len(p) in (8, 14))]
    return "_".join(parts) or str(item["id"])


def gather_runs(run_dirs) -> list[dict]:
    """Each run's record, STAC Item, folder and a dataset-unique, stable id; runs that
    cannot form one dataset (other product kind, units or CRS) are refused."""
    runs = []
    for d in run_dirs:
        d = Path(d)
        meta, item = d / "metadata.json", d / "stac-item.json"
        if not meta.is_file() or not item.is_file():
            raise UserError("is not a cryokit product run (no metadata.json / stac-item.json)", d)
        try:
            rec, it = json.loads(meta.read_text()), json.loads(item.read_text())
        except ValueError:
            raise UserError("holds a record that is not valid JSON", d) from None
        runs.append({"dir": d, "record": rec, "item": it, "kind": _kind(it)})
    if not runs:
        raise UserError("give at least one product run folder")
    first = runs[0]
    for r in runs[1:]:
        for what, get in (("product kind", lambda x: x["kind"]),
                          # band descriptions carry dates: the units themselves must agree
                          ("units", lambda x: sorted(set(map(str, (x["record"].get("units")
                                                                   or {}).values())))),
                          ("coordinate system", lambda x: (x["record"].get("coordinate_system")
                                                           or {}).get("epsg"))):
            if get(r) != get(first):
                raise UserError(f"{what} {get(r)} differs from {get(first)} of "
                                f"{first['dir']}: one dataset holds runs of one kind", r["dir"])
    seen: dict[str, int] = {}
    for r in runs:
        base = str(r["item"]["id"])
        # Two runs of one product with one id (two land-cover maps called "landcover"): the
        # folder name tells them apart, and stays the same across re-runs.
        rid = base if base not in seen else f"{base}_{r['dir'].name}"
        if rid in seen:
            raise UserError(f"two runs give the id {rid}: name their folders apart", r["dir"])
        seen[rid] = 1
        r["id"] = rid
    return runs


def lon_union(intervals) -> tuple[float, float]:
    """The shortest longitude arc (west, east) covering every (west, east) interval, an
    interval with west > east crossing the antimeridian; the result may cross it too.

    Examples
    --------
    >>> lon_union([(10, 20), (15, 30)]), lon_union([(170, -170), (175, 179)])
    ((10.0, 30.0), (170.0, -170.0))
    >>> lon_union([(-179, -175), (175, 178)])       # closer across 180 than across 0
    (175.0, -175.0)
    """
    arcs = sorted((float(w), float(e) if e >= w else float(e) + 360.0) for w, e in intervals)
    merged = [list(arcs[0])]
    for w, e in arcs[1:]:
        if w <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([w, e])
    if merged[-1][1] - merged[0][0] >= 360.0:
        return -180.0, 180.0
    # the widest gap between merged arcs (going round the circle) is what the union leaves out
    gaps = [(merged[(i + 1) % len(merged)][0] + (360.0 if i + 1 == len(merged) else 0.0)
             - merged[i][1], i) for i in range(len(merged))]
    _, i = max(gaps)
    west, east = merged[(i + 1) % len(merged)][0], merged[i][1]

    def wrap(x):
        return (x + 180.0) % 360.0 - 180.0 if not -180.0 <= x <= 180.0 else x
    return wrap(west), wrap(east)


def _bbox(recs) -> dict:
    west, east = lon_union([(r["bbox"]["west"], r["bbox"]["east"]) for r in recs])
    south = min(r["bbox"]["south"] for r in recs)
    north = max(r["bbox"]["north"] for r in recs)
    if not (-90 <= south <= north <= 90 and -180 <= west <= 180 and -180 <= east <= 180):
        raise UserError(f"runs give an invalid bounding box ({west}, {south}, {east}, {north})")
    return {"west": west, "east": east, "south": south, "north": north}


def _thumbnail(runs, path: Path) -> None:
    """The runs' quick-looks (each with its own colour bar and units) side by side."""
    import matplotlib.image as mpimg
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    looks = [(r["id"], r["dir"] / (r["record"].get("thumbnail") or "quicklook.png"))
             for r in runs]
    looks = [(i, p) for i, p in looks if p.is_file()]
    n = max(1, len(looks))
    cols = min(n, 4)
    rows = -(-n // cols)
    # the object API, not pyplot: no global figure state in a library call
    fig = Figure(figsize=(4 * cols, 3.4 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (rid, p) in zip(axes.ravel(), looks):
        ax.imshow(mpimg.imread(p))
        ax.set_title(rid, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def build_dataset(defn: DatasetDefinition, run_dirs, out) -> dict:
    """Gather ``run_dirs`` into the dataset folder ``out`` and write its records; returns the
    data-centre record."""
    runs = gather_runs(run_dirs)
    out = Path(out).absolute()
    for r in runs:
        if out == r["dir"].absolute() or out in r["dir"].absolute().parents:
            raise UserError("the dataset folder may not hold its own runs", out)
    with staged_dir(out, "dataset build") as stage:
        for r in runs:
            shutil.copytree(r["dir"], stage / "runs" / r["id"],
                            ignore=shutil.ignore_patterns(".cryokit*"))
        _thumbnail(runs, stage / "thumbnail.png")
        files = []
        for p in sorted(stage.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                files.append({"path": p.relative_to(stage).as_posix(),
                              "size_bytes": p.stat().st_size, "sha256": sha256(p)})
        recs = [r["record"] for r in runs]
        alts = [r["altitude_range"] for r in recs if r.get("altitude_range")]
        res = [r["spatial_resolution"] for r in recs if r.get("spatial_resolution")]
        computed = {
            "bbox": _bbox(recs),
            "time_start": min(r["acquisition_start"] for r in recs),
            "time_end": max(r["acquisition_end"] for r in recs),
            "altitude_range": ({"low": min(a["low"] for a in alts),
                                "high": max(a["high"] for a in alts), "units": "m"}
                               if alts else None),
            "spatial_resolution": ({"min": min(min(x["x"], x["y"]) for x in res),
                                    "max": max(max(x["x"], x["y"]) for x in res),
                                    "units": res[0].get("units", "metre")} if res else None),
            "temporal_resolution": sorted({str(r.get("temporal_resolution")) for r in recs
                                           if r.get("temporal_resolution")}),
            "formats": sorted({str(r.get("format")) for r in recs if r.get("format")}),
            "coordinate_systems": sorted({(r.get("coordinate_system") or {}).get("name", "?")
                                          for r in recs}),
            "projections": sorted({str(r.get("projection")) for r in recs
                                   if r.get("projection")}),
            "units": recs[0].get("units"),
            "product_kind": runs[0]["kind"],
            "runs": [r["id"] for r in runs],
            "built": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        }
        # The records describe the folder as it is, themselves excepted: they come last.
        rec = records.write_all(stage, defn, computed, files, runs)
    return rec
