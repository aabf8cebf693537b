"""The ganzoo command line: the root group and its commands, one module each. Plugins are loaded
when a command needs them, once per invocation."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ganzoo import PLUGIN_API, __version__
from ganzoo.cli.compare import compare_command
from ganzoo.cli.context import CONTEXT, PluginGroup, UsageFailure, get_host
from ganzoo.cli.data import data
from ganzoo.cli.eval import eval_command
from ganzoo.cli.listing import list_parts, plugins
from ganzoo.cli.report import report
from ganzoo.cli.sample import sample
from ganzoo.cli.tune import tune_command
from ganzoo.core.environment import check_environment
from ganzoo.core.errors import GanzooError
from ganzoo.core.host import Host


class RootGroup(PluginGroup):
    plugin_group = "root"


class TrainGroup(PluginGroup):
    """``ganzoo train <strategy>``: one command per registered strategy, made by the core
    (``ganzoo.cli.train.train_command``), plus any train command a plugin registers itself."""

    plugin_group = "train"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(get_host(ctx).registry.names("strategy")))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        host = get_host(ctx)
        if name in host.registry.names("strategy"):
            from ganzoo.cli.train import train_command

            return train_command(host.registry.get("strategy", name), host)
        return super().get_command(ctx, name)


@click.group(cls=RootGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="ganzoo", message=f"%(prog)s %(version)s (plugin API {PLUGIN_API})")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--plugin", "plugin_files", multiple=True, type=click.Path(path_type=Path),  # checked by load_plugin_file
              help="Also load this .py file as a plugin (repeatable); no packaging needed.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, plugin_files: tuple[Path, ...]) -> None:
    """ganzoo: a plugin-style GAN zoo. Train, sample, evaluate and compare GAN strategies.

    \b
    ganzoo train psg --n-gens 2 --epochs 5 --out runs/psg2
    ganzoo train psg --policy binary --out runs/psg2-binary
    ganzoo sample runs/psg2 --n 64 --out psg2.png
    ganzoo eval runs/psg2
    ganzoo compare "psg --n-gens 2" sngan --seeds 3 --epochs 3 --out cmp
    ganzoo tune sngan --trials 20 --budget 1m --out tunes/sngan
    ganzoo list
    """
    ctx.meta["ganzoo.debug"] = debug
    ctx.meta["ganzoo.plugin_files"] = plugin_files
    check_environment()
    if plugin_files and isinstance(ctx.obj, Host):
        raise UsageFailure("--plugin cannot be used with a host passed in by the caller; add the plugin to that host")


@cli.group(cls=TrainGroup, context_settings=CONTEXT)
def train() -> None:
    """Train a strategy: ganzoo train <strategy> [options]. Any strategy takes --policy and
    --aggregation; ganzoo train <strategy> --help lists the options by part."""


for command in (list_parts, plugins, sample, eval_command, compare_command, tune_command, report, data):
    cli.add_command(command)


def main() -> None:
    # Not click's standalone mode: it turns Ctrl-C into "Aborted!" with exit code 1.
    try:
        code = cli.main(prog_name="ganzoo", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GanzooError as exc:  # outside a command: --help loads the plugins while it parses (GANZOO_PLUGIN_IMPORT_SECONDS)
        if "--debug" in sys.argv[1:]:
            raise
        UsageFailure(str(exc)).show()
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
