"""A static web site for a catalogue: an index page with filters that work without a server
and one landing page per dataset. Everything the pages need ships with cryokit
(``templates/``); they make no request to any other host.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

from .. import __version__
from ..core.errors import UserError
from .catalog import read_index

__all__ = ["build_site", "extent_svg", "serve"]

TEMPLATES = Path(__file__).with_name("templates")
EXPORTS = ("dataset.json", "collection.json", "datacite.xml", "iso19139.xml", "dataset.jsonld",
           "citation.ris", "citation.bib")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "dataset"


def _edges(w, s, e, n, k=24):
    """The bbox outline as lon/lat points (edges sampled: they curve on a polar map)."""
    if e < w:
        e += 360.0
    lons = [w + (e - w) * i / k for i in range(k + 1)]
    lats = [s + (n - s) * i / k for i in range(k + 1)]
    return ([(x, s) for x in lons] + [(e, y) for y in lats] + [(x, n) for x in lons[::-1]]
            + [(w, y) for y in lats[::-1]])


def extent_svg(w: float, s: float, e: float, n: float, size: int = 320) -> str:
    """An SVG map of a bounding box and its surroundings: polar stereographic (latitude
    circles and meridians drawn) when the box lies poleward of 55 degrees, else a
    longitude/latitude frame.

    Examples
    --------
    >>> "polar" in extent_svg(10, 76, 30, 81), "plate" in extent_svg(80, 30, 90, 40)
    (True, True)
    """
    if s >= 55 or n <= -55:
        north = s >= 55
        R = 6371.0

        def proj(lon, lat):            # polar stereographic, km, y up
            rr = 2 * R * math.tan(math.radians(90 - (lat if north else -lat)) / 2)
            a = math.radians(lon)
            return rr * math.sin(a), (-rr * math.cos(a) if north else rr * math.cos(a))

        pts = [proj(lo, la) for lo, la in _edges(w, s, e, n)]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        span = max(max(xs) - min(xs), max(ys) - min(ys), 1.0)
        view = max(4 * span, 300.0)        # the box and its surroundings, 300 km at least
        cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
        sc = size / view

        def px(x, y):
            return (x - cx) * sc + size / 2, size / 2 - (y - cy) * sc

        step = 1 if view < 2500 else 10
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="polar" viewBox="0 0 {size} {size}">',
                 f'<rect width="{size}" height="{size}" fill="#f4f8fb"/>']
        pole = px(0.0, 0.0)
        for lat in range(50, 90, step):
            rr = 2 * R * math.tan(math.radians(90 - lat) / 2) * sc
            parts.append(f'<circle cx="{pole[0]:.1f}" cy="{pole[1]:.1f}" r="{rr:.1f}" '
                         'fill="none" stroke="#bbb"/>')
        for lon in range(0, 360, 10):
            a, b = px(*proj(lon, 89.999 if north else -89.999)), px(*proj(lon, 50 if north else -50))
            parts.append(f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{b[0]:.1f}" y2="{b[1]:.1f}" '
                         'stroke="#ddd"/>')
        poly = " ".join(f"{x:.1f},{y:.1f}" for x, y in (px(*p) for p in pts))
        parts.append(f'<polygon id="extent" points="{poly}" fill="#d62728" fill-opacity="0.35" '
                     'stroke="#d62728"/>')
        parts.append(f'<text x="4" y="{size - 6}" font-size="11">polar stereographic '
                     f'({"north" if north else "south"}), {view:.0f} km wide; latitude circles '
                     f'every {step}°, meridians every 10°</text></svg>')
        return "".join(parts)
    ee = e if e >= w else e + 360.0
    pad = max(ee - w, n - s, 2.0)
    x0, x1, y0, y1 = w - pad, ee + pad, max(-90, s - pad), min(90, n + pad)
    sc = size / max(x1 - x0, y1 - y0)

    def px(lon, lat):
        return (lon - x0) * sc, size - (lat - y0) * sc

    ax, ay = px(w, n)
    bx, by = px(ee, s)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plate" viewBox="0 0 {size} {size}">'
            f'<rect width="{size}" height="{size}" fill="#f4f8fb"/>'
            f'<rect id="extent" x="{ax:.1f}" y="{ay:.1f}" width="{bx - ax:.1f}" height="{by - ay:.1f}" '
            'fill="#d62728" fill-opacity="0.35" stroke="#d62728"/>'
            f'<text x="4" y="{size - 6}" font-size="11">longitude/latitude, '
            f'{x0:.1f} to {x1:.1f} E, {y0:.1f} to {y1:.1f} N</text></svg>')


def build_site(catalog, out, title: str = "Dataset catalogue") -> list[str]:
    """Write the site of ``catalog`` into ``out``; returns the dataset pages written."""
    import jinja2

    rows = read_index(catalog)
    if not rows:
        raise UserError("holds no dataset (see 'cryokit catalog add')", catalog)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html"]))
    out = Path(out)
    (out / "datasets").mkdir(parents=True, exist_ok=True)
    for name in ("site.css", "site.js"):
        shutil.copy2(TEMPLATES / name, out / name)
    cards, pages = [], []
    for row in rows:
        src = Path(row["path"])
        rec = json.loads((src / "dataset.json").read_text(encoding="utf-8"))
        rec["id"] = row["id"]
        slug = _slug(row["id"])
        page = out / "datasets" / slug
        page.mkdir(parents=True, exist_ok=True)
        for name in (*EXPORTS, "thumbnail.png"):
            if (src / name).is_file():
                shutil.copy2(src / name, page / name)
        (page / "index.html").write_text(env.get_template("dataset.html").render(
            r=rec, root="../../", title=rec["title_en"], catalog_title=title,
            version=__version__, exports=[e for e in EXPORTS if (src / e).is_file()],
            map_svg=extent_svg(rec["ds_west"], rec["ds_south"], rec["ds_east"],
                               rec["ds_north"])), encoding="utf-8")
        pages.append(f"datasets/{slug}/index.html")
        cards.append({**{k: row[k] for k in ("id", "title_en", "title_cn", "kind", "keywords",
                                             "west", "east", "south", "north", "time_start",
                                             "time_end", "version")},
                      "href": f"datasets/{slug}/index.html",
                      "thumb": f"datasets/{slug}/thumbnail.png"})
    # JSON inside <script>: "</" would end the element early
    data = json.dumps(cards, ensure_ascii=False).replace("</", "<\\/")
    (out / "index.html").write_text(env.get_template("index.html").render(
        datasets=cards, catalog_json=data, root="", title=title, catalog_title=title,
        version=__version__), encoding="utf-8")
    return pages


def serve(folder, port: int = 8000):
    """Serve ``folder`` on 127.0.0.1 only (a local preview; the site needs no server)."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
