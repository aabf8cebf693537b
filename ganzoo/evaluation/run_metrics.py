"""What the reports keep of a run's metrics.jsonl, read in one pass and bounded however long the run
(``RunMetrics``, ``read_run_metrics``), and what they say of it (``run_summary``: the curves, the
convergence points, the numbers the claims test), for ganzoo compare's report and the HTML pages."""

from __future__ import annotations

import math
from array import array
from bisect import insort
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganzoo.core.errors import GanzooError
from ganzoo.evaluation import convergence
from ganzoo.evaluation.claims import d_loss as loss_of
from ganzoo.runs import rundir
from ganzoo.runs.schemas import read_eval

MAX_POINTS = 2000  # points per curve at most: a longer run draws every k-th record (k a power of two) and the last
MAX_TABLE_ROWS = 500  # rows of a run's numbers per epoch at most: its last epochs
MAX_EXTRAS = 16  # scalars a policy logs itself (extras) shown at most: the first ones by name
CLASS_KEYS = ("class_consistency", "intra_fid_mean", "intra_fid_worst")  # a conditional run's class scores (per_class.py)
ROW_KEYS = ("epoch", "step", "partial", "d_loss", "g_loss", "g_loss_mean", "d_accuracy", "chance", "fid", "kid", "modes", "classes",
            "seconds", *CLASS_KEYS)  # what the curves, the table and the facts show of an epoch's record
EVAL_KEYS = ("epoch", "fid", "kid", "modes", "classes", "fid_per_generator", *CLASS_KEYS)  # of an evaluated epoch's record
GENERATOR_KEYS = ("epoch", "fid_per_generator", "class_histogram_per_generator", "classes_per_generator", "modes_per_generator",
                  "class_consistency_per_generator", "intra_fid_mean_per_generator")
FINAL_CLASS_KEYS = (*CLASS_KEYS, "intra_precision_mean", "intra_recall_mean")  # of a conditional run's eval-*.json

class Thinned:
    """Items added one at a time, of which a bounded number is kept: every stride-th (the 1st, the
    (stride+1)-th...) and the last, at most cap + 1 however many are added. The stride starts at 1 and
    doubles whenever more than cap would be kept, so a run of up to cap records keeps them all."""

    def __init__(self, cap: int = MAX_POINTS) -> None:
        self.cap, self.stride, self.count = cap, 1, 0
        self._kept: list[Any] = []
        self._last: Any = None

    def add(self, item: Any) -> None:
        if self.count % self.stride == 0:
            self._kept.append(item)
            if len(self._kept) > self.cap:
                self.stride *= 2
                del self._kept[1::2]
        self._last = item
        self.count += 1

    def items(self) -> list[Any]:
        return [*self._kept, self._last] if self.count and (self.count - 1) % self.stride else list(self._kept)

    def text(self, what: str) -> str:
        """How the items were thinned, in words: "every 64th of 100,000 epoch records and the last"."""
        return f"every {ordinal(self.stride)} of {self.count:,} {what}" + (" and the last" if (self.count - 1) % self.stride else "")


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def number(value: Any) -> float:
    """A score as a float for the compact columns; NaN for a null (a NaN or an infinity logged as null)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


class RunMetrics:
    """What the reports keep of a run's metrics.jsonl, read in one pass, record by record
    (``read_run_metrics``), with memory and page size bounded however many records it holds:

    - of the epochs' records (``rundir.epoch_records``), at most MAX_POINTS + 1 for the curves (``rows``,
      thinned: ``Thinned``) and the last MAX_TABLE_ROWS for the table, each cut to ROW_KEYS;
    - of the evaluated ones, as many for the FID, KID and coverage curves (``evaluated``), and of every
      evaluated record, inside epochs included, (train_seconds, fid) for FID over training time (``timed``);
    - for the numbers that need every epoch (convergence, means, sums: ``run_summary``), compact columns
      of floats, 8 bytes a number, a handful of numbers a record;
    - the last epoch record, the last with scores per generator and the last evaluation protocol;
    - the MAX_EXTRAS first names of the policy's own scalars (extras), and whether there were more.
    """

    def __init__(self) -> None:
        self.records = 0  # every record read, those inside epochs included
        self.rows, self.evaluated, self.timed = Thinned(), Thinned(), Thinned()
        self.table: deque[dict[str, Any]] = deque(maxlen=MAX_TABLE_ROWS)
        self.timed_partial = False
        self.last: dict[str, Any] | None = None
        self.generators: dict[str, Any] | None = None
        self.protocol: dict[str, Any] | None = None
        self.fid_lengths: set[int] = set()  # lengths of fid_per_generator over the evaluated records
        self.modes = False  # an evaluated record counts modes (not classes)
        self.class_scores = False  # an evaluated record has a conditional run's class scores (CLASS_KEYS)
        self.extras: list[str] = []  # sorted
        self.more_extras = False
        self.missing: set[str] = set()  # fields run_summary needs that some record lacks
        self.wall: Any = 0
        self.best_fid: Any = None
        self.epoch, self.ev_index, self.ev_epoch = array("q"), array("q"), array("q")
        self.g_mean, self.d_loss, self.loss_gap, self.d_accuracy, self.ev_fid, self.ev_train = (array("d") for _ in range(6))
        self._pending: dict[str, Any] | None = None

    def add(self, record: dict[str, Any]) -> None:
        """One record of metrics.jsonl, in the file's order."""
        self.records += 1
        if "fid" in record and "train_seconds" in record:
            self.timed.add((record["train_seconds"], record["fid"]))
            self.timed_partial = self.timed_partial or bool(record.get("partial"))
        self._pending = record if record.get("partial") else None  # a run's last record counts even inside an epoch
        if not record.get("partial"):
            self._epoch(record)

    def finish(self) -> RunMetrics:
        if self._pending is not None:
            self._epoch(self._pending)
            self._pending = None
        return self

    def _epoch(self, r: dict[str, Any]) -> None:
        index = len(self.epoch)
        self.missing.update(key for key in ("g_loss", "d_loss", "d_accuracy") if key not in r)
        g = r.get("g_loss", math.nan)
        self.epoch.append(r["epoch"])
        self.g_mean.append(number(sum(g) / len(g) if isinstance(g, list) else g))
        self.d_loss.append(number(r.get("d_loss")))
        self.loss_gap.append(number(r.get("loss_gap")))
        self.d_accuracy.append(number(r.get("d_accuracy")))
        self.wall = self.wall + (r.get("seconds", 0.0) + r.get("eval_seconds", 0.0))
        row = {key: r[key] for key in ROW_KEYS if key in r}
        if isinstance(r.get("extras"), dict):
            row["extras"] = self._extras(r["extras"])
        self.rows.add(row)
        self.table.append(row)
        self.last = row
        if "fid" in r:
            self.missing.update(key for key in ("kid",) if key not in r)
            self.best_fid = r["fid"] if not self.evaluated.count or r["fid"] < self.best_fid else self.best_fid
            self.ev_index.append(index)
            self.ev_epoch.append(r["epoch"])
            self.ev_fid.append(number(r["fid"]))
            self.ev_train.append(number(r.get("train_seconds")))
            self.modes = self.modes or "modes" in r
            self.class_scores = self.class_scores or any(key in r for key in CLASS_KEYS)
            self.fid_lengths.add(len(r.get("fid_per_generator") or []))
            self.evaluated.add({key: r[key] for key in EVAL_KEYS if key in r})
        if isinstance(r.get("fid_per_generator"), list) and len(r["fid_per_generator"]) > 1:
            self.generators = {key: r[key] for key in GENERATOR_KEYS if key in r}
        if isinstance(r.get("eval_protocol"), dict):
            self.protocol = r["eval_protocol"]

    def _extras(self, extras: dict[str, Any]) -> dict[str, Any]:
        """The record's extras among the MAX_EXTRAS first names seen so far (a name that enters later is
        new: the records before did not have it)."""
        for name in extras:
            if name in self.extras:
                continue
            if len(self.extras) == MAX_EXTRAS:
                self.more_extras = True
                if name > self.extras[-1]:
                    continue
                self.extras.pop()
            insort(self.extras, name)
        return {k: v for k, v in extras.items() if k in self.extras}

    def thinned(self) -> list[str]:
        """What was thinned, in words, for a note on the page ([] for a run of up to MAX_POINTS records)."""
        parts = [(self.rows, "epoch records"), (self.evaluated, "evaluations (FID, KID, coverage)"),
                 (self.timed, "evaluations (FID over training time)")]
        return [t.text(what) for t, what in parts if t.stride > 1]


def read_run_metrics(run_dir: Path) -> RunMetrics:
    """What the reports keep of run_dir/metrics.jsonl (RunMetrics), read line by line."""
    metrics = RunMetrics()
    if Path(run_dir).exists():
        try:
            for record in rundir.iter_metrics(run_dir):
                metrics.add(record)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise not_ganzoos(run_dir, exc) from None
    return metrics.finish()


def not_ganzoos(run_dir: Path, exc: Exception) -> GanzooError:
    return GanzooError(f"{run_dir}: metrics.jsonl or an eval-*.json is not as ganzoo writes it ({type(exc).__name__}: {exc})")


def run_summary(run_dir: Path, features: str, m: RunMetrics | None = None) -> dict[str, Any] | None:
    """What the reports (markdown, HTML, summary.json) say of one run, with bounded work: the curves
    are ``m.rows`` and ``m.evaluated`` (every record of a run of up to MAX_POINTS), the other numbers
    come from every epoch's record (the claims read the epochs from the FID plateau on, or the last
    quarter of a run that has none), the convergence points in O(n). tests/test_report.py checks it
    against a plain pass over every record."""
    m = m if m is not None else read_run_metrics(run_dir)
    if m.last is None:
        return None
    for key in ("g_loss", "d_loss", "d_accuracy", "chance", "kid"):  # run_summary's KeyError, in its order
        if key in m.missing or (key == "chance" and key not in m.last):
            raise KeyError(key)
    rows, evaluated, n = m.rows.items(), m.evaluated.items(), len(m.epoch)
    train = rundir.read_meta(run_dir, "train")
    plateau = fid_plateau(m.ev_fid)
    band = loss_band(m.g_mean, m.d_loss)
    start = m.ev_index[plateau] if plateau is not None else n - max(1, math.ceil(n / 4))
    out: dict[str, Any] = {
        "strategy": train.get("strategy"),
        "n_gens": train.get("n_gens"),
        "policy": train.get("policy"),
        "loss": loss_of(train),
        "epochs": [r["epoch"] for r in rows],
        "d_loss": [r["d_loss"] for r in rows],
        "g_loss": [r["g_loss"] for r in rows],
        "d_accuracy": [r["d_accuracy"] for r in rows],
        "chance": m.last["chance"],
        "eval_epochs": [r["epoch"] for r in evaluated],
        "fid_curve": [r["fid"] for r in evaluated],
        "kid_curve": [r["kid"] for r in evaluated],
        "coverage_curve": [r.get("modes", r.get("classes")) for r in evaluated],
        "d_accuracy_final": m.last["d_accuracy"],
        "wall_minutes": m.wall / 60,
        "best_fid": m.best_fid,
        "fid_plateau_epoch": m.ev_epoch[plateau] if plateau is not None else None,
        "fid_plateau_minutes": m.ev_train[plateau] / 60 if plateau is not None else None,
        "fid_plateau_fid": m.ev_fid[plateau] if plateau is not None else None,
        "loss_band_epoch": m.epoch[band] if band is not None else None,
        "unconfirmed_from": {"fid": m.ev_epoch[-convergence.CONFIRM] if len(m.ev_epoch) >= convergence.CONFIRM else None,
                             "loss": m.epoch[-convergence.CONFIRM] if n >= convergence.CONFIRM else None},
        "after_from": m.epoch[start],
        "after_reason": "FID plateau" if plateau is not None else "last quarter (no FID plateau)",
        "loss_gap": sum(m.loss_gap[start:]) / (n - start),
        "d_accuracy_after": sum(m.d_accuracy[start:]) / (n - start),
    }
    if m.class_scores:  # a conditional run: its class consistency and intra-class FID per evaluation
        out.update({f"{key}_curve": [r.get(key) for r in evaluated] for key in CLASS_KEYS})
    if m.extras:
        extras = [r.get("extras", {}) for r in rows]
        out["extras"] = {k: [v if isinstance(v := e.get(k), int | float) and not isinstance(v, bool) else None for e in extras]
                         for k in m.extras}
        out.update({f"extra_{k}_last": column[-1] for k, column in out["extras"].items()})
    final_path = run_dir / f"eval-{features}.json"
    if final_path.exists():
        final = read_eval(final_path)
        for key in ("fid", "kid", "precision", "recall", "density", "coverage", "classes", "class_kl", "inception_score", "modes", "modes_kl",
                    *FINAL_CLASS_KEYS):
            if key in final:
                out[f"final_{key}"] = final[key]
        out["protocol"] = final["protocol"]
        out["final_generators"] = final.get("generators", [])
    last = max((run_dir / "samples").glob("epoch-*.png"), default=None) if (run_dir / "samples").is_dir() else None
    out["sample"] = str(last) if last else None
    if thinned := m.thinned():
        out["thinned"] = thinned
    return out


def fid_plateau(fids: Sequence[float]) -> int | None:
    """convergence.fid_plateau in O(n) for a long run (the minimum of each suffix computed once, the
    same comparisons); convergence's own for up to MAX_POINTS evaluations."""
    if len(fids) <= MAX_POINTS:
        return convergence.fid_plateau(list(fids))
    lowest = array("d", fids)  # lowest[i] = min(fids[i:])
    for i in range(len(fids) - 2, -1, -1):
        lowest[i] = min(fids[i], lowest[i + 1])
    best = math.inf
    for i in range(len(fids) - convergence.CONFIRM):
        best = min(best, fids[i])
        if lowest[i + 1] >= best * (1 - convergence.FID_MARGIN):
            return i
    return None


def loss_band(g_losses: Sequence[float], d_losses: Sequence[float]) -> int | None:
    """convergence.loss_band in O(n) for a long run (max, min and the mean magnitude of each suffix
    accumulated from the end: equal up to rounding in the mean); convergence's own (O(n^2) at worst)
    for up to MAX_POINTS epochs."""
    n = len(g_losses)
    if n <= MAX_POINTS:
        return convergence.loss_band(list(g_losses), list(d_losses))
    found = None
    g_hi = d_hi = -math.inf
    g_lo = d_lo = math.inf
    g_sum = d_sum = 0.0
    for i in range(n - 1, -1, -1):
        g, d = g_losses[i], d_losses[i]
        g_hi, g_lo, g_sum = max(g_hi, g), min(g_lo, g), g_sum + abs(g)
        d_hi, d_lo, d_sum = max(d_hi, d), min(d_lo, d), d_sum + abs(d)
        if (i < n - convergence.CONFIRM and g_hi - g_lo <= convergence.LOSS_BAND * g_sum / (n - i)
                and d_hi - d_lo <= convergence.LOSS_BAND * d_sum / (n - i)):
            found = i
    return found
