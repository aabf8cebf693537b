"""PSG's discriminator-input policy: D sees (x, G_1(z), ..., G_N(z)) and must pick the real one.

Softmax over the N+1 scores of a tuple, cross-entropy with the real one as target:
    D loss        = -log p_0                 p = softmax(s_0, s_1, ..., s_N), s_0 the real sample's score
    G_i loss      = -log p_i                 (non-saturating: G_i wants D to pick its sample)
    D accuracy    = [argmax p == 0]          chance 1 / (N + 1)
With --r1 gamma > 0, D's loss in its own update also has R1 on the real sample (logged as r1):
    D loss       += (gamma / 2) ||grad_x D(x)||^2
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganzoo.core.labels import scorer
from ganzoo.core.parts import PolicyOutput
from ganzoo.core.penalties import add_penalty, scores_and_penalty


def tuple_losses(scores: Tensor) -> PolicyOutput:
    """The PSG losses from D's scores, shape (N + 1, B), row 0 the real samples."""
    n = scores.shape[0] - 1
    log_p = scores.log_softmax(0)
    # Loss i differentiable only through s_i: the other rows are constants in softmax i.
    live = torch.eye(n + 1, dtype=torch.bool, device=scores.device)[1:, :, None]  # (N, N+1, 1)
    own_log_p = torch.where(live, scores, scores.detach()).log_softmax(1)  # (N, N+1, B)
    rows = torch.arange(n, device=scores.device)
    picks = scores.argmax(0)
    return PolicyOutput(
        d_losses=-log_p[0],
        g_losses=-log_p[1:],
        g_losses_own=-own_log_p[rows, rows + 1],
        picks=picks,
        correct=(picks == 0).float(),
        chance=1.0 / (n + 1),
    )


class TuplePolicy:
    """Runs D once on the concatenated (N + 1) x B batch and scores the tuples."""

    def __init__(self, r1: float = 0.0):
        self.r1 = r1

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: str,
                 labels: Tensor | None = None) -> PolicyOutput:
        images, shape = torch.cat([real, *fakes]), (len(fakes) + 1, real.shape[0])
        discriminator = scorer(discriminator, labels, len(fakes) + 1)  # a conditional run's D(x, y)
        if self.r1 > 0 and phase == "discriminator":
            scores, r1 = scores_and_penalty(discriminator, images, slice(0, real.shape[0]))
            return add_penalty(tuple_losses(scores.view(shape)), "r1", r1, self.r1)
        return tuple_losses(discriminator(images).view(shape))
