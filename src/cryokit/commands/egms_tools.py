"""``cryokit egms reference|calibrate|ortho|compare``: commands registered on the ``egms`` sub-app."""

from __future__ import annotations

import typer

from .egms import egms_app  # noqa: F401  (commands are added to this sub-app)


def register(app: typer.Typer) -> None:
    """Nothing to add at the top level: the commands live on ``egms_app``."""
