"""Performance metrics of a backtest: pure functions of per-bar returns, positions and costs."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

METRIC_NAMES = ("total_return", "annualised_return", "sharpe", "sortino", "max_drawdown", "trades", "turnover",
                "hit_rate", "costs_paid", "bars")


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction of that peak (0.25 = -25%)."""
    if len(equity) == 0:
        return 0.0
    peaks = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peaks))


def drawdown_series(equity: np.ndarray) -> np.ndarray:
    """Drawdown at each bar as a negative fraction (for plotting)."""
    return equity / np.maximum.accumulate(equity) - 1.0


def performance(returns: np.ndarray, positions: np.ndarray, costs: np.ndarray, periods_per_year: float
                ) -> dict[str, float]:
    """Metrics of one backtest.

    returns: per-bar simple returns of equity, net of costs; positions: the position held over each of
    those bars (a change of position from the previous bar is a trade, the first one counted from flat);
    costs: per-bar cost paid, in units of starting equity (the environment's `total_cost` is their sum).
    Annualisation uses periods_per_year, measured from the bar times.
    """
    returns = np.asarray(returns, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    n = len(returns)
    equity = np.cumprod(1.0 + returns)
    total = float(equity[-1] - 1.0) if n else 0.0
    years = n / periods_per_year
    annualised = float((1.0 + total) ** (1.0 / years) - 1.0) if n and total > -1.0 else -1.0 if n else 0.0
    changes = np.abs(np.diff(positions, prepend=0.0))
    exposed = positions != 0
    return {
        "total_return": total,
        "annualised_return": annualised,
        "sharpe": _ratio(returns.mean() if n else 0.0, returns.std() if n else 0.0, periods_per_year),
        "sortino": _ratio(returns.mean() if n else 0.0, _downside_deviation(returns), periods_per_year),
        "max_drawdown": max_drawdown(np.concatenate([[1.0], equity])),
        "trades": int(np.count_nonzero(changes)),
        "turnover": float(changes.sum() / n) if n else 0.0,
        "hit_rate": float(np.mean(returns[exposed] > 0)) if exposed.any() else 0.0,
        "costs_paid": float(np.sum(costs)),
        "bars": n,
    }


def _ratio(mean: float, deviation: float, periods_per_year: float) -> float:
    """Annualised mean / deviation; zero deviation (a flat book) is 0, not infinity."""
    if deviation <= 1e-15:
        return 0.0
    return float(mean / deviation * math.sqrt(periods_per_year))


def _downside_deviation(returns: np.ndarray) -> float:
    if len(returns) == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))


def mean_metrics(runs: list[Mapping[str, float]]) -> dict[str, float]:
    """Average of several runs' metrics (random-policy seeds, symbols)."""
    return {name: float(np.mean([r[name] for r in runs])) for name in runs[0]}
