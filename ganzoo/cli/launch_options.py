"""The ``--launcher`` options that ``ganzoo compare`` and ``ganzoo tune`` share (where their tasks
run: ``ganzoo.compare.launch``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from ganzoo.compare.launch import LAUNCHERS, LaunchOptions
from ganzoo.core.errors import GanzooError

OPTIONS = [
    click.option("--launcher", type=click.Choice(LAUNCHERS), default="local", show_default=True,
                 help="Where the runs train: subprocesses here, Slurm jobs (pip install 'ganzoo[slurm]') or Ray tasks "
                      "('ganzoo[ray]'). Slurm and Ray need --out on storage every node shares (docs/sweeps.md)."),
    click.option("--slurm-partition", default=None, help="Slurm: the partition of every job. [default: the cluster's]"),
    click.option("--slurm-time", default="4:00:00", show_default=True,
                 help="Slurm: each job's time limit (minutes, H:MM:SS or D-HH:MM:SS); a job that reaches it checkpoints and is requeued."),
    click.option("--slurm-cpus", type=click.IntRange(1), default=2, show_default=True, help="Slurm: CPUs per job (its training's threads)."),
    click.option("--slurm-gpus", type=click.IntRange(0), default=0, show_default=True, help="Slurm: GPUs per job."),
    click.option("--slurm-mem", default=None, help="Slurm: memory per job, e.g. 8G. [default: the partition's]"),
    click.option("--slurm-opt", "slurm_opt", multiple=True, metavar="KEY=VALUE",
                 help="Slurm: any other sbatch option, e.g. qos=high or constraint=a100 (repeatable)."),
    click.option("--ray-address", default=None,
                 help="Ray: auto (the cluster this machine belongs to) or HOST:PORT. [default: a local Ray for this command]"),
    click.option("--ray-cpus", type=click.FloatRange(0, min_open=True), default=2, show_default=True,
                 help="Ray: CPUs per task (its training's threads)."),
    click.option("--ray-gpus", type=click.FloatRange(0), default=0, show_default=True, help="Ray: GPUs per task."),
    click.option("--retries", type=click.IntRange(0, 100), default=3, show_default=True,
                 help="Slurm: requeues after a time limit; Ray: reruns of a task whose worker died. Each resumes from the checkpoint."),
]
NAMES = ("launcher", "slurm_partition", "slurm_time", "slurm_cpus", "slurm_gpus", "slurm_mem", "slurm_opt", "ray_address",
         "ray_cpus", "ray_gpus", "retries")


def launch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def options_of(ctx: click.Context, params: dict[str, Any]) -> LaunchOptions:
    """Take the launcher's values out of a command's params (removing them); one line for an option
    of another launcher than the chosen one."""
    from ganzoo.compare.slurm import slurm_opts, slurm_time

    values = {name: params.pop(name) for name in NAMES}
    launcher = values["launcher"]
    for name in NAMES[1:]:
        prefix = name.split("_")[0]
        if prefix in ("slurm", "ray") and prefix != launcher and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            raise GanzooError(f"--{name.replace('_', '-')} is an option of --launcher {prefix}, not of --launcher {launcher}")
    return LaunchOptions(
        launcher=launcher, slurm_partition=values["slurm_partition"], slurm_time=slurm_time(values["slurm_time"]),
        slurm_cpus=values["slurm_cpus"], slurm_gpus=values["slurm_gpus"], slurm_mem=values["slurm_mem"],
        slurm_opts=slurm_opts(values["slurm_opt"]), ray_address=values["ray_address"], ray_cpus=values["ray_cpus"],
        ray_gpus=values["ray_gpus"], retries=values["retries"])
