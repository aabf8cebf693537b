"""MGAN's discriminator-input policy (Hoang et al. 2018): a binary real/fake head plus a K-way
classifier head C that tells which generator made a fake (K = N generators).

With D's logits per image: s (the binary head) and c (the K classifier logits), per tuple
(x, G_1(z_1), ..., G_N(z_N)):
    D loss      = softplus(-s_x) + mean_i softplus(s_i) + mean_i CE(c_i, i)      BCE(real) + BCE(fake) + CE(C, index)
    G_i loss    = softplus(-s_i) + beta * CE(c_i, i)                              non-saturating, and G_i helps C
    D accuracy  = fraction of the N + 1 images on the right side of s = 0; chance 1/2
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.core.parts import PolicyOutput


def mgan_losses(logits: Tensor, beta: float) -> PolicyOutput:
    """The MGAN losses from D's logits, shape (N + 1, B, 1 + N): row 0 the real images, column 0 the binary head."""
    scores = logits[..., 0]  # (N + 1, B)
    real, fake = scores[0], scores[1:]
    rows = torch.arange(fake.shape[0], device=logits.device)
    classify = -logits[1:, :, 1:].log_softmax(-1)[rows, :, rows]  # (N, B): CE(C(G_i's image), i)
    d_losses = F.softplus(-real) + F.softplus(fake).mean(0) + classify.mean(0)
    g_losses = F.softplus(-fake) + beta * classify  # each depends on G_i's own sample only
    correct = ((real > 0).float() + (fake < 0).float().sum(0)) / scores.shape[0]
    return PolicyOutput(d_losses, g_losses, g_losses, scores.argmax(0), correct, 0.5)


class MganPolicy:
    """D with 1 + N outputs, run once on the concatenated (N + 1) x B batch."""

    def __init__(self, n_gens: int, beta: float):
        self.d_outputs = 1 + n_gens
        self.beta = beta

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: str) -> PolicyOutput:
        logits = discriminator(torch.cat([real, *fakes])).view(len(fakes) + 1, real.shape[0], self.d_outputs)
        return mgan_losses(logits, self.beta)
