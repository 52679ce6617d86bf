"""Fast random-forest inference: a fitted scikit-learn forest compiled into flat node arrays.

scikit-learn predicts tree by tree through per-node branches that the CPU mispredicts about
half the time, so a map of millions of pixels costs ~5 us per pixel for 100 trees.
:func:`compile_forest` renumbers every tree breadth-first, so the two children of a node sit
side by side and a step is ``node = left + (x > threshold)`` with no branch, and packs the
left child and the offset of the split feature in the pixel chunk into one integer per node
(one load and no multiply per step).  A leaf is its own left child with threshold +inf, so a
pixel that reached it stays there.

The numba kernel runs ``prange`` over chunks of pixels whose features are first copied
feature-major (the chunk stays in L1); inside a chunk it goes tree by tree, so one tree's
nodes stay in cache while the chunk's pixels go through it, and level by level: each tree
takes its depth in branch-free steps over the whole chunk, so the steps of different pixels
overlap in the pipeline.  Pixels on short paths idle at their leaf, yet this is 2-3x faster
than walking each pixel to its leaf with a branch per node, even for unlimited trees.

Both give ``RandomForestClassifier.predict_proba`` (same leaves, mean of the leaf class
fractions) up to float32 rounding of the probabilities, missing values included: a forest
fitted on data with NaN learns at each split which side missing values take
(``tree_.missing_go_to_left``; the larger child where training had none), and one bit of the
node says so (``NaN > t`` is false, so NaN goes left unless that bit sends it right).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

_CHUNK_FLOATS = 4096  # feature-major chunk copy: 16 KiB leaves L1 room for a tree's nodes
_MAX_CHUNK = 256
_OFF_BITS = 16  # low bits of a node: feature offset in the chunk (constant: no shift by a variable)
_NAN_BIT = 15   # of those, the top one: a missing value (NaN) goes right at this split
_OFF_MASK = (1 << _NAN_BIT) - 1


def chunk_size(n_features: int) -> int:
    """Pixels per kernel chunk for ``n_features`` (at most 2**16 floats per chunk)."""
    return int(np.clip(_CHUNK_FLOATS // max(n_features, 1), 16, _MAX_CHUNK))


@dataclass
class FlatForest:
    """A compiled forest.

    Attributes
    ----------
    node : int32 (int64 for trees of over 32767 nodes) per node
        ``(left << 16) | nan_right << 15 | feature * chunk``, ``left`` the index of the left
        child relative to the tree's root (right is ``left + 1``); a leaf is its own left
        child; ``nan_right`` sends a missing value right
    threshold : float32; a pixel goes right when ``x[feature] > threshold`` (+inf at leaves)
    value : float32 (n_nodes, K) class fractions (read at leaves only)
    roots : (n_trees,) int64 index of each tree's root in the node arrays
    depths : (n_trees,) int64 depth of each tree (its number of steps)
    chunk : int, pixels per kernel chunk (:func:`chunk_size` of ``n_features``)
    n_features : int
    classes : (K,) class labels in column order
    """

    node: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depths: np.ndarray
    chunk: int
    n_features: int
    classes: np.ndarray

    @property
    def depth(self) -> int:
        return int(self.depths.max())

    @property
    def n_trees(self) -> int:
        return int(self.roots.size)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities of the rows of ``X`` (n, n_features), float32 (n, K)."""
        return forest_proba(self, X)


def _float32_down(t: np.ndarray) -> np.ndarray:
    # x <= t (float64) equals x <= t32 for float32 x when t32 is t rounded *down* to float32
    t32 = t.astype(np.float32)
    over = t32.astype(np.float64) > t
    t32[over] = np.nextafter(t32[over], np.float32(-np.inf))
    return t32


def _breadth_first(tree):
    """Node order of ``tree`` breadth-first with siblings adjacent, and each node's
    left child in that order (itself at leaves)."""
    cl, cr = tree.children_left, tree.children_right
    levels = [np.zeros(1, np.int64)]
    while levels[-1].size:
        inner = levels[-1][cl[levels[-1]] >= 0]
        levels.append(np.stack([cl[inner], cr[inner]], axis=1).ravel())
    order = np.concatenate(levels)
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    leaf = cl[order] < 0
    left = np.where(leaf, np.arange(order.size), rank[np.where(leaf, 0, cl[order])])
    return order, left, leaf


def compile_forest(model) -> FlatForest:
    """Flatten a fitted scikit-learn ``RandomForestClassifier`` / ``ExtraTreesClassifier``
    (or one ``DecisionTreeClassifier``) into a :class:`FlatForest`.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(3000, 4)); y = (X[:, 0] + rng.normal(size=3000) > 0).astype(int)
    >>> for depth in (6, None):   # depth-limited trees, then deep noisy ones
    ...     rf = RandomForestClassifier(10, max_depth=depth, random_state=0).fit(X, y)
    ...     ff = compile_forest(rf)
    ...     print(ff.depth > 6, bool(np.allclose(ff.predict_proba(X), rf.predict_proba(X),
    ...                                          atol=1e-5)))
    False True
    True True
    >>> Xm = np.where(rng.random(X.shape) < 0.3, np.nan, X)       # missing values
    >>> rf = RandomForestClassifier(10, random_state=0).fit(Xm, y)
    >>> bool(np.allclose(compile_forest(rf).predict_proba(Xm), rf.predict_proba(Xm), atol=1e-5))
    True
    """
    trees = [e.tree_ for e in getattr(model, "estimators_", [model])]
    n_features = int(model.n_features_in_)
    chunk = chunk_size(n_features)
    if n_features * chunk > 2 ** _NAN_BIT:
        raise ValueError(f"{n_features} features: the compiled forest takes at most "
                         f"{2 ** _NAN_BIT // 16}")
    biggest = max(t.node_count for t in trees)
    dtype = np.int32 if biggest < 2 ** (31 - _OFF_BITS) else np.int64
    node, thr, val, roots, depths = [], [], [], [], []
    start = 0
    for t in trees:
        order, left, leaf = _breadth_first(t)
        feat = np.where(leaf, 0, t.feature[order])
        miss = getattr(t, "missing_go_to_left", None)
        nan_right = (np.zeros(order.size, np.int64) if miss is None
                     else np.where(leaf, 0, 1 - miss[order].astype(np.int64)))
        node.append((left.astype(np.int64) << _OFF_BITS | nan_right << _NAN_BIT
                     | feat * chunk).astype(dtype))
        thr.append(np.where(leaf, np.inf, t.threshold[order]))
        v = t.value[order, 0, :].astype(np.float64)
        # forest trees see every class (bootstrap by sample weights), so columns line up
        val.append(v / np.maximum(v.sum(axis=1, keepdims=True), 1e-300))
        roots.append(start)
        depths.append(max(1, t.max_depth))
        start += order.size
    return FlatForest(np.concatenate(node), _float32_down(np.concatenate(thr)),
                      np.concatenate(val).astype(np.float32), np.asarray(roots, np.int64),
                      np.asarray(depths, np.int64), chunk, n_features,
                      np.asarray(model.classes_))


@numba.njit(inline="always")
def _chunk_copy(X, i0, m, chunk, xt):
    # feature-major: the steps of one level read xt[f * chunk + j] for consecutive j
    for j in range(m):
        for f in range(X.shape[1]):
            xt[f * chunk + j] = X[i0 + j, f]


@numba.njit(parallel=True, cache=True, nogil=True)
def _walk(X, node, threshold, value, roots, depths, chunk, out, nan_aware):
    n, nf = X.shape
    n_cls = value.shape[1]
    scale = np.float32(1.0 / roots.size)
    for c in numba.prange((n + chunk - 1) // chunk):
        i0 = c * chunk
        m = min(n, i0 + chunk) - i0
        xt = np.empty(nf * chunk, np.float32)
        _chunk_copy(X, i0, m, chunk, xt)
        pos = np.empty(m, node.dtype)
        for t in range(roots.size):
            tn = node[roots[t]:]  # tree-relative indices stay small
            tt = threshold[roots[t]:]
            pos[:] = 0
            for _ in range(depths[t]):  # level by level: independent pixels overlap
                if nan_aware:     # loop-invariant: the compiler keeps two loops
                    for j in range(m):
                        p = pos[j]
                        q = tn[p]
                        x = xt[(q & _OFF_MASK) + j]
                        # x != x only for NaN: it goes right where the split says so
                        pos[j] = (q >> _OFF_BITS) + ((x > tt[p]) | (((q >> _NAN_BIT) & 1) == 1)
                                                      & (x != x))
                else:
                    for j in range(m):
                        p = pos[j]
                        q = tn[p]
                        pos[j] = (q >> _OFF_BITS) + (xt[(q & _OFF_MASK) + j] > tt[p])
            tv = value[roots[t]:]
            for j in range(m):
                for k in range(n_cls):
                    out[i0 + j, k] += tv[pos[j], k]
        for j in range(m):
            for k in range(n_cls):
                out[i0 + j, k] *= scale


def forest_proba(forest: FlatForest, X: np.ndarray) -> np.ndarray:
    """Mean leaf class fractions over the trees, float32 (n, K).

    Runs on numba's thread pool (``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``).
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != forest.n_features:
        raise ValueError(f"X must be (n, {forest.n_features}), got {X.shape}")
    out = np.zeros((X.shape[0], forest.classes.size), np.float32)
    if X.shape[0] == 0:
        return out
    args = (forest.node, forest.threshold, forest.value, forest.roots, forest.depths,
            forest.chunk)
    # The NaN test costs about a third of the walk: only rows with a missing value pay for it.
    missing = np.isnan(X).any(axis=1)
    if not missing.any():
        _walk(X, *args, out, False)
    elif missing.all():
        _walk(X, *args, out, True)
    else:
        for rows, aware in ((~missing, False), (missing, True)):
            part = np.zeros((int(rows.sum()), out.shape[1]), np.float32)
            _walk(np.ascontiguousarray(X[rows]), *args, part, aware)
            out[rows] = part
    return out
