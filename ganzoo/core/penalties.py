"""Zero-centred gradient penalties on D (R1 on real images, R2 on fakes; Mescheder et al. 2018).

For images x and D's score D(x), the penalty of one image is its squared gradient norm

    ||grad_x D(x)||^2                 (summed over channels and pixels)

and a policy adds (gamma / 2) times it to D's loss in the discriminator phase only: the gradient
is taken with ``create_graph=True``, so D's update differentiates through it (double backward,
which ``--compile`` does not support). The penalised images go through D once, and the scores of
that pass are those the policy's losses use; the others go through a second, plain pass, so the
penalty's double backward costs nothing for them. D must score each image on its own (no batch
norm in D, as in ganzoo's networks): the gradient of the summed scores then holds each image's own
gradient.
Works through the trainer's bf16 ``Autocast`` wrapper and with a spectral-normalised D.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ganzoo.core.options import number_check
from ganzoo.core.parts import PolicyOutput, TrainOption

if TYPE_CHECKING:
    from torch import Tensor, nn

# The options of the policies that take these penalties (binary, tuple: --r1; rpgan: both), declared
# once so that every owner shares one flag, help, check and default (0: off).
R1 = TrainOption("--r1", "r1", "Weight gamma of the R1 penalty, (gamma / 2) ||grad_x D(x)||^2 on real images, in D's update; "
                 "0: off.", type=float, check=number_check(0.0, 1e4, flag="--r1"), default=0.0)
R2 = TrainOption("--r2", "r2", "Weight gamma of the R2 penalty, (gamma / 2) ||grad_x D(x)||^2 on generated images, in D's "
                 "update; 0: off.", type=float, check=number_check(0.0, 1e4, flag="--r2"), default=0.0)


def scores_and_penalties(discriminator: nn.Module, batches: list[Tensor], penalise: list[bool],
                         labels: Tensor | None = None) -> tuple[Tensor, list[Tensor | None]]:
    """D's scores of the stacked ``batches`` ((len(batches) * B,), in their order) and, for each batch
    whose ``penalise`` flag is set, ||grad_x D(x)||^2 of its images ((B,); None for the others).

    The gradient runs only through what is penalised: the penalised batches go through D as one
    pass on a detached copy that requires grad, the others as a second, plain pass (with spectral
    norm, both passes use one normalised weight: one power iteration, as in a single pass).
    ``labels`` (B,): a conditional run's classes, repeated for each batch (``scorer``)."""
    import torch  # here, so that plugins may import this module's options without loading torch
    from torch.nn.utils import parametrize

    from ganzoo.core.labels import scorer

    on = [b for b, p in zip(batches, penalise) if p]
    off = [b for b, p in zip(batches, penalise) if not p]
    with parametrize.cached():
        x = torch.cat(on).detach().requires_grad_(True)
        scores_on = scorer(discriminator, labels, len(on))(x)
        scores_off = scorer(discriminator, labels, len(off))(torch.cat(off)) if off else scores_on[:0]
    (grad,) = torch.autograd.grad(scores_on.sum(), x, create_graph=True)
    sq_norms = iter(grad.square().flatten(1).sum(1).chunk(len(on)))
    parts_on, parts_off = iter(scores_on.chunk(len(on))), iter(scores_off.chunk(max(len(off), 1)))
    scores = torch.cat([next(parts_on) if p else next(parts_off) for p in penalise])
    return scores, [next(sq_norms) if p else None for p in penalise]


def scores_and_penalty(discriminator: nn.Module, images: Tensor, rows: slice = slice(None)) -> tuple[Tensor, Tensor]:
    """D's scores on ``images`` (B,) and ||grad_x D(x)||^2 of ``images[rows]``, from one D pass on all
    of them (plugin API 0.5's helper, kept for plugins that use it: its gradient goes through every
    image; ``scores_and_penalties`` takes it through the penalised ones only)."""
    import torch

    x = images.detach().requires_grad_(True)
    scores = discriminator(x)
    (grad,) = torch.autograd.grad(scores[rows].sum(), x, create_graph=True)
    return scores, grad[rows].square().flatten(1).sum(1)


def gradient_penalty(discriminator: nn.Module, images: Tensor) -> Tensor:
    """||grad_x D(x)||^2 per image, shape (B,)."""
    return scores_and_penalties(discriminator, [images], [True])[1][0]


def add_penalty(out: PolicyOutput, name: str, sq_norms: Tensor, gamma: float) -> PolicyOutput:
    """``out`` with (gamma / 2) * sq_norms added to D's per-tuple loss, and the unscaled mean of
    sq_norms (B,) logged as ``extras[name]`` (a 0-dim tensor on the device)."""
    return replace(out, d_losses=out.d_losses + 0.5 * gamma * sq_norms,
                   extras={**out.extras, name: sq_norms.detach().mean()})
