"""What a checkpoint's manifest says about the parts a run needs, and the plugins that registered them:
recorded when a run saves, checked before a run is resumed or sampled."""

from __future__ import annotations

from typing import Any

from ganzoo.core.config import TrainConfig
from ganzoo.core.errors import PluginMissingError
from ganzoo.core.host import Host
from ganzoo.runs.checkpoint import manifest_fields

TRAINING_KINDS = ("strategy", "input policy", "aggregation", "architecture", "dataset")  # recorded in checkpoints


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


def require_parts(host: Host, manifest: dict[str, Any], kinds: tuple[str, ...], *, discriminators: bool = False) -> None:
    """Raise PluginMissingError naming the plugin a checkpoint needs when its part is not registered
    (saying so when the plugin is installed but disabled or broken). With ``discriminators``, the
    architectures of the run's discriminators too (a resume builds them; sampling does not)."""
    needed = []
    with manifest_fields():
        for kind in kinds:
            needed.append((kind, manifest["parts"][kind]["name"], manifest["parts"][kind]["plugin"]))
        if discriminators:  # the discriminators' own architectures, when a policy asked for others (0.5)
            needed += [("architecture", d["architecture"], d["plugin"]) for d in manifest.get("discriminators", ())]
    for kind, name, plugin in needed:
        if name in host.registry.names(kind):
            continue
        info = host.plugins.get(plugin)
        if info is not None and info.disabled:
            why = f"which is installed but disabled ({info.disabled})"
        elif info is not None and info.broken:
            why = f"which is broken: {info.error}"
        else:
            why = "which is not installed"
        raise PluginMissingError(f"this checkpoint needs the {kind} {name!r} from plugin {plugin!r}, {why}")
