"""A plugin file registering ``synthetic``: 16,384 random 28x28 squares made in memory, for machines
without MNIST (the GPU check): ``ganzoo --plugin benchmarks/synthetic_data.py train psg --dataset synthetic``."""

from ganzoo import hookimpl
from ganzoo.testing import tiny_dataset

COUNT = 16_384


@hookimpl
def ganzoo_register_datasets(register):
    register(tiny_dataset("synthetic", count=COUNT))
