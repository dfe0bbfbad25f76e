"""Atomic file replacement: a reader sees the old file or the complete new one, never a partial one.

The new contents go to a temporary file in the *same directory* (so the final rename never crosses a
file system), are flushed and fsynced, and then `os.replace`d over the target; the directory is
fsynced too so the rename itself survives a crash. A kill, a full disk or a quota at any moment
leaves the previous file as it was and at most a `.<name>.*.tmp` file, which the next write of the
same target removes. A failed write raises `FileWriteError` naming the path and the cause.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from tamiyo.core.errors import FileWriteError

# Causes that mean "this location cannot take the file" rather than a bug.
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


def is_storage_error(error: BaseException) -> bool:
    """True for an OSError caused by the storage: full disk, quota, read-only or unwritable dir, I/O error."""
    return isinstance(error, OSError) and error.errno in _STORAGE_ERRNOS


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view):]


def _remove_stale_temporaries(path: Path) -> None:
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms and network file systems do not open directories
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # the rename is done; a file system that cannot fsync a directory gives no stronger guarantee
    finally:
        os.close(handle)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically (see the module docstring); returns the path."""
    path = Path(path)
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            _write_all(handle, data)
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temporary, path)
        temporary = None
        _fsync_dir(path.parent)
    except OSError as error:
        if not is_storage_error(error):
            raise
        reason = error.strerror or error
        raise FileWriteError(f"cannot write {path}: {reason} (the previous file is unchanged)") from error
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace `path` with `text` (UTF-8) atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))
