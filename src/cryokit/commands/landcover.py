"""``cryokit landcover features|assess``: feature stacks and accuracy assessment."""

from __future__ import annotations

import typer

landcover_app = typer.Typer(
    name="landcover", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Land cover maps with locally adaptive classifiers (CALC-2020 legend or your own): "
         "feature stacks, training, block-wise prediction and accuracy assessment.")


def register(app: typer.Typer) -> None:
    app.add_typer(landcover_app, name="landcover")
