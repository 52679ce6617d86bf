"""Acquisition dates from command-line values, raster metadata or file names."""

from __future__ import annotations

import datetime as dt
import os
import re

import rasterio

from .errors import UserError

# Most specific first: Landsat pre-collection ids carry year + day of year; collection ids,
# Sentinel-1/2 names and generic names carry YYYYMMDD or YYYY-MM-DD.
_LANDSAT_OLD = re.compile(r"L[COTEM]\d\d{6}(\d{4})(\d{3})[A-Z]{3}\d{2}")
_LANDSAT_COLL = re.compile(r"L[COTEM]0\d_L\w{3}_\d{6}_(\d{8})_\d{8}")
_YMD = re.compile(r"(?<!\d)((?:19|20)\d{2})-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?:T\d{6})?(?!\d)")
# Tags that state when the scene was acquired. TIFFTAG_DATETIME (and a bare "datetime") is
# when the file was written: a 16-day pair re-saved on consecutive days would be timed as 1 day.
_YMD_T = re.compile(r"(?<!\d)((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])"
                    r"T([01]\d|2[0-3])([0-5]\d)([0-5]\d)(?!\d)")
_TAGS = ("ACQUISITION_DATE", "DATE_ACQUIRED", "acquisition_date", "ACQUISITIONDATETIME",
         "start_datetime", "DATE", "date")


def parse_date(text: str, source: str | None = None) -> dt.date:
    """Parse an ISO date (YYYY-MM-DD, YYYYMMDD, or an ISO datetime) given by the user."""
    s = str(text).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%dT%H%M%S"):
        try:
            return dt.datetime.strptime(s.rstrip("Z")[:19], fmt).date()
        except ValueError:
            pass
    raise UserError(f"cannot read a date from {s!r} (use YYYY-MM-DD)", source)


def parse_time(text: str, source: str | None = None) -> dt.date | dt.datetime:
    """A date given by the user, as a date-time when it carries a time of day (UTC).

    >>> parse_time("2020-03-01T08:32:37"), parse_time("2020-03-02")
    (datetime.datetime(2020, 3, 1, 8, 32, 37), datetime.date(2020, 3, 2))
    """
    s = str(text).strip().rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y%m%dT%H%M%S", "%Y-%m-%dT%H:%M"):
        try:
            return dt.datetime.strptime(s[:19], fmt)
        except ValueError:
            pass
    return parse_date(text, source)


def date_from_name(path: str | os.PathLike) -> dt.date | None:
    """The acquisition date encoded in a file name (Landsat, Sentinel, or YYYYMMDD), or None.

    Examples
    --------
    >>> date_from_name("LC80630182016200LGN00_B8.TIF")
    datetime.date(2016, 7, 18)
    >>> date_from_name("S2A_MSIL1C_20180304T201639_N0206_R071_T08VLK_20180304T214800.tif")
    datetime.date(2018, 3, 4)
    """
    name = os.path.basename(os.fspath(path))
    m = _LANDSAT_OLD.search(name)
    if m:
        return dt.date(int(m.group(1)), 1, 1) + dt.timedelta(days=int(m.group(2)) - 1)
    m = _LANDSAT_COLL.search(name)
    if m:
        return dt.datetime.strptime(m.group(1), "%Y%m%d").date()
    m = _YMD.search(name)
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
    return None


def _tag(path: str | os.PathLike, parse):
    """The first acquisition tag of ``path`` that ``parse`` reads, as (value, tag name), or
    (None, None); never the file-writing time, TIFFTAG_DATETIME."""
    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
    except Exception:
        return None, None
    for key in _TAGS:
        if key in tags:
            try:
                return parse(tags[key]), key
            except UserError:
                continue
    return None, None


def date_from_tags(path: str | os.PathLike, *, with_key: bool = False):
    """The acquisition date from GeoTIFF metadata tags, or None (never the file-writing
    time, TIFFTAG_DATETIME). With ``with_key``, ``(date, tag name)``."""
    d, key = _tag(path, parse_date)
    return (d, key) if with_key else d


def acquisition_date(path: str | os.PathLike) -> dt.date | None:
    """Date of an image from its file name (Landsat, Sentinel, YYYYMMDD) and its acquisition
    tags, or None.

    Raises
    ------
    UserError
        The name and a tag give different dates: which is right cannot be guessed.
    """
    by_name = date_from_name(path)
    by_tag, key = date_from_tags(path, with_key=True)
    if by_name and by_tag and by_name != by_tag:
        raise UserError(f"its file name says {by_name} but its {key} tag says {by_tag}; "
                        "correct one of them (or give the dates explicitly)", path)
    return by_name or by_tag


def time_from_name(path: str | os.PathLike) -> dt.datetime | None:
    """The acquisition date-time (UTC, naive) of a name carrying ``YYYYMMDDTHHMMSS`` (Sentinel-1
    and Sentinel-2 products: the first one, the start of sensing), or None.

    Examples
    --------
    >>> time_from_name("S1B_EW_GRDM_1SDH_20200302T073529_20200302T073629_020510_026DD5_27F9.tif")
    datetime.datetime(2020, 3, 2, 7, 35, 29)
    """
    m = _YMD_T.search(os.path.basename(os.fspath(path)))
    if not m:
        return None
    try:
        return dt.datetime(*(int(g) for g in m.groups()))
    except ValueError:
        return None


def time_from_tags(path: str | os.PathLike) -> dt.datetime | None:
    """The acquisition date-time (UTC, naive) of an acquisition tag that carries a time of day
    (``ACQUISITIONDATETIME=2020-03-01T08:32:37``, ``start_datetime=...Z``), or None."""
    t, _ = _tag(path, parse_time)
    return t if isinstance(t, dt.datetime) else None


def acquisition_times(paths) -> list:
    """Acquisition date-times (UTC, naive) of several images where every name carries one
    (:func:`time_from_name`, on the day :func:`acquisition_date` gives), else their dates: one
    kind for all, so that differences are exact in both cases. None for an image without a
    date.

    Rates over pairs a day or less apart need the time: a 23 h Sentinel-1 pair timed as one
    day comes out 4 % slow. A time from an acquisition tag serves where the name has none.
    """
    days = [acquisition_date(p) for p in paths]
    times = [time_from_name(p) or time_from_tags(p) for p in paths]
    if all(t is not None and d is not None and t.date() == d for t, d in zip(times, days)):
        return times
    return days


def day_of(t: dt.date | dt.datetime) -> dt.date:
    """The calendar day of a date or date-time."""
    return t.date() if isinstance(t, dt.datetime) else t


def days_between(t1: dt.date | dt.datetime, t2: dt.date | dt.datetime) -> float:
    """``t2 - t1`` in days (dates or date-times), fractional for date-times.

    >>> round(days_between(dt.datetime(2020, 3, 1, 8, 32, 37), dt.datetime(2020, 3, 2, 7, 35, 29)), 6)
    0.960324
    """
    return (t2 - t1).total_seconds() / 86400.0


def pair_dates(ref: str, sec: str, given: tuple[str, str] | None = None) -> tuple[dt.date, dt.date]:
    """Dates of an image pair: given on the command line, else from names or acquisition tags.

    Raises :class:`UserError` naming the file whose date is missing, or when the dates are
    equal or out of order (the velocity would be infinite or of the wrong sign).
    """
    if given:
        d1, d2 = parse_time(given[0], "--dates"), parse_time(given[1], "--dates")
        if type(d1) is not type(d2):   # one kind, so the difference is exact
            d1, d2 = day_of(d1), day_of(d2)
    else:
        d1, d2 = acquisition_times([ref, sec])
        for d, p in ((d1, ref), (d2, sec)):
            if d is None:
                raise UserError("no acquisition date in its metadata or file name; "
                                "give --dates D1 D2", p)
    if d1 == d2:
        raise UserError(f"both images are dated {d1}; a velocity needs two different dates", sec)
    if d2 < d1:
        raise UserError(f"dated {d2}, before the reference image ({d1}); swap REF and SEC", sec)
    return d1, d2
