"""AC-GAN's input policy (Odena et al. 2017). D gives, per image, a source logit s (real or fake)
and K class logits c; it is not told the class.

For a real batch x of classes y and N fake batches G_i(z, y) (asked for the same classes):
    D loss    = softplus(-s_x) + mean_i softplus(s_i)                               source: BCE
              + w (CE(c_x, y) + mean_i CE(c_i, y))                                  class: real and generated
    G_i loss  = softplus(-s_i) + w CE(c_i, y)                                       non-saturating
D accuracy = the fraction of the N + 1 images on the right side of 0 (as the binary policy); chance 1/2.
The class cross-entropies are logged as ac_real and ac_fake, and the auxiliary head's accuracy on
the real images as ac_accuracy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.core.errors import GanzooError
from ganzoo.core.parts import DiscriminatorSpec, PolicyOutput


class AuxiliaryClassifierPolicy:
    """Runs D once on the concatenated (N + 1) x B batch; D gives 1 + K logits per image."""

    discriminators = (DiscriminatorSpec(labels="classify"),)

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: str,
                 labels: Tensor | None = None) -> PolicyOutput:
        if labels is None:
            raise GanzooError("the acgan policy needs the classes of a conditional run (--conditional)")
        n, b = len(fakes), real.shape[0]
        logits = discriminator(torch.cat([real, *fakes]))  # ((N + 1) B, 1 + K)
        source = logits[:, 0].view(n + 1, b)
        ce = F.cross_entropy(logits[:, 1:], labels.repeat(n + 1), reduction="none").view(n + 1, b)
        real_s, fake_s = source[0], source[1:]
        d_losses = F.softplus(-real_s) + F.softplus(fake_s).mean(0) + self.weight * (ce[0] + ce[1:].mean(0))
        g_losses = F.softplus(-fake_s) + self.weight * ce[1:]  # G_i's loss depends on its own images only
        correct = ((real_s > 0).float() + (fake_s < 0).float().sum(0)) / (n + 1)
        hits = (logits[:b, 1:].argmax(1) == labels).float().mean()
        extras = {"ac_real": ce[0].detach().mean(), "ac_fake": ce[1:].detach().mean(), "ac_accuracy": hits.detach()}
        return PolicyOutput(d_losses, g_losses, g_losses, source.argmax(0), correct, 0.5, extras)
