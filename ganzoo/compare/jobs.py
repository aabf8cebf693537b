"""What ``ganzoo compare`` runs: configurations (specs) times seeds, each a job that trains one run
folder (in chunks with ``--until-converged``) and then evaluates it, and how far each job is.

A job is described by the command lines it runs (``ganzoo train ...``, ``ganzoo eval ...``), so
that where it runs cannot change what it computes; ``ganzoo.compare.local`` runs them here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo.core.errors import GanzooError
from ganzoo.core.safe_read import kind_of
from ganzoo.runs import rundir
from ganzoo.runs.schemas import read_compare_state, read_eval

STATE = "compare.json"
# Options compare sets itself for every run; a spec may not set them.
OWNED = {"--seed", "--epochs", "--steps", "--minutes", "--out", "--resume", "--dataset", "--eval-every", "--eval-n",
         "--eval-features", "--limit-data", "--quiet", "--json", "--config", "--resolution", "--channels"}


@dataclass(frozen=True)
class Spec:
    label: str
    strategy: str
    args: tuple[str, ...]
    text: str


def parse_spec(text: str, who: str = "compare") -> Spec:
    """``"psg --n-gens 2"`` or ``"label=psg --n-gens 2"`` (``who``: the command that sets OWNED, for its message)."""
    label, _, rest = text.partition("=") if re.match(r"^[\w.-]+=", text) else ("", "", text)
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise GanzooError(f"cannot read configuration {text!r}: {exc}") from None
    if not words:
        raise GanzooError(f"empty configuration {text!r}; give a strategy and its options, e.g. \"psg --n-gens 2\"")
    label = label or re.sub(r"[^\w.]+", "-", " ".join(words).replace("--", "")).strip("-")
    owned = sorted({a.split("=")[0] for a in words[1:] if a.split("=")[0] in OWNED})
    if owned:
        budget = " (the budget is --budget)" if who == "tune" and {"--epochs", "--steps", "--minutes"} & set(owned) else ""
        raise GanzooError(f"configuration {text!r} sets {', '.join(owned)}, which {who} sets for every "
                          f"{'trial' if who == 'tune' else 'run'}; give it to {who} instead{budget}")
    return Spec(label, words[0], tuple(words[1:]), text)


@dataclass(frozen=True)
class Job:
    spec: Spec
    seed: int
    run_dir: Path


def jobs_of(specs: list[Spec], seeds: int, out: Path) -> list[Job]:
    """Every (configuration, seed), seed by seed, each in OUT/runs/<label>/seed-<s>."""
    return [Job(s, seed, out / "runs" / s.label / f"seed-{seed}") for seed in range(seeds) for s in specs]


def log_path(job: Job, log_dir: Path) -> Path:
    return log_dir / f"{job.spec.label}-seed-{job.seed}.log"


def check_folder(out: Path, jobs: list[Job]) -> None:
    """Refuse a comparison folder in which a file or folder compare writes is a symbolic link (the
    writes would go to its target) or of the wrong kind (a FIFO where a log belongs), before any
    job starts: compare writes only inside OUT, like train inside its run folder."""
    folders = [out / "logs", out / "runs", *dict.fromkeys(job.run_dir.parent for job in jobs)]
    files = [out / STATE, *(log_path(job, out / "logs") for job in jobs)]
    for path, wanted, kind in [*((p, stat.S_ISDIR, "folder") for p in folders), *((p, stat.S_ISREG, "file") for p in files)]:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise GanzooError(f"cannot use {path}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(mode):
            raise GanzooError(f"{path} is a symbolic link; ganzoo does not follow links in a comparison folder (remove it)")
        if not wanted(mode):
            raise GanzooError(f"{path} is a {kind_of(mode)}, not a {kind}; remove it or use another --out")


def train_argv(job: Job, settings: dict[str, Any], resume: bool) -> list[str]:
    argv = [sys.executable, "-m", "ganzoo", "train", job.spec.strategy]
    budget = [*(["--epochs", str(settings["epochs"])] if settings["epochs"] else []),
              *(["--minutes", str(settings["minutes"])] if settings.get("minutes") else []),
              *(["--steps", str(settings["steps"])] if settings.get("steps") else [])]  # ganzoo tune's budgets
    evaluation = ["--eval-every", str(settings["eval_every"]), "--eval-n", str(settings["eval_n"]), "--eval-features", settings["features"]]
    if resume:
        return argv + ["--resume", str(job.run_dir), *budget, "--quiet", *evaluation]
    argv += [*job.spec.args, "--seed", str(job.seed), *budget, "--dataset", settings["dataset"], *evaluation,
             "--out", str(job.run_dir), "--quiet"]
    if settings["limit_data"]:
        argv += ["--limit-data", str(settings["limit_data"])]
    for key in ("resolution", "channels"):  # folder datasets (absent from comparisons made before 0.6)
        if settings.get(key):
            argv += [f"--{key}", str(settings[key])]
    return argv


def eval_argv(job: Job, settings: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "ganzoo", "eval", str(job.run_dir), "--n", str(settings["final_n"]),
            "--features", settings["features"], "--json"]


def finished_epochs(run_dir: Path) -> int:
    return max((r["epoch"] for r in rundir.read_metrics(run_dir) if not r.get("partial")), default=0) if run_dir.exists() else 0


def trained_minutes(run_dir: Path) -> float:
    records = rundir.read_metrics(run_dir) if run_dir.exists() else []
    return max((r.get("train_seconds", 0.0) for r in records), default=0.0) / 60


def converged(run_dir: Path) -> bool:
    """Whether the run has reached its FID plateau (ganzoo.evaluation.convergence), confirmed."""
    from ganzoo.evaluation.convergence import fid_plateau

    return run_dir.exists() and fid_plateau([r["fid"] for r in rundir.epoch_records(run_dir) if "fid" in r]) is not None


def finished(run_dir: Path, settings: dict[str, Any]) -> bool:
    """Whether a run has trained its budget: its epochs, its minutes of training time, or its steps;
    with --until-converged, also a run that has converged."""
    epochs, minutes, steps = settings["epochs"], settings.get("minutes"), settings.get("steps")
    return (bool(epochs and finished_epochs(run_dir) >= epochs) or bool(minutes and trained_minutes(run_dir) >= minutes)
            or bool(steps and (rundir.checkpoint_step(run_dir) or 0) >= steps)
            or bool(settings.get("until_converged") and converged(run_dir)))


def evaluated(job: Job, settings: dict[str, Any]) -> bool:
    """Whether the run's final evaluation is there and of its checkpoint (a run kept without its
    checkpoint, as in docs/results/, keeps its evaluation: there is nothing to redo it from)."""
    path = job.run_dir / f"eval-{settings['features']}.json"
    if not path.exists():
        return False
    step = rundir.checkpoint_step(job.run_dir)
    try:
        saved = read_eval(path)["protocol"].get("step")
    except GanzooError:
        return False  # evaluated again, and the file replaced
    return step in (None, saved)



def read_state(out: Path) -> dict[str, Any] | None:
    """The settings of the comparison in OUT (its compare.json), or None when there is none."""
    path = out / STATE
    if not path.exists() and not path.is_symlink():
        return None
    settings = dict(read_compare_state(path)["settings"])
    settings["eval_every"] = str(settings.get("eval_every"))  # an int before 0.4: the same interval in epochs
    return settings


def state_document(settings: dict[str, Any], command: list[str]) -> bytes:
    return (json.dumps({"settings": settings, "command": shlex.join(command)}, indent=1) + "\n").encode()
