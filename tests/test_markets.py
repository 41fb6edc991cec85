"""benchmarks/markets.py: every market is seeded and its mu is what moves it; the informed rule of the regimes
market reads only the past, and its AR slope sees the planted reversion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.markets import ALL_MARKETS, NO_EDGE, REVERSION_PHI, ar_slope, make_market, regime_switch_positions


def test_the_regime_switch_rule_reads_only_the_past() -> None:
    close = make_market("regimes", seed=3, n=3000).close
    t = 2000
    changed = close.copy()
    changed[t + 1:] *= np.exp(np.cumsum(np.random.default_rng(0).normal(0.0, 0.01, len(close) - t - 1)))
    for args in ((100, 50, -0.1), (400, 200, 0.0)):
        np.testing.assert_array_equal(regime_switch_positions(close, *args)[:t + 1],
                                      regime_switch_positions(changed, *args)[:t + 1])


def test_the_ar_slope_finds_the_planted_reversion_and_nothing_in_a_drift() -> None:
    reverting = ar_slope(make_market("reversion", seed=1).close, half_life=2000)[-5000:]
    drifting = ar_slope(make_market("trend", seed=1).close, half_life=2000)[-5000:]
    assert abs(reverting.mean() + REVERSION_PHI) < 0.08, reverting.mean()
    assert abs(drifting.mean()) < 0.08, drifting.mean()


@pytest.mark.parametrize("kind", ALL_MARKETS)
def test_every_market_is_seeded_consistent_and_its_mu_is_the_next_bars_expected_return(kind: str) -> None:
    market = make_market(kind, seed=2, n=6000)
    again = make_market(kind, seed=2, n=6000)
    pd.testing.assert_frame_equal(market.frame, again.frame)
    frame = market.frame
    assert (frame["High"] >= frame[["Open", "Close"]].max(axis=1)).all()
    assert (frame["Low"] <= frame[["Open", "Close"]].min(axis=1)).all() and (frame["Volume"] > 0).all()
    next_return = np.diff(np.log(market.close))
    if kind in NO_EDGE:
        assert not market.mu.any()
        return
    # mu[t] drives the move from t to t+1: the regression slope of that move on mu is about 1
    slope = np.polyfit(market.mu[:-1], next_return, 1)[0]
    assert 0.5 < slope < 1.5, slope
