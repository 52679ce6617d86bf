"""Interferogram networks: design matrix from date pairs, connectivity and redundancy.

An interferogram ``k`` between dates ``i < j`` measures ``phase[j] - phase[i]`` (later minus
earlier, the convention of MintPy's ``unwrapPhase``). With the first date fixed to zero, the
design matrix ``A`` has one row per interferogram and one column per date after the first:
``+1`` in the column of the later date, ``-1`` in that of the earlier one (none for date 0).

A network is solvable only when its graph (dates = nodes, interferograms = edges) is
connected; :func:`check_network` says which dates fall in which connected subset, and
:func:`subset_design` gives each subset its own design matrix, referenced to its own first
date.

Examples
--------
>>> import numpy as np
>>> pairs = np.array([(0, 1), (0, 2), (1, 2), (2, 3)])
>>> design_matrix(pairs, 4)
array([[ 1.,  0.,  0.],
       [ 0.,  1.,  0.],
       [-1.,  1.,  0.],
       [ 0., -1.,  1.]])
>>> check_network(pairs, 4).n_components
1
>>> check_network(pairs, 4).redundancy.tolist()
[2, 2, 3, 1]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.errors import UserError


def pairs_from_dates(date_pairs: Sequence[tuple[dt.date, dt.date]]
                     ) -> tuple[list[dt.date], np.ndarray, np.ndarray]:
    """Sorted unique dates, index pairs (earlier, later) and the sign of each pair.

    Parameters
    ----------
    date_pairs : sequence of (date1, date2)
        Dates of each interferogram as given (``phase(date2) - phase(date1)``).

    Returns
    -------
    dates : list of date
        Sorted, unique.
    pairs : (K, 2) int array
        Indices into ``dates``, earlier first.
    sign : (K,) float array
        +1 where the pair was given earlier first, -1 where it was reversed (multiply the
        interferogram by it to get ``later - earlier``).

    Raises
    ------
    ValueError
        When a pair has the same date twice.

    Examples
    --------
    >>> import datetime as dt
    >>> d = [dt.date(2020, 1, 1), dt.date(2020, 1, 13), dt.date(2020, 1, 25)]
    >>> dates, pairs, sign = pairs_from_dates([(d[0], d[1]), (d[2], d[1])])
    >>> pairs.tolist(), sign.tolist()
    ([[0, 1], [1, 2]], [1.0, -1.0])
    """
    for a, b in date_pairs:
        if a == b:
            raise ValueError(f"interferogram with the same date twice ({a})")
    dates = sorted({d for p in date_pairs for d in p})
    index = {d: k for k, d in enumerate(dates)}
    pairs = np.array([sorted((index[a], index[b])) for a, b in date_pairs], int).reshape(-1, 2)
    sign = np.array([1.0 if a < b else -1.0 for a, b in date_pairs])
    return dates, pairs, sign


def design_matrix(pairs: np.ndarray, n_dates: int) -> np.ndarray:
    """Design matrix ``A`` (K, n_dates - 1): ifg = A @ phase[1:], phase[0] = 0.

    ``pairs`` are (earlier, later) date indices; see the module docstring.
    """
    pairs = np.asarray(pairs, int).reshape(-1, 2)
    a = np.zeros((len(pairs), n_dates), float)
    rows = np.arange(len(pairs))
    a[rows, pairs[:, 1]] += 1.0
    a[rows, pairs[:, 0]] -= 1.0
    return a[:, 1:]


def components(pairs: np.ndarray, n_dates: int) -> np.ndarray:
    """Connected-component label of each date (0, 1, ... in order of first date).

    A date without any interferogram is a component of its own.
    """
    parent = np.arange(n_dates)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in np.asarray(pairs, int).reshape(-1, 2):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n_dates)])
    _, labels = np.unique(roots, return_inverse=True)  # roots are first dates: order kept
    return labels


@dataclass(frozen=True)
class NetworkCheck:
    """Connectivity and redundancy of a network (see :func:`check_network`)."""

    n_dates: int
    n_ifgs: int
    labels: np.ndarray       # (n_dates,) component of each date
    redundancy: np.ndarray   # (n_dates,) number of interferograms touching each date

    @property
    def n_components(self) -> int:
        return int(self.labels.max()) + 1 if self.n_dates else 0

    @property
    def connected(self) -> bool:
        return self.n_components == 1

    def as_dict(self, dates: Sequence[dt.date] | None = None) -> dict:
        """Plain dict for a report; dates as ISO strings when given."""
        name = (lambda k: dates[k].isoformat()) if dates is not None else int
        subsets = [[name(k) for k in np.flatnonzero(self.labels == c)]
                   for c in range(self.n_components)]
        return {"n_dates": self.n_dates, "n_interferograms": self.n_ifgs,
                "n_components": self.n_components, "connected": self.connected,
                "subsets": subsets,
                "redundancy": {str(name(k)): int(r) for k, r in enumerate(self.redundancy)},
                "min_redundancy": int(self.redundancy.min()) if self.n_dates else 0}


def check_network(pairs: np.ndarray, n_dates: int) -> NetworkCheck:
    """Connected components and redundancy (interferograms per date) of a network."""
    pairs = np.asarray(pairs, int).reshape(-1, 2)
    red = np.bincount(pairs.ravel(), minlength=n_dates)
    return NetworkCheck(n_dates, len(pairs), components(pairs, n_dates), red)


def require_connected(check: NetworkCheck, dates: Sequence[dt.date] | None = None,
                      source: str | None = None) -> None:
    """Raise :class:`UserError` naming the subsets when the network is not connected."""
    if check.connected:
        return
    d = check.as_dict(dates)
    parts = "; ".join(f"[{s[0]} .. {s[-1]}] ({len(s)} dates)" for s in d["subsets"])
    raise UserError(f"the interferogram network is not connected: {check.n_components} "
                    f"subsets {parts}; add interferograms that bridge them, or allow a "
                    "per-subset solution (each subset referenced to its own first date)", source)


def subset_design(pairs: np.ndarray, labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per connected subset: (date indices, interferogram indices), in date order.

    Each subset is solved on its own with its first date as zero.
    """
    pairs = np.asarray(pairs, int).reshape(-1, 2)
    out = []
    for c in range(int(labels.max()) + 1):
        d = np.flatnonzero(labels == c)
        k = np.flatnonzero(labels[pairs[:, 0]] == c)
        out.append((d, k))
    return out


def sequential_network(n_dates: int, n_neighbours: int = 3) -> np.ndarray:
    """Each date paired with its next ``n_neighbours`` dates: (K, 2) index pairs.

    >>> sequential_network(4, 2).tolist()
    [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    """
    return np.array([(i, j) for i in range(n_dates)
                     for j in range(i + 1, min(i + 1 + n_neighbours, n_dates))], int
                    ).reshape(-1, 2)
