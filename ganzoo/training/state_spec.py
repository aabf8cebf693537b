"""What a freshly built run state will load from a checkpoint: the names, shapes and dtypes of its
tensors (``ganzoo.runs.state_check.StateSpec``), so that a checkpoint is checked against the run
before any of its tensor data is read."""

from __future__ import annotations

import torch

from ganzoo.runs.state_check import StateSpec
from ganzoo.training.optimizers import parameter_state
from ganzoo.training.run_state import RunState


def expected_state(state: RunState) -> StateSpec:
    """The state's own tensors (weights, RNG, sample z, metric sums), each parameter's optimizer
    state (present once it has stepped), and the scalar sums of the policies' extra metrics
    (``metrics.extra.<name>``), which appear only once a policy reports one."""
    own = state.tensors()
    required = {name: (tuple(t.shape), t.dtype) for name, t in own.items()
                if not name.startswith(("optimizer.", "metrics.extra.")) and name not in ("rng.z", "rng.cuda")}
    groups = [g for name, o in state.optimizers().items() for g in parameter_state(o, f"optimizer.{name}")]
    return StateSpec(required, groups, by_prefix={"metrics.extra.": ((), torch.float32)})
