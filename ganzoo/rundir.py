"""A run directory: config.toml, metrics.jsonl, samples/epoch-NNNN.png, checkpoint.safetensors."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import tomli_w

from ganzoo.errors import GanzooError
from ganzoo.files import append_line, write_atomic

CHECKPOINT = "checkpoint.safetensors"
CONFIG = "config.toml"
METRICS = "metrics.jsonl"
SAMPLES = "samples"


def default_run_dir(strategy: str) -> Path:
    return Path("runs") / f"{strategy}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


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


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    append_line(run_dir / METRICS, json.dumps(record))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def sample_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / SAMPLES / f"epoch-{epoch:04d}.png"
