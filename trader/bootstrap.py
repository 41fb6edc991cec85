"""Stationary block bootstrap of Sharpe ratios: intervals, and the probability that one strategy beats another.

Politis & Romano (1994) resample a series in blocks of geometric length (mean `block`), so that the
dependence within a block (volatility clustering, autocorrelated returns) survives the resampling. The
mean block length comes from the data: Politis & White (2004), with the correction of Patton, Politis &
White (2009) for the stationary bootstrap, applied to the returns and to their squares (the Sharpe ratio's
standard error depends on both), taking the larger.

Strategies evaluated on the same bars are resampled with the same indices (a paired bootstrap), so
`probability_better` compares them on the same resampled histories. Several symbols: each symbol is
resampled with its own block length, and the draw's Sharpe ratio is the mean over symbols, as the report's
figure is. Everything is seeded; pure NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

DRAWS = 2000
"""Bootstrap replicates per interval."""
LEVEL = 0.9
"""Two-sided coverage of the reported intervals."""


def _flat_top(s: np.ndarray) -> np.ndarray:
    """Politis & Romano's trapezoidal flat-top lag window."""
    a = np.abs(s)
    return np.where(a <= 0.5, 1.0, np.where(a <= 1.0, 2.0 * (1.0 - a), 0.0))


def optimal_block_length(x: np.ndarray) -> float:
    """Politis & White's (2004) mean block length for the stationary bootstrap of series x (>= 1)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 8 or x.std() <= 1e-15:
        return 1.0
    x = x - x.mean()
    kn = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = min(math.ceil(math.sqrt(n)) + kn, n - 1)
    b_max = math.ceil(min(3.0 * math.sqrt(n), n / 3.0))
    acov = np.array([x[: n - k] @ x[k:] / n for k in range(m_max + 1)])
    rho = np.abs(acov / acov[0])
    threshold = 2.0 * math.sqrt(math.log10(n) / n)
    m_hat = m_max
    for m in range(1, m_max - kn + 1):
        if np.all(rho[m + 1: m + kn + 1] < threshold):
            m_hat = m
            break
    big_m = min(2 * m_hat, m_max)
    lags = np.arange(-big_m, big_m + 1)
    weights = _flat_top(lags / big_m) if big_m > 0 else np.ones(1)
    gammas = acov[np.abs(lags)]
    g = float(np.sum(weights * np.abs(lags) * gammas))
    spectral = float(np.sum(weights * gammas))
    if spectral <= 0:
        return 1.0
    block = (2.0 * g * g / (2.0 * spectral * spectral)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(min(max(block, 1.0), b_max))


def sharpe_block_length(returns: np.ndarray) -> float:
    """The mean block length for resampling a Sharpe ratio: the larger of the returns' and the squares'."""
    returns = np.asarray(returns, dtype=np.float64)
    return max(optimal_block_length(returns), optimal_block_length(returns * returns))


def stationary_indices(n: int, block: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, n) indices of stationary-bootstrap resamples of a length-n series (wrapping around)."""
    if n == 0:
        return np.zeros((draws, 0), dtype=np.int64)
    new_block = rng.random((draws, n)) < 1.0 / block
    new_block[:, 0] = True
    starts = rng.integers(0, n, size=(draws, n))
    steps = np.arange(n)
    began = np.maximum.accumulate(np.where(new_block, steps, 0), axis=1)  # the step each block began at
    return (np.take_along_axis(starts, began, axis=1) + (steps - began)) % n


def _sharpe_rows(samples: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe ratio of each row (0 where the row is flat), as trader.metrics computes it."""
    std = samples.std(axis=1)
    mean = samples.mean(axis=1)
    safe = np.where(std > 1e-15, std, 1.0)
    return np.where(std > 1e-15, mean / safe * math.sqrt(periods_per_year), 0.0)


def sharpe_draws(series: Mapping[str, Sequence[np.ndarray]], periods_per_year: Sequence[float],
                 draws: int = DRAWS, seed: int = 0) -> dict[str, np.ndarray]:
    """Bootstrap draws of the symbol-mean Sharpe ratio of each strategy, paired across strategies.

    series: {strategy: [net returns of symbol 0, of symbol 1, ...]}; every strategy has the same bars of a
    symbol. The block length of a symbol is the largest any strategy's returns ask for (so the dependence of
    the most dependent one survives). Returns {strategy: (draws,) array}.
    """
    names = list(series)
    n_symbols = len(periods_per_year)
    rng = np.random.default_rng(seed)
    totals = {name: np.zeros(draws) for name in names}
    for s in range(n_symbols):
        n = len(series[names[0]][s])
        block = max(sharpe_block_length(series[name][s]) for name in names)
        index = stationary_indices(n, block, draws, rng)
        for name in names:
            returns = np.asarray(series[name][s], dtype=np.float64)
            totals[name] += _sharpe_rows(returns[index], periods_per_year[s])
    return {name: total / n_symbols for name, total in totals.items()}


def interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of the draws."""
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)


def probability_better(a: np.ndarray, b: np.ndarray) -> float:
    """Share of paired draws where strategy a's Sharpe ratio exceeds b's."""
    return float(np.mean(a > b))


def sharpe_interval(returns: np.ndarray, periods_per_year: float, level: float = LEVEL, draws: int = DRAWS,
                    seed: int = 0) -> tuple[float, float]:
    """The stationary-bootstrap `level` interval of one series' annualised Sharpe ratio."""
    return interval(sharpe_draws({"x": [returns]}, [periods_per_year], draws, seed)["x"], level)
