"""Saving and loading a trained land-cover model: an array archive plus a JSON sidecar.

``MODEL`` holds the fitted classifier (compiled forests or LightGBM boosters) as arrays and
JSON (:mod:`.model_store`), so loading a model never runs code from the file; models that
older releases pickled with joblib are refused unless the caller trusts them explicitly.
``MODEL.json`` holds what a person or another tool needs without unpickling: format and
version, classifier parameters, class codes, legend, feature names, training counts and
the source files.  Loading checks the sidecar and, when given, that the feature stack to be
classified has the same feature names in the same order.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Sequence

from .. import __version__
from ..core.atomic import atomic_file
from ..core.errors import UserError, require_file
from .legend import Legend
from .model_store import dump_classifier, is_store, load_classifier

FORMAT = "cryokit-landcover-model"
FORMAT_VERSION = 3  # 3: array archive; 2: joblib pickle (read only when trusted); 1: refused


@dataclass
class TrainedModel:
    """A classifier with what it was trained for.

    Attributes
    ----------
    classifier : GlobalClassifier or LocalClassifier
    feature_names : list of str, in stack order
    legend : Legend of the map (classes with samples and the rest of the legend asked for)
    info : dict, training summary (counts per class, sources, notes)
    """

    classifier: object
    feature_names: list[str]
    legend: Legend
    info: dict

    def sidecar(self) -> dict:
        c = self.classifier
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "cryokit": __version__,
                "params": c.params, "classes": [int(v) for v in c.classes_],
                "feature_names": list(self.feature_names), "legend": self.legend.to_dict(),
                **self.info}


def sidecar_path(path: str | os.PathLike) -> str:
    return os.fspath(path) + ".json"


def save_model(model: TrainedModel, path: str | os.PathLike) -> tuple[str, str]:
    """Write MODEL and MODEL.json atomically; returns both paths.

    Examples
    --------
    >>> save_model(trained, "model.npz")  # doctest: +SKIP
    ('model.npz', 'model.npz.json')
    """
    path = os.fspath(path)
    side = sidecar_path(path)
    with atomic_file(path) as tmp, atomic_file(side) as tmp_side:
        dump_classifier(model.classifier, tmp)
        tmp_side.write_text(json.dumps(model.sidecar(), indent=2))
    return path, side


def load_model(path: str | os.PathLike, feature_names: Sequence[str] | None = None, *,
               trust: bool = False) -> TrainedModel:
    """Read a model written by :func:`save_model`.

    A pickled (joblib) model of format version 2 is read only with ``trust=True``:
    unpickling runs whatever code the file holds.

    Raises
    ------
    UserError
        Missing/unreadable model or sidecar, another format, or ``feature_names`` that differ
        from the model's (the message names the first difference).

    Examples
    --------
    >>> m = load_model("model.npz", ["B02", "B03"])  # doctest: +SKIP
    """
    p = require_file(path)
    side = sidecar_path(p)
    if not os.path.exists(side):
        raise UserError(f"model sidecar {os.path.basename(side)} is missing (written beside "
                        "the model by 'cryokit landcover train')", p)
    try:
        meta = json.loads(open(side, encoding="utf-8").read())
    except (OSError, ValueError):
        raise UserError("not a JSON model sidecar", side) from None
    if meta.get("format") != FORMAT:
        raise UserError(f"not a cryokit land-cover model sidecar (format {meta.get('format')!r})",
                        side)
    version = meta.get("format_version")
    if version == FORMAT_VERSION and is_store(p):
        clf = load_classifier(p)
    elif version == 2 and not is_store(p):
        if not trust:
            raise UserError("is a pickled (joblib) model of an older cryokit: loading it could "
                            "run code from the file; train it again, or pass --trust-model if "
                            "you made it yourself", p)
        import joblib

        try:
            clf = joblib.load(p)
        except Exception:  # noqa: BLE001 - any unpickling failure is a bad model file
            raise UserError("cannot be read as a cryokit land-cover model", p) from None
    else:
        raise UserError(f"model format version {version}, this cryokit reads version "
                        f"{FORMAT_VERSION} (and 2 with --trust-model): train it again with "
                        "'cryokit landcover train'", p)
    names = list(meta["feature_names"])
    if feature_names is not None:
        check_features(names, list(feature_names), p)
    info = {k: v for k, v in meta.items() if k not in (
        "format", "format_version", "cryokit", "params", "classes", "feature_names", "legend")}
    return TrainedModel(clf, names, Legend.from_dict(meta["legend"]), info)


def check_features(model_names: list[str], stack_names: list[str], path: str) -> None:
    """UserError unless the stack's feature names equal the model's, in order."""
    if model_names == stack_names:
        return
    if len(model_names) != len(stack_names):
        raise UserError(f"model was trained on {len(model_names)} features, the stack has "
                        f"{len(stack_names)}", path)
    i = next(i for i, (a, b) in enumerate(zip(model_names, stack_names)) if a != b)
    raise UserError(f"feature {i + 1} of the stack is {stack_names[i]!r}, the model expects "
                    f"{model_names[i]!r} (stack must have the model's features in order)", path)
