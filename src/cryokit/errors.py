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
