"""Sub-commands of the ``cryokit`` CLI, one module per product family.

Each module parses options, calls one product function and prints a summary; no algorithm
lives here.  ``cryokit.cli`` imports every module and calls its ``register(app)``.
"""

from __future__ import annotations

from rich.table import Table

from ..core.console import err, out, show_progress, state  # noqa: F401 - re-exported for commands


def summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Print a two-column summary table of a finished command (not with ``--quiet``)."""
    if state.quiet:
        return
    t = Table(title=title, show_header=False, box=None)
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)


OVERWRITE_HELP = ("Replace an earlier output of this command: only the files cryokit wrote "
                  "there are removed (without it, an existing output is refused).")


def overwrite_option():
    """The ``--overwrite`` option, the same in every command."""
    import typer

    return typer.Option(False, "--overwrite", help=OVERWRITE_HELP)


def positive(name: str, value, *, allow_none: bool = True, minimum=1):
    """``value`` if it is at least ``minimum`` (or None when allowed), else a UserError naming
    the option: steps, chips, blocks and worker counts must be positive."""
    from ..core.errors import UserError

    if value is None and allow_none:
        return None
    if value is None or not value >= minimum:
        raise UserError(f"{name}: must be >= {minimum}, got {value}")
    return value
