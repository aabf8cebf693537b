"""Checking a checkpoint against the run that will load it, before anything is loaded: every
tensor's name, shape and dtype, the counters and optimizer settings of the manifest, the random
number generator states, and that weights are finite. Each problem is one CheckpointError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ganzoo.core.errors import CheckpointError

Spec = tuple[tuple[int, ...], torch.dtype]
TRAINER_PREFIXES = ("discriminator", "generator", "optimizer", "rng", "sample_z", "metrics")  # first name components
STATE_BYTES = {"cpu": 5056, "cuda": 16}  # a torch.Generator's get_state(): mt19937 on the CPU, Philox seed+offset on CUDA
MAX_COUNTER = 1 << 48  # steps, epochs: far above any run, low enough for every seed arithmetic


@dataclass(frozen=True)
class StateSpec:
    """What a run's checkpoint must hold: required tensors, and groups that are all there or all absent
    (one parameter's Adam state exists only once that parameter has had a step)."""

    required: dict[str, Spec]
    all_or_none: list[dict[str, Spec]] = field(default_factory=list)
    free: tuple[str, ...] = ("rng.z", "rng.cuda")  # checked by check_z_state and when CUDA is used
    by_prefix: dict[str, Spec] = field(default_factory=dict)  # any number of names under a prefix, each of this spec


def _spec(tensor: Tensor) -> Spec:
    return tuple(tensor.shape), tensor.dtype


def check_state(tensors: dict[str, Tensor], spec: StateSpec, where: str = "checkpoint") -> None:
    """Refuse tensors (real or on the meta device) that do not fit spec: a missing or unexpected
    name, a wrong shape or dtype. Names outside the trainer's prefixes belong to plugins and pass."""

    def fits(name: str, want: Spec) -> None:
        have = _spec(tensors[name])
        if have != want:
            raise CheckpointError(f"{where}: tensor {name!r} is {_words(have)}; this run needs {_words(want)}")

    for name, want in spec.required.items():
        if name not in tensors:
            raise CheckpointError(f"{where}: tensor {name!r} is missing")
        fits(name, want)
    known = set(spec.required) | set(spec.free)
    for group in spec.all_or_none:
        present = [name for name in group if name in tensors]
        if present and len(present) != len(group):
            missing = sorted(set(group) - set(present))[0]
            raise CheckpointError(f"{where}: tensor {missing!r} is missing")
        for name in present:
            fits(name, group[name])
        known.update(group)
    for prefix, want in spec.by_prefix.items():
        for name in tensors:
            if name.startswith(prefix):
                fits(name, want)
                known.add(name)
    unexpected = sorted(n for n in tensors if n.split(".")[0] in TRAINER_PREFIXES and n not in known)
    if unexpected:
        raise CheckpointError(f"{where}: tensor {unexpected[0]!r} is not part of this run's state")
    if "rng.cuda" in tensors:
        have = tensors["rng.cuda"]
        if have.dtype != torch.uint8 or have.dim() != 2 or have.shape[1] != STATE_BYTES["cuda"]:
            raise CheckpointError(f"{where}: tensor 'rng.cuda' is {_words(_spec(have))}, not CUDA generator states")
    if tensors["rng.torch"].device.type != "meta":
        _settable(tensors["rng.torch"], torch.Generator(), "rng.torch", where)


def _words(spec: Spec) -> str:
    shape, dtype = spec
    return f"{str(dtype).removeprefix('torch.')} of shape {tuple(shape)}"


def _settable(state: Tensor, generator: torch.Generator, name: str, where: str) -> None:
    try:
        generator.set_state(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: tensor {name!r} is not a valid random number generator state ({exc})") from None


def check_z_state(saved: Tensor, generator: torch.Generator, where: str = "checkpoint") -> bool:
    """Whether the saved z-stream state continues exactly on ``generator``'s device.

    True: it does. False: it is a state of the other kind of device (CPU and CUDA generator
    states differ), so the caller must restart the z stream from (seed, step), say so on screen and
    record that the resume is not exact. Anything else (a truncated or corrupted state) raises.
    """
    if saved.dtype != torch.uint8 or saved.dim() != 1:
        raise CheckpointError(f"{where}: tensor 'rng.z' is {_words(_spec(saved))}, not a generator state")
    here = generator.device.type
    other = "cuda" if here == "cpu" else "cpu"
    if saved.numel() == STATE_BYTES.get(other) and saved.numel() != generator.get_state().numel():
        return False
    if saved.numel() != generator.get_state().numel():
        raise CheckpointError(f"{where}: tensor 'rng.z' has {saved.numel()} bytes; a {here} z-stream state has "
                              f"{generator.get_state().numel()}, so the run cannot resume exactly")
    if saved.device.type != "meta":
        _settable(saved, torch.Generator(generator.device), "rng.z", where)
    return True


def first_non_finite(tensors: dict[str, Tensor]) -> str | None:
    """The name of a floating-point tensor holding NaN or infinity, or None: one host sync per device
    the tensors are on (a run's state spans devices: Adam's step counts stay on the CPU)."""
    floats = [(name, t.detach()) for name, t in tensors.items() if isinstance(t, Tensor) and t.is_floating_point()]
    for device in dict.fromkeys(t.device for _, t in floats):
        group = [(name, t) for name, t in floats if t.device == device]
        for (name, _), finite in zip(group, torch.stack([t.isfinite().all() for _, t in group]).tolist(), strict=True):
            if not finite:
                return name
    return None


def check_finite(tensors: dict[str, Tensor], prefixes: tuple[str, ...], where: str = "checkpoint") -> None:
    """Refuse NaN or infinite values in the floating-point tensors whose names start with a prefix."""
    bad = first_non_finite({name: t for name, t in tensors.items() if name.startswith(prefixes)})
    if bad is not None:
        raise CheckpointError(f"{where}: tensor {bad!r} holds NaN or infinite values")


def check_manifest_counters(manifest: dict[str, Any], where: str = "checkpoint") -> None:
    """Refuse counters and Python RNG state a run cannot continue from (a negative step, a float epoch,
    an impossible ``python_rng``), before any of them is used (a step < 0 would empty metrics.jsonl)."""
    for key in ("step", "epoch", "metric_count", *(["rollbacks"] if "rollbacks" in manifest else [])):
        value = manifest.get(key)
        if type(value) is not int or not 0 <= value < MAX_COUNTER:
            raise CheckpointError(f"{where}: the manifest's {key!r} is {value!r}; it must be an integer in [0, 2**48)")
    horizon = manifest.get("lr_schedule_steps", 1)
    if type(horizon) is not int or not 1 <= horizon < MAX_COUNTER:
        raise CheckpointError(f"{where}: the manifest's 'lr_schedule_steps' is {horizon!r}; it must be an integer in [1, 2**48)")
    seconds = manifest.get("train_seconds", 0.0)
    if type(seconds) not in (int, float) or not (math.isfinite(seconds) and seconds >= 0):
        raise CheckpointError(f"{where}: the manifest's 'train_seconds' is {seconds!r}, not a number of seconds")
    chance = manifest.get("chance")
    if type(chance) not in (int, float) or not math.isfinite(chance):
        raise CheckpointError(f"{where}: the manifest's 'chance' is {chance!r}, not a finite number")
    rng = manifest.get("python_rng")
    ok = (isinstance(rng, list) and len(rng) == 3 and rng[0] == 3 and isinstance(rng[1], list) and len(rng[1]) == 625
          and all(type(x) is int and 0 <= x < 2**32 for x in rng[1]) and rng[1][-1] <= 624
          and (rng[2] is None or type(rng[2]) is float))
    if not ok:
        raise CheckpointError(f"{where}: the manifest's 'python_rng' is not a state of Python's random module")


def check_optimizer_groups(saved: Any, optimizer: torch.optim.Optimizer, name: str, where: str = "checkpoint") -> None:
    """Refuse saved param groups that differ from the live optimizer's: the same settings (the run's
    own, rebuilt from its config) but the learning rate, which the schedule and rollbacks set and
    which must be a positive finite number."""
    live = optimizer.state_dict()["param_groups"]
    if not isinstance(saved, list) or len(saved) != len(live):
        raise CheckpointError(f"{where}: the optimizer settings of {name} do not fit this run")
    for mine, theirs in zip(live, saved):
        if not isinstance(theirs, dict) or set(theirs) != set(mine) or theirs["params"] != mine["params"]:
            raise CheckpointError(f"{where}: the optimizer settings of {name} do not fit this run")
        for key, value in mine.items():
            if key != "lr" and not _same(value, theirs[key]):
                raise CheckpointError(f"{where}: the optimizer setting {key!r} of {name} is {theirs[key]!r}; this run has {value!r}")
        lr = theirs["lr"]
        if type(lr) not in (int, float) or not (0 < lr <= 1 and math.isfinite(lr)):
            raise CheckpointError(f"{where}: the learning rate of {name} is {lr!r}; it must be a positive number at most 1")


def _same(mine: Any, theirs: Any) -> bool:
    """Whether a saved optimizer setting equals the live one (JSON turned tuples into lists)."""
    if isinstance(mine, tuple | list):
        return isinstance(theirs, list) and len(theirs) == len(mine) and all(_same(a, b) for a, b in zip(mine, theirs))
    if isinstance(mine, bool) or mine is None or isinstance(mine, str):
        return type(theirs) is type(mine) and theirs == mine
    if isinstance(mine, int | float):
        return type(theirs) in (int, float) and theirs == mine
    return type(theirs) is type(mine) and theirs == mine
