"""``ganzoo compare --launcher local|slurm|ray`` (``ganzoo.compare.launch``).

The fast checks need no cluster: the refusals without an extra, the options of another launcher,
--slurm-time and --slurm-opt, the shared-storage checks and a task's check that it sees its folder.

The slow ones run real clusters on this machine: a single-node Slurm (tests/cluster/slurm.sh, its
daemons as root; skipped with the script's reason where it cannot run) and a Ray head started with
``ray start``. Each comparison runs as a real ``ganzoo compare`` subprocess and must write the same
summary.json numbers, bit for bit, as the local launcher with as many threads per run: where a run
trains cannot change what it computes, even when its job is requeued, cancelled or its worker killed.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganzoo.cli.main import cli
from ganzoo.compare.jobs import jobs_of, parse_spec
from ganzoo.compare.launch import STATE, LaunchOptions, TaskFunction, check_shared, node_local, write_state
from ganzoo.compare.runner import JobFunction
from ganzoo.compare.slurm import slurm_opts, slurm_time
from ganzoo.core.errors import GanzooError

ROOT = Path(__file__).resolve().parent.parent
SLURM_SH = ROOT / "tests" / "cluster" / "slurm.sh"
TIMEOUT = 600  # seconds for one comparison; each takes well under a minute here
CORES = os.cpu_count() or 1
# --jobs so that each local run has one thread (cores // jobs), as a Slurm job of --slurm-cpus 1 or
# a Ray task of --ray-cpus 1 has: the same threads, so the same numbers.
ONE_THREAD_EACH = ["--jobs", str(min(CORES, 64))]

# A comparison long enough to interrupt mid-training (an epoch of 6000 images takes about 10 s on one thread).
DETERMINISTIC = ["sngan --deterministic", "--seeds", "2", "--epochs", "2", "--limit-data", "6000", "--eval-n", "200", "--final-n", "200"]
# The done-when comparison.
DONE_WHEN = ["sngan", "psg --n-gens 2", "--seeds", "2", "--epochs", "1", "--limit-data", "512", "--eval-n", "200", "--final-n", "200"]


# ---------------------------------------------------------------------------------------------
# helpers


def ganzoo(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """``ganzoo ARGS...`` as a real subprocess."""
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout, check=False)


class Driver:
    """A ``ganzoo compare`` running in the background (its output in files, so no pipe fills up);
    killed by its pid if a test ends while it still runs."""

    def __init__(self, args: list[str], folder: Path, env: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = folder / "driver.stdout", folder / "driver.stderr"
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            # SIGINT at its default, so that Python turns it into a KeyboardInterrupt as in a terminal (a
            # background job of a non-interactive shell would otherwise inherit it ignored)
            self.process = subprocess.Popen([sys.executable, "-m", "ganzoo", *args], stdout=stdout, stderr=stderr, env=env,
                                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def wait(self, timeout: float = TIMEOUT) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_for(condition, what: str, driver: Driver | None = None, timeout: float = 300, every: float = 0.2):
    """Poll until condition() is true; fail naming what never happened (and the driver's output if it ended)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        if driver is not None and driver.process.poll() is not None:
            pytest.fail(f"compare ended (exit {driver.process.returncode}) before {what}:\n{driver.stderr[-3000:]}")
        time.sleep(every)
    pytest.fail(f"{what} did not happen within {timeout} s" + (f":\n{driver.stderr[-3000:]}" if driver else ""))


def comparable(out: Path) -> dict:
    """OUT/summary.json without what may differ between launchers: each run's wall-clock minutes and
    its sample's path. Every other value must be the same, numbers bit for bit."""
    summary = json.loads((out / "summary.json").read_text())
    for runs in summary["runs"].values():
        for run in runs:
            run.pop("wall_minutes")
            run.pop("sample")
    return summary


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def commands(log: Path) -> list[str]:
    """The lines of a job's log that matter here: the commands it ran and the training's stops."""
    return [line for line in log.read_text().splitlines() if line.startswith("$ ") or line.startswith("stopped by signal")]


def stopped_then_resumed(log: Path, signal_number: int = 15) -> bool:
    """The training got the signal (SIGTERM), checkpointed, and a later training resumed from that checkpoint."""
    lines = commands(log)
    stops = [i for i, line in enumerate(lines) if line.startswith(f"stopped by signal {signal_number}")]
    resumes = [i for i, line in enumerate(lines) if line.startswith("$ ") and " train " in line and "--resume" in line]
    return bool(stops and resumes and stops[0] < resumes[-1])


def epochs_of(run_dir: Path) -> list[int]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["epoch"] for r in records if not r.get("partial")]


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def processes_mentioning(text: str) -> list[int]:
    return [pid for pid in pids() if pid != os.getpid() and any(text in arg for arg in cmdline(pid))]


def with_descendants(roots: list[int]) -> list[int]:
    parents = {}
    for pid in pids():
        try:
            parents[pid] = parent_of(pid)
        except (OSError, ValueError, IndexError):
            pass
    found, todo = set(roots), list(roots)
    while todo:
        pid = todo.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found.add(child)
                todo.append(child)
    return sorted(found)


def end_processes(targets: list[int], grace: float = 10.0) -> None:
    """SIGTERM each of these processes (by pid), then SIGKILL whichever is left after grace seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace
        while time.time() < deadline and any(Path(f"/proc/{pid}").exists() and not zombie(pid) for pid in targets):
            time.sleep(0.2)


def zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# fast checks: no cluster


def refused_without(module: str, launcher: str, out: Path) -> subprocess.CompletedProcess:
    """``ganzoo compare ... --launcher LAUNCHER`` in a real process in which MODULE cannot be imported
    (``sys.modules[name] = None`` makes every import of it raise ImportError), as without the extra."""
    code = (f"import sys; sys.modules[{module!r}] = None; from ganzoo.cli import main; "
            f"sys.argv = ['ganzoo', 'compare', 'sngan', '--seeds', '1', '--epochs', '1', '--limit-data', '128', "
            f"'--launcher', {launcher!r}, '--out', {str(out)!r}]; main()")
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.mark.parametrize(("module", "launcher", "extra", "name"), [("ray", "ray", "ray", "Ray"), ("submitit", "slurm", "slurm", "submitit")])
def test_a_launcher_without_its_extra_says_how_to_install_it_and_writes_nothing(tmp_path, module, launcher, extra, name):
    out = tmp_path / "cmp"
    done = refused_without(module, launcher, out)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: --launcher {launcher} needs {name}, which is not installed: pip install 'ganzoo[{extra}]'\n"
    assert done.stdout == ""
    assert not out.exists()  # refused before the folder is made


@pytest.mark.parametrize(("args", "message"), [
    (["--launcher", "ray", "--slurm-partition", "x"], "--slurm-partition is an option of --launcher slurm, not of --launcher ray"),
    (["--launcher", "slurm", "--ray-cpus", "1"], "--ray-cpus is an option of --launcher ray, not of --launcher slurm"),
    (["--ray-address", "auto"], "--ray-address is an option of --launcher ray, not of --launcher local"),
    (["--slurm-opt", "qos=high"], "--slurm-opt is an option of --launcher slurm, not of --launcher local"),
    (["--launcher", "slurm", "--slurm-time", "1:2"], "--slurm-time must be minutes, H:MM:SS or D-HH:MM:SS, got '1:2'"),
    (["--launcher", "slurm", "--slurm-opt", "noequals"], "--slurm-opt takes KEY=VALUE with KEY an sbatch option (e.g. qos=high), got 'noequals'"),
])
def test_launcher_options_are_checked_before_anything_runs(tmp_path, args, message):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(cli, ["compare", "sngan", "--out", str(out), "--epochs", "1", "--limit-data", "128", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {message}\n"
    assert not out.exists()


@pytest.mark.parametrize(("text", "minutes"), [
    ("90", 90), ("1:30:00", 90), ("1-00:00:00", 1440), ("0:00:30", 1), ("2-3", 51 * 60), (" 45 ", 45), ("0:01:00", 1),
    ("1-0:0:1", 1441),
])
def test_slurm_time_reads_slurm_s_forms_in_whole_minutes(text, minutes):
    assert slurm_time(text) == minutes


@pytest.mark.parametrize("text", ["", "abc", "1:2", "0", "0:00:00", "-5", "1.5", "1-", "1:2:3:4", "x-1"])
def test_slurm_time_refuses_what_is_not_a_slurm_time(text):
    with pytest.raises(GanzooError, match="--slurm-time"):
        slurm_time(text)


def test_slurm_opts_are_sbatch_long_options():
    assert slurm_opts(()) == {}
    assert slurm_opts(("qos=high", "constraint=a100")) == {"qos": "high", "constraint": "a100"}
    # dashes of the option's name become submitit's underscores; a value may hold "=" and be empty
    assert slurm_opts(("--mail-type=END", "comment=a=b", "reservation=")) == {"mail_type": "END", "comment": "a=b", "reservation": ""}
    for bad in ("noequals", "=x", "Qos=high", "1x=2", "q o s=1"):
        with pytest.raises(GanzooError, match=re.escape(f"got {bad!r}")):
            slurm_opts((bad,))


def test_threads_of_a_job_are_its_cluster_cpus():
    assert LaunchOptions(launcher="slurm", slurm_cpus=3, ray_cpus=5).threads == 3
    assert LaunchOptions(launcher="ray", slurm_cpus=3, ray_cpus=5).threads == 5
    assert LaunchOptions(launcher="ray", ray_cpus=0.5).threads == 1


def test_a_folder_under_tmp_is_refused_when_the_cluster_has_other_nodes():
    out = Path("/tmp") / "ganzoo-cmp-never-made"
    with pytest.raises(GanzooError, match=r"--out /tmp/ganzoo-cmp-never-made is under /tmp, which the Slurm nodes \(othernode\) cannot see: "
                                          r"put it on storage every node shares"):
        check_shared(out, ["othernode"], "Slurm")
    with pytest.raises(GanzooError, match=r"Ray nodes \(a, b, c, \.\.\.\)"):
        check_shared(out, ["a", "b", "c", "d"], "Ray")
    with pytest.raises(GanzooError, match="under /dev/shm"):
        check_shared(Path("/dev/shm/cmp"), ["othernode"], "Slurm")


def test_a_local_folder_passes_when_every_node_is_this_machine(tmp_path):
    check_shared(tmp_path, [socket.gethostname()], "Slurm")
    check_shared(tmp_path, [socket.gethostname().split(".")[0], "127.0.0.1"], "Slurm")
    check_shared(tmp_path, ["10.9.8.7"], "Ray", {"10.9.8.7"})  # the address Ray knows this machine by
    check_shared(tmp_path, [], "Ray")


def test_a_folder_that_may_be_shared_passes():
    out = Path("/shared-storage/never-made/cmp")  # not under /tmp and the like; on the root's file system
    assert node_local(out) == ""
    check_shared(out, ["othernode", "node2"], "Slurm")


class Probe(TaskFunction):
    """A task that only says it ran (and with which children), for the visibility check."""

    def __init__(self, out: Path, token: str) -> None:
        self.out, self.token = out, token

    def work(self, children) -> str:
        return f"ran with {type(children).__name__}"


def test_a_task_runs_only_where_it_sees_the_folder_its_launcher_wrote(tmp_path):
    from ganzoo.compare.children import Children

    out = tmp_path / "cmp"
    out.mkdir()
    write_state(out, {"token": "here"})
    assert Probe(out, "here")() == "ran with Children"  # on a cluster (no children passed): checked, seen
    elsewhere = f"{out} is not visible on node {socket.gethostname()} (no {STATE} of this launch there): " \
                f"the output folder must be on storage every node shares"
    assert Probe(out, "other")() == elsewhere  # a folder of the same name, of another launch
    assert Probe(tmp_path / "missing", "here")() == elsewhere.replace(str(out), str(tmp_path / "missing"))
    assert Probe(out, "other")(Children()) == "ran with Children"  # the local launcher: no check needed
    probe = Probe(out, "here")
    probe()
    assert pickle.loads(pickle.dumps(probe)).token == "here"  # its children stay out of the pickle


def test_a_comparison_job_on_a_node_without_its_folder_fails_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "cmp"
    out.mkdir()
    write_state(out, {"token": "aaaa"})
    job = jobs_of([parse_spec("sngan")], 1, out)[0]
    settings = {"specs": ["sngan"], "seeds": 1, "epochs": 1, "minutes": None, "dataset": "mnist", "limit_data": 128, "eval_every": "1",
                "eval_n": 100, "final_n": 100, "features": "lenet", "until_converged": False}
    error = JobFunction(job, settings, out / "logs", 1, out, "bbbb")()
    assert error == (f"{out} is not visible on node {socket.gethostname()} (no launch.json of this launch there): "
                     f"the output folder must be on storage every node shares")
    assert sorted(p.name for p in out.iterdir()) == [STATE]  # no log, no run folder, no lock


# ---------------------------------------------------------------------------------------------
# clusters


@pytest.fixture(scope="module")
def slurm_env():
    """A single-node Slurm on this machine for the module (tests/cluster/slurm.sh); yields the
    environment of its clients (SLURM_CONF), which os.environ never gets."""
    pytest.importorskip("submitit", reason="--launcher slurm needs submitit: pip install 'ganzoo[slurm]'")
    folder = Path(tempfile.mkdtemp(prefix="slurm", dir="/tmp"))  # short: munge's socket is in it
    started = subprocess.run(["bash", str(SLURM_SH), "start", str(folder)], capture_output=True, text=True, timeout=120, check=False)
    if started.returncode == 3:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(started.stderr.strip() or "tests/cluster/slurm.sh cannot run here")
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    try:
        assert started.returncode == 0, f"tests/cluster/slurm.sh start failed:\n{started.stdout}{started.stderr}"
        yield env
    finally:
        # every job of this (private) cluster ends before its daemons stop: no training left behind
        queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=env, check=False).stdout.split()
        if queued:
            subprocess.run(["scancel", *queued], capture_output=True, env=env, check=False)
            deadline = time.time() + 60
            while time.time() < deadline and subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=env,
                                                            check=False).stdout.split():
                time.sleep(0.5)
        subprocess.run(["bash", str(SLURM_SH), "stop", str(folder)], capture_output=True, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def slurm(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"
    return done.stdout


def job_state(env: dict[str, str], job_id: str) -> str:
    line = slurm(env, "scontrol", "show", "job", "-o", job_id)
    return re.search(r"\bJobState=(\S+)", line).group(1)


def recorded_jobs(out: Path) -> dict[str, str]:
    try:
        return json.loads((out / "launch.json").read_text()).get("slurm", {})
    except (OSError, ValueError):
        return {}


def submitted(out: Path) -> set[str]:
    """The Slurm jobs submitit ever submitted for OUT (it keeps each one's pickle in OUT/slurm)."""
    return {p.name.split("_")[0] for p in (out / "slurm").glob("*_submitted.pkl")}


@dataclass(frozen=True)
class RayCluster:
    address: str
    env: dict[str, str]  # of its drivers (compare)


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray head on this machine (``ray start --head``, 2 CPUs) for the module; yields its address
    and the environment of its clients. Without token authentication: Ray 2.5x turns it on in
    ``ray start`` when ~/.ray/auth_token exists (any local ``ray.init()`` leaves one), but a driver
    given an explicit address sends no token unless RAY_AUTH_MODE=token. Stopped at the end by ending
    its own processes (those naming its temp folder or address, and their children), not
    ``ray stop``, which would stop any other Ray of this machine's too."""
    pytest.importorskip("ray", reason="--launcher ray needs Ray: pip install 'ganzoo[ray]'")
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        pytest.skip(f"no {ray}")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's unix sockets are in it
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    address = ""
    try:
        started = subprocess.run([str(ray), "start", "--head", "--port=0", "--num-cpus=2", "--include-dashboard=false",
                                  "--disable-usage-stats", f"--temp-dir={temp}", f"--ray-client-server-port={free_port()}",
                                  f"--dashboard-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}"],
                                 capture_output=True, text=True, env=env, timeout=180, check=False)
        assert started.returncode == 0, f"ray start failed:\n{started.stdout[-3000:]}{started.stderr[-3000:]}"
        address = (temp / "ray_current_cluster").read_text().strip()
        assert re.fullmatch(r"[\w.:-]+:\d+", address), address
        yield RayCluster(address, env)
    finally:
        # its daemons name its temp folder, its client server the address; its workers are the raylet's children
        ours = processes_mentioning(str(temp)) + (processes_mentioning(f"--address={address}") if address else [])
        end_processes(with_descendants(ours))
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_deterministic(tmp_path_factory):
    """DETERMINISTIC with the local launcher, one thread per run: the numbers the clusters must give."""
    out = tmp_path_factory.mktemp("local") / "deterministic"
    done = ganzoo("compare", *DETERMINISTIC, *ONE_THREAD_EACH, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def local_done_when(tmp_path_factory):
    """DONE_WHEN with the local launcher, one thread per run."""
    out = tmp_path_factory.mktemp("local") / "done-when"
    done = ganzoo("compare", *DONE_WHEN, *ONE_THREAD_EACH, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.slow
def test_slurm_requeued_and_cancelled_jobs_resume_from_their_checkpoints(slurm_env, local_deterministic, tmp_path):
    """One job requeued mid-training and one cancelled: the requeued one resumes in the same
    compare; the cancelled one is named in an error line and resubmitted by the same command,
    resuming from its checkpoint. The numbers are the local launcher's."""
    out = tmp_path / "slurm-requeue"
    argv = ["compare", *DETERMINISTIC, "--launcher", "slurm", "--slurm-cpus", "1", "--out", str(out)]
    driver = Driver(argv, tmp_path / "first", slurm_env)
    try:
        seed0, seed1 = (out / "runs" / "sngan-deterministic" / f"seed-{s}" for s in (0, 1))
        wait_for(lambda: (seed0 / "checkpoint.safetensors").exists(), "seed 0's first checkpoint", driver)
        ids = recorded_jobs(out)
        assert set(ids) == {"sngan-deterministic/seed-0", "sngan-deterministic/seed-1"}
        first, cancelled = ids["sngan-deterministic/seed-0"], ids["sngan-deterministic/seed-1"]
        assert job_state(slurm_env, first) == "RUNNING" and job_state(slurm_env, cancelled) == "RUNNING"
        slurm(slurm_env, "scontrol", "requeue", first)
        slurm(slurm_env, "scancel", cancelled)
        # Slurm holds a requeued job for a fixed delay (its EligibleTime, 2 minutes) once it has left
        # COMPLETING: release it at once. This only skips that delay; the job runs as it would then.
        left = []  # whether the job has stopped running since the requeue

        def released() -> bool:
            state = job_state(slurm_env, first)
            if state != "RUNNING":
                left.append(state)
            if state == "PENDING":  # (it may start between the two commands: "no longer pending" is fine)
                subprocess.run(["scontrol", "update", f"JobId={first}", "StartTime=now"], capture_output=True, env=slurm_env, check=False)
            return bool(left) and state in ("RUNNING", "COMPLETED")
        wait_for(released, "the requeued job running again", driver, timeout=120, every=0.5)
        assert driver.wait() == 1, driver.stderr
    finally:
        driver.kill()
    seed1_log = out / "logs" / "sngan-deterministic-seed-1.log"
    assert error_lines(driver.stderr) == [
        f"error: sngan-deterministic seed 1: Slurm job {cancelled} cancelled before its run finished (log: {seed1_log}; "
        f"Slurm's: {out / 'slurm' / f'{cancelled}_0_log.err'}); run the same command again to resubmit it"]
    assert (seed0 / "eval-lenet.json").exists() and epochs_of(seed0) == [1, 2]  # the requeued job finished its run
    assert not (seed1 / "eval-lenet.json").exists()
    assert json.loads((out / "summary.json").read_text())["errors"]  # the report says which run is missing
    assert stopped_then_resumed(out / "logs" / "sngan-deterministic-seed-0.log"), commands(out / "logs" / "sngan-deterministic-seed-0.log")

    again = ganzoo(*argv, env=slurm_env)
    assert again.returncode == 0, again.stderr
    assert error_lines(again.stderr) == []
    ids = recorded_jobs(out)
    assert ids["sngan-deterministic/seed-0"] == first  # finished: not submitted again
    assert ids["sngan-deterministic/seed-1"] not in (first, cancelled)  # a new job for the cancelled run
    assert submitted(out) == {first, cancelled, ids["sngan-deterministic/seed-1"]}
    assert epochs_of(seed1) == [1, 2] and (seed1 / "eval-lenet.json").exists()
    assert stopped_then_resumed(seed1_log), commands(seed1_log)  # scancel's SIGTERM checkpointed it
    assert comparable(out) == comparable(local_deterministic)


@pytest.mark.slow
def test_ray_task_whose_worker_is_killed_is_retried_and_resumes(ray_cluster, local_deterministic, tmp_path):
    """SIGKILL the Ray worker of seed 0 mid-training: its training gets SIGTERM and checkpoints, Ray
    runs the task again, and it resumes from the checkpoint. The numbers are the local launcher's."""
    out = tmp_path / "ray-kill"
    driver = Driver(["compare", *DETERMINISTIC, "--launcher", "ray", "--ray-cpus", "1", "--ray-address", ray_cluster.address,
                     "--out", str(out)], tmp_path / "driver", ray_cluster.env)
    seed0 = out / "runs" / "sngan-deterministic" / "seed-0"
    try:
        wait_for(lambda: (seed0 / "checkpoint.safetensors").exists(), "seed 0's first checkpoint", driver)

        def training() -> list[int]:
            return [pid for pid in pids() if "train" in (argv := cmdline(pid)) and str(seed0) in argv and "--resume" not in argv]
        (train,) = wait_for(training, "seed 0's training process", driver)
        worker = parent_of(train)
        assert cmdline(worker)[0].startswith("ray::"), cmdline(worker)  # the Ray worker running the task
        os.kill(worker, signal.SIGKILL)
        assert driver.wait() == 0, driver.stderr
    finally:
        driver.kill()
    log = out / "logs" / "sngan-deterministic-seed-0.log"
    assert stopped_then_resumed(log), commands(log)
    assert error_lines(driver.stderr) == []
    assert epochs_of(seed0) == [1, 2]
    assert comparable(out) == comparable(local_deterministic)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["slurm", "ray"])
def test_a_cluster_comparison_writes_the_local_launcher_s_numbers(request, local_done_when, tmp_path, launcher):
    """The issue's done-when: the same comparison through Slurm jobs or Ray tasks writes the same
    summary.json as the local launcher (here with one thread per run everywhere)."""
    out = tmp_path / f"{launcher}-done-when"
    if launcher == "slurm":
        env = request.getfixturevalue("slurm_env")
        extra = ["--launcher", "slurm", "--slurm-cpus", "1"]
    else:
        cluster = request.getfixturevalue("ray_cluster")
        env = {**cluster.env, "RAY_ADDRESS": cluster.address}  # what --ray-address auto joins
        extra = ["--launcher", "ray", "--ray-cpus", "1", "--ray-address", "auto"]
    done = ganzoo("compare", *DONE_WHEN, *extra, "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert f"as {launcher} {'jobs' if launcher == 'slurm' else 'tasks'}, 1 thread(s) each" in " ".join(done.stderr.split())
    summary = comparable(out)
    assert {label: len(runs) for label, runs in summary["runs"].items()} == {"sngan": 2, "psg-n-gens-2": 2}
    assert summary == comparable(local_done_when)
    assert (out / "report.md").exists()
    keys = {f"{label}/seed-{s}" for label in ("sngan", "psg-n-gens-2") for s in (0, 1)}
    if launcher == "slurm":
        assert set(recorded_jobs(out)) == keys and submitted(out) == set(recorded_jobs(out).values())
    else:
        assert "slurm" not in json.loads((out / "launch.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["slurm", "ray"])
def test_a_tune_runs_its_trials_through_a_cluster(request, tmp_path, launcher):
    """ganzoo tune's workers as Slurm jobs or Ray tasks: two workers share the study (SQLite in the
    shared folder) and run its three trials, each a complete run folder, none twice."""
    import optuna

    out = tmp_path / f"{launcher}-tune"
    if launcher == "slurm":
        env, extra = request.getfixturevalue("slurm_env"), ["--launcher", "slurm", "--slurm-cpus", "1"]
    else:
        cluster = request.getfixturevalue("ray_cluster")
        env, extra = cluster.env, ["--launcher", "ray", "--ray-cpus", "1", "--ray-address", cluster.address]
    done = ganzoo("tune", "sngan", "--trials", "3", "--budget", "8steps", "--eval-n", "100", "--final-n", "100", "--limit-data", "256",
                  "--pruner", "none", "--jobs", "2", *extra, "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="ganzoo-tune", storage=f"sqlite:///{out / 'study.db'}").trials
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    for t in trials:
        run = out / t.user_attrs["run"]
        assert (run / "eval-lenet.json").exists() and t.value > 0
        log = out / "logs" / f"{run.name}-seed-0.log"
        assert sum(" train " in line for line in commands(log)) == 1, commands(log)  # trained once
    if launcher == "slurm":
        assert set(recorded_jobs(out)) == {"worker-0", "worker-1"}
    assert "best: trial" in done.stdout and (out / "report.md").exists()


@pytest.mark.slow
def test_a_stopped_slurm_driver_leaves_its_jobs_running_and_the_rerun_attaches(slurm_env, tmp_path):
    """Ctrl-C stops compare watching, not the jobs; the same command attaches to them (no second
    submission) and finishes."""
    out = tmp_path / "slurm-attach"
    argv = ["compare", "sngan", "--seeds", "2", "--epochs", "2", "--limit-data", "3000", "--eval-n", "200", "--final-n", "200",
            "--launcher", "slurm", "--slurm-cpus", "1", "--out", str(out)]
    driver = Driver(argv, tmp_path / "first", slurm_env)
    try:
        ids = wait_for(lambda: len(jobs := recorded_jobs(out)) == 2 and jobs, "both jobs submitted", driver)
        wait_for(lambda: all(job_state(slurm_env, i) == "RUNNING" for i in ids.values()), "both jobs running", driver, every=0.5)
        driver.process.send_signal(signal.SIGINT)
        assert driver.wait(timeout=60) == 130, driver.stderr
    finally:
        driver.kill()
    stopped = [line for line in driver.stderr.splitlines() if line.startswith("stopped watching")]
    assert len(stopped) == 1, driver.stderr
    named = re.fullmatch(r"stopped watching; 2 Slurm job\(s\) go on \((\d+) (\d+)\): rerun the same command to attach to them, "
                         r"or scancel them", stopped[0])
    assert named and set(named.groups()) == set(ids.values()), stopped[0]
    assert {i: job_state(slurm_env, i) for i in ids.values()} == dict.fromkeys(ids.values(), "RUNNING")  # the jobs go on

    again = ganzoo(*argv, env=slurm_env)
    assert again.returncode == 0, again.stderr
    assert recorded_jobs(out) == ids  # attached, not submitted again
    assert submitted(out) == set(ids.values())
    ours = [line.split() for line in slurm(slurm_env, "squeue", "-h", "-t", "all", "-o", "%i %j").splitlines()
            if line.split()[1].startswith(f"ganzoo:{out.name}:")]
    assert sorted(job_id for job_id, _ in ours) == sorted(ids.values())
    for seed in (0, 1):
        run = out / "runs" / "sngan" / f"seed-{seed}"
        assert epochs_of(run) == [1, 2] and (run / "eval-lenet.json").exists()
        assert [line for line in commands(out / "logs" / f"sngan-seed-{seed}.log") if " train " in line and "--resume" in line] == []


@pytest.mark.slow
def test_a_slurm_job_warned_of_its_end_checkpoints_and_is_requeued(slurm_env, tmp_path):
    """Slurm's warning before a time limit or a preemption is USR2 (submitit asks for it with
    --signal=USR2@90; sent here with scancel --signal=USR2): the run stops at a checkpoint, submitit
    requeues the same job, and it resumes the run to the end."""
    out = tmp_path / "slurm-usr2"
    argv = ["compare", "sngan", "--seeds", "1", "--epochs", "2", "--limit-data", "6000", "--eval-n", "200", "--final-n", "200",
            "--launcher", "slurm", "--slurm-cpus", "1", "--out", str(out)]
    driver = Driver(argv, tmp_path / "driver", slurm_env)
    run, log = out / "runs" / "sngan" / "seed-0", out / "logs" / "sngan-seed-0.log"
    try:
        wait_for(lambda: (run / "checkpoint.safetensors").exists(), "the first checkpoint", driver)
        job = recorded_jobs(out)["sngan/seed-0"]
        slurm(slurm_env, "scancel", "--signal=USR2", job)
        wait_for(lambda: "stopped by signal 12" in log.read_text(), "the run stopped by USR2", driver)

        def released() -> bool:  # skip Slurm's fixed delay before a requeued job may start (as above)
            if job_state(slurm_env, job) == "PENDING":
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True, env=slurm_env, check=False)
            return sum(" train " in line for line in commands(log)) == 2
        wait_for(released, "the requeued job resuming the run", driver, timeout=180, every=0.5)
        assert driver.wait() == 0, driver.stderr
    finally:
        driver.kill()
    assert recorded_jobs(out) == {"sngan/seed-0": job} and submitted(out) == {job}  # requeued, not submitted again
    assert stopped_then_resumed(log, signal_number=12), commands(log)
    assert epochs_of(run) == [1, 2] and (run / "eval-lenet.json").exists()
    assert "Caught signal SIGUSR2" in (out / "slurm" / f"{job}_0_log.err").read_text()


@pytest.mark.slow
def test_sigterm_stops_a_slurm_driver_watching_like_ctrl_c(slurm_env, tmp_path):
    out = tmp_path / "slurm-term"
    driver = Driver(["compare", "sngan", "--seeds", "2", "--epochs", "2", "--limit-data", "3000", "--eval-n", "200", "--final-n", "200",
                     "--launcher", "slurm", "--slurm-cpus", "1", "--out", str(out)], tmp_path / "driver", slurm_env)
    try:
        ids = wait_for(lambda: len(jobs := recorded_jobs(out)) == 2 and jobs, "both jobs submitted", driver)
        wait_for(lambda: all(job_state(slurm_env, i) == "RUNNING" for i in ids.values()), "both jobs running", driver, every=0.5)
        driver.process.send_signal(signal.SIGTERM)
        code = driver.wait(timeout=TIMEOUT)
        states = {i: job_state(slurm_env, i) for i in ids.values()}
    finally:
        driver.kill()
        for job_id in recorded_jobs(out).values():  # not left running into the next test
            subprocess.run(["scancel", job_id], capture_output=True, env=slurm_env, check=False)
    assert code == 130, driver.stderr
    assert states == dict.fromkeys(ids.values(), "RUNNING"), driver.stderr  # it stopped watching while they ran
    assert "stopped watching; 2 Slurm job(s) go on" in driver.stderr


# ---------------------------------------------------------------------------------------------
# Ray: a relative --out (fixed), and stopping the driver (open: xfail)


@pytest.mark.slow
def test_a_relative_out_works_with_a_running_ray_cluster(ray_cluster, tmp_path):
    (tmp_path / "here").mkdir()
    done = ganzoo("compare", "sngan", "--seeds", "1", "--epochs", "1", "--limit-data", "128", "--eval-n", "100", "--final-n", "100",
                  "--launcher", "ray", "--ray-cpus", "1", "--ray-address", ray_cluster.address, "--out", "cmp", cwd=tmp_path / "here",
                  env=ray_cluster.env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "here" / "cmp" / "runs" / "sngan" / "seed-0" / "eval-lenet.json").exists()


def ray_driver_stopped_by(sig: int, ray_cluster, tmp_path: Path) -> tuple[int | None, str, Path]:
    """A Ray comparison of one long run, sent sig once its first checkpoint is there; its exit code
    (None if it had not ended 60 s later: then killed), its stderr, and its folder."""
    out = tmp_path / "ray-stopped"
    driver = Driver(["compare", "sngan", "--seeds", "1", "--epochs", "20", "--limit-data", "3000", "--eval-n", "100", "--final-n", "100",
                     "--launcher", "ray", "--ray-cpus", "1", "--ray-address", ray_cluster.address, "--out", str(out)], tmp_path / "driver",
                    ray_cluster.env)
    run = out / "runs" / "sngan" / "seed-0"
    try:
        wait_for(lambda: (run / "checkpoint.safetensors").exists(), "the first checkpoint", driver)
        driver.process.send_signal(sig)
        try:
            code = driver.wait(timeout=60)  # a run stops at a checkpoint within seconds
        except subprocess.TimeoutExpired:
            code = None
    finally:
        driver.kill()
        end_processes(with_descendants(processes_mentioning(str(out))))  # a training left going on
    return code, driver.stderr, out


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="open: after SIGINT the Ray driver does not end within 60 s; the cancel does not yet "
                                       "stop the run at a checkpoint (children.py waits in a loop now, which was not enough)")
def test_ctrl_c_stops_ray_runs_at_a_checkpoint(ray_cluster, tmp_path):
    code, stderr, out = ray_driver_stopped_by(signal.SIGINT, ray_cluster, tmp_path)
    assert code == 130, stderr
    assert "stopped; finished runs are kept, the others stopped at a checkpoint" in stderr
    assert "stopped by signal 2" in (out / "logs" / "sngan-seed-0.log").read_text()
    assert epochs_of(out / "runs" / "sngan" / "seed-0")[-1] < 20


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="open: as Ctrl-C above (compare's SIGTERM handler is restored after ray.init, and then "
                                       "the same cancel path applies)")
def test_sigterm_stops_ray_runs_at_a_checkpoint(ray_cluster, tmp_path):
    code, stderr, out = ray_driver_stopped_by(signal.SIGTERM, ray_cluster, tmp_path)
    assert code == 130, stderr
    assert "stopped; finished runs are kept, the others stopped at a checkpoint" in stderr
    assert "stopped by signal" in (out / "logs" / "sngan-seed-0.log").read_text()
