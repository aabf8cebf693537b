"""What a checkpoint holds of a training run, and restoring a trainer from it: the weights and
optimizer states of D and every generator, the random number generators, the fixed sample z, the
metric sums of the epoch so far, and a manifest of the run's settings and parts.

``ganzoo.checkpoint`` encodes and checks the safetensors file; ``Trainer.save`` writes it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ganzoo import __version__
from ganzoo.checkpoint import load_module, load_optimizer, module_tensors, optimizer_tensors

if TYPE_CHECKING:
    from ganzoo.config import TrainConfig
    from ganzoo.host import Host
    from ganzoo.trainer import Trainer


def parts_plugins(host: Host, config: TrainConfig, arch: str) -> dict[str, dict[str, str]]:
    """Which plugin registered each part this run uses, for the checkpoint manifest."""
    used = {
        "strategy": config.strategy,
        "input policy": config.policy,
        "aggregation": config.aggregation,
        "architecture": arch,
        "dataset": config.dataset.partition(":")[0],
    }
    return {kind: {"name": name, "plugin": host.registry.entry(kind, name).plugin} for kind, name in used.items()}


def manifest(trainer: Trainer) -> dict[str, Any]:
    """The checkpoint's JSON manifest: versions, settings, parts, counters, Python's RNG state."""
    groups = {"discriminator": optimizer_tensors("optimizer.discriminator", trainer.d_optimizer)[1]}
    for i, optimizer in enumerate(trainer.g_optimizers):
        groups[f"generator.{i}"] = optimizer_tensors(f"optimizer.generator.{i}", optimizer)[1]
    return {
        "ganzoo_version": __version__,
        "strategy": trainer.config.strategy,
        "config": trainer.config.to_dict(),
        "architecture": trainer.arch_name,
        "image_shape": list(trainer.image_shape),
        "discriminator": {"packing": trainer.d_packing, "outputs": trainer.d_outputs},
        "data_source": trainer.data_source,
        "parts": parts_plugins(trainer.host, trainer.config, trainer.arch_name),
        "step": trainer.step,
        "epoch": trainer.epoch,
        "metric_count": trainer._count,
        "chance": trainer._chance,
        "rollbacks": trainer.rollbacks,
        "python_rng": random.getstate(),
        "optimizer_groups": groups,
    }


def tensors(trainer: Trainer) -> dict[str, Tensor]:
    """Every tensor of the run's state, by checkpoint name."""
    tensors = module_tensors("discriminator", trainer.discriminator)
    tensors.update(optimizer_tensors("optimizer.discriminator", trainer.d_optimizer)[0])
    for i, (g, optimizer) in enumerate(zip(trainer.generators, trainer.g_optimizers)):
        tensors.update(module_tensors(f"generator.{i}", g))
        tensors.update(optimizer_tensors(f"optimizer.generator.{i}", optimizer)[0])
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.z"] = trainer.z_rng.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    tensors["sample_z"] = trainer.sample_z
    tensors["metrics.sums"] = trainer._sums
    return tensors


def load(trainer: Trainer, tensors: dict[str, Tensor], manifest: dict[str, Any]) -> None:
    """Put a checkpoint's state into ``trainer`` (built with the same settings)."""
    load_module("discriminator", trainer.discriminator, tensors)
    load_optimizer("optimizer.discriminator", trainer.d_optimizer, tensors, manifest["optimizer_groups"]["discriminator"])
    for i, (g, optimizer) in enumerate(zip(trainer.generators, trainer.g_optimizers)):
        load_module(f"generator.{i}", g, tensors)
        load_optimizer(f"optimizer.generator.{i}", optimizer, tensors, manifest["optimizer_groups"][f"generator.{i}"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(tensors["rng.cuda"]))
    trainer.step, trainer.epoch = int(manifest["step"]), int(manifest["epoch"])
    try:
        trainer.z_rng.set_state(tensors["rng.z"].to(torch.uint8))
    except RuntimeError:
        # Saved on another kind of device (CPU and CUDA generator states differ): the z stream
        # cannot continue exactly, so it restarts from (seed, step).
        trainer.z_rng.manual_seed(trainer.config.seed * 1_000_003 + trainer.step)
    if trainer.world.rank:  # the checkpoint holds rank 0's z stream; the other ranks start their own
        trainer.z_rng.manual_seed(trainer.config.seed * 1_000_003 + trainer.step + 7919 * trainer.world.rank)
    trainer.sample_z = tensors["sample_z"].to(trainer.device)
    trainer._sums = tensors["metrics.sums"].to(trainer.device)
    trainer._count = trainer._done_before = int(manifest["metric_count"])
    trainer._chance = float(manifest["chance"])
    trainer.rollbacks = int(manifest.get("rollbacks", 0))
    version, state, gauss = manifest["python_rng"]
    random.setstate((version, tuple(state), gauss))
