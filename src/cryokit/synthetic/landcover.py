"""Synthetic land-cover scene whose class spectra drift across the region, with exact truth.

Classes form spatially coherent patches (argmax of smooth random fields).  Each feature is
the class mean at the pixel's position plus spatially smooth texture and white noise.  The
class means **rotate with position**: in each of several 2-D feature planes the K class means
sit on a circle at angles ``2 pi k / K + theta(x, y)``, with ``theta`` growing linearly across
the scene (``drift`` radians from one corner to the other).  Where ``theta`` has grown by
``2 pi / K`` class k looks exactly like class k+1 did at the origin, so one global model
confuses classes that a model trained on nearby samples separates.  A few features carry a
weak drift-free class signal and some are pure noise, as in a real stack.

Conventions: features are float32 (n_features, H, W) with NaN at a few invalid pixels; the
truth holds the class *codes* (e.g. CALC-2020 codes), never 0; training samples are sparse
random pixels (``rows``, ``cols``, ``labels``), all on valid pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from ..core.raster import Grid, write_cog

#: The date the synthetic scene stands for (its feature stack's ``feature_dates`` tag).
SCENE_DATE = "2020-07-15"

#: CALC-2020 codes used by default: forest, graminoid tundra, shrub tundra, wetland,
#: open water, barren land.
DEFAULT_CODES = (2, 3, 4, 5, 6, 9)


@dataclass
class LandcoverScene:
    """A synthetic scene: feature stack, truth, sparse samples and two regions.

    Attributes
    ----------
    features : (F, H, W) float32, NaN at invalid pixels
    names : list of F feature names
    truth : (H, W) int32 class codes
    rows, cols, labels : (n,) int arrays of the training samples
    codes : tuple of the class codes
    grid : Grid (UTM 33N, ``pixel_size`` metres)
    params : dict of the generator parameters
    """

    features: np.ndarray
    names: list[str]
    truth: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray
    codes: tuple[int, ...]
    grid: Grid
    params: dict = field(default_factory=dict)

    def sample_table(self) -> np.ndarray:
        """Features at the training samples, (n, F) float32."""
        return self.features[:, self.rows, self.cols].T.copy()


def _smooth_fields(rng, n: int, shape: tuple[int, int], scale: float) -> np.ndarray:
    """``n`` smooth unit-variance random fields with correlation length ~``scale`` pixels.

    Drawn on a coarse grid and interpolated: a Gaussian filter at full size with a large
    sigma would cost O(sigma) per pixel.
    """
    h, w = shape
    step = max(1.0, scale / 3.0)
    ch, cw = int(np.ceil(h / step)) + 4, int(np.ceil(w / step)) + 4
    coarse = ndimage.gaussian_filter(rng.standard_normal((n, ch, cw)), (0, 1.2, 1.2), mode="wrap")
    coarse /= coarse.std(axis=(1, 2), keepdims=True)
    r = (np.arange(h) + 0.5) / step + 1.5
    c = (np.arange(w) + 0.5) / step + 1.5
    rr, cc = np.meshgrid(r, c, indexing="ij")
    out = np.empty((n, h, w), np.float32)
    for i in range(n):
        out[i] = ndimage.map_coordinates(coarse[i], [rr, cc], order=1)
    return out


def make_landcover_scene(size: int | tuple[int, int] = 256, seed: int = 0, *,
                         n_features: int = 12, codes: tuple[int, ...] = DEFAULT_CODES,
                         drift: float = 1.5 * np.pi, patch_scale: float | None = None,
                         noise: float = 0.35, sample_fraction: float = 0.01,
                         nan_fraction: float = 0.001, pixel_size: float = 10.0) -> LandcoverScene:
    """Make a drifting land-cover scene with known classes.

    Parameters
    ----------
    size : int or (H, W)
        Scene size in pixels.
    seed : int
        Random seed; the same seed gives the same scene.
    n_features : int
        Number of features (>= 4): ``2 * (n_features // 3)`` drifting ones in planes,
        the rest weakly informative or pure noise.
    codes : tuple of int
        Class codes (K >= 2 classes).
    drift : float
        Rotation of the class means from the top-left to the bottom-right corner (radians).
        ``2 pi / K`` turns class k into class k+1.
    patch_scale : float, optional
        Correlation length of the class patches in pixels (default ``min(H, W) / 12``).
    noise : float
        White-noise standard deviation relative to the circle radius (1).
    sample_fraction : float
        Fraction of the valid pixels drawn as training samples (uniformly at random).
    nan_fraction : float
        Fraction of pixels with one or more NaN features.
    pixel_size : float
        Metres.

    Returns
    -------
    LandcoverScene

    Examples
    --------
    >>> s = make_landcover_scene(64, seed=1, n_features=6)
    >>> s.features.shape, s.truth.shape, sorted(set(s.truth.ravel())) == sorted(s.codes)
    ((6, 64, 64), (64, 64), True)
    >>> bool(np.isin(s.labels, s.codes).all()), bool(np.isfinite(s.sample_table()).all())
    (True, True)
    """
    h, w = (size, size) if np.isscalar(size) else tuple(size)
    if n_features < 4 or len(codes) < 2:
        raise ValueError("need n_features >= 4 and at least 2 classes")
    rng = np.random.default_rng(seed)
    k = len(codes)
    scale = patch_scale or min(h, w) / 12.0
    cls = np.argmax(_smooth_fields(rng, k, (h, w), scale), axis=0)
    truth = np.asarray(codes, np.int32)[cls]

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # theta grows along the diagonal: 0 at the top-left corner, ``drift`` at the bottom-right
    theta = drift * (xx / max(w - 1, 1) + yy / max(h - 1, 1)) / 2.0
    n_planes = n_features // 3
    n_weak = n_features - 2 * n_planes
    feats = np.empty((n_features, h, w), np.float32)
    phase0 = 2 * np.pi * np.arange(k) / k
    texture = _smooth_fields(rng, n_features, (h, w), scale / 3.0)
    for p in range(n_planes):
        # each plane has its own class order and rotation speed so planes do not repeat
        perm = rng.permutation(k)
        speed = 1.0 + 0.25 * p
        ang = phase0[perm][cls] + speed * theta
        feats[2 * p] = np.cos(ang)
        feats[2 * p + 1] = np.sin(ang)
    weak_means = rng.normal(0.0, 0.25, (n_weak, k))
    weak_means[n_weak // 2:] = 0.0  # the last ones are pure noise
    for j in range(n_weak):
        feats[2 * n_planes + j] = weak_means[j][cls]
    feats += 0.15 * texture + noise * rng.standard_normal(feats.shape).astype(np.float32)

    bad = rng.random((h, w)) < nan_fraction
    which = rng.integers(0, n_features, (h, w))
    for f in range(n_features):
        feats[f][bad & ((which == f) | (which % 3 == 0))] = np.nan
    valid = np.isfinite(feats).all(axis=0)
    idx = np.flatnonzero(valid.ravel())
    n = max(k * 5, int(round(sample_fraction * idx.size)))
    pick = np.sort(rng.choice(idx, size=min(n, idx.size), replace=False))
    rows, cols = np.divmod(pick, w)
    names = [f"plane{p}_{a}" for p in range(n_planes) for a in ("cos", "sin")]
    names += [f"weak{j}" if j < n_weak // 2 else f"noise{j}" for j in range(n_weak)]
    grid = Grid(CRS.from_epsg(32633), Affine(pixel_size, 0, 500000.0, 0, -pixel_size, 7700000.0),
                w, h)
    params = dict(size=[h, w], seed=seed, n_features=n_features, codes=list(codes),
                  drift_rad=float(drift), patch_scale_px=float(scale), noise=noise,
                  sample_fraction=sample_fraction, nan_fraction=nan_fraction,
                  pixel_size_m=pixel_size)
    return LandcoverScene(feats, names, truth, rows.astype(np.int64), cols.astype(np.int64),
                          truth[rows, cols].astype(np.int32), tuple(int(c) for c in codes), grid,
                          params)


def write_landcover_scene(scene: LandcoverScene, folder: str | os.PathLike,
                          label_column: str = "class") -> dict:
    """Write the scene: features, training labels (points and raster), truth and regions.

    Files: ``features.tif`` (float32, NaN nodata, band descriptions = feature names),
    ``labels.gpkg`` (points at the sample pixel centres, integer column ``label_column``),
    ``labels.tif`` (uint8 codes, 0 = unlabelled), ``truth.tif`` (uint8 codes) and
    ``regions.gpkg`` (two polygons, west and east halves, text column ``code`` = "WEST",
    "EAST").

    Returns
    -------
    dict of str paths: features, labels, labels_raster, truth, regions.

    Examples
    --------
    >>> s = make_landcover_scene(32, n_features=4)
    >>> sorted(write_landcover_scene(s, "lc_demo"))                 # doctest: +SKIP
    ['features', 'labels', 'labels_raster', 'regions', 'truth']
    """
    import geopandas as gpd
    from shapely.geometry import Point, box

    from ..core.atomic import atomic_file

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    g = scene.grid
    out = {k: os.path.join(folder, v) for k, v in (
        ("features", "features.tif"), ("labels", "labels.gpkg"), ("labels_raster", "labels.tif"),
        ("truth", "truth.tif"), ("regions", "regions.gpkg"))}
    tags = {"SOURCE": "cryokit.synthetic.landcover", "UNITS": "dimensionless"}
    # The scene stands for one summer: the map's records take their date from this tag.
    write_cog(out["features"], scene.features, g, descriptions=scene.names,
              tags={**tags, "feature_dates": SCENE_DATE}, units="1")
    lab = np.zeros(g.shape, np.uint8)
    lab[scene.rows, scene.cols] = scene.labels
    write_cog(out["labels_raster"], lab, g, nodata=0, dtype="uint8",
              descriptions=["training class code (0 = unlabelled)"], tags=tags)
    write_cog(out["truth"], scene.truth.astype(np.uint8), g, nodata=0, dtype="uint8",
              descriptions=["true class code"], tags=tags)
    x, y = g.xy(scene.rows, scene.cols)
    from ..landcover.legend import CALC2020
    names = {c: (CALC2020.name(int(c)) if int(c) in CALC2020.codes else f"class {int(c)}")
             for c in np.unique(scene.labels)}
    pts = gpd.GeoDataFrame({label_column: scene.labels.astype(np.int32),
                            "class_name": [names[c] for c in scene.labels]},
                           geometry=[Point(a, b) for a, b in zip(x, y)], crs=g.crs)
    left, bottom, right, top = g.bounds
    mid = g.transform.c + g.transform.a * (g.width // 2)
    regions = gpd.GeoDataFrame({"code": ["WEST", "EAST"], "name": ["west half", "east half"]},
                               geometry=[box(left, bottom, mid, top), box(mid, bottom, right, top)],
                               crs=g.crs)
    for frame, key in ((pts, "labels"), (regions, "regions")):
        with atomic_file(out[key]) as tmp:
            frame.to_file(tmp, driver="GPKG", layer=key)
    return out
