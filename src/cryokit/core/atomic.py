"""Outputs that appear only complete: temporary names, then rename.

A product directory is built in a hidden sibling (``.OUTDIR.tmp-XXXX``) and moved into place
when every file is written, so a failed run leaves OUTDIR absent or unchanged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete temporary files that :func:`atomic_file` left in ``folder`` when its process was
    killed (SIGKILL skips the clean-up); returns how many. Call it only where no other run is
    writing, e.g. when a batch job resumes in its own output directory.
    """
    n = 0
    for p in Path(folder).glob(".*.tmp*"):
        if p.is_file():
            p.unlink()
            n += 1
    return n


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    Examples
    --------
    >>> with atomic_file("out.json") as tmp:          # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; published products follow the umask
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def staged_dir(outdir: str | os.PathLike, command: str) -> Iterator[Path]:
    """Yield an empty staging folder whose files become ``outdir`` when the block succeeds.

    The new product gets the marker of :mod:`cryokit.core.outputs` (``command`` and its files).
    A new or empty ``outdir`` is replaced by the stage in one rename; an earlier output of
    ``command`` is swapped out whole when it holds only the files its marker lists, else only
    those files are replaced and anything else is left. Any other non-empty ``outdir`` is
    refused. On error the stage is removed and ``outdir`` is untouched.
    """
    from .errors import UserError
    from .outputs import check_output_dir, read_marker, remove_listed, walk_files, write_marker

    outdir = Path(outdir).absolute()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.tmp-", dir=outdir.parent))
    os.chmod(stage, 0o777 & ~_umask())
    try:
        yield stage
        write_marker(stage, command)
        old = check_output_dir(outdir, command, overwrite=True)
        if old is None:
            if outdir.exists():
                outdir.rmdir()
            os.replace(stage, outdir)
        elif set(walk_files(outdir)) <= set(old.get("files", [])):
            trash = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=outdir.parent))
            os.replace(outdir, trash / "x")
            os.replace(stage, outdir)
            shutil.rmtree(trash, ignore_errors=True)
        else:  # someone added files: replace ours, keep theirs
            ours = set(old.get("files", []))
            for rel in walk_files(stage):
                if (outdir / rel).exists() and rel not in ours:
                    raise UserError(f"holds {rel}, which cryokit did not write; move it away",
                                    outdir)
            remove_listed(outdir, ours)
            for rel in walk_files(stage):
                (outdir / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(stage / rel, outdir / rel)
            write_marker(outdir, command, files=read_marker(stage)["files"])
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
