"""How much a Sharpe ratio picked as the best of a search is worth: pure functions, no I/O.

Bailey and López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias, Backtest
Overfitting and Non-Normality", Journal of Portfolio Management 40 (5). The best of N trials has a
higher Sharpe ratio than any one of them would by luck alone; the deflated Sharpe ratio (DSR) is the
probability that the true Sharpe ratio of the selected trial is above the best one that N trials with
no skill at all would be expected to show, allowing for the skewness, the fat tails and the length of
the selected trial's returns.

Every Sharpe ratio here is per period (per bar, not annualised) unless a name says otherwise, and
kurtosis is the plain fourth standardised moment (3 for a normal distribution, not the excess).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TypedDict

import numpy as np

EULER_GAMMA = 0.5772156649015329
"""The Euler-Mascheroni constant of the paper's expected-maximum approximation."""

_NORMAL = NormalDist()


class ReturnMoments(TypedDict):
    """What the standard error of a Sharpe estimate needs from its returns."""

    n: int
    sharpe: float
    skewness: float
    kurtosis: float


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """E[max SR] of `n_trials` independent Sharpe estimates whose true value is 0 (the paper's SR_0).

    sqrt(V) * ((1 - gamma) * Z^-1(1 - 1/N) + gamma * Z^-1(1 - 1/(N e))), with V the variance of the
    trials' Sharpe ratios and gamma the Euler-Mascheroni constant. One trial has nothing to deflate: 0.
    The result is in the units of the Sharpe ratios whose variance is given (per period or annualised).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1 (got {n_trials})")
    if not variance >= 0:
        raise ValueError(f"the variance of the trials' Sharpe ratios must be >= 0 (got {variance})")
    if n_trials == 1:
        return 0.0
    z = ((1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
         + EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e)))
    return math.sqrt(variance) * z


def sharpe_standard_error(sharpe: float, n_obs: int, skewness: float, kurtosis: float) -> float:
    """Standard error of a per-period Sharpe estimate from `n_obs` returns with that skewness and kurtosis.

    sqrt((1 - skew * SR + (kurtosis - 1) / 4 * SR^2) / (T - 1)) (Mertens 2002, as the paper uses it):
    negative skew and fat tails widen it.
    """
    if n_obs < 2:
        raise ValueError(f"a Sharpe ratio's standard error needs at least 2 returns (got {n_obs})")
    variance = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe ** 2
    return math.sqrt(max(variance, 0.0) / (n_obs - 1))


def probabilistic_sharpe(sharpe: float, benchmark: float, standard_error: float) -> float:
    """P(true SR > benchmark) = Z((SR - benchmark) / standard error); any units, the same for all three."""
    if standard_error <= 0:
        return 1.0 if sharpe > benchmark else 0.0
    return _NORMAL.cdf((sharpe - benchmark) / standard_error)


def deflated_sharpe(sharpe: float, standard_error: float, n_trials: int, trials_variance: float) -> float:
    """DSR of a selected trial whose Sharpe estimate has the given standard error, any units.

    The probabilistic Sharpe ratio against E[max SR] of `n_trials` skill-less trials with the variance of
    the trials' Sharpe ratios: the paper's DSR when the error is `sharpe_standard_error`'s.
    """
    return probabilistic_sharpe(sharpe, expected_max_sharpe(n_trials, trials_variance), standard_error)


def deflated_sharpe_ratio(sharpe: float, n_trials: int, trials_variance: float, n_obs: int, skewness: float,
                          kurtosis: float) -> float:
    """The paper's DSR from per-period figures: the selected SR, N, V[SR_n], T, skewness and kurtosis."""
    return deflated_sharpe(sharpe, sharpe_standard_error(sharpe, n_obs, skewness, kurtosis), n_trials,
                           trials_variance)


def return_moments(returns: np.ndarray) -> ReturnMoments:
    """n, per-period Sharpe (mean / population std, as `trader.metrics` computes it), skewness, kurtosis.

    A series without spread (a flat book) has a Sharpe ratio of 0, as in `trader.metrics`, and is given
    the normal's skewness 0 and kurtosis 3: with SR = 0 they do not enter the standard error anyway.
    """
    returns = np.asarray(returns, dtype=np.float64)
    n = len(returns)
    std = float(returns.std()) if n else 0.0
    if n < 2 or std <= 1e-15:
        return {"n": n, "sharpe": 0.0, "skewness": 0.0, "kurtosis": 3.0}
    z = (returns - returns.mean()) / std
    return {"n": n, "sharpe": float(returns.mean() / std), "skewness": float(np.mean(z ** 3)),
            "kurtosis": float(np.mean(z ** 4))}
