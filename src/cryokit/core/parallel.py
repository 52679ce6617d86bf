"""Run one block function over many items: serially, on a local dask cluster or on a scheduler.

Every product splits its work into independent items (tiles of a node grid, image pairs, DEM
tiles) and calls :func:`run_tasks`; the helpers :func:`split_range` and :func:`tiles` cut an
array into blocks.  The function must be importable by worker processes (defined in a module,
not in ``__main__`` or a test file), and so must its arguments.

Examples
--------
>>> import numpy as np
>>> run_tasks(np.sum, [np.ones(2), np.ones(3)])
[np.float64(2.0), np.float64(3.0)]
>>> tiles((3, 5), (2, 4))                               # doctest: +NORMALIZE_WHITESPACE
[(slice(0, 2, None), slice(0, 4, None)), (slice(0, 2, None), slice(4, 5, None)),
 (slice(2, 3, None), slice(0, 4, None)), (slice(2, 3, None), slice(4, 5, None))]
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from cryokit.core.errors import UserError

# Each worker is a process with one thread; BLAS/OpenMP pools inside it would oversubscribe.
_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class TaskFailure:
    """Stands in the results of :func:`run_tasks` for an item that raised (``on_error="collect"``).

    Parameters
    ----------
    item_index : int
        Position of the failed item in ``items``.
    error_message : str
        ``"ExceptionType: message"`` of the exception the function raised.
    """

    item_index: int
    error_message: str

    @classmethod
    def from_exception(cls, index: int, exc: BaseException) -> TaskFailure:
        return cls(index, f"{type(exc).__name__}: {exc}")


def split_range(n: int, size: int) -> list[tuple[int, int]]:
    """Cut ``range(n)`` into consecutive ``(start, stop)`` pieces of at most ``size``.

    >>> split_range(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    if n < 0 or size < 1:
        raise ValueError(f"need n >= 0 and size >= 1, got n={n}, size={size}")
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def tiles(shape: tuple[int, int], tile_shape: tuple[int, int]) -> list[tuple[slice, slice]]:
    """Cut a 2-D array of ``shape`` into row-major blocks of at most ``tile_shape``.

    Each element of the array lies in exactly one block; ``array[rows, cols]`` is a block.
    """
    rows, cols = (split_range(n, size) for n, size in zip(shape, tile_shape, strict=True))
    return [(slice(*r), slice(*c)) for r in rows for c in cols]


def run_tasks(func: Callable[..., Any], items: Iterable[Any], *, workers: int | None = None,
              scheduler: str | None = None, shared: dict[str, Any] | None = None,
              progress: bool | str = False, description: str = "",
              on_error: str = "raise") -> list[Any]:
    """Return ``[func(item, **shared) for item in items]``, computed serially or with dask.

    Parameters
    ----------
    func : callable
        Called as ``func(item, **shared)``; importable by worker processes.
    items : iterable
        One task per item; results come back in this order.
    workers : int, optional
        ``None``, 0 or 1: a plain loop in this process (dask is not imported).  N >= 2: a
        ``LocalCluster`` of N single-threaded worker processes on 127.0.0.1, closed afterwards.
    scheduler : str, optional
        Address of a running dask scheduler (``"tcp://host:port"``); the cluster is left
        running.  Excludes ``workers >= 2``.
    shared : dict, optional
        Keyword arguments passed to every call, e.g. large arrays; sent once to every worker.
    progress : bool or "force"
        Show a progress bar on stderr: ``True`` when stderr is a terminal, ``"force"`` always.
    description : str
        Label of the progress bar.
    on_error : {"raise", "collect"}
        ``"raise"``: the first exception stops the run and propagates.  ``"collect"``: the
        others go on and a failed item's slot holds a :class:`TaskFailure`.

    Returns
    -------
    list
        One result per item, in the order of ``items``.

    Raises
    ------
    UserError
        When the scheduler cannot be reached.
    """
    items = list(items)
    shared = dict(shared or {})
    if on_error not in ("raise", "collect"):
        raise ValueError(f"on_error must be 'raise' or 'collect', got {on_error!r}")
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    use_dask = scheduler is not None or (workers or 0) >= 2
    if scheduler is not None and (workers or 0) >= 2:
        raise ValueError("give either workers >= 2 or a scheduler address, not both")
    if not items:
        return []
    with _progress_bar(progress, description, len(items)) as advance:
        if not use_dask:
            return _run_serial(func, items, shared, on_error, advance)
        with client(scheduler, min(workers or 0, len(items))) as c:
            return _run_dask(c, func, items, shared, on_error, advance)


def _run_serial(func, items, shared, on_error, advance) -> list[Any]:
    results = []
    for i, item in enumerate(items):
        try:
            results.append(func(item, **shared))
        except Exception as exc:
            if on_error == "raise":
                raise
            results.append(TaskFailure.from_exception(i, exc))
        advance()
    return results


def _run_dask(client, func, items, shared, on_error, advance) -> list[Any]:
    from distributed import as_completed

    names = list(shared)
    # One copy per worker instead of one per task; hash=False skips tokenising big arrays.
    # (scatter([]) fails on the scheduler, hence the guard.)
    values = [shared[k] for k in names]
    scattered = client.scatter(values, broadcast=True, hash=False) if values else []
    kwargs = dict(zip(names, scattered))
    # pure=False: equal items must still run separately (functions may be random or have effects).
    futures = [client.submit(func, item, pure=False, **kwargs) for item in items]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(items)
    try:
        for fut in as_completed(futures, loop=client.loop):
            i = index[fut.key]
            try:
                results[i] = fut.result()  # re-raises the worker's exception here
            except Exception as exc:
                if on_error == "raise":
                    raise
                results[i] = TaskFailure.from_exception(i, exc)
            fut.release()  # the result is here now; free the worker's copy
            advance()
    finally:
        client.cancel(futures + scattered)  # a remote scheduler must not keep our leftovers
    return results


@contextlib.contextmanager
def client(scheduler: str | None, n_workers: int) -> Iterator[Any]:
    """A dask.distributed client of ``scheduler`` (an address), else of a local cluster of
    ``n_workers`` single-threaded processes, for a product that runs several
    :func:`run_tasks` passes on one cluster (pass ``scheduler=client.scheduler.address``)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, set_as_default=False)
        except OSError as exc:  # refused or timed out
            raise UserError(f"cannot connect to dask scheduler: {exc}", scheduler) from exc
        with client:
            yield client
        return
    pre_spawn = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **_THREAD_ENV}
    # The nanny writes pre-spawn variables into this process's environment; put them back after.
    saved = {k: os.environ.get(k) for k in pre_spawn}
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}), \
                LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                             dashboard_address=None, host="127.0.0.1",
                             # no dashboard, yet the scheduler's HTTP server would take port 8787
                             scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
                Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _progress_bar(progress: bool | str, description: str,
                  total: int) -> Iterator[Callable[[], None]]:
    from .console import show_progress

    show = progress == "force" or (bool(progress) and show_progress())
    if not show:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True, force_terminal=True if progress == "force" else None)
    with Progress(*Progress.get_default_columns(), console=console) as bar:
        task = bar.add_task(description or "tasks", total=total)
        yield lambda: bar.advance(task)
