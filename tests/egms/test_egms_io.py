"""EGMS zip/CSV reading and writing: real bursts, every header variant, malformed input,
property-based round trips and corruptions, GIS export, and the ``egms convert`` CLI."""

from __future__ import annotations

import io
import string
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shared_path
from cryokit.cli import main
from cryokit.core.errors import UserError
from cryokit.egms.formats import (EgmsPoints, iter_egms, parse_header, read_egms, to_geodataframe,
                                  write_egms, write_geoparquet, write_gpkg)

EGMS = ("insar", "egms_2020_2024_E45N17_ustica")
ASC = "EGMS_L2b_117_0227_IW2_VV_2020_2024_1"


def _equal(a: EgmsPoints, b: EgmsPoints) -> None:
    pd.testing.assert_frame_equal(a.attrs, b.attrs)
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.disp, b.disp)  # NaN positions must match too
    assert a.header == b.header and a.level == b.level and a.naming == b.naming


# ----------------------------------------------------------------------------- real data

def test_real_l2b_reads_and_round_trips_byte_identical(tmp_path):
    src = shared_path(*EGMS, "L2b", f"{ASC}.zip")
    p = read_egms(src)
    # Figures from the data README: 11 759 PS, 207 epochs 20200103-20241231, ascending track 117.
    assert p.disp.shape == (11759, 207) and p.level == "L2b" and p.naming == "2020-2024"
    assert str(p.dates[0]) == "2020-01-03" and str(p.dates[-1]) == "2024-12-31"
    assert list(p.attrs.columns[:3]) == ["pid", "mp_type", "latitude"] and p.attrs.columns[-1] == "gnss_velocity"
    assert p.attrs["pid"].map(len).eq(10).all() and p.attrs["pid"].is_unique
    assert p.header["BURST"]["track"] == "117" and p.header["BURST"]["product_level"] == "L2b"
    assert p.attrs["track_angle"].iloc[0] == -8.94 and p.attrs["los_east"].iloc[0] == -0.621
    assert p.column("rmse").name == "rmse_ts" and p.column("height").name == "height_ortho"
    assert p.attrs["mp_type"].dtype == np.int64 and p.attrs["line"].dtype == np.int64
    out = tmp_path / f"{ASC}.zip"
    write_egms(p, out)
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(out) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        for name in a.namelist():  # same text: order, decimals, "-0.0", XML layout
            assert a.read(name) == b.read(name), name
    _equal(read_egms(out), p)


def test_real_l3_tile_and_chunked_reading():
    src = shared_path(*EGMS, "L3", "EGMS_L3_E45N17_100km_U_2020_2024_1.zip")
    p = read_egms(src)
    assert p.disp.shape == (522, 304) and p.level == "L3" and p.header["TILE"]["product_level"] == "L3"
    assert {"gnss_velocity_n", "gnss_velocity_e", "gnss_velocity_u"} <= set(p.attrs.columns)
    assert np.all(np.diff(p.dates).astype(int) == 6)  # regular 6-day grid (README)
    chunks = list(iter_egms(src, chunk_points=200))
    assert [len(c) for c in chunks] == [200, 200, 122]
    np.testing.assert_array_equal(np.concatenate([c.disp for c in chunks]), p.disp)
    _equal(read_egms(src, chunksize=100), p)


@pytest.mark.slow
def test_real_descending_round_trip(tmp_path):
    src = shared_path(*EGMS, "L2b", "EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip")
    p = read_egms(src)
    assert p.disp.shape == (11590, 210)
    write_egms(p, tmp_path / "d.csv")
    _equal(read_egms(tmp_path / "d.csv"), EgmsPoints(p.attrs, p.dates, p.disp, {}, "d", "L2b", p.naming))


# ----------------------------------------------------------------------------- variants

LEGACY_L2A = ("pid,cluster_label,mp_type,latitude,longitude,easting,northing,height,height_wgs84,"
              "line,pixel,rmse,temporal_coherence,amplitude_dispersion,incidence_angle,track_angle,"
              "los_east,los_north,los_up,mean_velocity,mean_velocity_std,acceleration,"
              "acceleration_std,seasonality,seasonality_std,20180104,20180110,20180116\n"
              "1AbCdEfGhI,3,0,46.1,11.2,4400000.5,2600000.25,812.3,860.1,10,20,1.2,0.91,0.3,39.1,"
              "-10.2,-0.6,-0.1,0.78,-2.1,0.1,0.05,0.1,0.8,0.1,0.0,-1.2,0.4\n"
              "0000000001,3,0,46.2,11.3,4400010.5,2600010.25,815.0,862.9,11,21,1.5,0.88,0.3,39.1,"
              "-10.2,-0.6,-0.1,0.78,-1.9,0.1,0.01,0.1,0.6,0.1,0.0,-0.2,-0.4\n")


def test_legacy_l2a_naming(tmp_path):
    f = tmp_path / "EGMS_L2a_095_0302_IW1_VV_2018_2022_1.csv"
    f.write_text(LEGACY_L2A)
    p = read_egms(f)
    assert p.level == "L2a" and p.naming == "legacy" and p.header == {}
    assert p.attrs["pid"].tolist() == ["1AbCdEfGhI", "0000000001"]  # leading zeros kept
    assert p.column("rmse").tolist() == [1.2, 1.5] and p.column("height_ellipse").tolist() == [860.1, 862.9]
    assert p.attrs["cluster_label"].dtype == np.int64
    np.testing.assert_allclose(p.years(), [0, 6 / 365, 12 / 365])
    write_egms(p, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == LEGACY_L2A


def test_header_dict_round_trip():
    xml = b"<?xml version='1.0' encoding='UTF-8'?>\n<BURST>\n  <track>22</track>\n  <dataset>\n" \
          b"    <image>\n      <product_id>A</product_id>\n    </image>\n    <image>\n" \
          b"      <product_id>B</product_id>\n    </image>\n  </dataset>\n</BURST>"
    h = parse_header(xml)
    assert h == {"BURST": {"track": "22", "dataset": {"image": [{"product_id": "A"}, {"product_id": "B"}]}}}
    from cryokit.egms.formats import header_xml
    assert header_xml(h) == xml


# ----------------------------------------------------------------------------- malformed input

GOOD = "pid,latitude,longitude,mean_velocity,20200103,20200109,20200115\n" \
       "aaaaaaaaaa,38.1,13.1,1.0,0.0,1.0,2.0\nbbbbbbbbbb,38.2,13.2,-1.0,0.0,-1.0,-2.0\n"


@pytest.mark.parametrize("text, expect", [
    (GOOD.replace("latitude,longitude", "lat,lon"), ["latitude", "line 1"]),
    (GOOD.replace("pid,", "id,"), ["'pid'", "line 1"]),
    (GOOD.replace("-1.0,0.0", "-1.0,zero"), ["line 3", "'20200103'", "'zero'"]),
    (GOOD.replace("38.1", "N38"), ["line 2", "'latitude'", "'N38'"]),
    (GOOD.replace(",", ";"), ["';' as delimiter", "line 1"]),
    (GOOD.replace(",20200109,20200115", "").replace(",1.0,2.0", "").replace(",-1.0,-2.0", ""),
     ["1 date column", "line 1"]),
    (GOOD.replace("20200109", "2020-01-09"), ["'2020-01-09'", "column 6", "line 1"]),
    (GOOD.replace("20200109", "20201309"), ["'20201309'", "line 1"]),
    (GOOD.replace("20200115", "20200101"), ["must increase", "line 1"]),
    (GOOD.replace("bbbbbbbbbb", "aaaaaaaaaa"), ["duplicate pid 'aaaaaaaaaa'", "lines 2 and 3"]),
    (GOOD.replace(",-2.0\n", "\n"), ["line 3", "expected 7 values"]),
    (GOOD.replace("mean_velocity", "latitude"), ["'latitude' appears twice"]),
    ("", ["empty file"]),
])
def test_malformed_csv_gives_user_error(tmp_path, text, expect):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(UserError) as e:
        read_egms(f)
    msg = str(e.value)
    assert msg.startswith(str(f)), msg
    for part in expect:
        assert part in msg, (part, msg)


def test_malformed_zip_gives_user_error(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.csv", GOOD * 1)
        zf.writestr("good.xml", "<BURST><track>1</track></BURST>")
    assert len(read_egms(good)) == 2
    data = good.read_bytes()
    cases = {"truncated.zip": data[: len(data) // 2], "garbage.zip": b"PK\x03\x04" + b"\0" * 50}
    nocsv = io.BytesIO()
    with zipfile.ZipFile(nocsv, "w") as zf:
        zf.writestr("readme.txt", "x")
    cases["nocsv.zip"] = nocsv.getvalue()
    corrupt = bytearray(data)
    start = data.index(b"good.csv") + len("good.csv") + 5  # inside the deflated CSV member
    corrupt[start:start + 20] = b"\xff" * 20
    cases["corrupt.zip"] = bytes(corrupt)
    for name, blob in cases.items():
        f = tmp_path / name
        f.write_bytes(blob)
        with pytest.raises(UserError) as e:
            read_egms(f)
        assert str(f) in str(e.value)
    assert "no .csv" in str(pytest.raises(UserError, read_egms, tmp_path / "nocsv.zip").value)
    # a damaged central directory entry (unknown compression method, or the "patched data"
    # flag bit): zipfile raises NotImplementedError, which must become a UserError too
    for member in (b"good.csv", b"good.xml"):
        for offset, value in ((10, b"\x63\x00"), (8, b"\x20\x00")):
            bad = bytearray(data)
            entry = data.index(b"PK\x01\x02")               # central directory entries
            while data[entry + 46:entry + 46 + len(member)] != member:
                entry = data.index(b"PK\x01\x02", entry + 4)
            bad[entry + offset:entry + offset + 2] = value
            f = tmp_path / "damaged.zip"
            f.write_bytes(bytes(bad))
            with pytest.raises(UserError) as e:
                read_egms(f)
            assert str(f) in str(e.value)
    with pytest.raises(UserError, match="file not found"):
        read_egms(tmp_path / "missing.zip")


# ----------------------------------------------------------------------------- property-based

PID = st.text(string.ascii_letters + string.digits, min_size=10, max_size=10)
DEC1 = st.integers(-99999, 99999).map(lambda i: i / 10)


@st.composite
def tables(draw):
    n = draw(st.integers(1, 12))
    nd = draw(st.integers(2, 7))
    pids = draw(st.lists(PID, min_size=n, max_size=n, unique=True))
    start = np.datetime64("2015-01-01") + draw(st.integers(0, 3000))
    gaps = draw(st.lists(st.integers(1, 40), min_size=nd - 1, max_size=nd - 1))
    dates = start + np.concatenate([[0], np.cumsum(gaps)]).astype("timedelta64[D]")
    lat = draw(st.lists(st.integers(-90_000_000, 90_000_000), min_size=n, max_size=n))
    attrs = {"pid": pids, "mp_type": draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)),
             "latitude": np.array(lat) / 1e6, "longitude": np.round(np.linspace(-10, 30, n), 6)}
    if draw(st.booleans()):  # legacy naming, with an L2a cluster label
        attrs["cluster_label"] = draw(st.lists(st.integers(0, 50), min_size=n, max_size=n))
        attrs["rmse"] = draw(st.lists(DEC1, min_size=n, max_size=n))
    else:
        attrs["rmse_ts"] = draw(st.lists(DEC1, min_size=n, max_size=n))
        attrs["gnss_velocity"] = draw(st.lists(DEC1, min_size=n, max_size=n))
    values = st.one_of(DEC1, st.floats(allow_nan=False, allow_infinity=False, width=64),
                       st.just(float("nan")), st.just(-0.0))
    if draw(st.booleans()):  # EGMS style: every value at 0.1 mm
        values = DEC1
    disp = np.array(draw(st.lists(values, min_size=n * nd, max_size=n * nd))).reshape(n, nd)
    return EgmsPoints(pd.DataFrame(attrs), dates, disp, {}, "t", "L2b", "2020-2024")


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=tables(), suffix=st.sampled_from([".csv", ".zip"]), header=st.booleans())
def test_random_tables_round_trip_exactly(tmp_path, p, suffix, header):
    if header:
        p.header = {"BURST": {"track": "7", "a": {"image": [{"id": "x"}, {"id": "y"}]}}}
    f = tmp_path / f"t{suffix}"
    write_egms(p, f)
    once = read_egms(f)
    np.testing.assert_array_equal(once.disp, p.disp)
    assert once.attrs["pid"].tolist() == list(p.attrs["pid"])
    for c in p.attrs.columns[1:]:
        np.testing.assert_array_equal(once.attrs[c].to_numpy(), p.attrs[c].to_numpy())
    assert once.header == (p.header if suffix == ".zip" else {})
    write_egms(once, tmp_path / f"u{suffix}")
    twice = read_egms(tmp_path / f"u{suffix}")
    twice.name = once.name
    _equal(twice, once)


CORRUPT = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("replace"), st.integers(0, 10**6), st.sampled_from(list(b",;\n\"x-.9 \x00\xff"))),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)))


def _corrupt(data: bytes, op) -> bytes:
    kind, pos, arg = op
    pos = pos % max(len(data), 1)
    if kind == "delete":
        return data[:pos] + data[pos + arg:]
    if kind == "insert":
        return data[:pos] + arg + data[pos:]
    if kind == "replace":
        return data[:pos] + bytes([arg]) + data[pos + 1:]
    return data[:pos]


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=tables(), ops=st.lists(CORRUPT, min_size=1, max_size=3), suffix=st.sampled_from([".csv", ".zip"]))
def test_random_corruptions_give_user_error_only(tmp_path, p, ops, suffix):
    good = tmp_path / f"g{suffix}"
    write_egms(p, good)
    data = good.read_bytes()
    for op in ops:
        data = _corrupt(data, op)
    f = tmp_path / f"c{suffix}"
    f.write_bytes(data)
    try:
        q = read_egms(f)
    except UserError as e:
        assert str(f) in str(e)
    else:  # a corruption may leave a valid file (e.g. a changed digit): it must be consistent
        assert q.disp.shape == (len(q.attrs), len(q.dates)) and q.attrs["pid"].is_unique


# ----------------------------------------------------------------------------- GIS export, CLI

def _small() -> EgmsPoints:
    attrs = pd.DataFrame({"pid": ["a", "b"], "latitude": [38.7, 38.71], "longitude": [13.17, 13.18],
                          "easting": [4598649.23, 4599449.5], "northing": [1739717.35, 1740817.0]})
    return EgmsPoints(attrs, np.array(["2020-01-03", "2020-01-09"], dtype="datetime64[D]"),
                      np.array([[0.0, 1.5], [0.0, np.nan]]), {"BURST": {"track": "117"}}, "small")


def test_geoparquet_and_gpkg_export(tmp_path):
    p = _small()
    write_geoparquet(p, tmp_path / "p.parquet")
    g = gpd.read_parquet(tmp_path / "p.parquet")
    assert g.crs.to_epsg() == 4326 and g["20200109"].iloc[0] == 1.5 and np.isnan(g["20200109"].iloc[1])
    assert g.geometry.x.tolist() == [13.17, 13.18]
    import pyarrow.parquet as pq
    assert b"egms" in pq.read_schema(tmp_path / "p.parquet").metadata
    write_gpkg(p, tmp_path / "p.gpkg", crs="EPSG:3035")
    g = gpd.read_file(tmp_path / "p.gpkg")
    assert g.crs.to_epsg() == 3035 and g["pid"].tolist() == ["a", "b"]
    np.testing.assert_allclose(g.geometry.x, [4598649.23, 4599449.5])
    # without easting/northing the geometry is latitude/longitude reprojected to EPSG:3035
    t = to_geodataframe(EgmsPoints(p.attrs.drop(columns=["easting", "northing"]), p.dates, p.disp), "EPSG:3035")
    assert t.crs.to_epsg() == 3035
    from pyproj import Transformer
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True).transform(
        p.attrs["longitude"].to_numpy(), p.attrs["latitude"].to_numpy())
    np.testing.assert_allclose(t.geometry.x, x, atol=1e-3)
    np.testing.assert_allclose(t.geometry.y, y, atol=1e-3)


def test_cli_convert_and_errors(tmp_path):
    f = tmp_path / "EGMS_L2a_095_0302_IW1_VV_2018_2022_1.csv"
    f.write_text(LEGACY_L2A)
    assert main(["egms", "convert", str(f), "-o", str(tmp_path / "o.gpkg")]) == 0
    assert len(gpd.read_file(tmp_path / "o.gpkg")) == 2
    assert main(["egms", "convert", str(f), "-o", str(tmp_path / "o.zip")]) == 0
    _equal(read_egms(tmp_path / "o.zip"), read_egms(f))
    assert main(["egms", "convert", str(f), "-o", str(tmp_path / "o.txt")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD.replace("38.1", "x"))
    assert main(["egms", "convert", str(bad), "-o", str(tmp_path / "b.csv")]) == 2
    assert not (tmp_path / "b.csv").exists()


def test_every_header_corruption_is_a_user_error(tmp_path, capsys):
    """Fixed examples: each byte of a legacy header deleted, cut there, or a comma inserted
    there (a 'cluster_labe' column, a lost 'mp_type'...), through ``egms stats``: exit 0 or
    2, never an internal error."""
    attrs = pd.DataFrame({"pid": ["aaaaaaaaaa", "bbbbbbbbbb"], "mp_type": [0, 1],
                          "latitude": [38.7, 38.8], "longitude": [13.1, 13.2],
                          "cluster_label": [1, 2], "rmse": [0.1, 0.2]})
    dates = np.datetime64("2020-01-01") + 6 * np.arange(8)
    p = EgmsPoints(attrs, dates, np.arange(16.0).reshape(2, 8) / 10, {}, "t", "L2a", "legacy")
    good = tmp_path / "g.csv"
    write_egms(p, good)
    data = good.read_bytes()
    header = data.index(b"\n")
    for i in range(header + 1):
        for bad in (data[:i] + data[i + 1:], data[:i], data[:i] + b"," + data[i:]):
            f = tmp_path / "c.csv"
            f.write_bytes(bad)
            out = tmp_path / "o.csv"
            out.unlink(missing_ok=True)
            capsys.readouterr()
            rc = main(["egms", "stats", str(f), "-o", str(out)])
            err = capsys.readouterr().err
            assert rc in (0, 2) and "internal error" not in err, (bad[:header + 1], err)
            assert rc == 0 or (len(err.strip().splitlines()) == 1 and "c" in err)
