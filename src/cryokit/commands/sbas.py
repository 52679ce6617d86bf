"""``cryokit sbas``: small-baseline inversion of unwrapped interferograms to EGMS-style points."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``sbas`` command to the top-level app (filled in by the SBAS product)."""
