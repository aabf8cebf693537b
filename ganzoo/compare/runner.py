"""Running one job where a launcher put it (here, in a Slurm job, in a Ray task): ``ganzoo train``
(in chunks with ``--until-converged``, resuming from the run's checkpoint), then ``ganzoo eval``, as
subprocesses whose output goes to the job's log.

Every launcher calls ``run_job``, so a run cannot compute differently for where it trained. A job
holds a lock on its run folder for as long as it or its training lives: a job restarted after its
worker died (a Ray retry, a Slurm requeue) waits there until the training it left behind has
checkpointed and stopped (each training gets SIGTERM when the process that started it dies).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganzoo.compare.children import Children
from ganzoo.compare.jobs import Job, eval_argv, evaluated, finished, finished_epochs, log_path, train_argv
from ganzoo.compare.launch import TaskFunction
from ganzoo.core.errors import GanzooError
from ganzoo.runs import rundir


def lock_path(job: Job) -> Path:
    return job.run_dir.parent / f".{job.run_dir.name}.lock"


def open_lock(path: Path, wait: bool = True) -> int | None:
    """A descriptor holding an exclusive flock on the lock file at path (made when missing, never
    through a link), waiting for whoever holds it; with ``wait=False``, None when someone does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise GanzooError(f"cannot use {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def run_lock(job: Job) -> Iterator[int]:
    """Hold the run's lock (waiting for whoever holds it); yields the descriptor, which the job's
    subprocesses inherit, so that the lock lives as long as any of them."""
    fd = open_lock(lock_path(job))
    try:
        yield fd
    finally:
        os.close(fd)


def jobs_env(threads: int) -> dict[str, str]:
    """The environment of a job's subprocesses: its threads, and SIGTERM when this process dies."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), GANZOO_STOP_WITH_PARENT=str(os.getpid()))
    return env


def try_lock(job: Job) -> int | None:
    """The run's lock if nobody holds it (a descriptor to close), else None (ganzoo tune: a trial whose
    worker is alive is not taken over)."""
    return open_lock(lock_path(job), wait=False)


def run_job(job: Job, settings: dict[str, Any], log_dir: Path, children: Children, threads: int,
            watch: Callable[[Any], bool] | None = None, lock: int | None = None) -> str:
    """Train (or resume) one run, then evaluate it; return "" or an error line. Output goes to a log
    file. ``watch`` watches the training (``Children.call``); ``lock``: the run's lock, already held."""
    try:
        if lock is not None:
            return _run_job(job, settings, jobs_env(threads), log_dir, children, lock, watch)
        with run_lock(job) as held:
            return _run_job(job, settings, jobs_env(threads), log_dir, children, held, watch)
    except GanzooError as exc:  # its log or run folder cannot be used (a link planted while compare runs)
        return str(exc)


def _run_job(job: Job, settings: dict[str, Any], env: dict[str, str], log_dir: Path, children: Children, lock: int,
             watch: Callable[[Any], bool] | None) -> str:
    log = log_path(job, log_dir)
    if children.stop.is_set():
        return "not started"
    while not finished(job.run_dir, settings):
        has_checkpoint = (job.run_dir / rundir.CHECKPOINT).exists()
        if job.run_dir.exists() and not has_checkpoint:
            shutil.rmtree(job.run_dir)  # stopped before its first checkpoint: nothing to keep
        chunk, before = settings, finished_epochs(job.run_dir)
        if settings.get("until_converged"):  # up to the next evaluation, then look for the plateau
            step = before + int(settings["eval_every"])
            chunk = {**settings, "epochs": min(settings["epochs"], step) if settings["epochs"] else step}
        code = children.call(train_argv(job, chunk, resume=has_checkpoint), log, env, (lock,), watch)
        if code != 0:
            return f"training exited with {code} (log: {log})"
        if chunk is settings or finished_epochs(job.run_dir) <= before:
            break  # the whole budget in one call, or a chunk that trained nothing (a --minutes budget spent)
    if not evaluated(job, settings):
        code = children.call(eval_argv(job, settings), log, env, (lock,))
        if code != 0:
            return f"evaluation exited with {code} (log: {log})"
    return ""


def done(job: Job, settings: dict[str, Any]) -> bool:
    """Whether the job has nothing left to do: trained its budget and evaluated."""
    return finished(job.run_dir, settings) and evaluated(job, settings)


class JobFunction(TaskFunction):
    """A comparison's job as a launcher's task: ``run_job`` with the job's threads."""

    def __init__(self, job: Job, settings: dict[str, Any], log_dir: Path, threads: int, out: Path, token: str) -> None:
        self.job, self.settings, self.log_dir, self.threads, self.out, self.token = job, settings, log_dir, threads, out, token

    def work(self, children: Children) -> str:
        return run_job(self.job, self.settings, self.log_dir, children, self.threads)
