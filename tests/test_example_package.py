"""The external example plugin (plugins/ganzoo-example): really pip-installed, found through its entry
point, trained and sampled by the real CLI, never imported by the core, and the tutorial shows its files."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "plugins" / "ganzoo-example"
GANZOO = Path(sys.executable).parent / "ganzoo"


def test_it_is_an_installed_distribution_with_a_ganzoo_entry_point():
    distribution = importlib.metadata.distribution("ganzoo-example")
    (entry,) = [ep for ep in distribution.entry_points if ep.group == "ganzoo"]
    assert (entry.name, entry.value) == ("lsgan", "ganzoo_example")
    assert distribution.version == "0.2.0"


def test_the_cli_trains_samples_and_resumes_it(tmp_path):
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("GANZOO_LOAD_PLUGINS", None)
    run_dir = tmp_path / "run"
    common = ["--limit-data", "128", "--batch-size", "32", "--device", "cpu", "--quiet"]
    trained = subprocess.run([str(GANZOO), "train", "lsgan", *common, "--steps", "3", "--out", str(run_dir)],
                             capture_output=True, text=True, check=False, env=env, timeout=300)
    assert trained.returncode == 0, trained.stderr
    sampled = subprocess.run([str(GANZOO), "sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "s.png")],
                             capture_output=True, text=True, check=False, env=env, timeout=300)
    assert sampled.returncode == 0 and sampled.stdout.strip() == f"wrote {tmp_path / 's.png'} (raw weights)"
    resumed = subprocess.run([str(GANZOO), "train", "lsgan", "--resume", str(run_dir), "--steps", "5", "--json"],
                             capture_output=True, text=True, check=False, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["step"] == 5
    plugins = json.loads(subprocess.run([str(GANZOO), "plugins", "--json"], capture_output=True, text=True, check=False, env=env, timeout=300).stdout)
    row = next(r for r in plugins if r["name"] == "lsgan")
    assert (row["distribution"], row["status"], row["entry_point"]) == ("ganzoo-example", "ok", "lsgan = ganzoo_example")
    # an allow-list without it: the command is gone, the plugin listed as disabled
    hidden = subprocess.run([str(GANZOO), "train", "lsgan", "--help"], capture_output=True, text=True, check=False,
                            env={**env, "GANZOO_LOAD_PLUGINS": ""}, timeout=300)
    assert hidden.returncode == 2 and "unknown command 'lsgan'" in hidden.stderr


def test_the_core_never_imports_it():
    core = [*(ROOT / "ganzoo").rglob("*.py"), *(p for p in (ROOT / "plugins").glob("ganzoo_*/*.py"))]
    assert core and not [p for p in core if "ganzoo_example" in p.read_text(encoding="utf-8")]
    code = "import sys, ganzoo.cli.main, ganzoo.training.trainer, ganzoo.testing; print('ganzoo_example' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_the_tutorial_shows_the_packages_files_word_for_word():
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    toml = re.search(r"`pyproject.toml`:\n\n```toml\n(.*?)\n```", text, flags=re.DOTALL)[1]
    module = re.search(r"`ganzoo_example.py`:\n\n```python\n(.*?)\n```", text, flags=re.DOTALL)[1]
    assert toml == (EXAMPLE / "pyproject.toml").read_text(encoding="utf-8").rstrip("\n")
    assert module == (EXAMPLE / "ganzoo_example.py").read_text(encoding="utf-8").rstrip("\n")
