"""docs/cli.md's generated block (ganzoo.cli.docs): it is the rendering of the commands, it covers
every strategy and option, and --write touches nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganzoo.cli import docs
from ganzoo.cli.train import train_command
from ganzoo.core import options as part_options

CLI_MD = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


@pytest.fixture(scope="module")
def rendered() -> str:
    return docs.render()


@pytest.fixture(scope="module")
def host():
    return docs.builtin_host()


def test_the_reference_is_the_rendering_of_the_commands(rendered):
    block = docs.documented_block(CLI_MD.read_text(encoding="utf-8"))
    assert block, f"{CLI_MD} has no command reference markers"
    assert block == rendered, "run: python -m ganzoo.cli.docs --write docs/cli.md"


def test_every_strategy_and_every_option_of_a_strategy_command_is_there(rendered, host):
    strategies = host.registry.names("strategy")
    assert {"psg", "rpgan", "gman"} <= set(strategies)
    for name in strategies:
        assert f"| `{name}` |" in rendered, name  # its row of the strategy table
    psg = train_command(host.registry.get("strategy", "psg"), host)
    flags = [flag for param in psg.params for flag in (*param.opts, *param.secondary_opts)]
    assert "--policy" in flags and "--gman-lambda" in flags and "--ema" in flags
    for flag in flags:
        assert flag in rendered, flag
    for key, owned in part_options.collect(host.registry).items():  # every policy's, aggregation's and strategy's own
        assert f"`{owned.option.flag}" in rendered and f"`{key}`" in rendered, key


@pytest.mark.parametrize("path", docs.COMMANDS)
def test_every_command_has_its_help_section(rendered, path):
    heading = f"### {' '.join(('ganzoo', *path, '--help'))}\n\n```text\nUsage: {' '.join(('ganzoo', *path))} "
    assert heading in rendered


def test_the_rendering_is_deterministic(rendered, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # the terminal's width must not matter
    monkeypatch.setenv("GANZOO_LOAD_PLUGINS", "lsgan")  # nor which third-party plugins are allowed
    again = docs.render()
    assert again == rendered
    assert "lsgan" not in again
    assert max(len(line) for block in again.split("```text")[1:] for line in block.split("```")[0].splitlines()) <= docs.WIDTH


def test_write_replaces_only_the_block(tmp_path, rendered, capsys):
    page = tmp_path / "page.md"
    page.write_text(f"before\n{docs.BEGIN}\nstale\n{docs.END}\nafter\n", encoding="utf-8")
    assert docs.main(["--write", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == f"before\n{rendered}\nafter\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers", encoding="utf-8")
    assert docs.main(["--write", str(plain)]) == 2
    assert plain.read_text(encoding="utf-8") == "no markers"
    assert "no command reference markers" in capsys.readouterr().err
