"""Datasets by spec: where data lives, loading a split through the registry ("mnist", "folder:/path"),
and the one conversion of its uint8 images to the networks' range."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganzoo.core.environment import MAX_PATH
from ganzoo.core.errors import DataError
from ganzoo.core.parts import ImageData
from ganzoo.core.registry import Registry

if TYPE_CHECKING:
    import torch


def default_root() -> Path:
    return Path(os.environ.get("GANZOO_DATA") or Path.home() / ".cache" / "ganzoo")


def user_path(text: str, what: str) -> Path:
    """A path from a dataset spec (``idx:PATH``, ``folder:PATH``), with ``~`` expanded (the shell
    leaves the ~ of idx:~/x as it is); one DataError for what cannot be a path."""
    if len(text) > MAX_PATH or "\0" in text:
        raise DataError(f"{what} path is not usable ({len(text):,} characters; at most {MAX_PATH})")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~user of no such user
        raise DataError(f"{what} path {text[:80]!r}: cannot expand {text.split('/')[0][:60]!r} (no such user)") from None


_READ_ONLY: ContextVar[frozenset[str]] = ContextVar("ganzoo_read_only_roots", default=frozenset())


@contextlib.contextmanager
def read_only_root(root: Path | None) -> Iterator[None]:
    """Within: ``root`` is read, never written. For a data root read from a file (a checkpoint's
    manifest), which anyone could have edited: ganzoo creates and downloads only into paths given
    on the command line or in the environment. Datasets ask ``may_write(root)`` before they create
    or download anything under their root."""
    if root is None:
        yield
        return
    token = _READ_ONLY.set(_READ_ONLY.get() | {os.path.abspath(root)})
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def may_write(root: Path) -> bool:
    """Whether a dataset may create or download files under ``root`` (see ``read_only_root``)."""
    return os.path.abspath(root) not in _READ_ONLY.get()


def read_only_note(root: Path) -> str:
    return (f"{root} is the data root a checkpoint names, which ganzoo only reads (it never creates or downloads "
            f"into a path read from a file): pass --data-root, or set GANZOO_DATA")


def load_data(registry: Registry, spec: str, root: Path, split: str = "train", *, resolution: int = 0, channels: int = 0,
              progress: Callable[[str, int, int], None] | None = None, **extra: Any) -> ImageData:
    """Load a dataset by spec ("mnist", "idx:/path", "folder:/path") as uint8 (N, C, H, W).

    resolution, channels (0: as the data is) go to datasets that resize (folder:PATH); the others
    refuse them. progress(what, done, total) hears of long preparations (a folder's first decoding);
    extra keywords go to such datasets too (folder: workers, rebuild)."""
    import torch

    name, _, argument = spec.partition(":")
    dataset = registry.get("dataset", name)
    if dataset.takes_argument and not argument:
        raise DataError(f"dataset {name!r} needs an argument: {name}:PATH")
    if argument and not dataset.takes_argument:
        raise DataError(f"dataset {name!r} takes no argument, got {spec!r}")
    if dataset.resizes:
        data = dataset.load(argument or None, root, split, resolution=resolution, channels=channels, progress=progress, **extra)
    else:
        check_no_resize(name, resolution, channels)
        data = dataset.load(argument or None, root, split)
    images = data.images
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise DataError(f"dataset {spec!r} gave {tuple(images.shape)} {images.dtype}, expected uint8 (N, C, H, W)")
    return data


def check_no_resize(name: str, resolution: int, channels: int) -> None:
    """--resolution and --channels are for datasets that resize (folder:PATH)."""
    if resolution or channels:
        given = " and ".join(f for f, v in (("--resolution", resolution), ("--channels", channels)) if v)
        verb = "apply" if " and " in given else "applies"
        raise DataError(f"{given} {verb} to datasets that resize their images (folder:PATH); {name!r} has a fixed size")


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float in [-1, 1], the generators' range (the inverse of a sample grid's scaling)."""
    return images.float().div_(127.5).sub_(1.0)
