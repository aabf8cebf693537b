"""Class-conditional built-in nets (``classes=K``): conditional batch norm in G, a projection
discriminator, and nothing changed with ``classes=0`` (checked against the files as they were
before, read from git)."""

from __future__ import annotations

import subprocess
import sys
import types
from functools import cache
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo.core.errors import GanzooError
from ganzoo.plugins.nets import cnn32, dcgan28, dcgan64, resnet
from ganzoo.plugins.nets.conditional import ConditionalBatchNorm2d, Projection
from ganzoo.training.generator_bank import GeneratorBank

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "2231b3801fb4930584969a453772653d019c6bda"  # the last commit before the nets could condition
CPU = torch.device("cpu")
Z, K = 16, 10
MODULES = {"dcgan28": dcgan28, "cnn32": cnn32, "resnet": resnet, "dcgan64": dcgan64}
CASES = {  # id: (module name, width/size keywords, channels, image size)
    "dcgan28-w32": ("dcgan28", {"width": 32}, 1, 28),
    "dcgan28": ("dcgan28", {}, 1, 28),
    "dcgan28-w128": ("dcgan28", {"width": 128}, 1, 28),
    "cnn32": ("cnn32", {}, 3, 32),
    "resnet32": ("resnet", {"size": 32}, 3, 32),
    "resnet48": ("resnet", {"size": 48}, 3, 48),
    "resnet64": ("resnet", {"size": 64}, 3, 64),
    "resnet128": ("resnet", {"size": 128}, 3, 128),
    "dcgan64": ("dcgan64", {}, 3, 64),
}
BIG = ("resnet64", "resnet128")  # built on the meta device (no weights) but in one test
SMALL = [case for case in CASES if case not in BIG]
RUN = ["dcgan28", "cnn32", "resnet32", "dcgan64"]  # one of each code path, for the tests that run the nets
FEATURES = {  # what D's last layer reads, per image: the projection's width
    "dcgan28-w32": 64 * 7 * 7, "dcgan28": 128 * 7 * 7, "dcgan28-w128": 256 * 7 * 7, "cnn32": 512 * 4 * 4,
    "resnet32": 128, "resnet48": 1024, "resnet64": 1024, "resnet128": 1024, "dcgan64": 512 * 4 * 4,
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny batches: a second thread only contends with whatever else runs (as test_sample_export)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(case: str, part: str, module=None, **kwargs) -> nn.Module:
    """The case's G or D (from ``module``, else the current one); on the meta device for the big ones."""
    name, widths, channels, _ = CASES[case]
    cls = getattr(module or MODULES[name], part)
    with torch.device("meta" if case in BIG else "cpu"):
        return cls(Z, channels, **widths, **kwargs) if part == "Generator" else cls(channels, **widths, **kwargs)


def images(case: str, n: int = 2) -> torch.Tensor:
    _, _, channels, size = CASES[case]
    return torch.randn(n, channels, size, size)


def git_show(path: str) -> str:
    try:
        done = subprocess.run(["git", "show", f"{BEFORE}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no git history here with {path} as it was at {BEFORE[:7]}")
    return done.stdout


@cache
def before(name: str) -> types.ModuleType:
    """The module as it was before conditioning (commit BEFORE), with the init.py of then too."""

    def load(module_name: str, path: str) -> types.ModuleType:
        module = types.ModuleType(module_name)
        sys.modules[module_name] = module  # dataclasses look their module up there
        try:
            exec(compile(git_show(path), f"{BEFORE[:7]}:{path}", "exec"), module.__dict__)
        finally:
            del sys.modules[module_name]
        return module

    init = load("init_before", "plugins/nets/init.py")
    current = sys.modules["ganzoo.plugins.nets.init"]
    sys.modules["ganzoo.plugins.nets.init"] = init  # the old net imports the old init
    try:
        return load(f"{name}_before", f"plugins/nets/{name}.py")
    finally:
        sys.modules["ganzoo.plugins.nets.init"] = current


def conditional_parts(module: nn.Module) -> list[str]:
    return [n for n, m in module.named_modules() if isinstance(m, ConditionalBatchNorm2d | Projection | nn.Embedding)]


def batch_norms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def perturb(module: nn.Module) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Embedding):
                m.weight.normal_()


# classes=0: exactly the nets as they were.

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("part", ["Generator", "Discriminator"])
def test_unconditional_nets_are_as_before(case, part):
    """Same layers, same state_dict, same initial weights from the same seed, same outputs (the
    big ResNets: same layers and state_dict shapes; they share their code with resnet32)."""
    torch.manual_seed(0)
    old = build(case, part, before(CASES[case][0]))
    torch.manual_seed(0)
    new = build(case, part, classes=0)
    assert conditional_parts(new) == [] and new.classes == 0
    # The same layers by class name: the old module's own classes (GBlock...) are other
    # objects, and G's net is now a conditional.Sequential, an nn.Sequential with y.
    assert [type(m).__name__ for m in new.modules()] == [type(m).__name__ for m in old.modules()]
    old_state, new_state = old.state_dict(), new.state_dict()
    assert list(new_state) == list(old_state)
    for key, value in old_state.items():
        assert new_state[key].shape == value.shape, key
        assert case in BIG or torch.equal(new_state[key], value), key
    if case in RUN or case.startswith("dcgan28"):
        x = torch.randn(3, Z) if part == "Generator" else images(case, 3)
        assert torch.equal(new(x), old(x))


@pytest.mark.parametrize("case", ["dcgan28", "cnn32", "resnet32", "dcgan64"])
def test_unconditional_discriminators_with_several_outputs_are_as_before(case):
    torch.manual_seed(0)
    old = build(case, "Discriminator", before(CASES[case][0]), outputs=3)
    torch.manual_seed(0)
    new = build(case, "Discriminator", outputs=3)
    x = images(case)
    assert torch.equal(new(x), old(x)) and new(x).shape == (2, 3)


# classes=K: conditional batch norm in G.

@pytest.mark.parametrize("case", CASES)
def test_conditional_generator_layers(case):
    """Every batch norm of G conditional (the ResNets' last one excepted, as in the reference code),
    scale embeddings 1 and shifts 0 at the start, K - 1 more scales and shifts per channel."""
    plain, cond = build(case, "Generator"), build(case, "Generator", classes=K)
    cbns = [m for m in cond.modules() if isinstance(m, ConditionalBatchNorm2d)]
    unconditional = 1 if CASES[case][0] == "resnet" else 0
    assert len(cbns) == len(batch_norms(plain)) - unconditional
    assert all(not m.bn.affine and m.bn.track_running_stats for m in cbns)
    if case in SMALL:
        assert all(torch.equal(m.gamma.weight, torch.ones(K, m.bn.num_features)) for m in cbns)
        assert all(torch.equal(m.beta.weight, torch.zeros(K, m.bn.num_features)) for m in cbns)
    assert count(cond) - count(plain) == sum(2 * (K - 1) * m.bn.num_features for m in cbns)
    assert len(cond.state_dict()) == len(plain.state_dict())  # weight, bias -> gamma.weight, beta.weight


@pytest.mark.parametrize("case", RUN)
def test_conditional_generator_follows_the_labels(case):
    g = build(case, "Generator", classes=K)
    z, y, y2 = torch.randn(3, Z), torch.tensor([0, 2, 9]), torch.tensor([5, 3, 9])
    size = CASES[case][3]
    fakes = g(z, y)
    assert fakes.shape == (3, CASES[case][2], size, size)
    assert torch.equal(fakes, g(z, y2))  # scale 1 and shift 0 for every class at the start
    perturb(g)
    g.eval()  # with the running statistics, an image depends on its own z and label only
    fakes, others = g(z, y), g(z, y2)
    assert not torch.allclose(fakes[:2], others[:2])
    torch.testing.assert_close(fakes[2], others[2])
    with pytest.raises(GanzooError, match="class-conditional"):
        g(z)
    with pytest.raises(GanzooError, match="shape"):
        g(z, y[:2])


def test_the_big_resnets_run_conditionally():
    y = torch.tensor([3, 7])
    for case in ("resnet48", "resnet128"):  # resnet64 is resnet128 less a block
        name, size = CASES[case][0], CASES[case][3]
        g = MODULES[name].Generator(Z, 3, size=size, classes=K)
        d = MODULES[name].Discriminator(3, size=size, classes=K)
        with torch.no_grad():
            fakes = g(torch.randn(2, Z), y)
            assert fakes.shape == (2, 3, size, size)
            assert d(fakes, y).shape == (2,)


# classes=K: the projection discriminator.

def features(d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """h, the (B, F) features D's last layer reads (dcgan64: the flattened input of its last conv)."""
    last = d.linear if isinstance(d, resnet.Discriminator) else d.net[-2] if isinstance(d, dcgan64.Discriminator) else d.net[-1]
    seen = []
    handle = last.register_forward_pre_hook(lambda _module, args: seen.append(args[0].flatten(1)))
    try:
        d(x, torch.zeros(x.shape[0], dtype=torch.long))
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("case", CASES)
def test_projection_parameters(case):
    """K x F more parameters than the unconditional D, in an embedding Xavier-uniform at the start."""
    plain, cond = build(case, "Discriminator"), build(case, "Discriminator", classes=K)
    weight = cond.projection.embed.weight
    assert weight.shape == (K, FEATURES[case])
    assert count(cond) - count(plain) == K * FEATURES[case]
    assert [n for n, _ in cond.named_parameters()] == [n for n, _ in plain.named_parameters()] + ["projection.embed.weight"]
    bound = (6 / (K + FEATURES[case])) ** 0.5
    assert case in BIG or (weight.abs().max() <= bound and weight.std() > bound / 3)


@pytest.mark.parametrize("case", RUN)
def test_projection_adds_the_class_embedding_times_the_features(case):
    d = build(case, "Discriminator", classes=K)
    x, y, y2 = images(case, 4), torch.tensor([0, 1, 2, 9]), torch.tensor([5, 5, 3, 0])
    h = features(d, x)
    assert h.shape == (4, FEATURES[case])
    embed = d.projection.embed.weight
    expected = ((embed[y] - embed[y2]) * h).sum(dim=1)
    logits = d(x, y)
    assert logits.shape == (4,)
    torch.testing.assert_close(logits - d(x, y2), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(GanzooError, match="class-conditional"):
        d(x)


@pytest.mark.parametrize("case", ["dcgan28", "resnet32", "dcgan64"])
def test_spectral_norm_on_every_layer_of_a_projection_discriminator(case):
    d = build(case, "Discriminator", classes=K)
    for m in list(d.modules()):
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
            spectral_norm(m, n_power_iterations=1)
    assert hasattr(d.projection.embed, "parametrizations")
    logits = d(images(case), torch.tensor([1, 8]))
    assert logits.shape == (2,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert d.projection.embed.parametrizations.weight.original.grad is not None


def test_projection_needs_one_output_and_classes_a_count():
    with pytest.raises(GanzooError, match="one logit per image"):
        dcgan28.Discriminator(1, outputs=3, classes=K)
    with pytest.raises(GanzooError, match="one logit per image"):
        resnet.Discriminator(3, outputs=2, classes=K)
    for bad in (-1, 2.5, True):
        with pytest.raises(GanzooError, match="classes"):
            cnn32.Generator(Z, 3, classes=bad)


# Under the trainer's vmap and bf16 autocast.

def conditional_generators(n: int, module=dcgan28) -> nn.ModuleList:
    """n conditional generators whose class embeddings are no longer 1 and 0."""
    torch.manual_seed(0)
    gens = nn.ModuleList([module.Generator(Z, 1 if module is dcgan28 else 3, classes=K) for _ in range(n)])
    for g in gens:
        perturb(g)
    return gens


@pytest.mark.parametrize(("module", "shared_z"), [(dcgan28, True), (dcgan28, False), (resnet, True)])
def test_the_vmapped_bank_matches_the_loop(module, shared_z):
    """GeneratorBank, looped and vmapped (labels shared by the N generators): images, running
    statistics and gradients (gradients as norms, as test_generator_bank's close_to_float64: at
    batch 2 both paths are ~1e-3 off float64 on the ResNet's first linear layer)."""
    looped, stacked = conditional_generators(2, module), conditional_generators(2, module)
    y = torch.tensor([0, 4, 4, 9]) if module is dcgan28 else torch.tensor([4, 9])
    z = torch.randn(len(y), Z) if shared_z else torch.randn(2, len(y), Z)
    expected = torch.stack(GeneratorBank(looped, vectorized=False, device=CPU)(z, y))
    fakes = torch.stack(GeneratorBank(stacked, vectorized=True, device=CPU)(z, y))
    torch.testing.assert_close(fakes, expected, rtol=1e-5, atol=1e-5)
    for a, b in zip(looped.buffers(), stacked.buffers()):  # the running statistics, updated in each
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    weights = torch.randn(expected.shape)
    (expected * weights).sum().backward()
    (fakes * weights).sum().backward()
    for (name, a), b in zip(looped.named_parameters(), stacked.parameters()):
        assert (b.grad - a.grad).norm() <= 1e-2 * a.grad.norm() + 1e-3, name  # + a floor: biases before BN get ~0


@pytest.mark.parametrize("vectorized", [True, False])
def test_conditional_nets_under_bf16_autocast(vectorized):
    z, y = torch.randn(4, Z), torch.tensor([0, 4, 4, 9])
    exact = torch.stack(GeneratorBank(conditional_generators(2), vectorized=False, device=CPU)(z, y))
    bank = GeneratorBank(conditional_generators(2), vectorized=vectorized, device=CPU, amp=torch.bfloat16)
    fakes = torch.stack(bank(z, y))
    assert fakes.dtype == torch.float32 and (fakes - exact).abs().max() < 0.05
    d = dcgan28.Discriminator(1, classes=K)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = d(fakes[0], y)
    assert logits.shape == y.shape and torch.isfinite(logits).all()
