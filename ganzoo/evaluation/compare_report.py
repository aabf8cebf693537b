"""The report of ``ganzoo compare``: per-run numbers read from the run folders, summaries over seeds,
the paper's four claims tested, figures (with matplotlib), all written to OUT/report.md and
OUT/summary.json. Everything here is recomputed from the run folders each time."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

from ganzoo import __version__
from ganzoo.core.errors import GanzooError
from ganzoo.core.files import json_safe, write_atomic
from ganzoo.core.safe_read import loads_json, read_text
from ganzoo.evaluation import convergence
from ganzoo.evaluation.claims import ALPHA, CHANCE_BAND, cell, claim_rows, values
from ganzoo.evaluation.metrics import mean_sd_ci, welch_t
from ganzoo.evaluation.run_metrics import run_summary
from ganzoo.runs.schemas import read_compare_state


def read_json(path: Path) -> Any:
    """A JSON file ganzoo wrote (eval-*.json, compare.json): a regular file, bounded, depth-capped."""
    try:
        return loads_json(read_text(path, "JSON file"))
    except ValueError as exc:
        raise GanzooError(f"{path} is not valid JSON ({exc})") from None


def plural(count: Any, word: str, words: str = "") -> str:
    """count and word as one or many of it: "1 seed", "3 seeds" (words for an irregular plural)."""
    shown = f"{count:g}" if isinstance(count, float) else str(count)
    return f"{shown} {word if count == 1 else words or word + 's'}"


def budget_text(settings: dict[str, Any]) -> str:
    """A comparison's budget per run: "5 epochs", "10 minutes of training" or both (whichever came first)."""
    parts = [plural(settings["epochs"], "epoch")] if settings.get("epochs") else []
    parts += [plural(settings["minutes"], "minute") + " of training"] if settings.get("minutes") else []
    text = " or ".join(parts) or "?"
    return f"until the FID plateau, at most {text}" if settings.get("until_converged") else text


def interval_text(every: Any) -> str:
    """compare's --eval-every ("1", "500steps", "60s") in words."""
    text = str(every)
    return ("every epoch" if int(text) == 1 else f"every {int(text)} epochs") if text.isdigit() else f"every {text} of training"


CONVERGENCE_KEYS = {"fid_plateau_epoch", "fid_plateau_minutes", "loss_band_epoch"}
DEFINITIONS = """Definitions (docs/evaluation.md): a run converges, by the **FID plateau**, at the first evaluation
after which FID never improves on the best FID so far by more than {margin:.0f}%; by the **loss band** (the paper's
Fig. 3), at the first epoch from which the mean G loss and the D loss each stay, to the last epoch, within a band
{band:.0f}% of their mean wide. Either needs {confirm}; a run without one has not converged within
its budget. The loss gap of an epoch is |mean G loss - D loss| over its steps; the gap and D's accuracy are
averaged over the epochs from the FID plateau on (the last quarter of a run that has none). Claim 1 compares
gaps only between configurations with the same D loss. Tests: Welch's t over seeds, two-sided, alpha {alpha}; for
claim 2 with runs not converged, only an ordering every run agrees on decides; claim 3 asks the 95% CI of D's
accuracy to lie within {chance_band} of chance. "Inconclusive" means these seeds cannot tell."""


def converged_text(summary: dict[str, Any], key: str) -> str:
    point = summary.get(key)
    return f"epoch {point}" if point is not None else f"not by epoch {summary['epochs'][-1]}"


ROWS = [  # (key, label, digits)
    ("final_fid", "final FID (n_fake = final n)", 2),
    ("best_fid", "best FID over epochs (n = eval n)", 2),
    ("final_kid", "final KID", 3),
    ("final_precision", "precision (k=3)", 3),
    ("final_recall", "recall (k=3)", 3),
    ("final_density", "density (k=5)", 3),
    ("final_coverage", "coverage (k=5)", 3),
    ("final_classes", "classes covered (of 10)", 2),
    ("final_class_kl", "KL(classes ‖ uniform)", 3),
    ("final_inception_score", "classifier IS", 3),
    ("final_modes", "modes covered (of 1000)", 1),
    ("final_modes_kl", "KL(modes ‖ uniform)", 3),
    ("final_class_consistency", "class consistency (classifier's class = asked class)", 3),
    ("final_intra_fid_mean", "intra-class FID, mean over classes", 2),
    ("final_intra_fid_worst", "intra-class FID, worst class", 2),
    ("final_intra_precision_mean", "intra-class precision (k=3), mean", 3),
    ("final_intra_recall_mean", "intra-class recall (k=3), mean", 3),
    ("fid_plateau_epoch", "convergence epoch, FID plateau", 2),
    ("fid_plateau_minutes", "training minutes to the FID plateau", 1),
    ("loss_band_epoch", "convergence epoch, loss band", 2),
    ("loss_gap", "loss gap (abs. G − D), from convergence on", 3),
    ("d_accuracy_after", "D accuracy, from convergence on", 3),
    ("d_accuracy_final", "D accuracy, last epoch", 3),
    ("wall_minutes", "wall time per run (min)", 1),
]


def machine() -> str:
    import torch

    from ganzoo.training.precision import cpu_name

    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    return (f"{cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"torch {torch.__version__}, ganzoo {__version__}; load average at report time {', '.join(f'{v:.2f}' for v in load)}")


def write_report(out: Path, specs: list[Any], seeds: int, settings: dict[str, Any], *, baseline: str | None = None,
                 wall_seconds: float = 0.0, errors: dict[str, str] | None = None) -> Path:
    features = settings["features"]
    by_seed = {(s.label, seed): run_summary(out / "runs" / s.label / f"seed-{seed}", features) for s in specs for seed in range(seeds)}
    runs = {s.label: [r for seed in range(seeds) if (r := by_seed[s.label, seed])] for s in specs}
    strategies = {s.label: s.strategy for s in specs}
    base_label = baseline or next((s.label for s in specs if s.strategy == "sngan"), None)
    state = read_compare_state(out / "compare.json") if (out / "compare.json").exists() else {}
    lines = [f"# ganzoo compare: {', '.join(runs)}", ""]
    lines += [f"- command: `{state.get('command') or 'ganzoo compare ...'}`",
              f"- settings: {plural(seeds, 'seed')} ({'0' if seeds == 1 else f'0..{seeds - 1}'}), {budget_text(settings)}, "
              f"dataset {settings['dataset']}" + (f" (first {plural(settings['limit_data'], 'image')})" if settings.get("limit_data") else "")
              + f", evaluated {interval_text(settings['eval_every'])} on {plural(settings['eval_n'], 'sample')}, final evaluation on "
              f"{plural(settings['final_n'], 'sample')}, features {features}",
              f"- machine: {machine()}",
              (f"- written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; training and evaluation in the runs took "
               f"{sum(r['wall_minutes'] for rs in runs.values() for r in rs):.0f} min in all; this invocation {wall_seconds / 60:.1f} min"), ""]
    protocol = next((r["protocol"] for rs in runs.values() for r in rs if "protocol" in r), None)
    if protocol:
        accuracy = protocol.get("extractor_test_accuracy")
        lines += [f"Evaluation protocol: extractor `{protocol['extractor']}` (weights {protocol['extractor_fingerprint']}"
                  + (f", test accuracy {accuracy:.4f}" if accuracy is not None else "")
                  + f"), {protocol['n_real']} real images ({protocol['split']} split), z seed {protocol['seed']}, "
                  f"KID over {protocol['kid_subsets']} subsets of {protocol['kid_subset_size']}.", ""]
    lines += ["## Results (mean ± sd [95% CI] over seeds)", "", "| metric | " + " | ".join(runs) + " |", "|---|" + "---|" * len(runs)]
    for key, label, digits in ROWS + extras_rows(runs):
        cells = [cell(values(rs, key), digits, len(rs) if key in CONVERGENCE_KEYS else 0) for rs in runs.values()]
        if any(c != "-" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", DEFINITIONS.format(margin=100 * convergence.FID_MARGIN, band=100 * convergence.LOSS_BAND,
                                     confirm=plural(convergence.CONFIRM, "later point"), alpha=ALPHA, chance_band=CHANCE_BAND), ""]
    claim_table = claim_rows(runs, base_label)
    if claim_table:
        lines += ["## The paper's claims", "", "| claim | measured | test | verdict |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(r) + " |" for r in claim_table]
        lines.append("")
    lines += difference_lines(runs, base_label)
    lines += curve_lines(runs, base_label)
    figures = write_figures(out, runs, strategies)
    if figures:
        lines += ["## Figures", ""] + [f"![{name}]({name})" for name in figures] + [""]
    else:
        lines += ["(No figures: install matplotlib, `pip install 'ganzoo[plot]'`, and rerun the command.)", ""]
    lines += ["## Runs", "", "| configuration | seed | epochs | final FID | best FID | converged (FID plateau) | converged (loss band) "
              "| loss gap | D acc | wall (min) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, rs in runs.items():
        for seed in range(seeds):
            r = by_seed[label, seed]
            if r is None:
                lines.append(f"| {label} | {seed} | missing | | | | | | | |")
                continue
            fmt = lambda v, d: "-" if v is None else f"{v:.{d}f}"
            lines.append(f"| {label} | {seed} | {r['epochs'][-1]} | {fmt(r.get('final_fid'), 2)} | {fmt(r['best_fid'], 2)} | "
                         f"{converged_text(r, 'fid_plateau_epoch')} | {converged_text(r, 'loss_band_epoch')} | "
                         f"{r['loss_gap']:.3f} | {r['d_accuracy_final']:.3f} | {r['wall_minutes']:.1f} |")
    lines += share_lines(by_seed)
    if errors:
        lines += ["", "## Errors", ""] + [f"- {k}: {v}" for k, v in errors.items()]
    report = out / "report.md"
    write_atomic(report, ("\n".join(lines) + "\n").encode())
    summary = {"settings": settings, "runs": runs, "claims": claim_table, "errors": errors or {}}
    write_atomic(out / "summary.json", (json.dumps(json_safe(summary), indent=1) + "\n").encode())
    return report


def difference_lines(runs: dict[str, list[dict[str, Any]]], base_label: str | None) -> list[str]:
    """Every metric of every configuration against the baseline: difference of means and Welch's p."""
    if base_label is None or base_label not in runs or len(runs) < 2:
        return []
    others = [label for label in runs if label != base_label]
    lines = [f"## Each configuration against {base_label}", "",
             "Difference of means (configuration minus baseline) and Welch's two-sided p over seeds; p < 0.05 in bold.", "",
             "| metric | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
    for key, label, digits in ROWS:
        base = values(runs[base_label], key)
        cells = []
        for other in others:
            mine = values(runs[other], key)
            if len(mine) < 2 or len(base) < 2:
                cells.append("-")
                continue
            _, _, p = welch_t(mine, base)
            text = f"{sum(mine) / len(mine) - sum(base) / len(base):+.{digits}f} (p = {p:.2g})"
            cells.append(f"**{text}**" if p < ALPHA else text)
        if any(c != "-" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines + [""]


def curve_lines(runs: dict[str, list[dict[str, Any]]], base_label: str | None) -> list[str]:
    """FID per evaluated epoch, mean ± sd over seeds, with Welch's p against the baseline."""
    epochs = sorted({e for rs in runs.values() for r in rs for e in r["eval_epochs"]})
    if not epochs:
        return []
    labels = list(runs)
    lines = ["## FID per epoch (mean ± sd over seeds; p: Welch against " + (base_label or "-") + ")", "",
             "| epoch | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for epoch in epochs:
        per = {label: [r["fid_curve"][r["eval_epochs"].index(epoch)] for r in rs if epoch in r["eval_epochs"]] for label, rs in runs.items()}
        cells = []
        for label in labels:
            vals = per[label]
            if not vals:
                cells.append("-")
                continue
            mean, sd, _ = mean_sd_ci(vals)
            text = f"{mean:.1f}" + (f" ± {sd:.1f}" if len(vals) > 1 else "")
            base = per.get(base_label, []) if base_label else []
            if label != base_label and len(vals) > 1 and len(base) > 1:
                text += f" (p = {welch_t(vals, base)[2]:.2g})"
            cells.append(text)
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    return lines + [""]


def extra_names(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The scalars any run's policy logs itself (PolicyOutput.extras: r1, r2...), sorted."""
    return sorted({name for rs in runs.values() for r in rs for name in r.get("extras", {})})


def extras_rows(runs: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, int]]:
    """ROWS for the scalars a policy logs itself at a run's last epoch; [] without any."""
    return [(f"extra_{name}_last", f"{name}, last epoch (the policy's own scalar)", 4) for name in extra_names(runs)]


def share_lines(by_seed: dict[tuple[str, int], dict[str, Any] | None]) -> list[str]:
    """Per generator of multi-generator runs (final evaluation): FID, coverage and, with classes,
    who makes each class."""
    rows: list[tuple[str, int, int, dict[str, Any], list[dict[str, Any]]]] = []
    for (label, seed), summary in by_seed.items():
        generators = (summary or {}).get("final_generators", [])
        rows += [(label, seed, i, g, generators) for i, g in enumerate(generators, 1)]
    if not rows:
        return []
    with_classes = all("class_histogram" in g for *_, g, _ in rows)
    conditional = any("class_consistency" in g or "intra_fid_mean" in g for *_, g, _ in rows)
    lines = ["", "## How the generators share the work (final evaluation)", "",
             ("Per generator: FID on its own samples and the classes (or modes) it covers"
              + ("; asked for every class (a conditional run), how often the classifier agrees with the asked class "
                 "and its mean intra-class FID" if conditional else "")
              + ("; for each class 0..9, the percentage of that class's samples it made (a clean split shows 100s and 0s)."
                 if with_classes else ".")),
             "", "| configuration | seed | generator | FID | covered |" + (" class consistency | intra-class FID |" if conditional else "")
             + (" share of classes 0..9 (%) |" if with_classes else ""),
             "|---|---|---|---|---|" + ("---|---|" if conditional else "") + ("---|" if with_classes else "")]
    for label, seed, i, g, generators in rows:
        line = f"| {label} | {seed} | {i} | {g['fid']:.2f} | {g.get('classes', g.get('modes'))} |"
        if conditional:
            line += "".join(f" {'-' if not isinstance(v := g.get(key), int | float) else f'{v:.{d}f}'} |"
                            for key, d in (("class_consistency", 3), ("intra_fid_mean", 2)))
        if with_classes:
            totals = [sum(c) for c in zip(*(h["class_histogram"] for h in generators))]
            line += " " + " ".join("-" if t == 0 else f"{100 * c / t:.0f}" for c, t in zip(g["class_histogram"], totals)) + " |"
        lines.append(line)
    return lines


def write_figures(out: Path, runs: dict[str, list[dict[str, Any]]], strategies: dict[str, str]) -> list[str]:
    """Fig. 3 (losses per epoch), Fig. 4 (D accuracy with the chance line), FID/KID/coverage per epoch, the policies'
    own scalars (extras) and Fig. 5 (final samples side by side) as PNGs; mean line and min-max band over seeds."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return []
    import io

    def band(ax: Any, rs: list[dict[str, Any]], x_key: str, y_of: Any, label: str) -> str | None:
        """The mean over the seeds that reached each x (runs may stop at different epochs) and the
        min-max band; returns the line's colour."""
        series = [(r[x_key], y_of(r)) for r in rs if r[x_key]]
        if not series:
            return None
        x = max((xs for xs, _ in series), key=len)
        columns = [[v for _, y in series if i < len(y) and (v := y[i]) is not None] for i in range(len(x))]  # None: not logged
        line = ax.plot(x, [sum(c) / len(c) if c else math.nan for c in columns], marker="o", markersize=3, label=label)[0]
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(series) > 1:
            ax.fill_between(x, [min(c, default=math.nan) for c in columns], [max(c, default=math.nan) for c in columns], color=line.get_color(), alpha=0.2)
        return line.get_color()

    def save(fig: Any, name: str) -> str:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        write_atomic(out / name, buffer.getvalue())
        return name

    names = []
    present = {k: v for k, v in runs.items() if v}
    if not present:
        return names
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.4), squeeze=False)
    for ax, (label, rs) in zip(axes[0], present.items()):
        band(ax, rs, "epochs", lambda r: r["d_loss"], "D")
        for i in range(len(rs[0]["g_loss"][0])):
            band(ax, rs, "epochs", lambda r, i=i: [g[i] for g in r["g_loss"]], f"G{i + 1}")
        ax.set(title=f"{label}: losses", xlabel="epoch", ylabel="loss")
        ax.legend(fontsize=7)
    names.append(save(fig, "fig3-losses.png"))

    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.4), squeeze=False, sharey=True)
    for ax, (label, rs) in zip(axes[0], present.items()):
        band(ax, rs, "epochs", lambda r: r["d_accuracy"], "D accuracy")
        ax.axhline(rs[0]["chance"], color="grey", linestyle="--", label=f"chance {rs[0]['chance']:.3f}")  # the policy's level
        ax.set(title=f"{label}: D accuracy", xlabel="epoch", ylim=(0, 1.02))
        ax.legend(fontsize=7)
    names.append(save(fig, "fig4-d-accuracy.png"))

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for label, rs in present.items():
        color = band(axes[0], rs, "eval_epochs", lambda r: r["fid_curve"], label)
        plateaus = [(r["fid_plateau_epoch"], r["fid_curve"][r["eval_epochs"].index(r["fid_plateau_epoch"])])
                    for r in rs if r.get("fid_plateau_epoch") is not None]
        if plateaus:  # each run's FID plateau (convergence), as an x on its configuration's colour
            axes[0].scatter(*zip(*plateaus), marker="x", s=40, color=color, zorder=3)
        band(axes[1], rs, "eval_epochs", lambda r: r["kid_curve"], label)
        band(axes[2], rs, "eval_epochs", lambda r: r["coverage_curve"], label)
    coverage = "modes covered" if any("final_modes" in r for rs in present.values() for r in rs) else "classes covered"
    for ax, title in zip(axes, ("FID", "KID", coverage)):
        ax.set(title=f"{title} per epoch", xlabel="epoch")
        ax.legend(fontsize=7)
    axes[0].set_title("FID per epoch (x: a run's FID plateau)")
    names.append(save(fig, "fid-kid-coverage.png"))

    if extras := extra_names(present):  # the policies' own scalars
        fig, axes = plt.subplots(1, len(extras), figsize=(4.2 * len(extras), 3.4), squeeze=False)
        for ax, name in zip(axes[0], extras):
            for label, rs in present.items():
                band(ax, [r for r in rs if name in r.get("extras", {})], "epochs", lambda r, name=name: r["extras"][name], label)
            ax.set(title=f"{name} per epoch (the policy's own scalar)", xlabel="epoch")
            ax.legend(fontsize=7)
        names.append(save(fig, "extras.png"))

    samples = [(label, rs[0]["sample"]) for label, rs in present.items() if rs[0].get("sample")]
    if samples:
        fig, axes = plt.subplots(1, len(samples), figsize=(4.2 * len(samples), 4.6), squeeze=False)
        for ax, (label, path) in zip(axes[0], samples):
            ax.imshow(plt.imread(path), cmap="gray")
            ax.set_title(f"{label} (seed 0, {Path(path).stem})", fontsize=9)
            ax.axis("off")
        names.append(save(fig, "fig5-samples.png"))
    return names
