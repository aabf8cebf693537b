"""The plugin host: a pluggy manager, the plugins it loaded (or failed to), and the registry they filled.

``load_host()`` is the one factory: specs, entry points of group ``ganzoo``, extra plugin objects,
then registration (parts and commands). Nothing here runs at import time.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pluggy

from ganzoo import hookspecs
from ganzoo.registry import Registry

ENTRY_POINT_GROUP = "ganzoo"
CORE_DISTRIBUTION = "ganzoo"

# registration hook -> registry kind
REGISTRATION_HOOKS = {
    "ganzoo_register_strategies": "strategy",
    "ganzoo_register_input_policies": "input policy",
    "ganzoo_register_aggregations": "aggregation",
    "ganzoo_register_architectures": "architecture",
    "ganzoo_register_datasets": "dataset",
    "ganzoo_register_extractors": "extractor",
}
COMMAND_GROUPS = ("train", "root")


@dataclass(frozen=True)
class PluginInfo:
    """One plugin: its name, where it came from, and what went wrong if it is broken."""

    name: str
    entry_point: str = ""
    distribution: str = ""
    version: str = ""
    hooks: tuple[str, ...] = ()
    error: str = ""

    @property
    def broken(self) -> bool:
        return bool(self.error)


@dataclass(frozen=True)
class PluginCommand:
    group: str  # "train" or "root"
    command: Any  # click.Command
    plugin: str


@dataclass
class Host:
    pm: pluggy.PluginManager
    registry: Registry
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    commands: list[PluginCommand] = field(default_factory=list)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.broken]

    def _impls(self, hook_name: str) -> list[tuple[str, Any]]:
        """(plugin name, function) of every working plugin implementing hook_name, in load order."""
        found = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
            if not (name in self.plugins and self.plugins[name].broken):
                found.append((name, impl.function))
        order = list(self.plugins)
        return sorted(found, key=lambda item: order.index(item[0]) if item[0] in order else len(order))

    def _mark_broken(self, name: str, error: str) -> None:
        self.plugins[name] = replace(self.plugins.get(name, PluginInfo(name=name)), error=error)
        self.registry.remove_plugin(name)
        self.commands[:] = [c for c in self.commands if c.plugin != name]

    def register_parts(self) -> None:
        """Run every registration hook, one plugin at a time; a plugin that raises is marked broken."""
        for hook_name, kind in REGISTRATION_HOOKS.items():
            for plugin_name, function in self._impls(hook_name):

                def register(part: Any, _kind: str = kind, _plugin: str = plugin_name) -> None:
                    self.registry.add(_kind, part, _plugin)

                try:
                    function(register=register)
                except Exception as exc:
                    self._mark_broken(plugin_name, f"{hook_name} raised {type(exc).__name__}: {exc}")

    def register_commands(self) -> None:
        for plugin_name, function in self._impls("ganzoo_register_commands"):

            def register(command: Any, group: str = "train", _plugin: str = plugin_name) -> None:
                if group not in COMMAND_GROUPS:
                    raise ValueError(f"command group must be 'train' or 'root', got {group!r}")
                clash = next((c for c in self.commands if c.group == group and c.command.name == command.name), None)
                if clash is not None:
                    raise ValueError(f"command {command.name!r} is registered by both plugin {clash.plugin!r} and plugin {_plugin!r}")
                self.commands.append(PluginCommand(group, command, _plugin))

            try:
                function(register=register)
            except Exception as exc:
                self._mark_broken(plugin_name, f"ganzoo_register_commands raised {type(exc).__name__}: {exc}")

    def group_commands(self, group: str) -> dict[str, Any]:
        return {c.command.name: c.command for c in self.commands if c.group == group}


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("ganzoo")
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """The ``ganzoo`` entry points, ganzoo's own first, then by distribution and name, so that a
    name clash always refuses the same plugin (and never one of ganzoo's own)."""

    def key(ep: importlib.metadata.EntryPoint) -> tuple[bool, str, str]:
        dist = ep.dist.metadata["Name"] if getattr(ep, "dist", None) is not None else ""
        return (dist != CORE_DISTRIBUTION, dist, ep.name)

    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=key)


def load_host(*, entry_points: bool = True, plugins: Iterable[object] = ()) -> Host:
    """Build the host: load plugins from the ``ganzoo`` entry-point group, add ``plugins``, register parts.

    A plugin that fails to import, or raises while registering, is recorded as broken
    (``host.broken()``) and the rest still load.
    """
    host = Host(new_plugin_manager(), Registry())
    for ep in _entry_points() if entry_points else []:
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            ep.name,
            f"{ep.name} = {ep.value}",
            dist.metadata["Name"] if dist is not None else "",
            dist.version if dist is not None else "",
        )
        if ep.name in host.plugins:
            other = host.plugins[ep.name]
            name = f"{ep.name} ({info.distribution or 'unknown distribution'})"
            host.plugins[name] = replace(
                info, name=name, error=f"entry point name {ep.name!r} is already taken by distribution {other.distribution!r}"
            )
            continue
        try:
            module = ep.load()
            host.pm.register(module, name=ep.name)
        except Exception as exc:
            host.plugins[ep.name] = replace(info, error=f"failed to load: {type(exc).__name__}: {exc}")
            continue
        host.plugins[ep.name] = replace(info, hooks=_hook_names(host.pm, module))
    for plugin in plugins:
        name = add_plugin(host, plugin)
        host.plugins[name] = PluginInfo(name, hooks=_hook_names(host.pm, plugin))
    host.register_parts()
    host.register_commands()
    return host


def add_plugin(host: Host, plugin: object, name: str | None = None) -> str:
    """Register a plugin object (module or instance) with the manager and return its name."""
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    registered = host.pm.register(plugin, name=name)
    if registered is None:
        raise ValueError(f"plugin {name!r} is already registered")
    return registered
