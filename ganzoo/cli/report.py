"""``ganzoo report PATH``: one self-contained HTML page for a run or a ``ganzoo compare`` folder."""

from __future__ import annotations

from pathlib import Path

import click

from ganzoo.cli.context import CONTEXT, OutPath


@click.command(context_settings=CONTEXT)
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", type=OutPath(path_type=Path), default=None, help="HTML file to write. [default: PATH/report.html]")
def report(path: Path, out: Path | None) -> None:
    """Write an HTML report of a run directory, a ganzoo compare directory (curves, sample grids
    per epoch, the generators' class split, the claims, the config and the protocol) or a ganzoo
    tune directory (the best trials, the history, the importances).

    One file, no network needed to view it."""
    if (path / "tune.json").is_file():  # a tune's page is read from its study (ganzoo.tune.report)
        from ganzoo.core.files import write_atomic
        from ganzoo.tune.report import write_report

        markdown, page, _ = write_report(path)
        if out is not None:
            write_atomic(out, page.read_bytes())
        click.echo(f"wrote {out or page} and {markdown} (tune report)")
        return
    from ganzoo.evaluation.html_report import write_html_report

    written = write_html_report(path, out)
    click.echo(f"wrote {written.path} ({written.size / 1e6:.1f} MB, {written.kind} report)")
