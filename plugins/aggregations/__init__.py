"""Loss aggregations: how the N per-generator losses become the generators' update.

    mean         all generators minimise the mean of the N losses (PSG's "average loss")
    independent  each generator minimises its own loss only (the ablation)
    algorithm1   the paper's Algorithm 1 generalised to N generators (see docs/psg.md)

The arithmetic is in losses.py, imported when a run is built (it needs torch).
"""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import NamedFactory, Supports


def _loss(name: str):
    def build(config):
        from ganzoo.plugins.aggregations import losses

        return getattr(losses, name)

    return build


@hookimpl
def ganzoo_register_aggregations(register):
    register(NamedFactory("mean", "(1/N) sum_i L_i, averaged over the batch; gradients flow through every sample of a tuple",
                          _loss("mean")))
    register(NamedFactory("independent", "sum_i L_i with loss i differentiable only through G_i's sample: G_i sees its own loss alone",
                          _loss("independent")))
    # Algorithm 1 needs D to choose one input per tuple as the real one (the tuple policy's picks).
    register(NamedFactory("algorithm1", "PSG's Algorithm 1: a generator whose sample D picked as real sits that tuple out",
                          _loss("algorithm1"), supports=Supports(requires=frozenset({"tuple-pick"}))))
