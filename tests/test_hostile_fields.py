"""Hostile inputs, second pass (issue 25), through the real CLI as in test_hostile: every field of a
checkpoint manifest, of the optimizer and RNG state, of metrics.jsonl and compare.json that ganzoo
reads is checked by a schema (``ganzoo.runs.schemas``) before use; non-finite state is never
loaded or saved; paths from files are never created; environment variables, intervals, paths and
sizes at their edges. Each case ends in exit code 2 with one line and no traceback (or, for the
harmless ones, a correct result), with what it must not touch untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganzoo.compare.jobs import state_document
from tests.test_hostile import (
    TINY,
    VICTIM_TEXT,
    Case,
    base_run,  # noqa: F401  (the fixture the cases copy and damage)
    check,
    copy_run,
    doctor,
    make_victim,
    plant,
    resume,
    run_selected,
)

CASES: dict[str, dict] = {}


def case(family: str, name: str):
    def register(build):
        CASES.setdefault(family, {})[name] = build
        return build
    return register


def names(family: str) -> list[str]:
    return list(CASES[family])


@pytest.fixture(scope="module")
def outcomes(request, base_run, tmp_path_factory):  # noqa: F811  (base_run: the imported fixture)
    return run_selected(request, CASES, base_run, tmp_path_factory)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unchanged(path: Path):
    """A check that the file at path is as it is now (a refused resume writes no checkpoint)."""
    before = sha(path)

    def after() -> None:
        assert sha(path) == before, f"{path} was rewritten"
    return after


def not_created(path: Path):
    def after() -> None:
        assert not path.exists(), f"{path} was created"
    return after


# -- the manifest: each field a reader uses, through sample, eval and resume --------------------------

def _set(*keys, value):
    def change(tensors, manifest):
        target = manifest
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _drop_dataset(tensors, manifest):
    del manifest["config"]["dataset"]


MANIFEST_LIES = {
    "n-gens-inf": (_set("config", "n_gens", value=float("inf")), ("'config.n_gens'", "inf")),
    "n-gens-1e9": (_set("config", "n_gens", value=10**9), ("'config.n_gens'", "1000000000")),
    "image-shape-2": (_set("image_shape", value=[1, 28]), ("'image_shape'", "2 items")),
    "image-shape-1": (_set("image_shape", value=[1]), ("'image_shape'", "1 items")),
    "dataset-5": (_set("config", "dataset", value=5), ("'config.dataset'", "is 5")),
    "no-dataset": (_drop_dataset, ("'config.dataset'", "missing")),
}
COMMANDS = {
    "sample": lambda run_dir: ["sample", str(run_dir), "--n", "4"],
    "eval": lambda run_dir: ["eval", str(run_dir), "--n", "20"],
    "resume": lambda run_dir: resume(run_dir),
}

for lie, (change, words) in MANIFEST_LIES.items():
    for command, argv in COMMANDS.items():
        @case("manifest", f"{lie}-{command}")
        def _(base, folder, change=change, words=words, argv=argv):
            run_dir = copy_run(base, folder)
            doctor(run_dir, change)
            return Case(argv(run_dir), ("the manifest: field", *words), after=unchanged(run_dir / "checkpoint.safetensors"))


def _group(key, value):
    def change(tensors, manifest):
        manifest["optimizer_groups"]["discriminator"][0][key] = value
    return change


def _drop_rng_z(tensors, manifest):
    del tensors["rng.z"]


for name, change, words in (("amsgrad-true", _group("amsgrad", True), ("'amsgrad'", "True")),
                            ("capturable-true", _group("capturable", True), ("'capturable'",)),
                            ("lr-1e300", _group("lr", 1e300), ("learning rate", "1e+300")),
                            ("weight-decay-1e300", _group("weight_decay", 1e300), ("'weight_decay'",)),
                            ("no-rng-z", _drop_rng_z, ("'rng.z' is missing",))):
    @case("optimizer-and-rng", name)
    def _(base, folder, change=change, words=words):
        run_dir = copy_run(base, folder)
        doctor(run_dir, change)
        return Case(resume(run_dir), words, after=unchanged(run_dir / "checkpoint.safetensors"))


# -- tensor headers that lie ------------------------------------------------------------------------

@case("headers", "zero-size-2-to-the-63")
def _(base, folder):
    """An empty tensor whose other side is 2**63 (no data, an absurd shape) in a well-formed file."""
    run_dir = copy_run(base, folder)
    name, path = "generator.0.net.0.weight", run_dir / "checkpoint.safetensors"
    data = path.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    header, body = json.loads(data[8:8 + length]), data[8 + length:]
    start, end = header[name]["data_offsets"]
    header[name].update(shape=[0, 2**63], data_offsets=[start, start])
    for other, info in header.items():  # what followed it moves up: the data must still tile the file
        if other not in ("__metadata__", name) and info["data_offsets"][0] >= end:
            info["data_offsets"] = [o - (end - start) for o in info["data_offsets"]]
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body[:start] + body[end:])
    return Case(["sample", str(run_dir), "--n", "4", "--weights", "raw"], ("malformed entry",))


for command in ("sample", "eval"):
    @case("headers", f"int32-weights-{command}")
    def _(base, folder, command=command):
        run_dir = copy_run(base, folder)
        doctor(run_dir, lambda tensors, manifest: tensors.update(
            {"generator.0.net.0.weight": tensors["generator.0.net.0.weight"].view(torch.int32)}))
        argv = COMMANDS[command](run_dir) + ["--weights", "raw"]
        return Case(argv, ("net.0.weight is int32", "needs float32"))


for shape in ([1, 14, 14], [1, 0, 0], [1, -28, 28]):
    @case("headers", f"npz-image-shape-{'x'.join(map(str, shape))}")
    def _(base, folder, shape=shape):
        run_dir = copy_run(base, folder)
        doctor(run_dir, _set("image_shape", value=shape))
        out = folder / "samples.npz"
        return Case(["sample", str(run_dir), "--n", "4", "--format", "npz", "--out", str(out)], ("image_shape",),
                    after=not_created(out))


# -- non-finite state: refused on load, so never saved again ---------------------------------------------

def _poison(name: str, value: float, copy_from: str | None = None):
    def change(tensors, manifest):
        if copy_from is not None:
            tensors[name] = tensors[copy_from].clone()
        tensors[name].view(-1)[0] = value
    return change


for label, change, tensor in (
        ("nan-ema-weight", _poison("ema.generator.0.net.0.weight", float("nan"), "generator.0.net.0.weight"), "ema.generator.0.net.0.weight"),
        ("nan-sample-z", _poison("sample_z", float("nan")), "sample_z"),
        ("inf-adam-exp-avg-sq", _poison("optimizer.discriminator.0.exp_avg_sq", float("inf")), "optimizer.discriminator.0.exp_avg_sq")):
    @case("non-finite-state", label)
    def _(base, folder, change=change, tensor=tensor):
        run_dir = copy_run(base, folder)
        doctor(run_dir, change)
        return Case(resume(run_dir), (repr(tensor), "NaN or infinite"), after=unchanged(run_dir / "checkpoint.safetensors"))


# -- paths read from files are never created or downloaded into ---------------------------------------

@case("paths-from-files", "cifar10-data-root-in-the-manifest")
def _(base, folder):
    run_dir = copy_run(base, folder)
    elsewhere = folder / "elsewhere" / "data"
    doctor(run_dir, lambda tensors, manifest: manifest["config"].update(dataset="cifar10", data_root=str(elsewhere)))
    return Case(["eval", str(run_dir), "--n", "20"], ("CIFAR-10 not found", "only reads"), after=not_created(elsewhere.parent))


# -- the environment, intervals, paths and sizes at their edges --------------------------------------------

NINES = "9" * 400
EDGES = {
    "eval-every-400-nines": (["--eval-every", NINES], ("eval-every", "at most 20 digits")),
    "eval-every-400-nines-steps": (["--eval-every", NINES + "steps"], ("eval-every", "at most 20 digits")),
    "eval-every-tiny-seconds": (["--eval-every", "0." + "0" * 320 + "1s"], ("eval-every",)),
    "eval-every-half-second": (["--eval-every", "0.5s"], ("eval-every in seconds must be between 1",)),
    "idx-path-5000-characters": (["--dataset", "idx:" + "a" * 5000], ("idx: path is not usable", "5,000 characters")),
    "idx-path-component-too-long": (["--dataset", "idx:/tmp/" + "a" * 300], ("File name too long",)),
    "idx-no-such-user": (["--dataset", "idx:~nosuchuser/x"], ("no such user",)),
}

for label, (flags, words) in EDGES.items():
    @case("edges", label)
    def _(base, folder, flags=flags, words=words):
        out = folder / "run"
        return Case(["train", "sngan", *TINY, *flags, "--out", str(out)], words, after=not_created(out))


@case("edges", "config-eval-every-seconds-5e-324")
def _(base, folder):
    config = folder / "config.toml"
    config.write_text("eval_every_seconds = 5e-324\n")
    out = folder / "run"
    return Case(["train", "sngan", *TINY, "--config", str(config), "--out", str(out)], ("between 1",), after=not_created(out))


for variable, target in (("GANZOO_CACHE", "file"), ("GANZOO_CACHE", "/dev/null"), ("GANZOO_DATA", "/dev/null"),
                         ("GANZOO_MALLOC_TUNING", "yes")):
    @case("edges", f"{variable.lower()}-{target.strip('/').replace('/', '-')}")
    def _(base, folder, variable=variable, target=target):
        value = target
        if target == "file":
            value = str(folder / "a-file")
            Path(value).write_text("x")
        return Case(["eval", str(base), "--n", "20"], (variable,), env={variable: value})


for command in ("train", "sample", "report", "compare"):
    @case("edges", f"out-empty-{command}")
    def _(base, folder, command=command):
        argv = {"train": ["train", "sngan", *TINY], "sample": ["sample", str(base)], "report": ["report", str(base)],
                "compare": ["compare", "sngan", "--seeds", "1"]}[command]
        return Case([*argv, "--out", ""], ("--out is empty",))


@case("edges", "unknown-dataset-of-32-mb-in-a-config")
def _(base, folder):
    config = folder / "config.toml"
    config.write_text(f'dataset = "{"x" * 32_000_000}"\n')
    return Case(["train", "sngan", "--config", str(config), "--out", str(folder / "run")],
                ("unknown dataset", "32,000,000 characters"), timeout=60)


@case("edges", "eval-of-more-samples-than-memory")
def _(base, folder):
    return Case(["eval", str(base), "--n", "300000"], ("evaluating 300,000 samples", "of memory", "lower --n"))


# -- metrics.jsonl records that are not ganzoo's ----------------------------------------------------------

for label, field_, value, words in (("g-loss-empty", "g_loss", "[]", ("'g_loss'", "0 items")),
                                    ("epoch-1e400", "epoch", "1e400", ("'epoch'", "inf")),
                                    ("fid-1e400", "fid", "1e400", ("'fid'", "inf")),
                                    ("d-loss-text", "d_loss", '"low"', ("'d_loss'",))):
    @case("metrics", label)
    def _(base, folder, field_=field_, value=value, words=words):
        run_dir = copy_run(base, folder)
        path = run_dir / "metrics.jsonl"
        lines = path.read_text().splitlines()
        record = json.loads(lines[-1])
        record[field_] = "@@"
        lines[-1] = json.dumps(record).replace('"@@"', value)
        path.write_text("\n".join(lines) + "\n")
        return Case(["report", str(run_dir)], ("metrics.jsonl line", *words), after=not_created(run_dir / "report.html"))


# -- compare: its folder, its state and its logs on the same footing as a run's ------------------------------

COMPARE = ["compare", "sngan", "--seeds", "1", "--epochs", "1", "--limit-data", "64", "--eval-n", "20", "--final-n", "20"]
SETTINGS = {"specs": ["sngan"], "seeds": 1, "epochs": 1, "minutes": None, "dataset": "mnist", "limit_data": 64,
            "eval_every": "1", "eval_n": 20, "final_n": 20, "features": "lenet", "until_converged": False}


def comparison(folder: Path) -> Path:
    """A comparison folder with the state of COMPARE (as if it had started)."""
    out = folder / "cmp"
    (out / "logs").mkdir(parents=True)
    (out / "runs").mkdir()
    (out / "compare.json").write_bytes(state_document(SETTINGS, ["ganzoo", *COMPARE]))
    return out


STATES = {"fifo": None, "not-json": "nope", "a-list": "[1]", "100000-deep": "[" * 100_000 + "]" * 100_000,
          "settings-null": '{"settings": null}', "seeds-text": json.dumps({"settings": {**SETTINGS, "seeds": "three"}}),
          "dev-zero": None}

for label, text in STATES.items():
    @case("compare", f"compare-json-{label}")
    def _(base, folder, label=label, text=text):
        out = comparison(folder)
        state = out / "compare.json"
        state.unlink()
        if label == "fifo":
            os.mkfifo(state)
        elif label == "dev-zero":
            state.symlink_to("/dev/zero")
        else:
            state.write_text(text)
        return Case([*COMPARE, "--out", str(out)], ("compare.json",), timeout=30, after=not_created(out / "runs" / "sngan"))


@case("compare", "planted-link-at-a-log")
def _(base, folder):
    out = comparison(folder)
    victim, untouched = make_victim(folder)
    plant(out / "logs" / "sngan-seed-0.log", "link", victim)
    return Case([*COMPARE, "--out", str(out)], ("sngan-seed-0.log", "symbolic link"), after=untouched)


@case("compare", "planted-link-at-the-logs-folder")
def _(base, folder):
    out = comparison(folder)
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    plant(out / "logs", "link", elsewhere)

    def after() -> None:
        assert os.listdir(elsewhere) == []
    return Case([*COMPARE, "--out", str(out)], ("logs", "symbolic link"), after=after)


@case("compare", "fifo-at-a-log")
def _(base, folder):
    out = comparison(folder)
    os.mkfifo(out / "logs" / "sngan-seed-0.log")
    return Case([*COMPARE, "--out", str(out)], ("sngan-seed-0.log", "FIFO"), timeout=30)


for label in ("a-file", "dev-null"):
    @case("compare", f"out-is-{label}")
    def _(base, folder, label=label):
        out = folder / "a-file" if label == "a-file" else Path("/dev/null")
        if label == "a-file":
            out.write_text(VICTIM_TEXT)

        def after() -> None:
            assert label != "a-file" or out.read_text() == VICTIM_TEXT
        return Case([*COMPARE, "--out", str(out)], ("is not a folder",), after=after)


@pytest.mark.parametrize("name", names("manifest"))
def test_a_manifest_field_that_is_not_what_ganzoo_writes_is_one_line_naming_it(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("optimizer-and-rng"))
def test_optimizer_settings_and_rng_state_that_do_not_fit_are_refused_on_resume(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("headers"))
def test_tensor_headers_and_image_shapes_that_lie_are_refused(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("non-finite-state"))
def test_non_finite_state_anywhere_is_refused_on_resume_and_nothing_is_saved(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("paths-from-files"))
def test_a_path_read_from_a_checkpoint_is_never_created(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("edges"))
def test_values_at_their_edges_are_one_line(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("metrics"))
def test_metrics_records_that_are_not_ganzoos_are_one_line_naming_the_field(outcomes, name):
    check(outcomes, name)


@pytest.mark.parametrize("name", names("compare"))
def test_compare_reads_and_writes_its_folder_as_safely_as_train(outcomes, name):
    check(outcomes, name)


# -- the NaN guard watches every tensor a checkpoint holds ----------------------------------------------

def test_a_nan_in_the_ema_weights_during_training_is_never_saved(tmp_path):
    """A plugin poisons the EMA averages at step 5; the epoch end at step 8 finds it before saving:
    one line naming the tensor, and the checkpoint on disk stays the finite one of step 4."""
    poison = tmp_path / "poison.py"
    poison.write_text(
        "from ganzoo import hookimpl\n\n"
        "@hookimpl\n"
        "def ganzoo_on_step_end(trainer, step):\n"
        "    if step == 5:\n"
        "        table = trainer.observers('ema')[0].tables[0]\n"
        "        next(t for t in table.values() if t.is_floating_point()).view(-1)[0] = float('nan')\n")
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "ganzoo", "--plugin", str(poison), "train", "psg", *TINY[2:], "--steps", "8",
                           "--out", str(run_dir)], capture_output=True, text=True, env=env, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert lines[-1].startswith("error: non-finite values at step 8: tensor 'ema.generator.0."), lines[-1]
    from ganzoo.runs.checkpoint import read_checkpoint

    tensors, manifest = read_checkpoint(run_dir)
    assert manifest["step"] == 4
    assert all(bool(t.isfinite().all()) for t in tensors.values() if t.is_floating_point())
