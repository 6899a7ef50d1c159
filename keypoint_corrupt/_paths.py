"""Output paths: checking an ``--out`` before any work, and replacing a file atomically.

The lowest layer (standard library only), so that every part of the package that writes a
user-visible file can share it: a file is always written to a hidden temporary sibling and
renamed over its final name, never rewritten in place (the final name may be a hard link that
another output shares, e.g. a ``materialize`` output's clean copy of a source image).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "TOKEN",
    "check_output_path",
    "fsync_folder",
    "is_temp_name",
    "replacing",
    "temp_name",
    "temp_target",
    "write_atomic",
]

_TMP_MARK = ".tmp-"
_TMP_TAIL = re.compile(r"^\d+(-[0-9a-f]+)?$")
#: Random per process tree, so that processes on different hosts sharing a file system
#: (shards of a job array) never pick the same temporary name.
TOKEN = secrets.token_hex(4)


def check_output_path(path: str | os.PathLike[str], *, want: str = "folder", option: str = "--out") -> None:
    """Refuse, before any work, a path that cannot become a ``want`` (``"folder"`` or ``"file"``).

    Raises ``ValueError`` with a one-line message naming the path: a broken symbolic link,
    an existing path of the other kind (or not a regular file), or a path inside something
    that is not a folder. A missing path whose parents are folders (or missing) passes.

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "f"
    >>> _ = f.write_text("x")
    >>> check_output_path(f / "sub")
    Traceback (most recent call last):
    ...
    ValueError: --out .../f/sub is inside .../f, which is not a folder
    """
    if want not in ("folder", "file"):
        raise ValueError(f"want must be 'folder' or 'file', got {want!r}")
    p = Path(path)
    name = f"{option} {p}" if option else str(p)  # option="": the bare path, for callers that prefix
    try:
        if os.path.lexists(p) and not p.exists():
            raise ValueError(f"{name} is a broken symbolic link")
        if want == "folder" and p.exists() and not p.is_dir():
            raise ValueError(f"{name} exists and is not a folder")
        if want == "file" and p.is_dir():
            raise ValueError(f"{name} is a folder; give a file name such as {p / 'sheet.png'}")
        if want == "file" and p.exists() and not p.is_file():
            raise ValueError(f"{name} exists and is not a regular file")
        for parent in p.absolute().parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ValueError(f"{name} is inside {parent}, which is not a folder")
                break
    except OSError as exc:  # EACCES on a parent, a name too long, ...
        raise ValueError(f"{name} cannot be used: {exc.strerror or exc}") from None


def temp_name(path: Path) -> Path:
    """Hidden temporary sibling of ``path``: ``.<name>.tmp-<pid>-<token>``."""
    return path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}-{TOKEN}")


def temp_target(name: str) -> str | None:
    """Return the final file name that a :func:`temp_name` stands for (``None``: not one).

    Examples
    --------
    >>> temp_target(".BB_left_0.png.tmp-4242-0badc0de"), temp_target("BB_left_0.png")
    ('BB_left_0.png', None)
    """
    head, mark, tail = name.rpartition(_TMP_MARK)
    if not mark or not name.startswith(".") or len(head) < 2 or not _TMP_TAIL.match(tail):
        return None
    return head[1:]


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of :func:`temp_name`'s."""
    return temp_target(name) is not None


@contextlib.contextmanager
def replacing(path: Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a hidden temporary sibling of ``path`` to fill; rename it over ``path`` at the end.

    On any error the temporary file is removed and the error propagates; with ``fsync`` the
    folder is ``fsync``-ed after the rename, so that the new name survives a power loss.
    Renaming a hard link over another link to the same file is a no-op that leaves the
    temporary name (POSIX), so it is removed after the rename.
    """
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    if fsync:
        fsync_folder(path.parent)


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that the final name only ever holds complete content.

    The bytes go to a hidden temporary sibling, are flushed (and ``fsync``-ed), then renamed
    over ``path`` with :func:`os.replace` (:func:`replacing`); a file that ``path`` was a
    hard link to keeps its bytes. On any error the temporary file is removed and the
    ``OSError`` propagates.
    """
    with replacing(path, fsync=fsync) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def fsync_folder(folder: Path) -> None:
    """``fsync`` a folder, making the names renamed into it durable (POSIX; nothing elsewhere)."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open a folder
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # a file system that cannot sync folders
            raise
    finally:
        os.close(fd)
