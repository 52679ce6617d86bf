"""Glacier elevation change by DEM differencing: terrain attributes, co-registration
(:mod:`~cryokit.elevation.coreg`), curvature bias correction (:mod:`~cryokit.elevation.bias`)
and dh statistics (:mod:`~cryokit.elevation.stats`).  Pure array algorithms, no file I/O.
"""

from cryokit.elevation.bias import CurvatureBias
from cryokit.elevation.coreg import (Coreg, CoregPipeline, Deramp, NuthKaab, VerticalShift,
                                     translate)
from cryokit.elevation.stats import dh_stats
from cryokit.core.terrain import aspect, hillshade, max_curvature, slope

__all__ = ["Coreg", "CoregPipeline", "CurvatureBias", "Deramp", "NuthKaab", "VerticalShift",
           "aspect", "dh_stats", "hillshade", "max_curvature", "slope", "translate"]
