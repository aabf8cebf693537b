"""Choosing the launcher: ``launch`` runs a comparison's (or a tune's) tasks through the one asked
for, ``prepare`` checks beforehand that it can (``ganzoo.compare.launch`` describes the tasks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ganzoo.compare.children import Children
from ganzoo.compare.launch import LaunchOptions, Task, need


def launch(options: LaunchOptions, tasks: list[Task], out: Path, children: Children, *, at_once: int,
           tick: Callable[[str], None]) -> dict[str, str]:
    """Run the tasks that are not done through the chosen launcher; returns each task's error line by key.
    ``tick(status)`` is called about every second with the launcher's one-line status."""
    if options.launcher == "local":
        from ganzoo.compare.local import run_local

        return run_local(tasks, children, at_once=at_once, tick=lambda: tick(""))
    if options.launcher == "slurm":
        from ganzoo.compare.slurm import run_slurm

        return run_slurm(options, tasks, out, children, tick)
    from ganzoo.compare.ray_cluster import run_ray

    return run_ray(options, tasks, out, children, tick)


def prepare(options: LaunchOptions, out: Path) -> None:
    """Check, before anything is written, that the launcher can run: its extra, and for Slurm the
    cluster and shared storage (Ray's nodes are known once connected: ``run_ray`` checks them)."""
    if options.launcher == "slurm":
        from ganzoo.compare.slurm import check_slurm

        check_slurm(options, out)
    elif options.launcher == "ray":
        need("ray", "--launcher ray")
