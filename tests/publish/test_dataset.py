"""Publishing product runs as one dataset: the definition, the build, the records."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cryokit.cli import main
from cryokit.publish.definition import definition_from_mapping, load_definition
from cryokit.publish.records import read_datacentre

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "elevation"))
from test_dem_change import write_case  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two dem-change runs of the known-answer Longyearbyen crop (two epochs' worth)."""
    root = tmp_path_factory.mktemp("runs")
    write_case(root)
    out = []
    for name, d in (("run_2010", "2010-08-01"), ("run_2012", "2012-08-01")):
        assert main(["-q", "dem-change", str(root / "ref_2010.tif"), str(root / "tba_1990.tif"),
                     "-o", str(root / name), "--ref-date", d, "--tba-date", "1990-08-01",
                     "--glaciers", str(root / "outlines.gpkg"), "--no-curvature-bias"]) == 0
        out.append(root / name)
    return out


@pytest.fixture(scope="module")
def definition(tmp_path_factory):
    p = tmp_path_factory.mktemp("def") / "dataset.toml"
    assert main(["-q", "dataset", "init", "-o", str(p)]) == 0
    return p


@pytest.fixture(scope="module")
def built(runs, definition, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "dataset"
    assert main(["-q", "dataset", "build", str(definition), *map(str, runs), "-o", str(out)]) == 0
    return out


def test_template_is_a_valid_definition(definition):
    d = load_definition(definition)
    assert d.title["en"].startswith("Glacier surface velocity") and "zh" in d.title
    assert d.contributors[0].orcid == "0000-0002-1825-0097"
    assert d.share_type == "open-access" and d.licence_name_url()[1].endswith("CC-BY-4.0.html")
    assert definition_from_mapping({**_raw(definition), "licence": "copernicus"}) \
        .licence_name_url()[0].startswith("Copernicus data policy")


def _raw(path):
    import tomllib
    return tomllib.loads(Path(path).read_text())


@pytest.mark.parametrize("change, field", [
    (lambda d: d.pop("contact"), "contact"),
    (lambda d: d["contact"].pop("email"), "contact.email"),
    (lambda d: d["contributors"][0].update(orcid="0000-0002-1825-0098"), "orcid"),
    (lambda d: d.update(licence="CC BY 4.0"), "licence"),
    (lambda d: d.update(share_type="public"), "share_type"),
    (lambda d: d.update(doi="doi:12345"), "doi"),
    (lambda d: d.update(colour="blue"), "colour"),
    (lambda d: d["title"].pop("en"), "title.en"),
])
def test_bad_definition_names_the_field(definition, tmp_path, capsys, change, field):
    import yaml
    d = _raw(definition)
    change(d)
    p = tmp_path / "bad.yaml"          # a YAML definition is read as well as TOML
    p.write_text(yaml.safe_dump(d, allow_unicode=True))
    out = tmp_path / "ds"
    assert main(["dataset", "build", str(p), str(tmp_path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert field in err and "bad.yaml" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_dataset_folder_and_computed_fields(built, runs):
    rec = json.loads((built / "dataset.json").read_text())
    run_recs = [json.loads((r / "metadata.json").read_text()) for r in runs]
    assert rec["ds_west"] == min(r["bbox"]["west"] for r in run_recs)
    assert rec["ds_north"] == max(r["bbox"]["north"] for r in run_recs)
    assert rec["ds_south"] <= rec["ds_north"] and rec["ds_west"] <= rec["ds_east"]
    assert (rec["ds_time_start"], rec["ds_time_end"]) == ("1990-08-01", "2012-08-01")
    assert rec["ds_altitude"]["low"] < rec["ds_altitude"]["high"]
    assert rec["ds_product_kind"] == "dem_change" and len(rec["ds_runs"]) == 2
    assert rec["ds_coordinate_system"] == ["ETRS89 / UTM zone 33N"]
    # the record's file list is the folder as it is, the records themselves excepted
    import hashlib
    records = {"dataset.json", "collection.json", "datacite.xml", "iso19139.xml",
               "dataset.jsonld", "citation.ris", "citation.bib"}
    on_disk = sorted(p.relative_to(built).as_posix() for p in built.rglob("*")
                     if p.is_file() and not p.name.startswith(".")
                     and p.name not in records and p.parts[len(built.parts)] != "stac")
    assert [f["path"] for f in rec["ds_files"]] == on_disk
    assert rec["ds_file_count"] == len(on_disk)
    assert rec["ds_total_size_bytes"] == sum((built / p).stat().st_size for p in on_disk)
    for f in rec["ds_files"][:5]:
        assert hashlib.sha256((built / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert (built / "thumbnail.png").stat().st_size > 1000


def test_datacentre_record_round_trip(built, definition):
    d, computed = read_datacentre(built / "dataset.json")
    assert d == load_definition(definition)
    assert computed["time_start"] == "1990-08-01"


def test_stac_collection_relative_and_stable(built, runs, definition, tmp_path):
    import pystac
    from stac_pydantic import Collection, Item

    # the STAC core models, offline (no schema is fetched)
    Collection.model_validate(json.loads((built / "collection.json").read_text()))
    for p in (built / "stac").glob("*.json"):
        Item.model_validate(json.loads(p.read_text()))
    col = pystac.Collection.from_file(str(built / "collection.json"))
    items = list(col.get_items())
    assert sorted(i.id for i in items) == sorted(json.loads(
        (built / "dataset.json").read_text())["ds_runs"])
    assert len({i.id for i in items}) == 2 and col.extra_fields["sci:doi"]
    for p in [built / "collection.json", *(built / "stac").glob("*.json")]:
        text = p.read_text()
        assert str(built) not in text and '"/' not in text.replace('"/"', "")
    import hashlib
    for i in items:
        for a in i.assets.values():
            path = Path(a.get_absolute_href())
            assert path.is_file(), a.href
            assert a.extra_fields["file:size"] == path.stat().st_size
            assert a.extra_fields["file:checksum"] == \
                "1220" + hashlib.sha256(path.read_bytes()).hexdigest()
    # a re-run gives the same ids
    again = tmp_path / "again"
    assert main(["-q", "dataset", "build", str(definition), *map(str, runs), "-o", str(again)]) == 0
    assert sorted(p.name for p in (again / "stac").glob("*.json")) == \
        sorted(p.name for p in (built / "stac").glob("*.json"))


def test_datacite_and_citations(built):
    from lxml import etree
    xml = (built / "datacite.xml").read_text()
    root = etree.fromstring(xml.encode())
    ns = {"d": "http://datacite.org/schema/kernel-4"}
    assert root.find("d:identifier", ns).text == "10.12345/cryokit.example"
    assert {t.text for t in root.findall("d:titles/d:title", ns)} >= {
        "Glacier surface velocity, Kronebreen, 2021"}
    assert root.find("d:geoLocations/d:geoLocation/d:geoLocationBox/d:westBoundLongitude",
                     ns) is not None
    # the kernel's mandatory properties are there (the build validated the metadata)
    for path in ("d:creators/d:creator/d:creatorName", "d:publisher", "d:publicationYear",
                 "d:resourceType"):
        assert root.find(path, ns) is not None and root.find(path, ns).text, path
    assert root.find("d:resourceType", ns).get("resourceTypeGeneral") == "Dataset"
    iso = etree.fromstring((built / "iso19139.xml").read_bytes())
    g = {"gmd": "http://www.isotc211.org/2005/gmd", "gco": "http://www.isotc211.org/2005/gco",
         "gml": "http://www.opengis.net/gml/3.2"}
    assert iso.tag == "{http://www.isotc211.org/2005/gmd}MD_Metadata"
    rec = json.loads((built / "dataset.json").read_text())
    west = iso.find(".//gmd:EX_GeographicBoundingBox/gmd:westBoundLongitude/gco:Decimal", g)
    assert float(west.text) == rec["ds_west"]
    assert iso.find(".//gml:TimePeriod/gml:beginPosition", g).text == "1990-08-01"
    assert iso.find(".//gmd:CI_Citation/gmd:title/gco:CharacterString", g).text == \
        rec["title_en"]
    ris = (built / "citation.ris").read_text()
    assert ris.startswith("TY  - DATA") and "DO  - 10.12345/cryokit.example" in ris
    bib = (built / "citation.bib").read_text()
    assert bib.startswith("@misc{Doe") and "doi = {10.12345/cryokit.example}" in bib
    ld = json.loads((built / "dataset.jsonld").read_text())
    assert ld["@type"] == "Dataset" and ld["identifier"].endswith("10.12345/cryokit.example")
    assert ld["temporalCoverage"] == "1990-08-01/2012-08-01" and ld["distribution"]


def test_runs_of_other_kinds_are_refused(runs, definition, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    rec = json.loads((runs[0] / "metadata.json").read_text())
    rec["units"] = {"v": "m/d"}
    (other / "metadata.json").write_text(json.dumps(rec))
    item = json.loads((runs[0] / "stac-item.json").read_text())
    item["id"] = "velocity_20200101_20200113"
    (other / "stac-item.json").write_text(json.dumps(item))
    assert main(["dataset", "build", str(definition), str(runs[0]), str(other), "-o",
                 str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "product kind" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ds").exists()
