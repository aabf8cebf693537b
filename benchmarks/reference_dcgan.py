"""A typical public PyTorch MNIST DCGAN script, kept as the reference ganzoo is timed against.

Written in the style of the widely copied PyTorch-GAN ``dcgan.py``: 32x32 images through a
DataLoader with PIL transforms (Resize, ToTensor, Normalize), an upsample+conv generator of
about 1.05M parameters, a strided-conv discriminator with dropout and a sigmoid, BCELoss, Adam
(2e-4, 0.5, 0.999), batch 64, and a print with ``.item()`` every iteration. Nothing here is
tuned: no malloc settings, no bf16, default threads.

    python benchmarks/reference_dcgan.py --iters 50
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

IMG_SIZE, LATENT_DIM, CHANNELS = 32, 100, 1


class PilMnist(Dataset):
    """What torchvision.datasets.MNIST.__getitem__ does: uint8 array -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        img = Image.fromarray(self.images[index, 0].numpy(), mode="L")
        return self.transform(img), 0


def mnist_loader(batch_size: int = 64, limit: int = 0) -> DataLoader:
    from ganzoo.core.data import default_root, load_data
    from ganzoo.core.host import load_host

    images = load_data(load_host().registry, "mnist", default_root()).images
    images = images[:limit] if limit else images
    transform = transforms.Compose([transforms.Resize(IMG_SIZE), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    return DataLoader(PilMnist(images, transform), batch_size=batch_size, shuffle=True)


def weights_init_normal(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm2d") != -1:
        torch.nn.init.normal_(m.weight.data, 1.0, 0.02)
        torch.nn.init.constant_(m.bias.data, 0.0)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.init_size = IMG_SIZE // 4
        self.l1 = nn.Sequential(nn.Linear(LATENT_DIM, 128 * self.init_size**2))
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(128),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, CHANNELS, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, z):
        out = self.l1(z)
        out = out.view(out.shape[0], 128, self.init_size, self.init_size)
        return self.conv_blocks(out)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()

        def discriminator_block(in_filters, out_filters, bn=True):
            block = [nn.Conv2d(in_filters, out_filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
            if bn:
                block.append(nn.BatchNorm2d(out_filters, 0.8))
            return block

        self.model = nn.Sequential(
            *discriminator_block(CHANNELS, 16, bn=False),
            *discriminator_block(16, 32),
            *discriminator_block(32, 64),
            *discriminator_block(64, 128),
        )
        ds_size = IMG_SIZE // 2**4
        self.adv_layer = nn.Sequential(nn.Linear(128 * ds_size**2, 1), nn.Sigmoid())

    def forward(self, img):
        out = self.model(img)
        out = out.view(out.shape[0], -1)
        return self.adv_layer(out)


class Reference:
    """The script's models, optimizers and one training iteration."""

    def __init__(self, seed: int = 0):
        torch.manual_seed(seed)
        self.generator, self.discriminator = Generator(), Discriminator()
        self.generator.apply(weights_init_normal)
        self.discriminator.apply(weights_init_normal)
        self.adversarial_loss = torch.nn.BCELoss()
        self.optimizer_G = torch.optim.Adam(self.generator.parameters(), lr=0.0002, betas=(0.5, 0.999))
        self.optimizer_D = torch.optim.Adam(self.discriminator.parameters(), lr=0.0002, betas=(0.5, 0.999))

    def iteration(self, imgs: torch.Tensor, verbose: bool = False) -> tuple[float, float]:
        valid = torch.ones(imgs.shape[0], 1)
        fake = torch.zeros(imgs.shape[0], 1)
        real_imgs = imgs.float()

        self.optimizer_G.zero_grad()
        z = torch.from_numpy(np.random.normal(0, 1, (imgs.shape[0], LATENT_DIM))).float()
        gen_imgs = self.generator(z)
        g_loss = self.adversarial_loss(self.discriminator(gen_imgs), valid)
        g_loss.backward()
        self.optimizer_G.step()

        self.optimizer_D.zero_grad()
        real_loss = self.adversarial_loss(self.discriminator(real_imgs), valid)
        fake_loss = self.adversarial_loss(self.discriminator(gen_imgs.detach()), fake)
        d_loss = (real_loss + fake_loss) / 2
        d_loss.backward()
        self.optimizer_D.step()
        d, g = d_loss.item(), g_loss.item()  # the per-iteration print every such script has
        if verbose:
            print(f"[D loss: {d}] [G loss: {g}]")
        return d, g


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=64)
    opt = parser.parse_args()
    dataloader = mnist_loader(opt.batch_size)
    reference = Reference()
    started = time.perf_counter()
    for i, (imgs, _) in enumerate(dataloader):
        if i == opt.iters:
            break
        reference.iteration(imgs, verbose=True)
    seconds = (time.perf_counter() - started) / opt.iters
    print(f"{seconds:.3f} s per iteration; an MNIST epoch ({len(dataloader)} iterations) ~ {seconds * len(dataloader):.0f} s")


if __name__ == "__main__":
    main()
