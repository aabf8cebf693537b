"""The aggregations' arithmetic: how the N per-generator losses become the generators' update."""

from __future__ import annotations

import torch

from ganzoo.core.parts import Objective, PolicyOutput


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
