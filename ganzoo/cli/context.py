"""What every ganzoo command shares: the plugin host of this invocation, one-line errors with
exit code 2, and command groups that take plugins' commands."""

from __future__ import annotations

from typing import Any

import click

from ganzoo.core.errors import GanzooError, shown, suggest
from ganzoo.core.host import Host, load_host

CONTEXT = {"help_option_names": ["-h", "--help"]}


class UsageFailure(click.ClickException):
    """A GanzooError shown as one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class OutPath(click.Path):
    """A path to write to: an empty one (an unset shell variable, ``--out ''``) is refused, never
    taken as the current folder."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            flag = param.opts[0] if param is not None and param.opts else "the path"
            raise UsageFailure(f"{flag} is empty; name a path (an unset shell variable?)")
        return super().convert(value, param, ctx)


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
            name = args[0] if args else ""
            close = suggest(name, self.list_commands(ctx), n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            known = ", ".join(self.list_commands(ctx))
            disabled = sorted(f"{p.name} ({p.disabled})" for p in get_host(ctx).plugins.values() if p.disabled)
            off = f"; plugins not loaded: {', '.join(disabled)}" if disabled else ""
            raise UsageFailure(f"unknown command {shown(name)}{hint} (known: {known}){off}") from None

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


def warn_broken(host: Host) -> None:
    for warning in host.warnings:
        click.echo(f"warning: {warning}", err=True)
    for info in host.broken():
        click.echo(f"warning: plugin {info.name!r} is broken: {info.error} (see: ganzoo plugins)", err=True)


