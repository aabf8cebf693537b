"""``ganzoo sample RUN_DIR``: a PNG grid of samples from a run, one block of rows per generator."""

from __future__ import annotations

from pathlib import Path

import click

from ganzoo.cli.context import CONTEXT, get_host


@click.command(context_settings=CONTEXT)
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
    from ganzoo.training.sampling import sample_grid

    host = get_host(ctx)
    out = out or (run_dir / "sample.png" if run_dir.is_dir() else Path("sample.png"))
    written, used = sample_grid(host, run_dir, out, count=count, generator=generator, columns=columns, seed=seed,
                                device=device, weights=weights)
    click.echo(f"wrote {written} ({used} weights)")
