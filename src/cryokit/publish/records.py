"""The dataset's records, all from one model (the definition plus what the build computed):
the data-centre record (``dataset.json``, fields as the data centres' records name them),
a STAC Collection with one Item per run, DataCite 4.5 XML, schema.org JSON-LD, RIS and BibTeX.

:func:`read_datacentre` reads ``dataset.json`` back into the same model (round trip).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .. import __version__
from ..core.records import write_json
from .definition import DatasetDefinition, Person, definition_from_mapping

RECORDS = ("dataset.json", "collection.json", "stac/", "datacite.xml", "iso19139.xml",
           "dataset.jsonld", "citation.ris", "citation.bib")


def _people(ps) -> list[dict]:
    return [{k: v for k, v in asdict(p).items() if v is not None} for p in ps]


def datacentre_record(defn: DatasetDefinition, computed: dict, files: list[dict]) -> dict:
    """The data-centre record: the definition's fields under the data centres' names, the
    computed extent and the file list (every file but the records themselves)."""
    name, url = defn.licence_name_url()
    b = computed["bbox"]
    return {
        "title_en": defn.title["en"], "title_cn": defn.title.get("zh"),
        "abstract_en": defn.abstract["en"], "abstract_cn": defn.abstract.get("zh"),
        "i18n": {lang: {"title": defn.title.get(lang), "abstract": defn.abstract.get(lang)}
                 for lang in sorted(set(defn.title) | set(defn.abstract))},
        "ds_source": defn.source, "ds_method": defn.method, "ds_quality": defn.quality,
        "ds_quality_level": defn.quality_level,
        "ds_contributors": _people(defn.contributors),
        "ds_metadata_authors": _people(defn.metadata_authors),
        "ds_managers": _people(defn.managers),
        "ds_contact": _people([defn.contact])[0],
        "license_type": defn.licence, "license_name": name, "license_url": url,
        "ds_share_type": defn.share_type,
        "doi_value": defn.doi, "cstr": defn.cstr, "identifier_note": defn.identifier_note,
        "citation": citation_text(defn, computed), "citation_given": defn.citation,
        "project": defn.project,
        "funding": defn.funding, "keywords": defn.keywords, "version": defn.version,
        "supersedes": defn.supersedes,
        "ds_west": b["west"], "ds_east": b["east"], "ds_south": b["south"], "ds_north": b["north"],
        "ds_time_start": computed["time_start"], "ds_time_end": computed["time_end"],
        "ds_altitude": computed["altitude_range"],
        "ds_spatial_resolution": computed["spatial_resolution"],
        "ds_temporal_resolution": computed["temporal_resolution"],
        "ds_format": computed["formats"], "ds_coordinate_system": computed["coordinate_systems"],
        "ds_projection": computed["projections"], "ds_units": computed["units"],
        "ds_product_kind": computed["product_kind"], "ds_runs": computed["runs"],
        "ds_file_count": len(files), "ds_total_size_bytes": sum(f["size_bytes"] for f in files),
        "ds_files": files, "ds_files_note": "every file of the dataset folder but its records "
                                            f"({', '.join(RECORDS)}), with SHA-256 checksums",
        "thumbnail": "thumbnail.png", "software": f"cryokit {__version__}",
        "built": computed["built"],
    }


def read_datacentre(path) -> tuple[DatasetDefinition, dict]:
    """``dataset.json`` back into the definition and the computed fields."""
    r = json.loads(Path(path).read_text(encoding="utf-8"))
    langs = r["i18n"]
    d = {"title": {k: v["title"] for k, v in langs.items() if v.get("title")},
         "abstract": {k: v["abstract"] for k, v in langs.items() if v.get("abstract")},
         "source": r["ds_source"], "method": r["ds_method"], "quality": r["ds_quality"],
         "quality_level": r.get("ds_quality_level"), "contributors": r["ds_contributors"],
         "metadata_authors": r["ds_metadata_authors"], "managers": r["ds_managers"],
         "contact": r["ds_contact"], "licence": r["license_type"],
         "share_type": r["ds_share_type"], "doi": r.get("doi_value"), "cstr": r.get("cstr"),
         "identifier_note": r.get("identifier_note"), "citation": r.get("citation_given"),
         "project": r.get("project"), "funding": r.get("funding"),
         "keywords": r.get("keywords") or {}, "version": r.get("version"),
         "supersedes": r.get("supersedes")}
    computed = {"bbox": {k: r[f"ds_{k}"] for k in ("west", "east", "south", "north")},
                "time_start": r["ds_time_start"], "time_end": r["ds_time_end"],
                "altitude_range": r["ds_altitude"], "files": r["ds_files"]}
    return definition_from_mapping({k: v for k, v in d.items() if v is not None}), computed


def citation_text(defn: DatasetDefinition, computed: dict) -> str:
    """The definition's citation, else one made from the contributors, year, title and DOI."""
    if defn.citation:
        return defn.citation
    names = "; ".join(p.name for p in defn.contributors)
    year = str(computed["built"])[:4]
    ident = f" https://doi.org/{defn.doi}" if defn.doi else (f" CSTR:{defn.cstr}" if defn.cstr else "")
    return f"{names} ({year}). {defn.title['en']}. Version {defn.version}.{ident}"


def ris(defn: DatasetDefinition, computed: dict) -> str:
    lines = ["TY  - DATA"] + [f"AU  - {p.name}" for p in defn.contributors]
    lines += [f"TI  - {defn.title['en']}", f"PY  - {str(computed['built'])[:4]}",
              f"AB  - {defn.abstract['en']}", f"ET  - {defn.version}"]
    lines += [f"DO  - {defn.doi}"] if defn.doi else []
    lines += [f"UR  - https://doi.org/{defn.doi}"] if defn.doi else []
    lines += [f"KW  - {k}" for v in defn.keywords.values() for k in v]
    return "\n".join(lines + ["ER  - ", ""])


def bibtex(defn: DatasetDefinition, computed: dict) -> str:
    def esc(t):
        return str(t).replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
    key = (defn.contributors[0].name.split()[-1] if defn.contributors else "dataset")
    key = "".join(c for c in key if c.isalnum()) + str(computed["built"])[:4]
    fields = {"author": " and ".join(p.name for p in defn.contributors),
              "title": defn.title["en"], "year": str(computed["built"])[:4],
              "version": defn.version, "doi": defn.doi, "publisher": defn.contact.name}
    body = ",\n".join(f"  {k} = {{{esc(v)}}}" for k, v in fields.items() if v)
    return f"@misc{{{key},\n{body}\n}}\n"


def jsonld(defn: DatasetDefinition, computed: dict, files: list[dict]) -> dict:
    b = computed["bbox"]
    name, url = defn.licence_name_url()
    return {
        "@context": "https://schema.org/", "@type": "Dataset", "name": defn.title["en"],
        "description": defn.abstract["en"], "license": url or name, "version": defn.version,
        "identifier": (f"https://doi.org/{defn.doi}" if defn.doi else defn.cstr),
        "creator": [{"@type": "Person", "name": p.name,
                     **({"affiliation": {"@type": "Organization", "name": p.affiliation}}
                        if p.affiliation else {}),
                     **({"identifier": f"https://orcid.org/{p.orcid}"} if p.orcid else {})}
                    for p in defn.contributors],
        "keywords": [k for v in defn.keywords.values() for k in v],
        "spatialCoverage": {"@type": "Place", "geo": {
            "@type": "GeoShape", "box": f"{b['south']} {b['west']} {b['north']} {b['east']}"}},
        "temporalCoverage": f"{computed['time_start']}/{computed['time_end']}",
        "distribution": [{"@type": "DataDownload", "contentUrl": f["path"],
                          "contentSize": f"{f['size_bytes']} B",
                          "encodingFormat": _media(f["path"])} for f in files],
    }


def _media(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower()
    return {"tif": "image/tiff; application=geotiff", "png": "image/png",
            "json": "application/json", "csv": "text/csv", "gpkg": "application/geopackage+sqlite3",
            "parquet": "application/vnd.apache.parquet", "nc": "application/x-netcdf",
            "vrt": "application/xml"}.get(ext, "application/octet-stream")


def datacite_dict(defn: DatasetDefinition, computed: dict, files: list[dict]) -> dict:
    """The DataCite 4.5 metadata (the ``datacite`` package's JSON form)."""
    b = computed["bbox"]
    name, url = defn.licence_name_url()

    def creator(p: Person) -> dict:
        c = {"name": p.name, "nameType": "Personal"}
        if p.affiliation:
            c["affiliation"] = [{"name": p.affiliation}]
        if p.orcid:
            c["nameIdentifiers"] = [{"nameIdentifier": p.orcid, "nameIdentifierScheme": "ORCID",
                                     "schemeUri": "https://orcid.org"}]
        return c

    ident = {"doi": defn.doi} if defn.doi else {}
    if defn.cstr:
        ident["alternateIdentifiers"] = [{"alternateIdentifier": defn.cstr,
                                          "alternateIdentifierType": "CSTR"}]
    return {
        **ident,
        "creators": [creator(p) for p in defn.contributors],
        "titles": [{"title": t, "lang": lang} for lang, t in defn.title.items()],
        "publisher": {"name": defn.contact.name},
        "publicationYear": str(computed["built"])[:4],
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": computed["product_kind"]},
        "subjects": [{"subject": k} for v in defn.keywords.values() for k in v],
        "contributors": [{**creator(p), "contributorType": "DataManager"}
                         for p in defn.managers]
                        + [{"name": defn.contact.name, "contributorType": "ContactPerson"}],
        "dates": [{"date": f"{computed['time_start']}/{computed['time_end']}",
                   "dateType": "Collected"}],
        "language": "en",
        "sizes": [f"{sum(f['size_bytes'] for f in files)} bytes", f"{len(files)} files"],
        "formats": computed["formats"],
        "version": defn.version,
        "rightsList": [{"rights": name, **({"rightsUri": url} if url else {})}],
        "descriptions": [{"description": a, "descriptionType": "Abstract", "lang": lang}
                         for lang, a in defn.abstract.items()]
                        + [{"description": defn.method, "descriptionType": "Methods"}],
        "geoLocations": [{"geoLocationBox": {
            "westBoundLongitude": b["west"], "eastBoundLongitude": b["east"],
            "southBoundLatitude": b["south"], "northBoundLatitude": b["north"]}}],
        **({"relatedIdentifiers": [{"relatedIdentifier": defn.supersedes,
                                    "relatedIdentifierType": "DOI", "relationType": "IsNewVersionOf"}]}
           if defn.supersedes else {}),
        **({"fundingReferences": [{"funderName": defn.funding}]} if defn.funding else {}),
        "schemaVersion": "http://datacite.org/schema/kernel-4",
    }


def datacite_xml(defn, computed, files) -> str:
    """DataCite 4.5 XML, validated against the schema the ``datacite`` package ships."""
    from datacite import schema45

    data = datacite_dict(defn, computed, files)
    if not schema45.validate(data):
        errors = [e.message for e in schema45.validator.iter_errors(data)][:3]
        raise ValueError(f"DataCite metadata does not validate: {'; '.join(errors)}")
    return schema45.tostring(data)


GMD, GCO, GML = ("http://www.isotc211.org/2005/gmd", "http://www.isotc211.org/2005/gco",
                 "http://www.opengis.net/gml/3.2")


def iso19139_xml(defn: DatasetDefinition, computed: dict, files: list[dict]) -> str:
    """ISO 19115 metadata in its ISO 19139 XML encoding (``gmd:MD_Metadata``): identifier,
    contact, title, date, abstract, keywords, licence, geographic and temporal extent,
    formats and lineage."""
    import xml.etree.ElementTree as ET

    ns = {"gmd": GMD, "gco": GCO, "gml": GML}
    for pre, uri in ns.items():
        ET.register_namespace(pre, uri)

    def el(parent, path, text=None, **attrs):
        node = parent
        for tag in path.split("/"):
            pre, name = tag.split(":")
            node = ET.SubElement(node, f"{{{ns[pre]}}}{name}")
        for k, v in attrs.items():
            node.set(k, v)
        if text is not None:
            node.text = str(text)
        return node

    def party(parent, p: Person, role: str):
        rp = el(parent, "gmd:CI_ResponsibleParty")
        el(rp, "gmd:individualName/gco:CharacterString", p.name)
        if p.affiliation:
            el(rp, "gmd:organisationName/gco:CharacterString", p.affiliation)
        if p.email:
            el(rp, "gmd:contactInfo/gmd:CI_Contact/gmd:address/gmd:CI_Address/"
                   "gmd:electronicMailAddress/gco:CharacterString", p.email)
        el(rp, "gmd:role/gmd:CI_RoleCode", role, codeList="http://standards.iso.org/iso/19139/"
           "resources/gmxCodelists.xml#CI_RoleCode", codeListValue=role)

    b = computed["bbox"]
    root = ET.Element(f"{{{GMD}}}MD_Metadata")
    el(root, "gmd:fileIdentifier/gco:CharacterString", defn.doi or defn.cstr or defn.title["en"])
    el(root, "gmd:language/gco:CharacterString", "eng")
    party(el(root, "gmd:contact"), defn.contact, "pointOfContact")
    el(root, "gmd:dateStamp/gco:DateTime", computed["built"])
    ident = el(root, "gmd:identificationInfo/gmd:MD_DataIdentification")
    cit = el(ident, "gmd:citation/gmd:CI_Citation")
    el(cit, "gmd:title/gco:CharacterString", defn.title["en"])
    d = el(cit, "gmd:date/gmd:CI_Date")
    el(d, "gmd:date/gco:DateTime", computed["built"])
    el(d, "gmd:dateType/gmd:CI_DateTypeCode", "publication", codeList="http://standards.iso"
       ".org/iso/19139/resources/gmxCodelists.xml#CI_DateTypeCode", codeListValue="publication")
    el(cit, "gmd:edition/gco:CharacterString", defn.version)
    if defn.doi or defn.cstr:
        el(cit, "gmd:identifier/gmd:MD_Identifier/gmd:code/gco:CharacterString",
           f"https://doi.org/{defn.doi}" if defn.doi else f"CSTR:{defn.cstr}")
    for p in defn.contributors:
        party(el(cit, "gmd:citedResponsibleParty"), p, "author")
    el(ident, "gmd:abstract/gco:CharacterString", defn.abstract["en"])
    for p in defn.managers:
        party(el(ident, "gmd:pointOfContact"), p, "custodian")
    words = [k for v in defn.keywords.values() for k in v]
    if words:
        kw = el(ident, "gmd:descriptiveKeywords/gmd:MD_Keywords")
        for k in words:
            el(kw, "gmd:keyword/gco:CharacterString", k)
    name, url = defn.licence_name_url()
    el(ident, "gmd:resourceConstraints/gmd:MD_LegalConstraints/gmd:otherConstraints/"
              "gco:CharacterString", f"{name}{f' ({url})' if url else ''}; access: {defn.share_type}")
    el(ident, "gmd:language/gco:CharacterString", "eng")
    ext = el(ident, "gmd:extent/gmd:EX_Extent")
    box = el(ext, "gmd:geographicElement/gmd:EX_GeographicBoundingBox")
    for tag, key in (("westBoundLongitude", "west"), ("eastBoundLongitude", "east"),
                     ("southBoundLatitude", "south"), ("northBoundLatitude", "north")):
        el(box, f"gmd:{tag}/gco:Decimal", repr(float(b[key])))
    period = el(ext, "gmd:temporalElement/gmd:EX_TemporalExtent/gmd:extent/gml:TimePeriod")
    period.set(f"{{{GML}}}id", "extent")
    el(period, "gml:beginPosition", computed["time_start"])
    el(period, "gml:endPosition", computed["time_end"])
    dist = el(root, "gmd:distributionInfo/gmd:MD_Distribution")
    for f in computed["formats"]:
        fm = el(dist, "gmd:distributionFormat/gmd:MD_Format")
        el(fm, "gmd:name/gco:CharacterString", f)
        el(fm, "gmd:version/gco:CharacterString", "unknown")
    dq = el(root, "gmd:dataQualityInfo/gmd:DQ_DataQuality")
    el(dq, "gmd:scope/gmd:DQ_Scope/gmd:level/gmd:MD_ScopeCode", "dataset",
       codeList="http://standards.iso.org/iso/19139/resources/gmxCodelists.xml#MD_ScopeCode",
       codeListValue="dataset")
    el(dq, "gmd:lineage/gmd:LI_Lineage/gmd:statement/gco:CharacterString",
       f"{defn.source}. {defn.method}. Quality: {defn.quality}")
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


FILE_EXT = "https://stac-extensions.github.io/file/v2.1.0/schema.json"


def stac_collection(stage: Path, defn: DatasetDefinition, computed: dict, runs,
                    files: list[dict] = ()) -> None:
    """``collection.json`` and ``stac/<id>.json``, one Item per run (the run's own Item under a
    dataset-unique, stable id, its assets pointing into ``runs/<id>/``), all links relative;
    the scientific and version extensions on the Collection."""
    import datetime as dt

    import pystac

    b = computed["bbox"]
    t0 = dt.datetime.fromisoformat(str(computed["time_start"])[:10]).replace(tzinfo=dt.timezone.utc)
    t1 = dt.datetime.fromisoformat(str(computed["time_end"])[:10]).replace(tzinfo=dt.timezone.utc)
    name, url = defn.licence_name_url()
    sci = "https://stac-extensions.github.io/scientific/v1.0.0/schema.json"
    ver = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
    col = pystac.Collection(
        id=(defn.doi or defn.cstr or defn.title["en"]).replace("/", "_").replace(" ", "_"),
        title=defn.title["en"], description=defn.abstract["en"],
        extent=pystac.Extent(pystac.SpatialExtent([[b["west"], b["south"], b["east"], b["north"]]]),
                             pystac.TemporalExtent([[t0, t1]])),
        license=defn.licence if "/" not in defn.licence else "other",
        keywords=[k for v in defn.keywords.values() for k in v],
        stac_extensions=[sci, ver],
        extra_fields={"version": defn.version,
                      **({"sci:doi": defn.doi} if defn.doi else {}),
                      "sci:citation": citation_text(defn, computed)})
    if url:
        col.add_link(pystac.Link("license", url, title=name))
    col.add_asset("thumbnail", pystac.Asset("./thumbnail.png", media_type="image/png",
                                            roles=["thumbnail"]))
    col.set_self_href(str(stage / "collection.json"))
    by_path = {f["path"]: f for f in files}
    for r in runs:
        d = dict(r["item"])
        d["id"] = r["id"]
        d["links"] = []
        item = pystac.Item.from_dict(d, preserve_dict=False)
        for a in item.assets.values():   # relative to stac/<id>.json: the run's own files
            if not a.href.startswith(("http://", "https://", "/")):
                path = f"runs/{r['id']}/{a.href.removeprefix('./')}"
                a.href = f"../{path}"
                f = by_path.get(path)
                if f is not None:        # file extension: size, SHA-256 as a multihash
                    a.extra_fields["file:size"] = f["size_bytes"]
                    a.extra_fields["file:checksum"] = "1220" + f["sha256"]
        if FILE_EXT not in item.stac_extensions:
            item.stac_extensions.append(FILE_EXT)
        col.add_item(item)
        item.set_self_href(str(stage / "stac" / f"{r['id']}.json"))
    col.save(pystac.CatalogType.SELF_CONTAINED)


def write_all(stage: Path, defn: DatasetDefinition, computed: dict, files: list[dict],
              runs) -> dict:
    rec = datacentre_record(defn, computed, files)
    xml = datacite_xml(defn, computed, files)
    (stage / "datacite.xml").write_text(xml, encoding="utf-8")
    (stage / "iso19139.xml").write_text(iso19139_xml(defn, computed, files), encoding="utf-8")
    write_json(stage / "dataset.jsonld", jsonld(defn, computed, files))
    (stage / "citation.ris").write_text(ris(defn, computed), encoding="utf-8")
    (stage / "citation.bib").write_text(bibtex(defn, computed), encoding="utf-8")
    stac_collection(stage, defn, computed, runs, files)
    write_json(stage / "dataset.json", rec)
    return rec
