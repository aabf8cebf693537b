"""Decoding one image file into the cache's form: uint8, square, R x R, 1 or 3 channels.

How every kind of image is converted (docs/own-images.md says the same):

- EXIF orientation is applied first, so the crop is taken from the upright picture.
- GIF, WebP and TIFF with several frames: the first frame.
- 16-bit and 32-bit integer images (PNG, TIFF) are scaled to 8 bits (v / 257, rounded); float
  images are read as [0, 1]. (PIL's own conversion clips them instead.)
- Palette images become RGB (RGBA when the palette has transparency); bilevel images grey.
- Transparency is composited over white (a transparent background looks white in a viewer).
- CMYK, YCbCr, LAB and HSV become RGB by PIL's conversion (embedded ICC profiles are not applied).
- Channels: 1 is PIL's luma (ITU-R 601-2: 0.299 R + 0.587 G + 0.114 B); 3 repeats a grey image.
- Size: the centre square of the shorter side, resized to R x R with PIL's Lanczos filter, which
  PIL applies antialiased (its support widens with the scale), as StyleGAN's dataset tool does:
  cropping keeps the aspect ratio (no stretched faces), and an antialiased filter keeps the
  downscaled images free of the aliasing that FID is known to punish (clean-fid, Parmar et al. 2022).
  A JPEG much larger than R is decoded at a reduced DCT scale (never below 2 R) first, which is
  several times faster and averages pixels the same way.

Files are read through a descriptor opened without blocking (a FIFO swapped in cannot hang the
read), bounded in size, and refused above PIL's decompression-bomb limit.
"""

from __future__ import annotations

import io
import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

from ganzoo.core.safe_read import kind_of, read_exactly

MAX_FILE_BYTES = 512 << 20
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # PIL's limit (about 9,459 x 9,459): above it, a decompression bomb
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
HEADER_BYTES = 1 << 20  # enough for any header, EXIF included
CHANGED = "changed while it was read"


class Skip(Exception):
    """This file cannot be used; the message says why in a few words."""


def _read(folder: str, relpath: str, size: int, mtime_ns: int, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's first ``limit`` bytes (all of it by default), if it is still the regular file the
    scan found; opened without blocking, so that a FIFO swapped in cannot hang the read."""
    try:
        fd = os.open(os.path.join(folder, relpath), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Skip(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Skip(f"not a regular file (a {kind_of(info.st_mode)})")
        if info.st_size != size or info.st_mtime_ns != mtime_ns:
            raise Skip(CHANGED)
        if size > MAX_FILE_BYTES:
            raise Skip(f"{size:,} bytes, above the {MAX_FILE_BYTES >> 20} MiB limit")
        try:
            return bytes(read_exactly(fd, 0, min(size, limit)))
        except OSError as exc:
            raise Skip(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def _open(data: bytes) -> Image.Image:
    """The image, its header checked against the decompression-bomb limit."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Skip(f"declares more than {MAX_PIXELS:,} pixels (a decompression bomb?)") from None
        except Exception as exc:
            raise Skip(_why(exc)) from None
    if image.width < 1 or image.height < 1:
        raise Skip(f"declares a size of {image.width}x{image.height}")
    return image


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image PIL can read"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def header(folder: str, relpath: str, size: int, mtime_ns: int) -> tuple[str, int, int]:
    """(mode, width, height) of one file, read from its header."""
    image = _open(_read(folder, relpath, size, mtime_ns, HEADER_BYTES))
    return image.mode, image.width, image.height


def _eight_bit(image: Image.Image) -> Image.Image:
    """Any mode to one of L, LA, RGB, RGBA (see the module's docstring)."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        values = np.asarray(image).astype(np.int64).clip(0, 65535)
        return Image.fromarray(((values + 128) // 257).astype(np.uint8), "L")
    if mode == "F":
        return Image.fromarray((np.nan_to_num(np.asarray(image, dtype=np.float64)).clip(0, 1) * 255).round().astype(np.uint8), "L")
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        return image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
    if mode == "La":
        return image.convert("LA")
    if mode == "RGBa":
        return image.convert("RGBA")
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def _flatten(image: Image.Image) -> Image.Image:
    """Transparency composited over white."""
    if image.mode not in ("LA", "RGBA"):
        return image
    base = image.mode[:-1]
    white = Image.new(base, image.size, 255 if base == "L" else (255, 255, 255))
    white.paste(image.convert(base), mask=image.getchannel("A"))
    return white


def decode(folder: str, relpath: str, size: int, mtime_ns: int, resolution: int, channels: int) -> bytes:
    """The file as resolution x resolution x channels uint8, channel-first (C, R, R), as bytes."""
    image = _open(_read(folder, relpath, size, mtime_ns))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's notes on odd EXIF or palette transparency
            if image.format == "JPEG":
                scale = 2 * resolution / min(image.size)
                if scale < 1:
                    image.draft("L" if channels == 1 else "RGB", (int(image.width * scale) + 1, int(image.height * scale) + 1))
            image.seek(0)
            image = ImageOps.exif_transpose(image)
            image = _flatten(_eight_bit(image))
            image = image.convert("L" if channels == 1 else "RGB")
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            if image.size != (resolution, resolution):
                image = image.resize((resolution, resolution), Image.LANCZOS, box=(left, top, left + side, top + side))
            array = np.asarray(image, dtype=np.uint8)
    except Skip:
        raise
    except Exception as exc:  # truncated or corrupt data found while decoding
        raise Skip(_why(exc)) from None
    if channels == 1:
        return array.tobytes()
    return np.ascontiguousarray(array.transpose(2, 0, 1)).tobytes()


def headers(folder: str, items: list[tuple[str, int, int]]) -> list[tuple[str, int, int] | str]:
    """header() of many files (a worker's share): each a (mode, width, height) or why it was skipped."""
    out: list[tuple[str, int, int] | str] = []
    for relpath, size, mtime_ns in items:
        try:
            out.append(header(folder, relpath, size, mtime_ns))
        except Skip as exc:
            out.append(str(exc))
    return out


def decodes(folder: str, items: list[tuple[str, int, int]], resolution: int, channels: int) -> list[bytes | str]:
    """decode() of many files (a worker's share): each the image's bytes or why it was skipped."""
    out: list[bytes | str] = []
    for relpath, size, mtime_ns in items:
        try:
            out.append(decode(folder, relpath, size, mtime_ns, resolution, channels))
        except Skip as exc:
            out.append(str(exc))
    return out
