"""The ganzoo command line (``ganzoo.cli.main``); one module per command."""

import sys


def main() -> None:
    """The ``ganzoo`` script: a Ctrl-C while the command line is still importing ends quietly too."""
    try:
        from ganzoo.cli.main import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    run()


def __getattr__(name: str):
    """``from ganzoo.cli import cli`` (plugin API 0.2's path of the click group) still works."""
    if name == "cli":
        from ganzoo.cli.main import cli

        return cli
    raise AttributeError(f"module 'ganzoo.cli' has no attribute {name!r}")
