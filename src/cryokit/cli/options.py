"""Options every command shares (output, --overwrite, --workers/--scheduler, --place), the value
checks they share, and the summary table a finished command prints."""

from __future__ import annotations

import typer
from rich.table import Table

from ..core.console import out, state
from ..core.errors import UserError

OVERWRITE_HELP = ("Replace an earlier output of this command: only the files cryokit wrote "
                  "there are removed (without it, an existing output is refused).")


def output_dir(help: str):
    """``-o/--output`` (alias ``--outdir``) for a command that writes a product folder."""
    return typer.Option(..., "-o", "--output", "--outdir", help=help)


def output_file(help: str):
    """``-o/--output`` (alias ``--out``) for a command that writes one file."""
    return typer.Option(..., "-o", "--output", "--out", help=help)


def overwrite():
    """The ``--overwrite`` option, the same in every command."""
    return typer.Option(False, "--overwrite", help=OVERWRITE_HELP)


def workers(what: str):
    """``--workers N``: ``what`` (tiles, pairs, blocks) on a local dask cluster."""
    return typer.Option(None, "--workers", help=f"Run {what} on a local dask cluster of N "
                        "processes (default: in this process).")


def scheduler(what: str):
    """``--scheduler ADDRESS``: ``what`` on a running dask.distributed scheduler."""
    return typer.Option(None, "--scheduler", help=f"Run {what} on a running dask.distributed "
                        "scheduler (tcp://host:port); its workers must see the inputs and the "
                        "output's folder.")


def stable_values():
    """``--stable-values``: the classes of a raster stable mask that are stable ground."""
    return typer.Option(None, "--stable-values", metavar="CODES",
                        help="With a class raster as --stable-mask: the comma-separated codes "
                             "that are stable ground (e.g. 1 for a 1 = stable / 2 = glacier "
                             "mask). Without it a raster's non-zero pixels are stable, and a "
                             "raster of several classes is refused.")


def parse_codes(name: str, text: str | None) -> tuple[int, ...] | None:
    """``"1,3"`` -> (1, 3); a UserError naming the option otherwise."""
    if text is None:
        return None
    try:
        codes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{name}: comma-separated integer codes expected, got {text!r}") from None
    if not codes:
        raise UserError(f"{name}: no code given")
    return codes


def out_crs():
    """``--out-crs``: the CRS of a velocity command's output rasters."""
    return typer.Option(None, "--out-crs", help="Write the rasters in this CRS (any EPSG, e.g. EPSG:4326): vx, vy along its east and north axes (true east/north when geographic) in ground metres per time unit; GDAL's warp grid of the node grid unless --out-res.")


def out_res():
    """``--out-res``: the output pixel size of a velocity command."""
    return typer.Option(None, "--out-res", help="Output pixel size: metres, setting the node step to out-res / pixel size; with --out-crs, in that CRS's units (degrees for a geographic one).")


def place():
    """``--place``: the place name of the metadata record."""
    return typer.Option(None, "--place", help="Place name for the metadata record.")


def positive(name: str, value, *, allow_none: bool = True, minimum=1):
    """``value`` if it is at least ``minimum`` (or None when allowed), else a UserError naming
    the option: steps, chips, blocks and worker counts must be positive."""
    if value is None and allow_none:
        return None
    if value is None or not value >= minimum:
        raise UserError(f"{name}: must be >= {minimum}, got {value}")
    return value


def summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Print a two-column summary table of a finished command (not with ``--quiet``)."""
    if state.quiet:
        return
    t = Table(title=title, show_header=False, box=None)
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
