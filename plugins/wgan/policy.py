"""The Wasserstein critic's policy (Arjovsky et al. 2017; Gulrajani et al. 2017).

For a real batch x and N fake batches, per tuple (x, G_1(z), ..., G_N(z)), critic scores s:
    D loss    = mean_i s_i - s_x                                   the critic widens the gap
              + lambda mean_i (||grad D(x_hat_i)|| - 1)^2          with --gp: x_hat_i = e x + (1 - e) G_i(z), e ~ U[0, 1]
    G_i loss  = -s_i
    after each critic step, with --clip c: every critic weight clamped to [-c, c]
D accuracy = the fraction of the N fakes the critic scores below the real image; chance 1/2. The
penalty is taken in the critic's update only and logged as gp (the mean squared deviation, unscaled).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganzoo.core.labels import scorer
from ganzoo.core.parts import PolicyOutput
from ganzoo.core.penalties import add_penalty


def wasserstein_losses(scores: Tensor) -> PolicyOutput:
    """The Wasserstein losses from the critic's scores, shape (N + 1, B), row 0 the real images."""
    real, fake = scores[0], scores[1:]
    g_losses = -fake  # loss i depends on G_i's sample only
    return PolicyOutput(fake.mean(0) - real, g_losses, g_losses, scores.argmax(0), (real > fake).float().mean(0), 0.5)


def interpolate_penalty(critic: nn.Module, real: Tensor, fakes: list[Tensor]) -> Tensor:
    """(||grad D(x_hat)|| - 1)^2 per tuple, averaged over the N fakes: (B,). One e per image pair, from
    torch's global generator (a checkpoint keeps its state, so a resume draws the same e)."""
    b = real.shape[0]
    e = torch.rand(b, *([1] * (real.dim() - 1)), device=real.device)
    mixed = torch.cat([e * real + (1 - e) * f for f in fakes]).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().view(len(fakes), b).mean(0)


class WassersteinPolicy:
    """Runs the critic once on the concatenated (N + 1) x B batch (and, with --gp, once on the interpolates)."""

    def __init__(self, clip: float = 0.0, gp: float = 0.0):
        self.clip, self.gp = clip, gp

    def __call__(self, critic: nn.Module, real: Tensor, fakes: list[Tensor], phase: str,
                 labels: Tensor | None = None) -> PolicyOutput:
        scores = scorer(critic, labels, len(fakes) + 1)(torch.cat([real, *fakes]))  # a conditional run's D(x, y)
        out = wasserstein_losses(scores.view(len(fakes) + 1, real.shape[0]))
        if self.gp > 0 and phase == "discriminator":  # an interpolate is of its pair's class
            penalty = interpolate_penalty(scorer(critic, labels, len(fakes)), real, fakes)
            out = add_penalty(out, "gp", penalty, 2 * self.gp)  # add_penalty adds gamma / 2
        return out

    def after_discriminator_step(self, critic: nn.Module) -> None:
        if self.clip > 0:  # two fused calls over every weight, not two per tensor
            weights = list(critic.parameters())
            torch._foreach_clamp_min_(weights, -self.clip)
            torch._foreach_clamp_max_(weights, self.clip)
