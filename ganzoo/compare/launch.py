"""Where a comparison's (or a tune's) tasks run: ``--launcher local`` (subprocesses here, the
default), ``slurm`` (each task a Slurm job, through submitit) or ``ray`` (each task a Ray task).

A task is a picklable function that runs where the launcher puts it (``ganzoo.compare.runner`` for
a comparison's jobs, ``ganzoo.tune.worker`` for a tune's workers), so the three launchers share one
job description and a report cannot depend on where a run trained. Slurm and Ray need the output
folder on storage every node shares: ``check_shared`` refuses a folder that is detectably local to
this machine when the cluster has other nodes, and every task checks, where it runs, that it sees
the folder the launcher wrote (``TaskFunction``), so a task on a node without it fails in one line.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ganzoo.compare.children import Children
from ganzoo.core.errors import GanzooError
from ganzoo.core.files import write_atomic

LAUNCHERS = ("local", "slurm", "ray")
STATE = "launch.json"  # the launcher's record in the output folder: its token and the Slurm job ids
# extra -> (module, what it is): `pip install 'ganzoo[extra]'`
EXTRAS = {"slurm": ("submitit", "submitit"), "ray": ("ray", "Ray"), "tune": ("optuna", "Optuna")}
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run")


def need(extra: str, who: str) -> ModuleType:
    """The extra's module, or one line (exit 2) with the pip command that installs it."""
    module, name = EXTRAS[extra]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise GanzooError(f"{who} needs {name}, which is not installed: pip install 'ganzoo[{extra}]'") from None


@dataclass
class LaunchOptions:
    """The ``--launcher`` options of compare and tune (``ganzoo.cli.launch_options``)."""

    launcher: str = "local"
    slurm_partition: str | None = None
    slurm_time: int = 240  # minutes
    slurm_cpus: int = 2
    slurm_gpus: int = 0
    slurm_mem: str | None = None
    slurm_opts: dict[str, str] = field(default_factory=dict)
    ray_address: str | None = None
    ray_cpus: float = 2
    ray_gpus: float = 0
    retries: int = 3

    @property
    def threads(self) -> int:
        """Threads per job where a cluster runs it: its CPUs."""
        return max(1, int(self.slurm_cpus if self.launcher == "slurm" else self.ray_cpus))


class TaskFunction:
    """The work of one task, picklable: subclasses define ``work(children) -> str`` ("" or an error
    line) and keep plain data. Called with the launcher's ``Children`` here, or with none on a cluster."""

    out: Path
    token: str

    def __call__(self, children: Children | None = None) -> str:
        self._children = children or Children()
        if children is None and not visible(self.out, self.token):
            return (f"{self.out} is not visible on node {socket.gethostname()} (no {STATE} of this launch there): the output "
                    f"folder must be on storage every node shares")
        try:
            return self.work(self._children)
        except KeyboardInterrupt:  # a Ray cancel: each subprocess checkpoints and stops
            self._children.interrupt()
            self._children.wait()
            return "stopped"

    def work(self, children: Children) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the subprocesses at a checkpoint and wait for them (a Slurm job warned of its end:
        they get the same warning, USR2, which Slurm may also have sent them)."""
        children = getattr(self, "_children", None)
        if children is not None:
            children.interrupt(getattr(signal, "SIGUSR2", signal.SIGINT))
            children.wait()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_children"}


@dataclass(frozen=True)
class Task:
    key: str  # unique in the folder, e.g. "sngan/seed-0"; names the job on the cluster
    function: TaskFunction
    log: Path  # where its output goes, named when it fails
    done: Callable[[], bool]  # here: nothing left to do, so it is not launched again


def read_state(out: Path) -> dict[str, Any]:
    path = out / STATE
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise GanzooError(f"cannot read {path}: {exc}; remove it (Slurm jobs it records are then not attached to)") from None
    if not isinstance(state, dict) or not isinstance(state.get("token"), str) or not isinstance(state.get("slurm", {}), dict):
        raise GanzooError(f"{path} is not a launch record of ganzoo; remove it")
    return state


def write_state(out: Path, state: dict[str, Any]) -> None:
    write_atomic(out / STATE, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())


def token_of(out: Path) -> str:
    """The folder's launch token (made once, kept on reruns: a requeued job from an earlier run still matches)."""
    state = read_state(out)
    if "token" not in state:
        state["token"] = secrets.token_hex(8)
        write_state(out, state)
    return state["token"]


def visible(out: Path, token: str) -> bool:
    try:
        return read_state(out).get("token") == token
    except GanzooError:
        return False


def node_local(path: Path) -> str:
    """Why path is on this machine's own storage ("" when it may be shared): under /tmp and the
    like, or on a tmpfs."""
    resolved = os.path.realpath(path)
    for prefix in NODE_LOCAL:
        if resolved == prefix or resolved.startswith(prefix + "/"):
            return f"under {prefix}"
    best, kind = "", ""
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) > 2 and (resolved == parts[1] or resolved.startswith(parts[1].rstrip("/") + "/")) and len(parts[1]) >= len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        return ""
    return f"on a {kind} (memory of this machine)" if kind in ("tmpfs", "ramfs") else ""


def this_machine() -> set[str]:
    names = {"localhost", "127.0.0.1", "::1", socket.gethostname(), socket.gethostname().split(".")[0], socket.getfqdn()}
    try:
        names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return names


def check_shared(out: Path, nodes: list[str], launcher: str, here: set[str] = frozenset()) -> None:
    """Refuse an output folder local to this machine when the cluster has nodes other than this one
    (``here``: more names of this machine, e.g. the address Ray knows it by)."""
    others = sorted(set(nodes) - this_machine() - set(here))
    why = node_local(out)
    if others and why:
        raise GanzooError(f"--out {out} is {why}, which the {launcher} nodes ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}) "
                          f"cannot see: put it on storage every node shares (docs/sweeps.md)")
