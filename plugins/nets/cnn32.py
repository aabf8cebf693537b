"""The "standard CNN" of Miyato et al. 2018 (SNGAN), Table 3, for 32x32 images (M_g = 4)."""

from __future__ import annotations

from torch import Tensor, nn

from ganzoo.plugins.nets.init import dcgan_init


class Generator(nn.Module):
    def __init__(self, z_dim: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, 4 * 4 * 512),
            nn.Unflatten(1, (512, 4, 4)),
            nn.BatchNorm2d(512),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(512, 256, 4, 2, 1),  # 8x8
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(256, 128, 4, 2, 1),  # 16x16
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(128, 64, 4, 2, 1),  # 32x32
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, channels, 3, 1, 1),
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """outputs=1 gives (B,) logits; outputs=K gives (B, K) (MAD-GAN, MGAN)."""

    def __init__(self, channels: int, outputs: int = 1):
        super().__init__()
        self.outputs = outputs

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

    def forward(self, x: Tensor) -> Tensor:
        logits = self.net(x)
        return logits.squeeze(1) if self.outputs == 1 else logits
