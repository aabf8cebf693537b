"""The settings of one training run, where they come from, and how they are checked.

Precedence, lowest first: TrainConfig defaults < the strategy's defaults < ``--config FILE.toml``
< options given on the command line.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from ganzoo.core.errors import GanzooError, shown, suggest

AMP_CHOICES = ("auto", "bf16", "off")  # --amp: ganzoo.training.precision.resolve_amp
VMAP_CHOICES = ("auto", "on", "off")  # --vmap: ganzoo.training.generator_bank.use_vmap
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")  # --optimizer: ganzoo.training.optimizers
LR_SCHEDULES = ("constant", "linear", "cosine")  # --lr-schedule: ganzoo.training.optimizers.lr_factor
EVAL_FEATURES = "lenet"  # the feature extractor of evaluations unless one is named (--eval-features, ganzoo eval --features)


@dataclass(frozen=True)
class TrainConfig:
    strategy: str
    policy: str = "binary"
    aggregation: str = "mean"
    n_gens: int = 1
    shared_z: bool = True
    spectral_norm: bool = False
    n_dis: int = 1
    arch: str = ""  # empty: the dataset's default architecture
    z_dim: int = 100
    dataset: str = "mnist"
    data_root: str = ""  # empty: $GANZOO_DATA or ~/.cache/ganzoo
    limit_data: int = 0  # 0: all images
    resolution: int = 0  # folder datasets: the images' side in pixels (0: as stored, when all share one size)
    channels: int = 0  # folder datasets: 1 (grey) or 3 (RGB); 0: from the data
    conditional: bool = False  # class-conditional: the generators are asked for classes, D sees them (the data's labels)
    batch_size: int = 64
    lr: float = 2e-4
    lr_d: float = 0.0  # D's learning rate; 0: the same as lr (a ratio other than 1 is TTUR, Heusel et al. 2017)
    beta1: float = 0.5
    beta2: float = 0.999
    optimizer: str = "adam"  # the generators' optimizer (and D's unless optimizer_d is given)
    optimizer_d: str = ""  # D's optimizer; empty: the same as optimizer
    momentum: float = 0.0  # SGD's and RMSprop's momentum
    weight_decay: float = 0.0  # L2 penalty (Adam, RMSprop, SGD) or decoupled decay (AdamW)
    lr_schedule: str = "constant"  # the learning rate over the run: constant, or linear or cosine decay to 0
    epochs: int = 1  # 0 (only with minutes): no epoch limit
    steps: int = 0  # 0: run whole epochs; >0: stop after this many generator steps
    minutes: float = 0.0  # >0: also stop at the first logging point after this many minutes of training time
    seed: int = 0
    device: str = "auto"
    log_every: int = 20
    sample_count: int = 64  # fixed-z samples per generator in samples/epoch-NNNN.png
    checkpoint_every: int = 0  # 0: at epoch ends only; K: also every K generator steps
    keep_last: int = 1  # >1: also keep the M newest checkpoints as checkpoints/step-NNNNNNNN.safetensors
    on_nan: str = "stop"  # a non-finite loss or weight: "stop", or "rollback" to the last checkpoint
    deterministic: bool = False  # torch.use_deterministic_algorithms(True) for bit-exact repeats
    eval_every: int = 0  # K > 0: evaluate every K epochs (ganzoo eval's metrics) into metrics.jsonl
    eval_every_steps: int = 0  # K > 0: evaluate every K generator steps instead
    eval_every_seconds: float = 0.0  # S > 0: evaluate every S seconds of training time instead (at logging points)
    eval_n: int = 2000  # samples per evaluation during training
    eval_n_real: int = 10_000  # real images those evaluations compare with (evenly spaced through the split); 0: all
    eval_features: str = ""  # the feature extractor of those evaluations; empty: the dataset's (lenet; inception for folders)
    amp: str = "auto"  # bf16 autocast: "bf16", "off", or "auto" (on where the hardware has native bf16)
    vmap: str = "auto"  # the N generators as one vmapped call: "on", "off", or "auto" (on for CUDA)
    compile: bool = False  # torch.compile the networks (measured slower on CPU; see docs/performance.md)
    channels_last: bool = False  # channels-last memory format for the networks
    options: dict[str, Any] = field(default_factory=dict)  # the parts' options (ganzoo.core.options), by key

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def evaluates(self) -> bool:
        """Whether the run evaluates while it trains (``--eval-every`` in epochs, steps or time)."""
        return bool(self.eval_every or self.eval_every_steps or self.eval_every_seconds)

    @property
    def loss(self) -> str:
        """Plugin API 0.2's ``config.loss``, until 0.7 (ganzoo.core.compat lists it): the binary policies' option."""
        return str(self.options.get("loss", "bce"))


FIELD_TYPES: dict[str, type] = {
    name: hint for name, hint in get_type_hints(TrainConfig).items()
}


def check_type(key: str, value: Any) -> Any:
    want = FIELD_TYPES[key]
    origin = getattr(want, "__origin__", want)
    if origin is dict:
        if not isinstance(value, dict):
            raise GanzooError(f"config key {key!r} must be a table, got {type(value).__name__}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise GanzooError(f"config key {key!r} may hold only strings, numbers, booleans, lists and tables") from None
        return dict(value)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if want is int and isinstance(value, bool) or not isinstance(value, want):
        raise GanzooError(f"config key {key!r} must be {want.__name__}, got {type(value).__name__} {value!r}")
    return value


MAX_STEPS = MAX_EPOCHS = (1 << 48) - 1  # counters: far above any run (ganzoo.runs.state_check.MAX_COUNTER)
MAX_SECONDS = 1e9  # 31 years
EVAL_EVERY_FIELDS = ("eval_every", "eval_every_steps", "eval_every_seconds")
INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(epochs?|steps?|s|sec|seconds?|m|min|minutes?|)\s*$")


def parse_interval(text: str | int) -> dict[str, Any]:
    """``--eval-every``: "K" or "Kepochs" (every K epochs), "Ksteps", "Ks" or "Km" (of training time)
    -> the three eval_every fields, the unused ones 0."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    match = INTERVAL.match(text) if isinstance(text, str) else None
    if not match:
        raise GanzooError(f"eval-every must be K (epochs), Ksteps, Ks or Km (training time), e.g. 2, 500steps, 60s; got {text!r}")
    number, unit = match.group(1), match.group(2)
    if len(number) > 20:  # float() of 400 nines is inf, and int(inf) an OverflowError
        raise GanzooError(f"eval-every {shown(text, 40)} is not a number ganzoo can use (at most 20 digits)")
    amount = float(number)
    fields: dict[str, Any] = {"eval_every": 0, "eval_every_steps": 0, "eval_every_seconds": 0.0}
    if unit in ("", "epoch", "epochs", "step", "steps") and amount != int(amount):
        raise GanzooError(f"eval-every in {unit or 'epochs'} must be a whole number, got {text!r}")
    if unit in ("", "epoch", "epochs"):
        fields["eval_every"] = int(amount)
    elif unit.startswith("step"):
        fields["eval_every_steps"] = int(amount)
    else:
        fields["eval_every_seconds"] = amount * (60 if unit.startswith("m") else 1)
    check_intervals(fields)
    return fields


INTERVAL_LIMITS = {"eval_every": (1, MAX_EPOCHS, "epochs"), "eval_every_steps": (1, MAX_STEPS, "steps"),
                   "eval_every_seconds": (1.0, MAX_SECONDS, "seconds")}


def check_intervals(settings: Mapping[str, Any]) -> None:
    """Each of the eval_every fields is 0 (off) or within its limits: at least 1 second of training
    between evaluations (an evaluation takes longer), and no more than any run could last."""
    for key, (lo, hi, unit) in INTERVAL_LIMITS.items():
        value = settings.get(key, 0)
        if value and not lo <= value <= hi:
            raise GanzooError(f"eval-every in {unit} must be between {lo:g} and {hi:g} (or 0: never), got {value:g}")


def make_config(strategy: str, *layers: Mapping[str, Any]) -> TrainConfig:
    """Merge layers of settings (later wins) over the defaults, checking names and types.

    ``eval_every`` may be given as an interval ("60s", "500steps", "2"): it sets all three
    eval_every fields. A ``minutes`` budget with no ``epochs`` or ``steps`` in any layer has no
    epoch limit (epochs 0)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        layer = dict(layer)
        if isinstance(layer.get("eval_every"), str):
            layer.update(parse_interval(layer["eval_every"]))
        elif any(layer.get(name) for name in EVAL_EVERY_FIELDS):  # one kind of interval replaces another
            layer = {**{name: 0 for name in EVAL_EVERY_FIELDS if name not in layer}, **layer}
        if "epochs" in layer and "steps" not in layer:
            merged["steps"] = 0  # a later --epochs replaces an earlier --steps budget
        for key, value in layer.items():
            if key not in FIELD_TYPES or key == "strategy":
                close = suggest(key, FIELD_TYPES, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise GanzooError(f"unknown setting {shown(key)}{hint}")
            value = check_type(key, value)
            # options are merged key by key, so a strategy's default option survives a config
            # file that sets another one
            merged[key] = {**merged.get("options", {}), **value} if key == "options" else value
    if merged.get("minutes") and not any("epochs" in layer or "steps" in layer for layer in layers):
        merged["epochs"] = 0
    config = TrainConfig(strategy=strategy, **merged)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    if not 0 <= config.minutes <= 10**7:  # also refuses NaN
        raise GanzooError(f"minutes must be 0 (no time limit) or a positive number of minutes, got {config.minutes}")
    positive = ("n_gens", "n_dis", "z_dim", "batch_size", "log_every", "sample_count", "keep_last")
    if not (config.epochs == 0 and config.minutes > 0):  # --minutes alone: no epoch limit
        positive = ("epochs", *positive)
    for name in positive:
        if getattr(config, name) < 1:
            raise GanzooError(f"{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    if config.on_nan not in ("stop", "rollback"):
        raise GanzooError(f"on-nan must be stop or rollback, got {config.on_nan!r}")
    # Far above any sane run, low enough that a typo cannot ask for terabytes.
    ceilings = {"n_gens": 256, "n_dis": 1000, "z_dim": 1 << 16, "batch_size": 1 << 20, "sample_count": 4096, "keep_last": 10_000}
    for name, ceiling in ceilings.items():
        if getattr(config, name) > ceiling:
            raise GanzooError(f"{name.replace('_', '-')} must be at most {ceiling}, got {getattr(config, name)}")
    if not 2 <= config.eval_n <= 1_000_000:
        raise GanzooError(f"eval-n must be between 2 and 1000000, got {config.eval_n}")
    if config.resolution and not 8 <= config.resolution <= 1024:
        raise GanzooError(f"resolution must be between 8 and 1024 px (or 0: as stored), got {config.resolution}")
    if config.channels not in (0, 1, 3):
        raise GanzooError(f"channels must be 1 or 3 (or 0: from the data), got {config.channels}")
    for name in ("steps", "limit_data", "checkpoint_every", "eval_n_real", *EVAL_EVERY_FIELDS):
        if not getattr(config, name) >= 0:  # also refuses NaN
            raise GanzooError(f"{name.replace('_', '-')} must be 0 or more, got {getattr(config, name)}")
    for name in ("steps", "epochs", "limit_data", "checkpoint_every", "eval_n_real"):
        if getattr(config, name) > MAX_STEPS:
            raise GanzooError(f"{name.replace('_', '-')} must be at most 2**48, got {getattr(config, name)}")
    check_intervals(config.to_dict())
    if sum(bool(getattr(config, name)) for name in EVAL_EVERY_FIELDS) > 1:
        raise GanzooError("give one evaluation interval: eval-every in epochs, steps or seconds, not several")
    if not (0 < config.lr <= 1):  # Adam's step is about lr: above 1 it only overflows (1.7e38 did, in float32)
        raise GanzooError(f"lr must be a positive number at most 1, got {config.lr}")
    if not (0 <= config.lr_d <= 1):
        raise GanzooError(f"lr-d must be a positive number at most 1 (or 0: the same as lr), got {config.lr_d}")
    if not 0 <= config.seed < 2**32:
        raise GanzooError(f"seed must be in [0, 2**32), got {config.seed}")
    for name in ("beta1", "beta2"):
        if not 0 <= getattr(config, name) < 1:
            raise GanzooError(f"{name} must be in [0, 1), got {getattr(config, name)}")
    if not 0 <= config.momentum < 1:
        raise GanzooError(f"momentum must be in [0, 1), got {config.momentum}")
    if not 0 <= config.weight_decay <= 1:
        raise GanzooError(f"weight-decay must be in [0, 1], got {config.weight_decay}")
    if config.optimizer_d and config.optimizer_d not in OPTIMIZERS:
        raise GanzooError(f"optimizer-d must be one of {', '.join(OPTIMIZERS)} (or empty: the same as optimizer), got {config.optimizer_d!r}")
    for name, choices in (("amp", AMP_CHOICES), ("vmap", VMAP_CHOICES), ("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES)):
        if getattr(config, name) not in choices:
            raise GanzooError(f"{name.replace('_', '-')} must be one of {', '.join(choices)}, got {getattr(config, name)!r}")
    if config.device not in ("auto", "cpu", "cuda") and not config.device.startswith("cuda:"):
        raise GanzooError(f"device must be auto, cpu or cuda, got {config.device!r}")


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML file of settings: top-level keys, or a [train] table (as in a run's config.toml).

    Only a regular file of at most 64 MB, nested at most 64 deep, is read (never a FIFO or a device).
    """
    from ganzoo.core.safe_read import MAX_JSON_DEPTH, MAX_TEXT_BYTES, nesting_depth, read_bounded

    raw = read_bounded(path, "config file", MAX_TEXT_BYTES)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GanzooError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        data = None
    if data is None or nesting_depth(data) > MAX_JSON_DEPTH:
        raise GanzooError(f"config file {path} is nested more than {MAX_JSON_DEPTH} deep")
    if "train" in data and isinstance(data["train"], dict):
        data = data["train"]
    data.pop("strategy", None)
    return data
