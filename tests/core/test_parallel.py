"""run_tasks: serial, local cluster and remote scheduler agree; failures; tiling helpers.

Task functions are numpy or stdlib functions: worker processes cannot import this test module.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from cryokit.core.errors import UserError
from cryokit.core.parallel import TaskFailure, run_tasks, split_range, tiles

# Integers keep np.dot exact whatever BLAS threading each process uses.
IMAGE = np.random.default_rng(0).integers(-50, 50, size=(60, 70))
MATRIX = np.random.default_rng(1).integers(-5, 5, size=(70, 40))
ROW_BLOCKS = [IMAGE[a:b] for a, b in split_range(IMAGE.shape[0], 16)]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("n, size", [(0, 3), (1, 3), (9, 3), (10, 3), (5, 8)])
def test_split_range_covers_once(n, size):
    pieces = split_range(n, size)
    assert [i for a, b in pieces for i in range(a, b)] == list(range(n))
    assert all(0 < b - a <= size for a, b in pieces)


@pytest.mark.parametrize("shape, tile_shape", [((60, 70), (16, 32)), ((64, 64), (32, 32)),
                                               ((5, 3), (8, 8)), ((0, 4), (2, 2))])
def test_tiles_cover_once(shape, tile_shape):
    count = np.zeros(shape, int)
    for rows, cols in tiles(shape, tile_shape):
        block = count[rows, cols]
        assert 0 < block.shape[0] <= tile_shape[0] and 0 < block.shape[1] <= tile_shape[1]
        block += 1
    assert (count == 1).all()


def test_bad_arguments():
    with pytest.raises(ValueError):
        split_range(5, 0)
    with pytest.raises(ValueError):
        run_tasks(abs, [1], on_error="ignore")
    with pytest.raises(ValueError):
        run_tasks(abs, [1], workers=2, scheduler="tcp://127.0.0.1:1")
    assert run_tasks(abs, [], workers=2) == []  # no cluster for nothing


def test_serial_does_not_import_dask():
    code = ("import sys; from cryokit.core.parallel import run_tasks; "
            "assert run_tasks(abs, [-1, 2], workers=1) == [1, 2]; assert 'dask' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_local_cluster_matches_serial():
    env_before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    serial = run_tasks(np.dot, ROW_BLOCKS, shared={"b": MATRIX})
    _assert_same(serial, [block @ MATRIX for block in ROW_BLOCKS])
    _assert_same(run_tasks(np.dot, ROW_BLOCKS, workers=2, shared={"b": MATRIX}), serial)
    # The nanny sets these in the parent process; run_tasks puts them back.
    assert {k: os.environ.get(k) for k in env_before} == env_before


@pytest.mark.parametrize("workers", [None, 2])
def test_collect_failures(workers):
    result = run_tasks(math.sqrt, [4, -1, 9, -4], workers=workers, on_error="collect")
    assert result[0] == 2.0 and result[2] == 3.0
    assert [r.item_index for r in result if isinstance(r, TaskFailure)] == [1, 3]
    assert result[1].error_message == "ValueError: math domain error"


def test_raise_serial():
    with pytest.raises(ValueError, match="math domain"):
        run_tasks(math.sqrt, [4, -1, 9])


def test_scheduler_matches_serial(dask_scheduler_address):
    from distributed import Client

    serial = run_tasks(np.dot, ROW_BLOCKS, shared={"b": MATRIX})
    remote = run_tasks(np.dot, ROW_BLOCKS, scheduler=dask_scheduler_address, shared={"b": MATRIX})
    _assert_same(remote, serial)
    with pytest.raises(ValueError, match="math domain"):
        run_tasks(math.sqrt, [4, -1, 9], scheduler=dask_scheduler_address)
    # A shared scheduler must not keep our results, scattered arrays or pending tasks.
    with Client(dask_scheduler_address, set_as_default=False) as client:
        deadline = time.monotonic() + 10
        while any(client.has_what().values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(client.has_what().values())


def test_unreachable_scheduler_is_user_error():
    import dask

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = "tcp://127.0.0.1:%d" % s.getsockname()[1]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(UserError, match="cannot connect"):
            run_tasks(abs, [1], scheduler=address)


def test_progress_bar(capsys):
    run_tasks(abs, [-1, 2], progress=True, description="tiles")  # stderr is not a terminal
    assert capsys.readouterr().err == ""
    run_tasks(abs, [-1, 2], progress="force", description="tiles")
    assert "tiles" in capsys.readouterr().err
