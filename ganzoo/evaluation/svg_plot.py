"""Line charts as inline SVG text (axes, ticks, legend, min-max bands, reference lines), so that
reports draw their curves with no plotting library at all."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

# Tableau 10: distinct in colour and in lightness, readable on white.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
DASHES = ("", "6 3", "2 3", "8 3 2 3")  # after ten colours, the next ten are dashed, and so on
FONT = 12
CHAR_WIDTH = 6.6  # average width of a character at FONT px, for laying out the legend
MARKERS_UP_TO = 30  # points per series up to which each point gets a dot


@dataclass(frozen=True)
class Series:
    """One line: y per x (None or NaN leaves a gap), optionally a band from low to high."""

    label: str
    x: Sequence[float]
    y: Sequence[float | None]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None
    color: str = ""
    dash: str = ""


@dataclass(frozen=True)
class RefLine:
    """A horizontal reference line, such as D's chance level."""

    y: float
    label: str
    color: str = "#666666"


@dataclass(frozen=True)
class Chart:
    title: str
    series: Sequence[Series]
    xlabel: str = "epoch"
    ylabel: str = ""
    refs: Sequence[RefLine] = field(default_factory=tuple)
    y_range: tuple[float | None, float | None] = (None, None)
    width: int = 460
    height: int = 260


def styled(series: Sequence[Series]) -> list[Series]:
    """The series with a colour and dash pattern each, where not given."""
    out = []
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        dash = s.dash or DASHES[(i // len(PALETTE)) % len(DASHES)]
        out.append(Series(s.label, s.x, s.y, s.low, s.high, color, dash))
    return out


def finite(v: float | None) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten; whole numbers only with integer) covering lo..hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1.0, step) if integer else step
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def tick_text(value: float, step: float) -> str:
    """A tick's label: the digits the step needs; "20k" on an axis whose step is 10,000 or more (the epochs
    of a long run), "2M" where it is a million or more; very large or small values as 1e+12 (but whole
    numbers a step of 1 or more apart in full: epochs 100,010 to 100,050 are not all "1e+05")."""
    for size, suffix, least in ((1e6, "M", 1e6), (1e3, "k", 1e4)):
        if least <= step and abs(value) < 1e12:
            return f"{value / size:.0f}{suffix}" if value else "0"
    if (abs(value) >= 1e5 and not (step >= 1 and abs(value) < 1e12)) or (value != 0 and abs(value) < 1e-3):
        return f"{value:.2g}"
    digits = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:.{digits}f}"


def line_chart(chart: Chart) -> str:
    """The chart as an <svg> element: title, y axis with round ticks, x axis, lines, legend below."""
    series = styled(chart.series)
    xs = [float(x) for s in series for x, y in zip(s.x, s.y) if finite(x) and finite(y)]
    ys = [float(v) for s in series for seq in (s.y, s.low or (), s.high or ()) for v in seq if finite(v)]
    ys += [r.y for r in chart.refs]
    title = escape(chart.title)
    if not xs:
        return (f'<svg class="chart" viewBox="0 0 {chart.width} 60" width="{chart.width}" role="img" aria-label="{title}">'
                f'<text x="8" y="20" font-size="{FONT + 1}" font-weight="600">{title}</text>'
                f'<text x="8" y="44" font-size="{FONT}" fill="#666">no data</text></svg>')
    whole = all(float(v).is_integer() for v in ys)  # counts (classes, modes): whole-number ticks
    lo, hi = chart.y_range
    pad = 0.04 * (max(ys) - min(ys))  # lines and bands should not run along the frame
    lo = min(ys) - pad if lo is None else lo
    hi = max(ys) + pad if hi is None else hi
    if hi - lo < 1e-12:
        half = 1.0 if whole else abs(lo) * 0.1 or 0.5
        lo, hi = lo - half, hi + half
    y_ticks = nice_ticks(lo, hi, integer=whole)
    lo, hi = min([lo, *y_ticks]), max([hi, *y_ticks])
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    x_ticks = nice_ticks(x_lo, x_hi, 6, integer=all(float(x).is_integer() for x in xs))

    step_y = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    widest = max((len(tick_text(t, step_y)) for t in y_ticks), default=1)
    left, right, top, bottom = round(max(46.0, 26 + CHAR_WIDTH * widest + 6)), 12, 26, 38
    legend, legend_height = legend_svg([*series, *chart.refs], chart.width, left)
    plot_w, plot_h = chart.width - left - right, chart.height - top - bottom
    total_h = chart.height + legend_height

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return top + (hi - y) / (hi - lo) * plot_h

    parts = [f'<svg class="chart" viewBox="0 0 {chart.width} {total_h}" width="{chart.width}" height="{total_h}" '
             f'role="img" aria-label="{title}" font-family="system-ui, sans-serif" font-size="{FONT}">',
             f'<text x="{left}" y="16" font-size="{FONT + 1}" font-weight="600">{title}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#bbb"/>']
    for t in y_ticks:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 5}" y="{py(t) + 4:.1f}" text-anchor="end" fill="#444">{tick_text(t, step_y)}</text>')
    step_x = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    for t in x_ticks:
        parts.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#888"/>'
                     f'<text x="{px(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#444">{tick_text(t, step_x)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 32}" text-anchor="middle" fill="#444">{escape(chart.xlabel)}</text>')
    if chart.ylabel:
        parts.append(f'<text transform="translate(13 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" fill="#444">'
                     f'{escape(chart.ylabel)}</text>')
    for ref in chart.refs:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(ref.y):.1f}" y2="{py(ref.y):.1f}" '
                     f'stroke="{escape(ref.color)}" stroke-dasharray="5 4" stroke-width="1.3"/>')
    for s in series:
        if s.low is not None and s.high is not None:
            for run in segments(s.x, s.low, s.high):
                upper = " ".join(f"{px(x):.1f},{py(h):.1f}" for x, _, h in run)
                lower = " ".join(f"{px(x):.1f},{py(lo_):.1f}" for x, lo_, _ in reversed(run))
                parts.append(f'<polygon points="{upper} {lower}" fill="{s.color}" fill-opacity="0.16" stroke="none"/>')
    for s in series:
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        for run in segments(s.x, s.y):
            points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{s.color}" stroke-width="1.8"{dash}/>')
            if len(s.x) <= MARKERS_UP_TO:
                parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.4" fill="{s.color}"/>' for x, y in run]
    parts.append(f'<g transform="translate(0 {chart.height})">{legend}</g></svg>')
    return "".join(parts)


def segments(x: Sequence[float], *columns: Sequence[float | None]) -> list[list[tuple[float, ...]]]:
    """The points (x, c1, c2, ...) split where any column has no finite value: a gap, not a jump."""
    runs: list[list[tuple[float, ...]]] = [[]]
    for row in zip(x, *columns):
        if all(finite(v) for v in row):
            runs[-1].append(tuple(float(v) for v in row))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def legend_svg(items: Sequence[Series | RefLine], width: int, left: float) -> tuple[str, int]:
    """Legend entries flowed left to right in rows; returns the SVG and its height."""
    if len(items) < 2 and not any(isinstance(i, RefLine) for i in items):
        return "", 0
    parts, x, row = [], left, 0
    for item in items:
        label = item.label if len(item.label) <= 40 else item.label[:39] + "…"
        entry = 30 + CHAR_WIDTH * len(label) + 14
        if x + entry > width and x > left:
            x, row = left, row + 1
        y = 8 + 18 * row
        dash = item.dash if isinstance(item, Series) else "5 4"
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x:.1f}" x2="{x + 24:.1f}" y1="{y}" y2="{y}" stroke="{escape(item.color)}" stroke-width="2.2"{dash_attr}/>'
                     f'<text x="{x + 30:.1f}" y="{y + 4}" fill="#222">{escape(label)}</text>')
        x += entry
    return "".join(parts), 18 * (row + 1) + 6
