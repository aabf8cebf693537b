"""How fast the command line answers: ``ganzoo --help`` and ``ganzoo train psg --help`` against
``python -c pass``, each a fresh process, in alternation, medians over the repeats (``make bench``'s
startup section). Neither help text imports torch (docs/performance.md)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

COMMANDS = {"python -c pass": [sys.executable, "-c", "pass"],
            "ganzoo --help": [sys.executable, "-m", "ganzoo", "--help"],
            "ganzoo train psg --help": [sys.executable, "-m", "ganzoo", "train", "psg", "--help"]}


def seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env={**os.environ, "COLUMNS": "100"})
    return time.perf_counter() - started


def startup_times(repeats: int) -> dict[str, float]:
    """Median wall seconds of each command; one warm-up round first (the page cache)."""
    for argv in COMMANDS.values():
        seconds(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(max(repeats, 3)):
        for name, argv in COMMANDS.items():
            times[name].append(seconds(argv))
    return {name: statistics.median(values) for name, values in times.items()}
