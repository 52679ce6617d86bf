"""Shared fixtures: the real data folder beside the checkout, skipped with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; skips the calling test with a reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not found: {p} (../shared/data sits beside the checkout)")
    return p
