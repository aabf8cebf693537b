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
        meta = file.meta(set(sources.values()))
        check_fits(arch, {name: meta[source] for name, source in sources.items()}, n_gens=n_gens, z_dim=z_dim, channels=channels)
        stored = file.read(set(sources.values()))
    check_finite(stored, ("",), where=str(checkpoint))
    tensors = {name: stored[source] for name, source in sources.items()}
    generators = build_generators(arch, n_gens, z_dim, channels, 0, copies=1)
    for i, g in enumerate(generators):
        load_module(f"generator.{i}", g, tensors)
    return generators.to(target), {**manifest, "weights": chosen}


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

    def chunks(self, position: int, count: int, seed: int, chunk: int = CHUNK) -> Iterator[torch.Tensor]:
        """Generator ``indices[position]``'s images for samples 0..count-1, ``chunk`` at a time, as
        uint8 (n, C, H, W) on the CPU. Sample i gets the same z whatever the chunk, the format or the
        other generators picked: z is drawn from ``seed`` in the order of a grid's (count, columns, z_dim)."""
        device = next(self.generators.parameters()).device
        rng = torch.Generator(device).manual_seed(seed)
        column = self.indices[position] if self.z_columns > 1 else 0
        generator = self.generators[position]
        generator.eval()
        for start in range(0, count, chunk):
            # chunks of a multiple of 16 draw the same normals as one draw of the whole (on the CPU)
            z = torch.randn(min(chunk, count - start), self.z_columns, self.z_dim, generator=rng, device=device)
            with torch.no_grad():
                made = generator(z[:, column])
            yield made.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu()


def made_shape(generator: torch.nn.Module, z_dim: int) -> tuple[int, ...]:
    """The (C, H, W) of the images a generator makes: one image drawn in eval mode (no state changes)."""
    device = next(generator.parameters()).device
    mode = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            return tuple(generator(torch.zeros(1, z_dim, device=device)).shape[1:])
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
    made = made_shape(generators[picked[0]], z_dim)
    if made != image_shape:  # exports size their files by it: trust the images, never the manifest alone
        raise CheckpointError(f"{run_dir}: the manifest's image_shape is {list(image_shape)}, but the generators make "
                              f"{'x'.join(map(str, made))} images")
    return Draw(torch.nn.ModuleList([generators[i] for i in picked]), picked, z_dim, z_columns, image_shape, manifest)


def sample_grid(host: Host, run_dir: Path, out: Path, *, count: int, generator: int | None = None,
                columns: int = 8, seed: int = 0, device: str = "cpu", weights: str = "auto",
                progress: Progress | None = None) -> tuple[Path, str]:
    """Write a grid of `count` samples per generator to `out`; return it and the weights used."""
    check_seed(seed)
    out = Path(out)
    check_out_folder(out)
    draw = open_draw(host, run_dir, generator=generator, device=device, weights=weights)
    need = grid_bytes(count, len(draw.indices), list(draw.image_shape), columns, draw.z_dim)
    check_memory(need, f"a grid of {count} samples per generator", hint="; lower --n or --columns")
    blocks, done, total = [], 0, count * len(draw.indices)
    for position in range(len(draw.indices)):
        parts = []
        for images in draw.chunks(position, count, seed):  # bounded activations
            parts.append(images)
            done += len(images)
            if progress is not None:
                progress("samples", done, total)
        blocks.append(to_unit(torch.cat(parts)))
    write_atomic(out, png_bytes(grid(blocks, columns=columns)))
    return out, draw.manifest["weights"]
