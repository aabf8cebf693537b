"""CIFAR-10 from a torchvision-layout data root, read without running arbitrary pickle code.

The python version of CIFAR-10 is a set of pickles; they are read with an unpickler that allows
only the numpy globals an array needs. The binary version (cifar-10-batches-bin) is read as bytes.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from ganzoo.core.data import may_write, read_only_note
from ganzoo.core.digests import md5
from ganzoo.core.errors import DataError
from ganzoo.core.parts import ImageData
from ganzoo.core.safe_read import open_regular, read_bounded

MAX_BATCH_BYTES = 1 << 28  # a CIFAR-10 binary batch is 30,730,000 bytes

SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_python_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with os.fdopen(open_regular(path, "CIFAR-10 batch", error=DataError), "rb") as f:
            batch = _ArrayUnpickler(f, encoding="latin1").load()
        data, labels = batch.get("data", batch.get(b"data")), batch.get("labels", batch.get(b"labels"))
        images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a CIFAR-10 batch: {exc}") from None
    if images.dtype != torch.uint8:
        raise DataError(f"{path} holds {images.dtype}, expected unsigned bytes")
    return images, torch.tensor(list(labels), dtype=torch.long)


def read_binary_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    raw = read_bounded(path, "CIFAR-10 batch", MAX_BATCH_BYTES, error=DataError)
    if len(raw) % 3073:
        raise DataError(f"{path} is not a CIFAR-10 binary batch (size {len(raw)} is not a multiple of 3073)")
    rows = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, 3073)
    return rows[:, 1:].reshape(-1, 3, 32, 32).clone(), rows[:, 0].long()


def _files(split: str) -> list[str]:
    return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")  # by label


def load_cifar10(argument: str | None, root: Path, split: str) -> ImageData:
    py_folder, bin_folder = root / "cifar-10-batches-py", root / "cifar-10-batches-bin"
    if not py_folder.is_dir() and not bin_folder.is_dir():
        if not may_write(root):
            raise DataError(f"CIFAR-10 not found: tried {py_folder} and {bin_folder}; {read_only_note(root)}")
        try:  # torchvision's downloader only: its CIFAR10 class would unpickle the batches unchecked
            import torchvision.datasets
            from torchvision.datasets import utils

            c = torchvision.datasets.CIFAR10
            utils.download_and_extract_archive(c.url, str(root), filename=c.filename, md5=c.tgz_md5)
        except Exception as exc:
            raise DataError(
                f"CIFAR-10 not found: tried {py_folder}, {bin_folder} and torchvision's download "
                f"({type(exc).__name__})"
            ) from None
    if bin_folder.is_dir():
        parts = [read_binary_batch(bin_folder / f"{name}.bin") for name in _files(split)]
        source = f"torchvision layout (binary): {bin_folder}"
    else:
        import torchvision.datasets

        known = dict(torchvision.datasets.CIFAR10.train_list + torchvision.datasets.CIFAR10.test_list)
        parts = []
        for name in _files(split):
            path = py_folder / name
            if not path.is_file():
                raise DataError(f"CIFAR-10 file missing: {path}")
            if md5(path) != known[name]:
                raise DataError(f"{path} fails its MD5 check (expected {known[name]})")
            parts.append(read_python_batch(path))
        source = f"torchvision layout: {py_folder} (MD5 verified)"
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    return ImageData(images, labels, source, classes=CIFAR10_CLASSES)
