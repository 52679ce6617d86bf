"""What cryokit may write where: output folders it owns, output files it may replace, locks.

cryokit never deletes or overwrites a file it did not write. A product folder it made holds a
hidden marker, ``.cryokit.json``, naming the command and every file of the product; that
marker is what lets a later run of the same command replace (``--overwrite``) or resume it.
The rules, checked before any work starts:

- an output folder must be new, empty, or an earlier output of the same command;
- an earlier output is replaced only with ``--overwrite`` (commands that resume go on in it),
  and only the files its marker lists are removed: anything a person added stays;
- an output that is, or contains, one of the inputs is refused; so is an existing file where a
  folder is expected, and an existing output file without ``--overwrite``;
- one run at a time per output: a second one is refused while the first holds the lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

from .. import __version__
from .errors import UserError

MARKER = ".cryokit.json"


def walk_files(root: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of the non-hidden files below ``root`` (hidden folders skipped)."""
    root = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend((Path(dirpath) / f).relative_to(root).as_posix()
                   for f in filenames if not f.startswith("."))
    return sorted(out)


def read_marker(folder: str | os.PathLike) -> dict | None:
    """The marker of a cryokit output folder, or None when ``folder`` holds none."""
    p = Path(folder) / MARKER
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and isinstance(m.get("command"), str) else None


def write_marker(folder: str | os.PathLike, command: str, files: Iterable[str] | None = None) -> None:
    """Write the marker of ``folder`` (atomically), listing ``files`` or every file in it."""
    folder = Path(folder)
    rec = {"software": f"cryokit {__version__}", "command": command,
           "written": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
           "files": sorted(walk_files(folder) if files is None else files)}
    tmp = folder / f"{MARKER}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MARKER)


def _inputs(inputs: Iterable[str | os.PathLike | None]) -> list[Path]:
    return [Path(p).resolve() for p in inputs if p is not None and os.path.exists(p)]


def check_output_dir(outdir: str | os.PathLike, command: str, *,
                     inputs: Iterable[str | os.PathLike | None] = (), overwrite: bool = False,
                     resume: bool = False) -> dict | None:
    """Refuse an output folder cryokit may not write into; returns its marker, if any.

    Parameters
    ----------
    outdir : the folder the command will write
    command : the command's name (``"velocity"``, ``"egms ortho"``); an earlier output of
        another command is refused
    inputs : the command's input files; a folder equal to or containing one is refused
    overwrite : replace an earlier output of the same command
    resume : the command goes on in an earlier output of its own (``--overwrite`` then starts
        afresh)

    Raises
    ------
    UserError
        One line naming ``outdir`` and what is wrong.
    """
    out = Path(outdir).resolve()
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder; give a new or empty folder", outdir)
    for p in _inputs(inputs):
        if p == out or out in p.parents:
            raise UserError(f"holds the input {p.name}; give the output a folder of its own",
                            outdir)
    if not out.exists() or not any(out.iterdir()):
        return None
    marker = read_marker(out)
    if marker is None:
        raise UserError("is not empty and holds no cryokit output; give a new or empty folder "
                        "(cryokit never deletes files it did not write)", outdir)
    if marker["command"] != command:
        raise UserError(f"holds a 'cryokit {marker['command']}' output; give another folder "
                        f"for 'cryokit {command}'", outdir)
    if not (resume or overwrite):
        raise UserError(f"holds an earlier 'cryokit {command}' output; pass --overwrite to "
                        "replace it", outdir)
    return marker


def check_output_file(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                      overwrite: bool = False, beside: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse an output file (and the files written ``beside`` it) cryokit may not write.

    An input is never replaced, a folder never taken for a file, and an existing file only
    with ``overwrite``.
    """
    ins = _inputs(inputs)
    for p in (path, *beside):
        r = Path(p).resolve()
        if r in ins:
            raise UserError("is also an input; give the output another name", p)
        if r.is_dir():
            raise UserError("is a folder; give a file name", p)
        if r.exists() and not overwrite:
            raise UserError("exists; pass --overwrite to replace it", p)
        if not r.parent.exists():
            continue
        if not os.access(r.parent, os.W_OK):
            raise UserError("cannot be written (folder not writable)", p)


def remove_listed(folder: Path, files: Iterable[str]) -> None:
    """Remove the listed files of ``folder`` (what its marker says cryokit wrote), then the
    folders they leave empty; nothing else."""
    parents = set()
    for rel in files:
        p = folder / rel
        if ".." in Path(rel).parts or not p.is_file():
            continue
        p.unlink()
        parents.update(q for q in p.parents if folder in q.parents)
    for d in sorted(parents, key=lambda q: len(q.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()


# --------------------------------------------------------------------------- locks

@contextlib.contextmanager
def output_lock(output: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of ``output`` (a folder or file) for the block; a second run is refused.

    The lock is a hidden file beside the output, removed when the block ends.
    """
    output = Path(output).absolute()
    made = [d for d in (output.parent, *output.parent.parents) if not d.exists()]
    output.parent.mkdir(parents=True, exist_ok=True)
    path = output.parent / f".{output.name}.cryokit-lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            raise UserError("cannot be written (folder not writable)", output) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError("another cryokit run is writing it; wait for it to end", output) \
                from None
        try:  # the file may have been unlinked by the run that held it: lock the current one
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
        for d in made:  # folders made only to hold the lock of a run that wrote nothing
            with contextlib.suppress(OSError):
                d.rmdir()


@contextlib.contextmanager
def guarded_dir(outdir: str | os.PathLike, command: str, *,
                inputs: Iterable[str | os.PathLike | None] = (), overwrite: bool = False,
                resume: bool = False) -> Iterator[dict | None]:
    """:func:`check_output_dir`, then hold :func:`output_lock` while the block writes (checked
    again under the lock; a refused run never touches the file system)."""
    check_output_dir(outdir, command, inputs=inputs, overwrite=overwrite, resume=resume)
    with output_lock(outdir):
        marker = check_output_dir(outdir, command, inputs=inputs, overwrite=overwrite,
                                  resume=resume)
        n = remove_scratch(outdir)
        from .console import info

        info(f"output folder {outdir}: " + ("new" if marker is None else
             "resuming the earlier output" if resume and not overwrite else
             "replacing the earlier output") + (f"; cleared {n} folder(s) a killed run left"
                                                if n else ""))
        yield marker


def remove_scratch(outdir: str | os.PathLike) -> int:
    """Remove what killed runs on ``outdir`` left beside it (staging, swap and scratch
    folders, all hidden and named after it); call it only while holding its lock."""
    import shutil

    out = Path(outdir).absolute()
    n = 0
    if not out.parent.is_dir():
        return 0
    for kind in ("tmp", "old", "cryokit-scratch"):
        for p in out.parent.glob(f".{out.name}.{kind}-*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                n += 1
    return n


@contextlib.contextmanager
def guarded_file(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                 overwrite: bool = False, beside: Iterable[str | os.PathLike] = ()) -> Iterator[None]:
    """:func:`check_output_file`, then hold :func:`output_lock` while the block writes."""
    check_output_file(path, inputs=inputs, overwrite=overwrite, beside=beside)
    with output_lock(path):
        check_output_file(path, inputs=inputs, overwrite=overwrite, beside=beside)
        for p in (path, *beside):   # temporaries of atomic_file that a killed run left
            p = Path(p).absolute()
            for tmp in p.parent.glob(f".{p.stem}.*.tmp{p.suffix}"):
                with contextlib.suppress(OSError):
                    tmp.unlink()
        from .console import info

        info(f"output file {path}" + (" (replacing it)" if Path(path).exists() else ""))
        yield


# --------------------------------------------------------------------------- digests

def file_digest(path: str | os.PathLike) -> str:
    """``size:blake2b`` of a file's content: what a resumed run compares, not its time."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return f"{os.path.getsize(path)}:{h.hexdigest()}"


def safe_name(name: object, what: str = "name") -> str:
    """``name`` as one file-name component: letters, digits, ``-``, ``_`` and ``.`` only.

    Names from data (region codes, class names, pids) become file names; a path separator or
    ``..`` there would write outside the output folder.

    >>> safe_name("CN/11 Beijing")
    'CN_11_Beijing'
    """
    s = "".join(c if (c.isalnum() or c in "-_.") else "_" for c in str(name).strip())
    s = s.strip(".")
    if not s:
        raise UserError(f"{what} {str(name)!r} gives an empty file name")
    return s


def remove_stale_products(folder: str | os.PathLike, pattern: str, keep: Iterable[str]) -> list[str]:
    """Remove the files of ``folder`` matching ``pattern`` (a glob) that its marker lists as
    cryokit's and that are not in ``keep``: what an earlier run made and this one does not
    (e.g. period products of another ``--period``), so the record lists only this run's files."""
    folder = Path(folder)
    marker = read_marker(folder)
    ours = set(marker.get("files", [])) if marker else set()
    keep = set(keep)
    removed = []
    for p in sorted(folder.glob(pattern)):
        if p.is_file() and p.name in ours and p.name not in keep:
            p.unlink()
            removed.append(p.name)
    return removed
