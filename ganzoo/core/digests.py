"""Hashes of files and of image data, for verifying downloads and keying caches."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from ganzoo.core.errors import DataError
from ganzoo.core.safe_read import open_regular

if TYPE_CHECKING:
    from ganzoo.core.parts import ImageData


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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_hash(data: ImageData) -> str:
    """The sha256 of a split's images (and labels, when it has them)."""
    digest = hashlib.sha256()
    digest.update(data.images.contiguous().numpy().tobytes())
    if data.labels is not None:
        digest.update(data.labels.contiguous().numpy().tobytes())
    return digest.hexdigest()
