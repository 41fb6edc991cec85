"""benchmarks/markets.py: every market is seeded and its mu is what moves it; the informed rule of the regimes
market reads only the past, and its AR slope sees the planted reversion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks import markets
from benchmarks.markets import (
    ALL_MARKETS,
    NO_EDGE,
    REVERSION_PHI,
    ar_slope,
    make_market,
    ou_filter_mu,
    regime_switch_positions,
)


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
def test_every_market_is_seeded_and_its_ohlcv_consistent(kind: str) -> None:
    market = make_market(kind, seed=2, n=6000)
    pd.testing.assert_frame_equal(market.frame, make_market(kind, seed=2, n=6000).frame)
    frame = market.frame
    assert (frame["High"] >= frame[["Open", "Close"]].max(axis=1)).all()
    assert (frame["Low"] <= frame[["Open", "Close"]].min(axis=1)).all() and (frame["Volume"] > 0).all()


@pytest.mark.parametrize("kind", ["trend", "step_trend", "momentum", "reversion", "regimes", "slow_regimes"])
def test_the_move_from_t_to_t_plus_1_is_mu_at_t_plus_that_bars_shock(kind: str, monkeypatch) -> None:
    drawn = {}

    def shocks(rng: np.random.Generator, n: int) -> np.ndarray:
        drawn["shocks"] = np.random.default_rng(7).normal(0.0, markets.SIGMA, n)
        return drawn["shocks"]

    monkeypatch.setattr(markets, "_shocks", shocks)
    market = make_market(kind, seed=2, n=6000)
    assert np.abs(market.mu).max() > 1e-4
    np.testing.assert_allclose(np.diff(np.log(market.close)) - market.mu[:-1], drawn["shocks"][1:], atol=1e-12)


def test_the_ou_price_market_expects_the_deviation_to_decay(monkeypatch) -> None:
    # Without the random-walk shocks the log price is the OU deviation x (from x[0]), and mu = -kappa x.
    monkeypatch.setattr(markets, "_shocks", lambda rng, n: np.zeros(n))
    market = make_market("ou_price", seed=2, n=6000)
    kappa = 1.0 - 0.5 ** (1.0 / markets.OU_HALF_LIFE)
    deviation = np.log(market.close / market.close[0])
    slope, _ = np.polyfit(deviation, market.mu, 1)
    assert slope == pytest.approx(-kappa, rel=1e-9)
    np.testing.assert_allclose(market.mu, -kappa * (deviation - deviation.mean()) + market.mu.mean(), atol=1e-15)


@pytest.mark.parametrize("kind", NO_EDGE)
def test_the_markets_without_an_edge_have_nothing_to_predict(kind: str) -> None:
    market = make_market(kind, seed=2, n=20_000)
    r = np.diff(np.log(market.close))
    assert not market.mu.any()
    for lag in (1, 2, 3):  # on signs: GARCH's fat tails make the returns' own sample correlation noisy
        assert abs(np.corrcoef(np.sign(r[:-lag]), np.sign(r[lag:]))[0, 1]) < 0.03
    clustering = np.corrcoef(r[:-1] ** 2, r[1:] ** 2)[0, 1]
    assert clustering > 0.05 if kind == "garch_walk" else abs(clustering) < 0.05


def test_the_ou_filter_reads_only_the_past_and_tracks_the_hidden_deviation() -> None:
    market = make_market("ou_price", seed=1, n=8000)
    close, t = market.close, 5000
    changed = close.copy()
    changed[t + 1:] *= 1.05
    np.testing.assert_array_equal(ou_filter_mu(close)[:t + 1], ou_filter_mu(changed)[:t + 1])
    estimate = ou_filter_mu(close)[400:]
    tracking = np.corrcoef(estimate, market.mu[400:])[0, 1]
    # the steady-state filter is an exponential smoother: no EMA distance tracks the deviation better
    best_ema = max(np.corrcoef(np.log(markets.ema(close, span) / close)[400:], market.mu[400:])[0, 1]
                   for span in (10, 20, 35, 50, 100))
    assert tracking > 0.3 and tracking >= best_ema - 0.01, (tracking, best_ema)


@pytest.mark.parametrize("kind", sorted(markets.REGIME_MEAN_BARS))
def test_regimes_last_as_long_as_their_market_says(kind: str) -> None:
    lengths = []
    for seed in range(4):
        reverting = make_market(kind, seed=seed, n=40_000).persistence < markets.TREND_TAU / 5.0
        switches = np.flatnonzero(np.diff(reverting.astype(int)))
        lengths.extend(np.diff(switches))
    assert reverting.any() and not reverting.all()
    assert np.mean(lengths) == pytest.approx(markets.REGIME_MEAN_BARS[kind], rel=0.3)
