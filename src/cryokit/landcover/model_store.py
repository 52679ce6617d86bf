"""A fitted land-cover classifier as plain arrays and JSON: loading it runs no code.

The file is a NumPy ``.npz`` archive read with ``allow_pickle=False``: one JSON member
(``tree``) describes the objects, the other members are numeric arrays it refers to by name.
Only the classes listed in :data:`_TYPES` can be rebuilt, and only their data attributes are
set; LightGBM models are kept as LightGBM's own text model format.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile

import numpy as np

from ..core.errors import UserError

_MAX_MEMBER_BYTES = 8 << 30   # a member claiming more than this is refused before reading


class BoosterModel:
    """A LightGBM booster read back from its text model: what ``model_proba`` needs of an
    ``LGBMClassifier`` (``classes_``, ``n_jobs``, ``predict_proba``)."""

    def __init__(self, model_text: str, classes: np.ndarray, n_jobs: int):
        from lightgbm import Booster

        self.booster = Booster(model_str=model_text)
        self.classes_, self.n_jobs = np.asarray(classes), int(n_jobs)

    def predict_proba(self, X: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        p = self.booster.predict(X, num_threads=num_threads or self.n_jobs)
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p


def _types() -> dict[str, type]:
    from .classify import Ensemble, GlobalClassifier, LocalClassifier, ModelParams
    from .forest import FlatForest

    return {c.__name__: c for c in (GlobalClassifier, LocalClassifier, Ensemble, ModelParams,
                                    FlatForest)}


def _encode(obj, arrays: dict, types: dict):
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("object arrays cannot be stored")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"$array": key}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, arrays, types) for v in obj]
    if isinstance(obj, dict):
        return {"$dict": [[_encode(k, arrays, types), _encode(v, arrays, types)]
                          for k, v in obj.items()]}
    name = type(obj).__name__
    if name in ("LGBMClassifier", "BoosterModel"):
        booster = obj.booster if name == "BoosterModel" else obj.booster_
        text = np.frombuffer(booster.model_to_string().encode(), np.uint8)
        return {"$lightgbm": _encode(text, arrays, types),
                "classes": _encode(np.asarray(obj.classes_), arrays, types),
                "n_jobs": int(obj.n_jobs or 1)}
    if name not in types or type(obj) is not types[name]:
        raise TypeError(f"cannot store a {name}")
    fields = (dataclasses.asdict(obj) if name == "ModelParams"
              else {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
              if dataclasses.is_dataclass(obj) else vars(obj))
    return {"$object": name, "fields": {k: _encode(v, arrays, types) for k, v in fields.items()}}


def _decode(node, arrays, types):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays, types) for v in node]
    if not isinstance(node, dict):
        raise ValueError("unexpected node")
    if "$array" in node:
        return arrays[node["$array"]]
    if "$dict" in node:
        return {_decode(k, arrays, types): _decode(v, arrays, types) for k, v in node["$dict"]}
    if "$lightgbm" in node:
        text = _decode(node["$lightgbm"], arrays, types).tobytes().decode()
        return BoosterModel(text, _decode(node["classes"], arrays, types), node["n_jobs"])
    cls = types[node["$object"]]       # KeyError for anything not listed: refused
    fields = {k: _decode(v, arrays, types) for k, v in node["fields"].items()}
    if cls.__name__ == "ModelParams":
        return cls(**fields)
    obj = cls.__new__(cls)
    for k, v in fields.items():
        if k.startswith("__"):
            raise ValueError("bad field name")
        object.__setattr__(obj, k, v)
    return obj


def dump_classifier(classifier, path: str | os.PathLike) -> None:
    """Write ``classifier`` to ``path`` as an ``.npz`` of arrays plus a JSON tree."""
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(classifier, arrays, _types())
    text = np.frombuffer(json.dumps(tree).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez_compressed(f, tree=text, **arrays)


def is_store(path: str | os.PathLike) -> bool:
    """True when ``path`` is a zip holding the ``tree`` member of :func:`dump_classifier`."""
    try:
        with zipfile.ZipFile(path) as z:
            return "tree.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load_classifier(path: str | os.PathLike):
    """Read a classifier written by :func:`dump_classifier` (no pickle, no code).

    Raises
    ------
    UserError
        The file is not such an archive, or its content is not a classifier.
    """
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.file_size > _MAX_MEMBER_BYTES:
                    raise UserError(f"model member {info.filename} claims {info.file_size} bytes",
                                    path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        tree = json.loads(arrays.pop("tree").tobytes().decode())
        return _decode(tree, arrays, _types())
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - whatever is wrong inside, the file is not a model
        raise UserError("is not a cryokit land-cover model archive (or is damaged)", path) \
            from None
