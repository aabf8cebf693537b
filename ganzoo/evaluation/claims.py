"""The paper's four claims, judged for one PSG configuration against the baseline (the paper's SNGAN)
over the seeds of a ``ganzoo compare``: the tests, the verdicts and the pairing of losses on one
scale (docs/evaluation.md, "Definitions used in the report"). Input: the run summaries of
ganzoo.evaluation.compare_report."""

from __future__ import annotations

import functools
from typing import Any

from ganzoo.evaluation.metrics import mean_sd_ci, welch_t

ALPHA = 0.05
CHANCE_BAND = 0.05  # "near chance": within 0.05 of the policy's chance level (1/(N+1) for the tuple policy)


@functools.cache
def declared_options() -> dict[str, Any]:
    """The options the installed plugins' parts declare, by key (ganzoo.core.options.collect)."""
    from ganzoo.core.host import load_host
    from ganzoo.core.options import collect

    return collect(load_host().registry)


def d_loss(train: dict[str, Any]) -> str | None:
    """A run's --loss (config.toml [train]): as recorded (every run since 0.5 records every option),
    or for a run from before 0.5, which kept only the options given, the default of the part of the
    run that declares it; None when no part of the run has one."""
    options = train.get("options") if isinstance(train.get("options"), dict) else {}
    if "loss" in options:
        return str(options["loss"])
    owned = declared_options().get("loss")
    used = {("strategy", train.get("strategy")), ("input policy", train.get("policy")), ("aggregation", train.get("aggregation"))}
    return str(owned.option.default) if owned and owned.option.default is not None and used & set(owned.owners) else None


def values(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in runs if r.get(key) is not None]


def cell(vals: list[float], digits: int, of: int = 0) -> str:
    """mean ± sd [95% CI] of ``vals``; with ``of``, says how many of that many runs have a value."""
    runs = "run" if of == 1 else "runs"
    if not vals:
        return f"none of {of} {runs}" if of else "-"
    mean, sd, ci = mean_sd_ci(vals)
    count = f"{len(vals)} of {of} {runs}" if of and len(vals) < of else ""
    if len(vals) < 2:
        return f"{mean:.{digits}f} ({count or '1 run'})"
    return f"{mean:.{digits}f} ± {sd:.{digits}f} [{mean - ci:.{digits}f}, {mean + ci:.{digits}f}]" + (f" ({count})" if count else "")


def compare_means(a: list[float], b: list[float], *, claimed_lower: bool) -> tuple[str, str]:
    """Verdict and test text for the claim "a is lower than b" (or higher)."""
    if len(a) < 2 or len(b) < 2:
        return "inconclusive", "fewer than 2 runs on a side"
    t, df, p = welch_t(a, b)
    lower = sum(a) / len(a) < sum(b) / len(b)
    test = f"Welch's t = {t:.2f}, df = {df:.1f}, p = {p:.3g}"
    if p >= ALPHA:
        return "inconclusive", test
    return ("supported" if lower == claimed_lower else "not supported"), test


def near_chance(vals: list[float], chance: float) -> tuple[str, str]:
    if len(vals) < 2:
        return "inconclusive", "fewer than 2 runs"
    mean, _, ci = mean_sd_ci(vals)
    lo, hi = mean - ci, mean + ci
    text = f"95% CI [{lo:.3f}, {hi:.3f}] vs chance {chance:.3f} ± {CHANCE_BAND}"
    if chance - CHANCE_BAND <= lo and hi <= chance + CHANCE_BAND:
        return "supported", text
    if hi < chance - CHANCE_BAND or lo > chance + CHANCE_BAND:
        return "not supported", text
    return "inconclusive", text


def earlier(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str, kind: str) -> tuple[str, str, str]:
    """Claim 2 for one convergence definition: (measured, test, verdict). Runs that have not converged
    within their budget are censored: they can only converge from their ``unconfirmed_from`` epoch on."""
    pa, pb = [r[key] for r in a], [r[key] for r in b]
    ca, cb = [p for p in pa if p is not None], [p for p in pb if p is not None]
    measured = f"epoch {cell(ca, 2, len(pa))} vs {cell(cb, 2, len(pb))}".replace("epoch none", "none")
    if len(ca) == len(pa) and len(cb) == len(pb):
        verdict, test = compare_means(ca, cb, claimed_lower=True)
        return measured, test, verdict
    later_a = [r["unconfirmed_from"][kind] or 0 for r in a if r[key] is None]  # 0: too short to say
    later_b = [r["unconfirmed_from"][kind] or 0 for r in b if r[key] is None]
    if len(ca) == len(pa) and ca and not cb and max(ca) < min(later_b):
        return measured, f"every run converged by epoch {max(ca)}; none of the baseline's by its budget", "supported"
    if len(cb) == len(pb) and cb and not ca and max(cb) < min(later_a):
        return measured, f"every baseline run converged by epoch {max(cb)}; none of these by its budget", "not supported"
    return measured, f"{len(pa) - len(ca)} + {len(pb) - len(cb)} runs not converged within the budget", "inconclusive"


def same_scale(label: str, runs: dict[str, list[dict[str, Any]]]) -> str | None:
    """Claim 1's reference for ``label``: the configuration with one generator and the same D-input
    policy and loss, so that the two G - D gaps are differences of losses on the same scale (the
    tuple loss against its N=1 case, the binary BCE against SNGAN with --loss bce)."""
    me = runs[label][0]
    for other, rs in runs.items():
        if rs and other != label and rs[0].get("n_gens") == 1 and (rs[0].get("policy"), rs[0].get("loss")) == (me.get("policy"), me.get("loss")):
            return other
    return None


def claims(label: str, runs: dict[str, list[dict[str, Any]]], base_label: str) -> list[list[str]]:
    """The four claims for one PSG configuration: claim 1 against its same-scale reference, the others
    against the baseline (the paper's SNGAN); claims 1 and 3 on the epochs from convergence on."""
    mine, base = runs[label], runs[base_label]
    rows = []  # (against, claim, measured, test, verdict)
    reference = same_scale(label, runs)
    if reference is None:
        rows.append([base_label, "1. the G-D loss gap shrinks by about 40%", "no one-generator configuration with the same D loss here",
                     "the gaps of different losses are on different scales", "not judged"])
    else:
        a, b = values(mine, "loss_gap"), values(runs[reference], "loss_gap")
        verdict, test = compare_means(a, b, claimed_lower=True)
        shrink = (1 - (sum(a) / len(a)) / (sum(b) / len(b))) if a and b and sum(b) else float("nan")
        rows.append([reference, "1. the G-D loss gap shrinks by about 40% (the same loss, one generator)",
                     f"gap from convergence on {cell(a, 3)} vs {cell(b, 3)}; shrinks by {100 * shrink:.0f}%", test, verdict])
    measured, test, verdict = earlier(mine, base, "fid_plateau_epoch", "fid")
    at_a, at_b = values(mine, "fid_plateau_fid"), values(base, "fid_plateau_fid")
    minutes_a, minutes_b = values(mine, "fid_plateau_minutes"), values(base, "fid_plateau_minutes")
    if at_a:
        measured += f"; at FID {sum(at_a) / len(at_a):.1f}" + (f" vs {sum(at_b) / len(at_b):.1f}" if at_b else "")
    if minutes_a:
        measured += f", after {sum(minutes_a) / len(minutes_a):.1f}" + (f" vs {sum(minutes_b) / len(minutes_b):.1f}" if minutes_b else "") + " training minutes"
    rows.append([base_label, "2. convergence comes earlier (FID plateau)", measured, test, verdict])
    rows.append([base_label, "2. convergence comes earlier (loss band, Fig. 3)", *earlier(mine, base, "loss_band_epoch", "loss")])
    a = values(mine, "d_accuracy_after")
    chance = mine[0]["chance"] if mine else float("nan")
    verdict, test = near_chance(a, chance)
    rows.append([base_label, f"3. D accuracy settles near chance ({chance:.3f} for this policy)", f"accuracy from convergence on {cell(a, 3)}", test, verdict])
    a, b = values(mine, "final_fid"), values(base, "final_fid")
    verdict, test = compare_means(a, b, claimed_lower=True)
    rows.append([base_label, "4. sharper digits (lower FID)", f"FID {cell(a, 2)} vs {cell(b, 2)}", test, verdict])
    return [[f"{label} vs {against}: {claim}", *rest] for against, claim, *rest in rows]


def claim_rows(runs: dict[str, list[dict[str, Any]]], base_label: str | None) -> list[list[str]]:
    """The claims for every PSG configuration with more than one generator, against the baseline."""
    if base_label is None or not runs.get(base_label):
        return []
    return [row for label, rs in runs.items() if label != base_label and rs and rs[0].get("strategy") == "psg"
            and (rs[0].get("n_gens") or 2) > 1 for row in claims(label, runs, base_label)]
