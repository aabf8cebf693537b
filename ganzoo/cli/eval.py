"""``ganzoo eval RUN_DIR``: score a run's generators (FID, KID, classes, IS, precision/recall,
density/coverage, modes) and save the result with its protocol in RUN_DIR/eval-<features>.json."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ganzoo.training import rundir
from ganzoo.core.errors import GanzooError
from ganzoo.core.files import write_atomic

HEADLINE = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classes", "class_kl",
            "inception_score", "modes", "modes_kl")


def evaluate_run(host: Any, run: Path, *, n: int | None = None, features: str = "lenet", split: str = "test", n_real: int = 0,
                 seed: int = 0, weights: str = "auto", retrain: bool = False, data_root: Path | None = None,
                 device: str = "cpu", log: Any = lambda _: None, progress: Any = None) -> dict[str, Any]:
    """Evaluate the checkpoint of a run directory (or a checkpoint file); return the result."""
    from ganzoo.evaluation.evaluator import build_evaluator
    from ganzoo.training.sampling import check_seed, load_generators
    from ganzoo.training.resume import resolve_device

    check_seed(seed)
    generators, manifest = load_generators(host, run, device, weights)
    config = manifest["config"]
    root = data_root or (Path(config["data_root"]) if config.get("data_root") else None)
    if n is None:
        n = host.registry.get("dataset", config["dataset"].partition(":")[0]).eval_samples
    evaluator = build_evaluator(host, config["dataset"], features=features, split=split, n_real=n_real, data_root=root,
                                retrain=retrain, device=resolve_device(device), log=log, progress=progress)
    result = evaluator(generators, n=n, seed=seed, z_dim=int(config["z_dim"]), progress=progress)
    result["protocol"].update(step=manifest.get("step"), strategy=manifest.get("strategy"), weights=manifest["weights"])
    return result


def result_path(run: Path, features: str) -> Path:
    return (run if run.is_dir() else run.parent) / f"eval-{features}.json"


@click.command("eval", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--n", "n", type=click.IntRange(min=2, max=1_000_000), default=None,
              help="Generated samples (round-robin over the generators). [default: the dataset's protocol: 10000, 26000 for stacked-mnist]")
@click.option("--features", default="lenet", show_default=True, help="Feature extractor (ganzoo list extractors).")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True, help="Real reference split.")
@click.option("--n-real", type=click.IntRange(min=0), default=0, help="Use the first K real images only. [default: all]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of z (and of KID's subsets).")
@click.option("--weights", default="auto", show_default=True, help="Generator weights: auto, raw, or a saved set such as ema.")
@click.option("--retrain-classifier", is_flag=True, help="Train the LeNet here by the recipe instead of using the shipped (or cached) weights.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Data root. [default: the run's]")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout, nothing else.")
@click.pass_context
def eval_command(ctx: click.Context, run: Path, n: int | None, features: str, split: str, n_real: int, seed: int, weights: str,
                 retrain_classifier: bool, data_root: Path | None, device: str, as_json: bool) -> None:
    """Evaluate a run: FID, KID, precision/recall, density/coverage on the extractor's features;
    classes covered, KL to uniform and IS (or modes on Stacked MNIST) from its classifier. For runs
    with several generators, the same per generator and how the classes are shared among them."""
    from ganzoo.cli.context import get_host, warn_broken

    host = get_host(ctx)
    warn_broken(host)
    try:
        if not run.exists():
            raise GanzooError(f"no such run directory or checkpoint: {run}")
        if run.is_dir() and not os.path.lexists(run / rundir.CHECKPOINT):
            raise GanzooError(f"{run} has no {rundir.CHECKPOINT}; is it a ganzoo run directory?")
    except OSError as exc:  # a name too long, a folder we may not enter
        raise GanzooError(f"cannot use {run}: {exc.strerror or exc}") from None

    def log(message: str) -> None:
        if not as_json:
            click.echo(message, err=True)

    with progress_bar(enabled=not as_json) as progress:
        result = evaluate_run(host, run, n=n, features=features, split=split, n_real=n_real, seed=seed, weights=weights,
                              retrain=retrain_classifier, data_root=data_root, device=device, log=log, progress=progress)
    out = result_path(run, features)
    text = json.dumps(rundir.json_safe(result), indent=1, allow_nan=False)
    write_atomic(out, (text + "\n").encode())
    if as_json:
        click.echo(text)
        return
    from rich.console import Console

    console = Console()
    for table in result_tables(result, title=f"{run} ({out.name})"):
        console.print(table)


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress bar (with ETA) fed by ``progress(what, done, total)`` calls; one task per "what"."""
    console = _stderr_console()
    if not enabled or not console.is_terminal:  # a pipe or a log gets no bar (rich would only add a blank line)
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True, console=console) as bar:
        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done)

        yield update


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def result_tables(result: dict[str, Any], title: str) -> list:
    from rich.table import Table

    protocol = result["protocol"]
    main = Table(title=title, show_header=False, title_justify="left")
    main.add_column(style="bold")
    main.add_column()
    for key in HEADLINE:
        if key in result:
            value = result[key]
            main.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    accuracy = protocol.get("extractor_test_accuracy")
    main.add_row("protocol", (
        f"{protocol['extractor']} {protocol['extractor_fingerprint']}"
        + (f" (test accuracy {accuracy:.4f})" if accuracy is not None else "")
        + f", {protocol['n_fake']} fake vs {protocol['n_real']} real ({protocol['split']}), seed {protocol['seed']}, "
        f"step {protocol.get('step')}, weights {protocol.get('weights')}, ganzoo {protocol['ganzoo_version']}"
    ))
    tables = [main]
    per_generator = result.get("generators")
    if per_generator:
        names = {"fid": "FID", "kid": "KID", "classes": "classes", "class_kl": "KL", "inception_score": "IS",
                 "modes": "modes", "modes_kl": "modes KL"}
        keys = [k for k in names if k in per_generator[0]]
        table = Table(title="per generator", title_justify="left")
        for column in ["generator", *(names[k] for k in keys)]:
            table.add_column(column, justify="right")
        for i, scores in enumerate(per_generator, 1):
            table.add_row(str(i), *(f"{scores[k]:.3f}" if isinstance(scores[k], float) else str(scores[k]) for k in keys))
        tables.append(table)
        if "class_histogram" in per_generator[0]:
            histograms = [g["class_histogram"] for g in per_generator]
            totals = [sum(column) for column in zip(*histograms)]
            shares = Table(title="who makes each class: % of the samples of that class, per generator", title_justify="left")
            shares.add_column("generator", justify="right")
            for digit in range(len(totals)):
                shares.add_column(str(digit), justify="right")
            for i, histogram in enumerate(histograms, 1):
                shares.add_row(str(i), *(f"{100 * c / t:.0f}" if t else "-" for c, t in zip(histogram, totals)))
            tables.append(shares)
    return tables
