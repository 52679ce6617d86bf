"""cryokit: cryosphere and geodesy data products from satellite images, DEMs and InSAR.

Product families live in sub-packages: :mod:`cryokit.velocity` (glacier velocity),
:mod:`cryokit.elevation`, :mod:`cryokit.motion`, :mod:`cryokit.landcover`. Shared layers:
:mod:`cryokit.core.raster` (grids, reading, atomic COG writing), :mod:`cryokit.core.vector` (masks),
:mod:`cryokit.core.records` (metadata record, STAC, quick-looks), :mod:`cryokit.core.parallel`
(tiles, dask) and :mod:`cryokit.synthetic` (scenes with known truth).
"""

__version__ = "0.1.0"
