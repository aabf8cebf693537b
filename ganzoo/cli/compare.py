"""``ganzoo compare SPEC SPEC ... --seeds S --epochs E --out DIR``: train each configuration with the
same seeds, data and budget, evaluate every run, and write DIR/report.md (see ganzoo.evaluation.compare_report).

Each run is a ``ganzoo train`` subprocess in DIR/runs/<label>/seed-<s>. A stopped or killed compare
has its runs checkpoint and stop; rerunning the same command keeps finished runs and resumes the others.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ganzoo.training import rundir
from ganzoo.core.errors import GanzooError
from ganzoo.core.files import write_atomic

STATE = "compare.json"
# Options compare sets itself for every run; a spec may not set them.
OWNED = {"--seed", "--epochs", "--steps", "--minutes", "--out", "--resume", "--dataset", "--eval-every", "--eval-n",
         "--eval-features", "--limit-data", "--quiet", "--json", "--config"}


@dataclass(frozen=True)
class Spec:
    label: str
    strategy: str
    args: tuple[str, ...]
    text: str


def parse_spec(text: str) -> Spec:
    """``"psg --n-gens 2"`` or ``"label=psg --n-gens 2"``."""
    label, _, rest = text.partition("=") if re.match(r"^[\w.-]+=", text) else ("", "", text)
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise GanzooError(f"cannot read configuration {text!r}: {exc}") from None
    if not words:
        raise GanzooError(f"empty configuration {text!r}; give a strategy and its options, e.g. \"psg --n-gens 2\"")
    label = label or re.sub(r"[^\w.]+", "-", " ".join(words).replace("--", "")).strip("-")
    return Spec(label, words[0], tuple(words[1:]), text)


def check_spec(ctx: click.Context, spec: Spec) -> None:
    """Parse the spec with its train command, so that a typo fails before anything runs."""
    from ganzoo.cli.context import get_host
    from ganzoo.cli.train import train_command

    host = get_host(ctx)
    names = host.registry.names("strategy")
    if spec.strategy not in names:
        raise GanzooError(f"configuration {spec.text!r}: unknown strategy {spec.strategy!r} (known: {', '.join(names)})")
    command = train_command(host.registry.get("strategy", spec.strategy), host)
    owned = sorted({a.split("=")[0] for a in spec.args if a.split("=")[0] in OWNED})
    if owned:
        raise GanzooError(f"configuration {spec.text!r} sets {', '.join(owned)}, which compare sets for every run; give it to compare instead")
    try:
        command.make_context(spec.strategy, list(spec.args), parent=ctx, resilient_parsing=False)
    except click.UsageError as exc:
        raise GanzooError(f"configuration {spec.text!r}: {exc.format_message()}") from None


@dataclass
class Job:
    spec: Spec
    seed: int
    run_dir: Path


def train_argv(job: Job, settings: dict[str, Any], resume: bool) -> list[str]:
    argv = [sys.executable, "-m", "ganzoo", "train", job.spec.strategy]
    budget = [*(["--epochs", str(settings["epochs"])] if settings["epochs"] else []),
              *(["--minutes", str(settings["minutes"])] if settings.get("minutes") else [])]
    evaluation = ["--eval-every", str(settings["eval_every"]), "--eval-n", str(settings["eval_n"]), "--eval-features", settings["features"]]
    if resume:
        return argv + ["--resume", str(job.run_dir), *budget, "--quiet", *evaluation]
    argv += [*job.spec.args, "--seed", str(job.seed), *budget, "--dataset", settings["dataset"], *evaluation,
             "--out", str(job.run_dir), "--quiet"]
    if settings["limit_data"]:
        argv += ["--limit-data", str(settings["limit_data"])]
    return argv


def finished_epochs(run_dir: Path) -> int:
    return max((r["epoch"] for r in rundir.read_metrics(run_dir) if not r.get("partial")), default=0) if run_dir.exists() else 0


def trained_minutes(run_dir: Path) -> float:
    records = rundir.read_metrics(run_dir) if run_dir.exists() else []
    return max((r.get("train_seconds", 0.0) for r in records), default=0.0) / 60


def converged(run_dir: Path) -> bool:
    """Whether the run has reached its FID plateau (ganzoo.evaluation.convergence), confirmed."""
    from ganzoo.evaluation.convergence import fid_plateau

    return run_dir.exists() and fid_plateau([r["fid"] for r in rundir.epoch_records(run_dir) if "fid" in r]) is not None


def finished(run_dir: Path, settings: dict[str, Any]) -> bool:
    """Whether a run has trained its budget: its epochs, or its minutes of training time; with
    --until-converged, also a run that has converged."""
    epochs, minutes = settings["epochs"], settings.get("minutes")
    return (bool(epochs and finished_epochs(run_dir) >= epochs) or bool(minutes and trained_minutes(run_dir) >= minutes)
            or bool(settings.get("until_converged") and converged(run_dir)))


class Children:
    """The training and evaluation subprocesses of one compare, so that a stop reaches each of them once.

    They run in their own sessions: a Ctrl-C in the terminal reaches compare alone, which passes one
    SIGINT to every live child (a second one would make a trainer stop without its checkpoint).
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()

    def call(self, argv: list[str], log_path: Path, env: dict[str, str]) -> int:
        with open(log_path, "a") as log:
            log.write(f"$ {shlex.join(argv)}\n")
            log.flush()
            with self._lock:
                if self.stop.is_set():
                    return 130
                process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
                self._live.add(process)
            try:
                code = process.wait()
            finally:
                with self._lock:
                    self._live.discard(process)
        if code in (130, 143, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL):
            self.stop.set()  # stopped from outside: start nothing more
        return code

    def interrupt(self) -> None:
        with self._lock:
            self.stop.set()
            for process in self._live:
                process.send_signal(signal.SIGINT)


def run_job(job: Job, settings: dict[str, Any], env: dict[str, str], log_dir: Path, children: Children) -> str:
    """Train (or resume) one run, then evaluate it; return "" or an error line. Output goes to a log file."""
    log_path = log_dir / f"{job.spec.label}-seed-{job.seed}.log"
    if children.stop.is_set():
        return "not started"
    while not finished(job.run_dir, settings):
        has_checkpoint = (job.run_dir / rundir.CHECKPOINT).exists()
        if job.run_dir.exists() and not has_checkpoint:
            import shutil

            shutil.rmtree(job.run_dir)  # stopped before its first checkpoint: nothing to keep
        chunk, before = settings, finished_epochs(job.run_dir)
        if settings.get("until_converged"):  # up to the next evaluation, then look for the plateau
            step = before + int(settings["eval_every"])
            chunk = {**settings, "epochs": min(settings["epochs"], step) if settings["epochs"] else step}
        code = children.call(train_argv(job, chunk, resume=has_checkpoint), log_path, env)
        if code != 0:
            return f"training exited with {code} (log: {log_path})"
        if chunk is settings or finished_epochs(job.run_dir) <= before:
            break  # the whole budget in one call, or a chunk that trained nothing (a --minutes budget spent)
    evaluation = job.run_dir / f"eval-{settings['features']}.json"
    step = rundir.checkpoint_step(job.run_dir)
    # a run kept without its checkpoint (as in docs/results/) keeps its evaluation: nothing to redo it from
    if not (evaluation.exists() and step in (None, json.loads(evaluation.read_text())["protocol"].get("step"))):
        argv = [sys.executable, "-m", "ganzoo", "eval", str(job.run_dir), "--n", str(settings["final_n"]),
                "--features", settings["features"], "--json"]
        code = children.call(argv, log_path, env)
        if code != 0:
            return f"evaluation exited with {code} (log: {log_path})"
    return ""


def jobs_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), GANZOO_STOP_WITH_PARENT=str(os.getpid()))
    return env


@click.command("compare", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("specs", nargs=-1, required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Report folder (runs go under OUT/runs).")
@click.option("--seeds", type=click.IntRange(1, 100), default=3, show_default=True, help="Seeds 0..S-1 for every configuration.")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Epochs per run. [default: 5, or none with --minutes]")
@click.option("--minutes", type=click.FloatRange(0, min_open=True), default=None,
              help="Minutes of training time per run (wall clock: with --jobs > 1 the runs share the machine).")
@click.option("--dataset", default="mnist", show_default=True, help="Dataset of every run.")
@click.option("--limit-data", type=click.IntRange(0), default=0, help="Train on the first K images only (smoke tests).")
@click.option("--eval-every", default="1", show_default=True,
              help="Evaluate every K epochs during training, or every K steps (500steps) or seconds (60s) of training time.")
@click.option("--eval-n", type=click.IntRange(2), default=2000, show_default=True, help="Samples per evaluation during training.")
@click.option("--final-n", type=click.IntRange(2), default=None,
              help="Samples of the final evaluation. [default: the dataset's protocol: 10000, 26000 for stacked-mnist]")
@click.option("--features", default="lenet", show_default=True, help="Feature extractor of every evaluation.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Runs at a time; the CPU cores are split among them.")
@click.option("--until-converged", is_flag=True,
              help="Stop each run at its FID plateau (docs/evaluation.md), with --epochs as the cap; needs --eval-every in epochs.")
@click.option("--baseline", default=None, help="Label of the configuration the paper's claims are tested against. [default: the sngan one]")
@click.pass_context
def compare_command(ctx: click.Context, specs: tuple[str, ...], out: Path, seeds: int, epochs: int | None, minutes: float | None,
                    dataset: str, limit_data: int, eval_every: str, eval_n: int, final_n: int | None, features: str, jobs: int,
                    until_converged: bool, baseline: str | None) -> None:
    """Train and evaluate configurations side by side, e.g.

        ganzoo compare "psg --n-gens 2" sngan --seeds 3 --epochs 5 --out reports/mnist

    Each SPEC is a strategy with its options, optionally labelled: "psg4=psg --n-gens 4". Rerun
    the same command to resume: finished runs are kept. The report is OUT/report.md (and OUT/report.html)."""
    from ganzoo.cli.context import get_host
    from ganzoo.evaluation.compare_report import write_report
    from ganzoo.evaluation.html_report import write_html_report

    from ganzoo.core.config import parse_interval

    host = get_host(ctx)
    parse_interval(eval_every)  # a bad interval is one line and exit 2 before anything runs
    if until_converged and not (eval_every.isdigit() and int(eval_every) > 0):
        raise GanzooError(f"--until-converged looks for the FID plateau in evaluations every K epochs; --eval-every {eval_every} is not K epochs")
    epochs = epochs if epochs is not None else (0 if minutes else 5)
    parsed = [parse_spec(s) for s in specs]
    labels = [s.label for s in parsed]
    if len(set(labels)) != len(labels):
        raise GanzooError(f"two configurations have the same label ({', '.join(labels)}); label them: \"name=psg ...\"")
    for spec in parsed:
        check_spec(ctx, spec)
    final_n = final_n or host.registry.get("dataset", dataset.partition(":")[0]).eval_samples
    host.registry.get("extractor", features)
    if baseline is not None and baseline not in labels:
        raise GanzooError(f"--baseline {baseline!r} is not one of the labels: {', '.join(labels)}")

    settings = {"specs": [s.text for s in parsed], "seeds": seeds, "epochs": epochs, "minutes": minutes, "dataset": dataset, "limit_data": limit_data,
                "eval_every": eval_every, "eval_n": eval_n, "final_n": final_n, "features": features, "until_converged": until_converged}
    state_path = out / STATE
    if state_path.exists():
        before = json.loads(state_path.read_text())["settings"]
        before["eval_every"] = str(before.get("eval_every"))  # an int before 0.4: the same interval in epochs
        changed = sorted(k for k in settings if before.get(k) != settings[k] and k not in ("epochs", "minutes", "until_converged"))
        if changed:
            raise GanzooError(f"{out} holds a comparison with other settings ({', '.join(changed)}); use another --out")
    elif out.exists() and any(out.iterdir()):
        raise GanzooError(f"{out} exists and is not a comparison folder; use another --out")
    # Train the classifier and extract the real features once, here, rather than in every parallel run.
    from ganzoo.evaluation.evaluator import build_evaluator

    build_evaluator(host, dataset, features=features, log=lambda m: click.echo(m, err=True))

    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    state = {"settings": settings, "command": shlex.join(["ganzoo", *sys.argv[1:]])}
    write_atomic(state_path, (json.dumps(state, indent=1) + "\n").encode())

    job_list = [Job(s, seed, out / "runs" / s.label / f"seed-{seed}") for seed in range(seeds) for s in parsed]
    cores = os.cpu_count() or 1
    if jobs > cores:  # more runs than cores only makes each slower (threads waiting on a shared core)
        click.echo(f"note: --jobs {jobs} is more than the {cores} cores; running {cores} at a time", err=True)
        jobs = cores
    threads = max(1, cores // jobs)
    if minutes and jobs > 1:
        click.echo(f"note: --minutes is wall-clock time; with {jobs} runs at a time each has {threads} thread(s) of the machine", err=True)
    env = jobs_env(threads)
    children = Children()
    errors: dict[str, str] = {}
    started = time.time()
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    console.print(f"{len(job_list)} runs ({len(parsed)} configurations x {seeds} seeds), {jobs} at a time, {threads} thread(s) each; logs in {out / 'logs'}")
    # progress in epochs, or with a time budget (and no epoch count) in minutes of training
    unit = "epochs" if epochs else "minutes"
    total = len(job_list) * (epochs or minutes)

    def done_epochs() -> float:
        if not epochs:
            return round(sum(min(trained_minutes(j.run_dir), minutes) for j in job_list), 1)
        return sum(epochs if finished(j.run_dir, settings) else min(finished_epochs(j.run_dir), epochs) for j in job_list)

    previous_term = signal.signal(signal.SIGTERM, lambda *_: children.interrupt()) if threading.current_thread() is threading.main_thread() else None
    try:
        with Progress(TextColumn("[bold]compare"), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("compare", total=total)
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = {pool.submit(run_job, j, settings, env, out / "logs", children): j for j in job_list}
                while not all(f.done() for f in futures):
                    try:
                        progress.update(task, completed=done_epochs())
                        time.sleep(1.0)
                    except KeyboardInterrupt:
                        children.interrupt()  # each run checkpoints and stops; wait for them
                progress.update(task, completed=done_epochs())
                for future, job in futures.items():
                    if future.result():
                        errors[f"{job.spec.label} seed {job.seed}"] = future.result()
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    report = write_report(out, parsed, seeds, settings, baseline=baseline, wall_seconds=time.time() - started, errors=errors)
    page = write_html_report(out).path  # the same numbers as one page to open in a browser
    if children.stop.is_set():
        click.echo(f"stopped; finished runs are kept, the others stopped at a checkpoint. Resume with the same command (--out {out}).", err=True)
        ctx.exit(130)
    click.echo(f"report: {report} and {page}")
    if errors:  # not bad input: exit 1, and the report says which runs are missing
        for name, error in errors.items():
            click.echo(f"error: {name}: {error}", err=True)
        ctx.exit(1)
