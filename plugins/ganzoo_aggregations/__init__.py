"""Loss aggregations: how the N per-generator losses become the generators' update.

    mean         all generators minimise the mean of the N losses (PSG's "average loss")
    independent  each generator minimises its own loss only (the ablation)
    algorithm1   the paper's Algorithm 1 generalised to N generators (see docs/psg.md)
"""

from __future__ import annotations

import torch

from ganzoo import hookimpl
from ganzoo.core.parts import NamedFactory, Objective, PolicyOutput, Supports


def mean(out: PolicyOutput) -> Objective:
    """(1/N) sum_i L_i, averaged over the batch; gradients flow through every sample of a tuple."""
    return Objective(out.g_losses.mean())


def independent(out: PolicyOutput) -> Objective:
    """sum_i L_i with loss i differentiable only through G_i's sample: G_i sees its own loss alone."""
    return Objective(out.g_losses_own.sum(0).mean())


def algorithm1(out: PolicyOutput) -> Objective:
    """Per tuple: if D picked G_k's sample as real, G_k is left out and the others get their averaged
    loss; if D picked the real sample, every generator gets the averaged loss. D learns only from the
    tuples where it picked a fake (the cases of Algorithm 1 that update "Disc")."""
    n = out.g_losses_own.shape[0]
    generator = torch.arange(1, n + 1, device=out.picks.device).unsqueeze(1)  # (N, 1)
    keep = (out.picks.unsqueeze(0) != generator).float()  # (N, B): 0 where G_i won the tuple
    per_tuple = (keep * out.g_losses_own).sum(0) / keep.sum(0).clamp(min=1.0)
    return Objective(per_tuple.mean(), d_weights=(out.picks != 0).float())


@hookimpl
def ganzoo_register_aggregations(register):
    register(NamedFactory("mean", mean.__doc__.splitlines()[0], lambda config: mean))
    register(NamedFactory("independent", independent.__doc__.splitlines()[0], lambda config: independent))
    # Algorithm 1 needs D to choose one input per tuple as the real one (the tuple policy's picks).
    register(NamedFactory("algorithm1", "PSG's Algorithm 1: a generator whose sample D picked as real sits that tuple out",
                          lambda config: algorithm1, supports=Supports(requires=frozenset({"tuple-pick"}))))
