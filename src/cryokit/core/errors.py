"""User errors: one line naming the file and what is wrong, exit code 2, no traceback."""

from __future__ import annotations

import os


class UserError(Exception):
    """An error caused by the user's input, shown as one line with exit code 2.

    Parameters
    ----------
    message : str
        What is wrong, in words a user understands.
    path : str or os.PathLike, optional
        The file or directory concerned; it prefixes the message.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


def require_file(path: str | os.PathLike) -> str:
    """Return ``path`` as str if it names an existing file, else raise :class:`UserError`."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise UserError("file not found", p)
    if os.path.isdir(p):
        raise UserError("is a directory, expected a file", p)
    return p


def as_user_error(exc: BaseException) -> UserError | None:
    """The :class:`UserError` an exception from a library stands for, or None if it is ours.

    A file that cannot be opened or parsed is the user's input, not a bug: GDAL/OGR, OS and
    archive errors that name a file become one line naming it.
    """
    import zipfile

    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return UserError(exc.strerror or type(exc).__name__, exc.filename)
    if isinstance(exc, zipfile.BadZipFile):
        return UserError(f"not a valid zip archive ({exc})")
    try:
        from rasterio.errors import RasterioError
    except ImportError:  # pragma: no cover
        RasterioError = ()  # noqa: N806
    if RasterioError and isinstance(exc, RasterioError):
        return UserError(f"cannot be read by GDAL: {exc}")
    try:
        from pyogrio.errors import DataSourceError, DataLayerError
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, (DataSourceError, DataLayerError)):
        return UserError(f"cannot be read by OGR: {exc}")
    return None
