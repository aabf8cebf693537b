"""Resuming a run: the settings and parts a checkpoint needs, checked before anything is built.

The order of a resume: read the checkpoint (``ganzoo.training.checkpoint``), rebuild its settings
(``config_from_checkpoint``), check that its plugins are loaded and its tensors fit the networks the
run will build (``check_resumable``), then build the trainer and load the state into it
(``Trainer(resume=True)`` -> ``RunState.load``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganzoo.core.config import TrainConfig, make_config
from ganzoo.core.errors import GanzooError, PluginMissingError
from ganzoo.core.host import Host
from ganzoo.training.checkpoint import manifest_fields
from ganzoo.training.models import check_fits

TRAINING_KINDS = ("strategy", "input policy", "aggregation", "architecture", "dataset")  # recorded in checkpoints


def resolve_device(name: str) -> torch.device:
    if name != "auto" and name != "cpu" and not (name == "cuda" or name.startswith("cuda:") and name[5:].isdigit()):
        raise GanzooError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GanzooError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def discriminator_shape(policy: Any) -> tuple[int, int]:
    """(packing, outputs) the input policy asks of D: images stacked per input, logits per input."""
    packing, outputs = int(getattr(policy, "d_packing", 1)), int(getattr(policy, "d_outputs", 1))
    if packing < 1 or outputs < 1:
        raise GanzooError(f"the input policy asks for a D with packing {packing} and {outputs} outputs; both must be at least 1")
    return packing, outputs


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


def require_parts(host: Host, manifest: dict[str, Any], kinds: tuple[str, ...]) -> None:
    """Raise PluginMissingError naming the plugin a checkpoint needs when its part is not registered
    (saying so when the plugin is installed but disabled or broken)."""
    for kind in kinds:
        with manifest_fields():
            part = manifest["parts"][kind]
            known = part["name"] in host.registry.names(kind)
        if known:
            continue
        info = host.plugins.get(part["plugin"])
        if info is not None and info.disabled:
            why = f"which is installed but disabled ({info.disabled})"
        elif info is not None and info.broken:
            why = f"which is broken: {info.error}"
        else:
            why = "which is not installed"
        raise PluginMissingError(f"this checkpoint needs the {kind} {part['name']!r} from plugin {part['plugin']!r}, {why}")


def config_from_checkpoint(manifest: dict[str, Any], **overrides: Any) -> TrainConfig:
    with manifest_fields():
        settings = {k: v for k, v in manifest["config"].items() if k != "strategy"}
        strategy = manifest["strategy"]
    settings.setdefault("amp", "off")  # runs from before --amp trained in float32, and go on so
    if "loss" in settings:  # plugin API 0.2 kept the binary policy's loss as a core setting
        settings["options"] = {"loss": settings.pop("loss"), **settings.get("options", {})}
    options = overrides.pop("options", None)
    if options:
        settings["options"] = {**settings.get("options", {}), **options}
    return make_config(strategy, settings, overrides)


def check_resumable(host: Host, manifest: dict[str, Any], tensors: dict[str, Tensor], config: TrainConfig) -> None:
    """Refuse a checkpoint whose plugins are missing or whose tensors do not fit its own manifest,
    before the trainer builds anything from it."""
    require_parts(host, manifest, TRAINING_KINDS)
    with manifest_fields():
        arch = host.registry.get("architecture", manifest["architecture"])
        channels = int(manifest["image_shape"][0])
    packing, outputs = discriminator_shape(host.registry.get("input policy", config.policy).build(config))
    check_fits(arch, tensors, n_gens=config.n_gens, z_dim=config.z_dim, channels=channels, spectral=config.spectral_norm,
               d_channels=channels * packing, outputs=outputs)


def read_for_restore(path: Any, state: Any, strategy: str) -> tuple[dict[str, Tensor], dict[str, Any], bool]:
    """Read a checkpoint into memory for ``RunState.load``, refusing, before anything is loaded, one
    that does not fit the state it goes into: names, shapes and dtypes of every tensor (checked on
    the header before any tensor data is read, then on the tensors), counters, optimizer settings,
    finite weights, and a usable z-stream state. Returns (tensors, manifest, whether the z stream
    continues exactly: not across device kinds)."""
    from ganzoo.core.errors import CheckpointError
    from ganzoo.training.checkpoint import read_checkpoint
    from ganzoo.training.state_check import (check_finite, check_manifest_counters, check_optimizer_groups, check_state,
                                             check_z_state, expected_state)

    where = str(path)
    spec = expected_state(state)

    def fits(meta: dict[str, Tensor], manifest: dict[str, Any]) -> None:  # the header only: no data read yet
        check_manifest_counters(manifest, where)
        check_state(meta, spec, where)

    tensors, manifest = read_checkpoint(path, check=fits)
    if manifest.get("strategy") != strategy:
        raise CheckpointError(f"{path.parent} is a {manifest.get('strategy')} run, not {strategy}")
    check_state(tensors, spec, where)
    check_finite(tensors, ("generator.", "discriminator."), where)
    with manifest_fields(where):
        groups = manifest["optimizer_groups"]
        check_optimizer_groups(groups["discriminator"], state.d_optimizer, "the discriminator", where)
        for i, optimizer in enumerate(state.g_optimizers):
            check_optimizer_groups(groups[f"generator.{i}"], optimizer, f"generator {i + 1}", where)
    exact = check_z_state(tensors["rng.z"], state.z_rng, where)
    return tensors, manifest, exact
