"""Catalogue search on 100 000 datasets: DuckDB over the Parquet index against a brute-force
Python filter of the same rows (the property tests' reference), same queries, same run.

    python benchmarks/catalog_search.py [n]

Prints the median of 5 runs per query (whole search: DuckDB opens and scans the file each
time) and the index size.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "publish"))
from test_catalog import _rows  # noqa: E402

from cryokit.publish.catalog import Query, brute_search, search, write_index  # noqa: E402

QUERIES = {
    "bbox (Svalbard)": Query(bbox=(10, 76, 35, 81)),
    "bbox across 180": Query(bbox=(170, 50, -170, 70)),
    "time 2015-2016": Query(start="2015-01-01", end="2016-12-31"),
    "keyword": Query(keyword="svalbard"),
    "kind + bbox + time": Query(bbox=(-30, 60, 30, 80), start="2010-01-01", kind="dem_change"),
    "free text": Query(text="dataset 12"),
}


def main(n: int = 100_000) -> None:
    rows = _rows(n, 1)
    with tempfile.TemporaryDirectory() as d:
        write_index(d, rows)
        size = (Path(d) / "index.parquet").stat().st_size
        print(f"{n} datasets, index.parquet {size / 2**20:.1f} MiB")
        print(f"{'query':24s} {'hits':>6s} {'DuckDB s':>9s} {'brute s':>9s} {'ratio':>6s}")
        for name, q in QUERIES.items():
            t_db, t_bf = [], []
            for _ in range(5):
                t = time.perf_counter()
                hits = search(d, q)
                t_db.append(time.perf_counter() - t)
                t = time.perf_counter()
                ref = brute_search(rows, q)
                t_bf.append(time.perf_counter() - t)
            assert [r["id"] for r in hits] == [r["id"] for r in ref]
            a, b = statistics.median(t_db), statistics.median(t_bf)
            print(f"{name:24s} {len(hits):6d} {a:9.3f} {b:9.3f} {b / a:6.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
