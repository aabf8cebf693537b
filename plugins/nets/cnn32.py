"""The "standard CNN" of Miyato et al. 2018 (SNGAN), Table 3, for 32x32 images (M_g = 4).

``classes=K`` makes both class-conditional (conditional.py): G's batch norms take a per-class
scale and shift (de Vries et al. 2017), D adds a projection of the flattened 4x4x512 features
(Miyato & Koyama 2018).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganzoo.plugins.nets.conditional import Sequential, batch_norm, check_classes, projection, sequential_logits
from ganzoo.plugins.nets.init import dcgan_init


class Generator(nn.Module):
    """forward(z, y=None); y, the (B,) class labels, only with classes > 0."""

    def __init__(self, z_dim: int, channels: int, classes: int = 0):
        super().__init__()
        self.classes = check_classes(classes)
        self.net = Sequential(
            nn.Linear(z_dim, 4 * 4 * 512),
            nn.Unflatten(1, (512, 4, 4)),
            batch_norm(512, classes),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(512, 256, 4, 2, 1),  # 8x8
            batch_norm(256, classes),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(256, 128, 4, 2, 1),  # 16x16
            batch_norm(128, classes),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(128, 64, 4, 2, 1),  # 32x32
            batch_norm(64, classes),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, channels, 3, 1, 1),
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

        def act() -> nn.Module:
            return nn.LeakyReLU(0.1, inplace=True)

        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 3, 1, 1), act(),
            nn.Conv2d(64, 64, 4, 2, 1), act(),  # 16x16
            nn.Conv2d(64, 128, 3, 1, 1), act(),
            nn.Conv2d(128, 128, 4, 2, 1), act(),  # 8x8
            nn.Conv2d(128, 256, 3, 1, 1), act(),
            nn.Conv2d(256, 256, 4, 2, 1), act(),  # 4x4
            nn.Conv2d(256, 512, 3, 1, 1), act(),
            nn.Flatten(),
            nn.Linear(512 * 4 * 4, outputs),
        )
        dcgan_init(self)
        self.projection = projection(512 * 4 * 4, classes, outputs)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return sequential_logits(self.net, self.projection, self.outputs, x, y)
