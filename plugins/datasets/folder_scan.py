"""Finding the images of a folder: every regular file with an image extension under it, recursively.

The walk follows links to files and folders but reads each folder once (a link back to an ancestor
cannot loop), never opens what is not a regular file (FIFOs, devices and sockets are listed as
skipped), and keeps names that are not UTF-8 as the OS gives them. The listing (names, sizes and
modification times) has a digest: a cache built from the folder is current while it stays the same.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ganzoo.core.errors import DataError
from ganzoo.core.safe_read import kind_of

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MAX_DEPTH = 64  # folders nested deeper are not read (listed as skipped)


def shown(name: str) -> str:
    """A file name as text that prints anywhere: bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Found:
    """One image file: its path relative to the folder (as the OS gave it), size and modification time."""

    relpath: str
    size: int
    mtime_ns: int


@dataclass
class Listing:
    """What a walk found: the image files in sorted order, what it skipped (name, why) and how many
    other files it saw (not images by their extension)."""

    files: list[Found] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    others: list[str] = field(default_factory=list)

    def digest(self) -> str:
        """The sha256 of every image file's name, size and modification time."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(os.fsencode(f.relpath) + b"\0" + f"{f.size}:{f.mtime_ns}".encode() + b"\n")
        return h.hexdigest()


def check_folder(folder: Path) -> Path:
    """The folder's real path; a missing path, a file or an unreadable folder is a DataError."""
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        raise DataError(f"folder not found: {shown(str(folder))}") from None
    except OSError as exc:
        raise DataError(f"cannot read folder {shown(str(folder))}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(mode):
        raise DataError(f"{shown(str(folder))} is not a folder (a {kind_of(mode) if not stat.S_ISREG(mode) else 'file'})")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise DataError(f"cannot read folder {shown(str(folder))}: permission denied")
    return Path(os.path.realpath(folder))


def scan(folder: Path) -> Listing:
    """Every image file under folder (see the module's docstring), sorted by name."""
    listing = Listing()
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, str, int]] = [(str(folder), "", 0)]  # (path, relative path, depth)
    while stack:
        path, rel, depth = stack.pop()
        try:
            info = os.stat(path)
            if (info.st_dev, info.st_ino) in seen:
                continue  # a folder reached again through a link
            seen.add((info.st_dev, info.st_ino))
            entries = list(os.scandir(path))
        except OSError as exc:
            listing.skipped.append((rel or ".", f"cannot list the folder: {exc.strerror or exc}"))
            continue
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            try:
                info = entry.stat()  # follows links
            except OSError as exc:  # a broken link, a link loop, no permission
                why = "a link loop" if getattr(exc, "errno", None) == 40 else exc.strerror or str(exc)
                listing.skipped.append((name, why))
                continue
            if stat.S_ISDIR(info.st_mode):
                if depth + 1 >= MAX_DEPTH:
                    listing.skipped.append((name, f"nested more than {MAX_DEPTH} folders deep"))
                else:
                    stack.append((entry.path, name, depth + 1))
            elif os.path.splitext(entry.name)[1].lower() not in EXTENSIONS:
                listing.others.append(name)
            elif stat.S_ISREG(info.st_mode):
                listing.files.append(Found(name, info.st_size, info.st_mtime_ns))
            else:
                listing.skipped.append((name, f"not a regular file (a {kind_of(info.st_mode)})"))
    listing.files.sort(key=lambda f: os.fsencode(f.relpath))
    listing.skipped.sort(key=lambda s: os.fsencode(s[0]))
    return listing


def class_names(files: list[Found]) -> list[str] | None:
    """The classes by the torchvision ImageFolder convention: the first-level subfolders, sorted,
    when every image sits in one; None when any image lies directly in the folder."""
    if not files or any("/" not in f.relpath for f in files):
        return None
    return sorted({f.relpath.split("/", 1)[0] for f in files}, key=os.fsencode)
