"""MAD-GAN's discriminator-input policy (Ghosh et al. 2018): D classifies every image into N + 1 classes.

Class 0 is "real" (the paper's class k+1) and class i is "made by G_i". For a tuple
(x, G_1(z_1), ..., G_N(z_N)) with D's logits l_j (N + 1 classes) for image j:
    D loss      = (1 / (N + 1)) sum_j CE(l_j, j)           every image to its own class
    G_i loss    = CE(l_i, 0) = -log softmax(l_i)_0          G_i wants its sample called real
    D accuracy  = fraction of the N + 1 images put in their own class; chance 1 / (N + 1)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganzoo.core.parts import PolicyOutput


def madgan_losses(logits: Tensor) -> PolicyOutput:
    """The MAD-GAN losses from D's logits, shape (N + 1, B, N + 1): row j holds image j of each tuple."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    log_p = logits.log_softmax(-1)
    own_class = log_p[rows, :, rows]  # (N + 1, B): log-probability of each image's true class
    g_losses = -log_p[1:, :, 0]  # depends on G_i's own sample only, so both views are the same
    correct = (logits.argmax(-1) == rows[:, None]).float().mean(0)
    return PolicyOutput(
        d_losses=-own_class.mean(0),
        g_losses=g_losses,
        g_losses_own=g_losses,
        picks=log_p[:, :, 0].argmax(0),  # the image D finds most likely real
        correct=correct,
        chance=1.0 / logits.shape[0],
    )


class MadganPolicy:
    """D with N + 1 outputs, run once on the concatenated (N + 1) x B batch."""

    def __init__(self, n_gens: int):
        self.d_outputs = n_gens + 1

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: str) -> PolicyOutput:
        logits = discriminator(torch.cat([real, *fakes])).view(len(fakes) + 1, real.shape[0], self.d_outputs)
        return madgan_losses(logits)
