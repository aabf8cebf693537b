"""D2GAN's discriminator-input policy (Nguyen et al. 2017): two discriminators, each network's score
made positive by a softplus, D1(.) = softplus(s1), D2(.) = softplus(s2).

For a real batch x and N fake batches, per tuple (x, G_1(z), ..., G_N(z)):
    D loss     = [-alpha log D1(x) + mean_i D1(G_i)] + [D2(x) - beta mean_i log D2(G_i)]
    G_i loss   = -D1(G_i) + beta log D2(G_i)
    D accuracy = the fraction of (discriminator, fake) pairs ordered as each D should: D1 above on
                 the real image, D2 above on the fake; chance 1/2
log D(.) is taken as log softplus(s), which is s itself where softplus(s) underflows, so that a D
that is very sure, and wrong, still has a finite loss and its full gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.core.parts import DiscriminatorSpec, PolicyOutput

SMALL = -20.0  # below it, log softplus(s) = s + log1p(-e^s / 2 ...) is s to float precision


def log_softplus(s: Tensor) -> Tensor:
    """log(softplus(s)) with a finite value and gradient for every finite s."""
    return torch.where(s < SMALL, s, F.softplus(s.clamp_min(SMALL)).log())  # the clamp: no 0 * inf in the branch not taken


def d2gan_losses(s1: Tensor, s2: Tensor, alpha: float, beta: float) -> PolicyOutput:
    """The D2GAN losses from the two discriminators' raw scores, each (N + 1, B), row 0 the real images."""
    d1, d2 = F.softplus(s1), F.softplus(s2)
    log_fake2 = log_softplus(s2[1:])
    d_losses = -alpha * log_softplus(s1[0]) + d1[1:].mean(0) + d2[0] - beta * log_fake2.mean(0)
    g_losses = -d1[1:] + beta * log_fake2  # loss i depends on G_i's sample only
    correct = ((s1[0] > s1[1:]).float() + (s2[1:] > s2[0]).float()).mean(0) / 2
    return PolicyOutput(d_losses, g_losses, g_losses, s1.argmax(0), correct, 0.5)


class D2ganPolicy:
    """Two discriminators, d1 and d2, each run once on the concatenated (N + 1) x B batch."""

    discriminators = (DiscriminatorSpec("d1"), DiscriminatorSpec("d2"))

    def __init__(self, alpha: float, beta: float):
        self.alpha, self.beta = alpha, beta

    def __call__(self, discriminators: dict[str, nn.Module], real: Tensor, fakes: list[Tensor], phase: str) -> PolicyOutput:
        images, shape = torch.cat([real, *fakes]), (len(fakes) + 1, real.shape[0])
        return d2gan_losses(discriminators["d1"](images).view(shape), discriminators["d2"](images).view(shape), self.alpha, self.beta)
