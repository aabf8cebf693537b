"""The plugin host: a pluggy manager, the plugins it loaded (or failed to), and the registry they filled.

``load_host()`` is the one factory: specs, entry points of group ``ganzoo`` (filtered by
GANZOO_LOAD_PLUGINS and GANZOO_DISABLE_PLUGINS), plugin files, extra plugin objects, then
registration (parts and commands). Nothing here runs at import time.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from ganzoo.core import hookspecs
from ganzoo.core.errors import PluginError
from ganzoo.core.parts import TrainOption
from ganzoo.core.registry import Registry

ENTRY_POINT_GROUP = "ganzoo"
CORE_DISTRIBUTION = "ganzoo"
LOAD_VARIABLE = "GANZOO_LOAD_PLUGINS"  # allow-list of third-party plugins; empty: built-ins only
DISABLE_VARIABLE = "GANZOO_DISABLE_PLUGINS"  # plugins not to load, built-ins included

# registration hook -> registry kind
REGISTRATION_HOOKS = {
    "ganzoo_register_strategies": "strategy",
    "ganzoo_register_input_policies": "input policy",
    "ganzoo_register_aggregations": "aggregation",
    "ganzoo_register_architectures": "architecture",
    "ganzoo_register_datasets": "dataset",
    "ganzoo_register_extractors": "extractor",
    "ganzoo_register_train_options": "train option",
}
COMMAND_GROUPS = ("train", "root")
# ganzoo's own top-level commands: a plugin's root command may not take these names
BUILTIN_COMMANDS = frozenset({"train", "sample", "eval", "compare", "list", "plugins", "report"})


@dataclass(frozen=True)
class PluginInfo:
    """One plugin: its name, where it came from, and what went wrong if it is broken."""

    name: str
    entry_point: str = ""
    distribution: str = ""
    version: str = ""
    hooks: tuple[str, ...] = ()
    error: str = ""
    disabled: str = ""  # why it was not loaded (GANZOO_LOAD_PLUGINS / GANZOO_DISABLE_PLUGINS)

    @property
    def broken(self) -> bool:
        return bool(self.error)

    @property
    def status(self) -> str:
        return "broken" if self.error else "disabled" if self.disabled else "ok"


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
    warnings: list[str] = field(default_factory=list)  # e.g. an allow-list naming no installed plugin

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
        self.plugins[name] = replace(self.plugins.get(name, PluginInfo(name=name)), error=one_line(error))
        self.registry.remove_plugin(name)
        self.commands[:] = [c for c in self.commands if c.plugin != name]

    def register_parts(self, only: str | None = None) -> None:
        """Run every registration hook, one plugin at a time; a plugin that raises is marked broken."""
        for hook_name, kind in REGISTRATION_HOOKS.items():
            for plugin_name, function in self._impls(hook_name):
                if only is not None and plugin_name != only:
                    continue

                def register(part: Any, _kind: str = kind, _plugin: str = plugin_name) -> None:
                    self._check_options(_kind, part)
                    self.registry.add(_kind, part, _plugin)

                try:
                    function(register=register)
                except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end ganzoo
                    self._mark_broken(plugin_name, f"{hook_name} raised {type(exc).__name__}: {exc}")

    def _check_options(self, kind: str, part: Any) -> None:
        """A part's options may not take a core flag, nor a flag another part uses for another key."""
        from ganzoo.core.options import check_declarable, collect

        declared = [part] if kind == "train option" else list(getattr(part, "options", ()))
        if not declared:
            return
        taken = {o.option.flag: o for o in collect(self.registry).values()}
        for option in declared:
            check_declarable(option)
            other = taken.get(option.flag)
            if other is not None and other.option.key != option.key:
                raise ValueError(f"option {option.flag} is already declared by {other.owner_text()} for another setting")

    def register_commands(self, only: str | None = None) -> None:
        for plugin_name, function in self._impls("ganzoo_register_commands"):
            if only is not None and plugin_name != only:
                continue

            def register(command: Any, group: str = "train", _plugin: str = plugin_name) -> None:
                if group not in COMMAND_GROUPS:
                    raise ValueError(f"command group must be 'train' or 'root', got {group!r}")
                if group == "root" and command.name in BUILTIN_COMMANDS:
                    raise ValueError(f"command {command.name!r} is one of ganzoo's own commands")
                if group == "train" and command.name in self.registry.names("strategy"):
                    self._adopt_legacy_command(command, _plugin)
                    return
                clash = next((c for c in self.commands if c.group == group and c.command.name == command.name), None)
                if clash is not None:
                    raise ValueError(f"command {command.name!r} is registered by both plugin {clash.plugin!r} and plugin {_plugin!r}")
                self.commands.append(PluginCommand(group, command, _plugin))

            try:
                function(register=register)
            except (Exception, SystemExit) as exc:
                self._mark_broken(plugin_name, f"ganzoo_register_commands raised {type(exc).__name__}: {exc}")

    def _adopt_legacy_command(self, command: Any, plugin: str) -> None:
        """A plugin API 0.2 ``register(strategy_command(S, OPTIONS), group="train")``: the core makes
        every strategy's command now, so keep only the TrainOptions, as the strategy's own options."""
        from ganzoo.core.options import check_declarable

        entry = self.registry.entry("strategy", command.name)
        if entry.plugin != plugin:
            raise ValueError(f"train command {command.name!r} belongs to plugin {entry.plugin!r}'s strategy")
        own = [o for o in getattr(command, "ganzoo_legacy_options", ()) if isinstance(o, TrainOption)]
        for option in own:
            check_declarable(option)
        if own:
            self.registry.replace("strategy", replace(entry.part, options=(*entry.part.options, *own)))
        self.warnings.append(
            f"plugin {plugin!r} registers its train command itself (plugin API 0.2); it still works, but the core now "
            f"makes `ganzoo train {command.name}`: drop ganzoo_register_commands and declare options on the parts "
            f"(docs/plugins.md, 'From 0.2 to 0.3')"
        )

    def group_commands(self, group: str) -> dict[str, Any]:
        return {c.command.name: c.command for c in self.commands if c.group == group}

    def add(self, plugin: object, name: str | None = None) -> str:
        """Register one more plugin on a loaded host and run its registration hooks; return its name."""
        name = add_plugin(self, plugin, name)
        self.plugins[name] = PluginInfo(name, hooks=_hook_names(self.pm, plugin))
        self.register_parts(only=name)
        self.register_commands(only=name)
        return name

    def remove(self, name: str) -> None:
        """Undo ``add``: unregister the plugin and drop its parts and commands."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.registry.remove_plugin(name)
        self.commands[:] = [c for c in self.commands if c.plugin != name]
        self.plugins.pop(name, None)


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


def _names(value: str) -> set[str]:
    return {name.strip() for name in value.split(",") if name.strip()}


def load_host(*, entry_points: bool = True, plugins: Iterable[object] = (), plugin_files: Iterable[Path] = (),
              environ: Mapping[str, str] | None = None) -> Host:
    """Build the host: load plugins from the ``ganzoo`` entry-point group, then ``plugin_files``
    (plain .py files), then ``plugins`` (objects), and register their parts.

    ``GANZOO_LOAD_PLUGINS`` (in ``environ``, default ``os.environ``), when set, is a comma-separated
    allow-list of third-party entry-point names: ganzoo's own plugins always load, others only
    when named, so an empty value means built-ins only. ``GANZOO_DISABLE_PLUGINS`` names entry
    points not to load, built-ins included. A plugin that fails to import, or raises while
    registering, is recorded as broken (``host.broken()``) and the rest still load. A plugin
    file that cannot be imported raises PluginError: the user asked for that file by name.
    """
    environ = os.environ if environ is None else environ
    allow = _names(environ[LOAD_VARIABLE]) if LOAD_VARIABLE in environ else None
    disable = _names(environ.get(DISABLE_VARIABLE, ""))
    host = Host(new_plugin_manager(), Registry())
    found = _entry_points() if entry_points else []
    for ep in found:
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            ep.name,
            f"{ep.name} = {ep.value}",
            dist.metadata["Name"] if dist is not None else "",
            dist.version if dist is not None else "",
        )
        if ep.name in disable:
            host.plugins.setdefault(ep.name, replace(info, disabled=f"named in {DISABLE_VARIABLE}"))
            continue
        if allow is not None and info.distribution != CORE_DISTRIBUTION and ep.name not in allow:
            host.plugins.setdefault(ep.name, replace(info, disabled=f"not named in {LOAD_VARIABLE}"))
            continue
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
        except (Exception, SystemExit) as exc:  # sys.exit() at import: the plugin is broken, ganzoo goes on
            host.plugins[ep.name] = replace(info, error=f"failed to load: {type(exc).__name__}: {one_line(exc)}")
            continue
        host.plugins[ep.name] = replace(info, hooks=_hook_names(host.pm, module))
    known = {ep.name for ep in found}
    for variable, names in ((LOAD_VARIABLE, allow or set()), (DISABLE_VARIABLE, disable)):
        for name in sorted(names - known):
            host.warnings.append(f"{variable} names {name!r}, which is not an installed plugin")
    for path in plugin_files:
        module = load_plugin_file(Path(path))
        name = add_plugin(host, module, Path(path).stem)
        host.plugins[name] = PluginInfo(name, f"file {path}", hooks=_hook_names(host.pm, module))
    for plugin in plugins:
        name = add_plugin(host, plugin)
        host.plugins[name] = PluginInfo(name, hooks=_hook_names(host.pm, plugin))
    host.register_parts()
    host.register_commands()
    return host


def one_line(message: object) -> str:
    """A message on one line: errors are reported as one line each."""
    return " / ".join(line.strip() for line in str(message).splitlines() if line.strip())


def add_plugin(host: Host, plugin: object, name: str | None = None) -> str:
    """Register a plugin object (module or instance) with the manager and return its name."""
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    existing = host.plugins.get(name)
    if host.pm.has_plugin(name) or (existing is not None and not existing.disabled):  # a disabled one is not loaded
        raise PluginError(f"a plugin named {name!r} is already loaded")
    try:
        registered = host.pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # e.g. a hookimpl with an argument the hook does not have
        raise PluginError(f"plugin {name!r} does not fit ganzoo's hooks: {one_line(exc)}") from None
    if registered is None:
        raise PluginError(f"plugin {name!r} is blocked")
    return registered


def load_plugin_file(path: Path) -> ModuleType:
    """Import a plain .py file as a plugin module (``--plugin path/to/file.py``)."""
    if not path.exists():
        raise PluginError(f"plugin file {path} does not exist")
    if path.suffix != ".py" or not path.is_file():
        raise PluginError(f"plugin file {path} is not a .py file")
    module_name = "ganzoo_local_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pluggy look a module up by name
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[module_name]
        raise PluginError(f"cannot load plugin file {path}: {type(exc).__name__}: {one_line(exc)}") from None
    return module
