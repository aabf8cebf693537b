"""Running a comparison's jobs as local subprocesses, ``--jobs`` at a time, the cores split among them.

Each job is ``ganzoo train`` (then ``ganzoo eval``) in its own session: a Ctrl-C in the terminal
reaches compare alone, which passes one SIGINT to every live child, so that each run checkpoints and
stops; rerunning the same comparison keeps finished runs and resumes the others.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ganzoo.compare.jobs import Job, eval_argv, evaluated, finished, finished_epochs, log_path, train_argv
from ganzoo.core.errors import GanzooError
from ganzoo.core.files import open_append
from ganzoo.runs import rundir


class Children:
    """The training and evaluation subprocesses of one compare, so that a stop reaches each of them once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()

    def call(self, argv: list[str], log_path: Path, env: dict[str, str]) -> int:
        log = open_append(log_path)  # never through a planted link, never into a FIFO
        try:
            try:
                os.write(log, f"$ {shlex.join(argv)}\n".encode())
            except OSError as exc:
                raise GanzooError(f"cannot write {log_path}: {exc.strerror or exc}") from None
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
        finally:
            os.close(log)
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
    try:
        return _run_job(job, settings, env, log_dir, children)
    except GanzooError as exc:  # its log or run folder cannot be used (a link planted while compare runs)
        return str(exc)


def _run_job(job: Job, settings: dict[str, Any], env: dict[str, str], log_dir: Path, children: Children) -> str:
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
        code = children.call(train_argv(job, chunk, resume=has_checkpoint), log, env)
        if code != 0:
            return f"training exited with {code} (log: {log})"
        if chunk is settings or finished_epochs(job.run_dir) <= before:
            break  # the whole budget in one call, or a chunk that trained nothing (a --minutes budget spent)
    if not evaluated(job, settings):
        code = children.call(eval_argv(job, settings), log, env)
        if code != 0:
            return f"evaluation exited with {code} (log: {log})"
    return ""


def jobs_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), GANZOO_STOP_WITH_PARENT=str(os.getpid()))
    return env


def run_all(jobs: list[Job], settings: dict[str, Any], log_dir: Path, children: Children, *, at_once: int, threads: int,
            tick: Callable[[], None] = lambda: None) -> dict[Job, str]:
    """Run every job, ``at_once`` at a time with ``threads`` threads each; ``tick`` is called about
    every second (a progress display). Returns each job's error line ("" when it went well)."""
    env = jobs_env(threads)
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        futures = {pool.submit(run_job, job, settings, env, log_dir, children): job for job in jobs}
        while not all(f.done() for f in futures):
            try:
                tick()
                time.sleep(1.0)
            except KeyboardInterrupt:
                children.interrupt()  # each run checkpoints and stops; wait for them
        tick()
        return {job: future.result() for future, job in futures.items()}
