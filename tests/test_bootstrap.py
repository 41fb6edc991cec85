"""trader.bootstrap: block lengths from the data, intervals that cover at about their nominal rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trader import bootstrap
from trader.metrics import performance


def ar1(rng: np.random.Generator, n: int, phi: float, burn: int = 100) -> np.ndarray:
    shocks = rng.normal(0.0, 1.0, n + burn)
    x = np.zeros(n + burn)
    for t in range(1, n + burn):
        x[t] = phi * x[t - 1] + shocks[t]
    return x[burn:] * math.sqrt(1.0 - phi * phi)  # unit stationary variance


def coverage(make_series, true_sharpe: float, trials: int = 100) -> float:
    hits = 0
    for i in range(trials):
        low, high = bootstrap.sharpe_interval(make_series(i), 252.0, draws=500, seed=i)
        hits += low <= true_sharpe <= high
    return hits / trials


def test_interval_covers_a_known_sharpe_at_about_its_nominal_rate_on_iid_returns():
    rng = np.random.default_rng(1)
    per_bar = 0.05  # mean / std per bar: an annualised Sharpe of 0.79 at 252 bars a year
    rate = coverage(lambda i: 0.01 * rng.normal(per_bar, 1.0, 500), per_bar * math.sqrt(252))
    assert 0.8 <= rate <= 0.97, rate  # nominal 0.9; 100 trials have a standard error of 0.03


def test_interval_covers_a_known_sharpe_on_autocorrelated_returns():
    rng = np.random.default_rng(2)
    per_bar = 0.05
    rate = coverage(lambda i: 0.01 * (per_bar + ar1(rng, 500, 0.3)), per_bar * math.sqrt(252))
    assert 0.75 <= rate <= 0.97, rate


def test_block_length_grows_with_the_dependence_of_the_series():
    rng = np.random.default_rng(3)
    iid = bootstrap.optimal_block_length(rng.normal(size=2000))
    dependent = bootstrap.optimal_block_length(ar1(rng, 2000, 0.8))
    assert 1.0 <= iid < 3.0 < dependent, (iid, dependent)
    assert bootstrap.optimal_block_length(np.zeros(100)) == 1.0


def test_stationary_indices_are_blocks_of_consecutive_bars():
    rng = np.random.default_rng(4)
    index = bootstrap.stationary_indices(1000, 10.0, 50, rng)
    assert index.shape == (50, 1000) and index.min() >= 0 and index.max() < 1000
    continues = np.diff(index, axis=1) % 1000 == 1
    assert 0.85 < continues.mean() < 0.95  # a new block starts with probability 1 / 10


def test_a_draw_of_the_unresampled_series_matches_the_reported_sharpe():
    rng = np.random.default_rng(5)
    returns = rng.normal(0.001, 0.01, 300)
    rows = bootstrap._sharpe_rows(returns[None, :], 252.0)
    positions = np.ones(300)
    assert rows[0] == pytest.approx(performance(returns, positions, np.zeros(300), 252.0)["sharpe"], rel=1e-12)


def test_paired_probability_and_flat_strategies():
    rng = np.random.default_rng(6)
    market = rng.normal(0.0, 0.01, 1000)
    better = market + 0.002  # the same history plus an edge on every bar
    draws = bootstrap.sharpe_draws({"better": [better], "market": [market], "flat": [np.zeros(1000)]}, [252.0],
                                   draws=300, seed=0)
    assert bootstrap.probability_better(draws["better"], draws["market"]) == 1.0
    assert bootstrap.interval(draws["flat"]) == (0.0, 0.0)
    assert bootstrap.probability_better(draws["flat"], draws["flat"]) == 0.0


def test_several_symbols_give_the_mean_of_their_sharpe_ratios():
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.002, 0.01, 400), rng.normal(-0.001, 0.01, 600)
    both = bootstrap.sharpe_draws({"x": [a, b]}, [252.0, 252.0], draws=400, seed=1)["x"]
    point = np.mean([performance(r, np.ones(len(r)), np.zeros(len(r)), 252.0)["sharpe"] for r in (a, b)])
    low, high = bootstrap.interval(both)
    assert low < point < high
