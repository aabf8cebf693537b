"""Settings: precedence, checking of names, types and values."""

from __future__ import annotations

import pytest

from ganzoo.core.config import make_config, read_config_file
from ganzoo.core.errors import GanzooError


def test_precedence_defaults_strategy_file_command_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('n_gens = 3\nlr = 1e-3\naggregation = "independent"\n')
    config = make_config("psg", {"n_gens": 2, "aggregation": "mean", "policy": "tuple"}, read_config_file(path), {"lr": 5e-4})
    assert (config.n_gens, config.aggregation, config.lr, config.policy, config.batch_size) == (3, "independent", 5e-4, "tuple", 64)


def test_run_config_toml_reads_back(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[train]\nstrategy = "psg"\nn_gens = 4\n[meta]\nganzoo_version = "0.1.0"\n')
    assert read_config_file(path) == {"n_gens": 4}


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"n_gen": 2}, "unknown setting 'n_gen'; did you mean 'n_gens'"),
        ({"n_gens": "two"}, "'n_gens' must be int"),
        ({"n_gens": True}, "'n_gens' must be int"),
        ({"n_gens": 0}, "n-gens must be at least 1"),
        ({"batch_size": -1}, "batch-size must be at least 1"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"lr": 1.7e38}, "lr must be a positive number at most 1"),
        ({"beta1": 1.0}, r"beta1 must be in \[0, 1\)"),
        ({"device": "tpu"}, "device must be auto, cpu or cuda"),
        ({"steps": -5}, "steps must be 0 or more"),
    ],
)
def test_bad_settings(settings, message):
    with pytest.raises(GanzooError, match=message):
        make_config("psg", settings)


def test_bad_config_files(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("n_gens = = 2")
    with pytest.raises(GanzooError, match="not valid TOML"):
        read_config_file(broken)
    with pytest.raises(GanzooError, match="not found"):
        read_config_file(tmp_path / "missing.toml")


@pytest.mark.parametrize("key, value", [("n_gens", 10**30), ("z_dim", 10**7), ("batch_size", 10**9), ("n_dis", 10**6)])
def test_absurd_sizes_are_refused_before_anything_is_built(key, value):
    with pytest.raises(GanzooError, match=f"{key.replace('_', '-')} must be at most"):
        make_config("psg", {key: value})
