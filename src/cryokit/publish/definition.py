"""The dataset definition a data-centre engineer edits: what only people know about a dataset.

A TOML (or YAML) file; :data:`TEMPLATE` is a commented example (``cryokit dataset init``).
:func:`load_definition` checks every field and names the first one that is wrong.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field

from ..core.errors import UserError

__all__ = ["Person", "DatasetDefinition", "load_definition", "TEMPLATE", "SHARE_TYPES"]

SHARE_TYPES = ("open-access", "login-access", "apply-access")
LICENCES = {   # names a definition may use for licences without an SPDX id
    "copernicus": ("Copernicus data policy (Commission Delegated Regulation (EU) No 1159/2013)",
                   "https://sentinels.copernicus.eu/documents/247904/690755/"
                   "Sentinel_Data_Legal_Notice"),
}
_SPDX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_ORCID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")


def orcid_ok(orcid: str) -> bool:
    """ORCID iD format and ISO 7064 11,2 check digit.

    Examples
    --------
    >>> orcid_ok("0000-0002-1825-0097"), orcid_ok("0000-0002-1825-0098")
    (True, False)
    """
    if not _ORCID.match(orcid):
        return False
    total = 0
    for ch in orcid.replace("-", "")[:-1]:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    return orcid[-1] == ("X" if check == 10 else str(check))


@dataclass(frozen=True)
class Person:
    """A contributor, metadata author, manager or contact."""

    name: str
    email: str | None = None
    affiliation: str | None = None
    country: str | None = None
    orcid: str | None = None


@dataclass(frozen=True)
class DatasetDefinition:
    """Everything a published dataset carries that its product runs cannot compute."""

    title: dict                      # language code -> title (``en`` required)
    abstract: dict                   # language code -> abstract (``en`` required)
    source: str
    method: str
    quality: str
    contributors: tuple = ()
    metadata_authors: tuple = ()
    managers: tuple = ()
    contact: Person | None = None
    licence: str = "CC-BY-4.0"       # SPDX id, a URL, or "copernicus"
    share_type: str = "open-access"
    doi: str | None = None
    cstr: str | None = None
    identifier_note: str | None = None   # why there is no DOI/CSTR yet
    citation: str | None = None
    project: str | None = None
    funding: str | None = None
    keywords: dict = field(default_factory=dict)   # topic / subject / place / time -> list
    version: str = "1.0"
    supersedes: str | None = None
    quality_level: str | None = None

    def licence_name_url(self) -> tuple[str, str | None]:
        """The licence as words and a URL (SPDX ids point at spdx.org)."""
        key = self.licence.lower()
        if key in LICENCES:
            return LICENCES[key]
        if self.licence.startswith(("http://", "https://")):
            return self.licence, self.licence
        return self.licence, f"https://spdx.org/licenses/{self.licence}.html"

    def to_dict(self) -> dict:
        return asdict(self)


def _person(d, where: str, path) -> Person:
    if not isinstance(d, dict) or not str(d.get("name", "")).strip():
        raise UserError(f"{where}: each person needs a name", path)
    unknown = set(d) - {"name", "email", "affiliation", "country", "orcid"}
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}", path)
    if d.get("email") and not _EMAIL.match(str(d["email"])):
        raise UserError(f"{where}.email: {d['email']!r} is not an e-mail address", path)
    if d.get("orcid"):
        o = str(d["orcid"]).removeprefix("https://orcid.org/")
        if not orcid_ok(o):
            raise UserError(f"{where}.orcid: {d['orcid']!r} is not a valid ORCID iD", path)
        d = {**d, "orcid": o}
    return Person(**{k: (str(v) if v is not None else None) for k, v in d.items()})


def _texts(d, name: str, path) -> dict:
    if isinstance(d, str):
        d = {"en": d}
    if not isinstance(d, dict) or not d:
        raise UserError(f"{name}: give a text per language, e.g. {name}.en = \"...\"", path)
    for lang, text in d.items():
        if not _LANG.match(str(lang)):
            raise UserError(f"{name}.{lang}: not a language code (en, zh, de, nb...)", path)
        if not str(text).strip():
            raise UserError(f"{name}.{lang} is empty", path)
    if "en" not in d:
        raise UserError(f"{name}.en is required (other languages are optional)", path)
    return {str(k): str(v).strip() for k, v in d.items()}


REQUIRED = ("title", "abstract", "source", "method", "quality", "contributors", "contact",
            "licence", "share_type")


def definition_from_mapping(d: dict, path="dataset definition") -> DatasetDefinition:
    """Check a parsed definition and build it; a wrong or missing field is a UserError
    naming it."""
    if not isinstance(d, dict):
        raise UserError("is not a table of fields", path)
    known = {f for f in DatasetDefinition.__dataclass_fields__}
    unknown = set(d) - known
    if unknown:
        raise UserError(f"unknown field(s) {', '.join(sorted(unknown))}", path)
    for k in REQUIRED:
        if d.get(k) in (None, "", [], {}):
            raise UserError(f"{k} is required", path)
    for k in ("source", "method", "quality"):
        if not isinstance(d[k], str):
            raise UserError(f"{k}: give a text", path)
    people = {}
    for k in ("contributors", "metadata_authors", "managers"):
        v = d.get(k) or []
        if not isinstance(v, list):
            raise UserError(f"{k}: give a list of people", path)
        people[k] = tuple(_person(p, f"{k}[{i}]", path) for i, p in enumerate(v))
    contact = _person(d["contact"], "contact", path)
    if not contact.email:
        raise UserError("contact.email is required (the data centre's contact address)", path)
    lic = str(d["licence"]).strip()
    if not (lic.lower() in LICENCES or lic.startswith(("http://", "https://"))
            or _SPDX.match(lic)):
        raise UserError(f"licence: {lic!r} is neither an SPDX id (CC-BY-4.0), a URL nor "
                        f"one of {', '.join(LICENCES)}", path)
    share = str(d["share_type"]).strip()
    if share not in SHARE_TYPES:
        raise UserError(f"share_type: {share!r}; one of {', '.join(SHARE_TYPES)}", path)
    doi = d.get("doi")
    if doi:
        doi = str(doi).strip().removeprefix("https://doi.org/")
        if not _DOI.match(doi):
            raise UserError(f"doi: {d['doi']!r} is not a DOI (10.xxxx/...)", path)
    if not doi and not d.get("cstr") and not d.get("identifier_note"):
        raise UserError("doi: give the DOI or CSTR, or identifier_note saying why there is "
                        "none yet", path)
    kw = d.get("keywords") or {}
    if not isinstance(kw, dict) or any(not isinstance(v, list) for v in kw.values()):
        raise UserError("keywords: give lists per kind (topic, subject, place, time)", path)
    bad_kind = set(kw) - {"topic", "subject", "place", "time"}
    if bad_kind:
        raise UserError(f"keywords: unknown kind(s) {', '.join(sorted(bad_kind))}", path)
    return DatasetDefinition(
        title=_texts(d["title"], "title", path), abstract=_texts(d["abstract"], "abstract", path),
        source=d["source"].strip(), method=d["method"].strip(), quality=d["quality"].strip(),
        contact=contact, licence=lic, share_type=share, doi=doi or None,
        cstr=(str(d["cstr"]).strip() if d.get("cstr") else None),
        identifier_note=d.get("identifier_note"), citation=d.get("citation"),
        project=d.get("project"), funding=d.get("funding"),
        keywords={k: [str(x) for x in v] for k, v in kw.items()},
        version=str(d.get("version", "1.0")), supersedes=d.get("supersedes"),
        quality_level=(str(d["quality_level"]) if d.get("quality_level") is not None else None),
        **people)


def load_definition(path) -> DatasetDefinition:
    """Read and check a definition file (``.toml``, ``.yaml``/``.yml``)."""
    if not os.path.isfile(path):
        raise UserError("does not exist", path)
    ext = os.path.splitext(str(path))[1].lower()
    try:
        if ext in (".yaml", ".yml"):
            import yaml
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        else:
            import tomllib
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
    except Exception as e:  # noqa: BLE001 - any parse error is a user error about this file
        raise UserError(f"cannot be parsed: {' '.join(str(e).split())}", path) from None
    return definition_from_mapping(data, path)


TEMPLATE = '''\
# cryokit dataset definition: what only people know about a dataset.
# `cryokit dataset build THIS_FILE RUN...` adds everything the product runs can tell
# (extent, time range, resolution, formats, files and checksums, thumbnail).

version = "1.0"                 # this dataset's version
# supersedes = "10.12345/abcd"  # DOI (or id) of the version this one replaces
share_type = "open-access"      # open-access | login-access | apply-access
licence = "CC-BY-4.0"           # SPDX id, a URL, or "copernicus" (Copernicus data policy)
doi = "10.12345/cryokit.example"
# cstr = "11738.11.NCDC.EXAMPLE.2026"
# identifier_note = "DOI to be registered at publication"   # when neither is known yet
citation = "Doe, J. (2026). Glacier surface velocity, Kronebreen, 2021. Example Data Centre. https://doi.org/10.12345/cryokit.example"
project = "Example glacier monitoring project"
funding = "Example Research Council, grant 123456"
quality_level = "L2"
source = "Sentinel-1 IW GRD, 12-day pairs, 2021"
method = "Offset tracking of log-intensity speckle; see each run's record"
quality = "Stable-ground median and NMAD per pair, in each run's record"

[title]                         # one per language: en required, any other code optional
en = "Glacier surface velocity, Kronebreen, 2021"
zh = "2021年Kronebreen冰川表面流速"

[abstract]
en = "Daily surface velocity of Kronebreen from Sentinel-1 pairs of 2021."
zh = "基于2021年Sentinel-1影像对的Kronebreen冰川日表面流速。"

[keywords]
topic = ["cryosphere", "glaciology"]
subject = ["glacier velocity"]
place = ["Svalbard", "Kronebreen"]
time = ["2021"]

[contact]                       # the data centre's contact
name = "Example Data Centre"
email = "data@example.org"

[[contributors]]
name = "Jane Doe"
email = "jane.doe@example.org"
affiliation = "Example University"
country = "Norway"
orcid = "0000-0002-1825-0097"

[[metadata_authors]]
name = "Jane Doe"
email = "jane.doe@example.org"

[[managers]]
name = "Data Manager"
email = "manager@example.org"
affiliation = "Example Data Centre"
'''
