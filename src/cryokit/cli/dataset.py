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
