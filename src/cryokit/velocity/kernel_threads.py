"""Thread count of the velocity engine's numba kernels.

numba's thread count is per calling thread, so each kernel sets it from its ``threads``
argument before launching, clamped to the pool numba started with (``NUMBA_NUM_THREADS``).
"""

from __future__ import annotations

try:
    import numba
except ImportError:  # pragma: no cover - numba is a core dependency
    numba = None


def set_threads(threads: int) -> None:
    """Let the next parallel kernel launched from this thread use ``threads`` threads.

    Examples
    --------
    >>> set_threads(1)
    """
    if numba is not None:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
