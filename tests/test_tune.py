"""``ganzoo tune``: its settings and search spaces in-process, its refusals through real subprocesses,
and (slow) real tunes on a slice of MNIST: a rerun that adds trials, a Ctrl-C and its resume, a
pruned trial, and two tune processes sharing one study."""

from __future__ import annotations

import json
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganzoo.compare.jobs import OWNED
from ganzoo.core.errors import GanzooError
from ganzoo.core.search import CORE_SEARCH, Search, parse_search
from ganzoo.tune.settings import STUDY, default_eval_every, direction_of, parse_budget
from ganzoo.tune.space import Parameter, given_flags, space_of

TUNE_OWNED = {flag[2:] for flag in OWNED} | {"budget"}  # what ganzoo tune passes space_of (ganzoo.cli.tune)
SMALL = ["--eval-n", "200", "--limit-data", "512", "--final-n", "200"]  # the slow tests' trials
TIMEOUT = 1200  # a tune of a few trials on 2 busy cores takes minutes


def ganzoo(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, timeout=timeout, check=False)


def tune_argv(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ganzoo", "tune", "sngan", *args, "--out", str(out)]


def tune(out: Path, *args: str, timeout: int = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(tune_argv(out, *args), capture_output=True, text=True, timeout=timeout, check=False)


def load_study(storage: str):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=STUDY, storage=storage)


def trials_of(out: Path, storage: str | None = None) -> list:
    study = load_study(storage or f"sqlite:///{out / 'study.db'}")
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def train_lines(log: Path) -> list[str]:
    """The ``ganzoo train`` commands a trial's log records (``$ python -m ganzoo train ...``)."""
    return [line for line in log.read_text().splitlines() if line.startswith("$ ") and " -m ganzoo train " in line]


def wait_for(condition, seconds: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            pytest.fail(f"the tune ended ({process.returncode}) before {what}")
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {seconds} s")


# ---------------------------------------------------------------- settings (fast)


@pytest.mark.parametrize(("text", "expected"), [
    ("2m", {"epochs": 0, "minutes": 2.0, "steps": None}),
    ("2min", {"epochs": 0, "minutes": 2.0, "steps": None}),
    ("0.5m", {"epochs": 0, "minutes": 0.5, "steps": None}),
    ("90s", {"epochs": 0, "minutes": 1.5, "steps": None}),
    (" 500steps ", {"epochs": 0, "minutes": None, "steps": 500}),
    ("1step", {"epochs": 0, "minutes": None, "steps": 1}),
    ("3epochs", {"epochs": 3, "minutes": None, "steps": None}),
    ("1epoch", {"epochs": 1, "minutes": None, "steps": None}),
])
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["0m", "0steps", "abc", "", "1.5steps", "2.5epochs", "-1m", "2h", "3parsecs", "m"])
def test_parse_budget_refuses(text):
    with pytest.raises(GanzooError, match="--budget"):
        parse_budget(text)


def test_default_eval_every_spreads_four_evaluations_over_the_budget():
    assert default_eval_every(parse_budget("2m")) == "30s"
    assert default_eval_every(parse_budget("90s")) == "22s"  # round(22.5) to even
    assert default_eval_every(parse_budget("2s")) == "1s"  # never 0 seconds
    assert default_eval_every(parse_budget("500steps")) == "125steps"
    assert default_eval_every(parse_budget("40steps")) == "10steps"
    assert default_eval_every(parse_budget("2steps")) == "1steps"  # never 0 steps
    assert default_eval_every(parse_budget("3epochs")) == "1"  # every epoch
    from ganzoo.core.config import parse_interval

    for budget in ("2m", "2s", "500steps", "2steps", "3epochs"):  # each is an --eval-every that train takes
        parse_interval(default_eval_every(parse_budget(budget)))


def test_direction_of():
    assert direction_of("fid", None) == "minimize"
    assert direction_of("kid", None) == "minimize"
    assert direction_of("precision", None) == "maximize"
    assert direction_of("coverage", None) == "maximize"
    assert direction_of("fid", "maximize") == "maximize"  # --direction wins
    assert direction_of("my_score", "maximize") == "maximize"
    with pytest.raises(GanzooError, match="--metric my_score: say whether to --direction minimize or maximize"):
        direction_of("my_score", None)


# ---------------------------------------------------------------- search spaces (fast)


@pytest.mark.parametrize(("text", "expected", "canonical"), [
    ("1e-4..3e-3:log", Search(1e-4, 3e-3, log=True), "0.0001..0.003:log"),
    ("0..0.9", Search(0, 0.9), "0..0.9"),
    ("1..3", Search(1, 3), "1..3"),
    (" 1..3 ", Search(1, 3), "1..3"),
    ("-1..1", Search(-1, 1), "-1..1"),
    ("1,2", Search(choices=(1, 2)), "1,2"),
    ("hinge, bce", Search(choices=("hinge", "bce")), "hinge,bce"),
    ("true,false", Search(choices=(True, False)), "true,false"),
    ("0.5,2,bce", Search(choices=(0.5, 2, "bce")), "0.5,2,bce"),
    ("1,1,2", Search(choices=(1, 2)), "1,2"),  # repeated choices once
])
def test_parse_search_and_text_round_trip(text, expected, canonical):
    search = parse_search(text)
    assert search == expected
    assert search.text() == canonical
    assert parse_search(canonical) == search


def test_search_kinds():
    assert parse_search("1..3").integer and not parse_search("1..3.5").integer and not parse_search("0..0.9").integer
    assert not parse_search("1,2").integer
    assert [type(c) for c in parse_search("1,2.5,x").choices] == [int, float, str]
    assert [type(c) for c in parse_search("true,false").choices] == [bool, bool]


def test_core_search_spaces_survive_their_text():
    """tune.json keeps each space as its text, which the workers parse again."""
    for search in CORE_SEARCH.values():
        again = parse_search(search.text())
        assert again == search and again.integer == search.integer


@pytest.mark.parametrize("text", ["1..x", "3..1", "1..1", "0..1:log", "-1..1:log", "", " , ", "inf..1", "1..nan", "1..2:lin",
                                  "a..b", "1..2..3", "1,2..3"])
def test_parse_search_refuses(text):
    with pytest.raises(GanzooError, match=r"--search lr=.*: a search space is LOW\.\.HIGH"):
        parse_search(text, "lr")


def test_search_is_a_range_or_choices():
    with pytest.raises(ValueError):
        Search(1, 2, choices=(1, 2))
    with pytest.raises(ValueError):
        Search()


def test_parameter_argv():
    value = 0.1 + 0.2  # 0.30000000000000004: a float passes on exactly, not rounded
    lr = Parameter("lr", Search(5e-5, 2e-3, log=True))
    assert lr.argv(value) == ["--lr", "0.30000000000000004"] and float(lr.argv(value)[1]) == value
    assert float(lr.argv(1.2345678901234567e-4)[1]) == 1.2345678901234567e-4
    assert Parameter("n-dis", Search(1, 3)).argv(2) == ["--n-dis", "2"]
    assert Parameter("loss", Search(choices=("hinge", "bce"))).argv("bce") == ["--loss", "bce"]
    warmup = Parameter("ema-warmup", Search(choices=(True, False)), is_flag=True)
    assert warmup.argv(True) == ["--ema-warmup"] and warmup.argv(False) == ["--no-ema-warmup"]


def test_given_flags():
    assert given_flags(("--lr", "2e-4", "--lr-d=1e-4", "--no-ema-warmup", "2e-4", "-q")) == {"lr", "lr-d", "ema-warmup", "no-ema-warmup"}
    assert given_flags(()) == set()


@pytest.fixture(scope="module")
def sngan(host):
    from ganzoo.core.compose import new_config

    return new_config(host.registry, "sngan", None, {}, None)


def space_of_run(host, config, args=(), overrides=()):
    """``space_of`` as ganzoo tune calls it: the core's options by flag name, the options tune owns."""
    from ganzoo.cli.train_options import CORE

    core = {decls[0].split("/")[0][2:]: "/" in decls[0] for decls, _, _ in CORE}
    return space_of(host.registry, config, core, tuple(args), tuple(overrides), TUNE_OWNED)


def test_the_default_space_of_sngan(host, sngan):
    space = space_of_run(host, sngan, (), ())
    assert {"lr", "lr-d", "beta1", "n-dis", "loss", "ema"} <= set(space)
    assert list(space) == sorted(space)
    assert space["lr"].search == CORE_SEARCH["lr"] and space["n-dis"].search == CORE_SEARCH["n_dis"]
    assert space["loss"].search.choices == ("hinge", "bce")
    assert space["ema"].search == Search(0.99, 0.9999)
    assert not any(p.is_flag for p in space.values())
    assert not {"seed", "steps", "dataset", "batch-size"} & set(space)  # owned by tune, or no declared range


def test_options_given_stay_fixed_and_search_adds_or_overrides(host, sngan):
    fixed = space_of_run(host, sngan, ("--lr", "2e-4", "--loss=bce"), ())
    assert "lr" not in fixed and "loss" not in fixed and "lr-d" in fixed
    space = space_of_run(host, sngan, (), ("n-dis=1,2", "--batch-size=16,32", "ema_warmup=true,false"))
    assert space["n-dis"].search == Search(choices=(1, 2))
    assert space["batch-size"].search == Search(choices=(16, 32))  # no declared range: --search adds it
    assert space["ema-warmup"].is_flag and space["ema-warmup"].argv(False) == ["--no-ema-warmup"]
    everything = ("--lr", "1e-3", "--lr-d", "1e-3", "--beta1", "0", "--n-dis", "1", "--loss", "hinge", "--ema", "0.999")
    assert set(space_of_run(host, sngan, everything, ("beta2=0.9,0.99",))) == {"beta2"}


@pytest.mark.parametrize(("args", "search", "message"), [
    ((), "seed=1,2", "--search seed: ganzoo tune sets --seed for every trial"),
    ((), "steps=1..9", "--search steps: ganzoo tune sets --steps"),
    ((), "budget=1..9", "--search budget: ganzoo tune sets --budget"),
    ((), "nope=1,2", "--search nope: no option --nope in this run (ganzoo train sngan --help lists them)"),
    ((), "lr=1..x", "--search lr=1..x: a search space is"),
    ((), "lr", "--search takes NAME=SPACE"),
    ((), "=1,2", "--search takes NAME=SPACE"),
    (("--lr", "2e-4"), "lr=1e-4..1e-3", "--search lr: --lr is also given a fixed value"),
    ((), "ema-warmup=1,2", "--search ema-warmup: --ema-warmup is on or off; search it as ema-warmup=true,false"),
])
def test_search_refusals(host, sngan, args, search, message):
    with pytest.raises(GanzooError) as refused:
        space_of_run(host, sngan, args, (search,))
    assert message in str(refused.value)


def test_nothing_to_search_is_refused(host, sngan):
    everything = ("--lr", "1e-3", "--lr-d", "1e-3", "--beta1", "0", "--n-dis", "1", "--loss", "hinge", "--ema", "0.999")
    with pytest.raises(GanzooError, match="nothing to search"):
        space_of_run(host, sngan, everything, ())


# ---------------------------------------------------------------- the command line (fast, real subprocesses)


@pytest.mark.parametrize(("args", "message"), [
    (("--trials", "3"), "error: ganzoo tune needs --budget: e.g. ganzoo tune sngan"),
    (("--budget", "20steps"), "error: ganzoo tune needs --trials"),
    (("--trials", "3", "--budget", "3parsecs"),
     "--budget must be minutes (2m), seconds (90s), steps (500steps) or epochs (3epochs), got '3parsecs'"),
    (("--trials", "3", "--budget", "20steps", "--search", "n-dis=0..3"),
     "error: --search n-dis=0..3: n-dis=0 is refused (configuration 'sngan --n-dis 0': n-dis must be at least 1, got 0)"),
    # train options that tune sets for every trial (--seed, --dataset, --limit-data... after the
    # strategy are tune's own options, so they are not refused: they are the tune's)
    (("--steps", "5", "--trials", "3", "--budget", "20steps"), "configuration 'sngan --steps 5' sets --steps"),
    (("--eval-features", "lenet", "--trials", "3", "--budget", "20steps"), "sets --eval-features"),
    (("--trials", "3", "--budget", "20steps", "--search", "seed=1,2"), "--search seed: ganzoo tune sets --seed for every trial"),
    (("--trials", "3", "--budget", "20steps", "--metric", "my_score"), "--metric my_score: say whether to --direction"),
    (("--n-genz", "2", "--trials", "3", "--budget", "20steps"), "No such option"),
])
def test_refusals_write_nothing(tmp_path, args, message):
    out = tmp_path / "tune"
    done = ganzoo("tune", "sngan", *args, "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not out.exists()


def test_a_folder_that_is_not_a_tune_s_is_refused(tmp_path):
    out = tmp_path / "tune"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    done = ganzoo("tune", "sngan", "--trials", "1", "--budget", "20steps", "--out", str(out))
    assert done.returncode == 2 and "exists and is not a tune folder" in done.stderr and done.stderr.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_train_help_shows_what_tune_searches():
    done = ganzoo("train", "sngan", "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # help wraps its lines
    assert "[tune searches 5e-05..0.002:log]" in text  # --lr, a core option
    assert "tune searches hinge,bce" in text and "tune searches 0.99..0.9999" in text  # the parts' options


def test_list_json_shows_the_search_spaces():
    done = ganzoo("list", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert set(listing) == {"strategies", "policies", "aggregations", "architectures", "datasets", "extractors", "options"}  # kinds only
    sngan = next(row for row in listing["strategies"] if row["name"] == "sngan")  # the core's spaces, in every strategy's row
    assert sngan["search"]["--lr"] == "5e-05..0.002:log" and sngan["search"]["--n-dis"] == "1..3"

    def rows(node):
        if isinstance(node, dict):
            if "flag" in node:
                yield node
            for value in node.values():
                yield from rows(value)
        elif isinstance(node, list):
            for value in node:
                yield from rows(value)

    options = list(rows(listing))
    assert options and all("search" in row for row in options)
    spaces = {row["flag"]: row["search"] for row in options if row["search"]}
    assert spaces["--loss"] == "hinge,bce" and spaces["--ema"] == "0.99..0.9999"


def test_without_optuna_tune_says_how_to_install_it(tmp_path):
    out = tmp_path / "tune"
    code = ("import sys; sys.modules['optuna'] = None; "  # import optuna now raises ImportError
            f"sys.argv = ['ganzoo', 'tune', 'sngan', '--trials', '1', '--budget', '20steps', '--out', {str(out)!r}]; "
            "from ganzoo.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "pip install 'ganzoo[tune]'" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not out.exists()


# ---------------------------------------------------------------- real tunes (slow)


@pytest.mark.slow  # 6 trials and a retraining: minutes on 2 cores
def test_the_same_command_again_adds_trials_and_its_retrain_command_trains(tmp_path):
    out = tmp_path / "tune"
    args = ("--trials", "3", "--budget", "20steps", *SMALL)
    first = tune(out, *args)
    assert first.returncode == 0, first.stderr
    for name in ("tune.json", "study.db", "report.md", "report.html"):
        assert (out / name).is_file(), name
    trials = trials_of(out)
    assert [t.number for t in trials] == [0, 1, 2] and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:
        run = out / "trials" / f"trial-{t.number:04d}"
        assert (run / "checkpoint.safetensors").is_file() and (run / "eval-lenet.json").is_file()
        assert t.user_attrs["run"] == f"trials/trial-{t.number:04d}"
        assert t.value == json.loads((run / "eval-lenet.json").read_text())["fid"]
        assert sorted(t.intermediate_values) == [1, 2, 3, 4]  # every 5 steps of 20
    assert json.loads((out / "tune.json").read_text())["target"] == 3
    best = min(trials, key=lambda t: t.value)
    assert re.search(rf"^best: trial {best.number}, fid {best.value:.4g} \(", first.stdout, re.MULTILINE), first.stdout
    assert f"retrain: {best.user_attrs['command']}\n" in first.stdout
    before = {t.number: (t.params, t.value, dict(t.intermediate_values)) for t in trials}
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/*") if p.is_file()}

    again = tune(out, *args)
    assert again.returncode == 0, again.stderr
    trials = trials_of(out)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4, 5]
    # the median pruner may stop one of the new trials (three complete ones to compare with now)
    assert all(t.state.name == "COMPLETE" for t in trials[:3]) and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials[3:])
    assert json.loads((out / "tune.json").read_text())["target"] == 6
    assert {t.number: (t.params, t.value, dict(t.intermediate_values)) for t in trials[:3]} == before
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # the first three trials untouched
    assert sorted(p.name for p in (out / "trials").iterdir() if p.is_dir()) == [f"trial-{n:04d}" for n in range(6)]
    assert sorted(p.name for p in (out / "logs").iterdir()) == [f"trial-{n:04d}-seed-0.log" for n in range(6)]
    for t in trials:  # each trained once
        assert len(train_lines(out / "logs" / f"trial-{t.number:04d}-seed-0.log")) == 1

    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = min(complete, key=lambda t: t.value)
    report = (out / "report.md").read_text()
    assert f"6 trials of 6: {len(complete)} complete, {6 - len(complete)} pruned, 0 failed, 0 running or interrupted" in report
    rows = [line for line in report.splitlines() if re.match(r"\| \d+ \| ", line)]
    assert rows[0].startswith(f"| {best.number} | {best.value:.4g} | ") and rows[0].endswith(f"| trials/trial-{best.number:04d} |")
    command = best.user_attrs["command"]
    assert f"Retrain the best configuration:\n\n```\n{command}\n```" in report
    assert f"retrain: {command}\n" in again.stdout
    assert "## Parameter importances" in report and "## Search space" in report and "- lr: 5e-05..0.002:log" in report
    assert "trial" in (out / "report.html").read_text()

    # the retrain command is a real ganzoo train command: the trial's settings, seed, data and budget
    words = shlex.split(command)
    assert words[:3] == ["ganzoo", "train", "sngan"] and "--steps=20" in words and "--seed=0" in words and "--limit-data=512" in words
    for name, value in best.params.items():
        assert words[words.index(f"--{name}") + 1] == (repr(value) if isinstance(value, float) else str(value))
    run = tmp_path / "retrained"
    retrained = subprocess.run([sys.executable, "-m", "ganzoo", *words[1:], "--out", str(run), "--quiet"], capture_output=True,
                               text=True, timeout=TIMEOUT, check=False)
    assert retrained.returncode == 0, retrained.stderr
    from ganzoo.runs import rundir

    assert rundir.checkpoint_step(run) == 20


@pytest.mark.slow  # a tune stopped with Ctrl-C during its second trial, then continued
def test_a_ctrl_c_stops_the_tune_and_the_same_command_finishes_its_trials(tmp_path):
    optuna = pytest.importorskip("optuna")
    out = tmp_path / "tune"
    args = ("--trials", "3", "--budget", "40steps", *SMALL)
    process = subprocess.Popen(tune_argv(out, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        second = out / "trials" / "trial-0001" / "checkpoint.safetensors"
        wait_for(second.exists, 600, "trial 1 wrote its first checkpoint", process)
        process.send_signal(signal.SIGINT)  # the tune only: its children run in their own sessions
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "stopped; the running trials stopped at a checkpoint (1 running in the study). Continue with the same command" in stderr, stderr
    study = load_study(f"sqlite:///{out / 'study.db'}")
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states == {0: optuna.trial.TrialState.COMPLETE, 1: optuna.trial.TrialState.RUNNING}
    log = out / "logs" / "trial-0001-seed-0.log"
    assert "stopped by signal 2" in log.read_text()
    assert "1 running or interrupted" in (out / "report.md").read_text()
    first = trials_of(out)[0]

    done = tune(out, *args)
    assert done.returncode == 0, done.stderr
    trials = trials_of(out)
    assert [t.number for t in trials] == [0, 1, 2] and all(t.state.name == "COMPLETE" for t in trials)
    assert (trials[0].params, trials[0].value) == (first.params, first.value)
    assert json.loads((out / "tune.json").read_text())["target"] == 3  # not 3 more: the interrupted tune is finished first
    text = log.read_text()
    assert text.index("stopped by signal 2") < text.index("--resume")
    lines = train_lines(log)
    assert len(lines) == 2 and "--resume" not in lines[0] and "--resume" in lines[1]
    assert sorted(trials[1].intermediate_values) == [1, 2, 3, 4]  # every 10 steps of 40, none lost or repeated
    from ganzoo.runs import rundir

    steps = [r["step"] for r in rundir.read_metrics(out / "trials" / "trial-0001") if "fid" in r]
    assert steps == [10, 20, 30, 40]
    assert rundir.checkpoint_step(out / "trials" / "trial-0001") == 40
    for n in (0, 2):
        assert len(train_lines(out / "logs" / f"trial-{n:04d}-seed-0.log")) == 1
    assert "3 trials of 3: 3 complete, 0 pruned, 0 failed, 0 running" in (out / "report.md").read_text()


GOOD = {"lr": 2e-3, "lr-d": 2e-3, "beta1": 0.5, "n-dis": 1, "loss": "hinge", "ema": 0.99}


@pytest.mark.slow  # four trials of 60 steps
def test_a_trial_that_learns_nothing_is_pruned(tmp_path):
    """Three good trials, enqueued, then one whose learning rates are too small to learn anything in
    the budget: its in-training FID is worse than the median of theirs at the same evaluation (the
    three are the same run, seed included), so the median pruner stops it and the study records it
    pruned. The four enqueued trials are the four that --trials 4 runs."""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{tmp_path / 'study.db'}"  # outside --out, so that --out starts empty
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="minimize")
    for params in (GOOD, GOOD, GOOD, {**GOOD, "lr": 5e-5, "lr-d": 5e-5}):
        study.enqueue_trial(params)
    out = tmp_path / "tune"
    argv = tune_argv(out, "--trials", "4", "--budget", "60steps", "--eval-n", "200", "--limit-data", "1024", "--final-n", "200",
                     "--storage", storage)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for((out / "tune.json").exists, 300, "the tune wrote tune.json", process)
        target = json.loads((out / "tune.json").read_text())["target"]
        if target != 4:  # fail now rather than after training twice as many trials
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=300)
            pytest.fail(f"--trials 4 on a study with 4 enqueued (WAITING) trials set the target to {target}, not 4")
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    searched = " ".join(stderr.split())
    assert "searching beta1=0.0..0.9, ema=0.99..0.9999, loss=hinge,bce, lr=5e-05..0.002:log, lr-d=5e-05..0.002:log, n-dis=1..3" in searched
    assert not (out / "study.db").exists()
    trials = trials_of(out, storage)
    fids = {t.number: dict(t.intermediate_values) for t in trials}
    assert [t.number for t in trials] == [0, 1, 2, 3], fids
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"], fids
    assert trials[3].params == {**GOOD, "lr": 5e-5, "lr-d": 5e-5}
    assert all(sorted(fids[n]) == [1, 2, 3, 4] for n in range(3)), fids
    last = max(fids[3])  # where it was stopped: its best FID so far is worse than the median there
    assert min(fids[3].values()) > statistics.median(fids[n][last] for n in range(3)), fids
    from ganzoo.runs import rundir

    pruned = out / "trials" / "trial-0003"
    assert 0 < rundir.checkpoint_step(pruned) < 60  # it checkpointed and stopped early
    assert "stopped by signal 2" in (out / "logs" / "trial-0003-seed-0.log").read_text()
    assert not (pruned / "eval-lenet.json").exists()  # and was not evaluated
    assert len(train_lines(out / "logs" / "trial-0003-seed-0.log")) == 1
    assert "4 trials of 4: 3 complete, 1 pruned, 0 failed, 0 running or interrupted" in (out / "report.md").read_text()
    assert "trial 3 (pruned)" in (out / "report.html").read_text()


def parent_of_trainings(out: Path, seen: dict[int, int]) -> None:
    """Which tune process started each trial's training now alive: the GANZOO_STOP_WITH_PARENT of
    its environment (ganzoo.compare.runner.jobs_env), found through /proc."""
    marker = str(out / "trials" / "trial-")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in argv]
        if "train" not in words or "--out" not in words or not words[words.index("--out") + 1].startswith(marker):
            continue
        number = int(words[words.index("--out") + 1][len(marker):])
        for item in environ:
            if item.startswith(b"GANZOO_STOP_WITH_PARENT="):
                seen[number] = int(item.split(b"=", 1)[1])


@pytest.mark.slow  # two tunes of the same folder at once
def test_two_tune_processes_share_one_study(tmp_path):
    out = tmp_path / "tune"
    argv = tune_argv(out, "--trials", "4", "--budget", "20steps", *SMALL, "--jobs", "1")
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes = [first]
    seen: dict[int, int] = {}
    try:
        wait_for((out / "tune.json").exists, 300, "the first tune wrote tune.json", first)
        processes.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and any(p.poll() is None for p in processes):
            parent_of_trainings(out, seen)
            time.sleep(0.5)
        outputs = [p.communicate(timeout=60) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, stderr) in zip(processes, outputs):
        assert p.returncode == 0, stderr
    trials = trials_of(out)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    # two run at once: trial 2 or 3 may be pruned once three others are complete (whichever ends later)
    assert all(t.state.name == "COMPLETE" for t in trials[:2]) and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials[2:])
    assert sum(t.state.name == "COMPLETE" for t in trials) >= 3
    assert json.loads((out / "tune.json").read_text())["target"] == 4
    for t in trials:
        lines = train_lines(out / "logs" / f"trial-{t.number:04d}-seed-0.log")
        assert len(lines) == 1 and "--resume" not in lines[0], lines  # each trial trained once
        assert (out / "trials" / f"trial-{t.number:04d}" / "eval-lenet.json").is_file() == (t.state.name == "COMPLETE")
    assert sorted(seen) == [0, 1, 2, 3], seen  # each trial's training seen alive
    assert set(seen.values()) == {first.pid, processes[1].pid}, seen  # both tunes ran trials
    complete = sum(t.state.name == "COMPLETE" for t in trials)
    assert f"4 trials of 4: {complete} complete, {4 - complete} pruned, 0 failed, 0 running" in (out / "report.md").read_text()
