"""Sampling from a saved run: rebuild the generators from the checkpoint's manifest through the registry.

Besides the trained weights (``generator.<i>.*``) a checkpoint may hold other sets that plugins
saved as ``<set>.generator.<i>.*`` (the ema plugin's ``ema``); sampling prefers such a set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ganzoo.core.data import to_unit
from ganzoo.core.errors import CheckpointError, GanzooError
from ganzoo.core.files import write_atomic
from ganzoo.core.host import Host
from ganzoo.core.safe_read import check_memory
from ganzoo.runs.checkpoint import load_module, manifest_fields, open_checkpoint
from ganzoo.runs.images import grid, png_bytes
from ganzoo.runs.manifest import require_parts
from ganzoo.runs.models import build_generators, check_fits, resolve_device
from ganzoo.runs.state_check import check_finite

RAW = "raw"
CHUNK = 256  # samples per generator call: bounds the activations of a large --n (a multiple of 16: see Draw.chunks)
Progress = Callable[[str, int, int], None]  # progress(what, done, total), for a progress bar


def weight_sets(tensors: dict[str, torch.Tensor]) -> list[str]:
    """The names of the extra generator weight sets in a checkpoint's tensors, sorted."""
    return sorted({key.split(".generator.0.")[0] for key in tensors
                   if ".generator.0." in key and not key.startswith(("optimizer.", "generator.", "discriminator."))})


def choose_weights(tensors: dict[str, torch.Tensor], weights: str) -> str:
    """'auto' -> the first extra set when there is one, else 'raw'; a named set must exist."""
    sets = weight_sets(tensors)
    if weights == "auto":
        return sets[0] if sets else RAW
    if weights != RAW and weights not in sets:
        have = ", ".join([RAW, *sets])
        raise GanzooError(f"this checkpoint has no {weights!r} generator weights (it has: {have})")
    return weights


def load_generators(host: Host, checkpoint: Path, device: str = "cpu", weights: str = "auto") -> tuple[torch.nn.ModuleList, dict]:
    """The run's generators in eval-ready form, and its manifest. ``weights``: "auto" (a saved set
    such as ``ema`` when present, else the trained weights), "raw", or a set's name; the manifest
    returned has the choice under "weights".

    Only the header is read before the generators' names and shapes are checked against the
    architecture; then only the generator tensors are read, each against its checksum, and
    refused when one holds a NaN or an infinity (which would draw garbage, or crash FID's BLAS).
    """
    target = resolve_device(device)
    with open_checkpoint(checkpoint) as file:
        manifest = file.manifest
        chosen = choose_weights(file.entries, weights)
        sources = _generator_sources(file.entries, chosen)
        with manifest_fields(str(checkpoint)):
            require_parts(host, manifest, ("architecture",))
            config = manifest["config"]
            arch = host.registry.get("architecture", manifest["architecture"])
            n_gens, z_dim, channels = int(config["n_gens"]), int(config["z_dim"]), int(manifest["image_shape"][0])
            classes = run_classes(manifest)
        meta = file.meta(set(sources.values()))
        check_fits(arch, {name: meta[source] for name, source in sources.items()}, n_gens=n_gens, z_dim=z_dim, channels=channels,
                   classes=classes)
        stored = file.read(set(sources.values()))
    check_finite(stored, ("",), where=str(checkpoint))
    tensors = {name: stored[source] for name, source in sources.items()}
    generators = build_generators(arch, n_gens, z_dim, channels, 0, copies=1, classes=classes)
    for i, g in enumerate(generators):
        load_module(f"generator.{i}", g, tensors)
    return generators.to(target), {**manifest, "weights": chosen}


def run_classes(manifest: dict) -> int:
    """The number of classes a run's generators condition on (0: an unconditional run)."""
    if not manifest["config"].get("conditional", False):
        return 0
    classes = int(manifest.get("classes", 0))
    if classes < 1:
        raise CheckpointError("the manifest says the run is conditional but names no classes")
    return classes


def class_names(manifest: dict) -> tuple[str, ...]:
    """The names of a conditional run's classes, by label ("0", "1", ... when the data named none)."""
    names = manifest.get("class_names")
    classes = run_classes(manifest)
    if isinstance(names, list) and len(names) == classes:
        return tuple(str(name) for name in names)
    return tuple(str(k) for k in range(classes))


def _generator_sources(names: Iterable[str], chosen: str) -> dict[str, str]:
    """generator.<i>.<key> -> the stored tensor that gives it: the trained weights, or the chosen set's."""
    sources = {name: name for name in names if name.startswith("generator.")}
    if chosen != RAW:  # the set is read under the trained weights' names: the same checks apply
        start = chosen + "."
        sources.update({name[len(start):]: name for name in names if name.startswith(start + "generator.")})
    return sources


def check_seed(seed: int, flag: str = "--seed") -> int:
    if not 0 <= seed < 2**32:
        raise GanzooError(f"{flag} must be in [0, 2**32), got {seed}")
    return seed


def grid_bytes(count: int, n_gens: int, image_shape: list[int], columns: int, z_dim: int) -> int:
    """About how much memory a grid of count samples per generator takes: z, the images, the canvas."""
    c, h, w = (int(d) for d in image_shape)
    rows = -(-count // columns)
    canvas = n_gens * (rows * (h + 2) + 2 + 6) * (columns * (w + 2) + 2) * c  # as wide as `columns` even when count is fewer
    return count * n_gens * (z_dim + c * h * w) * 4 + canvas * (4 * 3 + 2)


def check_out_folder(out: Path) -> None:
    try:
        if not out.parent.is_dir():
            raise GanzooError(f"output folder {out.parent} does not exist")
    except OSError as exc:
        raise GanzooError(f"cannot write {out}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Draw:
    """The generators a sampling command draws from, and how: the picked ones (``indices``, 0-based
    in the run), their z layout, and the run's manifest (with the weights used under "weights")."""

    generators: torch.nn.ModuleList
    indices: tuple[int, ...]
    z_dim: int
    z_columns: int  # 1 when the run shares z among its generators, else one column of z per generator
    image_shape: tuple[int, int, int]
    manifest: dict
    classes: int = 0  # the classes a conditional run's generators take (0: unconditional)
    class_names: tuple[str, ...] = ()

    def chunks(self, position: int, count: int, seed: int, chunk: int = CHUNK,
               label: int | None = None) -> Iterator[torch.Tensor]:
        """Generator ``indices[position]``'s images for samples 0..count-1, ``chunk`` at a time, as
        uint8 (n, C, H, W) on the CPU. Sample i gets the same z whatever the chunk, the format or the
        other generators picked: z is drawn from ``seed`` in the order of a grid's (count, columns, z_dim).
        A conditional run's generators need ``label``, the class (0-based) every sample is drawn of."""
        device = next(self.generators.parameters()).device
        if self.classes and label is None:
            raise GanzooError("this run's generators are class-conditional: say which classes to draw")
        labels = None
        if label is not None:
            if not self.classes:
                raise GanzooError("this run is not class-conditional: it cannot draw by class")
            if not 0 <= label < self.classes:
                raise GanzooError(f"class {label} is not in [0, {self.classes})")
            labels = torch.full((count,), label, dtype=torch.long, device=device)
        rng = torch.Generator(device).manual_seed(seed)
        column = self.indices[position] if self.z_columns > 1 else 0
        generator = self.generators[position]
        generator.eval()
        for start in range(0, count, chunk):
            # chunks of a multiple of 16 draw the same normals as one draw of the whole (on the CPU)
            z = torch.randn(min(chunk, count - start), self.z_columns, self.z_dim, generator=rng, device=device)
            with torch.no_grad():
                if labels is None:
                    made = generator(z[:, column])
                else:
                    made = generator(z[:, column], labels[start:start + len(z)])
            yield made.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu()


def made_shape(generator: torch.nn.Module, z_dim: int, classes: int = 0) -> tuple[int, ...]:
    """The (C, H, W) of the images a generator makes: one image drawn in eval mode (no state changes)."""
    device = next(generator.parameters()).device
    mode = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            z = torch.zeros(1, z_dim, device=device)
            made = generator(z, torch.zeros(1, dtype=torch.long, device=device)) if classes else generator(z)
            return tuple(made.shape[1:])
    finally:
        generator.train(mode)


def open_draw(host: Host, run_dir: Path, *, generator: int | None = None, device: str = "cpu",
              weights: str = "auto") -> Draw:
    """Load a run's generators for sampling; ``generator`` (1-based) picks one of them."""
    generators, manifest = load_generators(host, run_dir, device, weights)
    n = len(generators)
    if generator is not None and not 1 <= generator <= n:  # 0 or -1 would pick from the end
        raise GanzooError(f"--generator {generator}: this run has {n} generator{'s' if n > 1 else ''}, numbered from 1")
    picked = tuple(range(n)) if generator is None else (generator - 1,)
    with manifest_fields(str(run_dir)):
        z_dim = int(manifest["config"]["z_dim"])
        image_shape = tuple(int(d) for d in manifest["image_shape"])
        z_columns = 1 if manifest["config"].get("shared_z", True) else n
        classes, names = run_classes(manifest), class_names(manifest)
    made = made_shape(generators[picked[0]], z_dim, classes)
    if made != image_shape:  # exports size their files by it: trust the images, never the manifest alone
        raise CheckpointError(f"{run_dir}: the manifest's image_shape is {list(image_shape)}, but the generators make "
                              f"{'x'.join(map(str, made))} images")
    return Draw(torch.nn.ModuleList([generators[i] for i in picked]), picked, z_dim, z_columns, image_shape, manifest, classes, names)


GRID_N = 64  # samples per generator of an unconditional grid
GRID_COLUMNS = 8  # images per row of an unconditional grid
CLASS_GRID_N = 8  # samples per class of a class-conditional run's grid (a row of 8 per class)
SHOWN_CLASSES = 20  # classes named in a line of output or an error; the rest are counted


@dataclass(frozen=True)
class Grid:
    """What ``write_grid`` wrote: where, with which weights, ``count`` samples per generator (per class
    of ``labels``, in row order, each class on ``rows_per_class`` rows; ``labels`` is () when unconditional)."""

    path: Path
    weights: str
    count: int
    columns: int
    labels: tuple[int, ...] = ()
    rows_per_class: int = 0


def write_grid(draw: Draw, out: Path, *, labels: tuple[int, ...] = (), count: int | None = None,
               columns: int | None = None, seed: int = 0, progress: Progress | None = None) -> Grid:
    """Write ``draw``'s grid to ``out`` as a PNG: one block of rows per generator (``images.grid``).

    Unconditional: ``count`` samples (default 64), ``columns`` (default 8) to a row. Class-conditional:
    in each block the classes ``labels`` (default: all) top to bottom, each starting a row of its own:
    ``count`` samples of it (default 8), ``columns`` (default ``count``, so one row per class) to a row,
    a class's last row padded with the background. Sample i of every class is drawn from z_i, the z of
    sample i of an unconditional grid (and of an export), so a column shows one z across the classes."""
    if not draw.classes:
        if labels:
            raise GanzooError("this run is not class-conditional: it cannot draw by class")
        count, columns = count or GRID_N, columns or GRID_COLUMNS
        need = grid_bytes(count, len(draw.indices), list(draw.image_shape), columns, draw.z_dim)
        check_memory(need, f"a grid of {count} samples per generator", hint="; lower --n or --columns")
        jobs: list[tuple[int | None, int]] = [(None, 0)]
    else:
        labels = labels or tuple(range(draw.classes))
        count = count or CLASS_GRID_N
        columns = columns or count
        padded = -(-count // columns) * columns
        need = grid_bytes(padded * len(labels), len(draw.indices), list(draw.image_shape), columns, draw.z_dim)
        check_memory(need, f"a grid of {count} samples of each of {len(labels)} classes per generator",
                     hint="; lower --n or --columns, or name fewer classes with --class")
        jobs = [(label, padded - count) for label in labels]
    blocks, done, total = [], 0, count * len(draw.indices) * len(jobs)
    for position in range(len(draw.indices)):
        parts = []
        for label, pad in jobs:
            drawn = []
            for images in draw.chunks(position, count, seed, label=label):  # bounded activations
                drawn.append(images)
                done += len(images)
                if progress is not None:
                    progress("samples", done, total)
            parts.append(to_unit(torch.cat(drawn)))
            if pad:  # the background's value (images.grid's canvas): the class's row ends blank
                parts.append(torch.full((pad, *draw.image_shape), -1.0))
        blocks.append(torch.cat(parts))
    write_atomic(out, png_bytes(grid(blocks, columns=columns)))
    rows = -(-count // columns) if labels else 0
    return Grid(out, draw.manifest["weights"], count, columns, tuple(labels), rows)


def pick_classes(draw: Draw, spec: str | None) -> tuple[int, ...]:
    """The labels (0-based) that a ``--class`` value names, in its order, each once: ``all``, or a
    comma list of labels and class names (a class's name wins over a label that reads the same; a
    name that holds a comma is taken whole). A conditional run without one: every class; an
    unconditional run: () without one, and an error with one."""
    if not draw.classes:
        if spec is None:
            return ()
        raise GanzooError("this run is not class-conditional (it was trained without --conditional): "
                          "--class has no classes to pick from")
    names = draw.class_names or tuple(str(k) for k in range(draw.classes))
    if spec is None or spec.strip().lower() == "all":
        return tuple(range(draw.classes))
    by_name: dict[str, int] = {}
    for label, name in enumerate(names):
        by_name.setdefault(name, label)
    picked: list[int] = []
    for token in [spec] if spec in by_name else spec.split(","):
        label = _class_of(token, by_name, names)
        if label not in picked:
            picked.append(label)
    return tuple(picked)


def _class_of(token: str, by_name: dict[str, int], names: tuple[str, ...]) -> int:
    from ganzoo.core.errors import shown, suggest

    for candidate in (token, token.strip()):
        if candidate in by_name:
            return by_name[candidate]
    text = token.strip()
    if not text:
        raise GanzooError(f"--class: an empty class in the list; {valid_classes(names)}")
    if text.isascii() and text.isdigit():
        if int(text) < len(names):
            return int(text)
        raise GanzooError(f"--class {text}: no such label; {valid_classes(names)}")
    close = suggest(text, names, n=3, cutoff=0.6) if not default_names(names) else []
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    raise GanzooError(f"--class: unknown class {shown(text)}{hint}; {valid_classes(names)}")


def default_names(names: tuple[str, ...]) -> bool:
    """True when the classes are named by their labels ("0", "1", ...): the data named none."""
    return names == tuple(str(k) for k in range(len(names)))


def valid_classes(names: tuple[str, ...]) -> str:
    """The classes a --class may name, for an error line (the first SHOWN_CLASSES of them by name)."""
    k = len(names)
    if default_names(names):
        return f"this run has {k} class{'es' if k != 1 else ''}, the labels 0 to {k - 1}"
    listed = ", ".join(f"{label}: {name}" for label, name in enumerate(names[:SHOWN_CLASSES]))
    more = f", ... ({k - SHOWN_CLASSES} more)" if k > SHOWN_CLASSES else ""
    return f"this run has {k} class{'es' if k != 1 else ''} (label: name): {listed}{more}"


def class_listing(names: tuple[str, ...], labels: tuple[int, ...]) -> str:
    """The classes ``labels``, in their order, for a line of output: "3, 7" or "3 (cat), 7 (dog)",
    the first SHOWN_CLASSES of them."""
    plain = default_names(names)
    items = [str(k) if plain else f"{k} ({names[k]})" for k in labels[:SHOWN_CLASSES]]
    more = f", ... ({len(labels)} classes)" if len(labels) > SHOWN_CLASSES else ""
    return ", ".join(items) + more
