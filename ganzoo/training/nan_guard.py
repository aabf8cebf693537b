"""What a run does about NaN and Inf (``--on-nan``): look for them at logging points, then stop,
or roll back to the last checkpoint with half the learning rate (at most 3 times)."""

from __future__ import annotations

import math
from typing import Any

import torch

from ganzoo.core.errors import NonFiniteError
from ganzoo.runs import rundir
from ganzoo.runs.checkpoint import open_checkpoint
from ganzoo.runs.state_check import first_non_finite
from ganzoo.training import distributed

MAX_ROLLBACKS = 3


def non_finite(metrics: dict[str, Any], tensors: dict[str, torch.Tensor]) -> list[str]:
    """What is not finite: the metrics by name, or the first tensor by name (one host sync per device)."""
    values = {**{k: v for k, v in metrics.items() if isinstance(v, float)}, **metrics.get("extras", {}),
              **{f"g_loss[{i}]": v for i, v in enumerate(metrics.get("g_loss", []))}}
    bad = [f"{k}={v}" for k, v in values.items() if not math.isfinite(v)]
    if not bad and (name := first_non_finite(tensors)) is not None:
        bad = [f"tensor {name!r}"]
    return bad


def watched(trainer: Any, whole: bool) -> dict[str, torch.Tensor]:
    """The tensors the guard looks at: the networks' weights and buffers at a logging point (cheap,
    and where a NaN shows first); before a checkpoint, everything it would hold (optimizer moments,
    the sample z, plugins' tensors such as EMA weights), so that a non-finite state is never saved."""
    if whole:
        from ganzoo.training.checkpointing import checkpoint_tensors

        return checkpoint_tensors(trainer)
    return {f"{prefix}.{name}": t for prefix, m in trainer.state.modules().items()
            for name, t in (*m.named_parameters(), *m.named_buffers())}


def finite_or_rolled_back(trainer: Any, metrics: dict[str, Any], whole: bool = False) -> bool:
    """True when the metrics and the watched tensors (``watched``) are finite. Otherwise, with
    on_nan = "rollback" (and fewer than 3 rollbacks), roll back and return False; else raise
    NonFiniteError. Under torchrun every rank takes the same branch."""
    bad = non_finite(metrics, watched(trainer, whole))
    if distributed.any_rank(int(bool(bad)), trainer.world, trainer.device) and not bad:
        bad = ["another rank's batch-norm statistics"]
    if not bad:
        return True
    where = f"non-finite values at step {trainer.state.step}: {', '.join(bad)}"
    if trainer.config.on_nan == "rollback" and trainer.state.rollbacks < MAX_ROLLBACKS:
        if not (trainer.run_dir / rundir.CHECKPOINT).exists():
            raise NonFiniteError(f"{where}; no checkpoint to roll back to yet")
        roll_back(trainer)
        return False
    raise NonFiniteError(f"{where}; the last good checkpoint is kept in {trainer.run_dir}")


def roll_back(trainer: Any) -> None:
    """Reload the last checkpoint and halve every learning rate (``Trainer.set_learning_rates``
    halves per rollback, so that repeated rollbacks to the same checkpoint keep halving)."""
    rollbacks = trainer.state.rollbacks + 1
    with open_checkpoint(trainer.run_dir) as checkpoint:
        trainer.load_checkpoint(checkpoint)
    trainer.state.rollbacks = rollbacks
    trainer.set_learning_rates()
    trainer.latest = {}
