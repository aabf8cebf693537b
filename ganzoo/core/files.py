"""Atomic file writes: a temp file in the same folder, fsync, rename. A reader sees the old file or
the new one. And JSON that stays valid: NaN and infinities written as null."""

from __future__ import annotations

import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ganzoo.core.errors import GanzooError
from ganzoo.core.safe_read import kind_of


def _mode_for(path: Path) -> int:
    """Keep an existing file's mode; a new file gets the usual 0o666 less the umask (mkstemp's is 0o600)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: Path, data: bytes) -> None:
    """Write data to path so that readers see the old file or the new one, never a mix.

    Refuses a target that exists but is not a regular file (a folder, a device, a symlink), and
    reports any OS failure (missing folder, no permission, full disk, a name too long) as a GanzooError.
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise GanzooError(f"cannot write {path}: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise GanzooError(f"cannot write {path}: it exists and is not a regular file (a {kind_of(mode)})")
    try:
        _write(path, data)
    except OSError as exc:
        raise GanzooError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def open_append(path: Path) -> int:
    """A descriptor appending to path, a regular file (created when missing).

    O_NOFOLLOW: a symlink planted in place of the file is refused, never written through; O_NONBLOCK:
    a FIFO is refused at once instead of waiting for a reader.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if os.path.islink(path):
            raise GanzooError(f"cannot write {path}: it is a symbolic link, which ganzoo does not follow") from None
        raise GanzooError(f"cannot write {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise GanzooError(f"cannot write {path}: it is not a regular file (a {kind_of(mode)})")
    os.set_blocking(fd, True)
    return fd


def append_line(path: Path, line: str) -> None:
    """Append one line and fsync, so a crash loses at most the line being written (``open_append``)."""
    fd = open_append(path)
    try:
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except OSError as exc:
        raise GanzooError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def json_safe(value: Any) -> Any:
    """value with NaN and infinities replaced by None, so that it is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
