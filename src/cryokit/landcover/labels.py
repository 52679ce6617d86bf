"""Class labels as codes: names to codes through a legend, legends from a code mapping, the
``name=code`` option text (files: :mod:`.inputs`).

Labels given as names (e.g. ``"forest"``) become codes through :func:`class_codes_from` -- by a
legend's names when one is given, else in sorted order -- and the mapping travels with the
label array (:class:`Labels`) so a model can store it and a later assessment can use the same
codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .legend import CALC2020, Legend

#: Columns tried, in order, when no label column is named (compared lower-case).
LABEL_COLUMNS = ("class", "classid", "class_id", "classvalue", "code", "label", "labels",
                 "lulc_id", "lc_code", "landcover", "land_cover", "lulc", "lc", "cover")


@dataclass(frozen=True)
class Labels:
    """Labels on a grid: ``array`` int32 (H, W), 0 = unlabelled; ``codes`` maps the label
    values found in the file (as strings) to codes; ``column`` is the column read (vectors)."""

    array: np.ndarray
    codes: dict[str, int]
    column: str | None = None
    names: dict[int, str] | None = None   # numeric codes: names from a companion column

    def legend(self, base: Legend | None = CALC2020) -> Legend:
        """A legend naming the codes by the labels they came from (see
        :func:`legend_from_codes`); numeric labels by the companion name column when the file
        has one (``LULC_ID`` with ``LULC_NAME``), else ``class <code>``.

        Examples
        --------
        >>> Labels(np.zeros((1, 1), np.int32), {"1": 1, "5": 5}, names={5: "forest"}).legend().names
        ('class 1', 'forest')
        """
        if all(_is_number(k) for k in self.codes):
            named = {(self.names or {}).get(c, f"class {c}"): c for c in self.codes.values()}
            return legend_from_codes(named, base)
        return legend_from_codes(self.codes, base)


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def class_codes_from(values: Sequence, legend: Legend | None = None,
                     codes: Mapping[str, int] | None = None) -> dict[str, int]:
    """Map the distinct label values to class codes (1..255; 0 means unlabelled).

    - ``codes`` given: used as is (a model's stored mapping); values it lacks raise ValueError.
    - integer values all in 0..255: each is its own code, and 0 means unlabelled (left out),
      as in a label raster.
    - names and a ``legend``: the legend's code of each name (case, spaces, punctuation ignored);
      a name the legend lacks raises ValueError naming it.
    - otherwise (names without legend, or numbers that include negatives, fractions or
      values over 255): codes 1..n in sorted order of the values.

    Missing values (None, NaN, empty string) are left out.

    Returns
    -------
    dict mapping ``str(value)`` (integers written without ``.0``) to the code.

    Examples
    --------
    >>> class_codes_from(["water", "forest", "water"])
    {'forest': 1, 'water': 2}
    >>> class_codes_from(["Forest", "open water"], legend=CALC2020)
    {'Forest': 2, 'open water': 6}
    >>> class_codes_from([3.0, 1.0, None])
    {'1': 1, '3': 3}
    >>> class_codes_from([0, 1, 2])          # 0 is unlabelled, as in a label raster
    {'1': 1, '2': 2}
    >>> class_codes_from([-1, 1, 2])         # not codes: numbered in order
    {'-1': 1, '1': 2, '2': 3}
    """
    keys = _distinct_keys(values)
    if codes is not None:
        mapping = {str(k): int(v) for k, v in codes.items()}
        missing = [k for k in keys if k not in mapping]
        if missing:
            raise ValueError(f"label value(s) {', '.join(missing[:10])} not in the class mapping "
                             f"({', '.join(list(mapping)[:20])})")
        return {k: mapping[k] for k in keys}
    numeric = all(_is_number(k) for k in keys)
    if numeric and all(float(k).is_integer() and 0 <= float(k) <= 255 for k in keys):
        return {k: int(float(k)) for k in sorted(keys, key=float) if float(k) != 0}
    if not numeric and legend is not None:
        out, unknown = {}, []
        for k in keys:
            try:
                out[k] = legend.code(k)
            except KeyError:
                unknown.append(k)
        if unknown:
            raise ValueError(f"label name(s) {', '.join(unknown[:10])} not in the legend "
                             f"({', '.join(legend.names)})")
        return out
    ordered = sorted(keys, key=float) if numeric else sorted(keys)
    if len(ordered) > 255:
        raise ValueError(f"{len(ordered)} distinct labels; at most 255 classes are supported")
    return {k: i for i, k in enumerate(ordered, 1)}


def label_key(v) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    s = str(v).strip()
    return s or None


def _distinct_keys(values) -> list[str]:
    return sorted({k for k in map(label_key, values) if k is not None})


def legend_from_codes(codes: Mapping[str, int], base: Legend | None = CALC2020) -> Legend:
    """A legend for a label mapping: names are the label values; colours come from ``base``
    when a name matches one of its classes, else from a qualitative palette.

    Examples
    --------
    >>> lg = legend_from_codes({"forest": 1, "water": 2})
    >>> lg.names, lg.colours[0] == CALC2020.colours[1]
    (('forest', 'water'), True)
    """
    import matplotlib

    palette = matplotlib.colormaps["tab20"].colors
    items = sorted(codes.items(), key=lambda kv: kv[1])
    colours = []
    for i, (name, code) in enumerate(items):
        try:
            c = base.code(name) if base is not None else None
            colours.append(base.colours[base.codes.index(c)])
        except KeyError:
            colours.append(tuple(int(round(255 * v)) for v in palette[i % len(palette)]))
    return Legend(tuple(c for _, c in items), tuple(n for n, _ in items), tuple(colours))


def parse_codes(text: str) -> dict[str, int]:
    """Parse ``"forest=2,water=6"`` into a mapping (a CLI helper).

    Examples
    --------
    >>> parse_codes("forest=2, open water=6")
    {'forest': 2, 'open water': 6}
    """
    out = {}
    for part in filter(None, (s.strip() for s in re.split(r"[,;]", text))):
        name, _, code = part.rpartition("=")
        if not name or not code.strip().isdigit():
            raise ValueError(f"{part!r} is not name=code")
        out[name.strip()] = int(code)
    return out
