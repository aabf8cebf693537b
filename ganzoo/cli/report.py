"""``ganzoo report PATH``: one self-contained HTML page for a run or a ``ganzoo compare`` folder."""

from __future__ import annotations

from pathlib import Path

import click

from ganzoo.cli.context import CONTEXT, OutPath


@click.command(context_settings=CONTEXT)
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", type=OutPath(path_type=Path), default=None, help="HTML file to write. [default: PATH/report.html]")
def report(path: Path, out: Path | None) -> None:
    """Write an HTML report of a run directory or a ganzoo compare directory: curves, sample grids
    per epoch, the generators' class split, the claims (compare), the config and the protocol.

    One file, no network needed to view it."""
    from ganzoo.evaluation.html_report import write_html_report

    written = write_html_report(path, out)
    click.echo(f"wrote {written.path} ({written.size / 1e6:.1f} MB, {written.kind} report)")
