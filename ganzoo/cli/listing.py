"""``ganzoo list`` (the registered parts, their options and what they support) and ``ganzoo plugins``."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from ganzoo.cli.context import CONTEXT, get_host, warn_broken
from ganzoo.core.parts import TrainOption
from ganzoo.core.registry import KINDS

PLURALS = ("strategies", "policies", "aggregations", "architectures", "datasets", "extractors", "options")  # in the order of KINDS


def option_row(option: Any) -> dict[str, Any]:
    search = getattr(option, "search", None)
    return {"flag": option.flag, "key": option.key, "help": option.help, "default": option.default, "flag_only": option.is_flag,
            "may_change_on_resume": option.resume, "search": search.text() if search is not None else None}


def part_row(entry: Any, host: Any, kind: str = "") -> dict[str, Any]:
    part = entry.part
    row = {"name": entry.name, "plugin": entry.plugin, "distribution": host.distribution(entry.plugin),
           "summary": getattr(part, "summary", "")}
    if isinstance(part, TrainOption):  # an observer plugin's option, accepted in every run
        return {**row, **option_row(part)}
    if hasattr(part, "options"):
        row["options"] = [option_row(o) for o in part.options]
    supports = getattr(part, "supports", None)
    if supports is not None:
        row["supports"] = {k: sorted(v) if isinstance(v, frozenset) else v for k, v in dataclasses.asdict(supports).items()}
    if hasattr(part, "defaults"):
        from ganzoo.core.search import CORE_SEARCH

        row["defaults"] = dict(part.defaults)
        # what ganzoo tune searches among the core options every strategy takes (the parts' own are in their options' rows)
        row["search"] = {"--" + key.replace("_", "-"): space.text() for key, space in CORE_SEARCH.items()}
    can = can_condition(entry, host, kind)
    if can is not None:
        row["conditional"] = can
    return row


def can_condition(entry: Any, host: Any, kind: str) -> bool | None:
    """Whether a part can take class labels (``--conditional``): an architecture that says so, a
    policy whose supports say so, a strategy whose policy can; None for the other kinds."""
    part = entry.part
    if kind == "architecture":
        return bool(getattr(part, "conditional", False))
    if kind == "input policy":
        return bool(getattr(getattr(part, "supports", None), "conditional", False))
    if kind == "strategy":
        policy = dict(part.defaults).get("policy", "binary")
        if policy not in host.registry.names("input policy"):
            return False
        return bool(getattr(host.registry.get("input policy", policy).supports, "conditional", False))
    return None


@click.command("list", context_settings=CONTEXT)
@click.argument("kind", required=False, type=click.Choice(PLURALS))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with each part's options, declared support and defaults).")
@click.pass_context
def list_parts(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """List strategies, input policies, aggregations, architectures and datasets, with their plugins."""
    host = get_host(ctx)
    plurals = dict(zip(PLURALS, KINDS))
    listing = {plural: [part_row(e, host, k) for e in host.registry.entries(k)] for plural, k in plurals.items() if kind in (None, plural)}
    warn_broken(host)
    if as_json:
        click.echo(json.dumps(listing, indent=2, default=str))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    for k, rows in listing.items():
        table = Table(title=k, title_justify="left", expand=False)
        for column in ("name", "plugin (distribution)", "summary"):
            table.add_column(column)
        for row in rows:  # escaped: a summary's "[default: off]" is text, not rich markup
            summary = row["summary"]
            if row.get("options"):
                summary += "\noptions: " + ", ".join(o["flag"] for o in row["options"])
            if row.get("conditional"):
                summary += "\nclass-conditional: yes (--conditional)"
            plugin = f"{row['plugin']} ({row['distribution'] or 'no distribution'})"
            table.add_row(*(escape(v) for v in (row["name"], plugin, summary)))
        console.print(table)


@click.command(context_settings=CONTEXT)
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
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="ganzoo plugins (hooks without their ganzoo_ prefix)", title_justify="left")
    for column in ("name", "distribution", "version"):
        table.add_column(column)
    table.add_column("hooks", overflow="fold")  # folded, never cut: a hook name is what people look up
    table.add_column("status", overflow="fold")
    for row in rows:
        error = escape(row["error"])
        status = {"ok": "[green]ok[/]", "disabled": f"[yellow]disabled[/]: {error}"}.get(row["status"], f"[red]broken[/]: {error}")
        table.add_row(row["name"], row["distribution"], row["version"], "\n".join(h.removeprefix("ganzoo_") for h in row["hooks"]), status)
    Console().print(table)
