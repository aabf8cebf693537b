"""The N generators as one module whose forward draws all their fakes: a plain loop over them, or
one vmapped call (``--vmap``).

The vmapped path stacks the N generators' weights (``torch.stack`` keeps the gradient path to
each generator's own parameters), runs the architecture once with ``torch.func.vmap`` +
``functional_call`` (convolutions become grouped convolutions), and copies the updated batch-norm
statistics back. Both paths give the same images and gradients up to float rounding
(tests/test_generator_bank.py).

Which is faster depends on the device. On CPU the loop is as fast or faster (measured on 2
cores, docs/performance.md), so ``auto`` picks the loop there; on CUDA, where N small kernels
cost N launches, ``auto`` picks vmap (not yet measured on a GPU: benchmarks/gpu_check.sh times both).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from ganzoo.core.config import VMAP_CHOICES
from ganzoo.core.errors import GanzooError
from ganzoo.training.precision import autocast


def why_not_vmap(generators: nn.ModuleList) -> str | None:
    """Why these generators cannot run as one vmapped call, or None when they can."""
    first = generators[0]
    names = [(n, p.shape) for n, p in first.named_parameters()]
    seen: set[int] = set()
    for i, g in enumerate(generators):
        if type(g) is not type(first) or [(n, p.shape) for n, p in g.named_parameters()] != names:
            return f"generator {i + 1} is not built like generator 1"
        if any(hasattr(m, "parametrizations") for m in g.modules()):
            return "a generator has parametrized weights"
        ids = {id(p) for p in g.parameters()}
        if ids & seen:
            return "the generators share layers"
        seen |= ids
    return None


def use_vmap(choice: str, generators: nn.ModuleList, device: torch.device) -> bool:
    """Resolve ``--vmap auto|on|off``; ``on`` with generators that cannot be vmapped is an error."""
    if choice not in VMAP_CHOICES:
        raise GanzooError(f"vmap must be one of {', '.join(VMAP_CHOICES)}, got {choice!r}")
    reason = why_not_vmap(generators) if len(generators) > 1 else "there is one generator"
    if choice == "on" and reason and len(generators) > 1:
        raise GanzooError(f"--vmap on: the generators cannot be vmapped ({reason}); use --vmap off")
    if choice == "off" or reason:
        return False
    return choice == "on" or device.type == "cuda"


class GeneratorBank(nn.Module):
    """forward(z, y=None) -> the N generators' fakes, each (B, C, H, W) in float32; z is (B, z_dim) when
    every generator gets the same z (shared_z), else (N, B, z_dim); y, in a class-conditional run,
    the (B,) classes every generator is asked for. A list, as the input policies take it: the
    loop's images are not copied into one tensor only to be split again."""

    def __init__(self, generators: nn.ModuleList, *, vectorized: bool, device: torch.device,
                 amp: torch.dtype | None = None):
        super().__init__()
        self.generators = generators
        self.vectorized = vectorized
        self.device = device
        self.amp = amp
        if vectorized:
            # A weightless copy of the architecture for functional_call; not a submodule.
            template = copy.deepcopy(generators[0]).to("meta")
            for module in template.modules():  # vmap's batch norm rule takes float32 input only
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.register_forward_pre_hook(lambda _module, args: (args[0].float(), *args[1:]))
            self.__dict__["template"] = template

    def forward(self, z: Tensor, y: Tensor | None = None) -> list[Tensor]:
        with autocast(self.device, self.amp):
            fakes = list(self._vmapped(z, y).unbind(0)) if self.vectorized else self._looped(z, y)
        return [f.float() for f in fakes]  # no copy in float32

    def _looped(self, z: Tensor, y: Tensor | None = None) -> list[Tensor]:
        shared = z.dim() == 2
        if y is None:
            return [g(z if shared else z[i]) for i, g in enumerate(self.generators)]
        return [g(z if shared else z[i], y) for i, g in enumerate(self.generators)]

    def _vmapped(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        gens, template = self.generators, self.template
        template.train(gens[0].training)
        params = {name: torch.stack([g.get_parameter(name) for g in gens]) for name, _ in template.named_parameters()}
        buffers = {name: torch.stack([g.get_buffer(name) for g in gens]) for name, _ in template.named_buffers()}

        inputs = () if y is None else (y,)

        def one(p: dict[str, Tensor], b: dict[str, Tensor], z_one: Tensor) -> Tensor:
            return functional_call(template, (p, b), (z_one, *inputs))

        fakes = vmap(one, in_dims=(0, 0, None if z.dim() == 2 else 0), randomness="different")(params, buffers, z)
        with torch.no_grad():  # batch norm updated the stacked copies of its running statistics
            for name, stacked in buffers.items():
                for g, value in zip(gens, stacked):
                    g.get_buffer(name).copy_(value)
        return fakes
