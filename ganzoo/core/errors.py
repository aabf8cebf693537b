"""Errors ganzoo raises. The CLI turns every GanzooError into one line and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_SUGGESTED = 100  # names longer than this get no "did you mean" (difflib's work grows with the square of the length)


def suggest(name: str, known: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Known names close to ``name``, for a "did you mean"; none for a name too long to be a typo."""
    return difflib.get_close_matches(name, list(known), n=n, cutoff=cutoff) if len(name) <= MAX_SUGGESTED else []


def shown(name: str, limit: int = 80) -> str:
    """A name for an error line: its repr, cut short when it is long."""
    return repr(name) if len(name) <= limit else f"{name[:limit]!r}... ({len(name):,} characters)"


def one_line(message: object) -> str:
    """A message on one line: errors are reported as one line each."""
    return " / ".join(line.strip() for line in str(message).splitlines() if line.strip())


class GanzooError(Exception):
    """Base of every error a user can cause: bad input, missing data, broken files."""


class UnknownNameError(GanzooError):
    """A name that no plugin registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = suggest(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known) if known else "none registered"
        super().__init__(f"unknown {kind} {shown(name)}{hint} (known: {listing})")
        self.kind, self.name, self.suggestions = kind, name, close


class DuplicateNameError(GanzooError):
    """Two plugins registered the same name for the same kind of part."""


class NonFiniteError(GanzooError):
    """A loss or a weight became NaN or infinite."""


class StopRequested(GanzooError):
    """SIGINT or SIGTERM asked the run to stop; the trainer saved a checkpoint first."""

    def __init__(self, signal_number: int, step: int):
        super().__init__(f"stopped by signal {signal_number} at step {step}")
        self.signal_number, self.step = signal_number, step


class PluginError(GanzooError):
    """A plugin raised while the trainer called one of its observer hooks."""


class PluginMissingError(GanzooError):
    """A checkpoint or config needs a part whose plugin is not installed."""


class CheckpointError(GanzooError):
    """A checkpoint file that cannot be read: truncated, corrupt, foreign or pickled."""


class DataError(GanzooError):
    """A dataset that cannot be found, verified or read."""
