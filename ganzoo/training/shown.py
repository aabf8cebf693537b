"""The generators a live run shows: what its sample grids and ``--eval-every`` evaluations use.

A plugin may offer other weights through ``ganzoo_sampling_weights`` (the ema plugin offers its
averages); they are loaded into a copy of the generators, so the trained ones are never touched.
Without an answer the trained generators are shown ("raw").
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from ganzoo.core.errors import PluginError


class ShownGenerators:
    def __init__(self) -> None:
        self.copy: nn.ModuleList | None = None

    def __call__(self, trainer: Any) -> tuple[str, nn.ModuleList]:
        """(name of the weights, generators holding them) for this trainer now."""
        answered = trainer.dispatch.first("ganzoo_sampling_weights", trainer)
        if answered is None:
            return "raw", trainer.generators
        plugin, answer = answered
        try:
            name, state_dicts = answer
            if self.copy is None:
                self.copy = copy.deepcopy(trainer.generators)
            for generator, weights in zip(self.copy, state_dicts, strict=True):
                generator.load_state_dict(weights)
        except (TypeError, ValueError, RuntimeError, KeyError) as exc:
            raise PluginError(f"plugin {plugin!r} answered ganzoo_sampling_weights with weights that do not fit the "
                              f"{len(trainer.generators)} generators: {type(exc).__name__}: {exc}") from None
        return str(name), self.copy
