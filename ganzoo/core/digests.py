"""Hashes of files and of image data, for verifying downloads and keying caches."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganzoo.core.errors import DataError, GanzooError
from ganzoo.core.safe_read import open_regular

if TYPE_CHECKING:
    from ganzoo.core.parts import ImageData


def _file_digest(path: Path, digest: Any, what: str, error: type[GanzooError] = GanzooError) -> str:
    """The hex digest of a regular file's bytes (a FIFO or a device is refused, not waited on)."""
    with os.fdopen(open_regular(path, what, error=error), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def md5(path: Path) -> str:
    return _file_digest(path, hashlib.md5(), "data file", DataError)


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


def file_sha256(path: Path) -> str:
    return _file_digest(path, hashlib.sha256(), "file")


def data_hash(data: ImageData) -> str:
    """The sha256 of a split's images (and labels, when it has them)."""
    if data.digest is not None:
        return data.digest
    digest = hashlib.sha256()
    rows = max(1, (64 << 20) // max(1, data.images[:1].numel()))  # 64 MB at a time: no copy of a large split
    for start in range(0, len(data.images), rows):
        digest.update(data.images[start:start + rows].contiguous().numpy().data)
    if data.labels is not None:
        digest.update(data.labels.contiguous().numpy().tobytes())
    return digest.hexdigest()
