"""PacGAN's discriminator-input policy (Lin et al. 2018): D judges m samples at once, stacked on the channel axis.

A batch of B images (B divisible by m) becomes B/m packs of shape (m * C, H, W): m real images,
or m images of one generator. The loss is the binary policy's, on packs; each pack's loss is
repeated for its m images, so that the per-image shapes of a PolicyOutput hold.
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor, nn

from ganzoo.core.errors import GanzooError
from ganzoo.core.parts import PolicyOutput
from ganzoo.plugins.binary.binary_policy import BinaryPolicy


def pack(images: Tensor, m: int) -> Tensor:
    """(B, C, H, W) -> (B/m, m*C, H, W): images m*k ... m*k + m - 1 become pack k."""
    b, c, h, w = images.shape
    return images.reshape(b // m, m * c, h, w)


def unpack(out: PolicyOutput, m: int) -> PolicyOutput:
    return replace(
        out,
        d_losses=out.d_losses.repeat_interleave(m),
        g_losses=out.g_losses.repeat_interleave(m, dim=1),
        g_losses_own=out.g_losses_own.repeat_interleave(m, dim=1),
        picks=out.picks.repeat_interleave(m),
        correct=out.correct.repeat_interleave(m),
    )


class PacPolicy:
    def __init__(self, loss: str, m: int, batch_size: int):
        if batch_size % m:
            raise GanzooError(f"batch-size {batch_size} is not a multiple of --pack {m}")
        self.d_packing = m
        self.binary = BinaryPolicy(loss)

    def __call__(self, discriminator: nn.Module, real: Tensor, fakes: list[Tensor], phase: str) -> PolicyOutput:
        m = self.d_packing
        return unpack(self.binary(discriminator, pack(real, m), [pack(f, m) for f in fakes], phase), m)
