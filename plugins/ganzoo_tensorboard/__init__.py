"""TensorBoard logging (``--tensorboard DIR``), for any strategy: an observer plugin, off unless asked for.

Needs the ``tensorboard`` package (``pip install 'ganzoo[tensorboard]'``). Logs, under DIR:
every ``log_every`` steps the D loss, each generator's loss, their mean and D's accuracy vs
chance; every epoch the epoch's record (and any ``fid*``/``kid*`` values an evaluation added) and
its fixed-z sample grid.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from ganzoo import hookimpl
from ganzoo.core.errors import GanzooError
from ganzoo.core.parts import TrainOption

_WRITERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
EVAL_PREFIXES = ("fid", "kid")


def check_folder(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GanzooError(f"--tensorboard needs a folder, got {value!r}")
    try:
        import tensorboard  # noqa: F401  (only to fail early, before the run starts)
    except ImportError:
        raise GanzooError("--tensorboard needs the tensorboard package: pip install 'ganzoo[tensorboard]'") from None
    path = Path(value).expanduser().resolve()  # absolute: a resume from another folder logs to the same place
    if path.exists() and not path.is_dir():
        raise GanzooError(f"--tensorboard {value}: it exists and is not a folder")
    return str(path)


@hookimpl
def ganzoo_register_train_options(register):
    register(TrainOption(
        "--tensorboard", "tensorboard",
        "Write TensorBoard logs (losses, D accuracy, sample grids, FID/KID when evaluated) to this folder. [default: off]",
        type=str, check=check_folder, resume=True,
    ))


def writer_of(trainer):
    return _WRITERS.get(trainer)


@hookimpl
def ganzoo_on_train_start(trainer):
    folder = trainer.config.options.get("tensorboard")
    if not folder:
        return
    from torch.utils.tensorboard import SummaryWriter

    # purge_step drops the events a killed run logged after its last checkpoint (steps > trainer.step),
    # so that curves do not fold back; the checkpoint's own step stays
    _WRITERS[trainer] = SummaryWriter(folder, purge_step=trainer.step + 1 if trainer.step else None)


def _scalars(writer, tag: str, metrics: dict, step: int) -> None:
    for key in ("d_loss", "g_loss_mean", "loss_gap", "d_accuracy", "chance"):
        if isinstance(metrics.get(key), float | int):
            writer.add_scalar(f"{tag}/{key}", metrics[key], step)
    for i, value in enumerate(metrics.get("g_loss", [])):
        writer.add_scalar(f"{tag}/g_loss_{i + 1}", value, step)
    for name, value in metrics.get("extras", {}).items():  # a policy's own scalars (PolicyOutput.extras)
        writer.add_scalar(f"{tag}/{name}", value, step)


@hookimpl
def ganzoo_on_step_end(trainer, step):
    writer = _WRITERS.get(trainer)
    if writer is not None and step % trainer.config.log_every == 0 and trainer.latest:
        _scalars(writer, "train", trainer.latest, step)


@hookimpl
def ganzoo_on_epoch_end(trainer, epoch, metrics):
    writer = _WRITERS.get(trainer)
    if writer is None:
        return
    step = metrics["step"]
    _scalars(writer, "epoch", metrics, step)
    for key, value in metrics.items():
        if key.startswith(EVAL_PREFIXES) and isinstance(value, float | int) and not isinstance(value, bool):
            writer.add_scalar(f"eval/{key}", value, step)
    from ganzoo.training import rundir

    grid = rundir.sample_path(trainer.run_dir, epoch)
    if grid.exists():
        import numpy as np
        from PIL import Image

        with Image.open(grid) as image:
            pixels = np.asarray(image.convert("RGB"))
        writer.add_image("samples", pixels, step, dataformats="HWC")
    writer.flush()


@hookimpl
def ganzoo_on_checkpoint_saved(trainer, path):
    writer = _WRITERS.get(trainer)
    if writer is not None:
        writer.flush()  # what a checkpoint has seen is on disk too


@hookimpl
def ganzoo_on_train_end(trainer, metrics):
    writer = _WRITERS.pop(trainer, None)
    if writer is not None:
        writer.close()
