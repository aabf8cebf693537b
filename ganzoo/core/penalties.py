"""Zero-centred gradient penalties on D (R1 on real images, R2 on fakes; Mescheder et al. 2018).

For images x and D's score D(x), the penalty of one image is its squared gradient norm

    ||grad_x D(x)||^2                 (summed over channels and pixels)

and a policy adds (gamma / 2) times it to D's loss in the discriminator phase only: the gradient
is taken with ``create_graph=True``, so D's update differentiates through it (double backward,
which ``--compile`` does not support). D runs once: the scores it returns are those the
policy's losses use. D must score each image on its own (no batch norm in D, as in ganzoo's
networks): the gradient of the summed scores then holds each image's own gradient.
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


def scores_and_penalty(discriminator: nn.Module, images: Tensor, rows: slice = slice(None)) -> tuple[Tensor, Tensor]:
    """D's scores on ``images`` (B,) and ||grad_x D(x)||^2 of ``images[rows]`` (one value per
    image), from one D pass on a detached copy of the images that requires grad."""
    import torch  # here, so that plugins may import this module's options without loading torch

    x = images.detach().requires_grad_(True)
    scores = discriminator(x)
    (grad,) = torch.autograd.grad(scores[rows].sum(), x, create_graph=True)
    return scores, grad[rows].square().flatten(1).sum(1)


def gradient_penalty(discriminator: nn.Module, images: Tensor) -> Tensor:
    """||grad_x D(x)||^2 per image, shape (B,)."""
    return scores_and_penalty(discriminator, images)[1]


def add_penalty(out: PolicyOutput, name: str, sq_norms: Tensor, gamma: float) -> PolicyOutput:
    """``out`` with (gamma / 2) * sq_norms added to D's per-tuple loss, and the unscaled mean of
    sq_norms (B,) logged as ``extras[name]`` (a 0-dim tensor on the device)."""
    return replace(out, d_losses=out.d_losses + 0.5 * gamma * sq_norms,
                   extras={**out.extras, name: sq_norms.detach().mean()})
