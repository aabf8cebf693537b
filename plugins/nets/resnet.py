"""The ResNet generator and discriminator of Miyato et al. 2018 (SNGAN, appendix), for 32, 48, 64
and 128 px images, with the block widths of Mimicry's sngan_32/48/64/128 (Lee & Town 2020).

Plain torch: spectral norm is added to D by the run (``--spectral-norm``; the sngan strategy turns
it on). Two choices follow the SNGAN reference code (pfnet-research/sngan_projection, Chainer)
where Mimicry differs: G upsamples by nearest neighbour (Mimicry: bilinear), and D's shortcut
reads the block's input before its first ReLU (Mimicry's in-place ReLU feeds it the rectified
input). Neither changes a parameter count.

Initialisation, as both: Xavier-uniform with gain sqrt(2) for the 3x3 convolutions of the
residual branches, gain 1 for the 1x1 shortcuts, G's first linear layer, G's last convolution
and D's linear layer; batch norm scale 1, shift 0. Biases start at zero, as in the Chainer code
(Mimicry keeps PyTorch's default).

``classes=K`` gives the class-conditional nets of Miyato & Koyama 2018 (cGANs with projection
discriminator; conditional.py): the batch norms of G's blocks take a per-class scale and shift,
G's last batch norm stays unconditional (as in the reference code and Mimicry's cgan_pd), and D
adds the projection sum(embed(y) * h) of its pooled features h to the logit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.core.errors import GanzooError
from ganzoo.plugins.nets.conditional import Sequential, batch_norm, call, check_classes, projection
from ganzoo.plugins.nets.init import xavier_init


@dataclass(frozen=True)
class Layout:
    """One image size's widths. G: a bottom x bottom map of g_widths[0] channels, then one
    upsampling block per further entry. D: one block per entry of d_widths, the first the
    optimized block (always halving the size); d_down says which of the others halve it."""

    bottom: int
    g_widths: tuple[int, ...]
    d_widths: tuple[int, ...]
    d_down: tuple[bool, ...]


LAYOUTS = {
    32: Layout(4, (256, 256, 256, 256), (128, 128, 128, 128), (True, False, False)),
    48: Layout(6, (512, 256, 128, 64), (64, 128, 256, 512, 1024), (True, True, True, False)),
    64: Layout(4, (1024, 512, 256, 128, 64), (64, 128, 256, 512, 1024), (True, True, True, True)),
    128: Layout(4, (1024, 1024, 512, 256, 128, 64), (64, 128, 256, 512, 1024, 1024), (True, True, True, True, False)),
}

RESIDUAL_GAIN = math.sqrt(2.0)


class GBlock(nn.Module):
    """BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus upsample-conv1x1 of the input. With
    classes > 0 both batch norms are class-conditional and forward needs y."""

    takes_labels = True

    def __init__(self, in_channels: int, out_channels: int, classes: int = 0):
        super().__init__()
        self.b1 = batch_norm(in_channels, classes)
        self.c1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.b2 = batch_norm(out_channels, classes)
        self.c2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
        xavier_init((self.c1, self.c2), RESIDUAL_GAIN)
        xavier_init((self.shortcut,), 1.0)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = F.interpolate(F.relu(call(self.b1, x, y)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(call(self.b2, self.c1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """ReLU-conv3x3-ReLU-conv3x3 (then 2x2 average pooling when downsampling), plus the input
    through a 1x1 conv (and the same pooling) when the block changes its channels or size."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool):
        super().__init__()
        self.downsample = downsample
        self.c1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.c2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if downsample or in_channels != out_channels else None
        xavier_init((self.c1, self.c2), RESIDUAL_GAIN)
        if self.shortcut is not None:
            xavier_init((self.shortcut,), 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = self.c2(F.relu(self.c1(F.relu(x))))
        s = x if self.shortcut is None else self.shortcut(x)
        if self.downsample:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class OptimizedDBlock(nn.Module):
    """D's first block: conv3x3-ReLU-conv3x3-avgpool, plus avgpool-conv1x1 of the input (no ReLU
    on the image itself)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.c2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
        xavier_init((self.c1, self.c2), RESIDUAL_GAIN)
        xavier_init((self.shortcut,), 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


def layout(size: int) -> Layout:
    if size not in LAYOUTS:
        raise GanzooError(f"no SNGAN ResNet for {size}x{size} images; sizes: {', '.join(map(str, LAYOUTS))}")
    return LAYOUTS[size]


class Generator(nn.Module):
    """forward(z, y=None); y, the (B,) class labels, only with classes > 0."""

    def __init__(self, z_dim: int, channels: int, size: int = 32, classes: int = 0):
        super().__init__()
        self.classes = check_classes(classes)
        spec = layout(size)
        widths, bottom = spec.g_widths, spec.bottom
        self.linear = nn.Linear(z_dim, bottom * bottom * widths[0])
        self.unflatten = nn.Unflatten(1, (widths[0], bottom, bottom))
        self.blocks = Sequential(*(GBlock(a, b, classes) for a, b in pairwise(widths)))
        self.bn = nn.BatchNorm2d(widths[-1])
        self.conv = nn.Conv2d(widths[-1], channels, 3, 1, 1)
        xavier_init((self.linear, self.conv), 1.0)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.blocks(self.unflatten(self.linear(z)), y)
        return torch.tanh(self.conv(F.relu(self.bn(h))))


class Discriminator(nn.Module):
    """outputs=1 gives (B,) logits; outputs=K gives (B, K) (MAD-GAN, MGAN). Any number of input
    channels (PacGAN stacks m images on the channel axis). With classes > 0, forward(x, y) adds
    the projection term (one output only)."""

    def __init__(self, channels: int, outputs: int = 1, size: int = 32, classes: int = 0):
        super().__init__()
        self.outputs = outputs
        self.classes = check_classes(classes)
        spec = layout(size)
        widths = spec.d_widths
        self.blocks = nn.Sequential(
            OptimizedDBlock(channels, widths[0]),
            *(DBlock(a, b, down) for (a, b), down in zip(pairwise(widths), spec.d_down, strict=True)),
        )
        self.linear = nn.Linear(widths[-1], outputs)
        xavier_init((self.linear,), 1.0)
        self.projection = projection(widths[-1], classes, outputs)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        logits = self.linear(h)
        if self.projection is not None:
            return logits.squeeze(1) + self.projection(h, y)
        return logits.squeeze(1) if self.outputs == 1 else logits
