"""Acquisition dates and date-times from names, tags and the command line."""

import datetime as dt

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from cryokit.core.dates import acquisition_times, parse_time, time_from_tags
from cryokit.core.raster import Grid, write_cog

GRID = Grid(CRS.from_epsg(32633), Affine(20, 0, 500000, 0, -20, 8700000), 8, 8)


def test_tag_date_times_time_a_pair(tmp_path):
    """Images named without a time but tagged with one are timed to the second (a 23 h pair
    would otherwise be one day)."""
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    write_cog(a, np.zeros((8, 8), np.float32), GRID, tags={"ACQUISITIONDATETIME": "2020-03-01T08:32:37Z"})
    write_cog(b, np.zeros((8, 8), np.float32), GRID, tags={"ACQUISITIONDATETIME": "2020-03-02T07:35:29Z"})
    assert time_from_tags(a) == dt.datetime(2020, 3, 1, 8, 32, 37)
    t1, t2 = acquisition_times([a, b])
    assert (t2 - t1).total_seconds() / 3600 == 23 + 2 / 60 + 52 / 3600


def test_date_only_tags_stay_dates(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b_20200315.tif"
    write_cog(a, np.zeros((8, 8), np.float32), GRID, tags={"DATE_ACQUIRED": "2020-03-01"})
    write_cog(b, np.zeros((8, 8), np.float32), GRID)
    assert time_from_tags(a) is None
    assert acquisition_times([a, b]) == [dt.date(2020, 3, 1), dt.date(2020, 3, 15)]
    assert parse_time("2020-03-01") == dt.date(2020, 3, 1)
