"""trader.stats: the deflated Sharpe ratio against the paper's worked example, and its building blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from trader.stats import (deflated_sharpe, deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe,
                          return_moments, sharpe_standard_error)


def test_the_deflated_sharpe_ratio_reproduces_the_papers_numerical_example():
    """Bailey and López de Prado (2014), "The Deflated Sharpe Ratio", section "A numerical example".

    A strategist runs N = 100 independent trials; the variance of their annualised Sharpe ratios is
    V = 1/2; the selected trial's annualised Sharpe ratio is 2.5 over T = 1,250 daily returns (five years
    of 250 days) with skewness -3 and kurtosis 10. Per day that is SR = 2.5 / sqrt(250) and V = 0.5 / 250;
    the paper finds the expected maximum SR_0 ~= 0.1132 (per day) and DSR ~= 0.9004.
    """
    sharpe, variance = 2.5 / math.sqrt(250), 0.5 / 250
    assert round(expected_max_sharpe(100, variance), 4) == 0.1132
    assert round(deflated_sharpe_ratio(sharpe, 100, variance, 1250, -3.0, 10.0), 4) == 0.9004


def test_the_expected_maximum_scales_with_the_spread_and_grows_with_the_trials():
    daily = expected_max_sharpe(100, 0.5 / 250)
    assert expected_max_sharpe(100, 0.5) == pytest.approx(daily * math.sqrt(250))  # any units, the same ones
    assert expected_max_sharpe(1, 0.5) == 0.0  # one trial: nothing to deflate
    growing = [expected_max_sharpe(n, 1.0) for n in (2, 10, 100, 1000)]
    assert growing == sorted(growing) and growing[0] > 0
    # Against a simulation of the maximum of N standard normals (the approximation is within a few %).
    rng = np.random.default_rng(0)
    simulated = rng.standard_normal((20_000, 100)).max(axis=1).mean()
    assert expected_max_sharpe(100, 1.0) == pytest.approx(simulated, rel=0.03)
    with pytest.raises(ValueError):
        expected_max_sharpe(0, 1.0)
    with pytest.raises(ValueError):
        expected_max_sharpe(10, -1.0)


def test_more_trials_or_fatter_tails_deflate_more():
    sharpe, variance = 0.1, 0.002
    by_trials = [deflated_sharpe_ratio(sharpe, n, variance, 1000, 0.0, 3.0) for n in (1, 10, 100)]
    assert by_trials == sorted(by_trials, reverse=True)
    normal = deflated_sharpe_ratio(sharpe, 10, variance, 1000, 0.0, 3.0)
    assert deflated_sharpe_ratio(sharpe, 10, variance, 1000, -2.0, 12.0) < normal
    # One trial: the probabilistic Sharpe ratio against 0.
    error = sharpe_standard_error(sharpe, 1000, 0.0, 3.0)
    assert by_trials[0] == probabilistic_sharpe(sharpe, 0.0, error)
    assert deflated_sharpe(sharpe, error, 10, variance) == normal


def test_the_standard_error_of_normal_returns_is_sqrt_of_1_plus_half_sr_squared_over_t_minus_1():
    sharpe = 0.2
    assert sharpe_standard_error(sharpe, 501, 0.0, 3.0) == pytest.approx(math.sqrt((1 + sharpe ** 2 / 2) / 500))
    with pytest.raises(ValueError):
        sharpe_standard_error(sharpe, 1, 0.0, 3.0)


def test_return_moments_match_scipy_and_a_flat_book_is_normal_with_sharpe_0():
    returns = np.random.default_rng(1).standard_t(5, 2000) * 0.01 + 0.0005
    moments = return_moments(returns)
    assert moments["n"] == 2000
    assert moments["sharpe"] == pytest.approx(returns.mean() / returns.std())
    assert moments["skewness"] == pytest.approx(scipy.stats.skew(returns))
    assert moments["kurtosis"] == pytest.approx(scipy.stats.kurtosis(returns, fisher=False))
    assert return_moments(np.zeros(50)) == {"n": 50, "sharpe": 0.0, "skewness": 0.0, "kurtosis": 3.0}
