"""The resumable state of a training run, as one dataclass, and its checkpoint form.

A checkpoint holds the weights and optimizer states of D and every generator, the random number
generators, the fixed sample z, the counters and the metric sums of the epoch so far; the trainer
adds a manifest of the run's settings and parts. ``ganzoo.training.checkpoint`` encodes and checks
the safetensors file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo.training.clock import TrainClock
from ganzoo.training.checkpoint import load_module, load_optimizer, module_tensors, optimizer_tensors
from ganzoo.training.meter import Meter


@dataclass
class RunState:
    """Everything the next step depends on (the data order needs no state: epoch e's order is a
    permutation seeded by (seed, e))."""

    generators: nn.ModuleList
    discriminator: nn.Module
    g_optimizers: list[torch.optim.Optimizer]  # made after ganzoo_on_models_built (plugins may tie layers first)
    d_optimizer: torch.optim.Optimizer | None
    z_rng: torch.Generator
    sample_z: Tensor  # (sample_count, N, z_dim): the fixed z of the sample grids
    meter: Meter
    step: int = 0
    epoch: int = 0
    rollbacks: int = 0
    clock: TrainClock = field(default_factory=TrainClock)  # training time (--minutes, --eval-every 60s)

    def tensors(self) -> dict[str, Tensor]:
        """Every tensor of the state, by checkpoint name."""
        tensors = module_tensors("discriminator", self.discriminator)
        tensors.update(optimizer_tensors("optimizer.discriminator", self.d_optimizer)[0])
        for i, (g, optimizer) in enumerate(zip(self.generators, self.g_optimizers)):
            tensors.update(module_tensors(f"generator.{i}", g))
            tensors.update(optimizer_tensors(f"optimizer.generator.{i}", optimizer)[0])
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.z"] = self.z_rng.get_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.stack(torch.cuda.get_rng_state_all())
        tensors["sample_z"] = self.sample_z
        tensors.update(self.meter.tensors())
        return tensors

    def manifest(self) -> dict[str, Any]:
        """The state's part of the checkpoint manifest: counters, optimizer groups, Python's RNG."""
        groups = {"discriminator": optimizer_tensors("optimizer.discriminator", self.d_optimizer)[1]}
        for i, optimizer in enumerate(self.g_optimizers):
            groups[f"generator.{i}"] = optimizer_tensors(f"optimizer.generator.{i}", optimizer)[1]
        return {
            "step": self.step,
            "epoch": self.epoch,
            **self.meter.manifest(),
            "rollbacks": self.rollbacks,
            "train_seconds": self.clock.read(),
            "python_rng": random.getstate(),
            "optimizer_groups": groups,
        }

    def load(self, tensors: dict[str, Tensor], manifest: dict[str, Any], *, exact_z: bool = True) -> None:
        """Put a checkpoint's state into this one (built with the same settings, and checked against
        it by ``ganzoo.training.resume.read_for_restore``). With ``exact_z`` False (a checkpoint of
        another device kind: CPU and CUDA generator states differ) the z stream is left for the
        caller to restart."""
        load_module("discriminator", self.discriminator, tensors)
        load_optimizer("optimizer.discriminator", self.d_optimizer, tensors, manifest["optimizer_groups"]["discriminator"])
        for i, (g, optimizer) in enumerate(zip(self.generators, self.g_optimizers)):
            load_module(f"generator.{i}", g, tensors)
            load_optimizer(f"optimizer.generator.{i}", optimizer, tensors, manifest["optimizer_groups"][f"generator.{i}"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and torch.cuda.is_available():  # a checkpoint from a machine with more GPUs sets those it can
            torch.cuda.set_rng_state_all(list(tensors["rng.cuda"])[: torch.cuda.device_count()])
        self.step, self.epoch = int(manifest["step"]), int(manifest["epoch"])
        if exact_z:
            self.z_rng.set_state(tensors["rng.z"].to(torch.uint8))
        self.sample_z = tensors["sample_z"].to(self.sample_z.device)
        self.meter.load(tensors, manifest)
        self.rollbacks = int(manifest.get("rollbacks", 0))
        self.clock.seconds = float(manifest.get("train_seconds", 0.0))  # 0 for a checkpoint saved before 0.4
        version, state, gauss = manifest["python_rng"]
        random.setstate((version, tuple(state), gauss))
