"""A run's training time: what ``--minutes`` and ``--eval-every 60s`` count.

Training time is the wall time of the training loop less the time spent evaluating, writing sample
grids and checkpointing (``paused``), so a budget buys the same training whatever is measured on
the way. It is saved in the checkpoint, and a resumed run continues its clock. It is read at
logging points (and epoch ends), where the trainer syncs with the device anyway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class TrainClock:
    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds  # training time up to the last read
        self._since: float | None = None  # when the current stretch of training began; None: stopped

    def start(self) -> None:
        self._since = time.perf_counter()

    def stop(self) -> None:
        self.read()
        self._since = None

    def read(self) -> float:
        """Training time so far (adds the running stretch)."""
        if self._since is not None:
            now = time.perf_counter()
            self.seconds += now - self._since
            self._since = now
        return self.seconds

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside does not count as training."""
        running = self._since is not None
        self.stop()
        try:
            yield
        finally:
            if running:
                self.start()


def crossed(before: float, now: float, every: float) -> bool:
    """Whether a multiple of ``every`` lies in (before, now]: an interval's point was passed."""
    return every > 0 and int(now // every) > int(before // every)
