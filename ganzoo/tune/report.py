"""What a tune found, as OUT/report.md and OUT/report.html: the best trials with their settings and
run folders, the optimisation history, the parameters' importances (Optuna's fANOVA), how many
trials the pruner stopped, and the command that retrains the best configuration. Read from the
study each time; ``ganzoo tune --report OUT`` and ``ganzoo report OUT`` write it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo.core.errors import GanzooError
from ganzoo.core.files import write_atomic
from ganzoo.tune.settings import read_state

TOP = 10


@dataclass(frozen=True)
class Found:
    """The study's trials, summarised."""

    settings: dict[str, Any]
    target: int
    trials: list[Any]  # optuna FrozenTrials, by number
    best: list[Any]  # the complete ones, best first
    counts: dict[str, int]
    importances: dict[str, float]
    importance_note: str


def load(out: Path) -> Found:
    from ganzoo.tune.worker import open_study

    state = read_state(out)
    if state is None:
        raise GanzooError(f"{out} is not a ganzoo tune folder (no tune.json)")
    settings = state["settings"]
    study = open_study(settings, out)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    best = sorted(complete, key=lambda t: t.value, reverse=settings["direction"] == "maximize")
    counts = {name: sum(t.state.name == name.upper() for t in trials) for name in ("complete", "pruned", "fail", "running")}
    importances, note = {}, ""
    if len(complete) >= 2 and settings["space"]:
        import optuna

        try:
            importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            note = f"no importances: {exc}"
    else:
        note = "importances need at least 2 complete trials"
    return Found(settings, state["target"], trials, best, counts, importances, note)


def _params(trial: Any) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in sorted(trial.params.items()))


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def markdown(found: Found) -> str:
    s, metric = found.settings, found.settings["metric"]
    lines = [f"# ganzoo tune: {s['strategy']} {' '.join(s['args'])}".rstrip(), "",
             f"{len(found.trials)} trials of {found.target}: {found.counts['complete']} complete, {found.counts['pruned']} pruned, "
             f"{found.counts['fail']} failed, {found.counts['running']} running or interrupted. Objective: {metric} "
             f"({s['direction']}) of `ganzoo eval --n {s['final_n']}` after a budget of {s['budget']}; pruner: {s['pruner']}, "
             f"on the {metric} of the in-training evaluations (every {s['eval_every']}, {s['eval_n']} samples).", "",
             *([] if s.get("sampler") == "grid" else
               ["Trial 0 ran the settings the run has without tuning (the strategy's defaults and the options given).", ""]),
             "## Best trials", "", f"| trial | {metric} | parameters | run |", "|---:|---:|---|---|"]
    lines += [f"| {t.number} | {t.value:.4g} | {_params(t)} | {t.user_attrs.get('run', '')} |" for t in found.best[:TOP]]
    if found.best:
        lines += ["", "Retrain the best configuration:", "", "```", found.best[0].user_attrs.get("command", ""), "```"]
    lines += ["", "## Parameter importances", ""]
    lines += [f"- {name}: {value:.3f}" for name, value in found.importances.items()] or [found.importance_note]
    lines += ["", "## Search space", ""] + [f"- {name}: {text}" for name, text in found.settings["space"].items()]
    failed = [t for t in found.trials if t.state.name == "FAIL"]
    if failed:
        lines += ["", "## Failed trials", ""] + [f"- trial {t.number}: {t.user_attrs.get('error', 'no error recorded')}" for t in failed]
    return "\n".join(lines) + "\n"


def html(found: Found) -> str:
    from ganzoo.evaluation.html_parts import code, page, table
    from ganzoo.evaluation.svg_plot import Chart, Series, line_chart

    s, metric = found.settings, found.settings["metric"]
    done = [t for t in found.trials if t.state.name == "COMPLETE" and t.value is not None]
    better = min if s["direction"] == "minimize" else max
    running, best_so_far = None, []
    for t in done:
        running = t.value if running is None else better(running, t.value)
        best_so_far.append(running)
    history = line_chart(Chart(f"{metric} per trial", [Series("trial", [t.number for t in done], [t.value for t in done]),
                                                     Series("best so far", [t.number for t in done], best_so_far)],
                               xlabel="trial", ylabel=metric))
    pruned = [t for t in found.trials if t.state.name == "PRUNED"]
    curves = [Series(f"trial {t.number}{' (pruned)' if t.state.name == 'PRUNED' else ''}", sorted(t.intermediate_values),
                     [t.intermediate_values[k] for k in sorted(t.intermediate_values)]) for t in found.trials if t.intermediate_values]
    learning = line_chart(Chart(f"in-training {metric} (what the pruner compared)", curves[:20], xlabel="evaluation", ylabel=metric))
    rows = [(t.number, t.value, _params(t), t.user_attrs.get("run", "")) for t in found.best[:TOP]]
    best = table(["trial", metric, "parameters", "run folder"], rows, digits=4)
    if found.best:
        best += "<p>Retrain the best configuration:</p>" + code(found.best[0].user_attrs.get("command", ""))
    importance = (table(["parameter", "importance"], list(found.importances.items())) if found.importances
                  else f"<p>{found.importance_note}</p>")
    facts = [f"{s['strategy']} {' '.join(s['args'])}", f"{len(found.trials)} trials of {found.target}",
             f"{found.counts['complete']} complete, {len(pruned)} pruned, {found.counts['fail']} failed",
             f"objective: {metric} ({s['direction']}), budget {s['budget']}, pruner {s['pruner']}"]
    space = table(["parameter", "space"], list(s["space"].items()))
    return page("ganzoo tune", facts, [("best", "Best trials", best), ("history", "Optimisation history", history + learning),
                                       ("importance", "Parameter importances", importance), ("space", "Search space", space)])


def write_report(out: Path) -> tuple[Path, Path, Found]:
    found = load(out)
    write_atomic(out / "report.md", markdown(found).encode())
    write_atomic(out / "report.html", html(found).encode("utf-8"))
    return out / "report.md", out / "report.html", found
