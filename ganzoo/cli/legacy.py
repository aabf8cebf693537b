"""Plugin API 0.2's ``ganzoo.train_command.strategy_command``, kept so that 0.2 plugins load.

In 0.3 the core makes ``ganzoo train <name>`` for every registered strategy. A 0.2 plugin that still
registers ``strategy_command(STRATEGY, OPTIONS)`` gets a marker command: the host keeps its
TrainOptions as the strategy's own options, ignores its click options (the core and the parts
declare them now) and warns once, pointing at docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ganzoo.core.parts import Strategy


def strategy_command(strategy: Strategy, options: Sequence[Any] = ()) -> click.Command:
    command = click.Command(strategy.name, help=strategy.summary)
    command.ganzoo_legacy_options = tuple(options)
    return command
