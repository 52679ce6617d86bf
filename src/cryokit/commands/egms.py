"""``cryokit egms ...``: EGMS point products (read, statistics, reference, calibrate, ortho, compare)."""

from __future__ import annotations

import typer

egms_app = typer.Typer(
    name="egms", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="EGMS ground-motion points (Basic L2a, Calibrated L2b, Ortho L3): statistics, "
         "re-referencing, calibration to GNSS, Ortho (vertical/east) tiles and release comparison.")


def register(app: typer.Typer) -> None:
    app.add_typer(egms_app, name="egms")
