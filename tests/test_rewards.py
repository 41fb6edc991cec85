"""The rewards (envs/rewards.py) as TradingEnv gives them: log return in volatility units, the differential
Sharpe ratio with seeded moments, the trade and drawdown penalties, ruin. (tests/test_batched_env.py checks
that the batched env gives the same rewards for every registered reward.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs import accounting
from envs.rewards import REWARDS
from envs.trading_env import TradingEnv
from helpers import one_symbol_store, run_actions
from settings.choices import REWARDS as REWARD_NAMES


def test_differential_sharpe_follows_moody_saffell(store_root):
    eta = 0.1
    env = TradingEnv(store_root, "train", symbols=["AAA"], reward="differential_sharpe", dsr_eta=eta,
                     episode_length=None)
    plain = TradingEnv(store_root, "train", symbols=["AAA"], episode_length=None, normalise_reward=False)
    actions = [2, 2, 0, 0, 2, 1, 2, 0] * 5
    _, dsr, *_ = run_actions(env, actions)
    _, log_returns, *_ = run_actions(plain, actions)
    close = np.asarray(env.setup.store.symbol("AAA").close)
    start, stop = env.setup.store.symbol("AAA").split("train")
    scale = np.diff(np.log(close[start:stop])).std()
    a, b = 0.0, scale * scale  # seeded as if fully invested, from the training split's variance
    for step, (r, d) in enumerate(zip(log_returns, dsr)):
        variance = b - a * a
        expected = 0.0 if variance <= 1e-12 else (b * (r - a) - 0.5 * a * (r * r - b)) / variance ** 1.5
        assert d == pytest.approx(expected, rel=1e-9, abs=1e-12), step
        a, b = a + eta * (r - a), b + eta * (r * r - b)
    assert dsr[0] == pytest.approx(log_returns[0] / scale, rel=1e-9)


def test_differential_sharpe_starts_bounded_and_no_few_steps_dominate(store_root):
    """Moments started at zero gave |D| ~ 1e4 on the first steps and half an episode's squared reward in its
    first 20 of 512 steps; seeded moments keep D of the order of a return in volatility units."""
    env = TradingEnv(store_root, "train", reward="differential_sharpe", episode_length=512, window=4)
    rng = np.random.default_rng(0)
    for episode in range(5):
        _, rewards, *_ = run_actions(env, list(rng.integers(0, 3, 512)), seed=episode)
        squared = np.square(rewards)
        assert np.max(np.abs(rewards[:20])) < 20.0, np.max(np.abs(rewards[:20]))
        assert squared[:20].sum() < 0.2 * squared.sum(), (squared[:20].sum(), squared.sum())


def test_normalised_log_return_is_the_log_return_over_the_training_volatility(store_root):
    actions = [2, 2, 0, 1, 2, 0, 0, 1] * 20
    for split in ("train", "validation"):
        scaled = TradingEnv(store_root, split, symbols=["BBB"], episode_length=None, window=4)
        plain = TradingEnv(store_root, split, symbols=["BBB"], episode_length=None, window=4,
                           normalise_reward=False)
        _, rewards, *_ = run_actions(scaled, actions)
        _, log_returns, *_ = run_actions(plain, actions)
        close = np.asarray(plain.setup.store.symbol("BBB").close)
        start, stop = plain.setup.store.symbol("BBB").split("train")  # the training split, whatever the env's
        scale = np.diff(np.log(close[start:stop])).std()
        assert 0.005 < scale < 0.02  # the store's random walk has 1 % per bar
        assert np.allclose(np.asarray(rewards) * scale, log_returns, rtol=1e-12, atol=0)


def test_drawdown_penalty_subtracts_increase_of_drawdown(tmp_path):
    close = [100.0, 90.0, 81.0, 89.1, 72.9, 100.0]
    env = TradingEnv(one_symbol_store(tmp_path, close), "train", window=1, episode_length=None,
                     drawdown_penalty=2.0, commission_bps=0.0, half_spread_bps=0.0, normalise_reward=False)
    _, rewards, *_ = run_actions(env, [2] * 5)
    equity = np.array(close) / 100.0
    drawdown = 1 - equity / np.maximum.accumulate(equity)
    expected = [math.log(equity[i + 1] / equity[i]) - 2.0 * max(0.0, drawdown[i + 1] - drawdown[i])
                for i in range(5)]
    assert rewards == pytest.approx(expected, rel=1e-12)


def test_ruin_terminates(tmp_path):
    env = TradingEnv(one_symbol_store(tmp_path, [100.0, 100.0, 250.0, 250.0]), "train", window=1,
                     episode_length=None, normalise_reward=False)
    _, rewards, terms, truncs, infos = run_actions(env, [1, 0])  # flat, then short through a +150 % bar
    assert terms == [False, True] and truncs == [False, False]
    assert rewards[-1] == math.log(accounting.MIN_GROWTH)
    assert infos[-1]["equity"] < 0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(1)


def test_trade_penalty_charges_the_reward_not_the_equity(store_root):
    actions = [2, 2, 0, 1, 1, 2, 0, 0] * 10
    penalised = TradingEnv(store_root, "train", symbols=["AAA"], episode_length=None, window=4, trade_penalty=2.0)
    plain = TradingEnv(store_root, "train", symbols=["AAA"], episode_length=None, window=4)
    _, rewards, _, _, infos = run_actions(penalised, actions)
    _, plain_rewards, _, _, plain_infos = run_actions(plain, actions)
    assert [i["equity"] for i in infos] == [i["equity"] for i in plain_infos]  # costs are paid once, in full
    scale = penalised.setup.layouts[0].reward_scale
    changes = np.abs(np.diff([0.0] + [i["position"] for i in infos[1:]]))
    expected = np.asarray(plain_rewards) - 2.0 * penalised.setup.cost_rate * changes / scale
    assert np.allclose(rewards, expected, rtol=1e-12, atol=1e-15)


def test_the_configs_reward_names_are_the_registrys():
    assert tuple(REWARDS) == REWARD_NAMES  # settings cannot import the registry, so the names are written twice
