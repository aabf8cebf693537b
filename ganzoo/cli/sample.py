"""``ganzoo sample RUN_DIR``: samples from a run as a PNG grid (one block of rows per generator), a folder
of PNGs or an .npz (what FID tools read); a class-conditional run's by class (``--class``)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from ganzoo.cli.context import CONTEXT, OutPath, get_host
from ganzoo.core.errors import GanzooError

DEFAULT_OUT = {"grid": "sample.png", "png-dir": "sample-png", "npz": "sample.npz"}
EXPORT_N = 64  # --n of png-dir and npz (a grid's: ganzoo.runs.sampling.write_grid)


def _stops_cleanly(command: Any) -> Any:
    """Ctrl-C and SIGTERM remove what the command was half-writing; SIGTERM then ends it as train does:
    one line, exit 128 + N (143)."""

    @functools.wraps(command)
    def run(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        from ganzoo.runs.export_temps import Terminated, stop_cleanly_on_signals

        try:
            with stop_cleanly_on_signals():
                return command(ctx, *args, **kwargs)
        except Terminated as stop:
            click.echo(f"stopped by signal {stop.signal_number}; nothing half-written is left behind", err=True)
            ctx.exit(128 + stop.signal_number)

    return run


@click.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["grid", "png-dir", "npz"]), default="grid", show_default=True,
              help="grid: one PNG, a block of rows per generator. png-dir: a folder of PNGs g<K>-<i>.png with samples.json "
                   "(for clean-fid, torch-fidelity). npz: uint8 arrays images (N, H, W, C) and generator (N,), 1-based. "
                   "A class-conditional run's: the grid's rows by class; png-dir in one subfolder per class (named by "
                   "the class names when all are safe file names, else by the labels); npz with labels (N,) and "
                   "class_names.")
@click.option("--n", "count", type=click.IntRange(min=1), default=None,
              help="Samples per generator: a run with G generators gives G x N images (N with --generator); on a "
                   "class-conditional run, per generator and per class. [default: 64; 8 for a class-conditional grid]")
@click.option("--class", "class_spec", metavar="CLASS", default=None,
              help="Class-conditional runs: draw these classes: a label (0-based), a class name, a comma list of them "
                   "(in that order), or all. Sample i of every class has the same z, whichever classes are picked. "
                   "[default: all]")
@click.option("--out", type=OutPath(path_type=Path), default=None,
              help="Where to write. [default: RUN_DIR/sample.png, RUN_DIR/sample-png or RUN_DIR/sample.npz]")
@click.option("--generator", type=click.IntRange(min=1), default=None, help="Sample only generator K (1-based).")
@click.option("--columns", type=click.IntRange(min=1), default=None,
              help="Images per row of a grid. [default: 8; --n for a class-conditional grid: one row per class]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of z.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--weights", default="auto", show_default=True,
              help="Which generator weights: raw (as trained), a saved set such as ema, or auto (a saved set when the run has one, else raw).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
@_stops_cleanly
def sample(ctx: click.Context, run_dir: Path, fmt: str, count: int | None, class_spec: str | None, out: Path | None,
           generator: int | None, columns: int | None, seed: int, device: str, weights: str, quiet: bool) -> None:
    """Write samples from a run: a PNG grid with one block of rows per generator (the default), a
    folder of PNGs, or an .npz. --n is per generator (and per class on a class-conditional run,
    which draws every class unless --class picks some)."""
    from ganzoo.cli.eval import progress_bar
    from ganzoo.runs.sampling import check_out_folder, check_seed, class_listing, open_draw, pick_classes, write_grid

    if columns is not None and fmt != "grid":
        raise GanzooError(f"--columns lays out a grid; --format {fmt} writes one image per sample")
    host = get_host(ctx)
    out = out or (run_dir / DEFAULT_OUT[fmt] if run_dir.is_dir() else Path(DEFAULT_OUT[fmt]))
    with progress_bar(enabled=not quiet) as progress:
        check_seed(seed)
        check_out_folder(out)
        draw = open_draw(host, run_dir, generator=generator, device=device, weights=weights)
        labels = pick_classes(draw, class_spec)  # before anything is written
        if fmt == "grid":
            made = write_grid(draw, out, labels=labels, count=count, columns=columns, seed=seed, progress=progress)
            rows = ""
            if len(labels) == 1:
                rows = f"; class {class_listing(draw.class_names, labels)}"
            elif labels:
                per = "one row" if made.rows_per_class == 1 else f"{made.rows_per_class} rows"
                where = " in each generator's block" if len(draw.indices) > 1 else ""
                rows = f";{where} {per} per class, top to bottom: {class_listing(draw.class_names, labels)}"
            click.echo(f"wrote {made.path} ({made.weights} weights){rows}")
            return
        from ganzoo.runs.sample_export import export_samples

        count = count or EXPORT_N
        export = export_samples(draw, run_dir, out, fmt=fmt, count=count, seed=seed, progress=progress, classes=class_spec)
    which = ", ".join(str(g) for g in export.generators)
    kinds = ""
    if len(export.classes) == 1:
        kinds = f", class {class_listing(draw.class_names, export.classes)}"
    elif export.classes:
        kinds = f", {count} of each of classes {class_listing(draw.class_names, export.classes)}"
    click.echo(f"wrote {export.path}: {export.images} images from generator{'s' if len(export.generators) > 1 else ''} "
               f"{which}{kinds} ({export.weights} weights)")
