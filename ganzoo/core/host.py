"""The plugin host: a pluggy manager, the plugins it loaded (or failed to), and the registry they filled.

``load_host()`` is the one factory: specs, entry points of group ``ganzoo`` (filtered by
GANZOO_LOAD_PLUGINS and GANZOO_DISABLE_PLUGINS), plugin files, extra plugin objects, then
registration (parts and commands). Nothing here runs at import time. Every hook is dispatched in
the order the plugins were loaded (``Host.implementations``).

Whatever a plugin raises while it is imported or registers (``SystemExit``, ``GeneratorExit``, a
``BaseException`` of its own) makes it broken, never ends ganzoo; only ``KeyboardInterrupt`` keeps its
meaning. An import that runs past GANZOO_PLUGIN_IMPORT_SECONDS is stopped and named the same way.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pluggy

from ganzoo.core import compat, hookspecs
from ganzoo.core.errors import DuplicateNameError, PluginError, one_line
from ganzoo.core.plugin_import import check_api, import_seconds, import_time_limit, load_failure, load_plugin_file
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
class Implementation:
    """One plugin's implementation of a hook: who, the function, the arguments it takes."""

    plugin: str
    function: Any
    argnames: tuple[str, ...]


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

    def implementations(self, hook_name: str) -> list[Implementation]:
        """Every working plugin's implementation of hook_name, in load order: the one order in which
        ganzoo calls every hook."""
        found = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
            if not (name in self.plugins and self.plugins[name].broken):
                found.append(Implementation(name, impl.function, tuple(impl.argnames)))
        order = list(self.plugins)
        return sorted(found, key=lambda impl: order.index(impl.plugin) if impl.plugin in order else len(order))

    def distribution(self, plugin: str) -> str:
        """The distribution a plugin came from ("ganzoo" for the built-ins; "" for files and objects)."""
        info = self.plugins.get(plugin)
        return info.distribution if info is not None else ""

    def _mark_broken(self, name: str, error: str) -> None:
        self.plugins[name] = replace(self.plugins.get(name, PluginInfo(name=name)), error=one_line(error))
        self.registry.remove_plugin(name)
        self.commands[:] = [c for c in self.commands if c.plugin != name]

    def register_parts(self, only: str | None = None) -> None:
        """Run every registration hook, one plugin at a time; a plugin that raises is marked broken."""
        for hook_name, kind in REGISTRATION_HOOKS.items():
            for impl in self.implementations(hook_name):
                plugin_name, function = impl.plugin, impl.function
                if only is not None and plugin_name != only:
                    continue

                def register(part: Any, _kind: str = kind, _plugin: str = plugin_name) -> None:
                    self._check_options(_kind, part)
                    try:
                        self.registry.add(_kind, part, _plugin)
                    except DuplicateNameError as exc:
                        holder = self.registry.entry(_kind, part.name).plugin
                        if self.distribution(holder) == CORE_DISTRIBUTION and self.distribution(_plugin) != CORE_DISTRIBUTION:
                            raise DuplicateNameError(f"{exc}; {holder!r} is a built-in plugin: rename yours, or set "
                                                     f"{DISABLE_VARIABLE}={holder} to use yours in its place") from None
                        raise

                try:
                    function(register=register)
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # sys.exit(), GeneratorExit, its own: the plugin is broken, ganzoo goes on
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
        for impl in self.implementations("ganzoo_register_commands"):
            plugin_name, function = impl.plugin, impl.function
            if only is not None and plugin_name != only:
                continue

            def register(command: Any, group: str = "train", _plugin: str = plugin_name) -> None:
                if group not in COMMAND_GROUPS:
                    raise ValueError(f"command group must be 'train' or 'root', got {group!r}")
                if group == "root" and command.name in BUILTIN_COMMANDS:
                    raise ValueError(f"command {command.name!r} is one of ganzoo's own commands")
                if group == "train" and command.name in self.registry.names("strategy"):
                    compat.adopt_legacy_command(self, command, _plugin)
                    return
                clash = next((c for c in self.commands if c.group == group and c.command.name == command.name), None)
                if clash is not None:
                    raise ValueError(f"command {command.name!r} is registered by both plugin {clash.plugin!r} and plugin {_plugin!r}")
                self.commands.append(PluginCommand(group, command, _plugin))

            try:
                function(register=register)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                self._mark_broken(plugin_name, f"ganzoo_register_commands raised {type(exc).__name__}: {exc}")

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
    pm.add_hookspecs(compat.LegacyHookSpecs)
    return pm


def _entry_points() -> list[tuple[importlib.metadata.EntryPoint, str]]:
    """The ``ganzoo`` entry points with their distributions, ganzoo's own first, then by distribution
    and name, so that a name clash always refuses the same plugin (and never one of ganzoo's own)."""
    found = [(ep, _distribution(ep)) for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    return sorted(found, key=lambda pair: (pair[1] != CORE_DISTRIBUTION, pair[1], pair[0].name))


def _names(value: str) -> set[str]:
    return {name.strip() for name in value.split(",") if name.strip()}


def load_host(*, entry_points: bool = True, plugins: Iterable[object] = (), plugin_files: Iterable[Path] = (),
              environ: Mapping[str, str] | None = None) -> Host:
    """Build the host: load plugins from the ``ganzoo`` entry-point group, then ``plugin_files``
    (plain .py files), then ``plugins`` (objects), and register their parts.

    ``GANZOO_LOAD_PLUGINS`` (in ``environ``, default ``os.environ``), when set, is a comma-separated
    allow-list of third-party entry-point names: ganzoo's own plugins always load, others only
    when named, so an empty value means built-ins only. ``GANZOO_DISABLE_PLUGINS`` names entry
    points not to load, built-ins included; a name that a built-in and an installed plugin share
    disables the built-in, so that the installed one loads in its place. A plugin that fails to
    import, or raises while registering, is recorded as broken (``host.broken()``) and the rest
    still load. A plugin file that cannot be imported raises PluginError: the user asked for that
    file by name. Each plugin's import may take ``GANZOO_PLUGIN_IMPORT_SECONDS`` (default 120).
    """
    environ = os.environ if environ is None else environ
    seconds = import_seconds(environ)
    allow = _names(environ[LOAD_VARIABLE]) if LOAD_VARIABLE in environ else None
    disable = _names(environ.get(DISABLE_VARIABLE, ""))
    compat.install()  # old module paths, for plugins written against an older API
    host = Host(new_plugin_manager(), Registry())
    found = _entry_points() if entry_points else []
    builtin_names = {ep.name for ep, dist in found if dist == CORE_DISTRIBUTION}
    third_party = {ep.name for ep, dist in found if dist != CORE_DISTRIBUTION}
    for ep, dist in found:
        info = PluginInfo(ep.name, f"{ep.name} = {ep.value}", dist, _version(ep))
        builtin = dist == CORE_DISTRIBUTION
        if ep.name in disable:
            # A name that a built-in and an installed plugin share disables the built-in only: the
            # installed one loads in its place (when GANZOO_LOAD_PLUGINS lets it).
            if builtin and ep.name in third_party and (allow is None or ep.name in allow):
                key = f"{ep.name} ({CORE_DISTRIBUTION})"
                host.plugins[key] = replace(info, name=key, disabled=f"named in {DISABLE_VARIABLE}; the installed "
                                                                         f"plugin of that name loads in its place")
                continue
            if builtin or ep.name not in builtin_names:
                host.plugins.setdefault(ep.name, replace(info, disabled=f"named in {DISABLE_VARIABLE}"))
                continue
        if allow is not None and not builtin and ep.name not in allow:
            host.plugins.setdefault(ep.name, replace(info, disabled=f"not named in {LOAD_VARIABLE}"))
            continue
        if ep.name in host.plugins and not host.plugins[ep.name].disabled:
            other = host.plugins[ep.name]
            name = f"{ep.name} ({info.distribution or 'unknown distribution'})"
            if other.distribution == CORE_DISTRIBUTION:
                error = (f"its entry point name {ep.name!r} is a built-in plugin's: rename your entry point, or set "
                         f"{DISABLE_VARIABLE}={ep.name} to load yours in place of the built-in")
            else:
                error = f"entry point name {ep.name!r} is already taken by distribution {other.distribution!r}"
            host.plugins[name] = replace(info, name=name, error=error)
            continue
        try:
            with import_time_limit(seconds):
                module = ep.load()
            check_api(module)
            host.pm.register(module, name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit() at import, a BaseException of its own: broken, ganzoo goes on
            host.plugins[ep.name] = replace(info, error=one_line(load_failure(exc)))
            continue
        host.plugins[ep.name] = replace(info, hooks=_hook_names(host.pm, module))
    known = {ep.name for ep, _ in found}
    for variable, names in ((LOAD_VARIABLE, allow or set()), (DISABLE_VARIABLE, disable)):
        for name in sorted(names - known):
            host.warnings.append(f"{variable} names {name!r}, which is not an installed plugin")
    for path in plugin_files:
        module = load_plugin_file(Path(path), seconds)
        try:
            check_api(module)
        except PluginError as exc:
            raise PluginError(f"plugin file {path} {exc}") from None
        name = add_plugin(host, module, Path(path).stem)
        host.plugins[name] = PluginInfo(name, f"file {path}", hooks=_hook_names(host.pm, module))
    for plugin in plugins:
        name = add_plugin(host, plugin)
        host.plugins[name] = PluginInfo(name, hooks=_hook_names(host.pm, plugin))
    host.register_parts()
    host.register_commands()
    return host


def _distribution(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else ""


def _version(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else ""


def add_plugin(host: Host, plugin: object, name: str | None = None) -> str:
    """Register a plugin object (module or instance) with the manager and return its name."""
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    try:
        check_api(plugin)
    except PluginError as exc:
        raise PluginError(f"plugin {name!r} {exc}") from None
    existing = host.plugins.get(name)
    if host.pm.has_plugin(name) or (existing is not None and not existing.disabled):  # a disabled one is not loaded
        raise PluginError(f"a plugin named {name!r} is already loaded")
    try:
        registered = host.pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # e.g. a hookimpl with an argument the hook does not have
        raise PluginError(f"plugin {name!r} does not fit ganzoo's hooks: {one_line(exc)}") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # pluggy reads the plugin's attributes: a property may raise anything
        raise PluginError(f"plugin {name!r} cannot be registered: {type(exc).__name__}: {one_line(exc)}") from None
    if registered is None:
        raise PluginError(f"plugin {name!r} is blocked")
    return registered
