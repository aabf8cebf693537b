"""``ganzoo report``: the HTML page of a real run and of a real compare folder, opened in headless
Chromium (screenshot, DOM, console), without matplotlib, escaped, and small and quick for a
100-epoch, 15-run comparison."""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from ganzoo.cli.main import cli
from ganzoo.evaluation import convergence, html_compare, run_metrics
from ganzoo.evaluation.claims import d_loss
from ganzoo.evaluation.compare_report import budget_text, interval_text, plural, write_report
from ganzoo.evaluation.html_parts import chance_lines, summarise
from ganzoo.evaluation.html_report import write_html_report
from ganzoo.evaluation.run_metrics import MAX_POINTS, MAX_TABLE_ROWS, Thinned
from ganzoo.evaluation.svg_plot import Chart, Series, line_chart, nice_ticks, segments
from ganzoo.runs import rundir

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (Debian: apt-get install chromium; .ci/run installs it)")
CONSOLE = re.compile(r":CONSOLE[(:]\d*\)?\]?\s*(.*)")  # Chromium's log line for a console message or an uncaught error
SETTINGS = {"specs": ["psg2=psg --n-gens 2", "sngan"], "seeds": 2, "epochs": 2, "dataset": "mnist", "limit_data": 128,
            "eval_every": 1, "eval_n": 100, "final_n": 100, "features": "lenet"}


def invoke(host, *args: str):
    return CliRunner().invoke(cli, list(args), obj=host)


def browse(page: Path, tmp_path: Path) -> tuple[str, list[str], Image.Image]:
    """Open page in headless Chromium: its DOM after scripts ran, its console messages, a screenshot."""
    shot = tmp_path / f"{page.stem}.png"
    argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
            f"--screenshot={shot}", "--window-size=1280,2000", "--dump-dom", page.resolve().as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [m.group(1) for line in done.stderr.splitlines() if (m := CONSOLE.search(line))]
    with Image.open(shot) as image:
        return done.stdout, console, image.convert("RGB")


def assert_rendered(dom: str, console: list[str], shot: Image.Image, headings: list[str]) -> None:
    assert console == [], f"console messages: {console}"
    colours = shot.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the screenshot is nearly blank"
    white = max(count for count, colour in colours if colour == (255, 255, 255)) if (255, 255, 255) in {c for _, c in colours} else 0
    assert white < 0.97 * shot.width * shot.height, "the screenshot is nearly all white"
    for heading in headings:
        assert re.search(rf"<h2>{re.escape(heading)}</h2>", dom), f"missing heading {heading!r}"
    assert 'type="range"' in dom  # the page's script ran (it adds the epoch sliders)
    assert not re.search(r'(src|href)="(?!data:|#)', dom), "the page refers to something outside itself"
    assert "<link" not in dom and "@import" not in dom


@pytest.fixture(scope="module")
def real_run(host, tmp_path_factory):
    """A real two-generator PSG run on 128 MNIST images: 2 epochs, evaluated each epoch and at the end;
    without psg's R1 and R2 (0.6's recipe), so that it logs no extras."""
    run = tmp_path_factory.mktemp("report") / "psg-run"
    trained = invoke(host, "train", "psg", "--r1", "0", "--r2", "0", "--limit-data", "128", "--batch-size", "32", "--epochs", "2", "--device", "cpu",
                     "--eval-every", "1", "--eval-n", "100", "--out", str(run), "--quiet")
    assert trained.exit_code == 0, trained.output
    evaluated = invoke(host, "eval", str(run), "--n", "100", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    return run


def perturbed_copy(run: Path, target: Path, factor: float) -> None:
    """A copy of run whose numbers differ by factor, standing in for another seed."""
    shutil.copytree(run, target)
    scale = lambda v: v * factor if isinstance(v, float) else [scale(x) for x in v] if isinstance(v, list) else v
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = ("d_loss", "g_loss", "g_loss_mean", "loss_gap", "fid", "kid")
    (target / "metrics.jsonl").write_text("".join(json.dumps({k: scale(v) if k in keys else v for k, v in r.items()}) + "\n" for r in records))
    final = json.loads((run / "eval-lenet.json").read_text())
    final["fid"] *= factor
    (target / "eval-lenet.json").write_text(json.dumps(final))


@pytest.fixture(scope="module")
def compare_dir(host, real_run, tmp_path_factory):
    """A compare folder whose four runs are finished (copies of the real run), then a real
    ``ganzoo compare`` with the same settings: it trains nothing and writes report.md and report.html."""
    out = tmp_path_factory.mktemp("report") / "cmp"
    for i, (label, seed) in enumerate((("psg2", 0), ("psg2", 1), ("sngan", 0), ("sngan", 1))):
        perturbed_copy(real_run, out / "runs" / label / f"seed-{seed}", 1 + 0.1 * i)
    (out / "compare.json").write_text(json.dumps({"settings": SETTINGS, "command": "ganzoo compare ..."}))
    done = invoke(host, "compare", *SETTINGS["specs"], "--seeds", "2", "--epochs", "2", "--limit-data", "128",
                  "--eval-n", "100", "--final-n", "100", "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "report.html" in done.output
    return out


@needs_chromium
def test_a_run_report_renders_in_chromium(host, real_run, tmp_path):
    result = invoke(host, "report", str(real_run), "--out", str(tmp_path / "run.html"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {tmp_path / 'run.html'}")
    dom, console, shot = browse(tmp_path / "run.html", tmp_path)
    assert_rendered(dom, console, shot, ["Curves", "Sample grids", "Final evaluation", "How the generators share the work",
                                         "Numbers per epoch", "Configuration", "Evaluation protocol"])
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) == 2  # one grid per epoch
    titles = re.findall(r'<svg class="chart"[^>]*aria-label="([^"]+)"', dom)
    assert titles == ["Losses per epoch", "D accuracy per epoch", "FID per epoch", "KID per epoch", "classes covered per epoch"]
    assert "chance 0.333 (tuple policy)" in dom and "G2 alone" in dom
    assert 'strategy = "psg"' in dom  # the full config


@needs_chromium
def test_compare_writes_a_report_that_renders_in_chromium(compare_dir, tmp_path):
    page = compare_dir / "report.html"  # written by ganzoo compare itself
    assert (compare_dir / "report.md").exists() and page.exists()
    dom, console, shot = browse(page, tmp_path)
    assert_rendered(dom, console, shot, ["The paper's claims", "Summary per configuration", "Curves",
                                         "How the generators share the work", "Sample grids", "Runs", "Settings and evaluation protocol"])
    verdicts = re.findall(r'<span class="verdict [a-z-]*">(supported|not supported|inconclusive)</span>', dom)
    assert len(verdicts) == 4
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) == 4  # first seed of each configuration, 2 epochs
    assert "psg2: losses" in dom and "sngan: losses" in dom and "final FID" in dom


@needs_chromium
def test_a_console_error_is_detected(tmp_path):
    """The console check above can fail: a broken script shows up in what browse() returns."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><h2>Curves</h2><p>" + "x " * 500 + "</p>"
                    "<script>no_such_function();</script></body></html>")
    dom, console, _ = browse(page, tmp_path)
    assert any("no_such_function is not defined" in m for m in console), console
    with pytest.raises(AssertionError, match="console messages"):
        assert_rendered(dom, console, Image.new("RGB", (10, 10)), ["Curves"])


def test_the_report_needs_no_matplotlib(compare_dir, real_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing matplotlib now fails
    for source, name in ((real_run, "run.html"), (compare_dir, "cmp.html")):
        html = write_html_report(source, tmp_path / name).path.read_text()
        assert html.count('<svg class="chart"') >= 4 and "<table>" in html
    for module in Path(write_html_report.__code__.co_filename).parent.glob("*.py"):
        if module.stem in ("html_report", "html_compare", "html_parts", "run_metrics", "report_images", "svg_plot"):
            assert "matplotlib" not in module.read_text()


def fake_run(run: Path, epochs: int, n_gens: int, seed: int, strategy: str = "psg", chance: float | None = None,
             extras: dict[str, list[float]] | None = None) -> None:
    """A run folder as ganzoo writes it, with made-up numbers and tiny sample grids; chance defaults to
    the tuple policy's 1/(N+1), extras (the policy's own scalars) to none."""
    (run / "samples").mkdir(parents=True)
    (run / "config.toml").write_text(f'[train]\nstrategy = "{strategy}"\nn_gens = {n_gens}\nseed = {seed}\n')
    lines = []
    for e in range(1, epochs + 1):
        fid = 300 / e + seed
        lines.append(json.dumps({"epoch": e, "step": 10 * e, "partial": False, "d_loss": 0.6 + 0.1 / e, "g_loss": [1.0 + 0.01 * g for g in range(n_gens)],
                                 "g_loss_mean": 1.0, "loss_gap": 0.4, "d_accuracy": 0.5, "chance": chance or 1 / (n_gens + 1), "seconds": 1.0,
                                 "fid": fid, "kid": fid / 2, "classes": 10, "fid_per_generator": [fid] * n_gens,
                                 **({"extras": {k: v[e - 1] for k, v in extras.items()}} if extras else {})}))
        Image.effect_noise((40, 40 * n_gens), 60 + e).convert("L").save(run / "samples" / f"epoch-{e:04d}.png")
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    generators = [{"fid": 100.0, "classes": 5, "class_histogram": [10 * ((c + g) % 2) for c in range(10)]} for g in range(n_gens)]
    (run / "eval-lenet.json").write_text(json.dumps({"fid": 100.0 + seed, "kid": 50.0, "classes": 10, "generators": generators,
                                                     "protocol": {"extractor": "lenet", "n_real": 10000, "n_fake": 10000, "seed": 0}}))


def test_a_big_comparison_stays_small_and_quick(tmp_path):
    """5 configurations x 3 seeds x 100 epochs: at most 12 grids per configuration, a few MB, seconds."""
    out = tmp_path / "big"
    labels = [f"psg{n}" for n in (1, 2, 3, 4)] + ["sngan"]
    for label in labels:
        for seed in range(3):
            n_gens, strategy = (1, "sngan") if label == "sngan" else (int(label[3:]), "psg")
            fake_run(out / "runs" / label / f"seed-{seed}", 100, n_gens, seed, strategy)
    (out / "compare.json").write_text(json.dumps({"settings": {**SETTINGS, "specs": labels, "seeds": 3, "epochs": 100}}))
    started = time.perf_counter()
    written = write_html_report(out)
    seconds = time.perf_counter() - started
    html = written.path.read_text()
    assert seconds < 15, f"took {seconds:.1f} s"
    assert written.size < 3_000_000, f"{written.size:,} bytes"
    assert html.count("<img ") == 5 * 12
    assert html.count("12 of 100 epochs&#x27; grids embedded") == 5
    # recomputed without summary.json: 5 claim rows for each of psg2, psg3 and psg4 (psg1, one generator, is claim 1's reference)
    assert html.count('<span class="verdict') == 3 * 5


def test_strings_from_files_are_escaped(tmp_path):
    run = tmp_path / "run"
    fake_run(run, 3, 2, 0, extras={"<i>x</i>": [1.0, 2.0, 3.0]})
    evil = '<script>alert(1)</script>'
    (run / "config.toml").write_text(f'[train]\nstrategy = "{evil}"\ndataset = "<img src=x onerror=alert(2)>"\n[meta]\narchitecture = "{evil}"\n')
    html = write_html_report(run).path.read_text()
    assert "<script>alert" not in html and "<img src=x" not in html and "<i>x" not in html and "&lt;i&gt;x" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def bad_metrics(path: Path, record: str = '{"epoch": 1, "g_loss": "x"}') -> Path:
    path.mkdir()
    (path / "metrics.jsonl").write_text(record + "\n")
    return path


def test_unreadable_grids_are_skipped_and_counted(tmp_path):
    run = tmp_path / "run"
    fake_run(run, 3, 2, 0)
    (run / "samples" / "epoch-0002.png").write_bytes(b"not a png")
    huge = bytearray((run / "samples" / "epoch-0001.png").read_bytes())
    huge[16:24] = (100_000).to_bytes(4, "big") * 2  # claims 100,000 x 100,000 pixels
    (run / "samples" / "epoch-0001.png").write_bytes(bytes(huge))
    (run / "samples" / "epoch-0004.png").symlink_to(run / "samples" / "epoch-0003.png")
    html = write_html_report(run).path.read_text()
    assert html.count("<img ") == 1 and "1 of 3 epochs&#x27; grids embedded; 2 could not be read" in html


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "no such directory"),
    (lambda p: (p.write_text("x"), p)[1], "is not a directory"),
    (lambda p: (p.mkdir(), p)[1], "neither a run directory"),
    (bad_metrics, "metrics.jsonl line 1: field 'step' is missing"),
    (lambda p: bad_metrics(p, '{"epoch": 1, "step": 2}'), "not as ganzoo writes it (KeyError: 'g_loss')"),
])
def test_bad_input_is_one_line_and_exit_2(host, tmp_path, make, message):
    path = make(tmp_path / "thing")
    result = invoke(host, "report", str(path))
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_svg_plot_ticks_gaps_and_escaping():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(1, 3, 6, integer=True) == [1, 2, 3]
    assert segments([1, 2, 3, 4], [1.0, None, 2.0, float("nan")]) == [[(1.0, 1.0)], [(3.0, 2.0)]]
    svg = line_chart(Chart("<b>", [Series("a&b", [1, 2], [0.5, 0.7]), Series("c", [1, 2], [1, 2])]))
    assert svg.startswith("<svg") and "&lt;b&gt;" in svg and "a&amp;b" in svg and svg.count("<polyline") == 2
    assert "no data" in line_chart(Chart("empty", [Series("a", [], [])]))


@pytest.fixture(scope="module")
def rpgan_run(host, tmp_path_factory):
    """A real R3GAN-loss run with two generators: its policy judges each image alone (chance 0.5, not
    1/(N+1) = 1/3) and logs its own scalars, the R1 and R2 penalties (extras r1, r2); 2 epochs of 4 steps."""
    run = tmp_path_factory.mktemp("report") / "rpgan-run"
    trained = invoke(host, "train", "rpgan", "--n-gens", "2", "--limit-data", "128", "--batch-size", "32", "--steps", "8",
                     "--log-every", "4", "--device", "cpu", "--out", str(run), "--quiet")
    assert trained.exit_code == 0, trained.output
    return run


def copied_run(run: Path, target: Path, factor: float) -> None:
    """A copy of run whose extras are scaled by factor (another seed)."""
    shutil.copytree(run, target)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        r["extras"] = {k: v * factor for k, v in r.get("extras", {}).items()}
    (target / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_the_chance_line_is_the_policys_level_not_a_formula(rpgan_run, tmp_path):
    records = [json.loads(line) for line in (rpgan_run / "metrics.jsonl").read_text().splitlines()]
    assert {r["chance"] for r in records} == {0.5}  # what the input policy says, with N = 2
    html = write_html_report(rpgan_run).path.read_text()
    assert re.findall(r">(chance [^<]*)</text>", html) == ["chance 0.500 (rpgan policy)"] and "N+1" not in html
    fake_run(tmp_path / "binary", 3, 2, 0, chance=0.5)  # two generators, a binary policy, no policy named in config.toml
    assert re.findall(r">(chance [^<]*)</text>", write_html_report(tmp_path / "binary").path.read_text()) == ["chance 0.500"]
    assert [r.label for r in chance_lines([("a", 0.5, ""), ("b", 0.5, "")])] == ["chance 0.500"]
    assert [r.label for r in chance_lines([("psg2", 1 / 3, "#1"), ("sngan", 0.5, "#2"), ("rpgan", 0.5, "#3")])] == \
        ["chance 0.333 (psg2)", "chance 0.500 (sngan, rpgan)"]


@pytest.fixture(scope="module")
def extras_compare(rpgan_run, real_run, tmp_path_factory):
    """A compare folder of two configurations: rpgan2 (2 seeds, with extras r1 and r2, chance 0.5) and
    psg2 (1 seed, the tuple policy: chance 1/3, no extras); report.md and report.html written."""
    out = tmp_path_factory.mktemp("report") / "cmp-extras"
    copied_run(rpgan_run, out / "runs" / "rpgan2" / "seed-0", 1.0)
    copied_run(rpgan_run, out / "runs" / "rpgan2" / "seed-1", 3.0)
    shutil.copytree(real_run, out / "runs" / "psg2" / "seed-0")
    settings = {**SETTINGS, "specs": ["rpgan2=rpgan --n-gens 2", "psg2=psg --n-gens 2"], "seeds": 2}
    (out / "compare.json").write_text(json.dumps({"settings": settings, "command": "ganzoo compare ..."}))
    specs = [types.SimpleNamespace(label="rpgan2", strategy="rpgan"), types.SimpleNamespace(label="psg2", strategy="psg")]
    write_report(out, specs, 2, settings)
    write_html_report(out)
    return out


def test_a_policys_extras_are_plotted_on_the_run_page(rpgan_run, real_run, tmp_path):
    html = write_html_report(rpgan_run).path.read_text()
    titles = re.findall(r'<svg class="chart"[^>]*aria-label="([^"]+)"', html)
    assert titles == ["Losses per epoch", "D accuracy per epoch", "The policy&#x27;s own scalars per epoch"]
    chart = html[html.index('aria-label="The policy&#x27;s own scalars per epoch"'):]
    chart = chart[:chart.index("</svg>")]
    assert chart.count("<polyline") == 2 and ">r1</text>" in chart and ">r2</text>" in chart  # a line and a legend entry each
    assert "<th>r1</th><th>r2</th>" in html  # and a column each in the numbers per epoch
    fake_run(tmp_path / "one", 3, 2, 0, extras={"gp": [0.5, 0.01234567, 2e-5]})  # one scalar: no legend, so the title names it
    html = write_html_report(tmp_path / "one").path.read_text()
    assert 'aria-label="gp per epoch (the policy&#x27;s own scalar)"' in html
    assert '<td class="num">0.01235</td>' in html and '<td class="num">2e-05</td>' in html  # significant digits, not 0.000
    without = write_html_report(real_run, real_run.parent / "plain.html").path.read_text()
    assert "own scalar" not in without and "<th>r1</th>" not in without


def test_a_policys_extras_are_plotted_on_the_compare_page(extras_compare, compare_dir, monkeypatch):
    html = (extras_compare / "report.html").read_text()
    assert "<h3>The policies' own scalars</h3>" in html
    assert 'aria-label="r1 per epoch (rpgan2)"' in html and 'aria-label="r2 per epoch (rpgan2)"' in html  # only rpgan2 logs them
    assert "r1, last epoch (the policy&#x27;s own scalar)" in html  # a row of the summary per configuration
    assert "chance 0.333 (psg2)" in html and "chance 0.500 (rpgan2)" in html
    drawn = []
    monkeypatch.setattr(html_compare, "line_chart", lambda chart: drawn.append(chart) or "")
    runs = {"rpgan2": [s for s in (html_compare.summarise(extras_compare / "runs" / "rpgan2" / f"seed-{i}", "lenet") for i in (0, 1)) if s],
            "psg2": [html_compare.summarise(extras_compare / "runs" / "psg2" / "seed-0", "lenet")]}
    html_compare.curves(runs)
    r1 = next(c for c in drawn if c.title == "r1 per epoch (rpgan2)")
    (line,) = r1.series  # psg2 logs no r1: no line for it
    values = [r["extras"]["r1"] for r in runs["rpgan2"]]
    assert line.label == "rpgan2" and line.y == pytest.approx([(a + b) / 2 for a, b in zip(*values)])  # mean over seeds
    assert line.low == pytest.approx([min(v) for v in zip(*values)]) and line.high == pytest.approx([max(v) for v in zip(*values)])
    plain = (compare_dir / "report.html").read_text()  # no run with extras: no such section, row or figure
    assert "own scalar" not in plain and not (compare_dir / "extras.png").exists()
    assert "own scalar" not in (compare_dir / "report.md").read_text()


def test_the_markdown_report_has_the_extras_row(extras_compare):
    markdown = (extras_compare / "report.md").read_text()
    assert re.search(r"^\| r1, last epoch \(the policy's own scalar\) \| [0-9.]+ ± [0-9.]+ .* \| - \|$", markdown, re.M)


def test_the_markdown_report_s_figures_have_the_extras_and_the_policys_chance(extras_compare, monkeypatch):
    pytest.importorskip("matplotlib")
    markdown = (extras_compare / "report.md").read_text()
    assert "![extras.png](extras.png)" in markdown and (extras_compare / "extras.png").exists()
    import matplotlib.pyplot as plt  # the figures' own labels, read before they are closed
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    specs = [types.SimpleNamespace(label="rpgan2", strategy="rpgan"), types.SimpleNamespace(label="psg2", strategy="psg")]
    write_report(extras_compare, specs, 2, {**SETTINGS, "seeds": 2})
    monkeypatch.undo()
    legends = [t.get_text() for f in figures for ax in f.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "chance 0.500" in legends and "chance 0.333" in legends and not any("N+1" in t for t in legends)
    panels = {ax.get_title(): [t.get_text() for t in ax.get_legend().get_texts()] for f in figures for ax in f.axes if "own scalar" in ax.get_title()}
    assert panels == {"r1 per epoch (the policy's own scalar)": ["rpgan2"], "r2 per epoch (the policy's own scalar)": ["rpgan2"]}
    for figure in figures:
        plt.close(figure)


def test_counts_read_right_for_one_and_for_many(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # report.md without its figures: quicker
    assert [plural(1, "seed"), plural(3, "seed"), plural(0, "run"), plural(1.0, "minute"), plural(2.5, "minute")] == \
        ["1 seed", "3 seeds", "0 runs", "1 minute", "2.5 minutes"]
    assert [interval_text(1), interval_text("2"), interval_text("60s")] == ["every epoch", "every 2 epochs", "every 60s of training"]
    assert budget_text({"epochs": 1, "minutes": 1.0}) == "1 epoch or 1 minute of training"
    assert budget_text({"epochs": 5, "minutes": 10.0}) == "5 epochs or 10 minutes of training"
    one, many = tmp_path / "one", tmp_path / "many"
    fake_run(one / "runs" / "psg1" / "seed-0", 1, 1, 0)
    (one / "runs" / "psg1" / "seed-0" / "eval-lenet.json").unlink()  # its protocol is not the whole one report.md prints
    fake_run(many, 3, 3, 0)
    lines = (many / "metrics.jsonl").read_text().splitlines()
    (many / "metrics.jsonl").write_text("\n".join([*lines[:-1], lines[-1].replace('"partial": false', '"partial": true')]) + "\n")
    html = write_html_report(one / "runs" / "psg1" / "seed-0").path.read_text()
    assert "with 1 generator," in html and "1 epoch finished" in html and "1 of 1 epoch&#x27;s grid embedded" in html
    html = write_html_report(many).path.read_text()
    assert "with 3 generators," in html and "2 epochs finished and part of epoch 3" in html and "3 of 3 epochs&#x27; grids embedded" in html
    settings = {**SETTINGS, "specs": ["psg1"], "seeds": 1, "epochs": 1, "limit_data": 1, "eval_n": 2}
    (one / "compare.json").write_text(json.dumps({"settings": settings}))
    html = write_html_report(one).path.read_text()
    assert "1 configuration x 1 seed, 1 epoch, dataset mnist (first 1 image); evaluated every epoch on 2 samples," in html
    markdown = write_report(one, [types.SimpleNamespace(label="psg1", strategy="psg")], 1, settings).read_text()
    assert "- settings: 1 seed (0), 1 epoch, dataset mnist (first 1 image), evaluated every epoch on 2 samples" in markdown
    for text in (html, markdown):
        assert not re.search(r"\b1 (generators|seeds|runs|epochs|configurations|samples|images)\b|\(s\)", text)


@needs_chromium
def test_a_run_with_extras_renders_in_chromium(rpgan_run, tmp_path):
    dom, console, shot = browse(write_html_report(rpgan_run, tmp_path / "rpgan.html").path, tmp_path)
    assert_rendered(dom, console, shot, ["Curves", "Sample grids", "Numbers per epoch", "Configuration", "Evaluation protocol"])
    assert "The policy's own scalars per epoch" in dom and "chance 0.500 (rpgan policy)" in dom


def long_run(run: Path, records: int, seed: int = 0, every: int = 10) -> None:
    """A run folder (fake_run's config, grid and final evaluation) whose metrics.jsonl has `records` epochs,
    every `every`-th evaluated, with a policy scalar r1; written as text, quickly."""
    fake_run(run, 1, 2, seed)
    line = ('{{"epoch": {e}, "step": {s}, "partial": false, "d_loss": {d!r}, "g_loss": [1.0, 1.01], "g_loss_mean": 1.005, '
            '"loss_gap": {gap!r}, "d_accuracy": 0.5, "chance": 0.3333333333333333, "seconds": 1.0, "extras": {{"r1": {r!r}}}{fid}}}\n')
    evaluated = ', "fid": {!r}, "kid": 1.0, "classes": 10, "fid_per_generator": [1.0, 2.0]'
    with open(run / "metrics.jsonl", "w") as f:
        f.writelines(line.format(e=e, s=10 * e, d=0.6 + 0.01 * seed + 0.1 * math.sin(e / 100), gap=0.4 + 0.1 * math.cos(e / 70), r=e / 1000,
                                 fid=evaluated.format(300 / e ** 0.5 + seed) if e % every == 0 else "")
                     for e in range(1, records + 1))


def section_of(html: str, anchor: str) -> str:
    return re.search(rf'<section id="{anchor}">.*?</section>', html, re.DOTALL).group(0)


def polyline_points(html: str) -> list[int]:
    return [len(points.split()) for points in re.findall(r'<polyline points="([^"]*)"', html)]


def test_a_long_run_s_report_is_bounded(tmp_path):
    """100,000 records (a long run logging often, or a hostile file): before, the report took ~440 MB more
    than its imports, 10 s and wrote 26.6 MB; now its curves are thinned to at most MAX_POINTS points, its
    table holds the last MAX_TABLE_ROWS epochs, and the page says so. Memory is measured in a child process
    (its own high-water mark over the one after the imports: torch alone is ~500 MB and would hide it)."""
    run = tmp_path / "long"
    long_run(run, 100_000)
    child = ("import json, resource, sys, time\nfrom pathlib import Path\n"
             "from ganzoo.evaluation.html_report import write_html_report\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\nstarted = time.perf_counter()\n"
             "written = write_html_report(Path(sys.argv[1]))\n"
             "print(json.dumps({'kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, "
             "'seconds': time.perf_counter() - started, 'size': written.size}))")
    done = subprocess.run([sys.executable, "-c", child, str(run)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.splitlines()[-1])
    assert measured["kb"] < 100 * 1024, f"the report took {measured['kb'] / 1024:.0f} MB more than its imports"
    assert measured["size"] < 1_500_000 and measured["seconds"] < 60, measured
    html = (run / "report.html").read_text()
    assert "so the curves draw every 64th of 100,000 epoch records and the last; every 8th of 10,000 evaluations (FID, KID, coverage)" in html
    assert "The last 500 of 100,000 epochs: the first 99,500 are left out here (metrics.jsonl has them all)." in html
    assert "100000 epochs finished (step 1000000)" in html
    curves = section_of(html, "curves")
    assert max(polyline_points(curves)) <= MAX_POINTS + 1 and min(polyline_points(curves)) > MAX_POINTS // 4
    assert ">100k</text>" in curves and "1e+05" not in curves  # the epoch axis
    rows = re.findall(r"<tr><td>(\d+)</td>", section_of(html, "epochs"))
    assert len(rows) == MAX_TABLE_ROWS and rows[0] == "99501" and rows[-1] == "100000"


def test_a_short_run_s_report_has_every_point(tmp_path):
    """Up to MAX_POINTS records a curve draws every one and the table lists every epoch, with no note;
    one more and the curves are thinned to every 2nd."""
    fake_run(tmp_path / "short", 300, 2, 0, extras={"r1": [0.1 * i for i in range(300)]})
    html = write_html_report(tmp_path / "short").path.read_text()
    assert polyline_points(section_of(html, "curves")) == [300] * 11  # D, mean G, G1, G2; D accuracy; r1; FID, G1, G2; KID; classes
    assert len(re.findall(r"<tr><td>\d+</td>", section_of(html, "epochs"))) == 300
    assert "A long run" not in html and "left out" not in html
    long_run(tmp_path / "full", MAX_POINTS)
    long_run(tmp_path / "over", MAX_POINTS + 1)
    full, over = (write_html_report(tmp_path / name).path.read_text() for name in ("full", "over"))
    assert "A long run" not in full and polyline_points(section_of(full, "curves"))[0] == MAX_POINTS
    assert f"every 2nd of {MAX_POINTS + 1:,} epoch records (" in over and polyline_points(section_of(over, "curves"))[0] == MAX_POINTS // 2 + 1
    assert f"The last {MAX_TABLE_ROWS} of {MAX_POINTS:,} epochs: the first {MAX_POINTS - MAX_TABLE_ROWS:,} are left out" in full


def test_thinned_keeps_every_stride_th_item_and_the_last():
    for count in (0, 1, 5, 8, 9, 17, 1000):
        thinned = Thinned(cap=8)
        for i in range(count):
            thinned.add(i)
        items = thinned.items()
        assert len(items) <= 9 and items == ([] if count == 0 else sorted({*range(0, count, thinned.stride), count - 1}))
        assert (thinned.stride == 1) == (count <= 8)
    assert thinned.stride == 128 and thinned.text("records") == "every 128th of 1,000 records and the last"


def same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN equal to NaN


def full_summary(run_dir: Path, features: str) -> dict:
    """What run_metrics.run_summary must give, computed the plain way: every record in memory, the
    convergence points by ganzoo.evaluation.convergence (the reference the bounded pass is held to)."""
    records = rundir.epoch_records(run_dir)
    evaluated = [r for r in records if "fid" in r]
    train = rundir.read_meta(run_dir, "train")
    g_mean = [sum(r["g_loss"]) / len(r["g_loss"]) for r in records]
    plateau = convergence.fid_plateau([r["fid"] for r in evaluated])
    band = convergence.loss_band(g_mean, [r["d_loss"] for r in records])
    start = records.index(evaluated[plateau]) if plateau is not None else len(records) - max(1, math.ceil(len(records) / 4))
    after = records[start:]
    out = {
        "strategy": train.get("strategy"), "n_gens": train.get("n_gens"), "policy": train.get("policy"), "loss": d_loss(train),
        "epochs": [r["epoch"] for r in records], "d_loss": [r["d_loss"] for r in records], "g_loss": [r["g_loss"] for r in records],
        "d_accuracy": [r["d_accuracy"] for r in records], "chance": records[-1]["chance"],
        "eval_epochs": [r["epoch"] for r in evaluated], "fid_curve": [r["fid"] for r in evaluated],
        "kid_curve": [r["kid"] for r in evaluated], "coverage_curve": [r.get("modes", r.get("classes")) for r in evaluated],
        "d_accuracy_final": records[-1]["d_accuracy"],
        "wall_minutes": sum(r.get("seconds", 0.0) + r.get("eval_seconds", 0.0) for r in records) / 60,
        "best_fid": min((r["fid"] for r in evaluated), default=None),
        "fid_plateau_epoch": evaluated[plateau]["epoch"] if plateau is not None else None,
        "fid_plateau_minutes": evaluated[plateau].get("train_seconds", math.nan) / 60 if plateau is not None else None,
        "fid_plateau_fid": evaluated[plateau]["fid"] if plateau is not None else None,
        "loss_band_epoch": records[band]["epoch"] if band is not None else None,
        "unconfirmed_from": {"fid": evaluated[-convergence.CONFIRM]["epoch"] if len(evaluated) >= convergence.CONFIRM else None,
                             "loss": records[-convergence.CONFIRM]["epoch"] if len(records) >= convergence.CONFIRM else None},
        "after_from": after[0]["epoch"], "after_reason": "FID plateau" if plateau is not None else "last quarter (no FID plateau)",
        "loss_gap": sum(r["loss_gap"] for r in after) / len(after), "d_accuracy_after": sum(r["d_accuracy"] for r in after) / len(after),
    }
    extras = [r["extras"] if isinstance(r.get("extras"), dict) else {} for r in records]
    if names := sorted({k for e in extras for k in e}):
        out["extras"] = {k: [e.get(k) for e in extras] for k in names}
        out.update({f"extra_{k}_last": column[-1] for k, column in out["extras"].items()})
    final_path = run_dir / f"eval-{features}.json"
    if final_path.exists():
        final = json.loads(final_path.read_text())
        out.update({f"final_{k}": final[k] for k in ("fid", "kid", "precision", "recall", "density", "coverage", "classes",
                                                   "class_kl", "inception_score", "modes", "modes_kl") if k in final})
        out["protocol"], out["final_generators"] = final["protocol"], final.get("generators", [])
    samples = sorted((run_dir / "samples").glob("epoch-*.png")) if (run_dir / "samples").is_dir() else []
    out["sample"] = str(samples[-1]) if samples else None
    return out


def test_the_report_s_summary_is_run_summary(real_run, rpgan_run, tmp_path):
    """run_metrics.run_summary (one pass, bounded) gives the numbers of a plain pass over every record:
    all of them for a normal run; for a long one, the same except that the curves are thinned."""
    fake_run(tmp_path / "extras", 4, 3, 1, extras={"b": [1.0, 2.0, 3.0, 4.0], "a": [0.5, 0.5, 0.5, 0.5]})
    fake_run(tmp_path / "partial", 5, 2, 0)
    lines = (tmp_path / "partial" / "metrics.jsonl").read_text().splitlines()
    partial = [line.replace('"partial": false', '"partial": true') for line in lines]
    (tmp_path / "partial" / "metrics.jsonl").write_text("\n".join([lines[0], partial[1], lines[2], partial[3], partial[4]]) + "\n")
    for run in (real_run, rpgan_run, tmp_path / "extras", tmp_path / "partial"):
        assert same(summarise(run, "lenet"), full_summary(run, "lenet")), run
    long_run(tmp_path / "long", 2 * MAX_POINTS + 501)
    mine, theirs = summarise(tmp_path / "long", "lenet"), full_summary(tmp_path / "long", "lenet")
    curves = {"epochs": 4, "d_loss": 4, "g_loss": 4, "d_accuracy": 4, "eval_epochs": 1, "fid_curve": 1, "kid_curve": 1, "coverage_curve": 1}
    assert mine.pop("thinned") == ["every 4th of 4,501 epoch records"] and mine.keys() == theirs.keys()  # the last is the 4,501st
    def thin(values: list, stride: int) -> list:
        return values[::stride] + ([values[-1]] if (len(values) - 1) % stride else [])

    for key, stride in curves.items():
        assert mine.pop(key) == thin(theirs[key], stride), key
    assert mine.pop("extras")["r1"] == thin(theirs.pop("extras")["r1"], 4)
    assert same(mine, {k: v for k, v in theirs.items() if k not in curves})
    assert mine["loss_band_epoch"] is not None and mine["fid_plateau_epoch"] is not None  # both found by the O(n) versions


def test_the_convergence_points_of_a_long_run_are_convergence_s():
    """run_metrics.fid_plateau and loss_band, O(n) beyond MAX_POINTS, find what ganzoo.evaluation.convergence finds."""
    rng = random.Random(0)
    n = MAX_POINTS + 300
    for settle in (50, 1200, n - 3, n - 2, None):
        noisy = [1.0 + rng.uniform(-0.5, 0.5) for _ in range(n)]
        calm = [1.0 + rng.uniform(-0.03, 0.03) for _ in range(n)]
        g = noisy[:settle] + calm[settle:] if settle is not None else noisy
        d = [2 * v for v in g]
        assert run_metrics.loss_band(g, d) == convergence.loss_band(g, d)
        fids = [300 / (1 + i) ** 0.5 for i in range(settle or n)] + [rng.uniform(5, 5.2) for _ in range(n - (settle or n))]
        assert run_metrics.fid_plateau(fids) == convergence.fid_plateau(fids)
    assert run_metrics.loss_band(calm, calm) == 0 and run_metrics.fid_plateau([10.0 * 0.9 ** i for i in range(n)]) is None


def test_a_compare_page_of_long_runs_averages_the_epochs_all_seeds_draw(tmp_path, monkeypatch):
    """Seeds thinned with different strides (5,000 and 3,000 records: every 4th and every 2nd) are averaged at
    the epochs both draw, and the page says how each was thinned."""
    out = tmp_path / "cmp"
    long_run(out / "runs" / "psg2" / "seed-0", 5000, seed=0)
    long_run(out / "runs" / "psg2" / "seed-1", 3000, seed=1)
    (out / "compare.json").write_text(json.dumps({"settings": {**SETTINGS, "specs": ["psg2"], "epochs": 5000}}))
    html = write_html_report(out).path.read_text()
    assert ("Long runs are drawn with at most 2,000 points a curve (psg2: every 4th of 5,000 epoch records and the last. "
            "psg2: every 2nd of 3,000 epoch records and the last); seeds are averaged at the epochs they all draw.") in html
    assert len(html) < 1_000_000
    drawn = []
    monkeypatch.setattr(html_compare, "line_chart", lambda chart: drawn.append(chart) or "")
    html_compare.curves({"psg2": [summarise(out / "runs" / "psg2" / f"seed-{i}", "lenet") for i in (0, 1)]})
    d = next(c for c in drawn if c.title == "psg2: losses").series[0]
    assert list(d.x) == list(range(1, 3000, 4))
    assert d.y == pytest.approx([0.605 + 0.1 * math.sin(e / 100) for e in d.x])
