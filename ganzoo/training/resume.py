"""Resuming a run from its checkpoint, which is read once: its header first (settings, names,
shapes and dtypes), then, once the run is built from those settings and found to fit, its data.

The order (``ganzoo.training.session``): open the checkpoint and read its settings
(``config_from_checkpoint``), check that its plugins are loaded (``ganzoo.runs.manifest.require_parts``),
build the trainer, then ``Trainer.load_checkpoint``, which checks the header against the built state,
reads the tensors and checks them (``check_restorable``) before any is loaded.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ganzoo.core.compat import upgrade_settings
from ganzoo.core.config import TrainConfig, make_config
from ganzoo.core.errors import CheckpointError
from ganzoo.core.tensorfile import TensorFile
from ganzoo.runs.checkpoint import manifest_fields
from ganzoo.runs.state_check import check_finite, check_manifest_counters, check_optimizer_groups, check_state, check_z_state
from ganzoo.training.run_state import RunState
from ganzoo.training.state_spec import expected_state


def config_from_checkpoint(manifest: dict[str, Any], **overrides: Any) -> TrainConfig:
    """The settings a checkpoint was saved with (each checked as a new run's are), with ``overrides``."""
    with manifest_fields():
        settings = upgrade_settings({k: v for k, v in manifest["config"].items() if k != "strategy"})
        strategy = manifest["strategy"]
        if not settings.get("arch") and isinstance(manifest.get("architecture"), str):
            settings["arch"] = manifest["architecture"]  # the one chosen for the data then, whatever the default is now
    if not isinstance(strategy, str):
        raise CheckpointError(f"the checkpoint's manifest names the strategy {strategy!r}, not a name")
    return make_config(strategy, settings, overrides)


def check_restorable(checkpoint: TensorFile, state: RunState) -> tuple[dict[str, Tensor], dict[str, Any], bool]:
    """Read a checkpoint's tensors for ``RunState.load``, refusing, before anything is loaded, one
    that does not fit the state it goes into: names, shapes and dtypes of every tensor (checked on
    the header before any tensor data is read, then on the tensors), counters, optimizer settings,
    finite values everywhere (weights, optimizer moments, plugins' tensors such as EMA weights),
    and a usable z-stream state. Returns (tensors, manifest, whether the z stream continues
    exactly: not across device kinds)."""
    where, manifest = str(checkpoint.path), checkpoint.manifest
    spec = expected_state(state)
    check_manifest_counters(manifest, where)
    check_state(checkpoint.meta(), spec, where)  # the header only: no data read yet
    if "rng.z" not in checkpoint.entries:
        raise CheckpointError(f"{where}: tensor 'rng.z' is missing")
    tensors = checkpoint.read()
    check_state(tensors, spec, where)
    check_finite(tensors, ("",), where)
    with manifest_fields(where):
        groups = manifest["optimizer_groups"]
        for name, optimizer in state.optimizers().items():
            check_optimizer_groups(groups[name], optimizer, _words(name), where)
    exact = check_z_state(tensors["rng.z"], state.z_rng, where)
    return tensors, manifest, exact


def _words(name: str) -> str:
    """A network's checkpoint name as people say it: "generator 2", "the discriminator", "discriminator d1"."""
    if name.startswith("generator."):
        return f"generator {int(name.split('.')[1]) + 1}"
    return "the discriminator" if name == "discriminator" else name.replace(".", " ")
