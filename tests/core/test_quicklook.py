"""Quick-look PNGs: valid, modest size, actually drawn, no pyplot state left behind."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from cryokit.core.quicklook import class_quicklook, raster_quicklook, vector_quicklook

EXTENT = (430000.0, 440000.0, 8757000.0, 8765000.0)  # 10 km x 8 km, north up


def _flow(h: int, w: int):
    yy, xx = np.mgrid[0:h, 0:w]
    vx = np.sin(xx / (w / 6)).astype(np.float32)
    vy = np.cos(yy / (h / 6)).astype(np.float32)
    vx[: h // 5, : w // 5] = np.nan  # a hole: arrows and colours must skip it
    return vx, vy, np.hypot(vx, vy)


def _check_png(path, min_colours=50):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        w, h = im.size
        rgb = np.asarray(im.convert("RGB"))
    assert 900 <= w <= 1100 and 300 <= h <= 1500
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) >= min_colours
    return rgb


def test_vector_quicklook(tmp_path):
    bg = np.random.default_rng(1).random((800, 1000)).astype(np.float32)
    bg[:100] = np.nan
    vx, vy, speed = _flow(40, 50)  # node grid coarser than the image, same extent
    out = vector_quicklook(tmp_path / "ql.png", bg, speed, vx, vy, extent=EXTENT, units="m/d",
                           title="Kongsvegen 2021", credit="Contains Copernicus data")
    rgb = _check_png(out)
    # the map is coloured (speed layer), not only grey
    assert np.mean(np.ptp(rgb.astype(int), axis=2) > 40) > 0.1
    assert [p.name for p in tmp_path.iterdir()] == ["ql.png"]  # no temporaries left


def test_vector_quicklook_all_nan_and_no_background(tmp_path):
    nan = np.full((20, 20), np.nan, np.float32)
    out = vector_quicklook(tmp_path / "ql.png", None, nan, nan, nan, extent=EXTENT, units="m/yr",
                           title="empty", arrow_step=3)
    _check_png(out, min_colours=2)


def test_arrow_direction_north_up(tmp_path):
    """A flow due north draws arrows whose heads lie above their tails in the image."""
    vx, vy = np.zeros((16, 20), np.float32), np.ones((16, 20), np.float32)
    a, b = tmp_path / "north.png", tmp_path / "south.png"
    vector_quicklook(a, None, vy, vx, vy, extent=EXTENT, units="m/d", title="", arrow_step=1)
    vector_quicklook(b, None, vy, vx, -vy, extent=EXTENT, units="m/d", title="", arrow_step=1)
    # arrows are white-filled, black-edged: compare where the black ink sits vertically
    # frame, labels and key arrow are identical in both: keep only the ink that differs
    ink_a, ink_b = (np.asarray(Image.open(p).convert("L")) < 60 for p in (a, b))
    rows_a, rows_b = np.nonzero(ink_a & ~ink_b)[0], np.nonzero(ink_b & ~ink_a)[0]
    assert rows_a.size > 200 and rows_b.size > 200
    assert rows_a.mean() < rows_b.mean() - 5


def test_raster_quicklook_diverging(tmp_path):
    rng = np.random.default_rng(2)
    dh = rng.normal(-3, 5, (300, 400)).astype(np.float32)
    dh[50:80, 50:80] = np.nan
    hill = rng.random((600, 800))
    out = raster_quicklook(tmp_path / "dh.png", dh, extent=EXTENT, cmap="RdBu", label="dh (m)",
                           title="dh", background=hill, diverging=True, credit="SRTM, FABDEM")
    rgb = _check_png(out)
    red = (rgb[..., 0].astype(int) - rgb[..., 2] > 60).mean()
    blue = (rgb[..., 2].astype(int) - rgb[..., 0] > 60).mean()
    assert red > 0.01 and blue > 0.01


def test_raster_quicklook_tall_extent_and_limits(tmp_path):
    a = np.linspace(0, 1, 200 * 50).reshape(200, 50)
    out = raster_quicklook(tmp_path / "t.png", a, extent=(0, 500, 0, 2000), cmap="viridis",
                           label="x", title="tall", vmin=0, vmax=1)
    with Image.open(out) as im:
        assert im.size[1] > im.size[0] * 0.9  # tall map gets a tall figure


def test_class_quicklook_colours_and_legend(tmp_path):
    codes = np.zeros((300, 400), np.uint8)       # 0 = nodata: transparent
    codes[:, 100:250], codes[:, 250:] = 2, 6
    classes = [(2, "Forest", (20, 100, 30)), (6, "Open water", (30, 80, 200)),
               (9, "Barren", (170, 150, 120))]    # not in the map: not in the legend
    out = class_quicklook(tmp_path / "c.png", codes, extent=EXTENT, classes=classes,
                          title="classes", credit="test")
    rgb = _check_png(out, min_colours=3).astype(int)
    share = {n: (np.abs(rgb - c).sum(axis=2) < 10).mean() for _, n, c in classes}
    assert share["Forest"] > 0.05 and share["Open water"] > 0.05
    # the legend patch of a class missing from the map is not drawn
    assert share["Barren"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]


def test_no_pyplot_state():
    if "matplotlib.pyplot" in sys.modules:
        pytest.skip("pyplot imported by another test module")
    import cryokit.core.quicklook  # noqa: F401

    assert "matplotlib.pyplot" not in sys.modules
