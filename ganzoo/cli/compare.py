"""``ganzoo compare SPEC SPEC ... --seeds S --epochs E --out DIR``: train each configuration with the
same seeds, data and budget, evaluate every run, and write DIR/report.md (``ganzoo.evaluation.compare_report``).

The jobs and how they run are ``ganzoo.compare``; this module checks every configuration before any
job starts, shows the progress and prints.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ganzoo.cli.context import OutPath, get_host
from ganzoo.cli.launch_options import launch_options, options_of
from ganzoo.core.config import TrainConfig
from ganzoo.core.errors import GanzooError

if TYPE_CHECKING:
    from ganzoo.compare.jobs import Spec


def check_spec(ctx: click.Context, spec: Spec, settings: dict[str, Any]) -> TrainConfig:
    """Parse the command line the spec's first job will run (``train_argv``: the spec's options with
    compare's dataset, budget and evaluation), build its settings, and run every check that needs no
    data, so that a typo or an impossible combination fails before any job starts. Returns the settings."""
    from ganzoo.cli.train import config_of, train_command
    from ganzoo.compare.jobs import Job, train_argv
    from ganzoo.training.build import check_run

    host = get_host(ctx)
    names = host.registry.names("strategy")
    if spec.strategy not in names:
        raise GanzooError(f"configuration {spec.text!r}: unknown strategy {spec.strategy!r} (known: {', '.join(names)})")
    strategy = host.registry.get("strategy", spec.strategy)
    command = train_command(strategy, host)
    argv = train_argv(Job(spec, 0, Path("never-written")), settings, resume=False)[5:]  # after "python -m ganzoo train <strategy>"
    try:
        sub = command.make_context(spec.strategy, argv, parent=ctx, resilient_parsing=False)
    except click.UsageError as exc:
        raise GanzooError(f"configuration {spec.text!r}: {exc.format_message()}") from None
    try:
        config = config_of(host, strategy, sub.params)
        check_run(host.registry, config)
        if settings["until_converged"] and config.lr_schedule != "constant":
            raise GanzooError(f"--lr-schedule {config.lr_schedule} decays over the steps a run starts with, and "
                              f"--until-converged trains each run in chunks; use a constant schedule, or drop --until-converged")
    except GanzooError as exc:
        raise GanzooError(f"configuration {spec.text!r}: {exc}") from None
    return config


@click.command("compare", context_settings={"help_option_names": ["-h", "--help"]},
               short_help="Train and evaluate configurations side by side, over seeds; write a report.")
@click.argument("specs", nargs=-1, required=True)
@click.option("--out", type=OutPath(path_type=Path), required=True, help="Report folder (runs go under OUT/runs).")
@click.option("--seeds", type=click.IntRange(1, 100), default=3, show_default=True, help="Seeds 0..S-1 for every configuration.")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Epochs per run. [default: 5, or none with --minutes]")
@click.option("--minutes", type=click.FloatRange(0, min_open=True), default=None,
              help="Minutes of training time per run (wall clock: with --jobs > 1 the runs share the machine).")
@click.option("--dataset", default="mnist", show_default=True, help="Dataset of every run (e.g. folder:PATH).")
@click.option("--resolution", type=click.IntRange(0), default=0, help="folder:PATH datasets: the images' side in pixels. [default: as stored]")
@click.option("--channels", type=click.IntRange(0), default=0, help="folder:PATH datasets: 1 or 3 channels. [default: from the data]")
@click.option("--limit-data", type=click.IntRange(0), default=0, help="Train on the first K images only (smoke tests).")
@click.option("--eval-every", default="1", show_default=True,
              help="Evaluate every K epochs during training, or every K steps (500steps) or seconds (60s) of training time.")
@click.option("--eval-n", type=click.IntRange(2), default=2000, show_default=True, help="Samples per evaluation during training.")
@click.option("--final-n", type=click.IntRange(2), default=None,
              help="Samples of the final evaluation. [default: the dataset's protocol: 10000, 26000 for stacked-mnist]")
@click.option("--features", default=None, help="Feature extractor of every evaluation. [default: the dataset's: lenet; inception for folders]")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Runs at a time; the CPU cores are split among them.")
@click.option("--until-converged", is_flag=True,
              help="Stop each run at its FID plateau (docs/evaluation.md), with --epochs as the cap; needs --eval-every in epochs.")
@click.option("--baseline", default=None, help="Label of the configuration the paper's claims are tested against. [default: the sngan one]")
@launch_options
@click.pass_context
def compare_command(ctx: click.Context, specs: tuple[str, ...], out: Path, seeds: int, epochs: int | None, minutes: float | None,
                    dataset: str, resolution: int, channels: int, limit_data: int, eval_every: str, eval_n: int, final_n: int | None,
                    features: str | None, jobs: int, until_converged: bool, baseline: str | None, **launcher: Any) -> None:
    """Train and evaluate configurations side by side, e.g.

        ganzoo compare "psg --n-gens 2" sngan --seeds 3 --epochs 5 --out reports/mnist

    Each SPEC is a strategy with its options, optionally labelled: "psg4=psg --n-gens 4". Rerun
    the same command to resume: finished runs are kept. The report is OUT/report.md (and OUT/report.html).

    With --launcher slurm or ray the runs train on a cluster (docs/sweeps.md); rerunning the command
    attaches to Slurm jobs still in the queue."""
    from ganzoo.compare.children import Children
    from ganzoo.compare.jobs import (
        STATE,
        check_folder,
        finished,
        finished_epochs,
        jobs_of,
        log_path,
        parse_spec,
        read_state,
        state_document,
        trained_minutes,
    )
    from ganzoo.compare.launch import Task, token_of
    from ganzoo.compare.launchers import launch, prepare
    from ganzoo.compare.runner import JobFunction, done
    from ganzoo.core.config import parse_interval
    from ganzoo.core.files import write_atomic

    host = get_host(ctx)
    options = options_of(ctx, launcher)
    if options.launcher != "local":
        out = out.absolute()  # the jobs run elsewhere, in other working folders
    parse_interval(eval_every)  # a bad interval is one line and exit 2 before anything runs
    if until_converged and not (eval_every.isdigit() and int(eval_every) > 0):
        raise GanzooError(f"--until-converged looks for the FID plateau in evaluations every K epochs; --eval-every {eval_every} is not K epochs")
    epochs = epochs if epochs is not None else (0 if minutes else 5)
    parsed = [parse_spec(s) for s in specs]
    labels = [s.label for s in parsed]
    if len(set(labels)) != len(labels):
        raise GanzooError(f"two configurations have the same label ({', '.join(labels)}); label them: \"name=psg ...\"")
    final_n = final_n or host.registry.get("dataset", dataset.partition(":")[0]).eval_samples
    from ganzoo.evaluation.evaluator import build_evaluator, features_for

    features = features_for(host, dataset, features)
    host.registry.get("extractor", features)
    if baseline is not None and baseline not in labels:
        raise GanzooError(f"--baseline {baseline!r} is not one of the labels: {', '.join(labels)}")
    settings = {"specs": [s.text for s in parsed], "seeds": seeds, "epochs": epochs, "minutes": minutes, "dataset": dataset, "limit_data": limit_data,
                "eval_every": eval_every, "eval_n": eval_n, "final_n": final_n, "features": features, "until_converged": until_converged,
                **({"resolution": resolution} if resolution else {}), **({"channels": channels} if channels else {})}
    scheduled = [spec.text for spec in parsed if check_spec(ctx, spec, settings).lr_schedule != "constant"]
    if out.exists() and not out.is_dir():
        raise GanzooError(f"--out {out} is not a folder")
    before = read_state(out)
    if before is not None:
        changed = sorted(k for k in settings if before.get(k) != settings[k] and k not in ("epochs", "minutes", "until_converged"))
        if changed:
            raise GanzooError(f"{out} holds a comparison with other settings ({', '.join(changed)}); use another --out")
        if scheduled and before.get("epochs") != epochs:
            raise GanzooError(f"configuration {scheduled[0]!r} decays its learning rate over the {before.get('epochs')} epochs "
                              f"its runs started with; they cannot train to {epochs}: use another --out")
    elif out.exists() and any(out.iterdir()):
        raise GanzooError(f"{out} exists and is not a comparison folder; use another --out")
    job_list = jobs_of(parsed, seeds, out)
    check_folder(out, job_list)  # a planted link or FIFO is refused before anything is written
    prepare(options, out)  # the launcher's extra, cluster and shared storage
    # Train the classifier and extract the real features once, here, rather than in every parallel run.
    build_evaluator(host, dataset, features=features, resolution=resolution, channels=channels, log=lambda m: click.echo(m, err=True))

    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)  # a comparison folder even if no run gets as far as its own folder
    write_atomic(out / STATE, state_document(settings, ["ganzoo", *sys.argv[1:]]))
    token = token_of(out)

    cores = os.cpu_count() or 1
    if options.launcher != "local":
        jobs, threads = len(job_list), options.threads
    else:
        if jobs > cores:  # more runs than cores only makes each slower (threads waiting on a shared core)
            click.echo(f"note: --jobs {jobs} is more than the {cores} cores; running {cores} at a time", err=True)
            jobs = cores
        threads = max(1, cores // jobs)
    if minutes and jobs > 1 and options.launcher == "local":
        click.echo(f"note: --minutes is wall-clock time; with {jobs} runs at a time each has {threads} thread(s) of the machine", err=True)
    children = Children()
    started = time.time()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True)
    where = f"{jobs} at a time" if options.launcher == "local" else f"as {options.launcher} {'jobs' if options.launcher == 'slurm' else 'tasks'}"
    console.print(f"{len(job_list)} runs ({len(parsed)} configurations x {seeds} seeds), {where}, {threads} thread(s) each; logs in {out / 'logs'}")
    # progress in epochs, or with a time budget (and no epoch count) in minutes of training
    unit = "epochs" if epochs else "minutes"
    total = len(job_list) * (epochs or minutes)

    def done_epochs() -> float:
        if not epochs:
            return round(sum(min(trained_minutes(j.run_dir), minutes) for j in job_list), 1)
        return sum(epochs if finished(j.run_dir, settings) else min(finished_epochs(j.run_dir), epochs) for j in job_list)

    tasks = [Task(f"{job.spec.label}/seed-{job.seed}", JobFunction(job, settings, out / "logs", threads, out, token),
                  log_path(job, out / "logs"), lambda job=job: done(job, settings)) for job in job_list]
    previous_term = signal.signal(signal.SIGTERM, lambda *_: children.interrupt()) if threading.current_thread() is threading.main_thread() else None
    try:
        with Progress(TextColumn("[bold]compare"), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
                      TimeRemainingColumn(), TextColumn("{task.fields[status]}"), console=console) as progress:
            bar = progress.add_task("compare", total=total, status="")
            results = launch(options, tasks, out, children, at_once=jobs,
                             tick=lambda status: progress.update(bar, completed=done_epochs(), status=status))
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    errors = {f"{job.spec.label} seed {job.seed}": results[task.key] for job, task in zip(job_list, tasks) if results.get(task.key)}
    from ganzoo.evaluation.compare_report import write_report
    from ganzoo.evaluation.html_report import write_html_report

    report = write_report(out, parsed, seeds, settings, baseline=baseline, wall_seconds=time.time() - started, errors=errors)
    page = write_html_report(out).path  # the same numbers as one page to open in a browser
    if children.stop.is_set():
        if options.launcher == "slurm":
            from ganzoo.compare.slurm import in_queue

            queued = in_queue(out)
            click.echo(f"stopped watching; {len(queued)} Slurm job(s) go on ({' '.join(queued) or 'none'}): rerun the same command "
                       f"to attach to them, or scancel them", err=True)
        else:
            click.echo(f"stopped; finished runs are kept, the others stopped at a checkpoint. Resume with the same command (--out {out}).", err=True)
        ctx.exit(130)
    click.echo(f"report: {report} and {page}")
    if errors:  # not bad input: exit 1, and the report says which runs are missing
        for name, error in errors.items():
            click.echo(f"error: {name}: {error}", err=True)
        ctx.exit(1)
