"""DCGAN for 64x64 images (Radford et al. 2016, Figure 1), any number of channels.

As published: G projects z to 4x4x512 and doubles the size four times with transposed convs
(BN + ReLU, tanh at the end); D halves it four times with strided convs (LeakyReLU 0.2, BN on all
but the first) and a 4x4 conv gives the logits. Convs followed by BN have no bias (BN's shift
takes its place). Unlike dcgan28's, this D has batch norm, so its score of an image depends on the
rest of the batch, as in the paper.

``classes=K`` makes both class-conditional (conditional.py): G's batch norms take a per-class
scale and shift (de Vries et al. 2017); D adds a projection of the flattened 4x4x512 input of its
last conv to that conv's output (Miyato & Koyama 2018). D's own batch norms stay unconditional.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganzoo.plugins.nets.conditional import Sequential, batch_norm, check_classes, projection
from ganzoo.plugins.nets.init import dcgan_init


def up(in_channels: int, out_channels: int, classes: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False), batch_norm(out_channels, classes),
            nn.ReLU(inplace=True)]


def down(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2, inplace=True)]


class Generator(nn.Module):
    """forward(z, y=None); y, the (B,) class labels, only with classes > 0."""

    def __init__(self, z_dim: int, channels: int, classes: int = 0):
        super().__init__()
        self.classes = check_classes(classes)
        self.net = Sequential(
            nn.Unflatten(1, (z_dim, 1, 1)),
            nn.ConvTranspose2d(z_dim, 512, 4, 1, 0, bias=False),  # 4x4
            batch_norm(512, classes),
            nn.ReLU(inplace=True),
            *up(512, 256, classes),  # 8x8
            *up(256, 128, classes),  # 16x16
            *up(128, 64, classes),  # 32x32
            nn.ConvTranspose2d(64, channels, 4, 2, 1),  # 64x64
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z, y)


class Discriminator(nn.Module):
    """outputs=1 gives (B,) logits; outputs=K gives (B, K) (MAD-GAN, MGAN). With classes > 0,
    forward(x, y) adds the projection term (one output only)."""

    def __init__(self, channels: int, outputs: int = 1, classes: int = 0):
        super().__init__()
        self.outputs = outputs
        self.classes = check_classes(classes)
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 4, 2, 1),  # 32x32
            nn.LeakyReLU(0.2, inplace=True),
            *down(64, 128),  # 16x16
            *down(128, 256),  # 8x8
            *down(256, 512),  # 4x4
            nn.Conv2d(512, outputs, 4, 1, 0),  # 1x1
            nn.Flatten(),
        )
        dcgan_init(self)
        self.projection = projection(512 * 4 * 4, classes, outputs)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if self.projection is None:
            logits = self.net(x)
            return logits.squeeze(1) if self.outputs == 1 else logits
        h = self.net[:-2](x)  # 512 x 4 x 4, the last conv's input
        return self.net[-2:](h).squeeze(1) + self.projection(h.flatten(1), y)
