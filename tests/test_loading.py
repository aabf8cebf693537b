"""Loading controls: GANZOO_LOAD_PLUGINS, GANZOO_DISABLE_PLUGINS, --plugin FILE.py, and `ganzoo plugins --json`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from ganzoo.cli.main import cli
from ganzoo.core.errors import PluginError
from ganzoo.core.host import load_host

BUILTINS = {"psg", "sngan", "binary", "aggregations", "nets", "datasets", "dcgan", "madgan", "mgan", "gman", "pacgan", "ema", "tensorboard"}

LOCAL_PLUGIN = textwrap.dedent('''
    """A plugin in a plain file: a strategy that trains PSG with three generators."""
    from ganzoo import hookimpl
    from ganzoo.core.parts import Strategy

    STRATEGY = Strategy("psg3", "PSG with three generators", {"policy": "tuple", "n_gens": 3})

    @hookimpl
    def ganzoo_register_strategies(register):
        register(STRATEGY)
''')


def statuses(host) -> dict[str, str]:
    return {name: info.status for name, info in host.plugins.items()}


def test_an_empty_allow_list_loads_the_builtins_only():
    host = load_host(environ={"GANZOO_LOAD_PLUGINS": ""})
    loaded = {name for name, status in statuses(host).items() if status == "ok"}
    assert BUILTINS <= loaded and "lsgan" not in loaded
    assert host.plugins["lsgan"].disabled == "not named in GANZOO_LOAD_PLUGINS"
    assert "lsgan" not in host.registry.names("strategy") and "psg" in host.registry.names("strategy")
    assert host.warnings == []


def test_an_allow_list_names_third_party_plugins_and_warns_about_unknown_names():
    host = load_host(environ={"GANZOO_LOAD_PLUGINS": " lsgan , lsgna"})
    assert statuses(host)["lsgan"] == "ok" and "lsgan" in host.registry.names("strategy")
    assert host.warnings == ["GANZOO_LOAD_PLUGINS names 'lsgna', which is not an installed plugin"]
    assert BUILTINS <= {n for n, s in statuses(host).items() if s == "ok"}  # built-ins need no naming


def test_disabling_removes_a_plugin_and_its_parts(monkeypatch):
    monkeypatch.setenv("GANZOO_DISABLE_PLUGINS", "tensorboard,madgan")
    host = load_host()
    assert statuses(host)["tensorboard"] == statuses(host)["madgan"] == "disabled"
    assert "madgan" not in host.registry.names("strategy") and "tensorboard" not in host.registry.names("train option")
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["madgan"]["status"] == "disabled" and rows["madgan"]["error"] == "named in GANZOO_DISABLE_PLUGINS"
    assert rows["psg"]["status"] == "ok" and rows["psg"]["error"] == ""
    assert set(rows["ema"]) == {"name", "distribution", "version", "entry_point", "hooks", "status", "error"}
    assert "ganzoo_run_observers" in rows["ema"]["hooks"]
    gone = CliRunner().invoke(cli, ["train", "madgan"])
    assert gone.exit_code == 2 and "unknown command 'madgan'" in gone.stderr
    assert "plugins not loaded: madgan (named in GANZOO_DISABLE_PLUGINS), tensorboard (named in" in gone.stderr
    assert "--tensorboard" not in CliRunner().invoke(cli, ["train", "dcgan", "--help"]).stdout


def test_plugin_file_trains_and_samples_through_the_real_cli(tmp_path):
    path = tmp_path / "psg3.py"
    path.write_text(LOCAL_PLUGIN)
    run_dir = tmp_path / "run"
    ganzoo = [sys.executable, "-m", "ganzoo", "--plugin", str(path)]
    trained = subprocess.run([*ganzoo, "train", "psg3", "--limit-data", "64", "--batch-size", "32", "--steps", "2",
                              "--device", "cpu", "--out", str(run_dir), "--json"], capture_output=True, text=True, check=False, timeout=300)
    assert trained.returncode == 0, trained.stderr
    assert len(json.loads(trained.stdout)["g_loss"]) == 3
    listed = json.loads(subprocess.run([*ganzoo, "plugins", "--json"], capture_output=True, text=True, check=False, timeout=300).stdout)
    row = next(r for r in listed if r["name"] == "psg3")
    assert row["entry_point"] == f"file {path}" and row["status"] == "ok"
    resumed = subprocess.run([*ganzoo, "train", "psg3", "--resume", str(run_dir), "--steps", "3", "--quiet"],
                             capture_output=True, text=True, check=False, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    without = subprocess.run([sys.executable, "-m", "ganzoo", "train", "psg3", "--resume", str(run_dir)],
                             capture_output=True, text=True, check=False, timeout=300)
    assert without.returncode == 2 and "unknown command 'psg3'" in without.stderr


@pytest.mark.parametrize("content, message", [
    ("raise RuntimeError('half-written plugin')", "cannot load plugin file {path}: RuntimeError: half-written plugin"),
    ("def broken(:\n", "cannot load plugin file {path}: SyntaxError"),
])
def test_a_plugin_file_that_fails_is_one_line_and_exit_code_2(tmp_path, content, message):
    path = tmp_path / "bad_plugin.py"
    path.write_text(content)
    result = CliRunner().invoke(cli, ["--plugin", str(path), "list"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: " + message.format(path=path))
    assert len(result.stderr.strip().splitlines()) == 1


def test_plugin_file_mistakes(tmp_path):
    missing = CliRunner().invoke(cli, ["--plugin", str(tmp_path / "nope.py"), "list"])
    assert missing.exit_code == 2 and missing.stderr == f"error: plugin file {tmp_path / 'nope.py'} does not exist\n"
    multi = tmp_path / "multi.py"
    multi.write_text('raise RuntimeError("line one\\nline two")\n')
    result = CliRunner().invoke(cli, ["--plugin", str(multi), "list"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "line one / line two" in result.stderr
    text = tmp_path / "notes.txt"
    text.write_text("")
    with pytest.raises(PluginError, match="is not a .py file"):
        load_host(plugin_files=[text])
    clash = tmp_path / "psg.py"
    clash.write_text("")
    result = CliRunner().invoke(cli, ["--plugin", str(clash), "list"])
    assert result.exit_code == 2 and result.stderr == "error: a plugin named 'psg' is already loaded\n"


def test_a_plugin_file_may_take_the_name_of_a_disabled_plugin(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_DISABLE_PLUGINS", "psg")
    local = tmp_path / "psg.py"
    local.write_text("")
    host = load_host(plugin_files=[local])
    assert host.plugins["psg"].entry_point == f"file {local}"
    assert "psg" not in host.registry.names("strategy")
