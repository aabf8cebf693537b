"""The ganzoo command line (``ganzoo.cli.main``); one module per command."""

from ganzoo.cli.interrupt import importing


def main() -> None:
    """The ``ganzoo`` script: a Ctrl-C while the command line is still importing ends quietly too."""
    with importing():
        from ganzoo.cli.main import main as run
    run()


def __getattr__(name: str):
    """``from ganzoo.cli import cli``, plugin API 0.2's path of the click group, until 0.7.0 (ganzoo.core.compat)."""
    if name == "cli":
        from ganzoo.cli.main import cli

        return cli
    raise AttributeError(f"module 'ganzoo.cli' has no attribute {name!r}")
