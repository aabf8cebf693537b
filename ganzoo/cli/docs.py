"""docs/cli.md's generated block: the commands' --help texts, the part options and the built-in strategies,
rendered from the click commands and the registry so that the page cannot drift from them. Print it with
``python -m ganzoo.cli.docs``; ``--write docs/cli.md`` replaces only the block between the markers."""

from __future__ import annotations

import sys
from typing import Any

import tomli_w
from click.testing import CliRunner

from ganzoo.cli.main import cli
from ganzoo.cli.train_options import owner_words
from ganzoo.core import docblock
from ganzoo.core import options as part_options
from ganzoo.core.host import Host, load_host
from ganzoo.core.parts import Strategy

BEGIN = "<!-- command reference: generated from the click commands by `python -m ganzoo.cli.docs --write docs/cli.md`; do not edit by hand -->"
END = "<!-- end of command reference -->"
# Fixed, so that the page is the same whatever terminal (or COLUMNS) renders it.
WIDTH = 100
# The --help texts shown, in this order; ("train", "psg") stands for every strategy's command.
COMMANDS = ((), ("train",), ("train", "psg"), ("sample",), ("eval",), ("compare",), ("report",), ("list",), ("plugins",),
            ("data", "prepare"), ("data", "info"))


def builtin_host() -> Host:
    """ganzoo's own plugins only: an installed third-party plugin must not change the page. A broken
    built-in would silently drop its parts from the page, so it is an error instead."""
    host = load_host(environ={"GANZOO_LOAD_PLUGINS": ""})
    broken = host.broken()
    if broken:
        raise RuntimeError("; ".join(f"built-in plugin {info.name!r} is broken: {info.error}" for info in broken))
    return host


def help_text(host: Host, path: tuple[str, ...]) -> str:
    """What ``ganzoo PATH... --help`` prints, at WIDTH columns, with ``host`` as the plugin host."""
    result = CliRunner().invoke(cli, [*path, "--help"], obj=host, prog_name="ganzoo", terminal_width=WIDTH)
    if result.exit_code != 0:
        raise RuntimeError(f"ganzoo {' '.join(path)} --help failed: {result.output}") from result.exception
    return result.output.rstrip()


def help_section(host: Host, path: tuple[str, ...]) -> str:
    command = " ".join(("ganzoo", *path, "--help"))
    return f"### {command}\n\n```text\n{help_text(host, path)}\n```\n"


def cell(text: str) -> str:
    """Text as one cell of a markdown table: one line, its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def toml_value(value: Any) -> str:
    """A value as a config file writes it (config.toml is written by tomli_w too), since that is where a user would override it."""
    return tomli_w.dumps({"v": value}).removeprefix("v = ").strip()


def settings_text(defaults: dict[str, Any]) -> str:
    """A strategy's defaults as ``key = value`` pairs, its part options' values after the core's."""
    settings = {k: v for k, v in defaults.items() if k != "options"}
    settings.update(defaults.get("options", {}))
    return ", ".join(f"`{key} = {toml_value(value)}`" for key, value in settings.items())


def strategy_row(strategy: Strategy) -> str:
    cells = (f"`{strategy.name}`", strategy.summary, settings_text(dict(strategy.defaults)), strategy.sources or "-")
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def strategy_table(host: Host) -> str:
    rows = [strategy_row(entry.part) for entry in host.registry.entries("strategy")]
    head = ["### Built-in strategies", "",
            "Each strategy's defaults, as `ganzoo list strategies --json` gives them; settings it does not set keep",
            "`TrainConfig`'s defaults, and any of them can be overridden on the command line or in a config file.", "",
            "| strategy | summary | defaults | sources |", "|---|---|---|---|"]
    return "\n".join(head + rows) + "\n"


def option_row(owned: part_options.OwnedOption) -> str:
    option = owned.option
    flag = f"{option.flag} / --no-{option.flag[2:]}" if option.is_flag else option.flag
    default = "-" if option.default is None else toml_value(option.default)
    cells = (f"`{flag}`", f"`{option.key}`", owner_words(owned), f"`{default}`" if default != "-" else default,
             "yes" if option.resume else "no")
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def option_table(host: Host) -> str:
    """Every part option, including a strategy's own (which only its command's --help shows)."""
    known = part_options.collect(host.registry)
    rows = [option_row(owned) for owned in sorted(known.values(), key=lambda owned: owned.option.flag)]
    head = ["### Part options", "",
            "The options that belong to parts, with their key in a config file (top level or under `[options]`)",
            "and in a run's `config.options`. Each is accepted only when a part that declares it is in use;",
            "observers' options (`plugin ...`) in every run.", "",
            "| option | key | belongs to | default | may be given with --resume |", "|---|---|---|---|---|"]
    return "\n".join(head + rows) + "\n"


def render() -> str:
    host = builtin_host()
    sections = [help_section(host, path) for path in COMMANDS]
    sections += [option_table(host), strategy_table(host)]
    return "\n".join([BEGIN, "", *sections, END])


def documented_block(text: str) -> str:
    """The generated block of a document, markers included ('' when it has none)."""
    return docblock.block_of(text, BEGIN, END)


def main(argv: list[str]) -> int:
    return docblock.main(argv, render, BEGIN, END, "command reference", "python -m ganzoo.cli.docs [--write FILE.md]")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
