"""Sample grids for the HTML report: which epochs to embed (evenly spaced, capped), each PNG read
safely, downscaled when wide, inlined as base64, and shown in a stepper that works without JS."""

from __future__ import annotations

import base64
import io
import os
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

from ganzoo.core.errors import GanzooError
from ganzoo.core.safe_read import read_bounded

MAX_FRAMES = 12  # grids per run at most: the first, the last and evenly spaced ones between
MAX_WIDTH = 512  # wider grids are downscaled to this many pixels
MAX_PNG_BYTES = 16 << 20  # a sample grid is ~30 kB; refuse to read anything absurd
MAX_PIXELS = 1 << 24  # 16 megapixels; a grid of 256 28x28 samples has 0.2
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPOCH_FILE = re.compile(r"^epoch-(\d{1,9})\.png$")


@dataclass(frozen=True)
class Frame:
    epoch: int
    uri: str  # data:image/png;base64,...
    width: int
    height: int


@dataclass(frozen=True)
class Grids:
    """The grids chosen for one run, and how many of its grids were left out (or failed to read)."""

    frames: list[Frame]
    total: int
    unreadable: int = 0


def sample_files(run_dir: Path) -> list[tuple[int, str]]:
    """(epoch, file name) of run_dir/samples/epoch-NNNN.png, by epoch; symlinks and other files are ignored.
    Names, not paths, and no stat per file where the file system gives the type: a run of many epochs
    has many grids."""
    folder = run_dir / "samples"
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            match = EPOCH_FILE.match(entry.name)
            if match and not entry.is_symlink() and entry.is_file():
                found.append((int(match.group(1)), entry.name))
    return sorted(found)


def evenly_spaced(count: int, cap: int) -> list[int]:
    """cap indices out of range(count), evenly spaced, always the first and the last."""
    if count <= cap:
        return list(range(count))
    if cap <= 1:
        return [count - 1]
    return sorted({round(i * (count - 1) / (cap - 1)) for i in range(cap)})


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (which the format puts first)."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return 0, 0
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def png_uri(path: Path, max_width: int = MAX_WIDTH) -> tuple[str, int, int]:
    """The PNG at path as a data URI and its size, downscaled to max_width when wider (and Pillow is there)."""
    data = read_bounded(path, "sample grid", MAX_PNG_BYTES, follow=False)
    if not data.startswith(PNG_MAGIC):
        raise GanzooError(f"{path} is not a PNG file")
    width, height = png_size(data)
    if width * height > MAX_PIXELS:  # a few kB can claim gigapixels: never decode such a file
        raise GanzooError(f"{path} is {width} x {height} pixels; a sample grid has far fewer")
    try:
        from PIL import Image
    except ImportError:  # torchvision brings Pillow; without it the grid goes in as it is
        Image = None
    if Image is not None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.width > max_width:
                    height = max(1, round(image.height * max_width / image.width))
                    small = image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode)
                    small = small.resize((max_width, height), Image.Resampling.LANCZOS)
                    buffer = io.BytesIO()
                    small.save(buffer, format="PNG", optimize=True)
                    data = buffer.getvalue()
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise GanzooError(f"{path} is not a readable PNG ({exc})") from None
    return ("data:image/png;base64," + base64.b64encode(data).decode("ascii"), *png_size(data))


def pick_grids(run_dir: Path, cap: int = MAX_FRAMES) -> Grids:
    files = sample_files(run_dir)
    frames, unreadable = [], 0
    for index in evenly_spaced(len(files), cap):
        epoch, name = files[index]
        try:
            frames.append(Frame(epoch, *png_uri(run_dir / "samples" / name)))
        except GanzooError:
            unreadable += 1  # one broken grid should not cost the whole report
    return Grids(frames, len(files), unreadable)


def stepper_css(cap: int = MAX_FRAMES) -> str:
    """Rules showing the grid whose radio button is checked; no script needed."""
    rules = [".stepper > input[type=radio]{position:absolute;opacity:0;width:1px;height:1px}",
             ".stepper .frames > figure{display:none;margin:0}"]
    for k in range(1, cap + 1):
        rules.append(f".stepper > input:nth-of-type({k}):checked ~ .frames > figure:nth-child({k}){{display:block}}")
        rules.append(f".stepper > input:nth-of-type({k}):checked ~ .picks > label:nth-of-type({k}){{background:#4e79a7;color:#fff;border-color:#4e79a7}}")
        rules.append(f".stepper > input:nth-of-type({k}):focus-visible ~ .picks > label:nth-of-type({k}){{outline:2px solid #f28e2b}}")
    return "\n".join(rules)


# Adds a slider to every stepper, kept in step with its radio buttons (which work without it).
STEPPER_JS = """
document.querySelectorAll('.stepper').forEach(function (stepper) {
  var radios = stepper.querySelectorAll(':scope > input[type=radio]');
  if (radios.length < 2) return;
  var slider = document.createElement('input');
  slider.type = 'range';
  slider.min = 0;
  slider.max = radios.length - 1;
  slider.className = 'slider';
  slider.setAttribute('aria-label', 'epoch');
  radios.forEach(function (radio, i) {
    if (radio.checked) slider.value = i;
    radio.addEventListener('change', function () { slider.value = i; });
  });
  slider.addEventListener('input', function () { radios[Number(slider.value)].checked = true; });
  stepper.querySelector('.picks').before(slider);
});
"""


def display_size(frame: Frame, box: tuple[int, int]) -> str:
    """width and height attributes that fit the grid in box, enlarging small grids up to 2x."""
    if frame.width <= 0 or frame.height <= 0:
        return ""
    scale = min(box[0] / frame.width, box[1] / frame.height, 2.0)
    return f' width="{round(frame.width * scale)}" height="{round(frame.height * scale)}"'


def stepper_html(key: str, title: str, grids: Grids, note: str = "", box: tuple[int, int] = (360, 900)) -> str:
    """A figure per chosen grid, radio buttons to choose one (the last is shown), and a caption
    saying what was left out. Grids are drawn to fit box (width, height) in CSS pixels."""
    if not grids.frames:
        return f'<p class="muted">{escape(title)}: no sample grids.</p>'
    last = len(grids.frames) - 1
    inputs, labels, figures = [], [], []
    for i, frame in enumerate(grids.frames):
        ident = f"{key}-{i}"
        checked = " checked" if i == last else ""
        inputs.append(f'<input type="radio" name="{key}" id="{ident}"{checked}>')
        labels.append(f'<label for="{ident}">{frame.epoch}</label>')
        figures.append(f'<figure><img src="{frame.uri}"{display_size(frame, box)} alt="{escape(title)}, samples after epoch {frame.epoch}">'
                       f'<figcaption>{escape(title)}: epoch {frame.epoch}</figcaption></figure>')
    whose = "epoch's grid" if grids.total == 1 else "epochs' grids"
    shown = f"{len(grids.frames)} of {grids.total} {whose} embedded"
    if len(grids.frames) + grids.unreadable < grids.total:
        shown += " (evenly spaced; the others are in the run's samples/ folder)"
    if grids.unreadable:
        shown += f"; {grids.unreadable} could not be read"
    return (f'<div class="stepper">{"".join(inputs)}<div class="frames">{"".join(figures)}</div>'
            f'<div class="picks" role="group" aria-label="epoch"><span class="muted">epoch</span>{"".join(labels)}</div>'
            f'<p class="muted small">{escape(shown)}{escape(note)}</p></div>')
