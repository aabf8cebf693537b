"""PSG's discriminator-input policy: D sees (x, G_1(z), ..., G_N(z)) and must pick the real one.

Softmax over the N+1 scores of a tuple (divided by the temperature T, 1 unless --temperature),
cross-entropy with the real one as target:
    D loss        = -log p_0                 p = softmax(s_0 / T, s_1 / T, ..., s_N / T), s_0 the real sample's score
    G_i loss      = -log p_i                 (non-saturating: G_i wants D to pick its sample)
    D accuracy    = [argmax p == 0]          chance 1 / (N + 1)
With --r1 gamma > 0 (--r2 gamma > 0), D's loss in its own update also has R1 on the real sample
(R2 on the fakes, averaged over the N), logged unscaled as r1 (r2):
    D loss       += (gamma / 2) ||grad_x D(x)||^2
Each penalty differentiates through the images it penalises only (ganzoo.core.penalties).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganzoo.core.labels import scorer
from ganzoo.core.parts import PolicyOutput
from ganzoo.core.penalties import add_penalty, scores_and_penalties


def tuple_losses(scores: Tensor) -> PolicyOutput:
    """The PSG losses from D's scores (logits), shape (N + 1, B), row 0 the real samples."""
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
    """Runs D on the (N + 1) x B batch and scores the tuples (in D's update with a penalty, as one
    pass on what is penalised and one on the rest)."""

    def __init__(self, r1: float = 0.0, r2: float = 0.0, temperature: float = 1.0):
        self.r1, self.r2, self.temperature = r1, r2, temperature

    def losses(self, scores: Tensor) -> PolicyOutput:
        return tuple_losses(scores if self.temperature == 1.0 else scores / self.temperature)

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: str,
                 labels: Tensor | None = None) -> PolicyOutput:
        n, b = len(fakes), real.shape[0]
        if phase != "discriminator" or not (self.r1 > 0 or self.r2 > 0):
            discriminator = scorer(discriminator, labels, n + 1)  # a conditional run's D(x, y)
            return self.losses(discriminator(torch.cat([real, *fakes])).view(n + 1, b))
        penalise = [self.r1 > 0] + [self.r2 > 0] * n
        scores, sq_norms = scores_and_penalties(discriminator, [real, *fakes], penalise, labels)
        out = self.losses(scores.view(n + 1, b))
        if self.r1 > 0:
            out = add_penalty(out, "r1", sq_norms[0], self.r1)
        if self.r2 > 0:
            out = add_penalty(out, "r2", torch.stack(sq_norms[1:]).mean(0), self.r2)
        return out
