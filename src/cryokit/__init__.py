"""cryokit: cryosphere and geodesy data products from satellite images, DEMs and InSAR.

One sub-package per product family: :mod:`cryokit.velocity` (glacier velocity, optical and
SAR), :mod:`cryokit.elevation` (elevation change), :mod:`cryokit.egms` (EGMS ground-motion
points), :mod:`cryokit.sbas` (SBAS inversion), :mod:`cryokit.landcover` (land cover maps);
:mod:`cryokit.core` holds what they share (rasters, vectors, records, quick-looks, cubes,
parallel execution, output rules), :mod:`cryokit.synthetic` the scenes with known truth and
:mod:`cryokit.cli` the command line.
"""

__version__ = "0.1.0"
