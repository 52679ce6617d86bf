"""Pixel classifiers: one global model, or locally adaptive models per spatial tile, blended.

:class:`GlobalClassifier` fits one model on all samples.  :class:`LocalClassifier` (the
CALC-2020 / GLC_FCS30 idea) cuts the image into square tiles of ``tile_size`` pixels and fits
one model per tile on the samples of that tile and its neighbours; the neighbourhood is
widened ring by ring until every class present in it has ``min_class_samples`` samples (up
to ``max_radius`` rings).  Tiles whose neighbourhood still holds fewer than
``min_tile_samples`` samples, or a single class, use the global model, which is always fitted.
At prediction the class probabilities of the four tile models whose centres surround a
pixel are blended with bilinear weights, so the map shows no seams at tile edges; ``blend``
< 1 narrows the blending ramps to bands around the tile edges (fewer models per pixel).

Models: ``"rf"`` = scikit-learn random forest, depth-limited and compiled for fast inference
(:mod:`.forest`); ``"lgbm"`` = LightGBM gradient boosting; ``"rf+lgbm"`` = the mean of both
models' class probabilities (the lgbm member may have its own balancing and rounds:
``lgbm_balance``, ``lgbm_rounds``).  Class balancing (``balance``, :data:`BALANCES`): ``"none"``;
``"balanced"`` (or ``True``) weights each class inversely to its sample count, which raises
rare-class recall at the cost of overall accuracy; ``"sqrt"`` weights by the inverse square
root of the count, the usual compromise between the two; ``"subsample"`` (rf) draws the
balanced weights again for each tree's bootstrap sample.  ``prior="train"`` (global models)
multiplies the class probabilities by per-class weights fitted at training time on
out-of-fold predictions so that the predicted class frequencies match the training ones
(:mod:`.prior`).

Samples are rows of ``X`` (n, n_features) with their pixel ``rows``/``cols``; NaN rows must be
removed by the caller (the product maps them to nodata).  :func:`predict_image` classifies a
feature image (NaN = nodata), optionally regularised in space before the arg-max (Gaussian
smoothing of the class probabilities, minimum mapping unit: :mod:`.smooth`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from .accuracy import blocked_folds
from .forest import FlatForest, compile_forest
from .prior import apply_prior, prior_weights
from .smooth import sieve, smooth_proba

MODELS = ("rf", "lgbm", "rf+lgbm")
BALANCES = ("none", "balanced", "sqrt", "subsample")
#: Class-prior correction (:mod:`.prior`): none, or match the training class frequencies.
PRIORS = ("none", "train")
#: Block side (px) of the inner blocked CV that fits the class-prior weights.
PRIOR_BLOCK = 10


def balance_name(balance) -> str:
    """Canonical balancing name: ``True`` -> ``"balanced"``, ``False``/``None`` -> ``"none"``."""
    if balance is True:
        return "balanced"
    if balance is False or balance is None:
        return "none"
    if balance not in BALANCES:
        raise ValueError(f"balance must be one of {', '.join(BALANCES)}, got {balance!r}")
    return balance


def class_weights(y: np.ndarray, balance) -> dict | None:
    """Per-class weights for ``balance`` (None = unweighted); mean sample weight is 1.

    Examples
    --------
    >>> y = np.array([1] * 90 + [2] * 10)
    >>> {k: round(v, 2) for k, v in class_weights(y, "balanced").items()}
    {1: 0.56, 2: 5.0}
    >>> {k: round(v, 2) for k, v in class_weights(y, "sqrt").items()}
    {1: 0.83, 2: 2.5}
    """
    name = balance_name(balance)
    if name == "none":
        return None
    classes, counts = np.unique(y, return_counts=True)
    w = 1.0 / counts if name != "sqrt" else 1.0 / np.sqrt(counts)
    w *= y.size / float((w * counts).sum())
    return {int(c): float(v) for c, v in zip(classes, w)}


@dataclass
class ModelParams:
    """Hyper-parameters of the per-model estimators (defaults measured in
    ``benchmarks/landcover_predict.py``: depth 12 keeps accuracy within a point of an
    unlimited forest at several times its speed)."""

    model: str = "rf"
    n_estimators: int = 64
    max_depth: int = 12
    num_leaves: int = 31            # lgbm
    learning_rate: float = 0.1      # lgbm
    balance: str = "none"
    seed: int = 0
    n_jobs: int = 2
    min_samples_leaf: int = 1       # rf
    max_features: str | float = "sqrt"  # rf: features tried per split
    lgbm_balance: str | None = None  # rf+lgbm: balance of the lgbm member (None: ``balance``)
    lgbm_rounds: int | None = None   # rf+lgbm: rounds of the lgbm member (None: n_estimators)

    def __post_init__(self):
        """The one place these are checked (ValueError naming the field)."""
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        self.balance = balance_name(self.balance)
        if self.lgbm_balance is not None:
            self.lgbm_balance = balance_name(self.lgbm_balance)
        for name in ("n_estimators", "num_leaves", "min_samples_leaf", "n_jobs"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_depth", "lgbm_rounds"):
            if getattr(self, name) is not None and not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        mf = self.max_features
        if not (mf == "sqrt" or (isinstance(mf, (int, float)) and 0 < mf <= 1)):
            raise ValueError(f"max_features must be 'sqrt' or in (0, 1], got {mf!r}")
        if (self.lgbm_balance is not None or self.lgbm_rounds is not None) \
                and self.model != "rf+lgbm":
            raise ValueError("lgbm_balance and lgbm_rounds apply to model rf+lgbm only")


@dataclass
class Ensemble:
    """Several fitted models whose class probabilities are averaged (``model="rf+lgbm"``)."""

    models: list
    classes: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return sum(model_proba(m, X, self.classes) for m in self.models) / len(self.models)


def fit_model(X: np.ndarray, y: np.ndarray, p: ModelParams):
    """Fit one estimator; returns a :class:`FlatForest` (rf), an ``LGBMClassifier`` (lgbm)
    or an :class:`Ensemble` of both (rf+lgbm)."""
    balance = balance_name(p.balance)
    weights = class_weights(y, balance)
    if p.model == "rf":
        from sklearn.ensemble import RandomForestClassifier

        rf = RandomForestClassifier(
            n_estimators=p.n_estimators, max_depth=p.max_depth,
            min_samples_leaf=p.min_samples_leaf, max_features=p.max_features,
            class_weight="balanced_subsample" if balance == "subsample" else weights,
            random_state=p.seed, n_jobs=p.n_jobs)
        return compile_forest(rf.fit(X, y))
    if p.model == "lgbm":
        from lightgbm import LGBMClassifier

        # LightGBM has no per-tree resampling: "subsample" means plain balanced weights
        return LGBMClassifier(n_estimators=p.n_estimators, num_leaves=p.num_leaves,
                              learning_rate=p.learning_rate, class_weight=weights,
                              random_state=p.seed, n_jobs=p.n_jobs, verbose=-1).fit(X, y)
    if p.model == "rf+lgbm":
        # members may differ: an OA-strong rf with an F1-strong balanced lgbm
        lg = replace(p, model="lgbm", balance=p.lgbm_balance or p.balance,
                     n_estimators=p.lgbm_rounds or p.n_estimators, lgbm_balance=None,
                     lgbm_rounds=None)
        rf = replace(p, model="rf", lgbm_balance=None, lgbm_rounds=None)
        return Ensemble([fit_model(X, y, rf), fit_model(X, y, lg)], np.unique(y))
    raise ValueError(f"model must be one of {MODELS}, got {p.model!r}")


def model_proba(m, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probabilities of model ``m`` as float32 columns of ``classes`` (absent classes 0)."""
    if X.shape[0] == 0:
        return np.zeros((0, classes.size), np.float32)
    if isinstance(m, (Ensemble, FlatForest)):
        own, p = m.classes, m.predict_proba(X)
    else:
        own, p = m.classes_, m.predict_proba(np.asarray(X, np.float32), num_threads=m.n_jobs)
    own = np.asarray(own)
    if own.size == classes.size and np.array_equal(own, classes):
        return np.asarray(p, np.float32)  # the usual case: no copy of a map-sized array
    out = np.zeros((X.shape[0], classes.size), np.float32)
    out[:, np.searchsorted(classes, own)] = p
    return out


def _check_xy(X, y=None, rows=None, cols=None):
    X = np.asarray(X, np.float32)
    if X.ndim != 2:
        raise ValueError(f"X must be (n, n_features), got shape {X.shape}")
    if y is not None and np.asarray(y).shape != (X.shape[0],):
        raise ValueError("y must have one label per row of X")
    if (rows is None) != (cols is None):
        raise ValueError("give both rows and cols or neither")
    return X


class GlobalClassifier:
    """One model for the whole image.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3)).astype(np.float32); y = np.where(X[:, 0] > 0, 2, 6)
    >>> clf = GlobalClassifier(n_estimators=10, max_depth=6).fit(X, y)
    >>> clf.classes_.tolist(), float((clf.predict(X) == y).mean()) > 0.95
    ([2, 6], True)
    """

    kind = "global"

    def __init__(self, params: ModelParams | str | None = None, *, prior: str = "none",
                 prior_block: int = PRIOR_BLOCK, **model_params):
        """``params`` (or the :class:`ModelParams` fields as keywords, or a model name)."""
        if isinstance(params, str):
            params, model_params = None, {"model": params, **model_params}
        if params is not None and model_params:
            raise TypeError("give ModelParams or its fields as keywords, not both")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        self.model_params = params if params is not None else ModelParams(**model_params)
        self.prior, self.prior_block = prior, int(prior_block)
        self.classes_: np.ndarray | None = None
        self.n_features_: int | None = None
        self.model_ = None
        self.prior_weights_: np.ndarray | None = None

    @property
    def params(self) -> dict:
        """Parameters as a JSON-able dict (stored in the model sidecar)."""
        out = {"kind": self.kind, **asdict(self.model_params)}
        if getattr(self, "prior", "none") != "none":   # models pickled before have none
            out.update(prior=self.prior, prior_block=self.prior_block,
                       prior_weights=None if self.prior_weights_ is None
                       else [round(float(w), 6) for w in self.prior_weights_])
        return out

    def fit(self, X, y, rows=None, cols=None) -> "GlobalClassifier":
        X = _check_xy(X, y, rows, cols)
        y = np.asarray(y).astype(np.int64)
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError("training needs at least two classes")
        self.n_features_ = X.shape[1]
        self.model_ = fit_model(X, y, self.model_params)
        self.prior_weights_ = (self._fit_prior(X, y, rows, cols) if self.prior == "train"
                               else None)
        return self

    def _fit_prior(self, X, y, rows, cols, k: int = 3) -> np.ndarray:
        """Class-prior weights (:mod:`.prior`) from out-of-fold probabilities of a k-fold CV
        in square blocks of ``prior_block`` px (random folds without rows/cols, or where the
        area holds fewer blocks than folds)."""
        folds = None
        if rows is not None:
            try:
                folds = blocked_folds(rows, cols, self.prior_block, k=k,
                                      seed=self.model_params.seed)
            except ValueError:
                pass
        if folds is None:
            folds = np.random.default_rng(self.model_params.seed).integers(0, k, y.size)
        P = np.zeros((y.size, self.classes_.size), np.float32)
        for i in range(k):
            a, v = folds != i, folds == i
            if not v.any() or np.unique(y[a]).size < 2:
                continue
            P[v] = model_proba(fit_model(X[a], y[a], self.model_params), X[v], self.classes_)
        done = P.sum(axis=1) > 0
        counts = np.bincount(np.searchsorted(self.classes_, y), minlength=self.classes_.size)
        return prior_weights(P[done], counts)

    def predict_proba(self, X, rows=None, cols=None) -> np.ndarray:
        """Class probabilities (n, n_classes) float32, columns in ``classes_`` order (with
        the class-prior weights applied when ``prior="train"``)."""
        X = _check_xy(X, None, rows, cols)
        return apply_prior(model_proba(self.model_, X, self.classes_),
                           getattr(self, "prior_weights_", None))

    def predict(self, X, rows=None, cols=None) -> np.ndarray:
        """Most probable class label per row."""
        return self.classes_[np.argmax(self.predict_proba(X, rows, cols), axis=1)]


class LocalClassifier(GlobalClassifier):
    """Locally adaptive classifier: one model per tile of ``tile_size`` pixels, blended.

    Parameters
    ----------
    tile_size : int
        Tile side in pixels; tiles start at row/column 0.
    min_class_samples : int
        Every class present in a tile's neighbourhood needs this many samples, else the
        neighbourhood grows by one ring of tiles (up to ``max_radius``).
    min_tile_samples : int
        Fewer samples in the final neighbourhood: the tile uses the global model.
    max_radius : int
        Largest neighbourhood, in tiles around the tile (1 = the 3 x 3 tiles around it).
    blend : float in (0, 1]
        Width of the blending ramp across a tile edge, as a fraction of the tile: 1 blends
        bilinearly between the four nearest tile centres (every pixel evaluates four
        models); 0.5 ramps over the half tile centred on each edge, so the inner half of a
        tile uses its own model alone (2.25 models per pixel on average).  The weights stay
        continuous, changing by at most ``1 / (blend * tile_size)`` per pixel.
    **kwargs
        Model options as for :class:`GlobalClassifier`.

    Examples
    --------
    Two classes whose feature meaning flips between the left and right halves: a global
    model cannot separate them, local models can.

    >>> rng = np.random.default_rng(0)
    >>> rows, cols = rng.integers(0, 64, (2, 3000))
    >>> y = np.where(rng.random(3000) < 0.5, 1, 2)
    >>> X = ((y == 1) ^ (cols >= 32)).astype(np.float32)[:, None] + rng.normal(0, .3, (3000, 1))
    >>> kw = dict(n_estimators=10, max_depth=4)
    >>> g = GlobalClassifier(**kw).fit(X, y)
    >>> loc = LocalClassifier(16, max_radius=1, **kw).fit(X, y, rows, cols)
    >>> acc = lambda m: float((m.predict(X, rows, cols) == y).mean())
    >>> acc(g) < 0.6, acc(loc) > 0.85
    (True, True)
    """

    kind = "local"

    def __init__(self, tile_size: int = 256, params: ModelParams | None = None, *,
                 min_class_samples: int = 20, min_tile_samples: int = 60, max_radius: int = 2,
                 blend: float = 1.0, **kwargs):
        super().__init__(params, **kwargs)
        if not 0 < blend <= 1:
            raise ValueError(f"blend must be in (0, 1], got {blend}")
        self.blend = float(blend)
        if self.prior != "none":
            raise ValueError("class-prior correction is for global models only")
        if tile_size < 1:
            raise ValueError("tile_size must be >= 1")
        self.tile_size = int(tile_size)
        self.min_class_samples = int(min_class_samples)
        self.min_tile_samples = int(min_tile_samples)
        self.max_radius = int(max_radius)
        self.global_: GlobalClassifier | None = None
        self.models_: list = []
        self.tile_model_: np.ndarray | None = None   # (n_tr, n_tc) index into models_, -1 = global
        self.tile_radius_: np.ndarray | None = None

    @property
    def params(self) -> dict:
        return {**super().params, "tile_size": self.tile_size,
                "min_class_samples": self.min_class_samples,
                "min_tile_samples": self.min_tile_samples, "max_radius": self.max_radius,
                "blend": self.blend}

    def fit(self, X, y, rows=None, cols=None) -> "LocalClassifier":
        if rows is None:
            raise ValueError("LocalClassifier.fit needs the samples' rows and cols")
        X = _check_xy(X, y, rows, cols)
        y = np.asarray(y).astype(np.int64)
        self.global_ = GlobalClassifier(self.model_params)
        self.global_.fit(X, y)
        self.classes_, self.n_features_ = self.global_.classes_, X.shape[1]
        t = self.tile_size
        tr, tc = np.asarray(rows) // t, np.asarray(cols) // t
        n_tr, n_tc = int(tr.max()) + 1, int(tc.max()) + 1
        ci = np.searchsorted(self.classes_, y)
        counts = np.zeros((n_tr, n_tc, self.classes_.size), np.int64)
        np.add.at(counts, (tr, tc, ci), 1)
        csum = np.zeros((n_tr + 1, n_tc + 1, self.classes_.size), np.int64)
        csum[1:, 1:] = counts.cumsum(0).cumsum(1)
        self.models_, self.tile_model_ = [], np.full((n_tr, n_tc), -1, np.int32)
        self.tile_radius_ = np.zeros((n_tr, n_tc), np.int32)
        for i in range(n_tr):
            for j in range(n_tc):
                r = self._radius(csum, i, j)
                self.tile_radius_[i, j] = r
                if r < 0:
                    continue
                sel = (np.abs(tr - i) <= r) & (np.abs(tc - j) <= r)
                self.tile_model_[i, j] = len(self.models_)
                self.models_.append(fit_model(X[sel], y[sel], self.model_params))
        self.model_ = self.global_.model_
        return self

    def _radius(self, csum, i, j) -> int:
        """Neighbourhood radius for tile (i, j), or -1 when the tile falls back to global."""
        n_tr, n_tc = csum.shape[0] - 1, csum.shape[1] - 1
        for r in range(1, self.max_radius + 1):
            i0, i1, j0, j1 = max(0, i - r), min(n_tr, i + r + 1), max(0, j - r), min(n_tc, j + r + 1)
            c = csum[i1, j1] - csum[i0, j1] - csum[i1, j0] + csum[i0, j0]
            present = c[c > 0]
            if present.min(initial=0) >= self.min_class_samples or r == self.max_radius:
                if c.sum() < self.min_tile_samples or present.size < 2:
                    return -1
                return r
        return -1  # pragma: no cover - loop always returns at max_radius

    @property
    def n_local(self) -> int:
        """Number of tiles with their own model."""
        return len(self.models_)

    def blend_weights(self, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        """Model index (n, 4) (-1 = global) and weight (n, 4) of each pixel's four nearest
        tile centres: bilinear, each axis's weight ramped over ``blend`` of a tile around the
        tile edge (weights sum to 1; tiles beyond the fitted area are clamped)."""
        n_tr, n_tc = self.tile_model_.shape
        t, b = self.tile_size, self.blend

        def axis(v, n):
            f = (np.asarray(v, np.float64) + 0.5) / t - 0.5
            i0 = np.floor(f)
            w = f - i0
            i0 = i0.astype(np.int64)
            lo = i0 < 0
            hi = i0 >= n - 1
            w[lo | hi] = 0.0
            w = np.clip((w - 0.5) / b + 0.5, 0.0, 1.0)  # the edge is at w = 0.5
            i0 = np.clip(i0, 0, n - 1)
            return i0, np.minimum(i0 + 1, n - 1), w

        r0, r1, wr = axis(rows, n_tr)
        c0, c1, wc = axis(cols, n_tc)
        ids = np.stack([self.tile_model_[r0, c0], self.tile_model_[r0, c1],
                        self.tile_model_[r1, c0], self.tile_model_[r1, c1]], axis=1)
        w = np.stack([(1 - wr) * (1 - wc), (1 - wr) * wc, wr * (1 - wc), wr * wc], axis=1)
        return ids, w.astype(np.float32)

    def predict_proba(self, X, rows=None, cols=None) -> np.ndarray:
        """Blended class probabilities (n, n_classes) float32; needs ``rows`` and ``cols``."""
        if rows is None:
            raise ValueError("LocalClassifier.predict_proba needs the pixels' rows and cols")
        X = _check_xy(X, None, rows, cols)
        ids, w = self.blend_weights(rows, cols)
        out = np.zeros((X.shape[0], self.classes_.size), np.float32)
        # (model, pixel) pairs with weight, duplicates (clamped corners) summed, grouped
        # by model in one sort instead of one pass over every pixel per model
        n = X.shape[0]
        keep = w.ravel() > 0
        key = (ids.ravel()[keep].astype(np.int64) + 1) * n + np.repeat(np.arange(n), 4)[keep]
        key, inv = np.unique(key, return_inverse=True)
        wk = np.bincount(inv, weights=w.ravel()[keep]).astype(np.float32)
        model_of, pix = np.divmod(key, n)
        bounds = np.flatnonzero(np.diff(model_of)) + 1
        for part in np.split(np.arange(key.size), bounds):
            m = int(model_of[part[0]]) - 1
            idx = pix[part]
            model = self.global_.model_ if m < 0 else self.models_[m]
            out[idx] += wk[part, None] * model_proba(model, X[idx], self.classes_)
        return out


def predict_image(classifier, stack: np.ndarray, *, row0: int = 0, col0: int = 0,
                  smooth: float = 0.0, mmu: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Classify a feature image, optionally regularised in space before the arg-max.

    Parameters
    ----------
    classifier : GlobalClassifier or LocalClassifier (fitted)
    stack : ndarray (n_features, rows, cols)
        Features, NaN where missing: a pixel with at least one valid feature is classified
        (the models route missing values as they learnt to); one with none is nodata.
    row0, col0 : int
        Position of ``stack[:, 0, 0]`` in the full image (local models need it).
    smooth : float
        Gaussian sigma in pixels applied to the class probabilities over the valid pixels
        (:func:`.smooth.smooth_proba`); 0 = none.
    mmu : int
        Minimum mapping unit in pixels: 8-connected patches of one class smaller than this
        take their next most probable class (:func:`.smooth.sieve`); <= 1 = none.

    Returns
    -------
    codes : ndarray int64 (rows, cols), class codes, 0 at nodata
    confidence : ndarray float32 (rows, cols), (smoothed) probability of the mapped class,
        NaN at nodata

    Near the image edge the filters see fewer pixels; to classify a block of a larger image
    exactly as the whole, pass the block grown by :func:`.smooth.halo` (and ``mmu``) pixels
    and crop (as :func:`cryokit.landcover.product.predict_block` does).

    Examples
    --------
    A lone pixel whose features say class 2 inside a field of class 1:

    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 1)).astype(np.float32); y = np.where(X[:, 0] > 0, 2, 1)
    >>> clf = GlobalClassifier(n_estimators=10, max_depth=4).fit(X, y)
    >>> img = np.full((1, 5, 5), -1.0, np.float32); img[0, 2, 2] = 1.0; img[0, 0, 0] = np.nan
    >>> predict_image(clf, img)[0][:3, :3].tolist()
    [[0, 1, 1], [1, 1, 1], [1, 1, 2]]
    >>> predict_image(clf, img, mmu=2)[0][2, 2].item()
    1
    """
    stack = np.asarray(stack, np.float32)
    _, h, w = stack.shape
    X = stack.reshape(stack.shape[0], -1).T
    ok = np.flatnonzero(np.isfinite(X).any(axis=1))
    codes = np.zeros(h * w, np.int64)
    conf = np.full(h * w, np.nan, np.float32)
    if ok.size == 0:
        return codes.reshape(h, w), conf.reshape(h, w)
    rr, cc = np.divmod(ok, w)
    p = classifier.predict_proba(X[ok], rr + row0, cc + col0)
    if (not smooth or smooth <= 0) and mmu <= 1:
        best = np.argmax(p, axis=1)
        codes[ok] = classifier.classes_[best]
        conf[ok] = p[np.arange(ok.size), best]
        return codes.reshape(h, w), conf.reshape(h, w)
    valid = np.zeros((h, w), bool)
    valid[rr, cc] = True
    P = np.zeros((p.shape[1], h, w), np.float32)
    P[:, rr, cc] = p.T
    P = smooth_proba(P, smooth, valid)
    best = sieve(P, mmu, valid)
    codes = np.where(valid, classifier.classes_[np.maximum(best, 0)], 0)
    conf = np.where(valid, np.take_along_axis(P, np.maximum(best, 0)[None], 0)[0], np.nan)
    return codes, conf.astype(np.float32)
