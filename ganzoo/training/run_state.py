"""The resumable state of a training run, as one dataclass, and its checkpoint form.

A checkpoint holds the weights and optimizer states of every discriminator and generator, the random
number generators, the fixed sample z, the counters and the metric sums of the epoch so far; the
trainer adds a manifest of the run's settings and parts. ``ganzoo.runs.checkpoint`` names the
tensors and ``ganzoo.core.tensorfile`` encodes and checks the file.

Tensor names: ``generator.<i>.*`` and ``optimizer.generator.<i>.*``; a run's one discriminator is
``discriminator.*`` and ``optimizer.discriminator.*``; several are ``discriminator.<name>.*`` and
``optimizer.discriminator.<name>.*``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo.runs.checkpoint import load_module, load_optimizer, module_tensors, optimizer_tensors
from ganzoo.training.clock import TrainClock
from ganzoo.training.meter import Meter


@dataclass
class RunState:
    """Everything the next step depends on (the data order needs no state: epoch e's order is a
    permutation seeded by (seed, e))."""

    generators: nn.ModuleList
    discriminators: nn.ModuleDict  # by name, in the order the input policy asked for them
    g_optimizers: list[torch.optim.Optimizer]  # made after ganzoo_on_models_built (plugins may tie layers first)
    d_optimizers: dict[str, torch.optim.Optimizer]
    z_rng: torch.Generator
    sample_z: Tensor  # (sample_count, N, z_dim): the fixed z of the sample grids
    meter: Meter
    step: int = 0
    epoch: int = 0
    rollbacks: int = 0
    clock: TrainClock = field(default_factory=TrainClock)  # training time (--minutes, --eval-every 60s)

    def d_prefix(self, name: str) -> str:
        """The checkpoint name of a discriminator: "discriminator" when the run has one."""
        return "discriminator" if len(self.discriminators) == 1 else f"discriminator.{name}"

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer by its checkpoint name (less the "optimizer." in front)."""
        named = {self.d_prefix(name): o for name, o in self.d_optimizers.items()}
        named.update({f"generator.{i}": o for i, o in enumerate(self.g_optimizers)})
        return named

    def modules(self) -> dict[str, nn.Module]:
        """Every network by its checkpoint name."""
        named = {self.d_prefix(name): d for name, d in self.discriminators.items()}
        named.update({f"generator.{i}": g for i, g in enumerate(self.generators)})
        return named

    def tensors(self) -> dict[str, Tensor]:
        """Every tensor of the state, by checkpoint name."""
        tensors: dict[str, Tensor] = {}
        for name, module in self.modules().items():
            tensors.update(module_tensors(name, module))
        for name, optimizer in self.optimizers().items():
            tensors.update(optimizer_tensors(f"optimizer.{name}", optimizer)[0])
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.z"] = self.z_rng.get_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.stack(torch.cuda.get_rng_state_all())
        tensors["sample_z"] = self.sample_z
        tensors.update(self.meter.tensors())
        return tensors

    def manifest(self) -> dict[str, Any]:
        """The state's part of the checkpoint manifest: counters, optimizer groups, Python's RNG."""
        groups = {name: optimizer_tensors(f"optimizer.{name}", o)[1] for name, o in self.optimizers().items()}
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
        it by ``ganzoo.training.resume.check_restorable``). With ``exact_z`` False (a checkpoint of
        another device kind: CPU and CUDA generator states differ) the z stream is left for the
        caller to restart."""
        for name, module in self.modules().items():
            load_module(name, module, tensors)
        for name, optimizer in self.optimizers().items():
            load_optimizer(f"optimizer.{name}", optimizer, tensors, manifest["optimizer_groups"][name])
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
