"""Class legends: codes, names and colours of a land cover map (CALC-2020 or your own; files:
:mod:`.inputs`).

A legend travels with every map: as a GDAL colour table (for viewers) and as a JSON dataset tag
``LEGEND`` (for cryokit), so an accuracy report can name the classes of any map it is given.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping


#: Dataset tag of a GeoTIFF that holds the legend as JSON (see :meth:`Legend.to_tags`).
LEGEND_TAG = "LEGEND"

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def parse_colour(value: Any) -> tuple[int, int, int]:
    """``"#rrggbb"``, ``"rrggbb"`` or a 3-sequence of 0..255 integers."""
    if isinstance(value, str):
        m = _HEX.match(value.strip())
        if not m:
            raise ValueError(f"colour {value!r} is not #rrggbb")
        h = m.group(1)
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    rgb = tuple(int(v) for v in value)
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"colour {value!r} is not three integers 0..255")
    return rgb


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower())


@dataclass(frozen=True)
class Legend:
    """Class codes (positive integers; 0 is reserved for nodata), names and RGB colours.

    Examples
    --------
    >>> lg = Legend((1, 2), ("Forest", "Water"), ((0, 100, 0), (0, 0, 255)))
    >>> lg.name(2), lg.code("forest")
    ('Water', 1)
    >>> lg.colormap()[0], lg.colormap()[1]
    ((0, 0, 0, 0), (0, 100, 0, 255))
    >>> Legend.from_dict(lg.to_dict()) == lg
    True
    """

    codes: tuple[int, ...]
    names: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...]

    def __post_init__(self):
        object.__setattr__(self, "codes", tuple(int(c) for c in self.codes))
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        object.__setattr__(self, "colours", tuple(parse_colour(c) for c in self.colours))
        if not (len(self.codes) == len(self.names) == len(self.colours)):
            raise ValueError("codes, names and colours must have the same length")
        if len(set(self.codes)) != len(self.codes):
            raise ValueError(f"duplicate class codes in {self.codes}")
        if any(c <= 0 or c > 255 for c in self.codes):
            # uint8 maps with a colour table: 0 is nodata, 255 the largest code.
            raise ValueError(f"class codes must be 1..255, got {self.codes}")

    def __len__(self) -> int:
        return len(self.codes)

    def name(self, code: int) -> str:
        """Name of ``code``; ``"class <code>"`` for a code the legend does not hold."""
        try:
            return self.names[self.codes.index(int(code))]
        except ValueError:
            return f"class {int(code)}"

    def code(self, name: str) -> int:
        """Code of a class name (case, spaces and punctuation ignored); KeyError if unknown."""
        key = _norm(name)
        for c, n in zip(self.codes, self.names):
            if _norm(n) == key:
                return c
        raise KeyError(name)

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """GDAL colour table for ``rasterio`` ``write_colormap``: code -> RGBA, 0 transparent."""
        cmap = {0: (0, 0, 0, 0)}
        cmap.update({c: (*rgb, 255) for c, rgb in zip(self.codes, self.colours)})
        return cmap

    def to_dict(self) -> dict:
        """``{"classes": [{"code", "name", "colour": "#rrggbb"}, ...]}`` (the JSON file format)."""
        return {"classes": [{"code": c, "name": n, "colour": _hex(rgb)}
                            for c, n, rgb in zip(self.codes, self.names, self.colours)]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Legend":
        """Inverse of :meth:`to_dict`; KeyError/ValueError on a malformed dict."""
        classes = d["classes"]
        return cls(tuple(int(k["code"]) for k in classes), tuple(str(k["name"]) for k in classes),
                   tuple(parse_colour(k.get("colour", k.get("color", "#808080")))
                         for k in classes))

    def to_tags(self) -> dict[str, str]:
        """Dataset tags that embed the legend in a GeoTIFF (read back by :func:`legend_from_tags`)."""
        return {LEGEND_TAG: json.dumps(self.to_dict(), separators=(",", ":"))}

    def subset(self, codes) -> "Legend":
        """The legend restricted to ``codes`` (in legend order); unknown codes get a grey entry."""
        codes = [int(c) for c in codes]
        keep = [c for c in self.codes if c in codes] + sorted(c for c in codes if c not in self.codes)
        return Legend(tuple(keep), tuple(self.name(c) for c in keep),
                      tuple(self.colours[self.codes.index(c)] if c in self.codes
                            else (128, 128, 128) for c in keep))


#: The CALC-2020 legend (Circumpolar Arctic Land Cover, PRODUCTS.md section 4).
CALC2020 = Legend(
    codes=tuple(range(1, 11)),
    names=("Cropland", "Forest", "Graminoid tundra", "Shrub tundra", "Wetland", "Open water",
           "Lichen/moss", "Man-made imperviousness", "Barren land", "Ice/snow"),
    colours=((230, 200, 80), (20, 100, 30), (170, 210, 110), (120, 150, 60), (60, 170, 160),
             (30, 80, 200), (200, 170, 200), (200, 30, 30), (170, 150, 120), (235, 245, 255)),
)


def legend_from_tags(tags: Mapping[str, str]) -> Legend | None:
    """The legend embedded by :meth:`Legend.to_tags`, or None when the tags hold none.

    Examples
    --------
    >>> legend_from_tags(CALC2020.to_tags()) == CALC2020
    True
    >>> legend_from_tags({}) is None
    True
    """
    text = tags.get(LEGEND_TAG)
    if not text:
        return None
    try:
        return Legend.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError):
        return None
