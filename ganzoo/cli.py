"""The ganzoo command line. Plugins are loaded when a command needs them, once per invocation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ganzoo import __version__
from ganzoo.errors import GanzooError
from ganzoo.host import Host, load_host
from ganzoo.registry import KINDS

CONTEXT = {"help_option_names": ["-h", "--help"]}
PLURALS = ("strategies", "policies", "aggregations", "architectures", "datasets", "extractors", "options")  # in the order of KINDS


class UsageFailure(click.ClickException):
    """A GanzooError shown as one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class InternalFailure(UsageFailure):
    """An unexpected exception shown as one line, exit code 1."""

    exit_code = 1


def get_host(ctx: click.Context) -> Host:
    """The host of this invocation: ``ctx.obj`` when a caller passed one (tests), else loaded once."""
    root = ctx.find_root()
    if isinstance(root.obj, Host):
        return root.obj
    if "ganzoo.host" not in root.meta:
        root.meta["ganzoo.host"] = load_host(plugin_files=root.meta.get("ganzoo.plugin_files", ()))
    return root.meta["ganzoo.host"]


class PluginGroup(click.Group):
    """A group whose extra commands come from plugins' ganzoo_register_commands."""

    plugin_group = "root"

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        return get_host(ctx).group_commands(self.plugin_group)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._plugin_commands(ctx).get(name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            import difflib

            name = args[0] if args else ""
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            known = ", ".join(self.list_commands(ctx))
            raise UsageFailure(f"unknown command {name!r}{hint} (known: {known})") from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GanzooError as exc:
            if ctx.find_root().meta.get("ganzoo.debug"):
                raise
            raise UsageFailure(str(exc)) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug: still one line, the traceback on request
            if ctx.find_root().meta.get("ganzoo.debug"):
                raise
            raise InternalFailure(f"{type(exc).__name__}: {exc} (a bug in ganzoo or a plugin; rerun with --debug for the traceback)") from None


class RootGroup(PluginGroup):
    plugin_group = "root"


class TrainGroup(PluginGroup):
    plugin_group = "train"

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None or not hasattr(command, "ganzoo_strategy"):
            return command
        from ganzoo.train_options import with_train_options

        return with_train_options(command, [e.part for e in get_host(ctx).registry.entries("train option")])


@click.group(cls=RootGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="ganzoo")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--plugin", "plugin_files", multiple=True, type=click.Path(path_type=Path),  # checked by load_plugin_file
              help="Also load this .py file as a plugin (repeatable); no packaging needed.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, plugin_files: tuple[Path, ...]) -> None:
    """ganzoo: a plugin-style GAN zoo. Train, sample and compare GAN strategies.

    \b
    ganzoo train psg --n-gens 2 --epochs 5 --out runs/psg2
    ganzoo sample runs/psg2 --n 64 --out psg2.png
    ganzoo list
    """
    ctx.meta["ganzoo.debug"] = debug
    ctx.meta["ganzoo.plugin_files"] = plugin_files
    if plugin_files and isinstance(ctx.obj, Host):
        raise UsageFailure("--plugin cannot be used with a host passed in by the caller; add the plugin to that host")


@cli.group(cls=TrainGroup, context_settings=CONTEXT)
def train() -> None:
    """Train a strategy: ganzoo train <strategy> [options]. Each strategy brings its own options."""


@cli.command("list", context_settings=CONTEXT)
@click.argument("kind", required=False, type=click.Choice(PLURALS))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def list_parts(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """List strategies, input policies, aggregations, architectures and datasets, with their plugins."""
    host = get_host(ctx)
    plurals = dict(zip(PLURALS, KINDS))
    listing = {
        plural: [{"name": e.name, "plugin": e.plugin, "summary": getattr(e.part, "summary", "")} for e in host.registry.entries(k)]
        for plural, k in plurals.items()
        if kind in (None, plural)
    }
    warn_broken(host)
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    for k, rows in listing.items():
        table = Table(title=k, title_justify="left", expand=False)
        for column in ("name", "plugin", "summary"):
            table.add_column(column)
        for row in rows:  # escaped: a summary's "[default: off]" is text, not rich markup
            table.add_row(*(escape(row[c]) for c in ("name", "plugin", "summary")))
        console.print(table)


def warn_broken(host: Host) -> None:
    for warning in host.warnings:
        click.echo(f"warning: {warning}", err=True)
    for info in host.broken():
        click.echo(f"warning: plugin {info.name!r} is broken: {info.error} (see: ganzoo plugins)", err=True)


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """Installed plugins: distribution, version, the hooks they implement, and any that are broken."""
    host = get_host(ctx)
    rows = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "entry_point": p.entry_point,
            "hooks": list(p.hooks),
            "status": p.status,
            "error": p.error or p.disabled,
        }
        for p in sorted(host.plugins.values(), key=lambda p: p.name)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ganzoo plugins", title_justify="left")
    for column in ("name", "distribution", "version", "hooks", "status"):
        table.add_column(column)
    for row in rows:
        status = {"ok": "[green]ok[/]", "disabled": f"[yellow]disabled[/]: {row['error']}"}.get(row["status"], f"[red]broken[/]: {row['error']}")
        table.add_row(row["name"], row["distribution"], row["version"], "\n".join(row["hooks"]), status)
    Console().print(table)


@cli.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--n", "count", type=click.IntRange(min=1), default=64, show_default=True, help="Samples per generator.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="PNG to write. [default: RUN_DIR/sample.png]")
@click.option("--generator", type=click.IntRange(min=1), default=None, help="Sample only generator K (1-based).")
@click.option("--columns", type=click.IntRange(min=1), default=8, show_default=True, help="Images per row.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of z.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--weights", default="auto", show_default=True,
              help="Which generator weights: raw (as trained), a saved set such as ema, or auto (a saved set when the run has one, else raw).")
@click.pass_context
def sample(ctx: click.Context, run_dir: Path, count: int, out: Path | None, generator: int | None, columns: int, seed: int,
           device: str, weights: str) -> None:
    """Write a PNG grid of samples from a run: one block of rows per generator."""
    from ganzoo.sampling import sample_grid

    host = get_host(ctx)
    out = out or (run_dir / "sample.png" if run_dir.is_dir() else Path("sample.png"))
    written, used = sample_grid(host, run_dir, out, count=count, generator=generator, columns=columns, seed=seed,
                                device=device, weights=weights)
    click.echo(f"wrote {written} ({used} weights)")


from ganzoo.eval_command import eval_command  # noqa: E402  (after cli exists: it imports get_host lazily)
from ganzoo.compare_command import compare_command  # noqa: E402

cli.add_command(eval_command)
cli.add_command(compare_command)


def main() -> None:
    # Not click's standalone mode: it turns Ctrl-C into "Aborted!" with exit code 1.
    try:
        code = cli.main(prog_name="ganzoo", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
