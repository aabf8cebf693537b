"""Helpers shared by tests that drive the CLI in-process on the tiny in-memory dataset."""

from __future__ import annotations

from click.testing import CliRunner

from ganzoo.cli.main import cli

TINY = ["--dataset", "tiny", "--batch-size", "16", "--device", "cpu"]  # options of a tiny ganzoo train


def invoke(host, *args):
    """Run ``ganzoo ARGS...`` in this process with ``host`` (a ganzoo.testing.make_host())."""
    return CliRunner().invoke(cli, list(args), obj=host)
