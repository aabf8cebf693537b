"""``ganzoo report``: one self-contained HTML page for a run directory or a ``ganzoo compare``
directory (curves as inline SVG, sample grids as inline PNG, tables), written atomically."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from ganzoo.core.config import EVAL_FEATURES
from ganzoo.core.errors import GanzooError
from ganzoo.core.files import write_atomic
from ganzoo.evaluation.compare_report import plural, read_json
from ganzoo.evaluation.html_compare import compare_page
from ganzoo.evaluation.html_parts import (
    chance_lines,
    class_split,
    code,
    fmt,
    generator_color,
    page,
    per_class_table,
    protocol_table,
    read_config,
    significant,
    summarise,
    table,
)
from ganzoo.evaluation.report_images import pick_grids, stepper_html
from ganzoo.evaluation.run_metrics import CLASS_KEYS, FINAL_CLASS_KEYS, MAX_EXTRAS, MAX_POINTS, RunMetrics, read_run_metrics
from ganzoo.evaluation.svg_plot import PALETTE, Chart, Series, line_chart
from ganzoo.runs import rundir

FINAL_KEYS = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classes", "class_kl",
              "inception_score", "modes", "modes_kl", *FINAL_CLASS_KEYS)
CLASS_COLUMNS = {"class_consistency": "class consistency", "intra_fid_mean": "intra-class FID", "intra_fid_worst": "worst intra-class FID"}


@dataclass(frozen=True)
class Written:
    """What write_html_report wrote: the file, its size in bytes, and which page it is."""

    path: Path
    size: int
    kind: str  # "run" or "compare"


def report_kind(path: Path) -> str:
    """Which page path gets, "run" or "compare"; anything else is a GanzooError naming what was expected."""
    if not path.exists():
        raise GanzooError(f"no such directory: {path}")
    if not path.is_dir():
        raise GanzooError(f"{path} is not a directory (give a run directory or a ganzoo compare directory)")
    if (path / "compare.json").is_file() and (path / "runs").is_dir():
        return "compare"
    if (path / rundir.METRICS).exists() or (path / rundir.CONFIG).exists():
        return "run"
    raise GanzooError(f"{path} is neither a run directory (config.toml, metrics.jsonl) "
                      "nor a ganzoo compare directory (compare.json, runs/)")


def write_html_report(path: Path, out: Path | None = None) -> Written:
    """Build the page for path and write it to out (default path/report.html) atomically."""
    path = Path(path)
    kind = report_kind(path)
    try:
        html = compare_page(path) if kind == "compare" else run_page(path)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:  # a file edited by hand, or hostile
        raise GanzooError(f"{path}: a file is not as ganzoo writes it ({type(exc).__name__}: {exc}); "
                          "--debug shows where") from exc
    data = html.encode("utf-8")
    target = Path(out) if out is not None else path / "report.html"
    write_atomic(target, data)
    return Written(target, len(data), kind)


def eval_files(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The final evaluations of a run, by extractor: {features: eval-<features>.json's content}."""
    found = {}
    for path in sorted(run_dir.glob("eval-*.json")):
        if path.is_file() and not path.is_symlink():
            value = read_json(path)
            if isinstance(value, dict):
                found[path.stem.removeprefix("eval-")] = value
    return found


def curve_charts(metrics: RunMetrics, summary: dict[str, Any]) -> str:
    """Losses, D accuracy with the policy's chance level, the policy's own scalars (extras) when it logs
    any, and FID, KID and coverage when evaluated; FID over training time when evaluations were made
    inside epochs (by steps or time). A long run's curves are thinned (RunMetrics), and say so."""
    epochs, rows, evaluated = summary["epochs"], metrics.rows.items(), metrics.evaluated.items()
    n_gens = len(summary["g_loss"][0]) if summary["g_loss"] and isinstance(summary["g_loss"][0], list) else 0
    losses = [Series("D", epochs, summary["d_loss"], color=PALETTE[0]),
              Series("mean G" if n_gens > 1 else "G", epochs, [r.get("g_loss_mean") for r in rows], color=PALETTE[1])]
    if n_gens > 1:
        losses += [Series(f"G{i + 1}", epochs, [g[i] for g in summary["g_loss"]], color=generator_color(i), dash="4 3")
                   for i in range(n_gens)]
    policy = f"{summary['policy']} policy" if summary.get("policy") else ""
    charts = [line_chart(Chart("Losses per epoch", losses, ylabel="loss")),
              line_chart(Chart("D accuracy per epoch", [Series("D accuracy", epochs, summary["d_accuracy"])],
                               ylabel="accuracy", refs=chance_lines([("", summary["chance"], "")], policy), y_range=(0.0, 1.0)))]
    if extras := summary.get("extras"):  # named scalars the policy logs itself (PolicyOutput.extras: r1, r2...)
        only = next(iter(extras)) if len(extras) == 1 else ""  # a lone series gets no legend: the title names it
        charts.append(line_chart(Chart(f"{only} per epoch (the policy's own scalar)" if only else "The policy's own scalars per epoch",
                                       [Series(name, epochs, values) for name, values in extras.items()], ylabel=only or "value")))
    if evaluated:
        x = summary["eval_epochs"]
        fid = [Series("all generators", x, summary["fid_curve"], color=PALETTE[0])]
        if n_gens > 1 and metrics.fid_lengths == {n_gens}:  # every evaluation scored each generator
            per = [r["fid_per_generator"] for r in evaluated]
            fid += [Series(f"G{i + 1} alone", x, [p[i] for p in per], color=generator_color(i), dash="4 3") for i in range(n_gens)]
        charts.append(line_chart(Chart("FID per epoch", fid, ylabel="FID")))
        charts.append(line_chart(Chart("KID per epoch", [Series("KID", x, summary["kid_curve"])], ylabel="KID")))
        what = "modes" if metrics.modes else "classes"
        charts.append(line_chart(Chart(f"{what} covered per epoch", [Series(what, x, summary["coverage_curve"])], ylabel=what)))
        if "class_consistency_curve" in summary:  # a conditional run
            charts.append(line_chart(Chart("class consistency per epoch", [Series("class consistency", x, summary["class_consistency_curve"])],
                                           ylabel="consistency", y_range=(0.0, 1.0))))
            charts.append(line_chart(Chart("intra-class FID per epoch", [
                Series("mean over classes", x, summary["intra_fid_mean_curve"], color=PALETTE[0]),
                Series("worst class", x, summary["intra_fid_worst_curve"], color=PALETTE[1], dash="4 3")], ylabel="FID")))
    if metrics.timed.count > 1 and metrics.timed_partial:  # evaluated inside epochs: by steps or time
        timed = metrics.timed.items()
        charts.append(line_chart(Chart("FID over training time", [Series("FID", [s / 60 for s, _ in timed], [f for _, f in timed])],
                                       xlabel="minutes of training", ylabel="FID")))
    notes = []
    if thinned := metrics.thinned():
        notes.append(f"A long run: at most {MAX_POINTS:,} points a curve, so the curves draw {'; '.join(thinned)} "
                     "(all are in metrics.jsonl).")
    if metrics.more_extras:
        notes.append(f"The policy logs more than {MAX_EXTRAS} scalars of its own: the first {MAX_EXTRAS} by name are shown.")
    note = f'<p class="muted">{escape(" ".join(notes))}</p>' if notes else ""
    return f'{note}<div class="charts">{"".join(charts)}</div>'


def epoch_table(metrics: RunMetrics, extras: Sequence[str] = ()) -> str:
    """The numbers behind the curves, one row per epoch's record (the last MAX_TABLE_ROWS of a longer run,
    with a note saying so); extras: the names of the policy's own scalars, a column each."""
    records = list(metrics.table)
    n_gens = max((len(r["g_loss"]) for r in records if isinstance(r.get("g_loss"), list)), default=0)
    gens = [f"G{i + 1} loss" for i in range(n_gens)] if n_gens > 1 else []
    classes = [key for key in CLASS_KEYS if any(key in r for r in records)]  # a conditional run's class scores
    header = ["epoch", "D loss", "mean G loss", *gens, "D accuracy", *extras, "FID", "KID", "classes/modes",
              *(CLASS_COLUMNS[key] for key in classes), "seconds"]
    rows = []
    for r in records:
        g = r.get("g_loss") if isinstance(r.get("g_loss"), list) else []
        own = r.get("extras", {})
        rows.append([r.get("epoch"), r.get("d_loss"), r.get("g_loss_mean"), *(g[:n_gens] if gens else []), r.get("d_accuracy"),
                     *(significant(v if isinstance(v := own.get(name), int | float) and not isinstance(v, bool) else None) for name in extras),
                     r.get("fid"), r.get("kid"), r.get("modes", r.get("classes")), *(r.get(key) for key in classes), r.get("seconds")])
    left_out = metrics.rows.count - len(records)
    note = (f'<p class="muted">The last {len(records):,} of {metrics.rows.count:,} epochs: the first {left_out:,} are left out '
            "here (metrics.jsonl has them all).</p>") if left_out > 0 else ""
    return note + table(header, rows)


def generators_of(evals: dict[str, dict[str, Any]], metrics: RunMetrics) -> tuple[str, list[dict[str, Any]]]:
    """Per-generator scores: the final evaluation's, else the last evaluated epoch's."""
    for features, result in evals.items():
        if isinstance(result.get("generators"), list) and result["generators"]:
            return f"final evaluation ({features})", result["generators"]
    if r := metrics.generators:
        fids = r["fid_per_generator"]
        hists = r.get("class_histogram_per_generator") or [None] * len(fids)
        covered = r.get("classes_per_generator") or r.get("modes_per_generator") or [None] * len(fids)
        gens = [{"fid": f, "classes": c, **({"class_histogram": h} if h else {})} for f, c, h in zip(fids, covered, hists)]
        for key in ("class_consistency", "intra_fid_mean"):  # a conditional run's
            if isinstance(per := r.get(f"{key}_per_generator"), list) and len(per) == len(gens):
                for g, value in zip(gens, per):
                    g[key] = value
        return f"epoch {r.get('epoch')} (evaluated during training)", gens
    return "", []


def run_page(run_dir: Path) -> str:
    rundir.check_run_files(run_dir)
    config_text, config = read_config(run_dir)
    settings = config.get("train", {}) if isinstance(config.get("train"), dict) else {}
    meta = config.get("meta", {}) if isinstance(config.get("meta"), dict) else {}
    evals = eval_files(run_dir)
    features = EVAL_FEATURES if EVAL_FEATURES in evals else next(iter(evals), EVAL_FEATURES)
    metrics = read_run_metrics(run_dir)
    summary = summarise(run_dir, features, metrics)
    last = metrics.last
    resolved = run_dir.resolve()
    name = "/".join(resolved.parts[-2:]) if re.match(r"^seed-\d+$", resolved.name) else resolved.name  # compare's runs/<label>/seed-<s>
    facts = [f"strategy <b>{escape(str(settings.get('strategy', meta.get('strategy', '?'))))}</b>"
             + (f" with {escape(plural(settings['n_gens'], 'generator'))}" if "n_gens" in settings else "")
             + (f", architecture {escape(str(meta['architecture']))}" if "architecture" in meta else "")
             + f", dataset {escape(str(settings.get('dataset', '?')))}",
             f"folder <code>{escape(str(run_dir))}</code>"]
    sections: list[tuple[str, str, str]] = []
    if summary is None:
        facts.append("no finished epoch yet: nothing to plot")
    else:
        final = evals.get(features, {})
        whole = metrics.rows.count - bool(last.get("partial"))  # a run stopped inside an epoch ends with that epoch's record
        facts.append(f"{plural(whole, 'epoch')} finished" + (f" and part of epoch {fmt(last.get('epoch'))}" if whole < metrics.rows.count else "")
                     + f" (step {fmt(last.get('step'))})"
                     + (f"; final FID {fmt(final.get('fid'), 2)} ({escape(features)} features)" if "fid" in final else "")
                     + (f"; best FID during training {fmt(summary['best_fid'], 2)}" if summary.get("best_fid") is not None else ""))
        sections.append(("curves", "Curves", curve_charts(metrics, summary)))
    several = isinstance(settings.get("n_gens"), int) and settings["n_gens"] > 1
    note = ". Rows: one block per generator, generator 1 on top." if several else "."
    sections.append(("samples", "Sample grids", stepper_html("run", name, pick_grids(run_dir), note=note)))
    if evals:
        rows = [[key, *(result.get(key) for result in evals.values())] for key in FINAL_KEYS if any(key in r for r in evals.values())]
        sections.append(("final", "Final evaluation", table(["metric", *evals], rows)))
        per_class = next((r["per_class"] for r in evals.values() if isinstance(r.get("per_class"), list) and r["per_class"]), None)
        if per_class:
            sections.append(("classes", "Per class (final evaluation)", per_class_table(per_class)))
    source, generators = generators_of(evals, metrics)
    if len(generators) > 1:
        sections.append(("split", "How the generators share the work",
                         f'<p class="muted">From the {escape(source)}.</p>' + class_split([(name, generators)])))
    if last is not None:
        sections.append(("epochs", "Numbers per epoch", epoch_table(metrics, list((summary or {}).get("extras", {})))))
    protocols = [(f"final ({k})", v["protocol"]) for k, v in evals.items() if isinstance(v.get("protocol"), dict)]
    if training := metrics.protocol:
        protocols.append(("during training", training))
    sections.append(("config", "Configuration", code(config_text) if config_text else '<p class="muted">No config.toml.</p>'))
    sections.append(("protocol", "Evaluation protocol", protocol_table(protocols)))
    return page(f"ganzoo run: {name}", facts, sections)

