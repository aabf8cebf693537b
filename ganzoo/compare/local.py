"""The local launcher: a comparison's tasks in threads of this process, ``--jobs`` at a time, each
running its subprocesses with its share of the cores.

Each subprocess runs in its own session: a Ctrl-C in the terminal reaches compare alone, which
passes one SIGINT to every live child, so that each run checkpoints and stops; rerunning the same
comparison keeps finished runs and resumes the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ganzoo.compare.children import Children
from ganzoo.compare.launch import Task


def run_local(tasks: list[Task], children: Children, *, at_once: int, tick: Callable[[], None] = lambda: None) -> dict[str, str]:
    """Run every task, ``at_once`` at a time; ``tick`` is called about every second (a progress
    display). Returns each task's error line by key ("" when it went well)."""
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        futures = {pool.submit(task.function, children): task for task in tasks}
        while not all(f.done() for f in futures):
            try:
                tick()
                time.sleep(1.0)
            except KeyboardInterrupt:
                children.interrupt()  # each run checkpoints and stops; wait for them
        tick()
        return {task.key: future.result() for future, task in futures.items()}
