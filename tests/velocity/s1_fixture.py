"""Sentinel-1 products for the tests: the real annotation of a GRDH product over the Alps with a
measurement the test writes, and the same acquisition repeated some days later."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import ndimage

FIXTURE = (Path(__file__).resolve().parents[1] / "data" / "sentinel1"
           / "S1B_IW_GRDH_1SDV_20210401T052623_20210401T052648_026269_032297_ECC8-annotation.zip")
NAME = "S1B_IW_GRDH_1SDV_20210401T052623_20210401T052648_026269_032297_ECC8"
LINES, PIXELS = 16685, 25788          # the full GRDH image the annotation describes
WINDOW = (8000, 12000, 768)           # first line, first pixel and size of the written window

_ISO = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?")
_STAMP = re.compile(r"(?<![0-9])(20\d{6})([Tt])(\d{6})")


def unpack(dst: Path) -> Path:
    """The fixture's SAFE folder (manifest and VV annotation), unpacked into ``dst``."""
    with zipfile.ZipFile(FIXTURE) as z:
        z.extractall(dst)
    return dst / f"{NAME}.SAFE"


def write_measurement(safe: Path, window_dn: np.ndarray) -> Path:
    """Write the VV measurement: ``window_dn`` at :data:`WINDOW`, nothing elsewhere (zero DN,
    stored sparse, so a full-size image costs a few kilobytes)."""
    ann = next((safe / "annotation").glob("*-vv-*.xml"))
    out = safe / "measurement" / (ann.stem + ".tiff")
    out.parent.mkdir(exist_ok=True)
    r0, c0, _ = WINDOW
    h, w = window_dn.shape
    with rasterio.open(out, "w", driver="GTiff", width=PIXELS, height=LINES, count=1,
                       dtype="uint16", tiled=True, blockxsize=256, blockysize=256,
                       compress="zstd", sparse_ok=True) as ds:
        ds.write(np.clip(window_dn, 1, 65535).astype("uint16"), 1,
                 window=((r0, r0 + h), (c0, c0 + w)))
    return out


def repeat_pass(safe: Path, days: int, dst: Path) -> Path:
    """The same acquisition ``days`` later (a perfect repeat orbit): every time in the
    annotation and manifest, and every date stamp in the file names, moved by ``days``. The
    measurement folder is not copied."""
    def shift_iso(m):
        t = dt.datetime.fromisoformat(m.group(1)) + dt.timedelta(days=days)
        return t.strftime("%Y-%m-%dT%H:%M:%S") + (m.group(2) or "")

    def shift_stamp(m):
        d = dt.datetime.strptime(m.group(1), "%Y%m%d") + dt.timedelta(days=days)
        return f"{d:%Y%m%d}{m.group(2)}{m.group(3)}"

    new = dst / (_STAMP.sub(shift_stamp, safe.name))
    for f in safe.rglob("*"):
        if f.is_dir() or "measurement" in f.parts:
            continue
        rel = Path(*[_STAMP.sub(shift_stamp, p) for p in f.relative_to(safe).parts])
        target = new / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = f.read_text()
        text = _STAMP.sub(shift_stamp, _ISO.sub(shift_iso, text))
        target.write_text(text)
    return new


def zipped(safe: Path, dst: Path) -> Path:
    """``safe`` zipped as ESA distributes it (``NAME.zip`` holding ``NAME.SAFE/``)."""
    base = dst / safe.name.removesuffix(".SAFE")
    return Path(shutil.make_archive(str(base), "zip", safe.parent, safe.name))


def texture(size: int, seed: int, looks: int = 10) -> np.ndarray:
    """Intensity of a textured scene (log-normal fractal reflectivity x L-look speckle)."""
    rng = np.random.default_rng(seed)
    field = sum(ndimage.gaussian_filter(rng.normal(size=(size, size)), s) * s for s in (1, 3, 9))
    refl = np.exp(1.2 * field / field.std())
    return refl * rng.gamma(looks, 1 / looks, size=(size, size))


def moving_pair(size: int, shift: tuple[float, float], seed: int = 3):
    """Two intensity windows: the second has a disc of radius size/8 at the centre moved by
    ``shift`` = (lines, pixels) (azimuth, range), with a 40 px soft margin; the rest is still.
    Returns (first, second, disc mask where the full shift applies)."""
    a = texture(size, seed)
    moved = ndimage.shift(a, shift, order=3, mode="reflect")
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    w = np.clip((size / 8 + 20 - r) / 40, 0, 1)
    return a, a * (1 - w) + np.clip(moved, 0, None) * w, w >= 1


@pytest.fixture(scope="module")
def s1_pair(tmp_path_factory):
    """Two GRDH products 12 days apart, the second as a zip: a disc in the written window moved
    by 2.5 px in range and -1.5 px in azimuth; and two DEMs (UTM 32N, 10 m) over the window:
    flat at the window's height, and with the heights of the annotation's geolocation grid."""
    import xarray as xr
    from pyproj import Transformer
    from rasterio.transform import from_origin
    from scipy.interpolate import griddata

    tmp = tmp_path_factory.mktemp("s1")
    first = unpack(tmp / "a")
    r0, c0, n = WINDOW
    a, b, disc = moving_pair(n, (-1.5, 2.5))
    write_measurement(first, 100 * np.sqrt(a))
    second = repeat_pass(first, 12, tmp / "b")
    write_measurement(second, 100 * np.sqrt(b))
    second_zip = zipped(second, tmp)
    shutil.rmtree(second)

    gcp = xr.open_dataset(first, engine="sentinel-1", group="IW/VV/gcp")
    lines = np.broadcast_to(gcp.line.values[:, None], gcp.latitude.shape).ravel()
    pixels = np.broadcast_to(gcp.pixel.values[None, :], gcp.latitude.shape).ravel()
    centre = (r0 + n / 2, c0 + n / 2)
    lat, lon, h = (float(griddata((lines, pixels), gcp[v].values.ravel(), [centre])[0])
                   for v in ("latitude", "longitude", "height"))
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True)
    x, y = to_utm.transform(lon, lat)
    res, m = 10.0, 500
    transform = from_origin(round(x) - m * res / 2, round(y) + m * res / 2, res, res)
    gx, gy = to_utm.transform(gcp.longitude.values.ravel(), gcp.latitude.values.ravel())
    xs = transform.c + res * (np.arange(m) + 0.5)
    ys = transform.f - res * (np.arange(m) + 0.5)
    heights = griddata((gx, gy), gcp.height.values.ravel(), tuple(np.meshgrid(xs, ys)),
                       method="linear")
    dems = {}
    for name, z in (("flat", np.full((m, m), round(h))), ("gcp", heights)):
        dems[name] = tmp / f"dem_{name}_utm32n.tif"
        with rasterio.open(dems[name], "w", driver="GTiff", width=m, height=m, count=1,
                           dtype="float32", crs="EPSG:32632", transform=transform) as ds:
            ds.write(z.astype("float32"), 1)
    return {"first": first, "second": second_zip, "dem": dems["flat"],
            "dem_gcp": dems["gcp"], "gcp": gcp, "centre": centre,
            "lonlat": (lon, lat), "height": h, "shift": (-1.5, 2.5)}
