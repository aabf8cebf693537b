"""The HTML page of a ``ganzoo compare`` directory: the claims and their verdicts, the summary per
configuration, curves over seeds, the generators' class split, sample grids and the settings."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path
from typing import Any

from ganzoo.core.config import EVAL_FEATURES
from ganzoo.evaluation.claims import cell, claim_rows, values
from ganzoo.evaluation.compare_report import (
    CONVERGENCE_KEYS,
    ROWS,
    budget_text,
    converged_text,
    extra_names,
    extras_rows,
    interval_text,
    plural,
    read_json,
)
from ganzoo.evaluation.html_parts import (
    chance_lines,
    class_split,
    code,
    fmt,
    generator_color,
    over_seeds,
    page,
    protocol_table,
    read_config,
    summarise,
    table,
)
from ganzoo.evaluation.report_images import MAX_FRAMES, pick_grids, stepper_html
from ganzoo.evaluation.run_metrics import MAX_POINTS
from ganzoo.evaluation.svg_plot import PALETTE, Chart, line_chart
from ganzoo.runs.schemas import read_compare_state

MAX_GRIDS = 72  # sample grids in a compare page at most: with many configurations each gets fewer epochs
SEED_DIR = re.compile(r"^seed-(\d{1,6})$")


def compare_page(out: Path) -> str:
    state = read_compare_state(out / "compare.json")
    settings = state["settings"]
    features = str(settings.get("features", EVAL_FEATURES))
    stored = read_json(out / "summary.json") if (out / "summary.json").is_file() else {}
    stored = stored if isinstance(stored, dict) else {}
    by_seed: dict[str, list[tuple[int, Path, dict[str, Any] | None]]] = {}
    for label in labels(out, stored):
        folder = out / "runs" / label
        seeds = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := SEED_DIR.match(p.name)) and p.is_dir() and not p.is_symlink())
        by_seed[label] = [(seed, p, summarise(p, features)) for seed, p in seeds]
    runs = {label: [s for _, _, s in rows if s] for label, rows in by_seed.items()}
    configs = {label: read_config(rows[0][1]) if rows else ("", {}) for label, rows in by_seed.items()}
    strategies = {label: str(c.get("train", {}).get("strategy", "")) if isinstance(c.get("train"), dict) else ""
                  for label, (_, c) in configs.items()}

    facts = [f"command <code>{escape(str(state.get('command', 'ganzoo compare ...')))}</code>",
             f"{plural(len(runs), 'configuration')} x {escape(plural(settings.get('seeds', '?'), 'seed'))}, "
             f"{escape(budget_text(settings))}, dataset {escape(str(settings.get('dataset', '?')))}"
             + (f" (first {escape(plural(settings['limit_data'], 'image'))})" if settings.get("limit_data") else "")
             + f"; evaluated {escape(interval_text(settings.get('eval_every', 1)))} on {escape(plural(settings.get('eval_n', '?'), 'sample'))}, "
             f"final evaluation on {fmt(settings.get('final_n'))}, features {escape(features)}",
             f"folder <code>{escape(str(out))}</code>"]
    sections = []
    claim_rows = stored_claims(stored) or recomputed_claims(runs, strategies)
    if claim_rows:
        sections.append(("claims", "The paper's claims", claims_table(claim_rows)))
    summary_rows = [[label, *(cell(values(rs, key), digits, len(rs) if key in CONVERGENCE_KEYS else 0) for rs in runs.values())]
                    for key, label, digits in ROWS + extras_rows(runs)]
    summary_rows = [r for r in summary_rows if any(c != "-" for c in r[1:])]
    sections.append(("summary", "Summary per configuration",
                     '<p class="muted">Mean ± sd [95% t CI] over seeds; details of each number in report.md.</p>'
                     + table(["metric", *runs], summary_rows)))
    sections.append(("curves", "Curves", curves(runs)))
    split = [(f"{label} seed {seed}", s["final_generators"]) for label, rows in by_seed.items() for seed, _, s in rows
             if s and len(s.get("final_generators") or []) > 1]
    if split:
        sections.append(("split", "How the generators share the work", class_split(split)))
    sections.append(("samples", "Sample grids", grids(by_seed)))
    sections.append(("runs", "Runs", runs_table(by_seed)))
    protocol = next((r["protocol"] for rs in runs.values() for r in rs if isinstance(r.get("protocol"), dict)), None)
    details = "".join(f"<details><summary>{escape(label)}: config.toml of seed {rows[0][0]}</summary>{code(configs[label][0])}</details>"
                      for label, rows in by_seed.items() if rows and configs[label][0])
    sections.append(("settings", "Settings and evaluation protocol",
                     "<h3>compare.json</h3>" + code(json.dumps(state, indent=1, ensure_ascii=False))
                     + "<h3>Evaluation protocol (final evaluations)</h3>" + protocol_table([("final", protocol)] if protocol else [])
                     + "<h3>Configurations</h3>" + (details or '<p class="muted">No config.toml found.</p>')))
    return page(f"ganzoo compare: {', '.join(runs)}", facts, sections)


def labels(out: Path, stored: dict[str, Any]) -> list[str]:
    """The configurations under out/runs, in the order compare reported them when it did."""
    found = sorted(p.name for p in (out / "runs").iterdir() if p.is_dir() and not p.is_symlink())
    order = [k for k in stored.get("runs", {}) if k in found] if isinstance(stored.get("runs"), dict) else []
    return order + [k for k in found if k not in order]


def stored_claims(stored: dict[str, Any]) -> list[list[str]]:
    rows = stored.get("claims")
    if isinstance(rows, list) and all(isinstance(r, list) and len(r) == 4 for r in rows):
        return [[str(v) for v in r] for r in rows]
    return []


def recomputed_claims(runs: dict[str, list[dict[str, Any]]], strategies: dict[str, str]) -> list[list[str]]:
    """As compare does with its default baseline (the sngan configuration), when summary.json is missing."""
    return claim_rows(runs, next((label for label, s in strategies.items() if s == "sngan" and runs.get(label)), None))


def claims_table(rows: list[list[str]]) -> str:
    body = []
    for claim, measured, test, verdict in rows:
        css = re.sub(r"[^a-z]+", "-", verdict.lower()).strip("-")
        css = css if css in ("supported", "not-supported", "inconclusive") else ""
        body.append([claim, measured, test, ("html", f'<span class="verdict {css}">{escape(verdict)}</span>')])
    return ('<p class="muted">Each PSG configuration against the baseline (claim 1: against the one-generator configuration '
            "with the same D loss): Welch's t over seeds (claims 1, 2, 4), the 95% CI of D's accuracy from convergence on "
            "against chance (claim 3). Inconclusive: these seeds cannot tell. Definitions in report.md.</p>"
            + table(["claim", "measured", "test", "verdict"], body))


def curves(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Small multiples of the losses per configuration; D accuracy, FID, KID, coverage and each scalar a
    policy logs itself (extras) with all configurations on one chart each. Lines are means over seeds,
    bands the min-max."""
    present = {label: rs for label, rs in runs.items() if rs}
    if not present:
        return '<p class="muted">No finished epoch in any run yet.</p>'
    colors = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(present)}
    loss_charts = []
    for label, rs in present.items():
        n_gens = min(len(r["g_loss"][0]) if r["g_loss"] and isinstance(r["g_loss"][0], list) else 0 for r in rs)
        lines = [over_seeds("D", rs, "epochs", lambda r: r["d_loss"], color=PALETTE[0])]
        lines += [over_seeds(f"G{i + 1}", rs, "epochs", lambda r, i=i: [g[i] for g in r["g_loss"]], color=generator_color(i))
                  for i in range(n_gens)]
        loss_charts.append(line_chart(Chart(f"{label}: losses", [s for s in lines if s], ylabel="loss", width=360, height=220)))

    def all_configs(key_x: str, key_y: str) -> list[Any]:
        found = [over_seeds(label, rs, key_x, lambda r: r[key_y], color=colors[label]) for label, rs in present.items()]
        return [s for s in found if s]

    accuracy = Chart("D accuracy per epoch", all_configs("epochs", "d_accuracy"), ylabel="accuracy", y_range=(0.0, 1.0),
                     refs=chance_lines([(label, rs[0]["chance"], colors[label]) for label, rs in present.items()]))
    charts = [line_chart(accuracy)]
    if any(r["eval_epochs"] for rs in present.values() for r in rs):
        coverage = "modes" if any("final_modes" in r for rs in present.values() for r in rs) else "classes"
        charts += [line_chart(Chart("FID per epoch", all_configs("eval_epochs", "fid_curve"), ylabel="FID")),
                   line_chart(Chart("KID per epoch", all_configs("eval_epochs", "kid_curve"), ylabel="KID")),
                   line_chart(Chart(f"{coverage} covered per epoch", all_configs("eval_epochs", "coverage_curve"), ylabel=coverage))]
        if any("class_consistency_curve" in r for rs in present.values() for r in rs):  # conditional runs' class scores
            def class_configs(key: str) -> list[Any]:
                found = [over_seeds(label, scored, "eval_epochs", lambda r: r[key], color=colors[label])
                         for label, rs in present.items() if (scored := [r for r in rs if key in r])]
                return [s for s in found if s]

            charts += [line_chart(Chart("class consistency per epoch", class_configs("class_consistency_curve"), ylabel="consistency",
                                        y_range=(0.0, 1.0))),
                       line_chart(Chart("intra-class FID per epoch (mean over classes)", class_configs("intra_fid_mean_curve"),
                                        ylabel="FID"))]
    extras = []  # a chart per scalar a policy logs itself (r1, r2...), each configuration whose runs log it
    for name in extra_names(present):
        lines = [over_seeds(label, logged, "epochs", lambda r: r["extras"][name], color=colors[label])
                 for label, rs in present.items() if (logged := [r for r in rs if name in r.get("extras", {})])]
        lines = [s for s in lines if s]
        alone = f" ({lines[0].label})" if len(lines) == 1 < len(present) else ""  # a lone line has no legend: the title names it
        extras.append(line_chart(Chart(f"{name} per epoch{alone}", lines, ylabel=name)))
    seeds = max(len(rs) for rs in present.values())
    note = "Lines: mean over seeds; bands: min to max." if seeds > 1 else ""
    long = list(dict.fromkeys(f"{label}: {'; '.join(r['thinned'])}" for label, rs in present.items() for r in rs if r.get("thinned")))
    if long:  # more than MAX_POINTS records: drawn thinned (html_parts.RunMetrics)
        note += (" " if note else "") + (f"Long runs are drawn with at most {MAX_POINTS:,} points a curve ({'. '.join(long)}); "
                                         "seeds are averaged at the epochs they all draw.")
    return (f'<p class="muted">{escape(note)}</p><h3>Losses</h3><div class="charts">{"".join(loss_charts)}</div>'
            f'<h3>D accuracy and scores</h3><div class="charts">{"".join(charts)}</div>'
            + (f"<h3>The policies' own scalars</h3><div class=\"charts\">{''.join(extras)}</div>" if extras else ""))


def grids(by_seed: dict[str, list[tuple[int, Path, dict[str, Any] | None]]]) -> str:
    """The first seed of each configuration, with fewer epochs each when there are many configurations."""
    chosen = [(label, rows[0]) for label, rows in by_seed.items() if rows]
    if not chosen:
        return '<p class="muted">No runs.</p>'
    cap = max(2, min(MAX_FRAMES, MAX_GRIDS // len(chosen)))
    parts = [stepper_html(f"g{i}", f"{label} seed {seed}", pick_grids(path, cap), box=(280, 700)) for i, (label, (seed, path, _)) in enumerate(chosen)]
    return ('<p class="muted">The first seed of each configuration (the other seeds\' grids are in '
            "runs/&lt;configuration&gt;/seed-&lt;s&gt;/samples/). Rows: one block per generator, generator 1 on top.</p>"
            f'<div class="grids">{"".join(parts)}</div>')


def runs_table(by_seed: dict[str, list[tuple[int, Path, dict[str, Any] | None]]]) -> str:
    rows = []
    for label, seeds in by_seed.items():
        for seed, _, s in seeds:
            if s is None:
                rows.append([label, seed, "no finished epoch", None, None, None, None, None, None, None])
                continue
            rows.append([label, seed, s["epochs"][-1], s.get("final_fid"), s.get("best_fid"), converged_text(s, "fid_plateau_epoch"),
                         converged_text(s, "loss_band_epoch"), s["loss_gap"], s["d_accuracy_final"], s["wall_minutes"]])
    return table(["configuration", "seed", "epochs", "final FID", "best FID", "converged (FID plateau)", "converged (loss band)",
                  "loss gap", "D accuracy", "wall (min)"], rows)
