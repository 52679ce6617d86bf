"""``cryokit landcover train|predict``: commands registered on the ``landcover`` sub-app."""

from __future__ import annotations

import typer

from .landcover import landcover_app  # noqa: F401  (commands are added to this sub-app)


def register(app: typer.Typer) -> None:
    """Nothing to add at the top level: the commands live on ``landcover_app``."""
