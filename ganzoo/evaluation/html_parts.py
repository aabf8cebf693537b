"""The pieces both HTML reports are made of: the page and its style, tables, numbers, what a report
keeps of a run's metrics.jsonl (bounded, however long the run), the class split per generator and the
evaluation protocol. Every string read from a file goes through escape()."""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from ganzoo import __version__
from ganzoo.core.safe_read import read_text
from ganzoo.evaluation.report_images import STEPPER_JS, stepper_css
from ganzoo.evaluation.run_metrics import RunMetrics, not_ganzoos, read_run_metrics, run_summary
from ganzoo.evaluation.svg_plot import PALETTE, RefLine, Series

STYLE = """
:root{color-scheme:light}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;background:#f6f7f9;margin:0}
main{max-width:1160px;margin:0 auto;padding:20px 28px 60px;background:#fff;min-height:100vh;box-shadow:0 0 0 1px #e4e6ea}
h1{font-size:24px;margin:8px 0 4px}
h2{font-size:18px;margin:34px 0 10px;padding-bottom:4px;border-bottom:1px solid #e4e6ea}
h3{font-size:15px;margin:18px 0 6px}
nav{font-size:13px;margin:8px 0 4px}
nav a{margin-right:14px;color:#4e79a7;text-decoration:none}
nav a:hover{text-decoration:underline}
.muted{color:#666}
.small{font-size:12px}
.facts{margin:6px 0;padding:0;list-style:none}
.facts li{margin:2px 0}
.charts{display:flex;flex-wrap:wrap;gap:18px 26px}
svg.chart{max-width:100%;height:auto}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #dfe2e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.wide{overflow-x:auto;max-width:100%}
.verdict{font-weight:600;white-space:nowrap}
.supported{color:#2e7d32}.not-supported{color:#c62828}.inconclusive{color:#8a6d00}
pre{background:#f6f8fa;border:1px solid #e4e6ea;padding:10px 12px;font-size:12px;line-height:1.4;white-space:pre-wrap;overflow-wrap:anywhere}
details{margin:8px 0}
summary{cursor:pointer;color:#4e79a7}
.grids{display:flex;flex-wrap:wrap;gap:22px}
.stepper{position:relative;display:inline-block;vertical-align:top}
.stepper img{display:block;max-width:100%;height:auto;image-rendering:pixelated;border:1px solid #dfe2e6}
.stepper figcaption{font-size:12px;color:#444;margin:4px 0}
.picks{display:flex;flex-wrap:wrap;gap:4px;align-items:center;max-width:360px;margin-top:4px}
.picks label{border:1px solid #c9ced6;border-radius:4px;padding:0 6px;font-size:12px;cursor:pointer;background:#fff}
.slider{display:block;width:100%;max-width:360px;margin:6px 0 2px}
.grids .picks,.grids .slider{max-width:280px}
"""


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table cell ("-" for a missing or non-finite one); anything else escaped."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return escape(str(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.{digits}f}"
    return escape(str(value))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3, numeric_from: int = 1) -> str:
    """An HTML table; cells that are numbers are formatted and right-aligned, strings escaped.
    A cell given as ("html", text) is inserted as it is (for markup built here), one given as
    ("num", text) escaped and right-aligned (a number formatted by the caller)."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            if isinstance(value, tuple) and len(value) == 2 and value[0] == "html":
                cells.append(f"<td>{value[1]}</td>")
            elif isinstance(value, tuple) and len(value) == 2 and value[0] == "num":
                cells.append(f'<td class="num">{escape(str(value[1]))}</td>')
            elif isinstance(value, int | float) and not isinstance(value, bool) and i >= numeric_from:
                cells.append(f'<td class="num">{fmt(value, digits)}</td>')
            else:
                cells.append(f"<td>{fmt(value, digits)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def significant(value: Any, digits: int = 4) -> Any:
    """A number as a ("num", text) table cell with digits significant digits (for scalars of any scale,
    such as a policy's R1 penalty); anything else as it is."""
    if isinstance(value, float) and math.isfinite(value):
        return ("num", f"{value:.{digits}g}")
    return value


def section(anchor: str, title: str, *content: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{"".join(content)}</section>'


def page(title: str, facts: Sequence[str], sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: (anchor, title, html) sections under a title, a list of facts and a
    table of contents. Self-contained: inline style and script, no fetches."""
    nav = "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for a, t, _ in sections)
    body = "".join(section(a, t, html) for a, t, html in sections)
    written = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    facts_html = "".join(f"<li>{f}</li>" for f in facts)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}{stepper_css()}</style></head>"
            f"<body><main><h1>{escape(title)}</h1><ul class=\"facts\">{facts_html}</ul><nav>{nav}</nav>{body}"
            f"<p class=\"muted small\">Written by ganzoo {escape(__version__)} on {written} (ganzoo report).</p>"
            f"</main><script>{STEPPER_JS}</script></body></html>\n")


def code(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def read_config(run_dir: Path) -> tuple[str, dict[str, Any]]:
    """config.toml of a run: its text and its parsed tables ({} when it is missing or does not parse)."""
    path = run_dir / "config.toml"
    if not path.exists():
        return "", {}
    text = read_text(path, "config file", follow=False)
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError):
        return text, {}
    return text, data


def summarise(run_dir: Path, features: str, metrics: RunMetrics | None = None) -> dict[str, Any] | None:
    """run_metrics.run_summary, with a file that is not ganzoo's reported as such."""
    metrics = metrics if metrics is not None else read_run_metrics(run_dir)
    try:
        return run_summary(run_dir, features, metrics)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise not_ganzoos(run_dir, exc) from None


def generator_color(i: int) -> str:
    """Generator i's colour, the same in every chart (D and the mean G take the first two)."""
    return PALETTE[(2 + i) % len(PALETTE)]


def chance_lines(chances: Sequence[tuple[str, float, str]], note: str = "") -> list[RefLine]:
    """D's chance level as reference lines from (label, chance, colour), the chance as the runs' records
    have it: the input policy's (PolicyOutput.chance; 1/(N+1) for the tuple policy, 0.5 for a binary
    one), so a label gives the value, never a formula. One grey line when every run has the same level
    (its label adds note, if any), else one per level in the colour of its first configuration."""
    levels: dict[float, list[tuple[str, str]]] = {}
    for label, chance, color in chances:
        levels.setdefault(round(float(chance), 6), []).append((label, color))
    if len(levels) == 1:
        level = next(iter(levels))
        return [RefLine(level, f"chance {level:.3f}" + (f" ({note})" if note else ""))]
    return [RefLine(level, f"chance {level:.3f} ({', '.join(label for label, _ in users)})", users[0][1])
            for level, users in sorted(levels.items())]


def over_seeds(label: str, runs: Sequence[dict[str, Any]], x_key: str, y_of: Any, **style: str) -> Series | None:
    """The mean over runs per x, with the min-max band when there are several runs (the shortest run
    sets the length, as in the markdown report's figures). Runs whose x differ (a long run's curves are
    thinned, one stride per run) are matched by x: the points are the x values all of them have."""
    series = [(r[x_key], y_of(r)) for r in runs if r.get(x_key)]
    if not series:
        return None
    length = min(len(x) for x, _ in series)
    x = list(series[0][0][:length])
    if all(list(xs[:length]) == x for xs, _ in series[1:]):
        columns = list(zip(*(y[:length] for _, y in series)))
    else:
        points = [dict(zip(xs, y)) for xs, y in series]
        x = [v for v in dict.fromkeys(series[0][0]) if all(v in p for p in points[1:])]
        columns = [tuple(p[v] for p in points) for v in x]
    def clean(col: Sequence[Any]) -> list[float]:
        return [float(v) for v in col if isinstance(v, int | float) and math.isfinite(v)]
    mean = [sum(c) / len(c) if (c := clean(col)) else None for col in columns]
    if len(series) < 2:
        return Series(label, x, mean, **style)
    low = [min(c) if (c := clean(col)) else None for col in columns]
    high = [max(c) if (c := clean(col)) else None for col in columns]
    return Series(label, x, mean, low, high, **style)


def class_split(rows: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> str:
    """Per generator: FID on its own samples, classes (or modes) covered and, with class histograms,
    the share of each class's samples it made, shaded (a clean split shows 100s and 0s)."""
    rows = [(name, [g for g in gens if isinstance(g, dict)]) for name, gens in rows]
    with_classes = all(isinstance(h := g.get("class_histogram"), list) and all(isinstance(c, int | float) for c in h)
                       for _, gens in rows for g in gens)
    classes = max((len(g["class_histogram"]) for _, gens in rows for g in gens), default=0) if with_classes else 0
    conditional = any("class_consistency" in g or "intra_fid_mean" in g for _, gens in rows for g in gens)
    header = ["run", "generator", "FID", "covered", *(["class consistency", "intra-class FID"] if conditional else []),
              *(str(c) for c in range(classes))]
    body = []
    for name, generators in rows:
        totals = [sum(c) for c in zip(*(g["class_histogram"] for g in generators))] if with_classes else []
        for i, g in enumerate(generators, 1):
            cells: list[Any] = [name, i, g.get("fid"), g.get("classes", g.get("modes"))]
            if conditional:
                cells += [_score(g.get("class_consistency"), 3), _score(g.get("intra_fid_mean"), 2)]
            for count, total in zip(g.get("class_histogram", []) if with_classes else [], totals):
                share = 100 * count / total if total else None
                cells.append(("html", shaded(share)))
            body.append(cells)
    note = ("<p class=\"muted\">Per generator: FID on its own samples and the classes (or modes) it covers"
            + ("; asked for every class (a conditional run), how often the classifier agrees with the asked class "
               "and its mean intra-class FID" if conditional else "")
            + ("; for each class, the percentage of that class's samples it made (a clean split shows 100s and 0s)." if with_classes else ".")
            + "</p>")
    return note + table(header, body, digits=2, numeric_from=2)


def _score(value: Any, digits: int) -> Any:
    """A score as a ("num", text) cell with its own digits; "-" for a missing one."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return ("num", f"{value:.{digits}f}")
    return None


def per_class_table(per_class: Sequence[Any], cap: int = 100) -> str:
    """A conditional run's per-class scores (the final evaluation's), by class; with more than cap
    classes, the cap classes of highest FID (the JSON has them all)."""
    entries = [c for c in per_class if isinstance(c, dict)]
    shown = entries
    note = ("Per class k: FID, precision and recall (k = 3) of the samples asked for class k against the real images "
            "labelled k, and the share the classifier gives class k (consistency).")
    if len(entries) > cap:
        shown = sorted(entries, key=lambda c: -c["fid"] if isinstance(c.get("fid"), int | float) else math.inf)[:cap]
        note += f" The {cap} classes of highest FID of {len(entries)}; eval-*.json has them all."
    rows = [[c.get("class"), c.get("name"), _score(c.get("fid"), 2), _score(c.get("precision"), 3), _score(c.get("recall"), 3),
             _score(c.get("consistency"), 3), c.get("n_fake"), c.get("n_real"), c.get("note")] for c in shown]
    return (f'<p class="muted">{escape(note)}</p>'
            + table(["class", "name", "FID", "precision", "recall", "consistency", "fake", "real", "note"], rows, numeric_from=2))


def shaded(share: float | None) -> str:
    if share is None:
        return '<span class="muted">-</span>'
    alpha = 0.08 + 0.8 * share / 100
    color = "#fff" if share > 55 else "#1d1d1f"
    return (f'<span style="display:block;margin:-4px -8px;padding:4px 8px;text-align:right;'
            f'background:rgba(78,121,167,{alpha:.2f});color:{color}">{share:.0f}</span>')


def protocol_table(protocols: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """One column per evaluation (final, during training...), one row per protocol field."""
    if not protocols:
        return '<p class="muted">No evaluation in this run (train with --eval-every K or run ganzoo eval).</p>'
    keys: list[str] = []
    for _, p in protocols:
        keys += [k for k in p if k not in keys]
    rows = [[k, *(p.get(k) for _, p in protocols)] for k in keys]
    return table(["field", *(name for name, _ in protocols)], rows, digits=4)
