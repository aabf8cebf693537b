"""ganzoo: a plugin-style GAN zoo. Plugins need only ``from ganzoo import hookimpl`` and the part
types of ``ganzoo.core.parts`` (docs/plugins.md)."""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

import pluggy

__version__ = "0.1.0"
PLUGIN_API = "0.4.0"

hookimpl = pluggy.HookimplMarker("ganzoo")

__all__ = ["PLUGIN_API", "__version__", "hookimpl"]

# Plugin API 0.2 module paths -> where the same names live now. Importing an old path still works
# (with a DeprecationWarning), so a plugin written against 0.2 keeps loading.
MOVED = {
    **{f"ganzoo.{name}": f"ganzoo.core.{name}" for name in ("parts", "errors", "hookspecs", "host", "registry", "config", "files", "hookdoc")},
    **{f"ganzoo.{name}": f"ganzoo.training.{name}" for name in ("trainer", "checkpoint", "rundir", "data", "models", "generator_bank",
                                                              "precision", "distributed", "runtime", "images", "sampling")},
    **{f"ganzoo.{name}": f"ganzoo.evaluation.{name}" for name in ("metrics", "classifier", "compare_report")},
    "ganzoo.evaluate": "ganzoo.evaluation.evaluator",
    "ganzoo.train_options": "ganzoo.core.options",
    "ganzoo.train_command": "ganzoo.cli.legacy",
    "ganzoo.progress": "ganzoo.cli.console",
    "ganzoo.eval_command": "ganzoo.cli.eval",
    "ganzoo.compare_command": "ganzoo.cli.compare",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``import ganzoo.parts`` and the other 0.2 paths as a module holding the new module's names."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        new = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} is {new} since ganzoo plugin API 0.3", DeprecationWarning, stacklevel=2)
        target = importlib.import_module(new)
        module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})


sys.meta_path.append(_MovedModules())
