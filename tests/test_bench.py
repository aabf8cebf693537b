"""A seconds-long smoke run of the benchmark suite (benchmarks are not tests: no speed is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # every section of the benchmark, shortened: about 35 s on 2 cores
def test_the_benchmark_script_runs_every_section_and_writes_its_table(tmp_path):
    table = tmp_path / "table.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--markdown", str(table)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for section in ("overhead", "data", "generators", "switches", "throughput", "memory", "reference"):
        assert f"[{section}]" in done.stdout
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ") and not line.startswith("| section")]
    sections = {row.split(" | ")[0].strip("| ") for row in rows}
    assert sections == {"overhead", "data", "generators", "switches", "throughput", "memory", "reference"}

    # The numbers are measurements, not placeholders: positive, and in sane ranges.
    ratios = [float(m) for m in re.findall(r"step, ganzoo / bare loop, amp \w+ .*?\| ([\d.]+) \(target", table.read_text())]
    assert len(ratios) == 2 and all(0.3 < r < 3 for r in ratios)
    share = float(re.search(r"as a share of its step .*?\| ([\d.]+)%", table.read_text()).group(1))
    assert 0 < share < 100
    flops = [float(m) for m in re.findall(r"PSG N=\d: ([\d.]+) GFLOP/step", table.read_text())]
    assert len(flops) == 2 and flops[1] > flops[0] > 0  # a second generator is more work
    assert re.search(r"public script / ganzoo psg n_gens=2 \| \d+ s vs \d+ s \| [\d.]+x", table.read_text())
