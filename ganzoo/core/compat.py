"""Everything ganzoo keeps for plugins written against an older plugin API, in one module, each with
the release that removes it (``REMOVED_IN``). Nothing here runs at ``import ganzoo``: the host calls
``install()`` before it imports any plugin (``ganzoo.core.host.load_host``).

What is kept, and for whom (docs/plugins.md, "From 0.4 to 0.5" and earlier):

- module paths of 0.2 (``ganzoo.parts``, ...) and of 0.4 (``ganzoo.training.checkpoint``, ...):
  ``MOVED``, served with a DeprecationWarning by a finder that ``install()`` adds;
- 0.2's ``strategy_command`` and a plugin that registers its own train command (``adopt_legacy_command``);
- 0.2's hook ``ganzoo_on_checkpoint_save`` (``LegacyHookSpecs``), a policy without the ``phase``
  argument (``with_phase``) and a checkpoint whose settings hold ``loss`` at the top (``upgrade_settings``);
- three that must live where their names are, each marked: ``Objective(generators=...)`` and
  ``objective.generators`` (``ganzoo.core.parts``), ``config.loss`` (``ganzoo.core.config``) and
  ``from ganzoo.cli import cli`` (``ganzoo/cli/__init__.py``).

This module imports no other part of ganzoo at its top, so that every layer may use it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import inspect
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pluggy

REMOVED_IN = "0.7.0"

_TRAINING_DATA = ("ganzoo.core.data", "ganzoo.core.idx", "ganzoo.core.digests", "ganzoo.training.batches")
_CHECKPOINT = ("ganzoo.runs.checkpoint", "ganzoo.core.tensorfile")
_IMAGES = ("ganzoo.runs.images", "ganzoo.core.data")
_CLASSIFIER = ("ganzoo.plugins.features.classifier", "ganzoo.core.digests")
_STATE_CHECK = ("ganzoo.runs.state_check", "ganzoo.training.state_spec")

# old module -> (the API version that moved it, the modules that hold its names now: the first that has a name gives it)
MOVED: dict[str, tuple[str, tuple[str, ...]]] = {
    **{f"ganzoo.{name}": ("0.3", (f"ganzoo.core.{name}",))
       for name in ("parts", "errors", "hookspecs", "host", "registry", "config", "files", "hookdoc")},
    **{f"ganzoo.{name}": ("0.3", (f"ganzoo.training.{name}",))
       for name in ("trainer", "generator_bank", "precision", "distributed", "runtime")},
    **{f"ganzoo.{name}": ("0.3", (f"ganzoo.runs.{name}",)) for name in ("rundir", "models", "sampling")},
    "ganzoo.checkpoint": ("0.3", _CHECKPOINT),
    "ganzoo.data": ("0.3", _TRAINING_DATA),
    "ganzoo.images": ("0.3", _IMAGES),
    "ganzoo.metrics": ("0.3", ("ganzoo.evaluation.metrics",)),
    "ganzoo.compare_report": ("0.3", ("ganzoo.evaluation.compare_report",)),
    "ganzoo.classifier": ("0.3", _CLASSIFIER),
    "ganzoo.evaluate": ("0.3", ("ganzoo.evaluation.evaluator",)),
    "ganzoo.train_options": ("0.3", ("ganzoo.core.options",)),
    "ganzoo.train_command": ("0.3", ("ganzoo.core.compat",)),
    "ganzoo.progress": ("0.3", ("ganzoo.cli.console",)),
    "ganzoo.eval_command": ("0.3", ("ganzoo.cli.eval", "ganzoo.evaluation.run_eval")),
    "ganzoo.compare_command": ("0.3", ("ganzoo.cli.compare",)),
    # 0.5: the run format is its own layer, what plugins need is core API, the LeNet is the features plugin's
    "ganzoo.training.checkpoint": ("0.5", _CHECKPOINT),
    "ganzoo.training.data": ("0.5", _TRAINING_DATA),
    "ganzoo.training.images": ("0.5", _IMAGES),
    "ganzoo.training.state_check": ("0.5", _STATE_CHECK),
    **{f"ganzoo.training.{name}": ("0.5", (f"ganzoo.runs.{name}",)) for name in ("rundir", "models", "sampling", "sample_export")},
    "ganzoo.evaluation.classifier": ("0.5", _CLASSIFIER),
    "ganzoo.cli.legacy": ("0.5", ("ganzoo.core.compat",)),
}
# names that changed with their module (0.5): old name -> new name
RENAMED = {"save_checkpoint": "save_tensor_file", "encode_checkpoint": "encode_tensor_file", "CheckpointFile": "TensorFile"}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves an old module path as a module holding the names of the modules that took its place."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        since, targets = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} is {' and '.join(targets)} since ganzoo plugin API {since}; "
                      f"the old path goes in {REMOVED_IN}", DeprecationWarning, stacklevel=2)
        for target in reversed(targets):  # the first module named wins a name that several hold
            module.__dict__.update({k: v for k, v in vars(importlib.import_module(target)).items() if not k.startswith("__")})
        module.__dict__.update({old: module.__dict__[new] for old, new in RENAMED.items() if new in module.__dict__})


def install() -> None:
    """Serve the old module paths (once per process); the host calls this before importing plugins."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())


# -- 0.2: plugins that made their own train command -------------------------------------------------

def strategy_command(strategy: Any, options: Sequence[Any] = ()) -> Any:
    """Plugin API 0.2's ``ganzoo.train_command.strategy_command``: a marker command whose
    TrainOptions the host keeps as the strategy's own options (``adopt_legacy_command``)."""
    import click

    command = click.Command(strategy.name, help=strategy.summary)
    command.ganzoo_legacy_options = tuple(options)
    return command


def adopt_legacy_command(host: Any, command: Any, plugin: str) -> None:
    """A 0.2 ``register(strategy_command(S, OPTIONS), group="train")``: the core makes every
    strategy's command now, so keep only the TrainOptions, as the strategy's own options."""
    from ganzoo.core.options import check_declarable
    from ganzoo.core.parts import TrainOption

    entry = host.registry.entry("strategy", command.name)
    if entry.plugin != plugin:
        raise ValueError(f"train command {command.name!r} belongs to plugin {entry.plugin!r}'s strategy")
    own = [o for o in getattr(command, "ganzoo_legacy_options", ()) if isinstance(o, TrainOption)]
    for option in own:
        check_declarable(option)
    if own:
        host.registry.replace("strategy", replace(entry.part, options=(*entry.part.options, *own)))
    host.warnings.append(
        f"plugin {plugin!r} registers its train command itself (plugin API 0.2); it still works until {REMOVED_IN}, "
        f"but the core makes `ganzoo train {command.name}`: drop ganzoo_register_commands and declare options on "
        f"the parts (docs/plugins.md, 'From 0.2 to 0.3')"
    )


# -- 0.2: a renamed hook, a renamed field, a policy without phase, loss as a core setting -----------

_spec = pluggy.HookspecMarker("ganzoo")


class LegacyHookSpecs:
    """Hooks that were renamed; still called, right after their new name."""

    @_spec(warn_on_impl=DeprecationWarning(
        f"ganzoo_on_checkpoint_save is ganzoo_add_checkpoint_tensors since plugin API 0.3 (same arguments); "
        f"the old name goes in {REMOVED_IN}"))
    def ganzoo_on_checkpoint_save(self, trainer, tensors):
        """Plugin API 0.2's name of ``ganzoo_add_checkpoint_tensors``."""


LEGACY_HOOKS = {"ganzoo_add_checkpoint_tensors": "ganzoo_on_checkpoint_save"}  # new name -> old name, called after it


def with_phase(policy: Any) -> Callable[..., Any]:
    """The policy as ``policy(D, real, fakes, phase)``; a 0.2 policy without ``phase`` is called without it."""
    try:
        parameters = inspect.signature(policy).parameters
    except (TypeError, ValueError):
        return policy
    if "phase" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return lambda d, real, fakes, phase: policy(d, real, fakes, phase=phase)
    return lambda d, real, fakes, phase: policy(d, real, fakes)


def upgrade_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's settings as this ganzoo reads them: 0.2 kept the binary policy's loss as a core
    setting; runs from before ``--amp`` trained in float32, and go on so."""
    settings = dict(settings)
    settings.setdefault("amp", "off")
    if "loss" in settings:
        settings["options"] = {"loss": settings.pop("loss"), **settings.get("options", {})}
    return settings
