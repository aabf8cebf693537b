"""The Ray launcher: each task a Ray task with its CPUs (and GPUs), retried when its worker dies.

``--ray-address auto`` or HOST:PORT joins a running cluster; without one, a local Ray is started for
the launch and stopped after it. A task lost with its worker (killed, out of memory, its node gone)
runs again, up to ``--retries`` times, and resumes its run from the checkpoint: the training it left
behind got SIGTERM when the worker died, checkpointed and stopped, and the new task waits on the run's
lock until it has (``ganzoo.compare.runner``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from ganzoo.compare.children import Children
from ganzoo.compare.launch import LaunchOptions, Task, TaskFunction, check_shared, need
from ganzoo.core.errors import GanzooError

STOP_SECONDS = 120.0  # after a Ctrl-C, how long the tasks get to checkpoint their runs


def _call(function: TaskFunction) -> str:
    return function()


def connect(options: LaunchOptions, out: Path) -> None:
    """Join the cluster (or start a local one, without --ray-address). Refuses a folder local to
    this machine when the cluster has other nodes."""
    ray = need("ray", "--launcher ray")
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    main = threading.current_thread() is threading.main_thread()
    term = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address=options.ray_address, **kwargs)  # None: a local Ray for this command
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise GanzooError(f"cannot connect to Ray at {options.ray_address}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc} "
                          f"(a cluster with token authentication needs RAY_AUTH_MODE=token here too)") from None
    finally:
        if main and term is not None:
            signal.signal(signal.SIGTERM, term)  # ray.init puts in one that exits at once; compare's stops the runs at a checkpoint
    try:
        nodes = [n.get("NodeManagerAddress", "") for n in ray.nodes() if n.get("Alive")]
        check_shared(out, nodes, "Ray", {ray.util.get_node_ip_address()})
    except BaseException:
        ray.shutdown()
        raise


def run_ray(options: LaunchOptions, tasks: list[Task], out: Path, children: Children,
            tick: Callable[[str], None]) -> dict[str, str]:
    """A Ray task per task that is not done; waits for all of them. Ctrl-C cancels them (each run
    checkpoints and stops) and waits for that."""
    ray = need("ray", "--launcher ray")
    connect(options, out)
    try:
        remote = ray.remote(num_cpus=options.ray_cpus, num_gpus=options.ray_gpus, max_retries=options.retries,
                            retry_exceptions=False)(_call)
        refs = {remote.options(name=task.key).remote(task.function): task for task in tasks if not task.done()}
        results: dict[str, str] = {}
        pending = list(refs)
        try:
            while pending and not children.stop.is_set():  # set by SIGTERM (compare's handler)
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
                for ref in ready:
                    results[refs[ref].key] = _result(ray, ref, refs[ref])
                tick(f"ray: {len(pending)} running or waiting, {len(results)} ended")
        except KeyboardInterrupt:
            children.stop.set()
        if pending and children.stop.is_set():
            for ref in pending:
                ray.cancel(ref)  # a KeyboardInterrupt in the task: its run checkpoints and stops
            ray.wait(pending, num_returns=len(pending), timeout=STOP_SECONDS)
        return results
    finally:
        ray.shutdown()  # a Ray started here stops with it; a cluster's goes on


def _result(ray, ref, task: Task) -> str:  # noqa: ANN001 - ray's module and ObjectRef
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:  # retries used up (the worker died each time), or cancelled
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"the Ray task failed: {first} (log: {task.log})"
