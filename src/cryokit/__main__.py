"""``python -m cryokit``: the same as the ``cryokit`` command."""

from .cli import run

run()
