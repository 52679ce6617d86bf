"""Synthetic scenes with exactly known truth, for testing the product chains without real data.

:func:`make_glacier_pair` gives an optical image pair of a valley glacier with its true
forward displacement; :func:`make_uniform_shift_pair` one constant sub-pixel shift;
:func:`make_sar_series` a speckled SAR amplitude series; :func:`make_dem_pair` two DEMs with a
known misregistration and glacier thinning; :func:`make_insar_stack` an unwrapped
interferogram stack with a known displacement series; :func:`make_landcover_scene` a
feature stack with known classes whose spectra drift across the region.
"""

from .dem import DemPair, make_dem_pair
from .insar import InsarStack, make_insar_stack, write_insar_stack
from .landcover import LandcoverScene, make_landcover_scene, write_landcover_scene
from .sar import SarSeries, make_sar_series, write_sar_series
from .velocity import SyntheticPair, make_glacier_pair, make_uniform_shift_pair

__all__ = ["DemPair", "make_dem_pair", "InsarStack", "make_insar_stack", "write_insar_stack",
           "LandcoverScene", "make_landcover_scene", "write_landcover_scene", "SarSeries", "SyntheticPair", "make_glacier_pair", "make_sar_series",
           "make_uniform_shift_pair", "write_sar_series"]
