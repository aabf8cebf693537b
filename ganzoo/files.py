"""Atomic file writes: a temp file in the same folder, fsync, rename. A reader sees the old file or the new one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ganzoo.errors import GanzooError


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
    reports any OS failure (missing folder, no permission, full disk) as a GanzooError.
    """
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise GanzooError(f"cannot write {path}: it exists and is not a regular file")
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


def append_line(path: Path, line: str) -> None:
    """Append one line and fsync, so a crash loses at most the line being written."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(line.rstrip("\n") + "\n")
        f.flush()
        os.fsync(f.fileno())
