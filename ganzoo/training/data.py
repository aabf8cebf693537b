"""Training data: reading IDX files, finding the data root, and drawing batches from a tensor on the device.

The whole split is one uint8 tensor on the training device; a batch is an index draw scaled to [-1, 1].
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from math import prod
from pathlib import Path
from typing import BinaryIO

import torch

from ganzoo.core.errors import DataError
from ganzoo.core.safe_read import check_memory, open_regular
from ganzoo.training.images import to_unit
from ganzoo.core.parts import ImageData
from ganzoo.core.registry import Registry

MAX_IDX_BYTES = 1 << 34  # 16 GiB of data in one IDX file: far above MNIST's 47 MB, and a bound on what a header may ask for
IDX_DTYPES = {0x08: torch.uint8, 0x09: torch.int8, 0x0B: torch.int16, 0x0C: torch.int32, 0x0D: torch.float32}


def default_root() -> Path:
    return Path(os.environ.get("GANZOO_DATA") or Path.home() / ".cache" / "ganzoo")


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with os.fdopen(open_regular(path, "data file", error=DataError), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gunzipped_md5(path: Path, limit: int) -> str | None:
    """The MD5 of a gzip file's decompressed content, or None when the content is longer than limit
    bytes (then it matches no known file; a gzip bomb stops there) or the file is not gzip."""
    digest, size = hashlib.md5(), 0
    with os.fdopen(open_regular(path, "data file", error=DataError), "rb") as file:
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    size += len(chunk)
                    if size > limit:
                        return None
                    digest.update(chunk)
        except (OSError, EOFError, zlib.error):
            return None
    return digest.hexdigest()


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (gzipped or not) into a tensor; raise DataError on anything malformed.

    Only a regular file is opened (never a FIFO or a device), and no more is read or decompressed
    than the header declares, plus one byte to notice padding: a gzip bomb stops there.
    """
    path = Path(path)
    with os.fdopen(open_regular(path, "IDX file", error=DataError), "rb") as file:
        try:
            gzipped = file.read(2) == b"\x1f\x8b"
            file.seek(0)
            stream = gzip.GzipFile(fileobj=file, mode="rb") if gzipped else file
            return _parse_idx(stream, path, None if gzipped else os.fstat(file.fileno()).st_size)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"cannot read IDX file {path}: {exc}") from None


def _read_upto(stream: BinaryIO, size: int) -> bytearray:
    """Up to size bytes of stream (fewer only at its end)."""
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        got = stream.readinto(view[done:])
        if not got:
            return buffer[:done]
        done += got
    return buffer


def _parse_idx(stream: BinaryIO, path: Path, file_size: int | None) -> torch.Tensor:
    magic = _read_upto(stream, 4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = IDX_DTYPES[magic[2]], magic[3]
    dims = _read_upto(stream, 4 * ndim)
    if ndim == 0 or len(dims) < 4 * ndim:
        raise DataError(f"{path} is not an IDX file (bad header)")
    shape = [int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim)]
    count = prod(shape)
    itemsize = torch.empty((), dtype=dtype).element_size()
    size = count * itemsize
    if file_size is not None and file_size != 4 + 4 * ndim + size:
        raise DataError(f"{path} is truncated or padded: expected {count} items of shape {shape}")
    if count == 0:
        raise DataError(f"{path} holds no items (shape {shape})")
    if size > MAX_IDX_BYTES:
        raise DataError(f"{path} declares {size:,} bytes of data (shape {shape}); ganzoo reads IDX files of at most {MAX_IDX_BYTES:,}")
    check_memory(size, f"reading {path}", error=DataError)
    raw = _read_upto(stream, size)
    if len(raw) != size or stream.read(1):
        raise DataError(f"{path} is truncated or padded: expected {count} items of shape {shape}")
    data = torch.frombuffer(raw, dtype=dtype)
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
