"""Training data: reading IDX files, finding the data root, and drawing batches from a tensor on the device.

The whole split is one uint8 tensor on the training device; a batch is an index draw scaled to [-1, 1].
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import torch

from ganzoo.errors import DataError
from ganzoo.images import to_unit
from ganzoo.parts import ImageData
from ganzoo.registry import Registry

IDX_DTYPES = {0x08: torch.uint8, 0x09: torch.int8, 0x0B: torch.int16, 0x0C: torch.int32, 0x0D: torch.float32}


def default_root() -> Path:
    return Path(os.environ.get("GANZOO_DATA") or Path.home() / ".cache" / "ganzoo")


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (gzipped or not) into a tensor; raise DataError on anything malformed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path} is not an IDX file (bad header)")
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    count = 1
    for size in shape:
        count *= size
    itemsize = torch.empty((), dtype=dtype).element_size()
    if len(raw) != header + count * itemsize:
        raise DataError(f"{path} is truncated or padded: expected {count} items of shape {shape}")
    if count == 0:
        raise DataError(f"{path} holds no items (shape {shape})")
    data = torch.frombuffer(bytearray(raw[header:]), dtype=dtype)
    if itemsize > 1:  # IDX is big-endian
        data = data.view(torch.uint8).view(-1, itemsize).flip(1).contiguous().view(dtype).view(-1)
    return data.reshape(shape)


def load_data(registry: Registry, spec: str, root: Path, split: str = "train") -> ImageData:
    """Load a dataset by spec ("mnist", "idx:/path") as uint8 (N, C, H, W)."""
    name, _, argument = spec.partition(":")
    dataset = registry.get("dataset", name)
    if dataset.takes_argument and not argument:
        raise DataError(f"dataset {name!r} needs an argument: {name}:PATH")
    if argument and not dataset.takes_argument:
        raise DataError(f"dataset {name!r} takes no argument, got {spec!r}")
    data = dataset.load(argument or None, root, split)
    images = data.images
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise DataError(f"dataset {spec!r} gave {tuple(images.shape)} {images.dtype}, expected uint8 (N, C, H, W)")
    return data


class Batches:
    """Draws real batches in a seeded random order, epoch by epoch, without a DataLoader.

    The order of epoch e is a permutation seeded by (seed, e), so a run resumed at any
    (epoch, position) draws exactly the batches it would have drawn.
    """

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int):
        if images.shape[0] < batch_size:
            raise DataError(f"the dataset has {images.shape[0]} images, fewer than the batch size {batch_size}")
        self.images = images
        self.batch_size = batch_size
        self.seed = seed
        self.per_epoch = images.shape[0] // batch_size
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def batch(self, index: int) -> torch.Tensor:
        """The index-th batch since training began, scaled to [-1, 1] as float32."""
        epoch, position = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.images.shape[0], generator=generator)
            self._order = order.to(self.images.device)
            self._epoch = epoch
        take = self._order[position * self.batch_size : (position + 1) * self.batch_size]
        return to_unit(self.images.index_select(0, take))
