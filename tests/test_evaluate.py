"""The report's accounting is the environment's: same bars, same costs, same equity."""

from __future__ import annotations

import numpy as np
import pytest

from settings import Params, replace_path
from signals.store import write_synthetic_store
from trader.evaluate import evaluate_symbol, policy_positions, strategy_metrics


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    features = np.tanh(rng.normal(size=(n, 3))).astype(np.float32)
    times = np.arange(n, dtype=np.int64) * 86_400 * 10**9
    splits = {"SYN": {"train": (0, 200), "validation": (210, 300), "test": (310, n)}}
    return write_synthetic_store(tmp_path / "store", {"SYN": (features, close, times)}, splits, ["a", "b", "c"])


@pytest.mark.parametrize("action_mode", ["discrete", "long_only", "continuous"])
def test_report_metrics_equal_the_environment(store, action_mode):
    from envs.spec import EnvSpec
    from envs.trading_env import TradingEnv

    params = replace_path(Params(), {"env.window": 4, "env.action_mode": action_mode, "costs.slippage_bps": 3.0})

    def predict(obs: np.ndarray):
        """A policy that trades often: its action follows the sign of the newest feature."""
        x = float(obs[-4])
        if action_mode == "continuous":
            return np.array([x], dtype=np.float32)
        return int(x > 0) + (1 if action_mode == "discrete" and x > 0.5 else 0)

    first_bar, positions = policy_positions(predict, store, params, "test", "SYN")
    env = TradingEnv(store, "test", EnvSpec.from_config(params.env, params.costs, episode_length=None))
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(predict(obs))
        done = terminated or truncated
    data = store.symbol("SYN")
    metrics, equity = strategy_metrics(np.asarray(data.close), first_bar, positions, params.costs.total_bps,
                                       data.periods_per_year)
    assert first_bar == 310 and len(positions) == 400 - 1 - first_bar  # the window reaches back before 310
    assert metrics["trades"] == info["trades"] > 5
    assert metrics["costs_paid"] == pytest.approx(info["total_cost"], rel=1e-12)
    assert equity[-1] == pytest.approx(info["equity"], rel=1e-12)
    assert metrics["total_return"] == pytest.approx(info["equity"] - 1.0, rel=1e-12)


def test_every_strategy_is_scored_on_the_agents_bars(store):
    params = replace_path(Params(), {"env.window": 4, "train.random_baseline_seeds": 3})
    result, curves, returns = evaluate_symbol(lambda obs: 2, store, params, "test", "SYN")
    assert result["bars"] == [310, 400]
    assert {len(c[1]) for c in curves.values()} == {400 - 310}
    # Always long is buy-and-hold: the agent's first entry and the baseline's pay the same cost.
    assert result["agent"] == result["baselines"]["buy_and_hold"]
    assert result["baselines"]["flat"]["total_return"] == 0.0 and result["baselines"]["flat"]["costs_paid"] == 0.0
    assert result["agent_costs"]["0x"]["costs_paid"] == 0.0
    assert result["agent_costs"]["2x"]["costs_paid"] > result["agent_costs"]["1x"]["costs_paid"]
    assert set(returns) == {"agent", "buy_and_hold", "flat", "best_signal", "random"}
    assert np.array_equal(returns["agent"], returns["buy_and_hold"]) and not returns["flat"].any()
