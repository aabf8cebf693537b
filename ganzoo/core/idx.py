"""IDX files (the MNIST format), read without trusting them: regular files only, no more read or
decompressed than the header declares, big-endian values turned into tensors."""

from __future__ import annotations

import gzip
import os
import zlib
from math import prod
from pathlib import Path
from typing import BinaryIO

import torch

from ganzoo.core.errors import DataError
from ganzoo.core.safe_read import check_memory, open_regular

MAX_IDX_BYTES = 1 << 34  # 16 GiB of data in one IDX file: far above MNIST's 47 MB, and a bound on what a header may ask for
IDX_DTYPES = {0x08: torch.uint8, 0x09: torch.int8, 0x0B: torch.int16, 0x0C: torch.int32, 0x0D: torch.float32}


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
