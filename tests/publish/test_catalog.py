"""The catalogue's search equals a brute-force filter of the same records (property test)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cryokit.publish.catalog import Query, brute_search, search, write_index

KINDS = ("dem_change", "velocity", "landcover", "egms")
WORDS = ("glacier", "Svalbard", "ice_sheet", "50%", "permafrost", "冰川")


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        west = float(rng.uniform(-180, 180))
        east = float(np.clip(west + rng.uniform(0.01, 40), -180, 180))
        if rng.random() < 0.1:     # across the antimeridian: west > east
            west, east = float(rng.uniform(150, 180)), float(rng.uniform(-180, -150))
        south = float(rng.uniform(-90, 89))
        north = float(min(90, south + rng.uniform(0.01, 20)))
        y0 = int(rng.integers(1990, 2024))
        kw = sorted(set(rng.choice(WORDS, int(rng.integers(0, 3)), replace=True).tolist()))
        rows.append({"id": f"10.1234/ds{i:06d}", "title_en": f"Dataset {i} {kw[0] if kw else ''}",
                     "title_cn": "数据集" if i % 3 == 0 else "", "abstract_en": f"about {i}",
                     "kind": KINDS[i % len(KINDS)], "keywords": "|".join(kw), "west": west,
                     "east": east, "south": south, "north": north,
                     "time_start": f"{y0}-01-01", "time_end": f"{y0 + int(rng.integers(0, 5))}-12-31",
                     "version": "1.0", "path": f"/data/ds{i}"})
    return rows


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    d = tmp_path_factory.mktemp("cat")
    rows = _rows(600, 0)
    write_index(d, rows)
    return d, rows


queries = st.builds(
    Query,
    bbox=st.one_of(st.none(), st.tuples(st.floats(-180, 180), st.floats(-90, 0),
                                        st.floats(-180, 180), st.floats(0, 90))),
    start=st.one_of(st.none(), st.integers(1990, 2030).map(lambda y: f"{y}-06-01")),
    end=st.one_of(st.none(), st.integers(1990, 2030).map(lambda y: f"{y}-06-01")),
    keyword=st.one_of(st.none(), st.sampled_from([w.lower() for w in WORDS] + ["none"])),
    kind=st.one_of(st.none(), st.sampled_from(KINDS)),
    text=st.one_of(st.none(), st.sampled_from(["dataset 1", "50%", "ice_", "冰", "about 59"])))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(q=queries)
def test_search_equals_brute_force(catalog, q):
    d, rows = catalog
    got = [r["id"] for r in search(d, q)]
    assert got == [r["id"] for r in brute_search(rows, q)]


def test_some_queries_find_something(catalog):
    d, rows = catalog
    assert len(search(d, Query(kind="velocity"))) == 150
    assert 0 < len(search(d, Query(keyword="svalbard"))) < 600
    assert len(search(d, Query(text="50%"))) == len([r for r in rows if "50%" in r["keywords"]])
