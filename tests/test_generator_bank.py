"""The N generators looped and vmapped, and bf16 autocast: same results up to rounding, real nets."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ganzoo.core.errors import GanzooError
from ganzoo.plugins.nets import cnn32, dcgan28
from ganzoo.training.generator_bank import GeneratorBank, use_vmap, why_not_vmap
from ganzoo.training.precision import Autocast, resolve_amp

CPU = torch.device("cpu")


def generators(n: int, module=dcgan28) -> nn.ModuleList:
    torch.manual_seed(0)
    return nn.ModuleList([module.Generator(16, 1) for _ in range(n)])


def close_to_float64(grad: torch.Tensor, exact: torch.Tensor) -> bool:
    """Gradients agree with float64 up to float32 rounding. Measured as a norm, not element by
    element: a pre-ReLU activation within ~1e-7 of zero can land on the other side of the kink in
    float32 (2 of 4.2M did in cnn32 at batch 64), which changes a few elements, and through batch
    norm their channel, by a lot; the norm of the difference stays about 1e-3 of the gradient's."""
    return bool((grad.double() - exact).norm() <= 1e-2 * exact.norm() + 1e-3)  # + a floor for exactly-zero gradients


@pytest.mark.parametrize("shared_z", [True, False])
@pytest.mark.parametrize("vectorized", [True, False])
@pytest.mark.parametrize("module", [dcgan28, cnn32])
def test_both_paths_match_a_float64_loop(shared_z, vectorized, module):
    """The bank, looped or vmapped, against the loop run in float64 (the exact answer)."""
    gens = generators(3, module)
    exact_gens = copy.deepcopy(gens).double()
    z = torch.randn(5, 16) if shared_z else torch.randn(3, 5, 16)
    fakes = torch.stack(GeneratorBank(gens, vectorized=vectorized, device=CPU)(z))
    exact = torch.stack(GeneratorBank(exact_gens, vectorized=False, device=CPU)._looped(z.double()))
    assert fakes.shape == exact.shape == (3, 5, 1, *exact.shape[-2:])
    torch.testing.assert_close(fakes.double(), exact, rtol=1e-4, atol=1e-5)

    # The gradient reaches each generator's own parameters.
    weights = torch.randn(exact.shape, dtype=torch.float64)
    (fakes * weights.float()).sum().backward()
    (exact * weights).sum().backward()
    for (name, a), b in zip(exact_gens.named_parameters(), gens.parameters()):
        assert b.grad is not None and close_to_float64(b.grad, a.grad), name
    # Batch norm's running statistics are updated in each generator, as the loop does.
    for a, b in zip(exact_gens.buffers(), gens.buffers()):
        torch.testing.assert_close(b.double(), a.double(), rtol=1e-4, atol=1e-6)
    assert all(int(b) == 1 for name, b in gens.named_buffers() if name.endswith("num_batches_tracked"))


def test_a_gradient_sent_to_one_generator_reaches_that_one_only():
    gens = generators(3)
    fakes = GeneratorBank(gens, vectorized=True, device=CPU)(torch.randn(3, 4, 16))  # a list, one per generator
    fakes[1].sum().backward()
    assert all(p.grad is None or not p.grad.any() for g in (gens[0], gens[2]) for p in g.parameters())
    assert all(p.grad is not None and p.grad.any() for p in gens[1].net[0].parameters())


def test_eval_mode_is_followed_when_vmapped():
    gens = generators(2)
    bank = GeneratorBank(gens, vectorized=True, device=CPU)
    gens.eval()
    z = torch.randn(4, 16)
    before = [b.clone() for b in gens.buffers()]
    out = torch.stack(bank(z))
    expected = torch.stack([g(z) for g in gens])
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(before, gens.buffers()))  # eval: statistics untouched


def test_which_generators_can_be_vmapped():
    assert why_not_vmap(generators(3)) is None
    mixed = nn.ModuleList([dcgan28.Generator(16, 1), cnn32.Generator(16, 1)])
    assert "not built like generator 1" in why_not_vmap(mixed)
    tied = generators(2)
    tied[1].net[0] = tied[0].net[0]
    assert why_not_vmap(tied) == "the generators share layers"
    with pytest.raises(GanzooError, match="cannot be vmapped .the generators share layers"):
        use_vmap("on", tied, CPU)
    assert use_vmap("auto", tied, torch.device("cuda")) is False
    assert use_vmap("auto", generators(2), CPU) is False  # measured: the loop is as fast on CPU
    assert use_vmap("auto", generators(2), torch.device("cuda")) is True
    assert use_vmap("on", generators(1), CPU) is False  # one generator: nothing to vmap
    with pytest.raises(GanzooError, match="vmap must be one of"):
        use_vmap("yes", generators(2), CPU)


def test_amp_choices():
    assert resolve_amp("off", CPU) is None
    assert resolve_amp("bf16", CPU) is torch.bfloat16
    with pytest.raises(GanzooError, match="amp must be one of"):
        resolve_amp("fp16", CPU)
    flags = open("/proc/cpuinfo").read()
    native = "amx_bf16" in flags or "avx512_bf16" in flags
    assert resolve_amp("auto", CPU) is (torch.bfloat16 if native else None)


def test_autocast_runs_the_network_in_bf16_and_hands_back_float32():
    torch.manual_seed(0)
    d = dcgan28.Discriminator(1)
    x = torch.randn(8, 1, 28, 28)
    seen = []
    d.net[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    out = Autocast(d, CPU, torch.bfloat16)(x)
    assert seen == [torch.bfloat16] and out.dtype == torch.float32
    torch.testing.assert_close(out, d(x), rtol=0.05, atol=0.05)  # bf16 keeps ~3 significant digits

    gens, z = generators(2), torch.randn(4, 16)
    gens.eval()  # the same batch-norm statistics for both calls
    fakes = torch.stack(GeneratorBank(gens, vectorized=True, device=CPU, amp=torch.bfloat16)(z))
    assert fakes.dtype == torch.float32
    exact = torch.stack(GeneratorBank(gens, vectorized=False, device=CPU)(z))
    assert 0 < (fakes - exact).abs().max() < 0.05


def test_training_with_each_path_agrees_over_a_few_steps(small_run):
    """The same run looped and vmapped, in float32: the losses agree to rounding."""
    looped = small_run("psg", n_gens=2, vmap="off", amp="off", steps=3)
    vmapped = small_run("psg", n_gens=2, vmap="on", amp="off", steps=3, out=looped.run_dir.parent / "vmapped")
    assert vmapped.calls.vectorized and not looped.calls.vectorized
    for key in ("d_loss", "g_loss_mean"):
        assert vmapped.latest[key] == pytest.approx(looped.latest[key], rel=1e-3)
    bf16 = small_run("psg", n_gens=2, vmap="off", amp="bf16", steps=3, out=looped.run_dir.parent / "bf16")
    assert bf16.calls.amp is torch.bfloat16
    assert bf16.latest["d_loss"] == pytest.approx(looped.latest["d_loss"], rel=0.05)


def test_runs_from_before_amp_resume_in_float32():
    from ganzoo.training.resume import config_from_checkpoint

    old = {"strategy": "psg", "config": {"n_gens": 2, "device": "cpu"}}  # a manifest written before --amp existed
    assert config_from_checkpoint(old).amp == "off"
    assert config_from_checkpoint({"strategy": "psg", "config": {"amp": "bf16"}}).amp == "bf16"


@pytest.mark.slow  # torch.compile's first compilation takes ~20 s on 2 cores
def test_compiled_training_matches_eager_to_rounding(small_run):
    plain = {"r1": 0.0, "r2": 0.0}  # psg's penalties are double backward, which --compile does not support
    eager = small_run("psg", n_gens=1, amp="off", steps=2, log_every=1, options=plain)
    compiled = small_run("psg", n_gens=1, amp="off", steps=2, log_every=1, compile=True, out=eager.run_dir.parent / "compiled",
                         options=plain)
    assert isinstance(compiled.calls.generate, torch._dynamo.eval_frame.OptimizedModule)
    assert not isinstance(eager.calls.generate, torch._dynamo.eval_frame.OptimizedModule)
    for key in ("d_loss", "g_loss_mean"):
        assert compiled.latest[key] == pytest.approx(eager.latest[key], rel=1e-3)
    # Adam moves every weight by about lr per step whatever the gradient's size, so where a gradient
    # is near zero rounding can flip its sign: the weights agree to 2 steps x 2 lr.
    lr = eager.config.lr
    for a, b in zip(eager.generators.parameters(), compiled.generators.parameters()):
        torch.testing.assert_close(b, a, rtol=0, atol=4 * lr)
