"""``ganzoo data prepare SPEC`` and ``ganzoo data info SPEC``: a dataset made ready ahead of training
(a folder decoded into its cache, in parallel, with a progress bar) and what it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ganzoo.cli.context import CONTEXT, get_host

SIZE = [click.option("--resolution", type=click.IntRange(0), default=0,
                     help="folder:PATH: the images' side R in pixels (centre square, antialiased resize). [default: as stored]"),
        click.option("--channels", type=click.IntRange(0), default=0, help="folder:PATH: 1 (grey) or 3 (RGB). [default: from the data]"),
        click.option("--data-root", type=click.Path(path_type=Path), default=None,
                     help="Data root (folder caches live in DATA_ROOT/folders). [default: $GANZOO_DATA or ~/.cache/ganzoo]")]


def size_options(function: Any) -> Any:
    for option in reversed(SIZE):
        function = option(function)
    return function


@click.group(context_settings=CONTEXT)
def data() -> None:
    """Prepare a dataset ahead of training, or see what it holds."""


@data.command(context_settings=CONTEXT)
@click.argument("spec")
@size_options
@click.option("--workers", type=click.IntRange(0, 256), default=0, help="Decoding processes. [default: one per CPU core]")
@click.option("--rebuild", is_flag=True, help="Decode again even when the cache is current.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def prepare(ctx: click.Context, spec: str, resolution: int, channels: int, data_root: Path | None, workers: int, rebuild: bool,
            quiet: bool) -> None:
    """Make SPEC ready for training: a folder:PATH is decoded once into its cache (noticing, on every
    later use, files added, removed or modified); other datasets are found and checked."""
    from ganzoo.cli.eval import progress_bar

    with progress_bar(enabled=not quiet) as progress:
        summary = _load(ctx, spec, resolution, channels, data_root, progress, workers=workers, rebuild=rebuild)
    click.echo(f"ready: {summary['source']}")
    for note in summary["notes"]:
        click.echo(note, err=True)


@data.command(context_settings=CONTEXT)
@click.argument("spec")
@size_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout, nothing else.")
@click.pass_context
def info(ctx: click.Context, spec: str, resolution: int, channels: int, data_root: Path | None, as_json: bool) -> None:
    """Count, image size, classes and (for folders) the cache's place of SPEC (a folder is prepared first if needed)."""
    from ganzoo.cli.eval import progress_bar

    with progress_bar(enabled=not as_json) as progress:
        summary = _load(ctx, spec, resolution, channels, data_root, progress)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=spec, show_header=False)
    for key, value in summary.items():
        if key == "class_counts" and value:
            value = ", ".join(f"{name}: {count:,}" for name, count in zip(summary["classes"], value, strict=True))
        elif key in ("classes", "notes") or value is None:
            continue
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
    for note in summary["notes"]:
        click.echo(note, err=True)


def _load(ctx: click.Context, spec: str, resolution: int, channels: int, data_root: Path | None, progress: Any,
          **folder_settings: Any) -> dict[str, Any]:
    """The dataset made ready, and what it holds: through its ``summarize`` when it has one (a
    folder: no torch), else loaded."""
    from ganzoo.core.data import check_no_resize, default_root

    host = get_host(ctx)
    name, _, argument = spec.partition(":")
    dataset = host.registry.get("dataset", name)
    root = data_root or default_root()
    if dataset.summarize is not None and argument:
        return dataset.summarize(argument, root, resolution=resolution, channels=channels, progress=progress, **folder_settings)
    if not dataset.resizes:
        check_no_resize(name, resolution, channels)
    from ganzoo.core.data import load_data

    data_ = load_data(host.registry, spec, root, resolution=resolution, channels=channels, progress=progress,
                      **(folder_settings if dataset.resizes else {}))
    n, c, h, w = data_.images.shape
    summary: dict[str, Any] = {"images": int(n), "size": f"{h}x{w}", "channels": int(c), "bytes": int(n) * c * h * w,
                               "classes": list(data_.classes or []), "class_counts": None, "source": data_.source,
                               "notes": list(data_.notes)}
    if data_.labels is not None:
        import torch

        counts = torch.bincount(data_.labels).tolist()
        summary["classes"] = list(data_.classes or map(str, range(len(counts))))
        summary["class_counts"] = counts
    return summary
