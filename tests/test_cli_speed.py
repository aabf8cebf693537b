"""The command line answers at once: --help, --version, list, plugins and a strategy's --help import
no torch (ganzoo, its built-in plugins and the installed example plugin declare their parts without
building anything; torch comes in where a run or a command computes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["train", "psg", "--help"], ["train", "--help"], ["list"],
                                  ["list", "--json"], ["plugins"], ["sample", "--help"], ["compare", "--help"]])
def test_no_torch_is_imported(args):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "ganzoo", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "100"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "ganzoo.cli.main" in imported  # the command really ran through ganzoo's imports
    assert [name for name in imported if name == "torch" or name.startswith("torch.")] == []
