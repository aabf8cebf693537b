"""Importing a plugin: a plain .py file (``--plugin FILE``), the plugin API version it declares, and
how long its import may take: GANZOO_PLUGIN_IMPORT_SECONDS (default 120). An import that runs longer
is stopped by a SIGALRM timer and named with the module and line it is in (``ImportTimeout``), so
that a plugin that hangs at import is reported like any broken plugin, not a silent hang. Whatever
else a plugin raises at import (``SystemExit``, ``GeneratorExit``, a ``BaseException`` of its own)
is a PluginError too; only ``KeyboardInterrupt`` keeps its meaning."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from ganzoo import PLUGIN_API
from ganzoo.core.errors import GanzooError, PluginError, one_line, shown

IMPORT_SECONDS_VARIABLE = "GANZOO_PLUGIN_IMPORT_SECONDS"  # how long one plugin's import may take
IMPORT_SECONDS = 120.0
LOCAL_PREFIX = "ganzoo_local_"  # module names of --plugin files
API_ATTRIBUTE = "GANZOO_PLUGIN_API"  # a plugin module's declaration of the plugin API it needs, e.g. "0.5"


class ImportTimeout(BaseException):
    """A plugin's import ran past its time limit. A BaseException, so that the plugin's own
    ``except Exception`` does not swallow it; raised by the SIGALRM handler of ``import_time_limit``."""

    def __init__(self, seconds: float, where: str):
        super().__init__(f"did not finish importing within {seconds:g} s (still in {where})")


def import_seconds(environ: Mapping[str, str]) -> float:
    """The time limit of one plugin's import: GANZOO_PLUGIN_IMPORT_SECONDS, default 120."""
    text = environ.get(IMPORT_SECONDS_VARIABLE)
    if text is None:
        return IMPORT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= 1e9:  # NaN fails too; more than 1e9 overflows the timer
        raise GanzooError(f"{IMPORT_SECONDS_VARIABLE} must be a positive number of seconds (at most 1e9), got {shown(text, 60)}")
    return seconds


def _importing(frame: Any) -> str:
    """Where an import stands: the innermost module whose body is running, ganzoo's core and
    importlib left out (for a plugin stuck in its own code, the plugin's module), and its line."""
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        core = name in ("ganzoo", "__main__") or (name.startswith("ganzoo.") and not name.startswith("ganzoo.plugins."))
        if frame.f_code.co_name == "<module>" and not core and not name.startswith("importlib"):
            return f"module {name.removeprefix(LOCAL_PREFIX)}, line {frame.f_lineno}"
        frame = frame.f_back
    return "an unknown module"


@contextlib.contextmanager
def import_time_limit(seconds: float) -> Iterator[None]:
    """Raise ImportTimeout in the body (a plugin's import) once it has run ``seconds``: a SIGALRM
    timer, in the main thread only. The previous handler and timer are restored afterwards (a timer
    that was due meanwhile goes off then)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(number: int, frame: Any) -> None:
        raise ImportTimeout(seconds, _importing(frame))

    previous = signal.signal(signal.SIGALRM, expire)
    started = time.monotonic()
    earlier, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if earlier:
            signal.setitimer(signal.ITIMER_REAL, max(earlier - (time.monotonic() - started), 1e-3), interval)


def _api(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.\d+)?\s*", text)
    if match is None:
        raise ValueError(text)
    return int(match[1]), int(match[2])


def check_api(plugin: object) -> None:
    """Refuse a plugin that declares (``GANZOO_PLUGIN_API = "0.6"``) a newer plugin API than this ganzoo has."""
    try:
        wanted = getattr(plugin, API_ATTRIBUTE, None)  # a module's __getattr__ is the plugin's code too
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise PluginError(f"raised {type(exc).__name__} when asked for {API_ATTRIBUTE}: {one_line(exc)}") from None
    if wanted is None:
        return
    try:
        needs = _api(str(wanted))
    except ValueError:
        raise PluginError(f"{API_ATTRIBUTE} = {wanted!r} is not a version like \"0.5\"") from None
    if needs > _api(PLUGIN_API):
        raise PluginError(f"needs plugin API {wanted} ({API_ATTRIBUTE}); this ganzoo has {PLUGIN_API}: upgrade ganzoo")


def load_plugin_file(path: Path, seconds: float | None = None) -> ModuleType:
    """Import a plain .py file as a plugin module (``--plugin path/to/file.py``), within ``seconds``
    (default: GANZOO_PLUGIN_IMPORT_SECONDS)."""
    if not path.exists():
        raise PluginError(f"plugin file {path} does not exist")
    if path.suffix != ".py" or not path.is_file():
        raise PluginError(f"plugin file {path} is not a .py file")
    module_name = LOCAL_PREFIX + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pluggy look a module up by name
    try:
        with import_time_limit(import_seconds(os.environ) if seconds is None else seconds):
            spec.loader.exec_module(module)
    except BaseException as exc:  # sys.exit(), GeneratorExit, a BaseException of its own, the time limit
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, ImportTimeout):
            raise PluginError(f"plugin {path.stem!r} {exc}") from None
        raise PluginError(f"cannot load plugin file {path}: {type(exc).__name__}: {one_line(exc)}") from None
    return module


def load_failure(exc: BaseException) -> str:
    """What an entry-point plugin that failed to load is listed with."""
    if isinstance(exc, PluginError | ImportTimeout):
        return str(exc)
    return f"failed to load: {type(exc).__name__}: {one_line(exc)}"
