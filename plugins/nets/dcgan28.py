"""DCGAN-style networks for 28x28 images (MNIST-like), any number of channels.

G uses LeakyReLU(0.2) rather than DCGAN's ReLU: with ReLU, PSG on MNIST lost one of its two
generators to a constant black image within ~150 steps in every seed tried (0, 1, 5); with
LeakyReLU both stayed alive (docs/architectures.md). D has no batch norm, so a spectral-norm D
(SNGAN) and a plain D (PSG) differ only by spectral norm.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganzoo.plugins.nets.init import dcgan_init


class Generator(nn.Module):
    def __init__(self, z_dim: int, channels: int, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, 2 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # 14x14
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),  # 28x28
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """outputs=1 gives (B,) logits; outputs=K gives (B, K) (MAD-GAN, MGAN)."""

    def __init__(self, channels: int, width: int = 64, outputs: int = 1):
        super().__init__()
        self.outputs = outputs
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),  # 14x14
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),  # 7x7
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, outputs),
        )
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        logits = self.net(x)
        return logits.squeeze(1) if self.outputs == 1 else logits
