"""``cryokit dataset``: publish product runs as one dataset with its records."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.outputs import guarded_dir
from . import options

dataset_app = typer.Typer(
    name="dataset", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Publish product runs as one dataset: a definition you edit (titles, people, "
         "licence, DOI...), a dataset folder with the runs, a thumbnail and its records "
         "(data-centre JSON, STAC Collection, DataCite XML, schema.org JSON-LD, RIS, BibTeX).")


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(catalog_app, name="catalog")


@dataset_app.command("init")
def init(out: Path = options.output_file("Definition file to write (TOML), a commented "
                                          "template to edit."),
         overwrite: bool = options.overwrite()):
    """Write a commented dataset-definition template (TOML)."""
    from ..core.atomic import atomic_file
    from ..core.errors import UserError
    from ..publish.definition import TEMPLATE

    if out.exists() and not overwrite:
        raise UserError("exists: give --overwrite to replace it", out)
    with atomic_file(out) as tmp:
        tmp.write_text(TEMPLATE, encoding="utf-8")
    options.summary("cryokit dataset init", [("output", str(out)),
                                             ("next", f"edit it, then 'cryokit dataset build "
                                                      f"{out.name} RUN... -o DATASET'")])


@dataset_app.command("build")
def build(definition: Path = typer.Argument(..., help="Dataset definition (TOML or YAML; "
                                                      "'cryokit dataset init' writes one)."),
          runs: list[Path] = typer.Argument(..., help="Product run folders (each with "
                                                      "metadata.json and stac-item.json)."),
          out: Path = options.output_dir("Dataset folder to write."),
          overwrite: bool = options.overwrite()):
    """Gather product runs into a dataset folder and write its records.

    Computed, not typed: WGS84 bounding box, time range, altitude range, resolutions,
    formats, coordinate systems, file count, total size, a SHA-256 per file and a
    thumbnail. Runs of another product kind, other units or another coordinate system are
    refused.
    """
    from ..publish.build import build_dataset
    from ..publish.definition import load_definition

    defn = load_definition(definition)
    with guarded_dir(out, "dataset build", inputs=(definition, *runs), overwrite=overwrite):
        rec = build_dataset(defn, runs, out)
    options.summary("cryokit dataset build", [
        ("runs", str(len(rec["ds_runs"]))), ("files", str(rec["ds_file_count"])),
        ("size", f"{rec['ds_total_size_bytes'] / 2 ** 20:.1f} MiB"),
        ("extent", f"W {rec['ds_west']:.3f} E {rec['ds_east']:.3f} "
                   f"S {rec['ds_south']:.3f} N {rec['ds_north']:.3f}"),
        ("time", f"{rec['ds_time_start']} to {rec['ds_time_end']}"),
        ("output", str(out))])


catalog_app = typer.Typer(
    name="catalog", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="A catalogue over many datasets: add them, list and search them (bounding box, time, "
         "keyword, product kind, free text), and make its static web site.")


@catalog_app.command("add")
def catalog_add(datasets: list[Path] = typer.Argument(..., help="Dataset folders written by "
                                                               "'cryokit dataset build'."),
                catalog: Path = typer.Option(..., "-o", "--output", help="Catalogue folder "
                                             "(made if new, else updated in place).")):
    """Add datasets to a catalogue (a dataset already there, by id, is replaced)."""
    from ..publish.catalog import add_datasets

    rows = add_datasets(catalog, datasets)
    options.summary("cryokit catalog add", [("datasets", str(len(rows))),
                                            ("catalogue", str(catalog))])


def _print_rows(rows) -> None:
    from ..core.console import out
    for r in rows:
        out.print(f"{r['id']}\t{r['kind']}\t{r['time_start']}..{r['time_end']}\t{r['title_en']}",
                  markup=False, highlight=False, soft_wrap=True)


@catalog_app.command("list")
def catalog_list(catalog: Path = typer.Argument(..., help="Catalogue folder.")):
    """List the datasets of a catalogue: id, product kind, time range, title."""
    from ..publish.catalog import Query, search

    _print_rows(search(catalog, Query()))


@catalog_app.command("search")
def catalog_search(
        catalog: Path = typer.Argument(..., help="Catalogue folder."),
        bbox: str = typer.Option(None, "--bbox", help="WEST,SOUTH,EAST,NORTH in degrees; "
                                                     "WEST > EAST crosses the antimeridian."),
        start: str = typer.Option(None, "--start", help="Datasets ending on or after this date."),
        end: str = typer.Option(None, "--end", help="Datasets starting on or before this date."),
        keyword: str = typer.Option(None, "--keyword", help="One keyword (exact, any case)."),
        kind: str = typer.Option(None, "--kind", help="Product kind (dem_change, velocity...)."),
        text: str = typer.Option(None, "--text", help="Free text in titles, abstract, keywords.")):
    """Search a catalogue; prints the matching datasets."""
    from ..core.dates import parse_date
    from ..core.errors import UserError
    from ..publish.catalog import Query, search

    box = None
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            raise UserError(f"--bbox: give WEST,SOUTH,EAST,NORTH, got {bbox!r}")
    for flag, v in (("--start", start), ("--end", end)):
        if v:
            parse_date(v, flag)
    _print_rows(search(catalog, Query(box, start, end, keyword, kind, text)))


@catalog_app.command("site")
def catalog_site(catalog: Path = typer.Argument(..., help="Catalogue folder."),
                 out: Path = options.output_dir("Folder of the static site."),
                 title: str = typer.Option("Dataset catalogue", "--title", help="Site title."),
                 overwrite: bool = options.overwrite()):
    """Write the catalogue's static web site (index with filters, one page per dataset)."""
    from ..core.atomic import staged_dir
    from ..publish.site import build_site

    with guarded_dir(out, "catalog site", inputs=(catalog,), overwrite=overwrite):
        with staged_dir(out, "catalog site") as stage:
            pages = build_site(catalog, stage, title)
    options.summary("cryokit catalog site", [("pages", str(len(pages) + 1)),
                                             ("output", str(out / "index.html"))])


@catalog_app.command("serve")
def catalog_serve(site: Path = typer.Argument(..., help="Site folder ('cryokit catalog site')."),
                  port: int = typer.Option(8000, "--port", help="Port on 127.0.0.1.")):
    """Serve a catalogue site on 127.0.0.1 (a preview: the pages need no server)."""
    from ..core.console import info
    from ..core.errors import UserError
    from ..publish.site import serve

    if not (site / "index.html").is_file():
        raise UserError("is not a catalogue site (no index.html)", site)
    httpd = serve(site, port)
    info(f"serving {site} on http://127.0.0.1:{httpd.server_address[1]}/ (Ctrl-C stops)")
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
