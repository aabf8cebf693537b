"""GMAN's own form (Durugkar et al. 2017): K discriminators, each a binary D trained on its own, and
the generators' loss a softmax-weighted mix of what each D says.

For a real batch x and fakes G_i(z), D_k's scores s_k (one network per k, ``DiscriminatorSpec``):
    D loss      = sum_k [ softplus(-s_k(x)) + mean_i softplus(s_k(G_i(z))) ]     each D_k's own BCE
    V_ik        = softplus(-s_k(G_i(z)))                                          G_i's loss against D_k
    G_i loss    = sum_k w_ik V_ik,   w_i = softmax_k(lambda * mean_batch V_ik)    (w held constant)
    D accuracy  = the mean over the Ds of the fraction of the N + 1 images on the right side of 0; chance 1/2
lambda = 0 is GMAN-0 (the mean over the discriminators); as lambda grows the generator answers to
its harshest critic (GMAN-max). Every D sees the same real and fake batch here; V is G's
non-saturating loss -log D_k(G(z)), not D's value function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.core.parts import DiscriminatorSpec, PolicyOutput
from ganzoo.plugins.gman.aggregation import softmax_weights


def gman_losses(scores: Tensor, temperature: float) -> PolicyOutput:
    """The losses from K discriminators' scores, shape (K, N + 1, B), row 0 of each the real images."""
    real, fake = scores[:, 0], scores[:, 1:]  # (K, B), (K, N, B)
    d_losses = (F.softplus(-real) + F.softplus(fake).mean(1)).sum(0)
    against = F.softplus(-fake)  # (K, N, B): each generator's loss against each D
    weights = softmax_weights(against.mean(2), temperature, dim=0)  # (K, N): over the discriminators
    g_losses = (weights[:, :, None] * against).sum(0)  # (N, B); loss i depends on G_i's sample only
    correct = ((real > 0).float() + (fake < 0).float().sum(1)) / scores.shape[1]
    return PolicyOutput(d_losses, g_losses, g_losses, scores.mean(0).argmax(0), correct.mean(0), 0.5)


class GmanPolicy:
    """K binary discriminators (d1 ... dK), each run once on the concatenated (N + 1) x B batch."""

    def __init__(self, k: int, temperature: float):
        self.discriminators = tuple(DiscriminatorSpec(f"d{j + 1}") for j in range(k))
        self.temperature = temperature

    def __call__(self, discriminators: dict[str, nn.Module] | nn.Module, real: Tensor, fakes: list[Tensor], phase: str) -> PolicyOutput:
        networks = list(discriminators.values()) if isinstance(discriminators, dict) else [discriminators]
        images, shape = torch.cat([real, *fakes]), (len(fakes) + 1, real.shape[0])
        scores = torch.stack([d(images).view(shape) for d in networks])
        return gman_losses(scores, self.temperature)
