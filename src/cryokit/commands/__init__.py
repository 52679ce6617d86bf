"""Sub-commands of the ``cryokit`` CLI, one module per product family.

Each module parses options, calls one product function and prints a summary; no algorithm
lives here.  ``cryokit.cli`` imports every module and calls its ``register(app)``.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

err = Console(stderr=True)
out = Console()


def summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Print a two-column summary table of a finished command."""
    t = Table(title=title, show_header=False, box=None)
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
