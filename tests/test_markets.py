"""benchmarks/markets.py: the informed rule of the regimes market reads only the past, and its AR slope
sees the planted reversion."""

from __future__ import annotations

import numpy as np

from benchmarks.markets import REVERSION_PHI, ar_slope, make_market, regime_switch_positions


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
