"""Helpers for testing ganzoo plugins: a fresh host, a plugin registered for one test, a tiny
in-memory dataset, a smoke run that trains a strategy a few steps on the CPU (and resumes it), and
the command line run in-process.

    from ganzoo.testing import registered, smoke_train

    def test_my_strategy_trains():
        metrics = smoke_train("my-strategy", steps=3)
        assert metrics["d_accuracy"] > 0
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import torch

from ganzoo import hookimpl
from ganzoo.core.compose import new_config
from ganzoo.core.host import Host, load_host, new_plugin_manager
from ganzoo.core.parts import Dataset, ImageData

TINY = "tiny"  # 1 x 28 x 28, for dcgan28
TINY32 = "tiny32"  # 3 x 32 x 32, for cnn32
TINY_COUNT = 128


def fresh_plugin_manager() -> pluggy.PluginManager:
    """A pluggy manager with ganzoo's hook specs and no plugins, for calling a plugin's hooks directly."""
    return new_plugin_manager()


def tiny_images(count: int = TINY_COUNT, channels: int = 1, size: int = 28, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic uint8 images (count, channels, size, size) and their labels: a bright square in
    one of four quadrants (the label), jittered, on a dark background. Small enough for any test,
    structured enough that a discriminator learns it in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (count,), generator=generator)
    images = torch.zeros(count, channels, size, size, dtype=torch.uint8)
    side = size // 3
    jitter = torch.randint(0, size // 2 - side + 1, (count, 2), generator=generator)
    for k in range(count):
        top = (labels[k] // 2) * (size // 2) + jitter[k, 0]
        left = (labels[k] % 2) * (size // 2) + jitter[k, 1]
        images[k, :, top : top + side, left : left + side] = 255
    return images, labels


def tiny_dataset(name: str = TINY, count: int = TINY_COUNT, channels: int = 1, size: int = 28,
                 default_arch: str = "dcgan28") -> Dataset:
    """A ``Dataset`` part serving ``tiny_images`` from memory (the test split has another seed)."""

    def load(argument: str | None, root: Path, split: str) -> ImageData:
        images, labels = tiny_images(count, channels, size, seed=0 if split == "train" else 1)
        return ImageData(images, labels, f"{name}: {count} in-memory {channels}x{size}x{size} test images ({split})")

    return Dataset(name, f"{count} in-memory {channels}x{size}x{size} squares, for tests", load, default_arch=default_arch)


class TinyData:
    """A plugin registering the ``tiny`` (1x28x28) and ``tiny32`` (3x32x32) datasets."""

    @hookimpl
    def ganzoo_register_datasets(self, register):
        register(tiny_dataset())
        register(tiny_dataset(TINY32, channels=3, size=32, default_arch="cnn32"))


def make_host(*plugins: object, entry_points: bool = True) -> Host:
    """A new host: the installed plugins (unless entry_points=False), the tiny datasets, and ``plugins``."""
    return load_host(entry_points=entry_points, plugins=[TinyData(), *plugins])


@contextlib.contextmanager
def registered(plugin: object, host: Host | None = None, name: str | None = None) -> Iterator[Host]:
    """Register ``plugin`` for the duration of a ``with`` block and yield the host that has it.

    Without ``host``, a new one from ``make_host()``. With one, the plugin is added to it and
    removed again on exit (its parts and commands too), so a shared host stays as it was. Pass the
    host on: ``CliRunner().invoke(cli, [...], obj=host)`` or ``smoke_train(..., host=host)``.
    """
    host = host if host is not None else make_host()
    name = host.add(plugin, name)
    try:
        yield host
    finally:
        host.remove(name)


def invoke(host: Host, *args: str) -> Any:
    """Run ``ganzoo ARGS...`` in this process with ``host`` (``make_host()``, or one from ``registered``);
    returns click's Result: ``exit_code``, ``stdout``, ``stderr``."""
    from click.testing import CliRunner

    from ganzoo.cli.main import cli

    return CliRunner().invoke(cli, list(args), obj=host)


def smoke_train(strategy: str, *, host: Host | None = None, steps: int = 3, run_dir: Path | None = None,
                **settings: Any) -> dict[str, Any]:
    """Train ``strategy`` for ``steps`` generator steps on the CPU and return its last metrics record.

    Defaults: the ``tiny`` dataset, batch 16, metrics read every step, 4 fixed-z samples;
    ``settings`` override any TrainConfig field (``n_gens=2``, ``policy="binary"``, ...) and
    ``options`` sets parts' options (``options={"pack": 4}``). The run goes through the same
    session as ``ganzoo train`` (``ganzoo.training.session``), so it refuses what the command line
    refuses: an unknown setting or option, an option of a part the run does not use, parts that
    cannot work together.
    The run goes to a temporary folder unless ``run_dir`` is given. A NaN or infinite loss or
    weight raises ``ganzoo.core.errors.NonFiniteError`` at the step it appears (metrics are read, and
    checked, every step), so that a broken loss fails the test that calls this.
    """
    from ganzoo.evaluation.in_training import training_evaluator  # torch-heavy; imported when a test trains
    from ganzoo.training.session import Session

    host = host if host is not None else make_host()
    dataset = {} if TINY in host.registry.names("dataset") else {"dataset": "mnist", "limit_data": TINY_COUNT}
    base = {"dataset": TINY, "batch_size": 16, "steps": steps, "device": "cpu", "log_every": 1, "sample_count": 4, **dataset}
    options = settings.pop("options", {})
    config = new_config(host.registry, strategy, None, {**base, **settings}, options)
    with contextlib.ExitStack() as stack:
        folder = Path(run_dir) if run_dir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory())) / "run"
        return Session.new(host, config, folder, make_evaluator=training_evaluator(host), command="ganzoo.testing.smoke_train").run()


def smoke_resume(run_dir: Path, *, host: Host | None = None, **changes: Any) -> dict[str, Any]:
    """Resume a run that ``smoke_train(..., run_dir=...)`` made, as ``ganzoo train --resume`` does;
    ``changes`` are what a resume may change (``steps=6``). Returns its last metrics record."""
    from ganzoo.evaluation.in_training import training_evaluator
    from ganzoo.training.session import Session

    host = host if host is not None else make_host()
    return Session.resume(host, Path(run_dir), changes=changes, make_evaluator=training_evaluator(host),
                          command="ganzoo.testing.smoke_resume").run()
