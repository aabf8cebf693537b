"""A run directory: config.toml, metrics.jsonl, samples/epoch-NNNN.png, checkpoint.safetensors."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomli_w

from ganzoo.core.errors import GanzooError
from ganzoo.core.files import append_line, json_safe, write_atomic
from ganzoo.core.safe_read import MAX_METRICS_BYTES, kind_of, loads_json, open_regular, read_text
from ganzoo.core.schema import check as check_fields
from ganzoo.core.tensorfile import read_manifest
from ganzoo.runs.checkpoint import CHECKPOINT
from ganzoo.runs.schemas import METRICS_RECORD

CONFIG = "config.toml"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
LOCK = ".lock"
RUN_FILES = {LOCK: stat.S_ISREG, METRICS: stat.S_ISREG, CONFIG: stat.S_ISREG, CHECKPOINT: stat.S_ISREG,
             SAMPLES: stat.S_ISDIR, "checkpoints": stat.S_ISDIR}  # what ganzoo writes in a run directory


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
    try:
        if run_dir.exists() and not run_dir.is_dir():
            raise GanzooError(f"run directory {run_dir} is a file")
        check_run_files(run_dir)
        has_run = (run_dir / CHECKPOINT).exists()
    except OSError as exc:  # a name too long, a folder we may not enter
        raise GanzooError(f"cannot use {run_dir} as a run directory: {exc.strerror or exc}") from None
    if resume and not has_run:
        raise GanzooError(f"nothing to resume: no {CHECKPOINT} in {run_dir}")
    if not resume and has_run:
        raise GanzooError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --out")
    if not resume and run_dir.is_dir() and any(run_dir.iterdir()):
        raise GanzooError(f"{run_dir} is not empty (files of a run that saved no checkpoint?); remove it or choose another --out")
    return run_dir


def check_run_files(run_dir: Path) -> None:
    """Refuse a run directory where a file ganzoo writes is a symbolic link (writes would go to its
    target) or of the wrong type (a folder, a FIFO, a device where a file belongs)."""
    for name, wanted in RUN_FILES.items():
        try:
            mode = os.lstat(Path(run_dir) / name).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISLNK(mode):
            raise GanzooError(f"{Path(run_dir) / name} is a symbolic link; ganzoo does not follow links in a run directory (remove it)")
        if not wanted(mode):
            raise GanzooError(f"{Path(run_dir) / name} is a {kind_of(mode)}; remove it or choose another run directory")


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


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    append_line(run_dir / METRICS, json.dumps(json_safe(record), allow_nan=False))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of metrics.jsonl (``iter_metrics``)."""
    return list(iter_metrics(run_dir))


def iter_metrics(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The records of metrics.jsonl one at a time, read line by line (memory bounded by the longest
    line, not by the file: ``ganzoo report`` keeps only part of each); a torn line (a crash
    mid-append) is skipped, a record whose fields are not what ganzoo writes
    (``ganzoo.runs.schemas.METRICS_RECORD``) is refused in one line naming the line."""
    path = Path(run_dir) / METRICS
    if not os.path.lexists(path):
        return
    fd = open_regular(path, "metrics file", follow=False)
    with os.fdopen(fd, "rb") as file:
        left = os.fstat(fd).st_size  # what read_text would read: lines appended meanwhile wait for the next report
        if left > MAX_METRICS_BYTES:
            raise GanzooError(f"metrics file {path} is {left:,} bytes; ganzoo reads at most {MAX_METRICS_BYTES:,}")
        number = 0
        while left > 0:
            try:
                raw = file.readline(left)
            except OSError as exc:
                raise GanzooError(f"cannot read metrics file {path}: {exc.strerror or exc}") from None
            if not raw:
                break
            left -= len(raw)
            for line in raw.decode("utf-8", errors="replace").splitlines():  # "\r" and the like end a line, as in _records
                number += 1
                try:
                    record = loads_json(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield check_fields(record, METRICS_RECORD, f"{path} line {number}")


def epoch_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of whole epochs, and the run's last record when the run ended inside an epoch (a
    --steps or --minutes budget); not the records of evaluations made inside an epoch."""
    records = read_metrics(run_dir) if Path(run_dir).exists() else []
    whole = [r for r in records if not r.get("partial")]
    if records and records[-1].get("partial"):
        whole.append(records[-1])
    return whole


def _metrics_text(run_dir: Path) -> str:
    path = Path(run_dir) / METRICS
    if not os.path.lexists(path):
        return ""
    return read_text(path, "metrics file", MAX_METRICS_BYTES, follow=False)


def trim_metrics(run_dir: Path, max_step: int) -> None:
    """Keep only the well-formed records up to max_step (what the checkpoint has seen)."""
    if max_step < 0:
        raise GanzooError(f"cannot trim {Path(run_dir) / METRICS} to step {max_step}")
    path = Path(run_dir) / METRICS
    old = _metrics_text(run_dir)
    kept = [r for r in iter_metrics(run_dir) if isinstance(r.get("step"), int) and r["step"] <= max_step]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    if text != old:
        write_atomic(path, text.encode())


def keep_copy(run_dir: Path, step: int, data: bytes, keep: int) -> None:
    """Also write the checkpoint as checkpoints/step-NNNNNNNN.safetensors; keep the newest `keep`."""
    folder = Path(run_dir) / "checkpoints"
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise GanzooError(f"cannot create {folder}: {exc.strerror or exc}") from None
    if folder.is_symlink() or not folder.is_dir():
        raise GanzooError(f"{folder} is not a folder ganzoo made; remove it")
    write_atomic(folder / f"step-{step:08d}.safetensors", data)
    for old in sorted(folder.glob("step-*.safetensors"))[:-keep]:
        try:
            old.unlink()
        except OSError as exc:
            raise GanzooError(f"cannot remove {old}: {exc.strerror or exc}") from None


def remove_stale_temp_files(run_dir: Path) -> None:
    """Delete the temp files of atomic writes (".NAME.XXXX.tmp") that a killed process left behind."""
    for folder in (Path(run_dir), Path(run_dir) / SAMPLES, Path(run_dir) / "checkpoints"):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() and not folder.is_symlink() else ():
            if tmp.is_dir() and not tmp.is_symlink():
                raise GanzooError(f"{tmp} is a folder named like a temp file of ganzoo's; remove it")
            try:
                tmp.unlink(missing_ok=True)  # a symlink is removed, never its target
            except OSError as exc:
                raise GanzooError(f"cannot remove the stale temp file {tmp}: {exc.strerror or exc}") from None


class RunLock:
    """An exclusive lock on a run directory, held while a process trains in it.

    fcntl.flock on run_dir/.lock: the kernel drops it when the holder dies, so a lock left by a
    killed process is simply taken over; the file holds the holder's pid for the error message.
    Opened with O_NOFOLLOW: a symlink planted as .lock is refused, its target never written.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self._fd = -1

    def __enter__(self) -> RunLock:
        import fcntl

        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            if os.path.islink(self.path):
                raise GanzooError(f"{self.path} is a symbolic link; ganzoo does not follow links in a run directory (remove it)") from None
            raise GanzooError(f"cannot create the lock file {self.path}: {exc.strerror or exc}") from None
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise GanzooError(f"{self.path} is a {kind_of(mode)}, not a lock file; remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip() or "another process"
                raise GanzooError(f"{self.path.parent} is in use by a training run (pid {holder}); wait for it or choose another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise GanzooError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing releases the flock
            self._fd = -1


def read_meta(run_dir: Path, table: str = "meta") -> dict[str, Any]:
    """The [meta] table (or [train]) of run_dir's config.toml, or {} when there is none or it does
    not parse (a config.toml that is a link, a FIFO or a device is a GanzooError)."""
    path = Path(run_dir) / CONFIG
    if not os.path.lexists(path):
        return {}
    text = read_text(path, "config file", follow=False)
    try:
        meta = tomllib.loads(text).get(table, {})
    except (ValueError, RecursionError):
        return {}
    return meta if isinstance(meta, dict) else {}


def checkpoint_step(run_dir: Path) -> int | None:
    """The step of run_dir's checkpoint, or None when it has none that reads."""
    try:
        step = read_manifest(Path(run_dir) / CHECKPOINT).get("step")
    except GanzooError:
        return None
    return step if type(step) is int and step >= 0 else None


def sample_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / SAMPLES / f"epoch-{epoch:04d}.png"
