"""``ganzoo tune STRATEGY [train options] --trials N --budget 2m --out DIR``: search the strategy's
hyperparameters with Optuna, each trial a run folder under DIR/trials, and write DIR/report.md and
DIR/report.html (``ganzoo.tune``). Rerunning the same command continues the study: an interrupted
tune finishes its trials, a finished one adds N more."""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click

from ganzoo.cli.context import OutPath, get_host
from ganzoo.cli.launch_options import launch_options, options_of
from ganzoo.core.errors import GanzooError


@click.command("tune", context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": True},
               short_help="Search a strategy's hyperparameters with Optuna (pruning, resumable study).")
@click.argument("strategy", required=False)
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--trials", type=click.IntRange(1, 100_000), default=None, help="Trials this command adds to the study (an interrupted tune first finishes its own).")
@click.option("--budget", default=None, help="Training budget of each trial: minutes (2m), seconds (90s), steps (500steps) or epochs (3epochs).")
@click.option("--out", type=OutPath(path_type=Path), default=None, help="The tune's folder: trials/, study.db, report.md.")
@click.option("--search", "searches", multiple=True, metavar="NAME=SPACE",
              help="Search this option: lr=1e-4..3e-3:log, n-dis=1,3 (ints), loss=hinge,bce; adds to or overrides the declared spaces (repeatable).")
@click.option("--metric", default="fid", show_default=True, help="What ganzoo eval reports that the tune optimises (fid, kid, precision, recall, ...).")
@click.option("--direction", type=click.Choice(["minimize", "maximize"]), default=None, help="[default: the metric's: lower FID and KID, higher the others]")
@click.option("--pruner", type=click.Choice(["median", "hyperband", "none"]), default="median", show_default=True,
              help="Stops weak trials at their in-training evaluations.")
@click.option("--sampler", type=click.Choice(["tpe", "random", "grid"]), default="tpe", show_default=True,
              help="How trials pick settings: Optuna's TPE, uniformly at random, or every combination once (grid: every space a list of choices).")
@click.option("--storage", default=None, help="Optuna storage URL. [default: sqlite:///OUT/study.db]")
@click.option("--dataset", default="mnist", show_default=True, help="Dataset of every trial.")
@click.option("--resolution", type=click.IntRange(0), default=0, help="folder:PATH datasets: the images' side in pixels.")
@click.option("--channels", type=click.IntRange(0), default=0, help="folder:PATH datasets: 1 or 3 channels.")
@click.option("--limit-data", type=click.IntRange(0), default=0, help="Train on the first K images only.")
@click.option("--eval-every", default=None, help="In-training evaluations, which the pruner sees. [default: 4 over the budget]")
@click.option("--eval-n", type=click.IntRange(2), default=1000, show_default=True, help="Samples per in-training evaluation.")
@click.option("--final-n", type=click.IntRange(2), default=None, help="Samples of each trial's final evaluation (the objective). [default: 2000]")
@click.option("--features", default=None, help="Feature extractor. [default: the dataset's]")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of every trial (trials differ in their settings only).")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True, help="Trials at a time (workers); locally the cores are split among them.")
@click.option("--report", "report_only", is_flag=True, help="Only write the report of the tune in --out (or STRATEGY given as the folder).")
@launch_options
@click.pass_context
def tune_command(ctx: click.Context, strategy: str | None, train_args: tuple[str, ...], trials: int | None, budget: str | None,
                 out: Path | None, searches: tuple[str, ...], metric: str, direction: str | None, pruner: str, sampler: str, storage: str | None,
                 dataset: str, resolution: int, channels: int, limit_data: int, eval_every: str | None, eval_n: int,
                 final_n: int | None, features: str | None, seed: int, jobs: int, report_only: bool, **launcher: Any) -> None:
    """Search hyperparameters of a strategy, e.g.

        ganzoo tune sngan --trials 20 --budget 1m --out tunes/sngan

    Options after STRATEGY that tune does not know are ganzoo train's and stay fixed in every trial
    (ganzoo tune psg --n-gens 2 ...). The options searched are those whose range is declared
    (shown in ganzoo train STRATEGY --help as "tune searches") and not given, plus --search.
    Rerun the same command to continue; ganzoo tune --report --out DIR writes the report again."""
    if report_only:
        folder = out or (Path(strategy) if strategy else None)
        if folder is None:
            raise GanzooError("--report needs the tune's folder: ganzoo tune --report --out DIR")
        _report(folder)
        return
    options = options_of(ctx, launcher)
    missing = [name for name, value in (("STRATEGY", strategy), ("--trials", trials), ("--budget", budget), ("--out", out)) if not value]
    if missing:
        raise GanzooError(f"ganzoo tune needs {', '.join(missing)}: e.g. ganzoo tune sngan --trials 20 --budget 1m --out tunes/sngan")
    from ganzoo.cli.compare import check_spec
    from ganzoo.compare.jobs import OWNED, parse_spec
    from ganzoo.compare.launch import need, token_of
    from ganzoo.compare.launchers import prepare
    from ganzoo.core.config import parse_interval
    from ganzoo.evaluation.evaluator import build_evaluator, features_for
    from ganzoo.tune.settings import default_eval_every, direction_of, parse_budget, read_state, write_state
    from ganzoo.tune.space import current_values, space_of

    need("tune", "ganzoo tune")
    host = get_host(ctx)
    if options.launcher != "local":
        out = out.absolute()  # the workers run elsewhere, in other working folders
    spec = parse_spec(shlex.join([strategy, *train_args]), who="tune")
    limits = parse_budget(budget)
    eval_every = eval_every or default_eval_every(limits)
    parse_interval(eval_every)
    features = features_for(host, dataset, features)
    host.registry.get("extractor", features)
    settings: dict[str, Any] = {
        "strategy": spec.strategy, "args": list(spec.args), "budget": budget.strip(), **limits, "dataset": dataset,
        "limit_data": limit_data, "eval_every": eval_every, "eval_n": eval_n, "final_n": final_n or 2000, "features": features,
        "until_converged": False, "metric": metric, "direction": direction_of(metric, direction), "pruner": pruner, "sampler": sampler,
        "seed": seed, "storage": storage, **({"resolution": resolution} if resolution else {}),
        **({"channels": channels} if channels else {})}
    config = check_spec(ctx, spec, settings)
    owned = {flag[2:] for flag in OWNED} | {"budget"}
    from ganzoo.cli.train_options import CORE

    core = {decls[0].split("/")[0][2:]: "/" in decls[0] for decls, _, _ in CORE}  # flag name -> on/off
    space = space_of(host.registry, config, core, spec.args, searches, owned)
    from ganzoo.compare.jobs import Spec

    for name, parameter in space.items():  # the ends of each range and every choice must make a valid run
        values = parameter.search.choices or (parameter.search.low, parameter.search.high)
        for value in values:
            argv = (*spec.args, *parameter.argv(value))
            try:
                check_spec(ctx, Spec(spec.label, spec.strategy, argv, shlex.join([spec.strategy, *argv])), settings)
            except GanzooError as exc:
                raise GanzooError(f"--search {name}={parameter.search.text()}: {name}={value} is refused ({exc})") from None
    if sampler == "grid":
        ranges = [name for name, p in space.items() if not p.search.choices]
        if ranges:
            raise GanzooError(f"--sampler grid needs every searched option as a list of choices; {', '.join(ranges)} "
                              f"{'is a range' if len(ranges) == 1 else 'are ranges'}: give them with --search NAME=A,B or fix them")
    settings["space"] = {name: p.search.text() for name, p in space.items()}
    settings["flags"] = sorted(name for name, p in space.items() if p.is_flag)

    if out.exists() and not out.is_dir():
        raise GanzooError(f"--out {out} is not a folder")
    check_tune_folder(out, read_state(out), settings)
    prepare(options, out)
    build_evaluator(host, dataset, features=features, resolution=resolution, channels=channels, log=lambda m: click.echo(m, err=True))
    from ganzoo.tune.worker import open_study, tune_lock

    out.mkdir(parents=True, exist_ok=True)
    with tune_lock(out):  # one tune at a time sets the study up (two started at once would both create it)
        before = read_state(out)
        check_tune_folder(out, before, settings)
        (out / "logs").mkdir(exist_ok=True)
        study = open_study(settings, out)
        if not study.get_trials(deepcopy=False) and sampler != "grid":  # a new study starts from where the run stands
            study.enqueue_trial(current_values(config, space))
        ended = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))  # not running, not waiting
        target = before["target"] if before is not None and ended < before["target"] else ended + trials
        if sampler == "grid":  # each combination once
            size = math.prod(len(p.search.choices) for p in space.values())
            if target > size:
                click.echo(f"note: the grid has {size} combination(s); running {max(0, size - ended)} more, not {target - ended}", err=True)
                target = max(size, ended)
        write_state(out, settings, target, ["ganzoo", *sys.argv[1:]])
        token = token_of(out)
    cores = os.cpu_count() or 1
    threads = options.threads if options.launcher != "local" else max(1, cores // min(jobs, cores))
    _run(ctx, options, out, settings, study, target, jobs, threads, token)


def check_tune_folder(out: Path, before: dict[str, Any] | None, settings: dict[str, Any]) -> None:
    """OUT is new, empty, or a tune with these settings (its target may change)."""
    if before is None and out.exists() and any(p.name != ".tune.lock" for p in out.iterdir()):
        raise GanzooError(f"{out} exists and is not a tune folder; use another --out")
    if before is not None:
        changed = sorted(k for k in settings if before["settings"].get(k) != settings[k])
        if changed:
            raise GanzooError(f"{out} holds a tune with other settings ({', '.join(changed)}); use another --out")


def _run(ctx: click.Context, options: Any, out: Path, settings: dict[str, Any], study: Any, target: int, jobs: int,
         threads: int, token: str) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ganzoo.compare.children import Children
    from ganzoo.compare.launch import Task
    from ganzoo.compare.launchers import launch
    from ganzoo.tune.worker import TuneWorker

    console = Console(stderr=True)
    done_before = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
    console.print(f"tune {settings['strategy']}: {target - done_before} trial(s) to go of {target}, {jobs} at a time "
                  f"({options.launcher}), {threads} thread(s) each; searching {', '.join(f'{k}={v}' for k, v in settings['space'].items())}")
    children = Children()
    def finished() -> bool:  # the study has its target, none running: a worker's job that ended has nothing left
        trials = study.get_trials(deepcopy=False)
        return sum(t.state.is_finished() for t in trials) >= target and not any(t.state.name == "RUNNING" for t in trials)

    tasks = [Task(f"worker-{i}", TuneWorker(out, settings, threads, token), out / "logs", finished) for i in range(jobs)]
    better = min if settings["direction"] == "minimize" else max

    def status() -> tuple[int, str]:
        trials = study.get_trials(deepcopy=False)
        ended = [t for t in trials if t.state.is_finished()]
        values = [t.value for t in ended if t.state.name == "COMPLETE" and t.value is not None]
        pruned = sum(t.state.name == "PRUNED" for t in ended)
        best = f"best {settings['metric']} {better(values):.4g}" if values else "no trial complete yet"
        return len(ended), f"{best}, {pruned} pruned"

    started = time.time()
    with Progress(TextColumn("[bold]tune"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"), TimeElapsedColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[status]}"), console=console) as progress:
        bar = progress.add_task("tune", total=target, completed=done_before, status="")
        last = [0.0]

        def tick(where: str) -> None:
            if time.time() - last[0] >= 2.0:
                last[0] = time.time()
                count, text = status()
                progress.update(bar, completed=count, status=" ".join(filter(None, [text, where])))

        errors = launch(options, tasks, out, children, at_once=jobs, tick=tick)
    md, page, found = _report(out, quiet=True)
    click.echo(f"report: {md} and {page} ({(time.time() - started) / 60:.1f} min)")
    if found.best:
        best = found.best[0]
        click.echo(f"best: trial {best.number}, {settings['metric']} {best.value:.4g} "
                   f"({', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in sorted(best.params.items()))})")
        click.echo(f"retrain: {best.user_attrs.get('command', '')}")
    if children.stop.is_set():
        click.echo(f"stopped; the running trials stopped at a checkpoint ({found.counts['running']} running in the study). "
                   f"Continue with the same command (--out {out}).", err=True)
        ctx.exit(130)
    failed = {key: error for key, error in errors.items() if error}
    if failed:
        for key, error in failed.items():
            click.echo(f"error: {key}: {error}", err=True)
        ctx.exit(1)


def _report(out: Path, quiet: bool = False) -> Any:
    from ganzoo.tune.report import write_report

    md, page, found = write_report(out)
    if not quiet:
        click.echo(f"report: {md} and {page}")
    return md, page, found
