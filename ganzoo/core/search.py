"""Search spaces of ``ganzoo tune``: an option declares the range it is worth searching
(``TrainOption.search``, the core's in ``CORE_SEARCH``), and ``--search lr=1e-4..3e-3:log`` adds or
overrides one from the command line.

A space is a range ``LOW..HIGH`` (whole numbers when both ends are; ``:log`` for a log scale) or a
list of choices ``A,B,C``. Its text form is what ``--help``, ``ganzoo list --json`` and ``--search``
show and take.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ganzoo.core.errors import GanzooError


@dataclass(frozen=True)
class Search:
    """low..high (ints when both are ints; log: a log scale), or choices."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.choices:
            if self.low is not None or self.high is not None:
                raise ValueError("a search space is a range or choices, not both")
            return
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"a search range needs low < high, got {self.low}..{self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range must be above 0, got {self.low}..{self.high}")

    @property
    def integer(self) -> bool:
        return not self.choices and isinstance(self.low, int) and isinstance(self.high, int)

    def text(self) -> str:
        if self.choices:
            return ",".join(_word(c) for c in self.choices)
        return f"{_word(self.low)}..{_word(self.high)}{':log' if self.log else ''}"

    def suggest(self, trial: Any, name: str) -> Any:
        """Optuna's suggestion for this space."""
        if self.choices:
            return trial.suggest_categorical(name, list(self.choices))
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)  # exact: the text is what tune.json keeps
    return str(value)


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text) from None
        return value


def _choice(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        return _number(text)
    except ValueError:
        return text


def parse_search(text: str, name: str = "") -> Search:
    """``LOW..HIGH``, ``LOW..HIGH:log`` or ``A,B,C`` (one line naming the problem otherwise)."""
    where = f"--search {name}={text}" if name else text
    match = re.fullmatch(r"\s*([^.:,\s]+|[-+\d.eE]+?)\.\.([-+\d.eE]+)(:log)?\s*", text)
    try:
        if match:
            return Search(_number(match.group(1)), _number(match.group(2)), log=bool(match.group(3)))
        choices = tuple(_choice(c.strip()) for c in text.split(",") if c.strip())
        if not choices or ".." in text or ":" in text:
            raise ValueError("not LOW..HIGH[:log] or A,B,C")
        unique = tuple({(type(c), c): c for c in choices}.values())  # 1 and true stay two choices
        return Search(choices=unique)
    except ValueError as exc:
        raise GanzooError(f"{where}: a search space is LOW..HIGH, LOW..HIGH:log or A,B,C ({exc})") from None


# The core options worth searching, by TrainConfig field. lr_d 0 would mean "as lr": its range starts above.
CORE_SEARCH = {
    "lr": Search(5e-5, 2e-3, log=True),
    "lr_d": Search(5e-5, 2e-3, log=True),
    "beta1": Search(0.0, 0.9),
    "n_dis": Search(1, 3),
}
