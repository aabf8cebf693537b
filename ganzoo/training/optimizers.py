"""The optimizers a run may use (``--optimizer``, ``--optimizer-d``), the state each keeps per
parameter (what a checkpoint must hold), and the learning-rate schedule (``--lr-schedule``).

    adam     torch.optim.Adam(lr, betas=(beta1, beta2), weight_decay)       the default
    adamw    torch.optim.AdamW(lr, betas=(beta1, beta2), weight_decay)      decay decoupled from the gradient
    rmsprop  torch.optim.RMSprop(lr, alpha=0.99, momentum, weight_decay)    the original WGAN's
    sgd      torch.optim.SGD(lr, momentum, weight_decay)

The learning rate of step s (0 for the first) is lr x 0.5^rollbacks x factor(s), the factor 1
(constant), 1 - s/T (linear) or (1 + cos(pi s/T)) / 2 (cosine) for a run of T steps: a function of
the step alone, so that a resumed run continues it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganzoo.core.config import TrainConfig
from ganzoo.core.errors import GanzooError
from ganzoo.core.parts import DiscriminatorSpec

Spec = tuple[tuple[int, ...], torch.dtype]
STEP: Spec = ((), torch.float32)  # Adam's and RMSprop's step count, a float32 scalar tensor


@dataclass(frozen=True)
class OptimizerSettings:
    kind: str
    lr: float
    betas: tuple[float, float]
    momentum: float
    weight_decay: float


def generator_settings(config: TrainConfig) -> OptimizerSettings:
    return OptimizerSettings(config.optimizer, config.lr, (config.beta1, config.beta2), config.momentum, config.weight_decay)


def discriminator_settings(config: TrainConfig, spec: DiscriminatorSpec) -> OptimizerSettings:
    """A discriminator's settings: its spec's where it gives them, else the run's D settings."""
    kind = spec.optimizer or config.optimizer_d or config.optimizer
    lr = spec.lr if spec.lr is not None else (config.lr_d or config.lr)
    betas = tuple(spec.betas) if spec.betas is not None else (config.beta1, config.beta2)
    return OptimizerSettings(kind, lr, betas, config.momentum, config.weight_decay)


def make_optimizer(params: list[torch.nn.Parameter], settings: OptimizerSettings) -> torch.optim.Optimizer:
    kind, lr, decay = settings.kind, settings.lr, settings.weight_decay
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=settings.betas, weight_decay=decay)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=settings.betas, weight_decay=decay)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=settings.momentum, weight_decay=decay)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=settings.momentum, weight_decay=decay)
    raise GanzooError(f"unknown optimizer {kind!r} (known: adam, adamw, rmsprop, sgd)")


def parameter_state(optimizer: torch.optim.Optimizer, prefix: str) -> list[dict[str, Spec]]:
    """The tensors the optimizer keeps for each parameter once it has stepped, by checkpoint name
    (``<prefix>.<index>.<name>``): a group each, all present or all absent."""
    groups, index = [], 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            like: Spec = (tuple(p.shape), p.dtype)
            if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
                names = {"step": STEP, "exp_avg": like, "exp_avg_sq": like, **({"max_exp_avg_sq": like} if group["amsgrad"] else {})}
            elif isinstance(optimizer, torch.optim.RMSprop):
                names = {"step": STEP, "square_avg": like, **({"momentum_buffer": like} if group["momentum"] > 0 else {}),
                         **({"grad_avg": like} if group["centered"] else {})}
            elif isinstance(optimizer, torch.optim.SGD):
                names = {"momentum_buffer": like} if group["momentum"] != 0 else {}
            else:
                raise GanzooError(f"no checkpoint layout for the optimizer {type(optimizer).__name__}")
            if names:
                groups.append({f"{prefix}.{index}.{name}": spec for name, spec in names.items()})
            index += 1
    return groups


def lr_factor(schedule: str, step: int, horizon: int) -> float:
    """The schedule's factor on the learning rate of step ``step`` (0-based) of a run of ``horizon`` steps."""
    if schedule == "constant":
        return 1.0
    done = min(step, horizon) / horizon
    if schedule == "linear":
        return 1.0 - done
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * done))
    raise GanzooError(f"unknown lr-schedule {schedule!r} (known: constant, linear, cosine)")


def set_learning_rates(optimizers: list[tuple[torch.optim.Optimizer, float]], factor: float) -> None:
    """Give every (optimizer, base learning rate) pair base x factor."""
    for optimizer, base in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = base * factor
