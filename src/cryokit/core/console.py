"""What the command line prints: one-line errors and warnings, summaries, progress switches.

The CLI sets the switches once (``--quiet``, ``--verbose``, ``--debug``); library code asks
:func:`show_progress` instead of taking a flag through every call.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

from rich.console import Console


@dataclass
class State:
    quiet: bool = False
    verbose: bool = False
    debug: bool = False


state = State()
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False)


def configure(*, quiet: bool = False, verbose: bool = False, debug: bool = False) -> None:
    """Set the switches and route Python warnings to one line each on stderr."""
    state.quiet, state.verbose, state.debug = quiet, verbose and not quiet, debug
    warnings.showwarning = _one_line_warning


def show_progress() -> bool:
    """True when long work should draw a progress bar (a terminal, and not ``--quiet``)."""
    return not state.quiet and sys.stderr.isatty()


def error(message: str, prefix: str = "cryokit: error: ") -> None:
    """Print one error line on stderr (folded to one line whatever ``message`` holds)."""
    err.print(prefix + " ".join(str(message).split()), markup=False)


def warn(message: str) -> None:
    """Print one warning line on stderr (shown even with ``--quiet``)."""
    err.print("cryokit: warning: " + " ".join(str(message).split()), markup=False)


def info(message: str) -> None:
    """Print a line on stderr with ``--verbose`` only."""
    if state.verbose:
        err.print("cryokit: " + str(message), markup=False)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    warn(f"{message}")
