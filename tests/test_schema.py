"""The schemas of the files ganzoo reads (``ganzoo.core.schema``, ``ganzoo.runs.schemas``): what
ganzoo writes passes, and any other JSON value is either accepted as fitting or refused with one
SchemaError line naming the field, never another exception (property-based, with hypothesis)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganzoo.compare.jobs import evaluated, read_state, state_document
from ganzoo.core.errors import GanzooError
from ganzoo.core.schema import Bool, Either, Int, Items, ListOf, MapOf, Null, Num, Opt, Record, SchemaError, Str, check
from ganzoo.runs import rundir
from ganzoo.runs.checkpoint import read_checkpoint
from ganzoo.runs.schemas import CHECKPOINT_MANIFEST, COMPARE_STATE, EVAL_RESULT, METRICS_RECORD, read_eval

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                    max_leaves=30)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """What ganzoo writes for a real run: its checkpoint manifest, metrics records and evaluation."""
    from ganzoo.api import evaluate, train

    run_dir = tmp_path_factory.mktemp("schema") / "run"
    train("psg", out=run_dir, steps=4, limit_data=64, batch_size=16, eval_every="2steps", eval_n=20)
    evaluate(run_dir, n=20)
    _, manifest = read_checkpoint(run_dir)
    return run_dir, manifest


def test_what_ganzoo_writes_fits_its_schemas(written):
    run_dir, manifest = written
    check(manifest, CHECKPOINT_MANIFEST, "manifest")
    records = rundir.read_metrics(run_dir)
    assert len(records) >= 2 and any("fid" in r for r in records)
    for record in records:
        check(record, METRICS_RECORD, "record")
    result = read_eval(run_dir / "eval-lenet.json")
    assert math.isfinite(result["fid"]) and result["protocol"]["step"] == 4


def test_a_refusal_names_the_file_the_field_the_value_and_what_was_expected():
    spec = Record({"config": Record({"n_gens": Int(1, 256)}), "shape": Items(Int(1, 4), Int(1, 8))})
    with pytest.raises(SchemaError, match=r"^run/ckpt: field 'config.n_gens' is 1000; expected an integer in \[1, 256\]$"):
        check({"config": {"n_gens": 1000}, "shape": [1, 2]}, spec, "run/ckpt")
    with pytest.raises(SchemaError, match=r"field 'shape\[1\]' is 0; expected an integer in \[1, 8\]"):
        check({"config": {"n_gens": 2}, "shape": [1, 0]}, spec, "f")
    with pytest.raises(SchemaError, match=r"field 'config' is missing"):
        check({"shape": [1, 2]}, spec, "f")
    with pytest.raises(SchemaError, match=r"the document is a list of 1 items"):
        check([1], spec, "f")
    # a huge integer is described, not printed (Python refuses to print more than 4300 digits)
    with pytest.raises(SchemaError, match=r"an integer of 401 digits"):
        check({"config": {"n_gens": 10**400}, "shape": [1, 2]}, spec, "f")
    with pytest.raises(SchemaError, match=r"a text of 100,000 characters"):
        check("x" * 100_000, Str(100), "f")


@pytest.mark.parametrize(("spec", "good", "bad"), [
    (Int(0, 3), [0, 3], [-1, 4, True, 1.0, "1", None]),
    (Num(), [0, -2.5, 10**6], [math.nan, math.inf, True, "1", None]),
    (Str(3, choices=("a", "bc")), ["a", "bc"], ["b", 1, None]),
    (Bool(), [True, False], [0, 1, None]),
    (Either(Int(), Null()), [None, 5], [1.5, "x"]),
    (ListOf(Int(), 1, 2), [[1], [1, 2]], [[], [1, 2, 3], [1.0], "ab"]),
    (MapOf(Num(), max_keys=2), [{}, {"a": 1}], [{"a": "x"}, {"a": 1, "b": 2, "c": 3}, []]),
    (Record({"a": Opt(Int())}, extra=False), [{}, {"a": 1}], [{"b": 1}, {"a": "1"}]),
])
def test_each_rule_takes_what_it_says_and_nothing_else(spec, good, bad):
    for value in good:
        check(value, spec, "f")
    for value in bad:
        with pytest.raises(SchemaError):
            check(value, spec, "f")


@FUZZ
@given(value=JSON)
def test_any_json_value_fits_or_is_one_schema_error(value):
    for spec in (CHECKPOINT_MANIFEST, METRICS_RECORD, EVAL_RESULT, COMPARE_STATE):
        try:
            check(value, spec, "fuzzed")
        except SchemaError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("fuzzed: ")


@FUZZ
@given(settings_=st.fixed_dictionaries({}, optional={
    "specs": JSON | st.lists(st.text(max_size=10), min_size=1, max_size=3), "seeds": JSON | st.integers(1, 100),
    "epochs": JSON, "dataset": JSON | st.text(max_size=10), "eval_every": JSON, "final_n": JSON | st.integers(2, 100),
    "features": JSON | st.text(max_size=10)}), noise=JSON)
def test_a_fuzzed_compare_json_is_read_or_refused_in_one_line(tmp_path_factory, settings_, noise):
    out = tmp_path_factory.mktemp("cmp", numbered=True)
    for document in (json.dumps({"settings": settings_}), json.dumps(noise)):
        (out / "compare.json").write_text(document)
        try:
            state = read_state(out)
        except GanzooError as exc:
            assert "\n" not in str(exc)
        else:
            assert isinstance(state, dict) and isinstance(state["seeds"], int)


def test_a_compare_json_that_ganzoo_writes_reads_back(tmp_path):
    settings_ = {"specs": ["sngan", "psg --n-gens 2"], "seeds": 2, "epochs": 1, "minutes": None, "dataset": "mnist",
                 "limit_data": 64, "eval_every": "1", "eval_n": 20, "final_n": 20, "features": "lenet", "until_converged": False}
    (tmp_path / "compare.json").write_bytes(state_document(settings_, ["ganzoo", "compare"]))
    assert read_state(tmp_path) == settings_


def test_an_evaluation_that_is_not_ganzoos_is_evaluated_again(tmp_path, written):
    """compare re-evaluates a run whose eval-<features>.json does not fit its schema (e.g. [1]) instead
    of failing on it; the report refuses it with one line."""
    from ganzoo.compare.jobs import Job, parse_spec

    run_dir, _ = written
    job = Job(parse_spec("psg"), 0, run_dir)
    assert evaluated(job, {"features": "lenet"})
    good = (run_dir / "eval-lenet.json").read_text()
    try:
        for text in ("[1]", '{"protocol": {"step": 4}, "fid": "low"}', '{"protocol": {"step": 4}}'):
            (run_dir / "eval-lenet.json").write_text(text)
            assert not evaluated(job, {"features": "lenet"})
            with pytest.raises(GanzooError, match="eval-lenet.json"):
                read_eval(run_dir / "eval-lenet.json")
    finally:
        (run_dir / "eval-lenet.json").write_text(good)
