"""The relativistic pairing policy of R3GAN (Huang, Gokaslan, Kuleshov, Tompkin 2024): D scores a
real image against each generated one it is paired with, and zero-centred gradient penalties on
both sides (R1 on the real images, R2 on the fakes) keep D's training well behaved.

For a real batch x and N fake batches, pairs (x_b, G_i(z_b)) by position b, scores s_x and s_i:
    D loss    = mean_i softplus(s_i - s_x) + (r1 / 2) ||grad D(x)||^2 + (r2 / 2) mean_i ||grad D(G_i(z))||^2
    G_i loss  = softplus(s_x - s_i)                      (G_i's own pair only)
D accuracy = the fraction of the N pairs with s_x > s_i; chance 1/2. The penalties are taken in
D's update only, and logged unscaled as r1 and r2 (each when its gamma is above 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.core.labels import scorer
from ganzoo.core.parts import PolicyOutput
from ganzoo.core.penalties import add_penalty, scores_and_penalties


def pairing_losses(scores: Tensor) -> PolicyOutput:
    """The RpGAN losses from D's scores, shape (N + 1, B), row 0 the real images."""
    real, fake = scores[0], scores[1:]
    g_losses = F.softplus(real - fake)  # loss i depends on G_i's sample only
    return PolicyOutput(
        d_losses=F.softplus(fake - real).mean(0),
        g_losses=g_losses,
        g_losses_own=g_losses,
        picks=scores.argmax(0),
        correct=(real > fake).float().mean(0),
        chance=0.5,
    )


class PairingPolicy:
    """Runs D once on the concatenated (N + 1) x B batch; in D's update, through the penalties'
    gradient when r1 or r2 is above 0."""

    def __init__(self, r1: float = 0.0, r2: float = 0.0):
        self.r1, self.r2 = r1, r2

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: str,
                 labels: Tensor | None = None) -> PolicyOutput:
        n, b = len(fakes), real.shape[0]
        if phase != "discriminator" or not (self.r1 > 0 or self.r2 > 0):
            discriminator = scorer(discriminator, labels, n + 1)  # a conditional run's D(x, y)
            return pairing_losses(discriminator(torch.cat([real, *fakes])).view(n + 1, b))
        penalise = [self.r1 > 0] + [self.r2 > 0] * n  # the input gradient of what is penalised only
        scores, sq_norms = scores_and_penalties(discriminator, [real, *fakes], penalise, labels)
        out = pairing_losses(scores.view(n + 1, b))
        if self.r1 > 0:
            out = add_penalty(out, "r1", sq_norms[0], self.r1)
        if self.r2 > 0:
            out = add_penalty(out, "r2", torch.stack(sq_norms[1:]).mean(0), self.r2)
        return out
