"""The generators a live run shows: what its sample grids and ``--eval-every`` evaluations use.

A plugin may offer other weights through ``ganzoo_sampling_weights`` (the ema plugin offers its
averages); they are loaded into a copy of the generators, so the trained ones are never touched.
Without an answer the trained generators are shown ("raw").

The trainer asks in the middle of an epoch's end. A plugin that fails there (it raises, calls
``sys.exit``, or answers weights that do not fit) is reported at the next hook, once the epoch's
end and its checkpoint are done (``Dispatch.defer``); the trained generators are shown meanwhile.
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
        try:
            answered = trainer.dispatch.first("ganzoo_sampling_weights", trainer)
        except PluginError as exc:
            trainer.dispatch.defer(exc)
            answered = None
        if answered is None:
            return "raw", trainer.generators
        plugin, answer = answered
        try:
            return self._load(trainer, answer)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the answer is the plugin's object: reading it runs its code, sys.exit() too
            detail = str(exc) if isinstance(exc, Unfit) else _brief(exc)
            trainer.dispatch.defer(PluginError(f"plugin {plugin!r} answered ganzoo_sampling_weights at step {trainer.step} "
                                               f"with weights that do not fit the run's {len(trainer.generators)} generator(s): {detail}"))
            return "raw", trainer.generators

    def _load(self, trainer: Any, answer: Any) -> tuple[str, nn.ModuleList]:
        if not (isinstance(answer, tuple | list) and len(answer) == 2 and isinstance(answer[0], str)):
            raise Unfit(f"a {type(answer).__name__}, not a (name, state_dicts) pair")
        name, state_dicts = str(answer[0]), list(answer[1])
        if len(state_dicts) != len(trainer.generators):
            raise Unfit(f"{len(state_dicts)} state_dicts")
        if self.copy is None:
            self.copy = copy.deepcopy(trainer.generators)
        for index, (generator, weights) in enumerate(zip(self.copy, state_dicts, strict=True)):
            try:
                generator.load_state_dict(weights)
            except Exception as exc:
                raise Unfit(f"generator {index}: {_brief(exc)}") from None
        return name, self.copy


class Unfit(Exception):
    """An answer that does not fit the run's generators."""


def _brief(exc: BaseException) -> str:
    """An exception in one short line: load_state_dict lists every tensor that does not fit."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    more = f" (and {len(lines) - 2} more)" if len(lines) > 2 else ""
    return f"{type(exc).__name__}: {' '.join(lines[:2])}{more}"
