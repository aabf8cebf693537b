"""The subprocesses of one process (compare, a Slurm job, a Ray worker), so that a stop reaches each
of them once: a SIGINT, after which each run checkpoints and stops."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ganzoo.core.errors import GanzooError
from ganzoo.core.files import open_append

# A run stopped from outside: SIGINT, SIGTERM, SIGUSR2 (Slurm's time-limit warning) or SIGKILL, as its exit code.
STOPPED = (130, 143, 140, -signal.SIGINT, -signal.SIGTERM, -signal.SIGUSR2, -signal.SIGKILL)


class Children:
    """The training and evaluation subprocesses of one process (compare, a Slurm job, a Ray worker),
    so that a stop reaches each of them once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()

    def call(self, argv: list[str], log_path: Path, env: dict[str, str], keep_fds: tuple[int, ...] = (),
             watch: Callable[[subprocess.Popen], bool] | None = None) -> int:
        """Run argv to its end, its output appended to log_path; returns its exit code. ``watch``,
        when given, is called about every second and may stop the process itself (ganzoo tune's
        pruning): it returns True once it has, and such a stop is not a stop of this process's work."""
        log = open_append(log_path)  # never through a planted link, never into a FIFO
        try:
            try:
                os.write(log, f"$ {shlex.join(argv)}\n".encode())
            except OSError as exc:
                raise GanzooError(f"cannot write {log_path}: {exc.strerror or exc}") from None
            with self._lock:
                if self.stop.is_set():
                    return 130
                process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                           pass_fds=keep_fds)
                self._live.add(process)
            stopped_by_watch = False
            try:
                while True:
                    try:
                        code = process.wait(timeout=1.0)  # a loop, so that a Ray cancel's KeyboardInterrupt gets in
                        break
                    except subprocess.TimeoutExpired:
                        if watch is not None:
                            stopped_by_watch = watch(process) or stopped_by_watch
            except BaseException:  # KeyboardInterrupt (a Ray cancel), SystemExit: the run checkpoints and stops first
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                    process.wait()
                raise
            finally:
                with self._lock:
                    self._live.discard(process)
        finally:
            os.close(log)
        if code in STOPPED and not stopped_by_watch:
            self.stop.set()  # stopped from outside: start nothing more
        return code

    def interrupt(self, number: int = signal.SIGINT) -> None:
        """Start nothing more, and pass the stop on to each live child (SIGINT, or the signal this
        process was stopped by): each checkpoints and stops."""
        with self._lock:
            self.stop.set()
            for process in self._live:
                process.send_signal(number)

    def wait(self) -> None:
        """Until every live child has ended (after ``interrupt``: checkpointed and stopped). Safe in
        a signal handler that interrupted ``call`` (submitit's checkpoint on SIGUSR2): it never takes
        Popen's own lock, which the interrupted ``wait`` holds, and leaves the reaping to ``call``."""
        with self._lock:
            live = list(self._live)
        for process in live:
            while True:
                try:
                    if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                        break  # exited (a zombie until call reaps it)
                except ChildProcessError:
                    break  # already reaped
                time.sleep(0.2)
