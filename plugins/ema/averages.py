"""One run's moving averages of its generators' weights: an observer of that run alone."""

from __future__ import annotations

import torch

from ganzoo.core.errors import CheckpointError

PREFIX = "ema"


class Averages:
    """avg <- d * avg + (1 - d) * live after every generator step, for every float entry of each
    generator's state dict, as one fused call (``torch._foreach_lerp_``); integer entries (batch
    norm's step counter) are copied."""

    def __init__(self, trainer, decay: float, warmup: bool):
        self.decay, self.warmup = decay, warmup
        self.tables = self._copy(trainer)  # a new run starts its averages at the initial weights
        self._lists: tuple[list[torch.Tensor], ...] | None = None

    @staticmethod
    def _copy(trainer) -> list[dict[str, torch.Tensor]]:
        return [{k: v.detach().clone() for k, v in g.state_dict().items()} for g in trainer.generators]

    def _pairs(self, trainer) -> tuple[list[torch.Tensor], ...]:
        """(averages, live floats, average counters, live counters), built once: the live tensors
        share storage with the weights, which training updates in place."""
        if self._lists is None:
            lists: tuple[list[torch.Tensor], ...] = ([], [], [], [])
            for generator, table in zip(trainer.generators, self.tables):
                for key, live in generator.state_dict().items():
                    floating = live.is_floating_point()
                    lists[0 if floating else 2].append(table[key])
                    lists[1 if floating else 3].append(live)
            self._lists = lists
        return self._lists

    def ganzoo_on_step_end(self, trainer, step):
        decay = min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay
        averages, lives, counters, live_counters = self._pairs(trainer)
        with torch.no_grad():  # in-place device ops only: no host sync on the hot path
            torch._foreach_lerp_(averages, lives, 1.0 - decay)
            for counter, live in zip(counters, live_counters):
                counter.copy_(live)  # such as batch norm's num_batches_tracked

    def ganzoo_sampling_weights(self, trainer):
        return PREFIX, self.tables

    def ganzoo_add_checkpoint_tensors(self, trainer, tensors):
        for i, table in enumerate(self.tables):
            for key, value in table.items():
                tensors[f"{PREFIX}.generator.{i}.{key}"] = value

    def ganzoo_on_checkpoint_load(self, trainer, tensors):
        tables = self._copy(trainer)
        for i, table in enumerate(tables):
            for key in table:
                name = f"{PREFIX}.generator.{i}.{key}"
                saved = tensors.get(name)
                if saved is None:  # a checkpoint saved before --ema existed starts from the weights
                    continue
                if not isinstance(saved, torch.Tensor) or saved.shape != table[key].shape:
                    raise CheckpointError(f"checkpoint tensor {name!r} does not fit generator {i + 1} "
                                          f"(shape {tuple(getattr(saved, 'shape', ()))}, needs {tuple(table[key].shape)})")
                table[key] = saved.to(device=table[key].device, dtype=table[key].dtype).clone()
        self.tables, self._lists = tables, None
