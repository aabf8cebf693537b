"""Tensor files: safetensors with a JSON manifest in the metadata and the sha256 of every tensor
beside it, written atomically and read back with every field checked. No pickle anywhere: a file
that is not a well-formed file of this kind is refused with a CheckpointError before anything in
it is used. Run checkpoints (``ganzoo.runs.checkpoint``), the LeNet weights and the cached real
features are all files of this kind.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_bytes

from ganzoo.core.errors import CheckpointError
from ganzoo.core.files import write_atomic
from ganzoo.core.safe_read import TooDeep, check_memory, loads_json, open_regular, read_exactly

FORMAT_VERSION = 1
MANIFEST_KEY = "ganzoo"
CHECKSUMS_KEY = "ganzoo.sha256"  # {tensor name: sha256 of its bytes}, beside the manifest; absent in files before 0.2
HEADER_LIMIT = 100_000_000  # safetensors' own cap on the JSON header
MAX_DIMS, MAX_SIDE = 16, 1 << 40  # a tensor's dimensions, and each one's size: far above any real one
PICKLE_MAGICS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")  # torch.save zips, pickles
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
          "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def _bytes_of(tensor: torch.Tensor) -> memoryview:
    """The raw bytes safetensors stores for a contiguous CPU tensor."""
    return memoryview(tensor.reshape(-1).view(torch.uint8).numpy())


def encode_tensor_file(tensors: dict[str, torch.Tensor], manifest: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file: safetensors with the manifest as JSON in its metadata, and
    the sha256 of every tensor's data beside it."""
    flat = {}
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"checkpoint entry {name!r} is a {type(tensor).__name__}, not a tensor "
                                  f"(a plugin's ganzoo_add_checkpoint_tensors may add only tensors)")
        if tensor.dtype not in DTYPES.values() or tensor.layout != torch.strided:
            raise CheckpointError(f"checkpoint tensor {name!r} is a {tensor.layout} {tensor.dtype} tensor; "
                                  f"checkpoints hold dense {', '.join(str(d).removeprefix('torch.') for d in DTYPES.values())} tensors")
        flat[name] = tensor.detach().to("cpu").contiguous().clone()
    checksums = {name: hashlib.sha256(_bytes_of(t)).hexdigest() for name, t in flat.items()}
    metadata = {MANIFEST_KEY: json.dumps({**manifest, "format": FORMAT_VERSION}, sort_keys=True),
                CHECKSUMS_KEY: json.dumps(checksums, sort_keys=True)}
    return save_bytes(flat, metadata=metadata)


def save_tensor_file(path: Path, tensors: dict[str, torch.Tensor], manifest: dict[str, Any]) -> None:
    """Write tensors and manifest to path atomically (temp file, fsync, rename)."""
    write_atomic(path, encode_tensor_file(tensors, manifest))


@dataclass(frozen=True)
class Entry:
    """Where one tensor lies in a checkpoint file (start and end are offsets in the file)."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    end: int


class TensorFile:
    """An open checkpoint whose header is read and checked; tensor data is read on demand.

    Only the header is read on opening, so that the names, shapes and dtypes (``meta()``) can be
    checked against what a run builds before any tensor data is read or memory allocated for it.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd = open_regular(path, "checkpoint", error=CheckpointError)
        try:
            self.manifest, self.entries, self._checksums = _parse(self._fd, path)
        except BaseException:
            self.close()
            raise

    def meta(self, names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Tensors of the right names, shapes and dtypes on the meta device: no data, no memory."""
        return {name: torch.empty(self.entries[name].shape, dtype=self.entries[name].dtype, device="meta")
                for name in (self.entries if names is None else names)}

    def read(self, names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """The tensors (all, or those named), each checked against its sha256 when the file has them."""
        names = list(self.entries if names is None else names)
        need = sum(self.entries[n].end - self.entries[n].start for n in names)
        check_memory(need, f"reading the checkpoint {self.path}", error=CheckpointError)
        return {name: self._tensor(name) for name in names}

    def _tensor(self, name: str) -> torch.Tensor:
        entry = self.entries[name]
        try:
            data = read_exactly(self._fd, entry.start, entry.end - entry.start)
        except OSError as exc:
            raise CheckpointError(f"cannot read the checkpoint {self.path}: {exc.strerror or exc}") from None
        if self._checksums is not None and hashlib.sha256(data).hexdigest() != self._checksums[name]:
            raise CheckpointError(f"{self.path} is corrupted: the data of tensor {name!r} fails its sha256 checksum")
        if not data:
            return torch.zeros(entry.shape, dtype=entry.dtype)
        return torch.frombuffer(data, dtype=entry.dtype).reshape(entry.shape)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_tensor_file(path: Path) -> TensorFile:
    """Open a tensor file and check its header."""
    return TensorFile(Path(path))


def read_tensor_file(path: Path, check: Callable[[dict[str, torch.Tensor], dict[str, Any]], None] | None = None
                     ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by save_tensor_file; raise CheckpointError on anything else.

    ``check(meta_tensors, manifest)``, when given, runs after the header is read and before any
    tensor data is: it raises to refuse a file whose names, shapes or dtypes do not fit.
    """
    with open_tensor_file(path) as checkpoint:
        if check is not None:
            check(checkpoint.meta(), checkpoint.manifest)
        return checkpoint.read(), checkpoint.manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """A checkpoint's manifest, reading only its header."""
    with open_tensor_file(path) as checkpoint:
        return checkpoint.manifest


def _parse(fd: int, path: Path) -> tuple[dict[str, Any], dict[str, Entry], dict[str, str] | None]:
    """Read and check a safetensors header: 8-byte little-endian length, JSON, tensors that tile the data."""
    size = os.fstat(fd).st_size
    try:
        first = bytes(read_exactly(fd, 0, min(size, 9)))
        length = int.from_bytes(first[:8], "little")
        shaped = size > 8 and length <= size - 8 and first[8:9] == b"{"  # a header length that can start with a pickle opcode
        if not shaped and first.startswith(PICKLE_MAGICS):
            raise CheckpointError(f"{path} looks like a pickled PyTorch file; ganzoo reads only safetensors checkpoints and never unpickles")
        if size < 8 or length > size - 8 or length > HEADER_LIMIT:
            raise CheckpointError(f"{path} is truncated or not a safetensors file")
        raw = read_exactly(fd, 8, length)
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc.strerror or exc}") from None
    try:
        header = loads_json(raw)
        metadata = header["__metadata__"]
        manifest = loads_json(metadata[MANIFEST_KEY])
    except TooDeep as exc:
        raise CheckpointError(f"{path} is not a ganzoo checkpoint: its header holds {exc}") from None
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path} is not a ganzoo checkpoint (no ganzoo manifest in its metadata)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {manifest.get('format') if isinstance(manifest, dict) else '?'}; "
            f"this ganzoo reads format {FORMAT_VERSION}"
        )
    entries = _entries(header, 8 + length, size, path)
    return manifest, entries, _checksums(metadata, entries, path)


def _entries(header: dict[str, Any], data_start: int, size: int, path: Path) -> dict[str, Entry]:
    def start_of(name: str) -> int:
        offsets = header[name].get("data_offsets") if isinstance(header[name], dict) else None
        return offsets[0] if isinstance(offsets, list) and offsets and type(offsets[0]) is int else -1

    entries, end = {}, 0
    for name in sorted((n for n in header if n != "__metadata__"), key=lambda n: (start_of(n), n)):
        info = header[name] if isinstance(header[name], dict) else {}
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if (not isinstance(dtype, str) or dtype not in DTYPES or not isinstance(shape, list) or len(shape) > MAX_DIMS
                or not all(type(d) is int and 0 <= d <= MAX_SIDE for d in shape)
                or not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)):
            raise CheckpointError(f"{path} is not a valid safetensors file: tensor {name!r} has a malformed entry")
        start, stop = offsets
        if start != end or stop - start != prod(shape) * DTYPES[dtype].itemsize:
            raise CheckpointError(f"{path} is not a valid safetensors file: the data of tensor {name!r} is misplaced or of the wrong size")
        entries[name] = Entry(DTYPES[dtype], tuple(shape), data_start + start, data_start + stop)
        end = stop
    if data_start + end != size:
        raise CheckpointError(f"{path} is truncated or padded: its tensors need {data_start + end:,} bytes, the file has {size:,}")
    return entries


def _checksums(metadata: dict[str, Any], entries: dict[str, Entry], path: Path) -> dict[str, str] | None:
    if CHECKSUMS_KEY not in metadata:
        return None  # written before checksums existed
    try:
        checksums = loads_json(metadata[CHECKSUMS_KEY])
    except (ValueError, TypeError):
        checksums = None
    if not isinstance(checksums, dict) or set(checksums) != set(entries) or not all(isinstance(v, str) for v in checksums.values()):
        raise CheckpointError(f"{path} is corrupted: its table of sha256 checksums does not match its tensors")
    return checksums
