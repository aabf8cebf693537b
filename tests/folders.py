"""Folders of real image files for the folder:PATH tests, made from the offline MNIST: each digit a
PNG or JPEG in a subfolder named by its class, as a user's labelled folder would be."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from ganzoo.core.data import default_root, load_data
from ganzoo.core.host import load_host

TINT = np.array([[255, 64, 64], [64, 255, 64], [64, 64, 255], [255, 255, 64], [255, 64, 255],
                 [64, 255, 255], [255, 160, 64], [160, 64, 255], [255, 255, 255], [128, 255, 128]], dtype=np.float32)


def mnist_digits(count: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The first `count` MNIST digits (count, 28, 28) uint8 and their labels."""
    data = load_data(load_host().registry, "mnist", default_root(), split)
    return data.images[:count, 0].numpy(), data.labels[:count].numpy()


def coloured(digit: np.ndarray, label: int, size: int) -> np.ndarray:
    """A digit resized to size x size (PIL bicubic) and tinted by its class: (size, size, 3) uint8."""
    grey = np.asarray(Image.fromarray(digit).resize((size, size), Image.BICUBIC), dtype=np.float32) / 255
    return (grey[..., None] * TINT[label]).round().astype(np.uint8)


def digit_folder(folder: Path, count: int = 200, size: int = 32, jpeg_every: int = 4, split: str = "train",
                 classes: bool = True) -> dict[str, np.ndarray]:
    """count MNIST digits as size x size RGB files under folder/<label>/ (every jpeg_every-th a JPEG,
    the rest PNG). Returns {relative path: the pixels written (H, W, 3)}."""
    digits, labels = mnist_digits(count, split)
    written = {}
    for i, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        pixels = coloured(digit, int(label), size)
        ext = "jpg" if jpeg_every and i % jpeg_every == jpeg_every - 1 else "png"
        name = f"{label}/{i:05d}.{ext}" if classes else f"{i:05d}.{ext}"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name, quality=95)
        written[name] = pixels
    return written


def stacked_folder(folder: Path, count: int, split: str = "train") -> None:
    """Stacked MNIST (ganzoo's loader, fixed seed) as 28x28 RGB PNG files."""
    data = load_data(load_host().registry, "stacked-mnist", default_root(), split)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(folder / f"{i:05d}.png")


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG file whose header declares width x height pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


def image_bytes(image: Image.Image, fmt: str, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()
