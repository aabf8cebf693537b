"""A tune's worker: it takes trials from the study until the study has its target number, and runs
each one as a run folder (``OUT/trials/trial-NNNN``) trained and evaluated exactly like a comparison's
job (``ganzoo.compare.runner.run_job``). Workers run where the launcher puts them (threads here,
Slurm jobs, Ray tasks) and share the study through its storage.

Each in-training evaluation is reported to Optuna (step k = the k-th evaluation, so trials are
compared at the same point of their budget); when the pruner says so, the training gets SIGINT,
checkpoints and stops, and the trial is recorded as pruned. A trial whose worker was stopped
(Ctrl-C, a killed job) stays RUNNING in the study; the next worker that finds its run's lock free
takes it over and resumes it from its checkpoint, so an interrupted tune loses and repeats no trial.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganzoo.compare.children import Children
from ganzoo.compare.jobs import Job, Spec
from ganzoo.compare.launch import TaskFunction, need
from ganzoo.compare.runner import open_lock, run_job, try_lock
from ganzoo.core.errors import GanzooError
from ganzoo.core.search import parse_search
from ganzoo.runs import rundir
from ganzoo.runs.schemas import read_eval
from ganzoo.tune.settings import STUDY, read_state, storage_url
from ganzoo.tune.space import Parameter


def open_study(settings: dict[str, Any], out: Path) -> Any:
    """The study in its storage (created on first use) with the tune's pruner and sampler (TPE,
    random, or a grid of the choices)."""
    optuna = need("tune", "ganzoo tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Steps count evaluations from 1; Optuna prunes from step n_warmup_steps on: from the second evaluation.
    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
               "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3),
               "none": optuna.pruners.NopPruner}
    kind = settings.get("sampler", "tpe")
    if kind == "grid":  # every combination of the choices, once (a study that is a grid of settings)

        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, *args: Any, **kwargs: Any) -> None:
                """GridSampler's only calls Study.stop, which works inside study.optimize alone; the
                tune's target (capped at the grid's size) ends the study here."""

        sampler = Grid({name: list(p.search.choices) for name, p in parameters(settings).items()})
    else:
        sampler = optuna.samplers.RandomSampler() if kind == "random" else optuna.samplers.TPESampler()
    return optuna.create_study(study_name=STUDY, storage=storage_url(out, settings["storage"]), direction=settings["direction"],
                               load_if_exists=True, pruner=pruners[settings["pruner"]](), sampler=sampler)


def parameters(settings: dict[str, Any]) -> dict[str, Parameter]:
    return {name: Parameter(name, parse_search(text, name), name in settings["flags"]) for name, text in settings["space"].items()}


def trial_job(settings: dict[str, Any], out: Path, number: int, params: dict[str, Any]) -> Job:
    """Trial NUMBER as a comparison's job: the strategy with the tune's options and the trial's values."""
    space = parameters(settings)
    args = (*settings["args"], *(a for name, value in params.items() for a in space[name].argv(value)))
    label = f"trial-{number:04d}"
    return Job(Spec(label, settings["strategy"], args, shlex.join([settings["strategy"], *args])), settings["seed"],
               out / "trials" / label)


def retrain_command(settings: dict[str, Any], job: Job) -> str:
    """The ``ganzoo train`` command that trains this trial's configuration again, with the tune's budget."""
    budget = ([f"--minutes={settings['minutes']:g}"] if settings.get("minutes") else
              [f"--steps={settings['steps']}"] if settings.get("steps") else [f"--epochs={settings['epochs']}"])
    data = [f"--dataset={settings['dataset']}", *([f"--limit-data={settings['limit_data']}"] if settings["limit_data"] else []),
            *(f"--{key}={settings[key]}" for key in ("resolution", "channels") if settings.get(key))]
    return shlex.join(["ganzoo", "train", job.spec.strategy, *job.spec.args, f"--seed={job.seed}", *data, *budget])


@contextmanager
def tune_lock(out: Path) -> Iterator[None]:
    """Claims of trials one worker at a time (a file lock in the output folder)."""
    fd = open_lock(out / ".tune.lock")
    try:
        yield
    finally:
        os.close(fd)


def claim(study: Any, settings: dict[str, Any], out: Path) -> tuple[Any, int, set[int]] | None:
    """A trial to run: one left RUNNING by a worker that is gone (its run's lock is free), else a
    new one while the study has fewer than its target; with the run's lock held and the steps
    already reported. None when there is nothing left to do."""
    import optuna

    with tune_lock(out):
        trials = study.get_trials(deepcopy=False)
        for frozen in trials:
            if frozen.state == optuna.trial.TrialState.RUNNING:
                lock = try_lock(trial_job(settings, out, frozen.number, frozen.params))
                if lock is None:
                    continue
                fresh = study._storage.get_trial(frozen._trial_id)  # it may have finished since get_trials
                if fresh.state != optuna.trial.TrialState.RUNNING:
                    os.close(lock)
                    continue
                return optuna.trial.Trial(study, frozen._trial_id), lock, set(fresh.intermediate_values)
        state = read_state(out)
        taken = sum(t.state != optuna.trial.TrialState.WAITING for t in trials)  # enqueued trials are not taken yet
        if state is None or taken >= state["target"]:
            return None
        trial = study.ask()
        for name, parameter in parameters(settings).items():
            parameter.search.suggest(trial, name)
        lock = try_lock(trial_job(settings, out, trial.number, trial.params))
        if lock is None:  # nobody knew this trial's number before: a stale lock file cannot be held
            raise GanzooError(f"the run folder of trial {trial.number} is locked by another process")
        return trial, lock, set()


class Watch:
    """Reports each new in-training evaluation of the metric to the trial; stops the training with
    SIGINT when the pruner says so (``Children.call``'s watch)."""

    def __init__(self, trial: Any, run_dir: Path, metric: str, reported: set[int]) -> None:
        self.trial, self.run_dir, self.metric, self.reported = trial, run_dir, metric, reported
        self.pruned = False

    def __call__(self, process: Any) -> bool:
        if self.pruned or not self.run_dir.exists():
            return self.pruned
        values = [r[self.metric] for r in rundir.read_metrics(self.run_dir)
                  if isinstance(r.get(self.metric), (int, float)) and math.isfinite(r[self.metric])]
        for step, value in enumerate(values, 1):
            if step in self.reported:
                continue
            self.trial.report(float(value), step)
            self.reported.add(step)
            if self.trial.should_prune():
                process.send_signal(signal.SIGINT)  # it checkpoints and stops
                self.pruned = True
                break
        return self.pruned


def run_trial(study: Any, trial: Any, lock: int, reported: set[int], settings: dict[str, Any], out: Path,
              children: Children, threads: int) -> None:
    """Train and evaluate one trial, then tell the study its value, or that it was pruned or failed.
    A trial stopped from outside is left RUNNING: the next worker resumes it."""
    import optuna

    job = trial_job(settings, out, trial.number, trial.params)
    trial.set_user_attr("run", str(job.run_dir.relative_to(out)))
    trial.set_user_attr("command", retrain_command(settings, job))
    watch = Watch(trial, job.run_dir, settings["metric"], reported)
    error = run_job(job, settings, out / "logs", children, threads, watch=watch, lock=lock)
    if watch.pruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    if children.stop.is_set():
        return  # stopped at a checkpoint; left RUNNING for the next worker
    if not error:
        try:
            value = read_eval(job.run_dir / f"eval-{settings['features']}.json").get(settings["metric"])
        except GanzooError as exc:
            value, error = None, str(exc)
        if not error and not (isinstance(value, (int, float)) and math.isfinite(value)):
            error = f"ganzoo eval reported no finite {settings['metric']} ({value!r}) for {job.run_dir}"
    if error:
        trial.set_user_attr("error", error)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return
    study.tell(trial, float(value))


class TuneWorker(TaskFunction):
    """One worker of a tune as a launcher's task: claim and run trials until none is left."""

    def __init__(self, out: Path, settings: dict[str, Any], threads: int, token: str) -> None:
        self.out, self.settings, self.threads, self.token = out, settings, threads, token

    def work(self, children: Children) -> str:
        study = open_study(self.settings, self.out)
        while not children.stop.is_set():
            claimed = claim(study, self.settings, self.out)
            if claimed is None:
                return ""
            trial, lock, reported = claimed
            try:
                run_trial(study, trial, lock, reported, self.settings, self.out, children, self.threads)
            finally:
                os.close(lock)
        return ""
