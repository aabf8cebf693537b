"""TensorBoard logging (``--tensorboard DIR``), for any strategy: an observer plugin, off unless asked for.

Needs the ``tensorboard`` package (``pip install 'ganzoo[tensorboard]'``). Logs, under DIR:
every ``log_every`` steps the D loss, each generator's loss, their mean and D's accuracy vs
chance; every epoch the epoch's record (and any ``fid*``/``kid*`` values an evaluation added) and
its fixed-z sample grid.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from pathlib import Path
from typing import Any

from ganzoo import hookimpl
from ganzoo.core.errors import GanzooError
from ganzoo.core.options import value_of
from ganzoo.core.parts import TrainOption

EVAL_PREFIXES = ("fid", "kid")


def check_folder(value: object) -> str:
    if not isinstance(value, str):
        raise GanzooError(f"--tensorboard needs a folder, got {value!r}")
    if not value.strip():
        return ""  # off
    try:
        import tensorboard  # noqa: F401  (only to fail early, before the run starts)
    except ImportError:
        raise GanzooError("--tensorboard needs the tensorboard package: pip install 'ganzoo[tensorboard]'") from None
    path = Path(value).expanduser().resolve()  # absolute: a resume from another folder logs to the same place
    if path.exists() and not path.is_dir():
        raise GanzooError(f"--tensorboard {value}: it exists and is not a folder")
    return str(path)


FOLDER = TrainOption(
    "--tensorboard", "tensorboard",
    "Write TensorBoard logs (losses, D accuracy, sample grids, FID/KID when evaluated) to this folder; empty: off.",
    type=str, check=check_folder, resume=True, default="",
)


@hookimpl
def ganzoo_register_train_options(register):
    register(FOLDER)


@hookimpl
def ganzoo_run_observers(trainer):
    return Logger() if value_of(trainer.config, FOLDER) else None


def _scalars(writer, tag: str, metrics: dict, step: int) -> None:
    for key in ("d_loss", "g_loss_mean", "loss_gap", "d_accuracy", "chance"):
        if isinstance(metrics.get(key), float | int):
            writer.add_scalar(f"{tag}/{key}", metrics[key], step)
    for i, value in enumerate(metrics.get("g_loss", [])):
        writer.add_scalar(f"{tag}/g_loss_{i + 1}", value, step)
    for name, value in metrics.get("extras", {}).items():  # a policy's own scalars (PolicyOutput.extras)
        writer.add_scalar(f"{tag}/{name}", value, step)


# -- the writer's background thread --------------------------------------------------------------
# SummaryWriter writes events from a thread of its own (tensorboard's _AsyncWriterThread). When a
# write fails (a full disk), that thread keeps the exception, which the next add_*/flush() raises in
# the run's thread (and ganzoo reports in one line), and then re-raises it, so that Python's
# threading.excepthook would also print a traceback. The writer threads of this plugin are kept
# here, and their exceptions are not printed: they reach the user through the run's thread.

_quiet_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_opening: list[set[threading.Thread]] = []  # the threads there were before each SummaryWriter being made now
_inside = threading.local()


def _quiet(thread: threading.Thread) -> bool:
    if thread in _quiet_threads:
        return True
    # one that fails while its SummaryWriter is being made (a disk full from the start), before it is known here
    return type(thread).__module__.startswith("tensorboard.") and any(thread not in before for before in list(_opening))


def _quiet_excepthook(args: Any) -> None:
    if args.thread is not None and _quiet(args.thread):
        return
    previous = _quiet_excepthook.previous  # type: ignore[attr-defined]
    if getattr(_inside, "active", False):  # a hook installed after this one that calls this one back
        previous = threading.__excepthook__
    _inside.active = True
    try:
        previous(args)
    finally:
        _inside.active = False


def _open_quietly(folder: str, purge_step: int | None) -> Any:
    """A SummaryWriter on folder whose writer threads fail without a traceback on stderr."""
    from torch.utils.tensorboard import SummaryWriter

    if threading.excepthook is not _quiet_excepthook:  # (pytest, for one, swaps the hook per test)
        _quiet_excepthook.previous = threading.excepthook  # type: ignore[attr-defined]
        threading.excepthook = _quiet_excepthook
    before = set(threading.enumerate())
    _opening.append(before)
    try:
        return SummaryWriter(folder, purge_step=purge_step)
    finally:
        for thread in set(threading.enumerate()) - before:
            if type(thread).__module__.startswith("tensorboard."):  # its _AsyncWriterThread
                _quiet_threads.add(thread)
        _opening.remove(before)


def _close(writer: Any) -> None:
    """Flush and close writer; a write that failed in its thread is raised here (after closing), not lost."""
    try:
        writer.close()  # flushes first, raising a failure of the writer thread before it closes anything
    except BaseException:
        for file_writer in list((getattr(writer, "all_writers", None) or {}).values()):
            with contextlib.suppress(Exception):
                file_writer.close()  # stops the (failed) thread and lets go of the file
        raise


class Logger:
    """One run's TensorBoard writer: opened when the run starts, closed when it ends."""

    def __init__(self) -> None:
        self.writer = None

    def ganzoo_on_train_start(self, trainer):
        # purge_step drops the events a killed run logged after its last checkpoint (steps > trainer.step),
        # so that curves do not fold back; the checkpoint's own step stays
        folder = value_of(trainer.config, FOLDER)
        self.writer = _open_quietly(folder, trainer.step + 1 if trainer.step else None)

    def ganzoo_on_step_end(self, trainer, step):
        if self.writer is not None and step % trainer.config.log_every == 0 and trainer.latest:
            _scalars(self.writer, "train", trainer.latest, step)

    def ganzoo_on_epoch_end(self, trainer, epoch, metrics):
        if self.writer is None:
            return
        step = metrics["step"]
        _scalars(self.writer, "epoch", metrics, step)
        for key, value in metrics.items():
            if key.startswith(EVAL_PREFIXES) and isinstance(value, float | int) and not isinstance(value, bool):
                self.writer.add_scalar(f"eval/{key}", value, step)
        grid = trainer.samples_path(epoch)
        if grid.exists():
            import numpy as np
            from PIL import Image

            with Image.open(grid) as image:
                pixels = np.asarray(image.convert("RGB"))
            self.writer.add_image("samples", pixels, step, dataformats="HWC")
        self.writer.flush()

    def ganzoo_on_checkpoint_saved(self, trainer, path):
        if self.writer is not None:
            self.writer.flush()  # what a checkpoint has seen is on disk too

    def ganzoo_on_train_end(self, trainer, metrics):
        self.close()

    def close(self):
        """The run's session ended, however it ended (a signal, an error): the events go to disk."""
        writer, self.writer = self.writer, None
        if writer is not None:
            _close(writer)
