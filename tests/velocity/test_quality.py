"""GLAFT-style quality figures against GLAFT's published values on its Kaskawulsh demo data."""

import numpy as np
import pytest
import rasterio

from conftest import shared_path
from cryokit.core.raster import read_grid
from cryokit.core.vector import load_mask
from cryokit.velocity import quality


def test_kaskawulsh_matches_glaft_published_values():
    """GLAFT's quickstart on these files: metric 1 delta = (0.1501, 0.1598) m/d, peak
    (-0.0195, -0.0245), 7.1 % incorrect matches; metric 2 delta = (0.001755, 0.001646)."""
    folder = shared_path("velocity", "kaskawulsh_glaft_reference")
    vx_file = folder / "20180304-20180405_velo-raw_vx.tif"
    v = [rasterio.open(folder / f"20180304-20180405_velo-raw_{c}.tif").read(1, masked=True)
         .filled(np.nan).astype(float) for c in ("vx", "vy")]
    grid = read_grid(vx_file)
    stable = load_mask(str(folder / "bedrock_V2.shp"), grid, None)
    ice = load_mask(str(folder / "glacier_V1_Kaskawulsh_s_inwardBuffer600m.shp"), grid, None)
    m = quality.glaft_metrics(*v, stable, ice, 60.0, 60.0, "m/d")
    st, strain = m["static_terrain"], m["along_flow_strain"]
    # The KDE is deterministic: agreement to the published rounding (measured 0.15013,
    # 0.15982, -0.01949, -0.02445, 7.06 %, 0.0017545, 0.0016448).
    assert st["delta"] == pytest.approx([0.1501, 0.1598], abs=2e-4)
    assert st["peak"] == pytest.approx([-0.0195, -0.0245], abs=2e-4)
    assert st["outside_share"] == pytest.approx(0.071, abs=0.001)
    assert strain["delta"] == pytest.approx([0.001755, 0.001646], rel=0.005)


def test_static_terrain_is_two_sigma_of_gaussian_errors():
    rng = np.random.default_rng(3)
    vx, vy = rng.normal(0.02, 0.05, (2, 80, 80))
    m = quality.static_terrain(vx, vy, np.ones((80, 80), bool))
    assert m["delta"] == pytest.approx([0.1, 0.1], rel=0.08)
    assert m["peak"] == pytest.approx([0.02, 0.0], abs=0.03)   # a mode: noisier than a mean
    assert 0.03 < m["outside_share"] < 0.09     # 1 - 0.954^2 outside a 2-sigma box
