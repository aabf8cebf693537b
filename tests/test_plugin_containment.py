"""A plugin cannot end ganzoo silently: sys.exit at import or in a hook, a hookimpl that does not fit
its hook, and Ctrl-C while the command line imports all end in one line (issue 14, family 5-6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

TINY = ["--limit-data", "64", "--batch-size", "16", "--device", "cpu"]


def ganzoo(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, timeout=300, env=env, **kwargs)


def plugin(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_sys_exit_in_a_hook_stops_the_run_with_a_checkpoint_and_one_line_naming_the_plugin(tmp_path):
    quitter = plugin(tmp_path, "quitter", """
        import sys
        from ganzoo import hookimpl

        @hookimpl
        def ganzoo_on_step_end(trainer, step):
            if step == 3:
                sys.exit(0)
    """)
    run_dir = tmp_path / "run"
    result = ganzoo("--plugin", str(quitter), "train", "psg", *TINY, "--steps", "6", "--out", str(run_dir), "--quiet")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: plugin 'quitter' raised in ganzoo_on_step_end at step 3: SystemExit: 0")
    assert "checkpoint saved at step 3" in lines[0] and "--resume" in lines[0]
    resumed = ganzoo("train", "psg", "--resume", str(run_dir), "--steps", "6", "--json")  # without the plugin
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["step"] == 6


def test_sys_exit_at_import_is_a_one_line_error_not_a_silent_exit(tmp_path):
    leaver = plugin(tmp_path, "leaver", "import sys\nsys.exit(3)\n")
    result = ganzoo("--plugin", str(leaver), "list")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == f"error: cannot load plugin file {leaver}: SystemExit: 3\n"


def test_a_hookimpl_with_an_argument_its_hook_does_not_have_is_one_line(tmp_path):
    odd = plugin(tmp_path, "odd", """
        from ganzoo import hookimpl

        @hookimpl
        def ganzoo_on_step_end(trainer, step, extra):
            pass
    """)
    result = ganzoo("--plugin", str(odd), "list")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: plugin 'odd' does not fit ganzoo's hooks:") and "extra" in result.stderr


def test_ctrl_c_while_the_command_line_imports_ends_quietly(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "ganzoo", "train", "psg", "--steps", "1", "--limit-data", "64",
                                "--out", str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # Wait until torch's libraries are mapped: the command is inside the imports a training needs (torch
    # alone takes over a second), past the point where it took over SIGINT, however loaded the machine is.
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None:
        maps = Path(f"/proc/{process.pid}/maps")
        if maps.exists() and "libtorch" in maps.read_text(errors="replace"):
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130 and err == "interrupted\n", err
    assert not (tmp_path / "run").exists()  # nothing was written
