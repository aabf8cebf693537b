"""The ganzoo command line (``ganzoo.cli.main``); one module per command."""

import os
import signal
import sys


def _interrupted_while_importing(number, frame) -> None:
    # Nothing has been written yet, so there is nothing to save: end at once. (A KeyboardInterrupt
    # raised inside a library's import can be swallowed by its own bare except, or print a traceback.)
    os.write(2, b"interrupted\n")
    os._exit(130)


def main() -> None:
    """The ``ganzoo`` script: a Ctrl-C while the command line is still importing ends quietly too."""
    previous = signal.signal(signal.SIGINT, _interrupted_while_importing)
    try:
        from ganzoo.cli.main import main as run
    finally:
        signal.signal(signal.SIGINT, previous)
    run()


def __getattr__(name: str):
    """``from ganzoo.cli import cli`` (plugin API 0.2's path of the click group) still works."""
    if name == "cli":
        from ganzoo.cli.main import cli

        return cli
    raise AttributeError(f"module 'ganzoo.cli' has no attribute {name!r}")
