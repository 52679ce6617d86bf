"""The ``cryokit`` command line: one module per product family, no algorithm here.

User errors (bad files, grids, dates, option values, usage) print one line and exit with
code 2; internal errors print one line and exit with code 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import sys

import click
import typer

from .. import __version__
from ..core import console
from ..core.errors import UserError, as_user_error
from . import dataset, demo, egms, elevation, landcover, sbas, velocity, velocity_series

app = typer.Typer(
    name="cryokit", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]},
    help=("cryokit turns satellite images, DEMs and InSAR measurements into cryosphere and "
          "geodesy data products (cloud-optimised GeoTIFF + metadata.json + STAC Item + "
          "quick-look). Run 'cryokit demo' for a product made from a synthetic scene with "
          "known truth, or 'cryokit COMMAND --help' for each product."))
for _module in (velocity, velocity_series, elevation, egms, sbas, landcover, dataset, demo):
    _module.register(app)


def _click_classes(name: str) -> tuple[type, ...]:
    """``name`` from click and from the copy of click that newer typer releases carry."""
    mods = [click.exceptions]
    try:
        from typer._click import exceptions as vendored
        mods.append(vendored)
    except ImportError:  # typer before 0.25 uses click itself
        pass
    return tuple({getattr(m, name) for m in mods if hasattr(m, name)})


_NO_ARGS, _USAGE, _EXIT, _ABORT, _CLICK = (_click_classes(n) for n in (
    "NoArgsIsHelpError", "UsageError", "Exit", "Abort", "ClickException"))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cryokit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summaries; warnings and errors only."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print what each step reads and writes."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an internal error."),
) -> None:
    """Options that go before the command name."""
    console.configure(quiet=quiet, verbose=verbose, debug=debug)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: the one place where errors become messages and exit codes.

    User errors (bad file, bad option value, usage) print one line
    ``cryokit: error: <file or option>: <what is wrong>`` and exit 2; internal errors print
    one line with a hint to ``--debug`` and exit 1; ``--debug`` re-raises them.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    console.configure(quiet=False, verbose=False, debug="--debug" in argv)
    command = typer.main.get_command(app)
    try:
        rc = command.main(args=argv, prog_name="cryokit", standalone_mode=False)
    except _NO_ARGS as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e), err=True)
        return 2
    except _USAGE as e:
        sub = e.ctx.command_path.partition(" ")[2] if e.ctx else ""
        hint = f" (see 'cryokit {sub + ' ' if sub else ''}--help')" if e.ctx else ""
        console.error(f"{e.format_message()}{hint}")
        return 2
    except UserError as e:
        console.error(str(e))
        return 2
    except _EXIT as e:
        return e.exit_code
    except (*_ABORT, KeyboardInterrupt):
        console.error("interrupted", prefix="cryokit: ")
        return 130
    except _CLICK as e:
        console.error(e.format_message())
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the one place an unexpected error is reported
        user = as_user_error(e)
        if user is not None:
            console.error(str(user))
            return 2
        if console.state.debug:
            raise
        console.error(f"{type(e).__name__}: {e} (run 'cryokit --debug ...' for the traceback)",
                      prefix="cryokit: internal error: ")
        return 1
    return rc if isinstance(rc, int) else 0


def run() -> None:
    """Entry point of the ``cryokit`` console script."""
    sys.exit(main())
