"""The product pages in docs/ list every option of their commands as the CLI defines them.

Each page holds blocks ``<!-- options: COMMAND -->`` ... ``<!-- /options -->`` made from the
command's own parameters; ``python tests/cli/test_docs.py`` rewrites them after a change.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer

from cryokit.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run as a script, too
from conftest import cli_commands  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = {"velocity.md": ["velocity", "velocity-series"], "sar-velocity.md": ["sar-velocity"],
         "dem-change.md": ["dem-change"], "sbas.md": ["sbas"],
         "egms.md": ["egms stats", "egms convert", "egms reference", "egms calibrate",
                     "egms ortho", "egms compare", "egms plot"],
         "landcover.md": ["landcover features", "landcover train", "landcover predict",
                          "landcover assess"],
         "publishing.md": ["dataset init", "dataset build", "catalog add", "catalog list",
                           "catalog search", "catalog site", "catalog serve"], "demo.md": ["demo"]}
BLOCK = re.compile(r"<!-- options: (.+?) -->\n.*?<!-- /options -->", re.S)


def _command(path: str):
    node = typer.main.get_command(app)
    for part in path.split():
        node = node.commands[part]
    return node


def option_table(path: str) -> str:
    """Markdown table of the options of ``cryokit PATH``, and its arguments."""
    cmd = _command(path)
    args = [p for p in cmd.params if p.param_type_name == "argument"]
    lines = []
    if args:
        lines.append("Arguments: " + ", ".join(
            f"`{a.name.upper()}`" + (" (one or more)" if a.nargs == -1 else "") for a in args)
            + ".\n")
    lines += ["| option | default | meaning |", "|---|---|---|"]
    for p in cmd.params:
        if p.param_type_name == "argument" or "--help" in p.opts:
            continue
        names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
        d = p.default
        if callable(d) or d is False or (isinstance(d, tuple) and not d):
            d = None
        default = "required" if p.required else ("off" if p.is_flag and not p.secondary_opts
                                                 else "" if d is None else f"`{d}`")
        lines.append(f"| {names} | {default} | {(p.help or '').replace('|', chr(92) + '|')} |")
    return "\n".join(lines)


def render(text: str) -> str:
    return BLOCK.sub(lambda m: f"<!-- options: {m.group(1)} -->\n{option_table(m.group(1))}\n"
                     "<!-- /options -->", text)


def test_pages_list_every_option_as_the_cli_defines_it():
    for page, commands in PAGES.items():
        text = (DOCS / page).read_text(encoding="utf-8")
        assert [m.group(1) for m in BLOCK.finditer(text)] == commands, page
        assert render(text) == text, f"docs/{page} is stale: run python tests/cli/test_docs.py"


def test_every_command_has_a_page():
    documented = {c for cs in PAGES.values() for c in cs}
    assert set(cli_commands()) == documented


def test_pages_have_the_sections_of_a_product_page():
    for page in PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        for heading in ("## What it makes", "## Inputs", "## Options", "## Outputs",
                        "## Example", "## Known limits"):
            assert heading in text, (page, heading)


if __name__ == "__main__":
    for page in PAGES:
        p = DOCS / page
        p.write_text(render(p.read_text(encoding="utf-8")), encoding="utf-8")
    sys.exit(0)
