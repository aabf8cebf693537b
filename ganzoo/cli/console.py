"""The progress bar (an observer plugin registered by the CLI for one run) and the end-of-run summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text


class SpeedColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.2f} it/s" if task.speed else "-- it/s")


def metrics_text(latest: dict[str, Any]) -> str:
    if not latest:
        return ""
    extras = "".join(f"  {name} {value:.3g}" for name, value in latest.get("extras", {}).items())
    return (
        f"D {latest['d_loss']:.3f}  G {latest['g_loss_mean']:.3f}  "
        f"acc {latest['d_accuracy']:.2f} (chance {latest['chance']:.2f}){extras}"
    )


def eval_text(record: dict[str, Any]) -> str:
    """The evaluation's headline numbers, when this epoch was evaluated (--eval-every)."""
    parts = [f"FID {record['fid']:.2f}"] if "fid" in record else []
    if "classes" in record:
        parts.append(f"classes {record['classes']}")
    if "modes" in record:
        parts.append(f"modes {record['modes']}")
    return "  " + "  ".join(parts) if parts else ""


class ProgressObserver:
    """Shows a rich progress bar with it/s, ETA and the live metrics the trainer read last: an
    observer the command line hands to the run it starts (its methods are the run's hooks)."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            SpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
        )
        self.task = None

    def ganzoo_on_train_start(self, trainer):
        self.progress.start()
        self.start = (trainer.step, trainer.state.clock.seconds)
        self.task = self.progress.add_task(
            trainer.config.strategy, total=self.expected_steps(trainer), completed=trainer.step, metrics=metrics_text(trainer.latest)
        )

    def ganzoo_on_step_end(self, trainer, step):
        fields = {}
        if step % trainer.config.log_every == 0:
            fields = {"metrics": metrics_text(trainer.latest), "total": self.expected_steps(trainer)}
        self.progress.update(self.task, completed=step, **fields)

    def expected_steps(self, trainer) -> int | None:
        """The run's last step: its step budget, or under --minutes the step the clock should reach
        at the rate so far (None, an indeterminate bar, until a rate is known)."""
        minutes = trainer.config.minutes
        if not minutes:
            return trainer.total_steps
        step0, seconds0 = self.start
        steps, seconds = trainer.step - step0, trainer.state.clock.seconds - seconds0
        if steps <= 0 or seconds <= 0:
            return None if trainer.config.epochs == 0 and not trainer.config.steps else trainer.total_steps
        left = max(0.0, minutes * 60 - trainer.state.clock.seconds)
        return min(trainer.total_steps, trainer.step + round(left * steps / seconds))

    def ganzoo_on_epoch_end(self, trainer, epoch, metrics):
        self.progress.console.print(
            f"epoch {epoch}: {metrics_text(metrics)}  gap {metrics['loss_gap']:.3f}  "
            f"{metrics['images_per_s']:.0f} img/s{eval_text(metrics)}"
        )

    def close(self) -> None:
        self.progress.stop()


def summary_table(record: dict[str, Any], trainer) -> Table:
    table = Table(title=f"{trainer.config.strategy}: {record.get('run_dir', '')}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("epoch / step", f"{record.get('epoch', 0)} / {record.get('step', trainer.step)}")
    for key in ("d_loss", "g_loss_mean", "loss_gap", "d_accuracy", "chance", "images_per_s", "fid", "kid", "precision",
                "recall", "density", "coverage", "class_kl", "inception_score", "modes_kl"):
        if key in record:
            table.add_row(key, f"{record[key]:.4f}")
    for key in ("classes", "modes"):
        if key in record:
            table.add_row(key, str(record[key]))
    if "g_loss" in record:
        table.add_row("g_loss per generator", ", ".join(f"{v:.4f}" for v in record["g_loss"]))
    for name, value in record.get("extras", {}).items():
        table.add_row(name, f"{value:.4g}")
    table.add_row("run directory", record.get("run_dir", ""))
    return table
