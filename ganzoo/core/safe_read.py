"""Reading files that may be hostile: regular files only (never a FIFO, device or socket), every read
bounded by a size known in advance, JSON with a depth cap, and the memory a request may take.
"""

from __future__ import annotations

import json
import os
import resource
import stat
from pathlib import Path
from typing import Any

from ganzoo.core.errors import GanzooError

MAX_JSON_DEPTH = 64  # ganzoo's own JSON is at most ~6 deep; a deeper document is an attack or an accident
MAX_TEXT_BYTES = 64 << 20  # config.toml, a --config file: far above any real one
MAX_METRICS_BYTES = 1 << 30  # metrics.jsonl: a record per epoch is ~500 bytes

KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
         (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symbolic link"))


def kind_of(mode: int) -> str:
    """What a file of this st_mode is, in words ("FIFO", "directory", ...)."""
    return next((name for test, name in KINDS if test(mode)), "special file")


def open_regular(path: Path, what: str, *, follow: bool = True, error: type[GanzooError] = GanzooError) -> int:
    """A read-only descriptor of path, which must be a regular file.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; the file type
    is checked on the open descriptor (no race with a swap). follow=False refuses a symlink.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as exc:
        if not follow and os.path.islink(path):
            raise error(f"{what} {path} is a symbolic link; ganzoo does not follow links in a run directory") from None
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{what} {path} is not a regular file (a {kind_of(mode)})")
    return fd


def read_exactly(fd: int, offset: int, size: int) -> bytearray:
    """size bytes of fd from offset; a shorter read (the file shrank) is an OSError."""
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise OSError(f"file ended after {offset + done} bytes")
        done += got
    return buffer


def read_bounded(path: Path, what: str, limit: int, *, follow: bool = True,
                 error: type[GanzooError] = GanzooError) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (larger ones are refused unread)."""
    fd = open_regular(path, what, follow=follow, error=error)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise error(f"{what} {path} is {size:,} bytes; ganzoo reads at most {limit:,}")
        try:
            return bytes(read_exactly(fd, 0, size))
        except OSError as exc:
            raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_text(path: Path, what: str, limit: int = MAX_TEXT_BYTES, *, follow: bool = True,
              error: type[GanzooError] = GanzooError) -> str:
    return read_bounded(path, what, limit, follow=follow, error=error).decode("utf-8", errors="replace")


class TooDeep(ValueError):
    """A JSON (or TOML) document nested deeper than MAX_JSON_DEPTH."""


def nesting_depth(value: Any) -> int:
    """How deep lists and dicts nest in a parsed document (iterative: never a RecursionError)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def loads_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads with a nesting cap: a too-deep document is a ValueError (TooDeep), never a RecursionError."""
    try:
        value = json.loads(text)
    except RecursionError:  # the C scanner stops at the interpreter's recursion limit
        raise TooDeep("JSON nested too deeply") from None
    if nesting_depth(value) > max_depth:
        raise TooDeep(f"JSON nested more than {max_depth} deep")
    return value


def available_memory() -> int:
    """Bytes this process may still allocate: the least of the system's available memory, the
    cgroup's headroom and the address-space rlimit's headroom (what the others leave is unknown)."""
    limits = []
    meminfo = _proc_fields("/proc/meminfo")
    if "MemAvailable" in meminfo:
        limits.append(meminfo["MemAvailable"] * 1024)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = _proc_fields("/proc/self/status").get("VmSize", 0) * 1024
        limits.append(soft - used)
    try:
        cap, current = (Path("/sys/fs/cgroup", name).read_text().strip() for name in ("memory.max", "memory.current"))
        if cap.isdigit() and current.isdigit():
            limits.append(int(cap) - int(current))
    except OSError:
        pass
    return max(0, min(limits)) if limits else 1 << 62


def _proc_fields(path: str) -> dict[str, int]:
    """The 'Name:  123 kB' lines of a /proc file, as {name: number}."""
    fields = {}
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                name, _, rest = line.partition(":")
                value = rest.split()
                if value and value[0].isdigit():
                    fields[name] = int(value[0])
    except OSError:
        pass
    return fields


def gigabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


def check_memory(need: int, what: str, hint: str = "", error: type[GanzooError] = GanzooError) -> None:
    """Refuse, before allocating, a request for more memory than this process can get."""
    free = available_memory()
    if need > free:
        raise error(f"{what} needs about {gigabytes(need)} of memory, but only {gigabytes(free)} is available{hint}")
