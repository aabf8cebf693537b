"""The registry and plugin loading: registration, duplicates, unknown names, entry points, broken plugins."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types

import pytest
from click.testing import CliRunner

from ganzoo import hookimpl
from ganzoo.cli.main import cli
from ganzoo.core.errors import DuplicateNameError, UnknownNameError
from ganzoo.core.host import load_host
from ganzoo.core.parts import NamedFactory, Objective, Strategy
from ganzoo.core.registry import Registry


class MaxPlugin:
    """A throw-away plugin: an aggregation and a strategy."""

    @hookimpl
    def ganzoo_register_aggregations(self, register):
        register(NamedFactory("max", "the largest generator loss", lambda config: lambda out: Objective(out.g_losses.max(0).values.mean())))

    @hookimpl
    def ganzoo_register_strategies(self, register):
        register(Strategy("maxpsg", "PSG with the max aggregation", {"policy": "tuple", "aggregation": "max", "n_gens": 2}))


def test_register_and_get():
    registry = Registry()
    part = Strategy("a", "first")
    registry.add("strategy", part, "p1")
    assert registry.get("strategy", "a") is part
    assert registry.entry("strategy", "a").plugin == "p1"
    assert registry.names("strategy") == ["a"]


def test_duplicate_name_names_both_plugins():
    registry = Registry()
    registry.add("strategy", Strategy("a", ""), "first-plugin")
    with pytest.raises(DuplicateNameError, match="first-plugin.*second-plugin"):
        registry.add("strategy", Strategy("a", ""), "second-plugin")


def test_unknown_name_suggests(host):
    with pytest.raises(UnknownNameError, match="did you mean 'psg'"):
        host.registry.get("strategy", "pgs")
    with pytest.raises(UnknownNameError, match="did you mean 'algorithm1'"):
        host.registry.get("aggregation", "algorithm")


def test_builtins_come_through_the_entry_point_group(host):
    for name in ("psg", "sngan", "aggregations", "nets", "datasets"):
        info = host.plugins[name]
        assert not info.broken
        assert info.distribution == "ganzoo"
        assert info.entry_point == f"{name} = ganzoo.plugins.{name}"
    assert host.registry.entry("strategy", "psg").plugin == "psg"
    assert host.registry.entry("input policy", "binary").plugin == "binary"  # shared by sngan, dcgan, psg --policy binary
    assert set(host.registry.names("aggregation")) >= {"mean", "independent", "algorithm1"}
    assert set(host.registry.names("architecture")) >= {"dcgan28", "cnn32"}
    assert set(host.registry.names("dataset")) >= {"mnist", "fashion-mnist", "cifar10", "idx"}


def test_plugin_registered_in_a_test_shows_in_list():
    host = load_host(plugins=[MaxPlugin()])
    result = CliRunner().invoke(cli, ["list", "--json"], obj=host)
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    rows = {row["name"]: row for row in listing["aggregations"]}
    assert {k: rows["max"][k] for k in ("name", "plugin", "summary")} == {"name": "max", "plugin": "MaxPlugin", "summary": "the largest generator loss"}
    assert rows["max"]["options"] == [] and rows["max"]["supports"]["min_gens"] == 1
    assert rows["algorithm1"]["supports"]["requires"] == ["tuple-pick"]
    policies = {row["name"]: row for row in listing["policies"]}
    assert policies["tuple"]["supports"]["provides"] == ["tuple-pick"] and policies["pac"]["supports"]["packs_images"] is True
    assert [o["flag"] for o in policies["pac"]["options"]] == ["--loss", "--pack"]
    assert {o["flag"] for o in listing["options"]} >= {"--ema", "--tensorboard"}  # the observers' options
    assert any(row["name"] == "maxpsg" for row in listing["strategies"])
    # the human table too
    table = CliRunner().invoke(cli, ["list", "aggregations"], obj=host)
    assert "max" in table.output and "MaxPlugin" in table.output


def _fake_entry_points(monkeypatch, modules: dict[str, str]):
    """Make importlib.metadata.entry_points(group='ganzoo') also return entry points for `modules`."""
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == "ganzoo":
            found += [importlib.metadata.EntryPoint(name, value, "ganzoo") for name, value in modules.items()]
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_fake_entry_point_is_loaded(monkeypatch):
    module = types.ModuleType("fake_ganzoo_plugin")
    @hookimpl
    def ganzoo_register_aggregations(register):
        register(NamedFactory("fake-max", "from a fake entry point", lambda config: None))

    module.ganzoo_register_aggregations = ganzoo_register_aggregations
    monkeypatch.setitem(sys.modules, "fake_ganzoo_plugin", module)
    _fake_entry_points(monkeypatch, {"fake": "fake_ganzoo_plugin"})
    host = load_host()
    assert host.registry.entry("aggregation", "fake-max").plugin == "fake"
    assert host.plugins["fake"].hooks == ("ganzoo_register_aggregations",)


def test_broken_plugins_are_reported_and_the_cli_still_runs(monkeypatch):
    raising = types.ModuleType("raising_ganzoo_plugin")

    @hookimpl
    def ganzoo_register_strategies(register):
        raise RuntimeError("boom while registering")

    raising.ganzoo_register_strategies = ganzoo_register_strategies
    duplicate = types.ModuleType("duplicate_ganzoo_plugin")

    @hookimpl
    def ganzoo_register_input_policies(register):
        register(NamedFactory("tuple", "a second tuple policy", lambda config: None))

    duplicate.ganzoo_register_input_policies = ganzoo_register_input_policies
    monkeypatch.setitem(sys.modules, "raising_ganzoo_plugin", raising)
    monkeypatch.setitem(sys.modules, "duplicate_ganzoo_plugin", duplicate)
    _fake_entry_points(monkeypatch, {
        "missing": "no_such_module_for_ganzoo",
        "raising": "raising_ganzoo_plugin",
        "dupe": "duplicate_ganzoo_plugin",
    })
    host = load_host()
    broken = {p.name: p.error for p in host.broken()}
    assert "No module named 'no_such_module_for_ganzoo'" in broken["missing"]
    assert "boom while registering" in broken["raising"]
    assert "'psg'" in broken["dupe"] and "'dupe'" in broken["dupe"]
    assert host.registry.entry("input policy", "tuple").plugin == "psg"  # the first one stays

    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "--json"])  # loads the (patched) entry points itself
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["missing"]["status"] == "broken"
    assert rows["missing"]["entry_point"] == "missing = no_such_module_for_ganzoo"
    assert rows["psg"]["status"] == "ok"
    table = runner.invoke(cli, ["plugins"])
    assert table.exit_code == 0 and "broken" in table.output
    listing = runner.invoke(cli, ["list", "strategies"])
    assert listing.exit_code == 0 and "psg" in listing.output
    assert "plugin 'missing' is broken" in listing.stderr


def test_broken_command_hook_and_command_clash_are_reported():
    import click

    class BadCommands:
        @hookimpl
        def ganzoo_register_commands(self, register):
            raise RuntimeError("no commands today")

    class ClashingCommands:
        @hookimpl
        def ganzoo_register_commands(self, register):
            register(click.Command("psg"), group="train")

    class ClashingRoot:
        @hookimpl
        def ganzoo_register_commands(self, register):
            register(click.Command("sample"), group="root")

    host = load_host(plugins=[BadCommands(), ClashingCommands(), ClashingRoot()])
    broken = {p.name: p.error for p in host.broken()}
    assert broken["BadCommands"] == "ganzoo_register_commands raised RuntimeError: no commands today"
    assert "train command 'psg' belongs to plugin 'psg''s strategy" in broken["ClashingCommands"]
    assert "command 'sample' is one of ganzoo's own commands" in broken["ClashingRoot"]
    assert "--n-gens" in CliRunner().invoke(cli, ["train", "psg", "--help"], obj=host).stdout  # the core's command stays
    result = CliRunner().invoke(cli, ["plugins", "--json"], obj=host)
    assert {r["name"]: r["status"] for r in json.loads(result.stdout)}["BadCommands"] == "broken"


def test_a_plugin_can_add_a_root_command():
    import click

    class Hello:
        @hookimpl
        def ganzoo_register_commands(self, register):
            register(click.Command("hello", callback=lambda: click.echo("hi from a plugin")), group="root")

    result = CliRunner().invoke(cli, ["hello"], obj=load_host(plugins=[Hello()]))
    assert result.exit_code == 0 and result.stdout == "hi from a plugin\n"


def test_resuming_a_run_whose_plugin_is_gone_names_the_plugin(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "psg", "--aggregation", "max", "--limit-data", "64", "--batch-size", "32", "--steps", "1", "--device", "cpu", "--out", str(run_dir), "--quiet"]
    trained = CliRunner().invoke(cli, args, obj=load_host(plugins=[MaxPlugin()]))
    assert trained.exit_code == 0, trained.output
    resumed = CliRunner().invoke(cli, ["train", "psg", "--resume", str(run_dir), "--steps", "2"])
    assert resumed.exit_code == 2
    assert "needs the aggregation 'max' from plugin 'MaxPlugin', which is not installed" in resumed.stderr


def test_importing_ganzoo_loads_no_plugins_and_no_console():
    import subprocess

    code = (
        "import sys, ganzoo, ganzoo.cli.main, ganzoo.training.trainer, ganzoo.core.host;"
        "loaded = sorted(m for m in sys.modules if m.startswith('ganzoo_') or m == 'rich.console');"
        "print(loaded)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_entry_point_name_taken_twice_is_named_with_its_distribution(monkeypatch):
    real = importlib.metadata.entry_points

    class FakeDist:
        metadata = {"Name": "ganzoo-fork"}
        version = "9.9"

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == "ganzoo":
            ep = importlib.metadata.EntryPoint("psg", "ganzoo.plugins.psg", "ganzoo")
            object.__setattr__(ep, "dist", FakeDist())
            found.append(ep)
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    host = load_host()
    assert not host.plugins["psg"].broken
    clash = host.plugins["psg (ganzoo-fork)"]
    assert clash.name == "psg (ganzoo-fork)" and clash.error == (
        "its entry point name 'psg' is a built-in plugin's: rename your entry point, or set GANZOO_DISABLE_PLUGINS=psg "
        "to load yours in place of the built-in")


def test_malloc_tuning_is_applied_at_train_time_and_can_be_turned_off(tmp_path, monkeypatch):
    import tomllib

    from ganzoo.training.runtime import tune_malloc

    assert tune_malloc() is True  # glibc, as on every machine this suite runs on
    monkeypatch.setenv("GANZOO_MALLOC_TUNING", "0")
    assert tune_malloc() is False
    run_dir = tmp_path / "run"
    args = ["train", "sngan", "--limit-data", "64", "--batch-size", "32", "--steps", "1", "--device", "cpu", "--out", str(run_dir), "--quiet"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert tomllib.loads((run_dir / "config.toml").read_text())["meta"]["malloc_tuning"] is False


def test_plugins_table_keeps_every_hook_name_whole_in_80_columns():
    host = load_host()
    result = CliRunner().invoke(cli, ["plugins"], obj=host, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    words = set(result.stdout.replace("│", " ").split())
    for info in host.plugins.values():
        for hook in info.hooks:
            assert hook.removeprefix("ganzoo_") in words, hook  # folded onto its own line, never cut with "…"
