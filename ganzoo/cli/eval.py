"""``ganzoo eval RUN_DIR``: score a run's generators (FID, KID, classes, IS, precision/recall,
density/coverage, modes) and save the result with its protocol in RUN_DIR/eval-<features>.json."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ganzoo.core.files import json_safe

HEADLINE = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classes", "class_kl",
            "inception_score", "modes", "modes_kl")
PER_CLASS_ROWS = 30  # a conditional run's per-class table is printed for up to this many classes (all are in --json)


@click.command("eval", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--n", "n", type=click.IntRange(min=2, max=1_000_000), default=None,
              help="Generated samples (round-robin over the generators). [default: the dataset's protocol: 10000, 26000 for stacked-mnist]")
@click.option("--features", default=None,
              help="Feature extractor (ganzoo list extractors). [default: the dataset's: lenet; inception for folder:PATH]")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True,
              help="Real reference split (a folder has one: both are the folder).")
@click.option("--reference", default=None, metavar="SPEC",
              help="Compare with this dataset instead of the run's, e.g. a held-apart folder:PATH (read at the run's image size).")
@click.option("--n-real", type=click.IntRange(min=0), default=0, help="Use K real images, evenly spaced through the split. [default: all]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of z (and of KID's subsets).")
@click.option("--weights", default="auto", show_default=True, help="Generator weights: auto, raw, or a saved set such as ema.")
@click.option("--retrain-classifier", is_flag=True, help="Train the LeNet here by the recipe instead of using the shipped (or cached) weights.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Data root. [default: the run's]")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout, nothing else.")
@click.pass_context
def eval_command(ctx: click.Context, run: Path, n: int | None, features: str | None, split: str, reference: str | None, n_real: int,
                 seed: int, weights: str, retrain_classifier: bool, data_root: Path | None, device: str, as_json: bool) -> None:
    """Evaluate a run: FID, KID, precision/recall, density/coverage on the extractor's features;
    classes covered, KL to uniform and IS (or modes on Stacked MNIST) from its classifier. For runs
    with several generators, the same per generator and how the classes are shared among them. For
    class-conditional runs, class consistency and intra-class FID, precision and recall per class."""
    from ganzoo.cli.context import get_host, warn_broken
    from ganzoo.evaluation.run_eval import evaluate_run, result_path

    host = get_host(ctx)
    warn_broken(host)

    def log(message: str) -> None:
        if not as_json:
            click.echo(message, err=True)

    with progress_bar(enabled=not as_json) as progress:
        result = evaluate_run(host, run, n=n, features=features, split=split, n_real=n_real, seed=seed, weights=weights,
                              retrain=retrain_classifier, data_root=data_root, device=device, log=log, progress=progress,
                              reference=reference)
    if as_json:
        click.echo(json.dumps(json_safe(result), indent=1, allow_nan=False))
        return
    from rich.console import Console

    console = Console()
    for table in result_tables(result, title=f"{run} ({result_path(run, result['protocol']['extractor'], reference).name})"):
        console.print(table)


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress bar (with ETA) fed by ``progress(what, done, total)`` calls; one task per "what"."""
    console = _stderr_console()
    if not enabled or not console.is_terminal:  # a pipe or a log gets no bar (rich would only add a blank line)
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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
    if "class_sampling" in protocol:
        class_rows(main, result)
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
                 "modes": "modes", "modes_kl": "modes KL", "class_consistency": "consistency",
                 "intra_fid_mean": "intra-FID"}
        keys = [k for k in names if k in per_generator[0]]
        table = Table(title="per generator", title_justify="left")
        for column in ["generator", *(names[k] for k in keys)]:
            table.add_column(column, justify="right")
        for i, scores in enumerate(per_generator, 1):
            table.add_row(str(i), *(f"{scores[k]:.3f}" if isinstance(scores[k], float) else "-" if scores[k] is None else str(scores[k])
                                    for k in keys))
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
        asked = [g.get("per_class_consistency") for g in per_generator]
        if all(isinstance(a, list) for a in asked) and 0 < len(asked[0]) <= PER_CLASS_ROWS:  # a conditional run
            agree = Table(title="asked for each class: % of a generator's samples the classifier gives that class", title_justify="left")
            agree.add_column("generator", justify="right")
            for k in range(len(asked[0])):
                agree.add_column(str(k), justify="right")
            for i, shares_ in enumerate(asked, 1):
                agree.add_row(str(i), *("-" if v is None else f"{100 * v:.0f}" for v in shares_))
            tables.append(agree)
    per_class = result.get("per_class")
    if per_class and len(per_class) <= PER_CLASS_ROWS:
        table = Table(title="per class: the samples asked for each class against the real images of that label", title_justify="left")
        for column in ("class", "name", "FID", "precision", "recall", "consistency", "fake", "real"):
            table.add_column(column, justify="right")
        for c in per_class:
            table.add_row(str(c["class"]), str(c.get("name")), *(_number(c.get(k), d) for k, d in
                          (("fid", 2), ("precision", 3), ("recall", 3), ("consistency", 3))), str(c.get("n_fake")), str(c.get("n_real")))
        tables.append(table)
    return tables


def _number(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else "-" if value is None else str(value)


def class_rows(main: Any, result: dict[str, Any]) -> None:
    """A conditional run's class consistency and intra-class FID (mean, worst) in the main table."""
    protocol = result["protocol"]
    consistency = result.get("class_consistency")
    note = str(protocol.get("class_consistency_note") or "")
    main.add_row("class_consistency", f"{consistency:.4f}" if isinstance(consistency, float) else f"- ({note})")
    mean, worst = result.get("intra_fid_mean"), result.get("intra_fid_worst")
    if isinstance(mean, float) and isinstance(worst, float):
        names = {c["class"]: c.get("name") for c in result.get("per_class") or []}
        worst_class = result.get("intra_fid_worst_class")
        main.add_row("intra_fid_mean", f"{mean:.4f}")
        main.add_row("intra_fid_worst", f"{worst:.4f} (class {names.get(worst_class, worst_class)})")
    else:
        main.add_row("intra_fid_mean", f"- ({protocol.get('intra_class')})")
    for key in ("intra_precision_mean", "intra_recall_mean"):
        if isinstance(result.get(key), float):
            main.add_row(key, f"{result[key]:.4f}")
    skipped = protocol.get("classes_skipped") or []
    main.add_row("class sampling", f"{protocol.get('classes')} classes, {protocol.get('class_sampling')}"
                 + (f"; {len(skipped)} without intra-class scores (too few real or generated samples)" if skipped else ""))
