"""folder:PATH — every image under a folder, decoded once into a cache that training memory-maps.

The cache of a folder at one (resolution, channels) lives in ``<data root>/folders/<key>/``:

- ``images-<id>.u8``: the images as raw uint8 (N, C, R, R), in the order of their sorted names;
- ``labels-<id>.i64``: the class of each image (int64), when the folder has class subfolders;
- ``files-<id>.tsv``: one line per cached image (index, class, bytes, mtime, name);
- ``manifest.json``: the settings, counts, classes, hashes, what was skipped and why, and the
  digest of the folder's listing. It is written last, atomically: a cache without a current
  manifest is not a cache, so a crash mid-way never leaves a half-written one in use.

Every load scans the folder (names, sizes, modification times; no decoding): when the listing's
digest differs from the manifest's, files were added, removed or modified and the cache is rebuilt.
Decoding runs in worker processes (one per core by default); ``folder_decode`` says how each kind
of image is converted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ganzoo import __version__
from ganzoo.core.data import default_root, may_write, user_path
from ganzoo.core.errors import DataError, GanzooError
from ganzoo.core.files import write_atomic
from ganzoo.core.safe_read import loads_json, read_text
from ganzoo.plugins.datasets import folder_decode
from ganzoo.plugins.datasets.folder_scan import EXTENSIONS, Found, Listing, check_folder, class_names, scan, shown

FORMAT = "ganzoo-folder-cache/1"
MAX_RESOLUTION = 1024
CHUNK = 64  # files per task sent to a worker
IN_PROCESS = 256  # folders with fewer images are decoded without worker processes
SHOWN_SKIPS = 3  # skipped files named in a console message (the manifest lists them all, up to LISTED_SKIPS)
LISTED_SKIPS = 10_000
CACHE_NAME = re.compile(r"^(images|labels|files)-[0-9a-f]{16}\.(u8|i64|tsv)$")
Progress = Callable[[str, int, int], None]  # progress(what, done, total)


def cache_dir(root: Path, folder: Path, resolution: int, channels: int) -> Path:
    """Where the cache of the folder (its real path) at these settings lives (0: from the data)."""
    key = hashlib.sha256(os.fsencode(str(folder))).hexdigest()[:16]
    return Path(root) / "folders" / f"{key}-{resolution or 'native'}px-{channels or 'auto'}ch"


def workers_default() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _chunks(items: list[Found]) -> list[list[tuple[str, int, int]]]:
    rows = [(f.relpath, f.size, f.mtime_ns) for f in items]
    return [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]


def _run(function: Callable[..., list[Any]], folder: Path, chunks: list[list[tuple[str, int, int]]], extra: tuple,
         workers: int, progress: Progress | None, what: str) -> Iterator[Any]:
    """function(folder, chunk, *extra) over every chunk, results in order: in worker processes when
    there are enough files, with at most 4 chunks per worker in flight (memory stays bounded)."""
    total, done = sum(len(chunk) for chunk in chunks), 0
    if workers <= 1 or total < IN_PROCESS:
        for chunk in chunks:
            yield from function(str(folder), chunk, *extra)
            done += len(chunk)
            if progress is not None:
                progress(what, done, total)
        return
    import multiprocessing

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))  # never a fork of torch's threads
    try:
        queue, rest = deque(), iter(chunks)
        for chunk in itertools.islice(rest, 4 * workers):
            queue.append((pool.submit(function, str(folder), chunk, *extra), len(chunk)))
        while queue:
            future, size = queue.popleft()
            results = future.result()
            chunk = next(rest, None)
            if chunk is not None:
                queue.append((pool.submit(function, str(folder), chunk, *extra), len(chunk)))
            yield from results
            done += size
            if progress is not None:
                progress(what, done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _settings(folder: Path, listing: Listing, kept: list[Found], resolution: int, channels: int, workers: int,
              progress: Progress | None, skipped: list[tuple[str, str]]) -> tuple[list[Found], int, int]:
    """Read every header: the files that open, and the resolution and channels (given, or from the data)."""
    headers = list(_run(folder_decode.headers, folder, _chunks(kept), (), workers, progress, "reading headers"))
    good, sizes, grey = [], {}, True
    for found, header in zip(kept, headers):
        if isinstance(header, str):
            skipped.append((found.relpath, header))
            continue
        mode, width, height = header
        good.append(found)
        sizes.setdefault(tuple(sorted((width, height))), found.relpath)
        grey = grey and mode in folder_decode.GREY_MODES
    if not good:
        raise DataError(f"none of the {len(kept)} images under {shown(str(folder))} can be read ({_first_skips(skipped)})")
    if not resolution:
        if len(sizes) > 1:
            (a, name_a), (b, name_b) = list(sizes.items())[:2]
            raise DataError(f"the images under {shown(str(folder))} have {len(sizes)} different sizes ({shown(name_a)}: "
                            f"{a[0]}x{a[1]}, {shown(name_b)}: {b[0]}x{b[1]}, ...); give --resolution R")
        resolution = next(iter(sizes))[0]
        if resolution > MAX_RESOLUTION:
            raise DataError(f"the images under {shown(str(folder))} are {resolution} px; give --resolution R (at most {MAX_RESOLUTION})")
    return good, resolution, channels or (1 if grey else 3)


def _first_skips(skipped: list[tuple[str, str]]) -> str:
    shown_ = "; ".join(f"{shown(name)}: {why}" for name, why in skipped[:SHOWN_SKIPS])
    return shown_ + ("; ..." if len(skipped) > SHOWN_SKIPS else "")


def _no_images(folder: Path, listing: Listing) -> DataError:
    kinds = " ".join(sorted(e.lstrip(".") for e in EXTENSIONS))
    if listing.others:
        return DataError(f"no images under {shown(str(folder))}: {len(listing.others)} other file(s) such as "
                         f"{shown(listing.others[0])} (images are {kinds})")
    if listing.skipped:
        return DataError(f"no images under {shown(str(folder))}: {len(listing.skipped)} entries skipped ({_first_skips(listing.skipped)})")
    return DataError(f"no images under {shown(str(folder))}: the folder is empty")


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The cache's manifest when it is whole and consistent with its files, else None."""
    try:
        manifest = loads_json(read_text(directory / "manifest.json", "folder cache manifest", error=DataError))
        n, c, r = manifest["count"], manifest["channels"], manifest["resolution"]
        names = [manifest["images_file"], manifest["files_file"]] + ([manifest["labels_file"]] if manifest["labels_file"] else [])
        classes, skipped = manifest["classes"], manifest["skipped"]
        ok = (manifest["format"] == FORMAT and all(isinstance(v, int) and v > 0 for v in (n, c, r))
              and all(isinstance(manifest[key], str) for key in ("folder", "listing", "sha256"))
              and (isinstance(classes, list) and all(isinstance(k, str) for k in classes)) == bool(manifest["labels_file"])
              and isinstance(skipped["count"], int) and isinstance(skipped["files"], list)
              and all(isinstance(name, str) and CACHE_NAME.match(name) for name in names)
              and os.stat(directory / manifest["images_file"]).st_size == n * c * r * r
              and (not manifest["labels_file"] or os.stat(directory / manifest["labels_file"]).st_size == 8 * n))
        return manifest if ok else None
    except (GanzooError, OSError, ValueError, KeyError, TypeError):
        return None


def prepare(spec_path: str, root: Path, *, resolution: int = 0, channels: int = 0, workers: int = 0,
            progress: Progress | None = None, rebuild: bool = False) -> tuple[Path, dict[str, Any], bool]:
    """The folder's cache, built or rebuilt when the folder changed. Returns (cache folder, manifest,
    whether it was built now)."""
    if resolution and not 8 <= resolution <= MAX_RESOLUTION:
        raise DataError(f"resolution must be between 8 and {MAX_RESOLUTION} px, got {resolution}")
    if channels not in (0, 1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    folder = check_folder(user_path(spec_path, "folder:"))
    directory = cache_dir(root, folder, resolution, channels)
    listing = scan(folder)
    manifest = None if rebuild else read_manifest(directory)
    if manifest is not None and manifest["listing"] == listing.digest():
        return directory, manifest, False
    if not may_write(root):  # a data root read from a checkpoint: its cache is read there, built only in the default root
        directory = cache_dir(default_root(), folder, resolution, channels)
        manifest = None if rebuild else read_manifest(directory)
        if manifest is not None and manifest["listing"] == listing.digest():
            return directory, manifest, False
    if not listing.files:
        raise _no_images(folder, listing)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / "lock", "a")  # noqa: SIM115 (held until the cache is written)
    except OSError as exc:
        raise DataError(f"cannot write the folder cache {directory}: {exc.strerror or exc}") from None
    with lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the others then find its cache
        except ImportError:
            pass
        manifest = None if rebuild else read_manifest(directory)
        if manifest is not None and manifest["listing"] == listing.digest():
            return directory, manifest, False
        manifest = _build(folder, directory, listing, resolution, channels, workers or workers_default(), progress)
    return directory, manifest, True


def _build(folder: Path, directory: Path, listing: Listing, resolution: int, channels: int, workers: int,
           progress: Progress | None) -> dict[str, Any]:
    started = time.monotonic()
    for stale in directory.glob(".*.partial"):  # left by a builder that was killed (we hold the lock)
        stale.unlink(missing_ok=True)
    skipped = list(listing.skipped)
    good, resolution_, channels_ = _settings(folder, listing, listing.files, resolution, channels, workers, progress, skipped)
    per_image = channels_ * resolution_ * resolution_
    free = shutil.disk_usage(directory).free
    if len(good) * per_image > free:
        raise DataError(f"the cache of {len(good):,} images at {resolution_} px needs {len(good) * per_image / 1e9:.1f} GB; "
                        f"{directory} has {free / 1e9:.1f} GB free")
    token = secrets.token_hex(8)
    names = {"images": f"images-{token}.u8", "labels": f"labels-{token}.i64", "files": f"files-{token}.tsv"}
    partial = {k: directory / f".{v}.partial" for k, v in names.items()}
    kept: list[Found] = []
    try:
        digest = hashlib.sha256()
        with open(partial["images"], "wb") as out:
            results = _run(folder_decode.decodes, folder, _chunks(good), (resolution_, channels_), workers, progress, "decoding")
            for found, result in zip(good, results):
                if result == folder_decode.CHANGED:
                    raise DataError(f"{shown(str(folder))} changed while it was prepared ({shown(found.relpath)} was modified); "
                                    "nothing was cached: run again")
                if isinstance(result, str):
                    skipped.append((found.relpath, result))
                    continue
                out.write(result)
                digest.update(result)
                kept.append(found)
            out.flush()
            os.fsync(out.fileno())
        if not kept:
            raise DataError(f"none of the {len(good)} images under {shown(str(folder))} can be decoded ({_first_skips(skipped)})")
        if scan(folder).digest() != listing.digest():
            raise DataError(f"{shown(str(folder))} changed while it was prepared (files added, removed or modified); "
                            "nothing was cached: run again")
        classes = class_names(kept)
        labels = [classes.index(f.relpath.split("/", 1)[0]) for f in kept] if classes else None
        if labels is not None:
            raw = b"".join(label.to_bytes(8, "little") for label in labels)
            digest.update(raw)
            write_atomic(partial["labels"], raw)
        lines = [f"{i}\t{labels[i] if labels else ''}\t{f.size}\t{f.mtime_ns}\t{shown(f.relpath)}\n" for i, f in enumerate(kept)]
        write_atomic(partial["files"], "".join(lines).encode())
        for key in ("images", "files", "labels"):
            if partial[key].exists():
                os.replace(partial[key], directory / names[key])
        skipped.sort(key=lambda s: os.fsencode(s[0]))
        manifest = {
            "format": FORMAT,
            "folder": shown(str(folder)),
            "resolution": resolution_,
            "channels": channels_,
            "asked": {"resolution": resolution, "channels": channels},
            "resize": "centre square of the shorter side, PIL Lanczos (antialiased) to R x R",
            "count": len(kept),
            "shape": [len(kept), channels_, resolution_, resolution_],
            "images_file": names["images"],
            "labels_file": names["labels"] if labels is not None else None,
            "files_file": names["files"],
            "sha256": digest.hexdigest(),
            "classes": [shown(c) for c in classes] if classes else None,
            "class_counts": [labels.count(k) for k in range(len(classes))] if classes and labels is not None else None,
            "listing": listing.digest(),
            "skipped": {"count": len(skipped), "files": [[shown(n), why] for n, why in skipped[:LISTED_SKIPS]]},
            "other_files": {"count": len(listing.others), "first": [shown(n) for n in listing.others[:SHOWN_SKIPS]]},
            "seconds": round(time.monotonic() - started, 2),
            "workers": workers,
            "ganzoo_version": __version__,
        }
        write_atomic(directory / "manifest.json", json.dumps(manifest, indent=1).encode())
    finally:
        for path in partial.values():
            path.unlink(missing_ok=True)
    for entry in directory.iterdir():  # an older cache's files
        if CACHE_NAME.match(entry.name) and entry.name not in names.values():
            entry.unlink(missing_ok=True)
    return manifest


def skip_note(manifest: dict[str, Any], directory: Path) -> str:
    """One line on what was skipped, or ""."""
    skipped = manifest["skipped"]
    if not skipped["count"]:
        return ""
    listed = "; ".join(f"{name}: {why}" for name, why in skipped["files"][:SHOWN_SKIPS])
    more = ", ..." if skipped["count"] > SHOWN_SKIPS else ""
    return f"skipped {skipped['count']} file(s) ({listed}{more}; all listed in {directory / 'manifest.json'})"


def load_folder(argument: str | None, root: Path, split: str, *, resolution: int = 0, channels: int = 0,
                progress: Progress | None = None, workers: int = 0, rebuild: bool = False):
    """The folder as ImageData whose images are a read-only memory map of the cache (a folder larger
    than RAM trains; ``release`` drops the pages read so far from the process). A folder has one
    split: "test" is the same images (evaluate against another folder with ``--reference``)."""
    import mmap

    import torch

    from ganzoo.core.parts import ImageData
    from ganzoo.core.safe_read import open_regular, read_bounded

    directory, manifest, _ = prepare(str(argument), root, resolution=resolution, channels=channels, progress=progress,
                                     workers=workers, rebuild=rebuild)
    n, c, r = manifest["count"], manifest["channels"], manifest["resolution"]
    fd = open_regular(directory / manifest["images_file"], "folder cache", error=DataError)
    try:
        pages = mmap.mmap(fd, n * c * r * r, access=mmap.ACCESS_COPY)  # private: nothing is ever written back
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot map the folder cache {directory}: {exc}") from None
    finally:
        os.close(fd)
    images = torch.frombuffer(pages, dtype=torch.uint8).view(n, c, r, r)
    labels = None
    if manifest["labels_file"]:
        raw = read_bounded(directory / manifest["labels_file"], "folder cache labels", 8 * n, error=DataError)
        labels = torch.frombuffer(bytearray(raw), dtype=torch.int64).clone()
        if labels.numel() != n or int(labels.min()) < 0 or int(labels.max()) >= len(manifest["classes"]):
            raise DataError(f"the folder cache's labels in {directory} are damaged; rebuild with ganzoo data prepare --rebuild")

    def release() -> None:
        if hasattr(pages, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            pages.madvise(mmap.MADV_DONTNEED)

    classes = manifest["classes"]
    note = skip_note(manifest, directory)
    return ImageData(images, labels, describe(directory, manifest), digest=manifest["sha256"], release=release,
                     classes=tuple(classes) if classes else None, notes=(note,) if note else ())


def describe(directory: Path, manifest: dict[str, Any]) -> str:
    """One line: the folder, its count, size, channels, classes, skips and cache."""
    n, c, r, classes = manifest["count"], manifest["channels"], manifest["resolution"], manifest["classes"]
    what = f", {len(classes)} classes" if classes else ""
    skipped = f"; {manifest['skipped']['count']} file(s) skipped" if manifest["skipped"]["count"] else ""
    return f"folder {manifest['folder']}: {n:,} images at {r}x{r}, {c} channel{'s' if c > 1 else ''}{what}{skipped} (cache {directory})"


def summary(argument: str | None, root: Path, *, resolution: int = 0, channels: int = 0, progress: Progress | None = None,
            workers: int = 0, rebuild: bool = False) -> dict[str, Any]:
    """``ganzoo data prepare/info`` for a folder, without torch: prepare it, and say what it holds."""
    directory, manifest, _ = prepare(str(argument), root, resolution=resolution, channels=channels, progress=progress,
                                     workers=workers, rebuild=rebuild)
    n, c, r = manifest["count"], manifest["channels"], manifest["resolution"]
    note = skip_note(manifest, directory)
    return {"images": n, "size": f"{r}x{r}", "channels": c, "bytes": n * c * r * r, "classes": manifest["classes"] or [],
            "class_counts": manifest["class_counts"], "skipped": manifest["skipped"]["count"], "cache": str(directory),
            "source": describe(directory, manifest), "notes": [note] if note else []}
