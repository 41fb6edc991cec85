"""Seeded synthetic markets with known edges, their reference rules and their oracles.

Each market is a pure function of its seed: hourly bars around the clock (as crypto trades), log returns
with a per-bar volatility of about 0.3 % and Student-t shocks, and a known expected next-bar return
`mu[t]` (known at bar t, it drives the move from t to t+1). The oracle holds `sign(mu[t])`, changing
position only when the expected gain over the next bars pays the cost; a reference rule is a one-line
rule of the kind a researcher would try first, with its parameter chosen on the training bars. Where the
oracle's knowledge is a hidden state, an informed rule (INFORMED_RULES) knows the form of the edge but not
the state: for regimes it switches between the two edges' rules where a rolling AR slope says the market
reverts; for ou_price a Kalman filter with the generator's parameters estimates the deviation. What it
makes is what a causal rule can reach.

- `trend`: mu is a slowly varying Ornstein-Uhlenbeck drift (a persistent edge that trend rules see).
- `reversion`: mu = -phi * (mean of the last 3 returns): short mean reversion over a few bars.
- `regimes`: Markov switches between the two, a few hundred bars each (about as long as a causal detector
  needs to tell them apart, so half the oracle is beyond the informed rule; see benchmarks/RESULTS.md).
- `random_walk`: mu = 0; nothing to learn, costs to lose.

A second set, never used to choose a default, checks that the agent is not fitted to those shapes:
`momentum` (AR(1) returns), `ou_price` (a price that reverts to a wandering level over a day; its OU
increments raise the per-bar volatility to about 0.4 %), `step_trend` (a drift that jumps between levels)
`garch_walk` (no edge, clustered volatility) and `slow_regimes` (the regimes market with regimes five times
as long, which a causal detector can tell apart: it checks that the agent can learn a policy that depends on
the regime, where the regimes market cannot say).

These strengths are tuned so that the reference rules make a Sharpe ratio of a few units after 2 bps
per unit traded on a test split of a few thousand bars: enough to tell an agent that learned from one
that did not, at realistic costs (see benchmarks/RESULTS.md for the measured figures).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from envs.accounting import backtest
from trader.metrics import performance

SIGMA = 0.003
"""Per-bar volatility of the shocks."""
T_DF = 5
"""Degrees of freedom of the Student-t shocks (fat tails, scaled to unit variance)."""
TREND_TAU = 1000.0
"""Mean life in bars of the trend market's drift."""
TREND_EDGE = 0.08
"""Stationary std of the trend drift, in units of SIGMA."""
REVERSION_PHI = 0.2
"""Mean reversion: mu = -phi * mean of the last REVERSION_LAGS returns."""
REVERSION_LAGS = 3
REGIME_MEAN_BARS = {"regimes": 400.0, "slow_regimes": 2000.0}
"""Mean length of a regime in each regime-switching market."""
MOMENTUM_PHI = 0.15
"""The momentum market: r[t+1] = phi r[t] + shock."""
OU_HALF_LIFE = 24.0
"""Half-life in bars of the OU price deviation of the ou_price market."""
OU_EDGE = 4.0
"""Stationary std of that deviation, in units of SIGMA."""
GARCH_ALPHA_BETA = (0.1, 0.85)
"""GARCH(1, 1) coefficients of the garch_walk market's variance."""
STEP_MEAN_BARS = 600.0
"""Mean bars between the step_trend market's jumps of drift."""


@dataclass(frozen=True)
class Market:
    """One generated symbol: OHLCV and the known expected next-bar log return at each bar."""

    name: str
    frame: pd.DataFrame
    mu: np.ndarray
    kind: str
    persistence: np.ndarray
    """Bars the edge at each bar is expected to last: what the oracle weighs a change's cost against."""

    @property
    def close(self) -> np.ndarray:
        return self.frame["Close"].to_numpy(dtype=np.float64)


def ar1_returns(shocks: np.ndarray, phi: float) -> np.ndarray:
    """Log returns r[t] = phi * r[t-1] + shocks[t] (r[0] = shocks[0]): the CI tests' planted momentum edge."""
    returns = np.empty(len(shocks))
    returns[0] = shocks[0]
    for t in range(1, len(shocks)):
        returns[t] = phi * returns[t - 1] + shocks[t]
    return returns


def _shocks(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_t(T_DF, n) * np.sqrt((T_DF - 2) / T_DF) * SIGMA


def _trend_mu(rng: np.random.Generator, n: int) -> np.ndarray:
    decay = 1.0 - 1.0 / TREND_TAU
    noise = rng.normal(0.0, TREND_EDGE * SIGMA * np.sqrt(1.0 - decay**2), n)
    mu = np.empty(n)
    mu[0] = rng.normal(0.0, TREND_EDGE * SIGMA)
    for t in range(1, n):
        mu[t] = decay * mu[t - 1] + noise[t]
    return mu


def _returns_with_reversion(shocks: np.ndarray, base_mu: np.ndarray, reverting: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """r[t+1] = mu[t] + shock; mu[t] = base_mu[t], or -phi * mean(r[t-2..t]) where `reverting`."""
    n = len(shocks)
    r = np.zeros(n)
    mu = np.zeros(n)
    for t in range(n - 1):
        if reverting[t]:
            lo = max(0, t - REVERSION_LAGS + 1)
            mu[t] = -REVERSION_PHI * r[lo:t + 1].mean() if t >= REVERSION_LAGS - 1 else 0.0
        else:
            mu[t] = base_mu[t]
        r[t + 1] = mu[t] + shocks[t + 1]
    return r, mu


def _regimes(rng: np.random.Generator, n: int, mean_bars: float) -> np.ndarray:
    """True where the market mean-reverts, switching with mean duration mean_bars."""
    switch = rng.random(n) < 1.0 / mean_bars
    return (np.cumsum(switch) + int(rng.integers(2))) % 2 == 1


def _frame(rng: np.random.Generator, log_returns: np.ndarray, start: str) -> pd.DataFrame:
    n = len(log_returns)
    close = 100.0 * np.exp(np.cumsum(log_returns))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.4 * SIGMA, (2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(10.0, 0.4, n) * (1.0 + 50.0 * np.abs(log_returns))
    index = pd.date_range(start, periods=n, freq="h")
    return pd.DataFrame({"Date": index.strftime("%Y-%m-%d %H:%M:%S"), "Open": open_, "High": high, "Low": low,
                         "Close": close, "Volume": volume})


def _momentum(shocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """r[t+1] = MOMENTUM_PHI * r[t] + shock: short momentum, the reversion market's opposite."""
    r = ar1_returns(np.concatenate([[0.0], shocks[1:]]), MOMENTUM_PHI)
    return r, MOMENTUM_PHI * r


def _ou_price(rng: np.random.Generator, shocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log price = random walk + an OU deviation x with half-life OU_HALF_LIFE bars; mu[t] = -kappa x[t]."""
    n = len(shocks)
    kappa = 1.0 - 0.5 ** (1.0 / OU_HALF_LIFE)
    noise = rng.normal(0.0, OU_EDGE * SIGMA * np.sqrt(1.0 - (1.0 - kappa) ** 2), n)
    x = np.empty(n)
    x[0] = rng.normal(0.0, OU_EDGE * SIGMA)
    for t in range(1, n):
        x[t] = (1.0 - kappa) * x[t - 1] + noise[t]
    r = np.concatenate([[0.0], shocks[1:] + np.diff(x)])
    return r, -kappa * x


def _garch_walk(rng: np.random.Generator, n: int) -> np.ndarray:
    """Returns with GARCH(1, 1) volatility clustering around SIGMA and Student-t shocks; no edge."""
    alpha, beta = GARCH_ALPHA_BETA
    omega = SIGMA**2 * (1.0 - alpha - beta)
    shocks = rng.standard_t(T_DF, n) * np.sqrt((T_DF - 2) / T_DF)
    r = np.zeros(n)
    variance = SIGMA**2
    for t in range(1, n):
        variance = omega + alpha * r[t - 1] ** 2 + beta * variance
        r[t] = np.sqrt(variance) * shocks[t]
    return r


def _step_mu(rng: np.random.Generator, n: int) -> np.ndarray:
    """A drift that jumps to a new N(0, (TREND_EDGE SIGMA)^2) level at random times, STEP_MEAN_BARS apart
    on average, and stays there: a trend with no slow variation to follow."""
    jumps = rng.random(n) < 1.0 / STEP_MEAN_BARS
    levels = rng.normal(0.0, TREND_EDGE * SIGMA, n)
    return levels[np.maximum.accumulate(np.where(jumps | (np.arange(n) == 0), np.arange(n), 0))]


def make_market(kind: str, seed: int, n: int = 20_000, start: str = "2020-01-01") -> Market:
    """A seeded market of `kind` (one of ALL_MARKETS) with n hourly bars."""
    if kind not in ALL_MARKETS:
        raise ValueError(f"unknown market {kind!r}: choose one of {', '.join(ALL_MARKETS)}")
    rng = np.random.default_rng([seed, list(ALL_MARKETS).index(kind)])
    shocks = _shocks(rng, n)
    reverting = np.zeros(n, dtype=bool)
    persistence = np.full(n, TREND_TAU / 5.0)
    if kind in ("random_walk", "garch_walk"):
        mu = np.zeros(n)
        r = np.concatenate([[0.0], shocks[1:]]) if kind == "random_walk" else _garch_walk(rng, n)
    elif kind in ("trend", "step_trend"):
        mu = _trend_mu(rng, n) if kind == "trend" else _step_mu(rng, n)
        r = np.concatenate([[0.0], mu[:-1] + shocks[1:]])
        persistence[:] = TREND_TAU / 5.0 if kind == "trend" else STEP_MEAN_BARS / 5.0
    elif kind == "momentum":
        r, mu = _momentum(shocks)
        persistence[:] = 1.0 / (1.0 - MOMENTUM_PHI)
    elif kind == "ou_price":
        r, mu = _ou_price(rng, shocks)
        persistence[:] = OU_HALF_LIFE
    else:
        reverting = np.ones(n, dtype=bool) if kind == "reversion" else _regimes(rng, n, REGIME_MEAN_BARS[kind])
        base_mu = np.zeros(n) if kind == "reversion" else _trend_mu(rng, n)
        r, mu = _returns_with_reversion(shocks, base_mu, reverting)
        persistence = np.where(reverting, REVERSION_LAGS / 2.0, TREND_TAU / 5.0)
    return Market(name=f"{kind.upper()}{seed}", frame=_frame(rng, r, start), mu=mu, kind=kind,
                  persistence=persistence)


MARKETS = ("trend", "reversion", "regimes", "random_walk")
"""The development suite: every default of parameters.toml was chosen on these."""
CHECK_MARKETS = ("momentum", "ou_price", "step_trend", "garch_walk", "slow_regimes")
"""Other generators of the same kinds of edge (and of none), never used to choose a default: a check that
what the agent learns is not one generator's shape (`bench_learning.py --markets ...`)."""
ALL_MARKETS = MARKETS + CHECK_MARKETS
NO_EDGE = ("random_walk", "garch_walk")


# ---------------------------------------------------------------- rules, each a pure function of the closes

def ema(x: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average with alpha = 2 / (span + 1), seeded at x[0] (pandas' adjust=False)."""
    return pd.Series(x).ewm(span=span, adjust=False).mean().to_numpy()


def ema_trend_positions(close: np.ndarray, span: int) -> np.ndarray:
    """+1 above the EMA of the closes, -1 below: the trend rule a researcher tries first."""
    return np.sign(close - ema(close, span))


def reversal_positions(close: np.ndarray, lags: int) -> np.ndarray:
    """-sign of the return over the last `lags` bars: a short reversal rule."""
    log_close = np.log(close)
    change = np.zeros_like(log_close)
    change[lags:] = log_close[lags:] - log_close[:-lags]
    return -np.sign(change)


def fade_positions(close: np.ndarray, span: int) -> np.ndarray:
    """-1 above the EMA of the closes, +1 below: the trend rule turned round, for a price that reverts."""
    return -ema_trend_positions(close, span)


def momentum_positions(close: np.ndarray, lags: int) -> np.ndarray:
    """+sign of the return over the last `lags` bars: a short momentum rule."""
    return -reversal_positions(close, lags)


def oracle_positions(mu: np.ndarray, cost_bps: float, persistence: np.ndarray | float = 10.0) -> np.ndarray:
    """sign(mu), changing position only when mu's expected gain over the edge's persistence pays the cost.

    The oracle knows the planted edge (mu[t] and how long such an edge lasts, never a later bar's mu); the
    hysteresis keeps it from paying costs on flips its edge cannot repay, so it is a fair upper reference
    at the same costs.
    """
    thresholds = cost_bps * 1e-4 / np.broadcast_to(np.asarray(persistence, dtype=np.float64), mu.shape)
    positions = np.zeros(len(mu))
    held = 0.0
    for t, (m, threshold) in enumerate(zip(mu.tolist(), thresholds.tolist())):
        if m > threshold:
            held = 1.0
        elif m < -threshold:
            held = -1.0
        positions[t] = held
    return positions


HYSTERESIS_MULTIPLES = (0.25, 0.5, 1.0, 2.0, 4.0, np.inf)
"""Multiples of an edge's persistence the cost of a change is weighed against (infinite: no hysteresis)."""


def hysteresis_positions(mu: np.ndarray, persistence: np.ndarray, close: np.ndarray, train_bars: tuple[int, int],
                         cost_bps: float, periods_per_year: float) -> np.ndarray:
    """oracle_positions of an expected-return series, the multiple of its persistence chosen on the training
    split as the reference rules' parameters are."""
    candidates = ((str(multiple), oracle_positions(mu, cost_bps, persistence * multiple))
                  for multiple in HYSTERESIS_MULTIPLES)
    return best_on_training(candidates, close, train_bars, cost_bps, periods_per_year)[1]


def choose_oracle(market: Market, close: np.ndarray, train_bars: tuple[int, int], cost_bps: float,
                  periods_per_year: float) -> np.ndarray:
    """The oracle's positions: the planted mu with the hysteresis the training split favours."""
    mu, persistence = market.mu[-len(close):], market.persistence[-len(close):]
    return hysteresis_positions(mu, persistence, close, train_bars, cost_bps, periods_per_year)


def ar_slope(close: np.ndarray, half_life: float, lags: int = REVERSION_LAGS) -> np.ndarray:
    """Exponentially weighted least-squares slope (through 0) of r[t] on the mean of r[t-lags..t-1], known at
    bar t: about -REVERSION_PHI where the market reverts, about 0 in a drift."""
    r = pd.Series(np.concatenate([[0.0], np.diff(np.log(close))]))
    previous = r.rolling(lags).mean().shift(1)
    alpha = 1.0 - 0.5 ** (1.0 / half_life)
    products = (previous * r).ewm(alpha=alpha).mean()
    squares = (previous * previous).ewm(alpha=alpha).mean()
    return (products / squares).fillna(0.0).to_numpy()


def regime_switch_positions(close: np.ndarray, span: int, half_life: float, threshold: float) -> np.ndarray:
    """The reversal rule over REVERSION_LAGS bars where the AR slope is below `threshold`, else the EMA trend
    rule: a rule that knows the form of the regimes market's two edges, though not when it switches."""
    reverting = ar_slope(close, half_life) < threshold
    return np.where(reverting, reversal_positions(close, REVERSION_LAGS), ema_trend_positions(close, span))


INFORMED_GRID = {"span": (100, 200, 400), "half_life": (50, 100, 200, 400), "threshold": (-0.3, -0.2, -0.1, 0.0)}


def choose_regime_switch(close: np.ndarray, train_bars: tuple[int, int], cost_bps: float,
                         periods_per_year: float) -> tuple[str, np.ndarray]:
    """The informed rule for regimes: regime_switch_positions with the training split's best parameters."""
    candidates = ((f"regime_switch({span}, {half_life}, {threshold})",
                   regime_switch_positions(close, span, half_life, threshold))
                  for span in INFORMED_GRID["span"] for half_life in INFORMED_GRID["half_life"]
                  for threshold in INFORMED_GRID["threshold"])
    return best_on_training(candidates, close, train_bars, cost_bps, periods_per_year)


def ou_filter_mu(close: np.ndarray) -> np.ndarray:
    """The ou_price market's expected next-bar return as a Kalman filter that knows the generator's parameters
    estimates it from the closes up to each bar: log price = random walk (std SIGMA a bar) + OU deviation x,
    observed without noise, and mu = -kappa x. The best any causal rule can know of x."""
    kappa = 1.0 - 0.5 ** (1.0 / OU_HALF_LIFE)
    decay, q_walk = 1.0 - kappa, SIGMA**2
    q_dev = (OU_EDGE * SIGMA) ** 2 * (1.0 - decay**2)
    log_close = np.log(close)
    walk, dev = float(log_close[0]), 0.0
    p_ww, p_wd, p_dd = 0.0, 0.0, (OU_EDGE * SIGMA) ** 2
    estimate = np.empty(len(close))
    for t, y in enumerate(log_close.tolist()):
        if t:  # predict: the walk keeps its level, the deviation decays
            dev *= decay
            p_ww, p_wd, p_dd = p_ww + q_walk, decay * p_wd, decay * decay * p_dd + q_dev
        innovation_var = p_ww + 2.0 * p_wd + p_dd + 1e-18
        gain_w, gain_d = (p_ww + p_wd) / innovation_var, (p_wd + p_dd) / innovation_var
        innovation = y - walk - dev
        walk, dev = walk + gain_w * innovation, dev + gain_d * innovation
        p_ww, p_wd, p_dd = (p_ww - gain_w * (p_ww + p_wd), p_wd - gain_w * (p_wd + p_dd),
                            p_dd - gain_d * (p_wd + p_dd))
        estimate[t] = dev
    return -kappa * estimate


def choose_ou_filter(close: np.ndarray, train_bars: tuple[int, int], cost_bps: float, periods_per_year: float
                     ) -> tuple[str, np.ndarray]:
    """The informed rule for ou_price: the filter's mu traded as the oracle trades the true one."""
    positions = hysteresis_positions(ou_filter_mu(close), np.full(len(close), OU_HALF_LIFE), close, train_bars,
                                     cost_bps, periods_per_year)
    return "ou_filter", positions


INFORMED_RULES = {"regimes": choose_regime_switch, "slow_regimes": choose_regime_switch, "ou_price": choose_ou_filter}
"""Rules that know the form of a market's edge but not its hidden state: what a causal rule can reach."""


@dataclass(frozen=True)
class Rule:
    name: str
    positions: Callable[[np.ndarray, int], np.ndarray]
    grid: Sequence[int]


REFERENCE_RULES = {
    "trend": (Rule("ema_trend", ema_trend_positions, (10, 20, 50, 100, 200, 400)),),
    "reversion": (Rule("reversal", reversal_positions, (1, 2, 3, 5)),),
    "regimes": (Rule("ema_trend", ema_trend_positions, (10, 20, 50, 100, 200, 400)),
                Rule("reversal", reversal_positions, (1, 2, 3, 5))),
    "slow_regimes": (Rule("ema_trend", ema_trend_positions, (10, 20, 50, 100, 200, 400)),
                     Rule("reversal", reversal_positions, (1, 2, 3, 5))),
    "random_walk": (Rule("ema_trend", ema_trend_positions, (10, 20, 50, 100, 200, 400)),
                    Rule("reversal", reversal_positions, (1, 2, 3, 5))),
    "momentum": (Rule("momentum", momentum_positions, (1, 2, 3, 5)),),
    "ou_price": (Rule("fade_ema", fade_positions, (5, 10, 20, 50, 100)),),
    "step_trend": (Rule("ema_trend", ema_trend_positions, (10, 20, 50, 100, 200, 400)),),
    "garch_walk": (Rule("ema_trend", ema_trend_positions, (10, 20, 50, 100, 200, 400)),
                   Rule("reversal", reversal_positions, (1, 2, 3, 5))),
    "file": (Rule("ema_trend", ema_trend_positions, (10, 20, 50, 100, 200, 400)),
             Rule("reversal", reversal_positions, (1, 2, 3, 5)),
             Rule("momentum", momentum_positions, (1, 2, 3, 5))),
}
"""The reference rules of each market kind; "file" is any real data file."""


def segment_metrics(close: np.ndarray, positions: np.ndarray, bars: tuple[int, int], cost_bps: float,
                    periods_per_year: float) -> dict[str, float]:
    """Metrics of holding positions[t] from bar t to t+1 for t in [bars[0], bars[1] - 1)."""
    first, last = bars
    result = backtest(close, positions[first:last - 1], first, cost_bps)
    return performance(result["net_returns"], result["positions"], result["cost_paid"], periods_per_year)


def choose_rule(kind: str, close: np.ndarray, train_bars: tuple[int, int], cost_bps: float,
                periods_per_year: float) -> tuple[str, np.ndarray]:
    """The reference rule and parameter with the best training-split Sharpe net of costs: (label, positions)."""
    candidates = ((f"{rule.name}({value})", rule.positions(close, value))
                  for rule in REFERENCE_RULES[kind] for value in rule.grid)
    return best_on_training(candidates, close, train_bars, cost_bps, periods_per_year)


def best_on_training(candidates: Iterable[tuple[str, np.ndarray]], close: np.ndarray, train_bars: tuple[int, int],
                     cost_bps: float, periods_per_year: float) -> tuple[str, np.ndarray]:
    """The (label, positions) candidate with the best training-split Sharpe net of costs (the first on ties):
    how every rule's parameters and the oracle's hysteresis are chosen."""
    best: tuple[float, str, np.ndarray] | None = None
    for label, positions in candidates:
        sharpe = segment_metrics(close, positions, train_bars, cost_bps, periods_per_year)["sharpe"]
        if best is None or sharpe > best[0]:
            best = (sharpe, label, positions)
    assert best is not None, "no candidate"
    return best[1], best[2]
