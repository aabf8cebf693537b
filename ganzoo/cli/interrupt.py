"""Ctrl-C while the command line imports: nothing is written yet, so it ends at once, quietly."""

import contextlib
import os
import signal
import threading
from collections.abc import Iterator


def _interrupted_while_importing(number, frame) -> None:
    # Nothing has been written yet, so there is nothing to save: end at once. (A KeyboardInterrupt
    # raised inside a library's import can be swallowed by its own bare except, or print a traceback.)
    os.write(2, b"interrupted\n")
    os._exit(130)


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """While the command line imports (torch takes seconds), a Ctrl-C ends it at once, quietly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _interrupted_while_importing)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
