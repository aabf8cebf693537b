"""ganzoo.testing, the helpers for plugin authors: they must do what docs/plugins.md says."""

from __future__ import annotations

import pytest
import torch

from ganzoo import hookimpl
from ganzoo.core.errors import NonFiniteError
from ganzoo.core.host import load_host
from ganzoo.core.parts import NamedFactory, PolicyOutput, Strategy
from ganzoo.testing import TINY32, fresh_plugin_manager, make_host, registered, smoke_train, tiny_dataset, tiny_images


class Extra:
    @hookimpl
    def ganzoo_register_strategies(self, register):
        register(Strategy("extra", "an extra strategy", {"policy": "tuple", "n_gens": 2}))


def test_fresh_plugin_manager_calls_one_plugins_hooks():
    pm = fresh_plugin_manager()
    pm.register(Extra())
    found = []
    pm.hook.ganzoo_register_strategies(register=found.append)
    assert [s.name for s in found] == ["extra"]
    assert fresh_plugin_manager().get_plugins() == set()  # each one is new and empty


def test_registered_adds_for_the_block_only():
    host = make_host()
    before = host.registry.names("strategy")
    with registered(Extra(), host, name="extra-plugin") as same:
        assert same is host
        assert host.registry.entry("strategy", "extra").plugin == "extra-plugin"
        assert host.plugins["extra-plugin"].hooks == ("ganzoo_register_strategies",)
    assert host.registry.names("strategy") == before and "extra-plugin" not in host.plugins
    assert not host.pm.has_plugin("extra-plugin")
    with registered(Extra()) as fresh:  # without a host: a new one with the built-ins and the tiny data
        assert {"extra", "psg"} <= set(fresh.registry.names("strategy")) and "tiny" in fresh.registry.names("dataset")


def test_tiny_images_are_deterministic_squares_with_quadrant_labels():
    images, labels = tiny_images(8)
    again, _ = tiny_images(8)
    assert torch.equal(images, again) and images.dtype == torch.uint8 and images.shape == (8, 1, 28, 28)
    for image, label in zip(images, labels):
        rows, cols = image[0].nonzero(as_tuple=True)
        assert len(rows) == 9 * 9  # one 9x9 square (28 // 3)
        assert (rows.float().mean() >= 14) == (label >= 2) and (cols.float().mean() >= 14) == (label % 2 == 1)
    data = tiny_dataset(TINY32, count=4, channels=3, size=32).load(None, None, "test")
    assert data.images.shape == (4, 3, 32, 32) and not torch.equal(data.images[:4], tiny_images(4, 3, 32)[0])


def test_smoke_train_returns_the_metrics_and_keeps_the_run_when_asked(tmp_path):
    record = smoke_train("psg", steps=3, n_gens=3, run_dir=tmp_path / "run")
    assert record["step"] == 3 and len(record["g_loss"]) == 3 and record["chance"] == pytest.approx(1 / 4)
    assert (tmp_path / "run" / "checkpoint.safetensors").is_file()
    on32 = smoke_train("sngan", steps=1, dataset=TINY32)
    assert on32["step"] == 1


def test_smoke_train_fails_on_a_loss_that_goes_nan():
    def broken(discriminator, real, fakes):
        scores = discriminator(torch.cat([real, *fakes])).view(len(fakes) + 1, real.shape[0])
        nan = scores[1:] * float("nan")
        return PolicyOutput(scores[0] * 0, nan, nan, scores.argmax(0), torch.ones(real.shape[0]), 0.5)

    class Broken:
        @hookimpl
        def ganzoo_register_input_policies(self, register):
            register(NamedFactory("broken", "gives NaN generator losses", lambda config: broken))

    with registered(Broken()) as host, pytest.raises(NonFiniteError, match="non-finite values at step 1"):
        smoke_train("dcgan", host=host, policy="broken")


def test_load_host_takes_plugin_objects_like_make_host():
    host = load_host(plugins=[Extra()])
    assert "extra" in host.registry.names("strategy") and "tiny" not in host.registry.names("dataset")
