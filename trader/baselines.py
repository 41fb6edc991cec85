"""The baselines every report compares the agent with: name -> positions on the agent's own bars.

A baseline is one function of a `BaselineBars` (the bars the agent traded, its feature values there and the
action mode) returning the position held over each of those bars; `trader.evaluate` replays every one
through the same accounting and costs as the agent. To add a baseline, write its function and add it to
`BASELINES`. A baseline marked `seeded` is drawn `train.random_baseline_seeds` times and its metrics are
averaged over the seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from envs.trading_env import ACTION_POSITIONS


@dataclass(frozen=True)
class BaselineBars:
    """What a baseline may look at: the agent's n decision bars (no later bar) of one symbol."""

    n: int
    best_feature: np.ndarray
    """The best selected signal's values at those bars."""
    best_direction: float
    """+1 when the best signal's training rank IC is >= 0, else -1."""
    action_mode: str
    seed: int = 0


def buy_and_hold(bars: BaselineBars) -> np.ndarray:
    return np.ones(bars.n)


def flat(bars: BaselineBars) -> np.ndarray:
    return np.zeros(bars.n)


def best_signal(bars: BaselineBars) -> np.ndarray:
    """Trade the best signal's sign, in the direction its training-split IC says it predicts."""
    positions = np.sign(bars.best_feature.astype(np.float64)) * bars.best_direction
    return np.clip(positions, 0.0, 1.0) if bars.action_mode == "long_only" else positions


def random_policy(bars: BaselineBars) -> np.ndarray:
    """A uniformly random action each bar, mapped to positions as the environment maps actions."""
    rng = np.random.default_rng(bars.seed)
    if bars.action_mode == "continuous":
        return rng.uniform(-1.0, 1.0, size=bars.n)
    return rng.choice(np.array(ACTION_POSITIONS[bars.action_mode]), size=bars.n)


class Baseline(NamedTuple):
    positions: Callable[[BaselineBars], np.ndarray]
    seeded: bool = False


BASELINES: dict[str, Baseline] = {
    "buy_and_hold": Baseline(buy_and_hold),
    "flat": Baseline(flat),
    "best_signal": Baseline(best_signal),
    "random": Baseline(random_policy, seeded=True),
}
"""Every baseline of the report, in the order it is shown."""


def best_signal_column(manifest: Any) -> tuple[int, str, float]:
    """(column, name, direction) of the kept feature with the best training score (selection order)."""
    feature = manifest["features"][0]
    ic = feature.get("scores", {}).get("rank_ic") or 0.0
    return 0, feature["name"], 1.0 if ic >= 0 else -1.0
