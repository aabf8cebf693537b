"""Calling the hooks of one run, in ganzoo's one dispatch order: the plugins' implementations in load
order, then the run's own observers (each plugin's ``ganzoo_run_observers``, in load order), then the
observers the caller handed to the run (the command line's progress bar, the Python API's callback).

A plugin that raises (or calls ``sys.exit``) in a hook is named in a PluginError; a failure in the
middle of an epoch's end is reported at the next observer hook (``Dispatch.defer``). Under torchrun,
ranks other than 0 skip the hooks that observe the run (``WRITER_HOOKS``), and only rank 0 has
observers. An observer's ``close()``, when it has one, is called when the run's session ends,
however it ends.
"""

from __future__ import annotations

import inspect
from typing import Any

from ganzoo.core import hookspecs
from ganzoo.core.compat import LEGACY_HOOKS
from ganzoo.core.errors import PluginError, one_line
from ganzoo.core.host import Host, Implementation

# Hooks that observe a run; under torchrun only rank 0 (the writer) calls them.
WRITER_HOOKS = frozenset({"ganzoo_on_train_start", "ganzoo_on_step_end", "ganzoo_on_epoch_end", "ganzoo_on_checkpoint_saved",
                          "ganzoo_on_train_end", "ganzoo_add_checkpoint_tensors", "ganzoo_on_checkpoint_save",
                          "ganzoo_sampling_weights"})
# What a run's observer object may implement: it is made after the networks are built.
OBSERVER_METHODS = frozenset({"ganzoo_on_train_start", "ganzoo_on_step_end", "ganzoo_on_epoch_end", "ganzoo_on_checkpoint_saved",
                              "ganzoo_on_train_end", "ganzoo_add_checkpoint_tensors", "ganzoo_on_checkpoint_load",
                              "ganzoo_sampling_weights"})


def spec_arguments(hook: str) -> tuple[str, ...]:
    return tuple(inspect.signature(getattr(hookspecs, hook)).parameters)


def observer_calls(plugin: str, observer: object) -> dict[str, Implementation]:
    """The hooks an observer object implements, checked: a ``ganzoo_`` method that is not a run hook,
    or that takes an argument its hook does not have, is a PluginError naming the plugin."""
    calls = {}
    for name in dir(observer):
        if not name.startswith("ganzoo_") or not callable(method := getattr(observer, name)):
            continue
        if name not in OBSERVER_METHODS:
            raise PluginError(f"plugin {plugin!r}: its run observer {type(observer).__name__} has a method {name}, which is "
                              f"not a hook a run observer may implement ({', '.join(sorted(OBSERVER_METHODS))})")
        parameters = inspect.signature(method).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            parameters = {arg: None for arg in spec_arguments(name)}  # **kwargs: it takes them all
        takes = tuple(parameters)
        extra = sorted(set(takes) - set(spec_arguments(name)))
        if extra:
            raise PluginError(f"plugin {plugin!r}: {type(observer).__name__}.{name} takes {', '.join(extra)}, which the hook "
                              f"does not pass (it passes {', '.join(spec_arguments(name))})")
        calls[name] = Implementation(plugin, method, takes)
    return calls


class Dispatch:
    """The hooks of one run: the host's plugins, then the run's observers."""

    def __init__(self, host: Host, writer: bool = True):
        self.host, self.writer = host, writer
        self.observers: list[tuple[str, object, dict[str, Implementation]]] = []
        self._calls: dict[str, list[Implementation]] = {}
        self.deferred: PluginError | None = None

    def defer(self, error: PluginError) -> None:
        """Report a plugin's failure at the next observer hook where the run's state is whole
        (``trainer.consistent``), not now: for a failure in the middle of an epoch's end (the sample
        grid's weights), which must finish, its checkpoint included, so that the run stops with a
        checkpoint of that step. Until then no plugin answers ``first``."""
        self.deferred = self.deferred or error

    def add(self, plugin: str, observer: object) -> None:
        """Add a run observer (an object with hook methods); ``plugin`` names it in errors."""
        self.observers.append((plugin, observer, observer_calls(plugin, observer)))
        self._calls.clear()

    def of(self, plugin: str) -> list[object]:
        """The run observers a plugin made (``"caller"``: those the caller handed in)."""
        return [observer for name, observer, _ in self.observers if name == plugin]

    def make_observers(self, trainer: Any) -> None:
        """Ask every plugin for its observers of this run (``ganzoo_run_observers``)."""
        for impl in self.host.implementations("ganzoo_run_observers"):
            made = self._call(impl, "ganzoo_run_observers", trainer, {"trainer": trainer})
            for observer in made if isinstance(made, list | tuple) else [made]:
                if observer is not None:
                    self.add(impl.plugin, observer)

    def close(self) -> None:
        """Call every observer's ``close()`` (those that have one), each even when another raises."""
        failed = None
        for plugin, observer, _ in self.observers:
            closing = getattr(observer, "close", None)
            if callable(closing):
                try:
                    closing()
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # sys.exit() too; reported after the others are closed
                    failed = failed or PluginError(f"plugin {plugin!r} raised in its run observer's close(): "
                                                   f"{type(exc).__name__}: {one_line(exc)}")
        if failed is not None:
            raise failed

    def calls(self, hook: str) -> list[Implementation]:
        if hook not in self._calls:
            found = list(self.host.implementations(hook))
            found += [calls[hook] for _, _, calls in self.observers if hook in calls]
            self._calls[hook] = found
        return self._calls[hook]

    def notify(self, hook: str, trainer: Any, **kwargs: Any) -> None:
        """Call every implementation of an observer hook (and, after it, its pre-0.3 name); first
        raise a deferred failure, once the run's state is whole."""
        if self.deferred is not None and getattr(trainer, "consistent", True):
            error, self.deferred = self.deferred, None
            raise error
        if hook in WRITER_HOOKS and not self.writer:
            return
        arguments = {"trainer": trainer, **kwargs}
        for call in self.calls(hook):
            self._call(call, hook, trainer, arguments)
        if hook in LEGACY_HOOKS:
            self.notify(LEGACY_HOOKS[hook], trainer, **kwargs)

    def first(self, hook: str, trainer: Any, **kwargs: Any) -> tuple[str, Any] | None:
        """(plugin, answer) of the first answer that is not None to a firstresult hook, in dispatch order."""
        if self.deferred is not None or (hook in WRITER_HOOKS and not self.writer):
            return None
        arguments = {"trainer": trainer, **kwargs}
        for call in self.calls(hook):
            answer = self._call(call, hook, trainer, arguments)
            if answer is not None:
                return call.plugin, answer
        return None

    @staticmethod
    def _call(call: Implementation, hook: str, trainer: Any, arguments: dict[str, Any]) -> Any:
        try:
            return call.function(**{name: arguments[name] for name in call.argnames})
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit, GeneratorExit, a BaseException of the plugin's own: all contained
            step = getattr(getattr(trainer, "state", None), "step", 0)
            raise PluginError(f"plugin {call.plugin!r} raised in {hook} at step {step}: {type(exc).__name__}: {one_line(exc)}") from None
