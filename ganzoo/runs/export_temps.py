"""The temps of a sample export and what ends them: a hidden temp beside the target,
``.NAME.tmp-PID-XXXXXXXX`` (a folder for png-dir, a file for npz; PID is the writing process,
XXXXXXXX eight random hex digits), ``flock``-ed while it is written; ``.NAME.old-PID-XXXXXXXX`` for
an earlier png-dir export moved aside for the moment of a swap. A temp whose process is gone
(killed with SIGKILL, say) is removed by the next export to the same target
(``remove_stale_temps``); under ``stop_cleanly_on_signals`` SIGINT and SIGTERM end the export with
an exception, so that the writer removes its temp before the process ends."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")
MANIFEST = "samples.json"


# -- temp names: whose they are, and removing those of a process that is gone -------------------

def _temp_name(out: Path, kind: str) -> str:
    """``.NAME.tmp-PID-XXXXXXXX`` (or ``.old-``): hidden, beside the target, naming the process writing it."""
    return f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _temp_pattern(out: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(out.name)}\.(tmp|old)-([1-9][0-9]{{0,9}})-[0-9a-f]{{8}}")


def new_temp(out: Path, kind: str, make: Callable[[Path], _T]) -> tuple[Path, _T]:
    """A fresh temp name beside out, and what ``make`` made there (it must refuse an existing name)."""
    for _ in range(100):
        path = out.parent / _temp_name(out, kind)
        try:
            return path, make(path)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp name", str(out.parent))


def lock(fd: int) -> None:
    """Hold an exclusive flock on fd until it is closed (where the file system has no flock, the pid alone says it is ours)."""
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _process_gone(pid: int) -> bool:
    """True only when no process ``pid`` exists (one we may not signal exists)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):
        return False
    return False


def remove_stale_temps(out: Path) -> list[Path]:
    """Remove what exports to ``out`` left when their process was killed (SIGKILL, a crash): the temps
    beside it named exactly as an export names them (``.NAME.tmp-PID-XXXXXXXX``, ``.NAME.old-PID-XXXXXXXX``)
    whose process PID is gone and which nobody holds an flock on, and which hold only what an export
    writes (a temp file; a temp folder of ``gK-N.png`` files, or of class subfolders of them, and
    ``samples.json``; a set-aside earlier
    export, once a newer one is in place). Anything else is left alone. Returns what was removed."""
    out = Path(out)
    pattern, removed = _temp_pattern(out), []
    try:
        names = os.listdir(out.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or not _process_gone(int(match[2])):
            continue
        path = out.parent / name
        with contextlib.suppress(OSError):
            if (_remove_stale_temp if match[1] == "tmp" else _remove_stale_aside)(path, out):
                removed.append(path)
    return removed


def _open_unused(path: Path) -> tuple[int, int]:
    """(descriptor, mode) of path, a plain file or a folder (never through a link), holding an flock;
    raise when it is something else or someone holds one."""
    import fcntl

    mode = os.lstat(path).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # never opened: a FIFO would block, a device act
        raise OSError(errno.EINVAL, "not a file or a folder", str(path))
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a live export holds it
        return fd, os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise


EXPORT_FILE = re.compile(r"g[0-9]+-[0-9]+\.png")


def _remove_stale_temp(path: Path, out: Path) -> bool:
    fd, mode = _open_unused(path)
    try:
        if stat.S_ISREG(mode):  # an npz being written
            if os.lstat(path).st_ino != os.fstat(fd).st_ino:
                return False
            os.unlink(path)
            return True
        if not stat.S_ISDIR(mode):
            return False
        entries = os.listdir(fd)
        folders = {}  # a conditional run's export: a subfolder of images per class
        for entry in entries:  # a png-dir being written: only its images and manifest, all plain files
            kind = os.stat(entry, dir_fd=fd, follow_symlinks=False).st_mode
            if stat.S_ISDIR(kind) and not entry.startswith("."):
                images = _only_images(fd, entry)
                if images is None:
                    return False
                folders[entry] = images
            elif not ((entry == MANIFEST or EXPORT_FILE.fullmatch(entry)) and stat.S_ISREG(kind)):
                return False
        for folder, images in folders.items():
            sub = os.open(folder, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            try:
                for image in images:
                    os.unlink(image, dir_fd=sub)
            finally:
                os.close(sub)
            os.rmdir(folder, dir_fd=fd)
        for entry in entries:
            if entry not in folders:
                os.unlink(entry, dir_fd=fd)
        os.rmdir(path)
        return True
    finally:
        os.close(fd)


def _only_images(fd: int, folder: str) -> list[str] | None:
    """The entries of a class subfolder of a png-dir temp when they are all export images (plain
    files named gK-N.png), else None."""
    sub = os.open(folder, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    try:
        entries = os.listdir(sub)
        ok = all(EXPORT_FILE.fullmatch(e) and stat.S_ISREG(os.stat(e, dir_fd=sub, follow_symlinks=False).st_mode) for e in entries)
        return entries if ok else None
    finally:
        os.close(sub)


def _remove_stale_aside(path: Path, out: Path) -> bool:
    """A folder an earlier export was moved aside into while a new one was swapped in: removed only
    once the new one is in place (otherwise it holds the only copy)."""
    if not os.path.lexists(out):
        return False
    fd, mode = _open_unused(path)
    try:
        if not stat.S_ISDIR(mode):
            return False
        entries = os.listdir(fd)
        if entries:
            if entries != ["previous"] or not stat.S_ISDIR(os.stat("previous", dir_fd=fd, follow_symlinks=False).st_mode):
                return False
            if not os.path.lexists(path / "previous" / MANIFEST):
                return False
            shutil.rmtree("previous", dir_fd=fd)
        os.rmdir(path)
        return True
    finally:
        os.close(fd)


# -- signals: SIGINT and SIGTERM remove what the export was writing ----------------------------

class Terminated(BaseException):
    """SIGTERM arrived under ``stop_cleanly_on_signals``.
    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it on the way out."""

    def __init__(self, signal_number: int):
        super().__init__(f"stopped by signal {signal_number}")
        self.signal_number = signal_number


class _Stopper:
    """The handler of SIGINT and SIGTERM while an export may run: KeyboardInterrupt or Terminated,
    raised where the main thread is (so the export's ``except BaseException`` removes its temp), or
    held back while a temp is made or the export is being renamed into place. Once stopping, a
    further signal is ignored, so that the removal is not cut short."""

    def __init__(self) -> None:
        self.deferring = 0
        self.pending: int | None = None
        self.stopping = False

    def __call__(self, number: int, frame: object) -> None:
        if self.stopping:
            return
        if self.deferring:
            self.pending = number
            return
        self.stop(number)

    def stop(self, number: int) -> None:
        self.stopping = True
        raise KeyboardInterrupt if number == signal.SIGINT else Terminated(number)


_stopper: _Stopper | None = None


@contextlib.contextmanager
def stop_cleanly_on_signals() -> Iterator[None]:
    """While inside, SIGINT raises KeyboardInterrupt and SIGTERM raises ``Terminated``, and an export
    removes its temp file or folder on the way out; the previous handlers come back after. Only in the
    main thread (elsewhere it does nothing). ``ganzoo sample`` runs under it."""
    global _stopper
    if threading.current_thread() is not threading.main_thread() or _stopper is not None:
        yield
        return
    stopper = _Stopper()
    previous = {number: signal.signal(number, stopper) for number in (signal.SIGINT, signal.SIGTERM)}
    _stopper = stopper
    try:
        yield
    finally:
        _stopper = None
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold a signal back until the end of the block (under ``stop_cleanly_on_signals``; otherwise nothing)."""
    stopper = _stopper
    if stopper is None:
        yield
        return
    stopper.deferring += 1
    try:
        yield
    finally:
        stopper.deferring -= 1
        if not stopper.deferring and stopper.pending is not None and not stopper.stopping:
            stopper.stop(stopper.pending)
