"""What the benchmarks say about the machine they ran on: its CPU and GPU, whether something else was
busy before and while they ran (timings taken next to other work are worthless)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch


def machine_line() -> str:
    from ganzoo.training.precision import cpu_has_native_bf16, cpu_name

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"machine: {cpu_name()}, {os.cpu_count()} cores, native bf16: {cpu_has_native_bf16()}, {gpu}; "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def warn_if_busy() -> None:
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"WARNING: load average {load:.1f} on {os.cpu_count()} cores: something else is running; ratios may be off",
              flush=True)


def cpu_use() -> tuple[float, float, float]:
    """(wall seconds, CPU seconds all processes used, CPU seconds this process and its children used)."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7)) / ticks  # user nice system irq softirq steal
    own = os.times()
    return time.monotonic(), busy, own.user + own.system + own.children_user + own.children_system


def other_processes_share(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """The share of the machine's CPU time that other processes took between two cpu_use() readings."""
    wall = after[0] - before[0]
    others = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, others) / max(wall * (os.cpu_count() or 1), 1e-9)
