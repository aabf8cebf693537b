"""The Slurm launcher: each task a Slurm job, submitted through submitit.

The job ids are kept in OUT/launch.json as each job is submitted, so that running the same command
again attaches to the jobs still in the queue instead of submitting them twice, and submits again
only the tasks whose job has ended without finishing (cancelled, failed, lost with its node): they
resume from their run's checkpoint. A job that is preempted or reaches its time limit stops its run
at a checkpoint and is requeued by submitit (``TaskFunction.checkpoint``); one requeued from outside
(``scontrol requeue``) gets SIGTERM, which checkpoints its run, and starts again where it stopped.

The states come from ``squeue`` (no Slurm accounting database needed); whether a task is done comes
from its run folder, the one truth every launcher shares.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganzoo.compare.children import Children
from ganzoo.compare.launch import LaunchOptions, Task, TaskFunction, check_shared, need, read_state, write_state
from ganzoo.core.errors import GanzooError

# squeue's states of a job that will still run (or is running); anything else has ended.
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING",
          "SUSPENDED", "SIGNALING", "STAGE_OUT"}
POLL_SECONDS = 3.0


def slurm_time(text: str) -> int:
    """--slurm-time as whole minutes: M, H:MM:SS, D-HH or D-HH:MM:SS (Slurm's forms; seconds round up)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d{1,2}):(\d{1,2}))?", text.strip())
    if not match:
        raise GanzooError(f"--slurm-time must be minutes, H:MM:SS or D-HH:MM:SS, got {text!r}")
    days, first, mins, secs = match.groups()
    if mins is None:
        minutes = int(first) * (60 if days else 1)  # "D-HH" counts hours, a bare number minutes
    else:
        minutes = int(first) * 60 + int(mins) + (int(secs) > 0)
    minutes += int(days or 0) * 24 * 60
    if minutes < 1:
        raise GanzooError(f"--slurm-time must be at least a minute, got {text!r}")
    return minutes


def slurm_opts(pairs: tuple[str, ...]) -> dict[str, str]:
    """--slurm-opt KEY=VALUE (sbatch's long options without the dashes: qos=high, constraint=a100)."""
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            raise GanzooError(f"--slurm-opt takes KEY=VALUE with KEY an sbatch option (e.g. qos=high), got {pair!r}")
        found[key.replace("-", "_")] = value
    return found


def command(*argv: str) -> str:
    """Run a Slurm client command; its output, or one line naming what failed."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GanzooError(f"{argv[0]} failed: {exc}") from None
    if done.returncode != 0:
        raise GanzooError(f"{' '.join(argv[:2])} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:] or done.returncode}")
    return done.stdout


def check_slurm(options: LaunchOptions, out: Path) -> None:
    """submitit installed, Slurm's commands here and answering, and the folder shared with the nodes."""
    need("slurm", "--launcher slurm")
    for tool in ("sbatch", "squeue", "sinfo"):
        if shutil.which(tool) is None:
            raise GanzooError(f"--launcher slurm needs Slurm's {tool} on PATH; run ganzoo on a machine of the cluster (a login node)")
    nodes = command("sinfo", "-h", "-N", "-o", "%N").split()
    if not nodes:
        raise GanzooError("sinfo lists no Slurm nodes")
    check_shared(out, nodes, "Slurm")


def states(job_ids: list[str]) -> dict[str, str]:
    """squeue's state of each job still known to Slurm (finished jobs are forgotten after MinJobAge)."""
    if not job_ids:
        return {}
    found = {}
    for line in command("squeue", "-h", "-t", "all", "-o", "%i|%T").splitlines():
        job_id, _, state = line.strip().partition("|")
        found[job_id] = state.split()[0] if state else "UNKNOWN"
    return {job_id: found[job_id] for job_id in job_ids if job_id in found}


def executor(options: LaunchOptions, out: Path):  # noqa: ANN201 - submitit's SlurmExecutor
    submitit = need("slurm", "--launcher slurm")
    folder = out / "slurm"
    folder.mkdir(exist_ok=True)
    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=options.retries)
    ex.update_parameters(time=options.slurm_time, cpus_per_task=options.slurm_cpus, ntasks_per_node=1,
                         **({"partition": options.slurm_partition} if options.slurm_partition else {}),
                         **({"gpus_per_node": options.slurm_gpus} if options.slurm_gpus else {}),
                         **({"mem": options.slurm_mem} if options.slurm_mem else {}),
                         **({"additional_parameters": dict(options.slurm_opts)} if options.slurm_opts else {}))
    return ex


def slurm_log(out: Path, job_id: str) -> Path:
    return out / "slurm" / f"{job_id}_0_log.err"


class SlurmJob:
    """A task as submitit's job function: an error line fails the job (Slurm's state FAILED, the
    line at the end of Slurm's log); a warning of the time limit or of preemption (USR2) stops the
    run at a checkpoint and requeues the job, which resumes it (submitit's ``checkpoint``)."""

    def __init__(self, function: TaskFunction) -> None:
        self.function = function

    def __call__(self) -> str:
        error = self.function()
        if error:
            raise GanzooError(error)
        return ""

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        self.function.stop()
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def failure_line(out: Path, job_id: str) -> str:
    """The GanzooError a failed job raised, from the end of Slurm's log ("" when there is none)."""
    try:
        lines = slurm_log(out, job_id).read_text(errors="replace").splitlines()[-50:]
    except OSError:
        return ""
    found = [line.split("GanzooError:", 1)[1].strip() for line in lines if "GanzooError:" in line]
    return found[-1] if found else ""


def run_slurm(options: LaunchOptions, tasks: list[Task], out: Path, children: Children,
              tick: Callable[[str], None]) -> dict[str, str]:
    """Submit (or attach to) a job per task that is not done, and wait until none is in the queue."""
    state = read_state(out)
    recorded: dict[str, str] = dict(state.get("slurm", {}))
    to_do = [task for task in tasks if not task.done()]
    known = states([recorded[t.key] for t in to_do if t.key in recorded])
    attached = [t.key for t in to_do if known.get(recorded.get(t.key, ""), "") in ACTIVE]
    ex = None
    for task in to_do:
        if task.key in attached:
            continue
        ex = ex or executor(options, out)
        ex.update_parameters(job_name=f"ganzoo:{out.name}:{task.key}")
        try:
            job = ex.submit(SlurmJob(task.function))
        except Exception as exc:  # submitit's FailedJobError, sbatch's message
            raise GanzooError(f"sbatch refused the job of {task.key}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}") from None
        recorded[task.key] = str(job.job_id)
        state["slurm"] = recorded
        write_state(out, state)  # at once: a crash here must not submit it twice
    if attached:
        tick(f"attached to {len(attached)} job(s) in the queue")
    ids = {t.key: recorded[t.key] for t in to_do}
    last: dict[str, str] = {}
    try:
        while not children.stop.is_set():  # set by SIGTERM (compare's handler)
            last = states(list(ids.values()))
            counts = Counter(s.lower() for s in last.values() if s in ACTIVE)
            tick("slurm: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "all jobs ended"))
            if not counts:
                break
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        children.stop.set()
    if children.stop.is_set():
        return {}  # the jobs go on in Slurm; the caller says how to attach or cancel them
    errors = {}
    for task in to_do:
        if not task.done():
            job_id = ids[task.key]
            ended = last.get(job_id, "ended")
            why = failure_line(out, job_id) if ended != "CANCELLED" else ""  # a cancel's training "exited with 143"
            errors[task.key] = (f"Slurm job {job_id} {ended.lower()} before its run finished{': ' + why if why else ''} "
                                f"(log: {task.log}; Slurm's: {slurm_log(out, job_id)}); run the same command again to resubmit it")
    return errors


def in_queue(out: Path) -> list[str]:
    """The recorded jobs of OUT still in Slurm's queue (for the message after a Ctrl-C)."""
    recorded = read_state(out).get("slurm", {})
    active = [job_id for job_id, s in states(list(recorded.values())).items() if s in ACTIVE] if recorded else []
    return sorted(active, key=lambda j: (len(j), j))

