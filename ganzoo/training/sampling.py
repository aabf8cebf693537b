"""Sampling from a saved run: rebuild the generators from the checkpoint's manifest through the registry.

Besides the trained weights (``generator.<i>.*``) a checkpoint may hold other sets that plugins
saved as ``<set>.generator.<i>.*`` (the ema plugin's ``ema``); sampling prefers such a set.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from ganzoo.core.errors import GanzooError
from ganzoo.core.files import write_atomic
from ganzoo.core.host import Host
from ganzoo.core.safe_read import check_memory
from ganzoo.training.checkpoint import load_module, manifest_fields, open_checkpoint
from ganzoo.training.state_check import check_finite
from ganzoo.training.images import grid, png_bytes
from ganzoo.training.models import build_generators, check_fits
from ganzoo.training.images import sample_blocks
from ganzoo.training.resume import require_parts, resolve_device

RAW = "raw"
CHUNK = 256  # samples per generator call: bounds the activations of a large --n


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


def sample_grid(host: Host, run_dir: Path, out: Path, *, count: int, generator: int | None = None,
                columns: int = 8, seed: int = 0, device: str = "cpu", weights: str = "auto") -> tuple[Path, str]:
    """Write a grid of `count` samples per generator to `out`; return it and the weights used."""
    check_seed(seed)
    out = Path(out)
    try:
        if not out.parent.is_dir():
            raise GanzooError(f"output folder {out.parent} does not exist")
    except OSError as exc:
        raise GanzooError(f"cannot write {out}: {exc.strerror or exc}") from None
    generators, manifest = load_generators(host, run_dir, device, weights)
    n = len(generators)
    if generator is not None and generator > n:
        raise GanzooError(f"--generator {generator}: this run has {n} generator{'s' if n > 1 else ''}")
    picked = list(range(n)) if generator is None else [generator - 1]
    with manifest_fields(str(run_dir)):
        z_dim = int(manifest["config"]["z_dim"])
        need = grid_bytes(count, len(picked), manifest["image_shape"], columns, z_dim)
    check_memory(need, f"a grid of {count} samples per generator", hint="; lower --n or --columns")
    device_ = next(generators.parameters()).device
    rng = torch.Generator(device_).manual_seed(seed)
    columns_of_z = 1 if manifest["config"].get("shared_z", True) else n
    z = torch.randn(count, columns_of_z, z_dim, generator=rng, device=device_).expand(-1, n, -1)[:, picked]
    chosen = torch.nn.ModuleList([generators[i] for i in picked])
    chunks = [sample_blocks(chosen, z[start:start + CHUNK]) for start in range(0, count, CHUNK)]  # bounded activations
    blocks = [torch.cat([chunk[i].cpu() for chunk in chunks]) for i in range(len(picked))]
    write_atomic(out, png_bytes(grid(blocks, columns=columns)))
    return out, manifest["weights"]
