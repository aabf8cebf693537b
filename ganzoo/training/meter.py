"""Running means of a run's metrics since the epoch began, kept on the device.

Every step adds D's loss and accuracy, each generator's loss and the parts' extra scalars
(``PolicyOutput.extras``, e.g. ``r1``) to sums on the device; nothing is read to the host until a
logging point calls ``read`` (one sync). The sums are part of the checkpoint, so that a resumed
epoch reports the same means as one trained in one go.
"""

from __future__ import annotations

import re
import time
from typing import Any

import torch
from torch import Tensor

from ganzoo.core.errors import PluginError
from ganzoo.core.parts import PolicyOutput
from ganzoo.training import distributed
from ganzoo.training.distributed import World

EXTRA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class Meter:
    def __init__(self, n_gens: int, device: torch.device):
        self.n_gens, self.device = n_gens, device
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(2 + self.n_gens, device=self.device)  # d_loss, accuracy, g_loss_1..N
        self.count = 0
        self.extra_sums: dict[str, Tensor] = {}
        self.extra_counts: dict[str, int] = {}
        self.chance = 0.0
        self.done_before = 0  # steps of this epoch done before a resume
        self.started = time.perf_counter()

    def add(self, d_out: PolicyOutput, g_out: PolicyOutput) -> None:
        """One generator step: D's output of its last update and the generators' output."""
        self.sums += torch.cat([
            torch.stack([d_out.d_losses.detach().mean(), d_out.correct.mean()]),
            g_out.g_losses.detach().mean(1),
        ])
        self.count += 1
        self.chance = d_out.chance
        for out in (d_out, g_out):
            for name, value in out.extras.items():
                self._add_extra(name, value)

    def _add_extra(self, name: str, value: Tensor) -> None:
        if name not in self.extra_sums:
            if not isinstance(name, str) or not EXTRA_NAME.match(name):
                raise PluginError(f"a policy's extra scalar is named {name!r}; use 1-32 lowercase letters, digits or _")
            if not isinstance(value, Tensor) or value.numel() != 1:
                raise PluginError(f"a policy's extra scalar {name!r} must be a one-element tensor")
            self.extra_sums[name] = torch.zeros((), device=self.device)
            self.extra_counts[name] = 0
        self.extra_sums[name] += value.detach().float().reshape(())
        self.extra_counts[name] += 1

    def read(self, world: World) -> dict[str, Any]:
        """The means since the epoch began, over all ranks; reads them to the host (a sync)."""
        names = sorted(self.extra_sums)
        packed = torch.cat([self.sums / max(self.count, 1),
                            torch.stack([self.extra_sums[k] / max(self.extra_counts[k], 1) for k in names])
                            if names else self.sums.new_zeros(0)])
        values = distributed.mean(packed, world).tolist()
        d_loss, accuracy, g_losses = values[0], values[1], values[2: 2 + self.n_gens]
        g_mean = sum(g_losses) / len(g_losses)
        record = {
            "d_loss": d_loss,
            "g_loss": g_losses,
            "g_loss_mean": g_mean,
            "loss_gap": abs(d_loss - g_mean),
            "d_accuracy": accuracy,
            "chance": self.chance,
        }
        if names:
            record["extras"] = dict(zip(names, values[2 + self.n_gens:]))
        return record

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    # -- checkpoint ----------------------------------------------------------------------------

    def tensors(self) -> dict[str, Tensor]:
        return {"metrics.sums": self.sums, **{f"metrics.extra.{k}": v for k, v in self.extra_sums.items()}}

    def manifest(self) -> dict[str, Any]:
        return {"metric_count": self.count, "chance": self.chance, "metric_extra_counts": dict(self.extra_counts)}

    def load(self, tensors: dict[str, Tensor], manifest: dict[str, Any]) -> None:
        self.sums = tensors["metrics.sums"].to(self.device)
        self.count = self.done_before = int(manifest["metric_count"])
        self.chance = float(manifest["chance"])
        counts = manifest.get("metric_extra_counts", {})
        self.extra_sums = {k: tensors[f"metrics.extra.{k}"].to(self.device) for k in counts}
        self.extra_counts = {k: int(v) for k, v in counts.items()}
