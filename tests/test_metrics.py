"""Performance metrics against hand computations."""

import math

import numpy as np
import pytest

from trader.metrics import max_drawdown, mean_metrics, performance


def test_hand_computed_path():
    returns = np.array([0.10, -0.05, 0.0, 0.02])
    positions = np.array([1.0, 1.0, 0.0, -1.0])
    costs = np.array([0.001, 0.0, 0.001, 0.001])
    m = performance(returns, positions, costs, periods_per_year=4)
    equity = 1.1 * 0.95 * 1.0 * 1.02
    assert m["total_return"] == pytest.approx(equity - 1)
    assert m["annualised_return"] == pytest.approx(equity - 1)  # four bars = one year
    assert m["sharpe"] == pytest.approx(returns.mean() / returns.std() * 2)
    downside = math.sqrt((0.05 ** 2) / 4)
    assert m["sortino"] == pytest.approx(returns.mean() / downside * 2)
    assert m["max_drawdown"] == pytest.approx(0.05)
    assert m["trades"] == 3 and m["turnover"] == pytest.approx((1 + 0 + 1 + 1) / 4)
    assert m["hit_rate"] == pytest.approx(2 / 3)
    assert m["costs_paid"] == pytest.approx(0.003) and m["bars"] == 4


def test_flat_book_is_zero_not_nan():
    m = performance(np.zeros(10), np.zeros(10), np.zeros(10), 252)
    assert m["total_return"] == 0 and m["sharpe"] == 0 and m["sortino"] == 0 and m["trades"] == 0
    assert m["max_drawdown"] == 0 and m["hit_rate"] == 0


@pytest.mark.parametrize("equity, expected", [([1, 2, 1, 3], 0.5), ([1, 1.1, 1.2], 0.0), ([2, 1, 0.5], 0.75)])
def test_max_drawdown(equity, expected):
    assert max_drawdown(np.array(equity, dtype=float)) == pytest.approx(expected)


def test_mean_metrics():
    assert mean_metrics([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]) == {"a": 2.0, "b": 3.0}
