"""DCGAN-style networks for 28x28 images (MNIST-like), any number of channels.

G uses LeakyReLU(0.2) rather than DCGAN's ReLU: with ReLU, PSG on MNIST lost one of its two
generators to a constant black image within ~150 steps in every seed tried (0, 1, 5); with
LeakyReLU both stayed alive (docs/architectures.md). D has no batch norm, so a spectral-norm D
(SNGAN) and a plain D (PSG) differ only by spectral norm.

``classes=K`` makes both class-conditional (conditional.py): G's batch norms take a per-class
scale and shift (de Vries et al. 2017), D adds a projection of the flattened features
(Miyato & Koyama 2018).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganzoo.plugins.nets.conditional import Sequential, batch_norm, check_classes, projection, sequential_logits
from ganzoo.plugins.nets.init import dcgan_init


class Generator(nn.Module):
    """forward(z, y=None); y, the (B,) class labels, only with classes > 0."""

    def __init__(self, z_dim: int, channels: int, width: int = 64, classes: int = 0):
        super().__init__()
        self.classes = check_classes(classes)
        self.net = Sequential(
            nn.Linear(z_dim, 2 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * width, 7, 7)),
            batch_norm(2 * width, classes),
            nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # 14x14
            batch_norm(width, classes),
            nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),  # 28x28
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z, y)


class Discriminator(nn.Module):
    """outputs=1 gives (B,) logits; outputs=K gives (B, K) (MAD-GAN, MGAN). With classes > 0,
    forward(x, y) adds the projection term (one output only)."""

    def __init__(self, channels: int, width: int = 64, outputs: int = 1, classes: int = 0):
        super().__init__()
        self.outputs = outputs
        self.classes = check_classes(classes)
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),  # 14x14
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),  # 7x7
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, outputs),
        )
        dcgan_init(self)
        self.projection = projection(2 * width * 7 * 7, classes, outputs)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return sequential_logits(self.net, self.projection, self.outputs, x, y)
