"""A catalogue over many datasets: one row per dataset in a Parquet index, searched with DuckDB.

``CATALOG/index.parquet`` holds, per dataset, its id (DOI, CSTR or folder name), titles,
abstract, product kind, keywords, extent (west, east, south, north in degrees), time range and
the path of its folder; :func:`search` filters by bounding box, time range, keyword, product
kind and free text in SQL over the file, so the index never has to fit in memory.
:func:`brute_search` is the same filter in plain Python (the property tests' reference).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UserError

__all__ = ["add_datasets", "search", "brute_search", "Query", "read_index", "INDEX"]

INDEX = "index.parquet"
COLUMNS = ("id", "title_en", "title_cn", "abstract_en", "kind", "keywords", "west", "east",
           "south", "north", "time_start", "time_end", "version", "path")


@dataclass(frozen=True)
class Query:
    """What to find: every given criterion must hold (None = any)."""

    bbox: tuple[float, float, float, float] | None = None   # west, south, east, north
    start: str | None = None          # ISO date: datasets ending on or after it
    end: str | None = None            # ISO date: datasets starting on or before it
    keyword: str | None = None        # one keyword, case-insensitive, exact
    kind: str | None = None           # product kind (dem_change, velocity...)
    text: str | None = None           # free text in titles, abstract and keywords


def row_from_record(rec: dict, folder: Path) -> dict:
    """The index row of a dataset's ``dataset.json``."""
    kws = sorted({k for v in (rec.get("keywords") or {}).values() for k in v})
    return {"id": rec.get("doi_value") or rec.get("cstr") or folder.name,
            "title_en": rec["title_en"], "title_cn": rec.get("title_cn") or "",
            "abstract_en": rec.get("abstract_en") or "", "kind": rec.get("ds_product_kind") or "",
            "keywords": "|".join(kws), "west": float(rec["ds_west"]), "east": float(rec["ds_east"]),
            "south": float(rec["ds_south"]), "north": float(rec["ds_north"]),
            "time_start": str(rec["ds_time_start"])[:10], "time_end": str(rec["ds_time_end"])[:10],
            "version": str(rec.get("version") or ""), "path": str(folder.absolute())}


def read_index(catalog) -> list[dict]:
    import pyarrow.parquet as pq
    p = Path(catalog) / INDEX
    return pq.read_table(p).to_pylist() if p.is_file() else []


def write_index(catalog, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..core.atomic import atomic_file
    table = pa.table({c: [r[c] for r in rows] for c in COLUMNS},
                     schema=pa.schema([(c, pa.float64() if c in ("west", "east", "south", "north")
                                        else pa.string()) for c in COLUMNS]))
    Path(catalog).mkdir(parents=True, exist_ok=True)
    with atomic_file(Path(catalog) / INDEX) as tmp:
        pq.write_table(table, tmp, row_group_size=65536)


def add_datasets(catalog, folders) -> list[dict]:
    """Add (or replace, by id) datasets built by ``cryokit dataset build``."""
    rows = {r["id"]: r for r in read_index(catalog)}
    for f in folders:
        f = Path(f)
        rec_path = f / "dataset.json"
        if not rec_path.is_file():
            raise UserError("is not a dataset folder (no dataset.json; see 'cryokit dataset "
                            "build')", f)
        try:
            rec = json.loads(rec_path.read_text(encoding="utf-8"))
            row = row_from_record(rec, f)
        except (ValueError, KeyError) as e:
            raise UserError(f"dataset.json lacks or mangles a field ({e})", f) from None
        rows[row["id"]] = row
    out = sorted(rows.values(), key=lambda r: r["id"])
    write_index(catalog, out)
    return out


def _where(q: Query) -> tuple[str, list]:
    conds, args = [], []
    if q.bbox is not None:
        w, s, e, n = q.bbox
        if not (s <= n):
            raise UserError(f"--bbox: south {s} is north of north {n}")
        conds.append("south <= ? AND north >= ?")
        args += [n, s]
        if w <= e:   # a dataset across the antimeridian has west > east
            conds.append("((west <= east AND west <= ? AND east >= ?) OR "
                         "(west > east AND (west <= ? OR east >= ?)))")
            args += [e, w, e, w]
        else:        # the query itself crosses the antimeridian
            conds.append("(west > east OR west <= ? OR east >= ?)")
            args += [e, w]
    if q.start:
        conds.append("time_end >= ?")
        args.append(q.start[:10])
    if q.end:
        conds.append("time_start <= ?")
        args.append(q.end[:10])
    if q.keyword:
        conds.append("list_contains(string_split(lower(keywords), '|'), ?)")
        args.append(q.keyword.lower())
    if q.kind:
        conds.append("kind = ?")
        args.append(q.kind)
    if q.text:
        conds.append("(title_en || ' ' || title_cn || ' ' || abstract_en || ' ' || keywords) "
                     "ILIKE ? ESCAPE '\\'")
        esc = q.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args.append(f"%{esc}%")
    return (" AND ".join(conds) or "TRUE"), args


def search(catalog, q: Query) -> list[dict]:
    """Datasets of ``catalog`` matching ``q``, by id (DuckDB over the Parquet index)."""
    import duckdb

    p = Path(catalog) / INDEX
    if not p.is_file():
        raise UserError("is not a catalogue (no index.parquet; see 'cryokit catalog add')",
                        catalog)
    where, args = _where(q)
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT * FROM read_parquet(?) WHERE {where} ORDER BY id",
                          [os.fspath(p), *args])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


def _overlaps(r: dict, bbox) -> bool:
    w, s, e, n = bbox
    if r["south"] > n or r["north"] < s:
        return False
    if w <= e:
        if r["west"] <= r["east"]:
            return r["west"] <= e and r["east"] >= w
        return r["west"] <= e or r["east"] >= w
    return r["west"] > r["east"] or r["west"] <= e or r["east"] >= w


def brute_search(rows: list[dict], q: Query) -> list[dict]:
    """:func:`search` in plain Python, row by row."""
    out = []
    for r in rows:
        if q.bbox is not None and not _overlaps(r, q.bbox):
            continue
        if q.start and r["time_end"] < q.start[:10]:
            continue
        if q.end and r["time_start"] > q.end[:10]:
            continue
        if q.keyword and q.keyword.lower() not in r["keywords"].lower().split("|"):
            continue
        if q.kind and r["kind"] != q.kind:
            continue
        if q.text and q.text.lower() not in " ".join(
                (r["title_en"], r["title_cn"], r["abstract_en"], r["keywords"])).lower():
            continue
        out.append(r)
    return sorted(out, key=lambda r: r["id"])
