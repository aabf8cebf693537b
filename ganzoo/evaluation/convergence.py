"""When a run has converged, by two definitions (docs/evaluation.md, "Convergence"):

- **FID plateau**: the first evaluation after which FID never improves on the best FID so far by
  more than ``FID_MARGIN`` (5%).
- **Loss band**, the paper's reading of its Fig. 3: the first epoch from which the mean G loss and
  the D loss each stay within a band ``LOSS_BAND`` (10%) of their mean as wide, to the last epoch.

Both need ``CONFIRM`` (2) later points to say so: a point near the end of a run has too little
"after" to call it converged, and the run counts as not converged within its budget (None).
"""

from __future__ import annotations

from collections.abc import Sequence

FID_MARGIN = 0.05
LOSS_BAND = 0.10
CONFIRM = 2


def fid_plateau(fids: Sequence[float]) -> int | None:
    """Index of the first evaluation i such that no later FID is below (1 - FID_MARGIN) x the best
    FID up to i, with at least CONFIRM evaluations after i; None when there is none."""
    best = float("inf")
    for i, fid in enumerate(fids[:len(fids) - CONFIRM]):
        best = min(best, fid)
        if min(fids[i + 1:]) >= best * (1 - FID_MARGIN):
            return i
    return None


def within_band(values: Sequence[float]) -> bool:
    """Whether max - min of ``values`` is at most LOSS_BAND x the mean of their magnitudes."""
    scale = sum(abs(v) for v in values) / len(values)
    return max(values) - min(values) <= LOSS_BAND * scale


def loss_band(g_losses: Sequence[float], d_losses: Sequence[float]) -> int | None:
    """Index of the first epoch from which both loss curves stay within the band to the end,
    with at least CONFIRM epochs after it; None when there is none."""
    for i in range(len(g_losses) - CONFIRM):
        if within_band(g_losses[i:]) and within_band(d_losses[i:]):
            return i
    return None
