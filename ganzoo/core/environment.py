"""The environment variables ganzoo reads, checked once when a command starts: a value ganzoo
cannot use is one line and exit 2 before anything is read or written.

GANZOO_DATA and GANZOO_CACHE name folders (created when missing); GANZOO_MALLOC_TUNING is 0 or 1;
GANZOO_STOP_WITH_PARENT is set by ``ganzoo compare`` for its runs (and checked, as a process id of
the parent, when a run starts: ``ganzoo.training.runtime``); GANZOO_LOAD_PLUGINS,
GANZOO_DISABLE_PLUGINS and GANZOO_PLUGIN_IMPORT_SECONDS are read by ``ganzoo.core.host``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from ganzoo.core.errors import GanzooError, shown
from ganzoo.core.safe_read import kind_of

FOLDERS = ("GANZOO_DATA", "GANZOO_CACHE")
MAX_PATH = 4096  # PATH_MAX on Linux


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    environ = os.environ if environ is None else environ
    for name in FOLDERS:
        value = environ.get(name)
        if value:  # empty or unset: the default, ~/.cache/ganzoo
            check_folder_variable(name, value)
    tuning = environ.get("GANZOO_MALLOC_TUNING")
    if tuning is not None and tuning not in ("0", "1"):
        raise GanzooError(f"GANZOO_MALLOC_TUNING must be 0 or 1, got {shown(tuning)}")
    parent = environ.get("GANZOO_STOP_WITH_PARENT")
    if parent:
        parent_pid(parent)


def parent_pid(value: str) -> int:
    """GANZOO_STOP_WITH_PARENT's process id (``ganzoo.training.runtime.stop_with_parent`` uses it)."""
    if not (value.isascii() and value.isdigit() and 1 < int(value) < 1 << 22):
        raise GanzooError(f"GANZOO_STOP_WITH_PARENT must be the process id of the ganzoo compare that started this run "
                          f"(it sets it), got {shown(value)}")
    return int(value)


def check_folder_variable(name: str, value: str) -> None:
    """A folder ganzoo may create: a path of sane length whose existing part is a folder."""
    if len(value) > MAX_PATH or "\0" in value:
        raise GanzooError(f"{name} is not a usable path ({len(value):,} characters)")
    path = os.path.expanduser(value)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise GanzooError(f"{name}={shown(value)} cannot be used: {getattr(exc, 'strerror', None) or exc}") from None
    if not stat.S_ISDIR(mode):
        kind = "file" if stat.S_ISREG(mode) else kind_of(mode)
        raise GanzooError(f"{name}={shown(value)} is not a folder (a {kind}); it names where ganzoo keeps its files")
