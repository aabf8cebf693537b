"""The binary discriminator-input policy: D scores every sample real or fake on its own.

Used by SNGAN, DCGAN and, with ``ganzoo train psg --policy binary``, by PSG's N generators (the
"binary reading" of the paper, docs/psg.md).

For one real batch and N fake batches, per tuple (x, G_1(z), ..., G_N(z)):
    hinge:  D loss = relu(1 - s_x) + mean_i relu(1 + s_i)          G_i loss = -s_i
    bce:    D loss = softplus(-s_x) + mean_i softplus(s_i)         G_i loss = softplus(-s_i)  (non-saturating)
D accuracy = the fraction of the N + 1 samples on the right side of 0; chance 1/2.
With --r1 gamma > 0, D's loss in its own update also has R1 on the real sample (logged as r1):
    D loss += (gamma / 2) ||grad_x D(x)||^2
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.core.errors import GanzooError
from ganzoo.core.labels import scorer
from ganzoo.core.parts import PolicyOutput
from ganzoo.core.penalties import add_penalty, scores_and_penalties

LOSSES = ("hinge", "bce")


def binary_losses(scores: Tensor, loss: str) -> PolicyOutput:
    """The binary-policy losses from D's scores, shape (N + 1, B), row 0 the real samples."""
    real, fake = scores[0], scores[1:]
    if loss == "hinge":
        d_losses = F.relu(1 - real) + F.relu(1 + fake).mean(0)
        g_losses = -fake
    else:
        d_losses = F.softplus(-real) + F.softplus(fake).mean(0)
        g_losses = F.softplus(-fake)
    correct = ((real > 0).float() + (fake < 0).float().sum(0)) / scores.shape[0]
    # Each G_i's loss depends on its own sample only, so both views are the same tensor.
    return PolicyOutput(d_losses, g_losses, g_losses, scores.argmax(0), correct, 0.5)


class BinaryPolicy:
    def __init__(self, loss: str, r1: float = 0.0):
        if loss not in LOSSES:
            raise GanzooError(f"unknown loss {loss!r} for the binary policy (known: {', '.join(LOSSES)})")
        self.loss, self.r1 = loss, r1

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: str,
                 labels: Tensor | None = None) -> PolicyOutput:
        shape = (len(fakes) + 1, real.shape[0])
        if self.r1 > 0 and phase == "discriminator":  # the input gradient of the real images only
            scores, (r1, *_) = scores_and_penalties(discriminator, [real, *fakes], [True] + [False] * len(fakes), labels)
            return add_penalty(binary_losses(scores.view(shape), self.loss), "r1", r1, self.r1)
        discriminator = scorer(discriminator, labels, len(fakes) + 1)  # a conditional run's D(x, y)
        return binary_losses(discriminator(torch.cat([real, *fakes])).view(shape), self.loss)
