"""What a tune is set to: its budget per trial, its metric and direction, and OUT/tune.json, the
record that makes a rerun of the same command continue the same study."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from ganzoo.core.errors import GanzooError
from ganzoo.core.files import write_atomic

STATE = "tune.json"
STUDY = "ganzoo-tune"  # the study's name in its storage
# Metrics of ``ganzoo eval`` and whether lower is better; any other numeric key needs --direction.
DIRECTIONS = {"fid": "minimize", "kid": "minimize", "class_kl": "minimize", "precision": "maximize", "recall": "maximize",
              "density": "maximize", "coverage": "maximize", "classes": "maximize", "inception_score": "maximize",
              "class_consistency": "maximize", "intra_class_fid_mean": "minimize", "intra_class_fid_worst": "minimize"}
EVALUATIONS = 4  # in-training evaluations per trial when --eval-every is not given: what the pruner sees


def parse_budget(text: str) -> dict[str, Any]:
    """``2m``, ``90s``, ``500steps``, ``3epochs`` -> the budget keys of a job's settings."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|steps?|epochs?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise GanzooError(f"--budget must be minutes (2m), seconds (90s), steps (500steps) or epochs (3epochs), got {text!r}")
    amount, unit = float(match.group(1)), match.group(2)
    if unit in ("s", "m", "min"):
        return {"epochs": 0, "minutes": amount / 60 if unit == "s" else amount, "steps": None}
    if amount != int(amount):
        raise GanzooError(f"--budget {text}: {unit} must be a whole number")
    if unit.startswith("step"):
        return {"epochs": 0, "minutes": None, "steps": int(amount)}
    return {"epochs": int(amount), "minutes": None, "steps": None}


def default_eval_every(budget: dict[str, Any]) -> str:
    """Evaluations spread over the budget (``EVALUATIONS`` of them), for the pruner to compare trials at."""
    if budget["minutes"]:
        return f"{max(1, round(budget['minutes'] * 60 / EVALUATIONS))}s"
    if budget["steps"]:
        return f"{max(1, budget['steps'] // EVALUATIONS)}steps"
    return "1"  # every epoch


def direction_of(metric: str, direction: str | None) -> str:
    if direction:
        return direction
    if metric not in DIRECTIONS:
        raise GanzooError(f"--metric {metric}: say whether to --direction minimize or maximize it "
                          f"(known: {', '.join(sorted(DIRECTIONS))})")
    return DIRECTIONS[metric]


def read_state(out: Path) -> dict[str, Any] | None:
    path = out / STATE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise GanzooError(f"cannot read {path}: {exc}") from None
    if not isinstance(state, dict) or not isinstance(state.get("settings"), dict) or type(state.get("target")) is not int:
        raise GanzooError(f"{path} is not the record of a ganzoo tune; use another --out")
    return state


def write_state(out: Path, settings: dict[str, Any], target: int, command: list[str]) -> None:
    document = {"settings": settings, "target": target, "command": shlex.join(command)}
    write_atomic(out / STATE, (json.dumps(document, indent=1) + "\n").encode())


def storage_url(out: Path, storage: str | None) -> str:
    """--storage, or an SQLite file in the output folder (resolved where it is used, so that the
    folder may be moved: tune.json keeps None)."""
    return storage or f"sqlite:///{(out / 'study.db').resolve()}"
