"""Hostile files and inputs through the real CLI: every case is rebuilt here from scratch (FIFOs,
symlinks to devices and to victim files, sparse files, gzip bombs, deep JSON, doctored checkpoints)
and must end in exit code 2 with one line on stderr, no traceback, no hang (a timeout) and no
memory blow-up (an address-space limit), with the victims untouched. See docs/reliability.md.

Each case is a real process running ganzoo's ``main()`` as ``python -m ganzoo`` does, forked from a
server that imported ganzoo and torch once (``ForkServer``), so that 45 cases do not import torch 45
times. They are independent, so the module runs the selected ones a few at a time (``outcomes``)
and each test asserts on its own case's outcome.
"""

from __future__ import annotations

import gzip
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_bytes

from ganzoo.core.tensorfile import MANIFEST_KEY, save_tensor_file
from ganzoo.runs.checkpoint import read_checkpoint

# Torch's import alone maps ~3.2 GB of address space; 6 GiB leaves ~3 GB for the work itself.
ADDRESS_SPACE = 6 << 30
TIMEOUT = 120
WORKERS = 3
TINY = ["--steps", "2", "--limit-data", "64", "--batch-size", "16", "--device", "cpu", "--quiet"]
VICTIM_TEXT = "precious\n"
IMAGES = "train-images-idx3-ubyte"
# Run in the child before ganzoo: the address-space limit, and for a "plain user" root without the
# capabilities that bypass file permissions (dropped from the bounding set, so lost at exec), so
# that a read-only folder is read-only to it as to anyone. A launcher, not preexec_fn: the cases
# start from several threads, where code between fork and exec may deadlock.
LAUNCHER = """
import ctypes, os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
if sys.argv[2] == "plain-user" and os.geteuid() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0):  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
os.execv(sys.executable, [sys.executable, "-m", "ganzoo", *sys.argv[3:]])
"""


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}


def ganzoo(*args: str, plain_user: bool = False, timeout: int = TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``python -m ganzoo ARGS`` under the address-space limit."""
    launch = [sys.executable, "-S", "-c", LAUNCHER, str(ADDRESS_SPACE), "plain-user" if plain_user else "-"]
    return subprocess.run([*launch, *args], capture_output=True, text=True, timeout=timeout, env=ENV, cwd=tempfile.gettempdir())


# Reads one request per line; forks a child that sets the address-space limit, points stdin at
# /dev/null and stdout/stderr at the given files, and runs ganzoo's main(); kills it at the timeout.
# Answers {"returncode": ...} (minus the signal number when killed) or {"timeout": true}.
FORK_SERVER = """
import json, os, resource, sys, time, traceback
import torch, ganzoo.training.trainer
from ganzoo.cli.main import main
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            resource.setrlimit(resource.RLIMIT_AS, (request["limit"], request["limit"]))
            os.chdir(request["cwd"])
            os.environ.update(request.get("env", {}))
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            for fd, name in ((1, "stdout"), (2, "stderr")):
                os.dup2(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
            sys.argv = [sys.executable, *request["argv"]]
            try:
                main()
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            except BaseException:
                traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + request["timeout"]
    while not (done := os.waitpid(pid, os.WNOHANG))[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    if not done[0]:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print(json.dumps({"timeout": True}), flush=True)
    else:
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(done[1])}), flush=True)
"""


class ForkServer:
    """A process that imported ganzoo once and forks a child per ``run``: a real process each time
    (its own memory limit, exit code and signals), without the seconds of importing torch."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", FORK_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=ENV, cwd=tempfile.gettempdir())

    def run(self, *args: str, timeout: int = TIMEOUT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as folder:
            out, err = Path(folder) / "stdout", Path(folder) / "stderr"
            request = {"argv": list(args), "limit": ADDRESS_SPACE, "cwd": tempfile.gettempdir(), "timeout": timeout,
                       "stdout": str(out), "stderr": str(err), "env": env or {}}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            answer = json.loads(self.process.stdout.readline())
            if answer.get("timeout"):
                raise subprocess.TimeoutExpired(list(args), timeout)
            return subprocess.CompletedProcess(list(args), answer["returncode"], out.read_text(), err.read_text())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """Exit code 2, one 'error: ...' line on stderr holding every word, and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- building the cases -------------------------------------------------------------------------

@dataclass
class Case:
    """A hostile input: the command to run, the words its one-line error must hold (exit 0 when
    ``succeeds``), and a check of the files afterwards (victims untouched)."""

    argv: list[str]
    words: tuple[str, ...] = ()
    succeeds: bool = False
    after: Callable[[], None] = lambda: None
    plain_user: bool = False
    env: dict[str, str] = field(default_factory=dict)  # environment variables of this case's process
    timeout: int = TIMEOUT


CASES: dict[str, dict[str, Callable[[Path, Path], Case]]] = {}  # family -> case name -> build(base_run, folder)


def case(family: str, name: str):
    def register(build):
        assert all(name not in cases for cases in CASES.values()), f"two cases named {name!r}"
        CASES.setdefault(family, {})[name] = build
        return build
    return register


def names(family: str) -> list[str]:
    return list(CASES[family])


def copy_run(base_run: Path, folder: Path) -> Path:
    run_dir = folder / "run"
    shutil.copytree(base_run, run_dir, symlinks=True)
    return run_dir


def doctor(run_dir: Path, change) -> None:
    """Rewrite run_dir's checkpoint (with fresh checksums) after change(tensors, manifest)."""
    tensors, manifest = read_checkpoint(run_dir)
    change(tensors, manifest)
    save_tensor_file(run_dir / "checkpoint.safetensors", tensors, manifest)


def plant(path: Path, what: str, target: Path | None = None) -> None:
    """Replace path by a FIFO, a directory, or a symlink to target."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if what == "fifo":
        os.mkfifo(path)
    elif what == "dir":
        path.mkdir()
    else:
        path.symlink_to(target)


def make_victim(folder: Path) -> tuple[Path, Callable[[], None]]:
    """A file that must stay as it is, and a check that it (and its folder) did."""
    victims = folder / "victims"
    victims.mkdir()
    victim = victims / "victim.txt"
    victim.write_text(VICTIM_TEXT)

    def untouched() -> None:
        assert victim.read_text() == VICTIM_TEXT and os.listdir(victims) == ["victim.txt"]

    return victim, untouched


def absent(path: Path) -> Callable[[], None]:
    def check() -> None:
        assert not path.exists(), f"{path} was written"
    return check


def resume(run_dir: Path, steps: int = 4) -> list[str]:
    return ["train", "psg", "--resume", str(run_dir), "--steps", str(steps), "--quiet"]


def idx_header(*shape: int) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


# -- checkpoints: integrity and finiteness ----------------------------------------------------------

def _nan_weight(tensors, manifest):
    tensors["generator.0.net.0.weight"].view(-1)[0] = float("nan")


@case("non-finite", "nan-weight-sample")
def _(base, folder):
    run_dir = copy_run(base, folder)
    doctor(run_dir, _nan_weight)
    return Case(["sample", str(run_dir), "--n", "4"], ("'generator.0.net.0.weight'", "NaN or infinite"),
                after=absent(run_dir / "sample.png"))


@case("non-finite", "nan-weight-eval")
def _(base, folder):
    run_dir = copy_run(base, folder)
    doctor(run_dir, _nan_weight)
    return Case(["eval", str(run_dir), "--n", "20", "--n-real", "200"], ("'generator.0.net.0.weight'", "NaN or infinite"))


@case("non-finite", "inf-in-a-plugin-weight-set")
def _(base, folder):
    """What the ema plugin saves (ema.generator.<i>.*), which sample picks by default."""
    def add_set(tensors, manifest):
        for key in [k for k in tensors if k.startswith("generator.0.")]:
            tensors["ema." + key] = tensors[key].clone()
        tensors["ema.generator.0.net.0.weight"].view(-1)[3] = float("inf")

    run_dir = copy_run(base, folder)
    doctor(run_dir, add_set)
    return Case(["sample", str(run_dir), "--n", "4"], ("'ema.generator.0.net.0.weight'", "NaN or infinite"))


@case("integrity", "flipped-data-byte")
def _(base, folder):
    run_dir = copy_run(base, folder)
    path = run_dir / "checkpoint.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x40  # in the last tensor's data: neither the header nor safetensors can notice
    path.write_bytes(bytes(raw))
    return Case(resume(run_dir, 3), ("corrupted", "sha256"))


@case("integrity", "old-checkpoint-without-checksums-loads")
def _(base, folder):
    run_dir = copy_run(base, folder)
    tensors, manifest = read_checkpoint(run_dir)
    (run_dir / "checkpoint.safetensors").write_bytes(save_bytes(tensors, metadata={MANIFEST_KEY: json.dumps(manifest)}))
    return Case(["sample", str(run_dir), "--n", "4"], succeeds=True, after=lambda: (run_dir / "sample.png").stat())


# -- checkpoint files that are not what they say: deep JSON, sparse giants, FIFOs, devices ----------

def _sparse_20gb(path: Path) -> None:
    """A valid header declaring one 20 GB generator weight; the file is sparse (20 GB apparent, ~0 on disk)."""
    size = 5 * 10**9
    header = json.dumps({"__metadata__": {MANIFEST_KEY: json.dumps(read_checkpoint(path)[1])},
                         "generator.0.net.0.weight": {"dtype": "F32", "shape": [size], "data_offsets": [0, 4 * size]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + 4 * size)


CHECKPOINT_DAMAGE = {
    "deep-header": lambda p: p.write_bytes((200_000).to_bytes(8, "little") + b"[" * 100_000 + b"]" * 100_000),
    "deep-manifest": lambda p: p.write_bytes(save_bytes({"w": torch.zeros(1)}, metadata={MANIFEST_KEY: "[" * 100_000 + "]" * 100_000})),
    "sparse-20GB": _sparse_20gb,
    "fifo": lambda p: plant(p, "fifo"),
    "dev-zero": lambda p: plant(p, "link", Path("/dev/zero")),
}

for _damage in CHECKPOINT_DAMAGE:
    @case("checkpoint-files", f"sample-{_damage}")
    def _(base, folder, damage=_damage):
        run_dir = copy_run(base, folder)
        CHECKPOINT_DAMAGE[damage](run_dir / "checkpoint.safetensors")
        return Case(["sample", str(run_dir), "--n", "4"], ("checkpoint",))


@case("checkpoint-files", "resume-sparse-20GB")
def _(base, folder):
    run_dir = copy_run(base, folder)
    _sparse_20gb(run_dir / "checkpoint.safetensors")
    return Case(resume(run_dir, 3), ("checkpoint",))


# -- checkpoints that do not fit the run they resume -------------------------------------------------

def _shrink(name: str):
    def change(tensors, manifest):
        tensors[name] = tensors[name].reshape(-1)[:-1].clone()
    return change


def _negative_step(tensors, manifest):
    manifest["step"] = -5


RESUME_DAMAGE = {"rng.torch": _shrink("rng.torch"), "exp_avg": _shrink("optimizer.generator.0.0.exp_avg"),
                 "sample_z": _shrink("sample_z"), "metrics.sums": _shrink("metrics.sums"),
                 "rng.z-truncated": _shrink("rng.z"), "step=-5": _negative_step}

for _damage in RESUME_DAMAGE:
    @case("does-not-fit", _damage)
    def _(base, folder, damage=_damage):
        run_dir = copy_run(base, folder)
        doctor(run_dir, RESUME_DAMAGE[damage])
        metrics = (run_dir / "metrics.jsonl").read_text()

        def kept() -> None:  # a step of -5 used to empty metrics.jsonl
            assert (run_dir / "metrics.jsonl").read_text() == metrics

        return Case(resume(run_dir), after=kept)


@case("plugin-output", "string-among-checkpoint-tensors")
def _(base, folder):
    plugin = folder / "stringy.py"
    plugin.write_text("from ganzoo import hookimpl\n\n\n@hookimpl\ndef ganzoo_on_checkpoint_save(trainer, tensors):\n"
                      "    tensors['stringy.note'] = 'not a tensor'\n")
    return Case(["--plugin", str(plugin), "train", "psg", *TINY, "--out", str(folder / "run")], ("'stringy.note'", "not a tensor"))


# -- run directories: planted links, FIFOs and folders -----------------------------------------------

for _name in (".lock", "metrics.jsonl", "config.toml", "samples"):
    @case("planted-links", _name)
    def _(base, folder, name=_name):
        run_dir = copy_run(base, folder)
        victim, untouched = make_victim(folder)
        plant(run_dir / name, "link", victim.parent if name == "samples" else victim)
        return Case(resume(run_dir), ("symbolic link",), after=untouched)

for _name, _what in ((".lock", "dir"), ("metrics.jsonl", "dir"), (".dir.tmp", "dir"), ("metrics.jsonl", "fifo"),
                     ("config.toml", "fifo"), ("checkpoint.safetensors", "fifo")):
    @case("not-a-file", f"{_name}-{_what}")
    def _(base, folder, name=_name, what=_what):
        run_dir = copy_run(base, folder)
        plant(run_dir / name, what)
        return Case(resume(run_dir), (name,))


@case("harmless", "meta=5-and-a-deep-metrics-line")
def _(base, folder):
    """The run continues: the deep line is dropped like a torn one, config.toml is written anew."""
    run_dir = copy_run(base, folder)
    (run_dir / "config.toml").write_text("meta = 5\n")
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write("[" * 100_000 + "]" * 100_000 + "\n")

    def repaired() -> None:
        assert "[[[" not in (run_dir / "metrics.jsonl").read_text()
        assert "[meta]" in (run_dir / "config.toml").read_text()

    return Case(resume(run_dir), succeeds=True, after=repaired)


@case("harmless", "idx-file-instead-of-folder")
def _(base, folder):
    path = folder / IMAGES
    path.write_bytes(idx_header(64, 28, 28) + bytes(64 * 784))
    return Case(["train", "psg", *TINY, "--dataset", f"idx:{path}", "--out", str(folder / "run")], ("is a file", f"idx:{folder}"))


# -- the file system and requests too big -------------------------------------------------------------

@case("file-system", "read-only-run-dir")
def _(base, folder):
    run_dir = copy_run(base, folder)
    tree = [run_dir, *run_dir.rglob("*")]
    for path in tree:
        path.chmod(0o555 if path.is_dir() else 0o444)

    def writable_again() -> None:  # so that the temp folder can be removed
        for path in tree:
            path.chmod(0o755 if path.is_dir() else 0o644)

    return Case(resume(run_dir), ("Permission denied",), plain_user=True, after=writable_again)


@case("file-system", "out-name-300-characters")
def _(base, folder):
    return Case(["train", "psg", *TINY, "--out", str(folder / ("x" * 300))], ("File name too long",))


@case("file-system", "sample-out-name-300-characters")
def _(base, folder):
    return Case(["sample", str(base), "--out", str(folder / ("x" * 300)) + ".png"], ("File name too long",))


@case("too-big", "sample-seed-99999999999999999999999")
def _(base, folder):
    return Case(["sample", str(base), "--seed", "99999999999999999999999", "--out", str(folder / "s.png")], ("--seed",))


@case("too-big", "sample-n-100000000")
def _(base, folder):
    return Case(["sample", str(base), "--n", "100000000", "--out", str(folder / "s.png")], ("memory", "--n"),
                after=absent(folder / "s.png"))


@case("too-big", "train-z-dim-65536")
def _(base, folder):
    return Case(["train", "psg", *TINY, "--z-dim", "65536", "--out", str(folder / "run")], ("memory", "--z-dim"),
                after=absent(folder / "run"))


# -- --config files and IDX data ----------------------------------------------------------------------

for _kind in ("dev-zero", "fifo", "deep"):
    @case("config-files", f"config-{_kind}")
    def _(base, folder, kind=_kind):
        path = folder / "settings.toml"
        if kind == "deep":
            path.write_text("options = " + "[" * 100_000 + "]" * 100_000 + "\n")
        else:
            plant(path, "fifo" if kind == "fifo" else "link", Path("/dev/zero"))
        return Case(["train", "psg", *TINY, "--config", str(path), "--out", str(folder / "run")], ("config file",))


def gzip_bomb(path: Path, gigabytes: int = 8) -> None:
    """A 64-image IDX header, then `gigabytes` GB of zeros: ~8 MB on disk as repeated gzip members."""
    zeros = gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(idx_header(64, 28, 28) + bytes(64 * 784), mtime=0))
        for _ in range(gigabytes * 16):
            f.write(zeros)


for _kind in ("dev-zero", "dev-urandom", "fifo", "gzip-bomb", "huge-shape"):
    @case("idx-files", f"idx-{_kind}")
    def _(base, folder, kind=_kind):
        data = folder / "idx"
        data.mkdir()
        path = data / IMAGES
        if kind == "gzip-bomb":
            gzip_bomb(data / f"{IMAGES}.gz")
        elif kind == "huge-shape":  # 2**32 - 1 images declared, 64 present
            path.write_bytes(idx_header(2**32 - 1, 28, 28) + bytes(64 * 784))
        elif kind == "fifo":
            plant(path, "fifo")
        else:
            plant(path, "link", Path("/dev/zero" if kind == "dev-zero" else "/dev/urandom"))
        return Case(["train", "psg", *TINY, "--dataset", f"idx:{data}", "--out", str(folder / "run")], (IMAGES,))


# -- running them ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """One tiny real run (psg, 2 steps of the 4 in an epoch) that the cases copy and damage. Without
    psg's default EMA, so that sampling reads the trained weights the cases damage (a case adds an
    EMA set of its own)."""
    run_dir = tmp_path_factory.mktemp("hostile") / "run"
    result = ganzoo("train", "psg", *TINY, "--ema", "0", "--out", str(run_dir))
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture(scope="module")
def outcomes(request, base_run, tmp_path_factory) -> dict[str, tuple[Case, subprocess.CompletedProcess | Exception]]:
    return run_selected(request, CASES, base_run, tmp_path_factory)


def run_selected(request, registry: dict[str, dict[str, Callable[[Path, Path], Case]]], base_run: Path,
                 tmp_path_factory) -> dict[str, tuple[Case, subprocess.CompletedProcess | Exception]]:
    """Build the cases of ``registry`` that this session selected in the requesting module, then run
    them WORKERS at a time; a hang is a TimeoutExpired."""
    selected = {item.callspec.params["name"] for item in request.session.items
                if item.module is request.module and "name" in getattr(getattr(item, "callspec", None), "params", {})}
    builds = {name: build for family in registry.values() for name, build in family.items() if name in selected}
    cases = {name: build(base_run, tmp_path_factory.mktemp("case")) for name, build in builds.items()}

    servers: queue.Queue[ForkServer] = queue.Queue()

    def run(c: Case) -> subprocess.CompletedProcess | Exception:
        try:
            if c.plain_user:  # dropped capabilities are lost at exec only: a process of its own
                return ganzoo(*c.argv, plain_user=True)
            server = servers.get()
            try:
                return server.run(*c.argv, timeout=c.timeout, env=c.env)
            finally:
                servers.put(server)
        except subprocess.TimeoutExpired as exc:
            return exc

    for _ in range(WORKERS):
        servers.put(ForkServer())
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            results = dict(zip(cases, pool.map(run, cases.values())))
    finally:
        while not servers.empty():
            servers.get().close()
    return {name: (cases[name], results[name]) for name in cases}


def check(outcomes, name: str) -> None:
    c, result = outcomes[name]
    assert not isinstance(result, Exception), f"{name}: no answer within {c.timeout} s (a hang?)"
    try:
        if c.succeeds:
            assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
        else:
            refused(result, *c.words)
    finally:
        c.after()


@pytest.mark.parametrize("name", names("non-finite"))
def test_non_finite_generator_weights_are_refused_naming_the_tensor(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("integrity"))
def test_corrupted_data_fails_its_checksum_and_old_files_still_load(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("checkpoint-files"))
def test_deep_sparse_fifo_and_device_checkpoints_are_refused(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("does-not-fit"))
def test_a_checkpoint_that_does_not_fit_the_run_is_refused_on_resume(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("plugin-output"))
def test_a_plugin_storing_a_string_among_checkpoint_tensors_is_named(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("planted-links"))
def test_a_symlink_planted_in_a_run_dir_is_never_written_through(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("not-a-file"))
def test_a_folder_or_fifo_in_place_of_a_run_file_is_refused(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("harmless"))
def test_odd_but_harmless_inputs_give_a_correct_result(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("file-system"))
def test_file_system_refusals_are_one_line(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("too-big"))
def test_requests_too_big_are_refused_before_allocating(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("config-files"))
def test_hostile_config_files_are_refused(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("idx-files"))
def test_hostile_idx_files_are_refused(outcomes, name):
    check(outcomes, name)


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text(VICTIM_TEXT)
    return path


# -- the same guards in-process: the writers and readers of a run directory ---------------------------

def test_run_dir_writers_never_follow_a_planted_link(tmp_path, victim):
    from ganzoo.core.errors import GanzooError
    from ganzoo.runs import rundir

    for name in (".lock", "metrics.jsonl"):
        plant(tmp_path / name, "link", victim)
    with pytest.raises(GanzooError, match="symbolic link"):
        rundir.RunLock(tmp_path).__enter__()
    with pytest.raises(GanzooError, match="symbolic link"):
        rundir.append_metrics(tmp_path, {"step": 1})
    with pytest.raises(GanzooError, match="symbolic link"):
        rundir.read_metrics(tmp_path)
    with pytest.raises(GanzooError, match="symbolic link"):
        rundir.check(tmp_path, resume=True)
    assert victim.read_text() == VICTIM_TEXT


@pytest.mark.parametrize("what", ["fifo", "dir"])
def test_the_lock_is_never_a_fifo_or_a_folder(tmp_path, what):
    from ganzoo.core.errors import GanzooError
    from ganzoo.runs import rundir

    plant(tmp_path / ".lock", what)
    with pytest.raises(GanzooError, match="FIFO|Is a directory"):  # at once: a FIFO opened without O_NONBLOCK would block
        rundir.RunLock(tmp_path).__enter__()


def test_a_full_disk_while_appending_metrics_is_one_error(tmp_path, monkeypatch):
    import errno

    from ganzoo.core import files
    from ganzoo.core.errors import GanzooError
    from ganzoo.runs import rundir

    rundir.append_metrics(tmp_path, {"step": 1})

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "write", full)
    with pytest.raises(GanzooError, match="cannot write .*metrics.jsonl: No space left on device"):
        rundir.append_metrics(tmp_path, {"step": 2})


def test_trimming_metrics_to_a_negative_step_is_refused(tmp_path):
    from ganzoo.core.errors import GanzooError
    from ganzoo.runs import rundir

    rundir.append_metrics(tmp_path, {"epoch": 1, "step": 1})
    with pytest.raises(GanzooError):
        rundir.trim_metrics(tmp_path, -5)
    assert rundir.read_metrics(tmp_path) == [{"epoch": 1, "step": 1}]


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1", "99999999", "parent's parent"])
def test_a_stop_with_parent_that_is_not_our_parent_is_one_line_before_anything_is_written(tmp_path, value):
    """GANZOO_STOP_WITH_PARENT is ganzoo compare's: any other value is refused, never a silent SIGTERM to itself."""
    out = tmp_path / "run"
    if value == "parent's parent":  # a live process that is not the parent: this test's own process's parent
        value = str(os.getppid())
    done = subprocess.run([sys.executable, "-m", "ganzoo", "train", "psg", "--steps", "1", "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, "GANZOO_STOP_WITH_PARENT": value}, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "GANZOO_STOP_WITH_PARENT" in done.stderr and not out.exists()
