"""Plugins written against plugin API 0.4 keep working in 0.5 (or get one line naming what to change);
built-in names a third party holds; a plugin's declared API. The 0.2/0.3 cases are in test_composition.py."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganzoo import PLUGIN_API
from ganzoo.cli.main import cli
from ganzoo.core.errors import PluginError
from ganzoo.core.host import load_host
from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.testing import make_host

OLD = Path(__file__).parent / "old_plugins"
SMALL = ["--dataset", "mnist", "--limit-data", "128", "--batch-size", "32", "--device", "cpu"]


def ganzoo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "GANZOO_LOAD_PLUGINS": "", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, env=environ, timeout=300)


def test_the_04_example_plugin_trains_resumes_and_samples_unchanged(tmp_path):
    """plugins/ganzoo-example as it was in 0.4 (tests/old_plugins/lsgan04.py, word for word): a TrainOption
    without a default, config.options.get with the default in the factory, torch imported at the top."""
    run, plugin, env = tmp_path / "run", ["--plugin", str(OLD / "lsgan04.py")], {"GANZOO_LOAD_PLUGINS": ""}

    def invoke(*args):
        result = CliRunner().invoke(cli, [*plugin, *args], env=env)
        assert result.exit_code == 0, result.output
        return result

    invoke("train", "lsgan", *SMALL, "--coding", "symmetric", "--steps", "2", "--out", str(run), "--quiet")
    invoke("train", "lsgan", "--resume", str(run), "--steps", "3", "--quiet")
    invoke("sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = read_checkpoint(run)[1]
    assert manifest["step"] == 3 and manifest["config"]["options"]["lsgan_coding"] == "symmetric"
    assert manifest["parts"]["strategy"] == {"name": "lsgan", "plugin": "lsgan04"}


PLUGIN_04 = textwrap.dedent('''
    """A 0.4 observer plugin: module-level state per trainer, and the 0.4 paths of what plugins needed."""
    import weakref

    from ganzoo import hookimpl
    from ganzoo.evaluation.classifier import LeNet, data_hash
    from ganzoo.training.data import default_root, read_idx
    from ganzoo.training.rundir import sample_path

    STEPS = weakref.WeakKeyDictionary()

    @hookimpl
    def ganzoo_on_step_end(trainer, step):
        STEPS[trainer] = step

    @hookimpl
    def ganzoo_on_epoch_end(trainer, epoch, metrics):
        assert sample_path(trainer.run_dir, epoch).exists() and callable(read_idx) and LeNet and data_hash and default_root()
        print("epoch", epoch, "after", STEPS[trainer], "steps", flush=True)
''')


def test_a_04_observer_that_imports_moved_modules_loads_with_warnings_naming_the_new_paths(tmp_path):
    path = tmp_path / "old04.py"
    path.write_text(PLUGIN_04)
    run = tmp_path / "run"
    result = ganzoo("--plugin", str(path), "train", "dcgan", *SMALL, "--steps", "5", "--log-every", "1", "--out", str(run),
                    env={"PYTHONWARNINGS": "default"})
    assert result.returncode == 0, result.stderr
    assert "epoch 1 after 4 steps" in result.stdout  # 128 images in batches of 32: an epoch is 4 steps
    for old, new in (("ganzoo.evaluation.classifier", "ganzoo.plugins.features.classifier"),
                     ("ganzoo.training.data", "ganzoo.core.data"), ("ganzoo.training.rundir", "ganzoo.runs.rundir")):
        assert f"{old} is {new}" in result.stderr and "plugin API 0.5; the old path goes in 0.7.0" in result.stderr


def test_importing_ganzoo_installs_nothing():
    code = "import sys, ganzoo; print(len(sys.meta_path), any('torch' in m for m in sys.modules))"
    bare = subprocess.run([sys.executable, "-c", "import sys; print(len(sys.meta_path))"], capture_output=True, text=True).stdout
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [bare.strip(), "False"]  # no finder of ganzoo's, no torch


def _fake_entry_points(monkeypatch, extra: list[tuple[str, str, str]]) -> None:
    """Add entry points (name, module, distribution) to the ganzoo group."""
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == "ganzoo":
            for name, value, dist in extra:
                ep = importlib.metadata.EntryPoint(name, value, "ganzoo")
                object.__setattr__(ep, "dist", type("Dist", (), {"metadata": {"Name": dist}, "version": "1.0"})())
                found.append(ep)
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_a_third_party_plugin_named_like_a_built_in_is_told_the_two_ways_out(monkeypatch, tmp_path):
    (tmp_path / "my_rpgan.py").write_text(textwrap.dedent('''
        from ganzoo import hookimpl
        from ganzoo.core.parts import Strategy

        @hookimpl
        def ganzoo_register_strategies(register):
            register(Strategy("rpgan-mine", "someone's own RpGAN", {"policy": "binary"}))
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    _fake_entry_points(monkeypatch, [("rpgan", "my_rpgan", "rpgan-plugin")])
    host = load_host(environ={})
    assert host.plugins["rpgan"].distribution == "ganzoo" and not host.plugins["rpgan"].broken
    assert host.plugins["rpgan (rpgan-plugin)"].error == (
        "its entry point name 'rpgan' is a built-in plugin's: rename your entry point, or set GANZOO_DISABLE_PLUGINS=rpgan "
        "to load yours in place of the built-in")
    swapped = load_host(environ={"GANZOO_DISABLE_PLUGINS": "rpgan"})
    assert swapped.plugins["rpgan"].distribution == "rpgan-plugin" and not swapped.plugins["rpgan"].broken
    assert swapped.plugins["rpgan (ganzoo)"].disabled.startswith("named in GANZOO_DISABLE_PLUGINS; the installed plugin")
    assert "rpgan-mine" in swapped.registry.names("strategy") and "rpgan" not in swapped.registry.names("strategy")
    neither = load_host(environ={"GANZOO_DISABLE_PLUGINS": "rpgan", "GANZOO_LOAD_PLUGINS": ""})  # third parties not allowed
    assert neither.plugins["rpgan"].distribution == "ganzoo" and neither.plugins["rpgan"].disabled == "named in GANZOO_DISABLE_PLUGINS"
    assert "rpgan" not in neither.registry.names("strategy") and "rpgan-mine" not in neither.registry.names("strategy")


def test_a_part_name_a_built_in_holds_says_how_to_replace_it(monkeypatch, tmp_path):
    (tmp_path / "my_psg.py").write_text(textwrap.dedent('''
        from ganzoo import hookimpl
        from ganzoo.core.parts import Strategy

        @hookimpl
        def ganzoo_register_strategies(register):
            register(Strategy("psg", "someone's own PSG", {"policy": "binary"}))
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    _fake_entry_points(monkeypatch, [("my-psg", "my_psg", "my-psg-plugin")])
    info = load_host(environ={}).plugins["my-psg"]
    assert info.broken and "strategy 'psg' is registered by both plugin 'psg' and plugin 'my-psg'" in info.error
    assert "'psg' is a built-in plugin: rename yours, or set GANZOO_DISABLE_PLUGINS=psg to use yours in its place" in info.error


def test_a_plugin_declares_the_plugin_api_it_needs(tmp_path):
    newer = tmp_path / "newer.py"
    newer.write_text('GANZOO_PLUGIN_API = "9.1"\n')
    result = ganzoo("--plugin", str(newer), "list")
    assert result.returncode == 2 and result.stderr.strip() == (
        f"error: plugin file {newer} needs plugin API 9.1 (GANZOO_PLUGIN_API); this ganzoo has {PLUGIN_API}: upgrade ganzoo")
    for ok in ("0.4", "0.5", PLUGIN_API):
        older = tmp_path / f"ok_{ok.replace('.', '_')}.py"
        older.write_text(f'GANZOO_PLUGIN_API = "{ok}"\n')
        assert ganzoo("--plugin", str(older), "list", "strategies").returncode == 0
    bad = tmp_path / "bad.py"
    bad.write_text('GANZOO_PLUGIN_API = "soon"\n')
    assert "is not a version like" in ganzoo("--plugin", str(bad), "list").stderr

    class Newer:  # a plugin object, as ganzoo.testing.registered adds one
        GANZOO_PLUGIN_API = "9.1"

    with pytest.raises(PluginError, match=r"plugin 'Newer' needs plugin API 9.1 \(GANZOO_PLUGIN_API\); this ganzoo has"):
        make_host().add(Newer())


def test_version_and_plugin_api_tell_one_story():
    out = ganzoo("--version").stdout.strip()
    assert out == f"ganzoo {importlib.metadata.version('ganzoo')} (plugin API {PLUGIN_API})"
    assert PLUGIN_API.rsplit(".", 1)[0] == importlib.metadata.version("ganzoo").rsplit(".", 1)[0]  # 0.5.x and 0.5.0
    listing = json.loads(ganzoo("list", "strategies", "--json").stdout)
    assert {row["distribution"] for row in listing["strategies"]} == {"ganzoo"}
