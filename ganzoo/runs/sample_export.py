"""Raw sample export for the tools people score with (clean-fid, torch-fidelity): a folder of PNGs
or one .npz of uint8 arrays, written chunk by chunk so that memory stays bounded, and moved into
place only when complete.

The export writes to a hidden temp beside the target, ``.NAME.tmp-PID-XXXXXXXX`` (a folder for
png-dir, a file for npz; PID is the writing process, XXXXXXXX eight random hex digits), and holds
an ``flock`` on it while it writes; replacing an earlier png-dir export moves that one aside into
``.NAME.old-PID-XXXXXXXX`` for the moment of the swap. A temp whose process is gone (killed with
SIGKILL, say) is removed by the next export to the same target (``remove_stale_temps``). Under
``stop_cleanly_on_signals`` (what ``ganzoo sample`` runs under), SIGINT and SIGTERM remove the temp
before the process ends."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.lib import format as npy_format

from ganzoo import __version__
from ganzoo.core.errors import GanzooError
from ganzoo.core.safe_read import kind_of
from ganzoo.runs.export_temps import MANIFEST, lock, new_temp, remove_stale_temps, signals_deferred
from ganzoo.runs.images import png_bytes
from ganzoo.runs.sampling import CHUNK, Draw, Progress, check_out_folder, check_seed, pick_classes

FORMATS = ("png-dir", "npz")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Export:
    """What an export wrote: where, how many images, from which generators (1-based), with which weights."""

    path: Path
    images: int
    generators: tuple[int, ...]
    weights: str
    classes: tuple[int, ...] = ()  # the labels drawn, in order (a class-conditional run's), count of each per generator


def file_name(generator: int, index: int, count: int) -> str:
    """``g<generator>-<index>.png``, the index zero-padded to at least six digits so names sort in order."""
    return f"g{generator}-{index:0{max(6, len(str(count - 1)))}d}.png"


SAFE_FOLDER = re.compile(r"\w[\w .,+()-]{0,99}", re.ASCII)


def class_folders(names: tuple[str, ...]) -> tuple[str, ...]:
    """The png-dir subfolder of each class, by label: the class names when every one is a safe file
    name (ASCII letters, digits and ``_``, then also spaces and ``.,+()-``, at most 100 characters,
    not ending in a space or a dot, not ``samples.json``, and no two the same ignoring case), else the
    labels "0", "1", ..."""
    keys = {unicodedata.normalize("NFC", name).casefold() for name in names}
    if len(keys) == len(names) and MANIFEST not in keys and all(
            SAFE_FOLDER.fullmatch(name) and not name.endswith((" ", ".")) for name in names):
        return tuple(names)
    return tuple(str(k) for k in range(len(names)))


def describe(draw: Draw, run_dir: Path, count: int, seed: int, fmt: str, labels: tuple[int, ...] = ()) -> dict[str, Any]:
    """The export's record (samples.json, the npz's metadata). A class-conditional run's adds its
    classes; an unconditional run's is as it was before classes existed."""
    manifest = draw.manifest
    c, h, w = draw.image_shape
    info = {
        "format": fmt,
        "run": str(Path(run_dir).resolve()),
        "step": manifest.get("step"),
        "strategy": manifest.get("strategy"),
        "dataset": manifest.get("config", {}).get("dataset"),
        "weights": manifest["weights"],
        "seed": seed,
        "n_per_generator": count,
        "generators": [i + 1 for i in draw.indices],
        "image_shape": {"height": h, "width": w, "channels": c},
        "ganzoo_version": __version__,
    }
    if draw.classes:
        info["n_per_generator"] = count * len(labels)
        info["n_per_class"] = count
        info["classes"] = list(labels)
        info["class_names"] = list(draw.class_names)
    return info


def export_samples(draw: Draw, run_dir: Path, out: Path, *, fmt: str, count: int, seed: int = 0,
                   chunk: int = CHUNK, progress: Progress | None = None, classes: str | None = None) -> Export:
    """Write ``count`` samples per picked generator to ``out`` as ``fmt`` (png-dir or npz).

    On a class-conditional run, ``count`` samples per generator of each class that ``classes`` names
    (a ``--class`` value, ``sampling.pick_classes``; every class by default), generator by generator,
    class by class in the order named: sample i of every class is drawn from z_i, the z of sample i
    of an unconditional export, whatever the classes picked. An unconditional run refuses ``classes``."""
    if fmt not in FORMATS:
        raise GanzooError(f"unknown sample format {fmt!r} (known: grid, {', '.join(FORMATS)})")
    check_seed(seed)
    labels = pick_classes(draw, classes)
    out = Path(out)
    check_out_folder(out)
    remove_stale_temps(out)  # before the disk check: what a killed export left takes space
    c, h, w = draw.image_shape
    total = count * len(draw.indices) * max(1, len(labels))
    _check_disk(out.parent, total * c * h * w + (total * 100 if fmt == "png-dir" else 0))
    info = describe(draw, run_dir, count, seed, fmt, labels)
    writer = _write_png_dir if fmt == "png-dir" else _write_npz
    writer(draw, out, info, count, seed, chunk, progress, labels)
    return Export(out, total, tuple(info["generators"]), info["weights"], labels)


def _check_disk(folder: Path, need: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if need > free:
        raise GanzooError(f"the samples need about {need / 2**30:.1f} GiB on disk, but {folder} has {free / 2**30:.1f} GiB free; lower --n")


def _images(draw: Draw, count: int, seed: int, chunk: int, progress: Progress | None, labels: tuple[int, ...] = ()):
    """(generator, label, first index, uint8 images (n, H, W, C)) chunk by chunk, generator after
    generator, and within one class after class (label None for an unconditional run)."""
    jobs: tuple[int | None, ...] = labels or (None,)
    done, total = 0, count * len(draw.indices) * len(jobs)
    for position, index in enumerate(draw.indices):
        for label in jobs:
            start = 0
            for images in draw.chunks(position, count, seed, chunk, label=label):
                yield index + 1, label, start, images.permute(0, 2, 3, 1).contiguous()
                start += len(images)
                done += len(images)
                if progress is not None:
                    progress("images written", done, total)


def _existing(out: Path) -> int | None:
    """The mode of what is at ``out`` (not following a link), or None when nothing is."""
    try:
        return os.lstat(out).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise GanzooError(f"cannot write {out}: {exc.strerror or exc}") from None


def _new_mode(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


# -- png-dir: a temp folder beside the target, renamed into place ---------------------------------

def _write_png_dir(draw: Draw, out: Path, info: dict[str, Any], count: int, seed: int, chunk: int,
                   progress: Progress | None, labels: tuple[int, ...] = ()) -> None:
    mode = _existing(out)
    replacing = False
    if mode is not None:
        # only an earlier export is replaced: a folder of someone's own images never is
        if not stat.S_ISDIR(mode) or not os.path.lexists(out / MANIFEST):
            what = "a folder that is not a ganzoo sample export" if stat.S_ISDIR(mode) else f"a {kind_of(mode)}"
            raise GanzooError(f"cannot write {out}: it exists and is {what}; choose another --out")
        replacing = True
    tmp, held = None, -1
    try:
        with signals_deferred():  # made and known here at once, so that a signal removes it
            tmp, held = new_temp(out, "tmp", _locked_folder)
        files, owners, kinds = [], [], []
        file_mode = _new_mode(0o666)
        folders = class_folders(draw.class_names) if labels else ()
        for label in labels:  # one subfolder per class: the FID tools read folders recursively
            os.mkdir(tmp / folders[label], 0o777)
        for generator, label, start, images in _images(draw, count, seed, chunk, progress, labels):
            for k in range(len(images)):
                name = file_name(generator, start + k, count)
                if label is not None:
                    name = f"{folders[label]}/{name}"
                    kinds.append(label)
                _write_new(tmp / name, png_bytes(images[k]), file_mode)
                files.append(name)
                owners.append(generator)
        info = {**info, "files": files, "generator": owners}
        if labels:
            info = {**info, "label": kinds, "class_folders": list(folders)}
        _write_new(tmp / MANIFEST, (json.dumps(info, indent=1) + "\n").encode(), file_mode)
        os.chmod(tmp, _new_mode(0o777))
        _fsync_dir(tmp)
        with signals_deferred():  # a signal now waits until the export is in place (or failed to be)
            if replacing:
                _swap_in(tmp, out)
            else:
                os.rename(tmp, out)  # fails, rather than merging, if something appeared there meanwhile
            _fsync_dir(out.parent)
    except OSError as exc:
        _remove_folder(tmp)
        raise GanzooError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        _remove_folder(tmp)
        raise
    finally:
        if held >= 0:
            os.close(held)


def _locked_folder(path: Path) -> int:
    """Make the folder path (only ours may enter it) and return a descriptor holding an flock on it."""
    os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except BaseException:
        os.rmdir(path)
        raise
    lock(fd)
    return fd


def _remove_folder(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def _swap_in(tmp: Path, out: Path) -> None:
    """Move the earlier export at out aside, the new one in, then delete the earlier one (or put it back)."""
    aside, _ = new_temp(out, "old", _made_folder)
    try:
        os.replace(out, aside / "previous")
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(aside / "previous", out)
            raise
    finally:
        if os.path.lexists(out):  # kept hidden beside it only if neither export could be put in place
            shutil.rmtree(aside, ignore_errors=True)


def _made_folder(path: Path) -> None:
    os.mkdir(path, 0o700)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create path (never an existing file, never through a link) and write data to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- npz: a zip of .npy members streamed into a temp file, renamed into place ---------------------

def _write_npz(draw: Draw, out: Path, info: dict[str, Any], count: int, seed: int, chunk: int,
               progress: Progress | None, labels: tuple[int, ...] = ()) -> None:
    mode = _existing(out)
    if mode is not None and not stat.S_ISREG(mode):
        raise GanzooError(f"cannot write {out}: it exists and is not a regular file (a {kind_of(mode)})")
    c, h, w = draw.image_shape
    per_generator = count * max(1, len(labels))
    total = per_generator * len(draw.indices)
    tmp, fd = None, -1
    try:
        with signals_deferred():  # made and known here at once, so that a signal removes it
            tmp, fd = new_temp(out, "tmp", _locked_file)
        os.fchmod(fd, mode & 0o7777 if mode is not None else _new_mode(0o666))
        with os.fdopen(fd, "wb", closefd=False) as file:  # fd, and its flock, are let go of last
            with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                with archive.open("images.npy", "w", force_zip64=True) as member:
                    header = {"descr": "|u1", "fortran_order": False, "shape": (total, h, w, c)}
                    npy_format.write_array_header_1_0(member, header)
                    for _, _, _, images in _images(draw, count, seed, chunk, progress, labels):
                        member.write(images.numpy().tobytes())
                _add_array(archive, "generator", np.repeat(np.array(info["generators"], dtype=np.int64), per_generator))
                if labels:  # each image's class, and the classes' names by label (fixed-width unicode: no pickle)
                    _add_array(archive, "labels", np.tile(np.repeat(np.array(labels, dtype=np.int64), count), len(draw.indices)))
                    _add_array(archive, "class_names", np.array(list(draw.class_names), dtype=str))
                _add_array(archive, "metadata", np.array(json.dumps(info)))
            file.flush()
            os.fsync(file.fileno())
        with signals_deferred():  # a signal now waits until the export is in place (or failed to be)
            os.replace(tmp, out)
            _fsync_dir(out.parent)
    except OSError as exc:
        _unlink(tmp)
        raise GanzooError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        _unlink(tmp)
        raise
    finally:
        if fd >= 0:
            os.close(fd)


def _locked_file(path: Path) -> int:
    """Create the file path (never an existing one, never through a link) and return its descriptor, holding an flock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    lock(fd)
    return fd


def _add_array(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with archive.open(f"{name}.npy", "w") as member:
        npy_format.write_array(member, array, allow_pickle=False)


def _unlink(path: Path | None) -> None:
    try:
        if path is not None:
            os.unlink(path)
    except FileNotFoundError:
        pass
