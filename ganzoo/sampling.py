"""Sampling from a saved run: rebuild the generators from the checkpoint's manifest through the registry.

Besides the trained weights (``generator.<i>.*``) a checkpoint may hold other sets that plugins
saved as ``<set>.generator.<i>.*`` (the ema plugin's ``ema``); sampling prefers such a set.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganzoo.checkpoint import load_module, manifest_fields, read_checkpoint
from ganzoo.errors import GanzooError
from ganzoo.files import write_atomic
from ganzoo.host import Host
from ganzoo.images import grid, png_bytes
from ganzoo.models import build_generators, check_fits
from ganzoo.trainer import require_parts, resolve_device, sample_blocks

RAW = "raw"


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
    returned has the choice under "weights"."""
    target = resolve_device(device)
    tensors, manifest = read_checkpoint(checkpoint)
    chosen = choose_weights(tensors, weights)
    if chosen != RAW:  # read the set under the trained weights' names: the same checks apply
        start = chosen + "."
        tensors = {**tensors, **{k[len(start):]: v for k, v in tensors.items() if k.startswith(start + "generator.")}}
    with manifest_fields(str(checkpoint)):
        require_parts(host, manifest, ("architecture",))
        config = manifest["config"]
        arch = host.registry.get("architecture", manifest["architecture"])
        n_gens, z_dim, channels = int(config["n_gens"]), int(config["z_dim"]), int(manifest["image_shape"][0])
    check_fits(arch, tensors, n_gens=n_gens, z_dim=z_dim, channels=channels)
    generators = build_generators(arch, n_gens, z_dim, channels, 0)
    for i, g in enumerate(generators):
        load_module(f"generator.{i}", g, tensors)
    return generators.to(target), {**manifest, "weights": chosen}


def sample_grid(host: Host, run_dir: Path, out: Path, *, count: int, generator: int | None = None,
                columns: int = 8, seed: int = 0, device: str = "cpu", weights: str = "auto") -> tuple[Path, str]:
    """Write a grid of `count` samples per generator to `out`; return it and the weights used."""
    generators, manifest = load_generators(host, run_dir, device, weights)
    n = len(generators)
    if generator is not None and generator > n:
        raise GanzooError(f"--generator {generator}: this run has {n} generator{'s' if n > 1 else ''}")
    z_dim = manifest["config"]["z_dim"]
    device_ = next(generators.parameters()).device
    rng = torch.Generator(device_).manual_seed(seed)
    columns_of_z = 1 if manifest["config"].get("shared_z", True) else n
    z = torch.randn(count, columns_of_z, z_dim, generator=rng, device=device_).expand(-1, n, -1)
    blocks = sample_blocks(generators, z)
    if generator is not None:
        blocks = [blocks[generator - 1]]
    out = Path(out)
    if not out.parent.is_dir():
        raise GanzooError(f"output folder {out.parent} does not exist")
    write_atomic(out, png_bytes(grid(blocks, columns=columns)))
    return out, manifest["weights"]
