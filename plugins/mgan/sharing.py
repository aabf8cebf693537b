"""MGAN's parameter sharing: every generator keeps its own first layer (z -> h) and shares the rest with generator 1."""

from __future__ import annotations

from torch import nn


def _leaves(module: nn.Module) -> list[str]:
    """Names of the submodules that hold parameters or buffers directly, in definition order."""
    return [name for name, m in module.named_modules()
            if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False))]


def share_all_but_first_layer(generators: nn.ModuleList) -> None:
    """Replace every layer but the first of generators 2..N by generator 1's (the same module object)."""
    first = generators[0]
    names = _leaves(first)
    for generator in generators[1:]:
        for name in names[1:]:
            parent_name, _, child = name.rpartition(".")
            parent = generator.get_submodule(parent_name) if parent_name else generator
            parent._modules[child] = first.get_submodule(name)
