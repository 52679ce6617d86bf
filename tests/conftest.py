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


@pytest.fixture(scope="session")
def dask_scheduler_address(tmp_path_factory):
    """Address of a real ``dask scheduler`` on 127.0.0.1 with two single-thread workers.

    Started once per session in separate processes, so tasks must be importable (numpy,
    cryokit); stopped at the end.  Logs are in the fixture's temporary directory.
    """
    import json
    import os
    import subprocess
    import sys
    import time

    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask-cluster")
    # Port 0 and a scheduler file: the OS picks a free port, no race with other users' clusters.
    file = ["--scheduler-file", str(tmp / "scheduler.json")]
    # Everything on 127.0.0.1: the HTTP servers would otherwise listen on 0.0.0.0 (or port 8787).
    common = ["--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0", *file]
    commands = [[sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0", *common]]
    commands += [[sys.executable, "-m", "distributed.cli.dask_worker", "--nthreads", "1",
                  "--no-nanny", "--local-directory", str(tmp), *common]] * 2
    env = {**os.environ, **{f"{lib}_NUM_THREADS": "1" for lib in ("OMP", "MKL", "OPENBLAS")}}
    procs = []
    deadline = time.monotonic() + 60

    def check():
        dead = [p.args for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            pytest.fail(f"dask test cluster did not start (dead: {dead}); logs in {tmp}")

    try:
        for i, cmd in enumerate(commands):
            with open(tmp / f"{'scheduler' if i == 0 else f'worker{i}'}.log", "wb") as log:
                procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
        address = None
        while address is None:
            check()
            try:
                address = json.loads((tmp / "scheduler.json").read_text())["address"]
            except (OSError, ValueError):  # not written yet, or half written
                time.sleep(0.1)
        with Client(address, timeout=30, set_as_default=False) as client:
            while len(client.nthreads()) < 2:
                check()
                time.sleep(0.1)
        yield address
    finally:
        for p in reversed(procs):  # workers first, while the scheduler can still say goodbye
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cli_commands() -> list[str]:
    """Every leaf command of the ``cryokit`` CLI, as typed: ``velocity``, ``egms stats``..."""
    import typer

    from cryokit.cli import app

    def walk(group, prefix=""):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from walk(cmd, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}"

    return list(walk(typer.main.get_command(app)))


def raster_grids(folder: Path, epsg: int) -> set:
    """The (transform, shape) of every GeoTIFF below ``folder``, each asserted to be in
    EPSG:``epsg``: one element when a product's rasters share one grid."""
    import rasterio

    grids = set()
    for p in Path(folder).rglob("*.tif"):
        with rasterio.open(p) as ds:
            assert ds.crs.to_epsg() == epsg, p
            grids.add((ds.transform, ds.shape))
    return grids
