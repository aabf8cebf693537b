"""A run directory: config.toml, metrics.jsonl, samples/epoch-NNNN.png, checkpoint.safetensors."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from ganzoo.checkpoint import read_checkpoint
from ganzoo.errors import CheckpointError, GanzooError
from ganzoo.files import append_line, write_atomic

CHECKPOINT = "checkpoint.safetensors"
CONFIG = "config.toml"
METRICS = "metrics.jsonl"
SAMPLES = "samples"


def default_run_dir(strategy: str) -> Path:
    """runs/<strategy>-<timestamp>, with a -2, -3, ... suffix when that folder is taken."""
    base = Path("runs") / f"{strategy}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def check(run_dir: Path, *, resume: bool) -> Path:
    """Check run_dir can take a new run (or holds one to resume), creating nothing yet."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise GanzooError(f"run directory {run_dir} is a file")
    has_run = (run_dir / CHECKPOINT).exists()
    if resume and not has_run:
        raise GanzooError(f"nothing to resume: no {CHECKPOINT} in {run_dir}")
    if not resume and has_run:
        raise GanzooError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --out")
    if not resume and run_dir.is_dir() and any(run_dir.iterdir()):
        raise GanzooError(f"{run_dir} is not empty (files of a run that saved no checkpoint?); remove it or choose another --out")
    return run_dir


def create(run_dir: Path) -> Path:
    """Create run_dir and its samples folder; fail clearly when that is impossible."""
    try:
        (run_dir / SAMPLES).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanzooError(f"cannot create run directory {run_dir}: {exc.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise GanzooError(f"run directory {run_dir} is not writable")
    return run_dir


def write_config(run_dir: Path, settings: dict[str, Any], meta: dict[str, Any]) -> None:
    """Every setting, defaults included, under [train]; provenance under [meta]."""
    document = {"train": settings, "meta": {k: v for k, v in meta.items() if v is not None}}
    write_atomic(run_dir / CONFIG, tomli_w.dumps(document).encode())


def json_safe(value: Any) -> Any:
    """value with NaN and infinities replaced by None, so that it is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    append_line(run_dir / METRICS, json.dumps(json_safe(record), allow_nan=False))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of metrics.jsonl; a torn line (a crash mid-append) is skipped."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def trim_metrics(run_dir: Path, max_step: int) -> None:
    """Keep only the well-formed records up to max_step (what the checkpoint has seen)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return
    kept = [r for r in read_metrics(run_dir) if isinstance(r.get("step"), int) and r["step"] <= max_step]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    if text != path.read_text(encoding="utf-8", errors="replace"):
        write_atomic(path, text.encode())


def keep_copy(run_dir: Path, step: int, data: bytes, keep: int) -> None:
    """Also write the checkpoint as checkpoints/step-NNNNNNNN.safetensors; keep the newest `keep`."""
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(exist_ok=True)
    write_atomic(folder / f"step-{step:08d}.safetensors", data)
    for old in sorted(folder.glob("step-*.safetensors"))[:-keep]:
        old.unlink()


def remove_stale_temp_files(run_dir: Path) -> None:
    """Delete the temp files of atomic writes (".NAME.XXXX.tmp") that a killed process left behind."""
    for folder in (Path(run_dir), Path(run_dir) / SAMPLES, Path(run_dir) / "checkpoints"):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            tmp.unlink(missing_ok=True)


class RunLock:
    """An exclusive lock on a run directory, held while a process trains in it.

    fcntl.flock on run_dir/.lock: the kernel drops it when the holder dies, so a lock left by a
    killed process is simply taken over; the file holds the holder's pid for the error message.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._file = None

    def __enter__(self) -> RunLock:
        import fcntl

        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise GanzooError(f"{self.path.parent} is in use by a training run (pid {holder}); wait for it or choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


def read_meta(run_dir: Path) -> dict[str, Any]:
    """The [meta] table of run_dir's config.toml, or {} when there is none (or it is unreadable)."""
    try:
        return tomllib.loads((Path(run_dir) / CONFIG).read_text(encoding="utf-8")).get("meta", {})
    except (OSError, ValueError):
        return {}


def checkpoint_step(run_dir: Path) -> int | None:
    """The step of run_dir's checkpoint, or None when it has none that reads."""
    try:
        return int(read_checkpoint(Path(run_dir) / CHECKPOINT)[1]["step"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return None


def sample_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / SAMPLES / f"epoch-{epoch:04d}.png"
