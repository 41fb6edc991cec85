"""TradingEnv: API checks, accounting on hand-made prices, no look-ahead, seeding, errors, memory."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs import accounting
from envs.factory import EnvFactory, make_env_fn, make_vec_env
from envs.spec import EnvSpec
from envs.trading_env import TradingEnv
from helpers import make_store, one_symbol_store, run_actions
from settings.schema import CostsConfig, EnvConfig
from signals.store import StoreError, open_store

MODES = ("discrete", "long_only", "continuous")
REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- API

@pytest.mark.parametrize("mode", MODES)
def test_gymnasium_check_env(store_root, mode):
    env = gym.make(envs.ENV_ID, store=store_root, split="train", action_mode=mode, window=8, episode_length=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        gym_check_env(env.unwrapped)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reward", ["log_return", "differential_sharpe"])
def test_sb3_check_env(store_root, mode, reward):
    env = TradingEnv(store_root, "validation", action_mode=mode, reward=reward, drawdown_penalty=0.5, window=8,
                     episode_length=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)


def test_registered_with_gymnasium(store_root):
    env = gym.make("trader/SignalTrading-v0", store=str(store_root), split="test")
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    assert env.action_space == gym.spaces.Discrete(3)
    assert obs.shape == (16 * 3 + 3,)
    obs, reward, terminated, truncated, info = env.step(2)
    assert set(info) == {"equity", "position", "cost", "total_cost", "trades", "turnover", "bar", "symbol"}
    assert info["position"] == 1.0 and info["trades"] == 1


@pytest.mark.parametrize("mode,space", [("discrete", gym.spaces.Discrete(3)), ("long_only", gym.spaces.Discrete(2)),
                                        ("continuous", gym.spaces.Box(-1.0, 1.0, (1,), np.float32))])
def test_action_spaces(store_root, mode, space):
    env = TradingEnv(store_root, action_mode=mode)
    assert env.action_space == space
    assert np.isfinite(env.observation_space.low).all() and np.isfinite(env.observation_space.high).all()


def test_observations_stay_inside_the_space(store_root):
    env = TradingEnv(store_root, "train", window=5, episode_length=None, action_mode="continuous")
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    truncated = False
    while not truncated:
        obs, _, _, truncated, _ = env.step(rng.uniform(-1.5, 1.5, 1).astype(np.float32))
        assert obs.dtype == np.float32 and env.observation_space.contains(obs)


# ---------------------------------------------------------------- accounting on hand-made prices

def test_known_actions_give_hand_computed_equity_costs_and_trades(tmp_path):
    close = [100.0, 110.0, 99.0, 99.0, 108.9, 98.01]
    env = TradingEnv(one_symbol_store(tmp_path, close), "train", window=1, episode_length=None,
                     commission_bps=5.0, half_spread_bps=3.0, slippage_bps=2.0,  # 10 bps per unit traded
                     normalise_reward=False)
    _, rewards, terms, truncs, infos = run_actions(env, [2, 2, 0, 1, 2])  # long, long, short, flat, long
    # By hand. Step 0: enter long (cost 0.001), price +10%. Step 1: hold, -10%. Step 2: long -> short
    # (|change| 2, cost 0.002), price flat. Step 3: short -> flat (0.001), +10% not earned. Step 4: flat ->
    # long (0.001), -10%.
    e1 = 1.0 * (1 - 0.001) * 1.1
    e2 = e1 * 0.9
    e3 = e2 * (1 - 0.002)
    e4 = e3 * (1 - 0.001)
    e5 = e4 * (1 - 0.001) * 0.9
    assert [i["equity"] for i in infos[1:]] == pytest.approx([e1, e2, e3, e4, e5], rel=1e-12, abs=0)
    assert e5 == pytest.approx(0.886553012764782, rel=1e-12)  # 1.0989 * 0.9 * 0.998 * 0.999 * 0.8991
    paid = [0.001 * 1.0, 0.0, 0.002 * e2, 0.001 * e3, 0.001 * e4]
    assert [i["cost"] for i in infos[1:]] == pytest.approx(paid, rel=1e-12, abs=1e-18)
    assert infos[-1]["total_cost"] == pytest.approx(sum(paid), rel=1e-12)
    assert [i["trades"] for i in infos] == [0, 1, 1, 2, 3, 4]
    assert [i["position"] for i in infos] == [0.0, 1.0, 1.0, -1.0, 0.0, 1.0]
    assert [i["bar"] for i in infos] == [0, 1, 2, 3, 4, 5]
    assert rewards == pytest.approx([math.log(e1), math.log(0.9), math.log(0.998), math.log(0.999),
                                     math.log(0.999 * 0.9)], rel=1e-12)
    assert sum(rewards) == pytest.approx(math.log(e5), rel=1e-12)
    assert terms == [False] * 5 and truncs == [False] * 4 + [True]


@pytest.mark.parametrize("mode,flat", [("discrete", 1), ("long_only", 0), ("continuous", np.zeros(1, np.float32))])
def test_flat_agent_earns_exactly_zero(store_root, mode, flat):
    env = TradingEnv(store_root, "train", action_mode=mode, episode_length=None, reward="log_return")
    _, rewards, _, truncs, infos = run_actions(env, [flat] * 10_000)
    assert truncs[-1]
    assert all(r == 0.0 for r in rewards)
    assert infos[-1]["equity"] == 1.0 and infos[-1]["total_cost"] == 0.0 and infos[-1]["trades"] == 0


def test_buy_and_hold_is_price_ratio_minus_one_entry_cost(store_root):
    env = TradingEnv(store_root, "validation", symbols=["AAA"], episode_length=None, window=7,
                     commission_bps=2.0, half_spread_bps=1.5, slippage_bps=0.5, normalise_reward=False)
    _, rewards, _, truncs, infos = run_actions(env, [2] * 10_000)
    close = env.setup.store.symbol("AAA").close
    start, stop = env.setup.store.symbol("AAA").split("validation")
    first, last = start, stop - 1  # the window reaches back before the split start
    assert truncs[-1] and infos[0]["bar"] == first and infos[-1]["bar"] == last
    entry_cost = 4.0 * 1e-4
    assert infos[-1]["equity"] == pytest.approx(close[last] / close[first] * (1 - entry_cost), rel=1e-12)
    assert infos[-1]["trades"] == 1 and infos[-1]["total_cost"] == entry_cost
    assert sum(rewards) == pytest.approx(math.log(infos[-1]["equity"]), rel=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_env_equals_accounting_backtest(store_root, mode):
    env = TradingEnv(store_root, "train", symbols=["BBB"], action_mode=mode, episode_length=None, window=4,
                     commission_bps=1.0, half_spread_bps=2.0, slippage_bps=0.5, normalise_reward=False)
    rng = np.random.default_rng(5)
    n = env.setup.layouts[0].n_steps
    if mode == "continuous":
        actions = list(rng.uniform(-1, 1, (n, 1)).astype(np.float32))
        positions = np.array([a[0] for a in actions], dtype=np.float64)
    else:
        table = np.array(envs.trading_env.ACTION_POSITIONS[mode])
        actions = list(rng.integers(0, len(table), n))
        positions = table[actions]
    _, rewards, _, truncs, infos = run_actions(env, actions)
    assert truncs[-1] and len(rewards) == n
    result = accounting.backtest(env.setup.store.symbol("BBB").close, positions, start=infos[0]["bar"],
                                 costs_bps=3.5)
    assert np.array_equal([i["equity"] for i in infos], result["equity"])  # bit for bit
    assert np.array_equal(rewards, result["log_returns"])
    assert np.array_equal([i["cost"] for i in infos[1:]], result["cost_paid"])
    assert np.array_equal([i["trades"] for i in infos[1:]], np.cumsum(result["trades"]))
    assert np.allclose([i["turnover"] for i in infos[1:]], np.cumsum(result["turnover"]), rtol=1e-12, atol=0)
    assert infos[-1]["total_cost"] == pytest.approx(result["cost_paid"].sum(), rel=1e-12)


def test_backtest_arrays():
    close = np.array([10.0, 11.0, 12.1, 10.89])
    result = accounting.backtest(close, [1.0, 1.0, -0.5], costs_bps=10.0)
    assert result["turnover"].tolist() == [1.0, 0.0, 1.5]
    assert result["trades"].tolist() == [1, 0, 1]
    assert result["costs"] == pytest.approx([0.001, 0.0, 0.0015])
    assert result["price_returns"] == pytest.approx([0.1, 0.1, -0.1])
    expected = np.cumprod([1.0, 0.999 * 1.1, 1.1, 0.9985 * 1.05])
    assert result["equity"] == pytest.approx(expected, rel=1e-12)
    assert result["net_returns"] == pytest.approx(expected[1:] / expected[:-1] - 1, rel=1e-12)
    assert result["drawdown"][-1] == 0.0
    with pytest.raises(ValueError, match="close"):
        accounting.backtest(close, [1.0] * 4)


# ---------------------------------------------------------------- time: no look-ahead, splits

@pytest.mark.parametrize("cut", [40, 41, 77])
def test_no_look_ahead(tmp_path, cut):
    """Changing prices and features after bar `cut` leaves every observation up to bar `cut` unchanged."""
    rng = np.random.default_rng(1)
    n, window = 120, 5
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    feats = (np.tanh(rng.normal(size=(n, 3))) * 4).astype(np.float32)
    later_close, later_feats = close.copy(), feats.copy()
    later_close[cut + 1:] *= np.exp(rng.normal(0, 0.1, n - cut - 1))
    later_feats[cut + 1:] = -later_feats[cut + 1:]
    splits = {"X": {"train": (0, n), "validation": (n, n), "test": (n, n)}}
    make_store(tmp_path / "a", {"X": n}, close={"X": close}, features={"X": feats}, splits=splits)
    make_store(tmp_path / "b", {"X": n}, close={"X": later_close}, features={"X": later_feats}, splits=splits)
    actions = [int(a) for a in rng.integers(0, 3, n)]
    for mode_actions, mode in ((actions, "discrete"), ([np.array([a - 1.0], np.float32) for a in actions],
                                                       "continuous")):
        runs = [run_actions(TradingEnv(tmp_path / r, "train", window=window, episode_length=None,
                                       action_mode=mode), mode_actions) for r in ("a", "b")]
        (obs_a, *_, infos_a), (obs_b, *_, infos_b) = runs
        bars = [i["bar"] for i in infos_a]
        seen = [k for k, bar in enumerate(bars) if bar <= cut]
        assert len(seen) == cut - window + 2
        for k in seen:
            assert np.array_equal(obs_a[k], obs_b[k]), f"observation of bar {bars[k]} changed"
        assert not np.array_equal(obs_a[seen[-1] + 1], obs_b[seen[-1] + 1])  # the test can see a change


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_evaluation_episode_covers_the_split_from_its_first_decision_bar(store_root, split):
    window = 6
    env = TradingEnv(store_root, split, symbols=["BBB"], window=window, episode_length=None)
    data = env.setup.store.symbol("BBB")
    start, stop = data.split(split)
    first = start + window - 1 if split == "train" else start  # later splits' windows reach back into the past
    obs, info = env.reset(seed=0)
    assert info["bar"] == first
    assert np.array_equal(obs[:window * 3], data.features[first - window + 1:first + 1].ravel())
    assert obs[window * 3:].tolist() == [0.0, 0.0, 0.0]
    _, _, _, truncs, infos = run_actions(env, [1] * 10_000)
    assert truncs[-1] and sum(truncs) == 1 and infos[-1]["bar"] == stop - 1
    assert len(truncs) == stop - 1 - first


@pytest.mark.parametrize("window, first", [(8, 100), (60, 109)])
def test_the_first_window_may_reach_back_before_its_split_but_never_before_the_training_split(tmp_path, window,
                                                                                             first):
    """Bars before the training split are warm-up (invalid features): no observation reads them."""
    n = 300
    feats = np.tile(np.arange(n, dtype=np.float32)[:, None] / n, (1, 3))
    feats[:50] = np.nan  # the warm-up: any observation reading it would not be finite
    make_store(tmp_path, {"X": n}, features={"X": feats},
               splits={"X": {"train": (50, 100), "validation": (100, 200), "test": (200, n)}})
    cases = [("validation", first), ("test", 200)] + ([("train", 50 + window - 1)] if window < 50 else [])
    for split, expected in cases:
        env = TradingEnv(tmp_path, split, window=window, episode_length=None)
        obs, info = env.reset(seed=0)
        assert info["bar"] == expected and np.isfinite(obs).all()
        assert obs[0] == feats[expected - window + 1, 0]


def test_random_starts_stay_inside_the_split(store_root):
    length = 100
    env = TradingEnv(store_root, "validation", window=8, episode_length=length)
    starts = {"AAA": set(), "BBB": set()}
    env.reset(seed=11)
    for _ in range(60):
        obs, info = env.reset()
        start, stop = env.setup.store.symbol(info["symbol"]).split("validation")
        assert start + 7 <= info["bar"] <= stop - 1 - length
        starts[info["symbol"]].add(info["bar"])
    assert len(starts["AAA"]) > 10 and len(starts["BBB"]) > 10  # both symbols, many starts
    _, _, terms, truncs, infos = run_actions(env, [0] * 1000)
    assert len(truncs) == length and truncs[-1] and not any(terms)


def test_reset_options_fix_symbol_and_start(store_root):
    env = TradingEnv(store_root, "train", window=8, episode_length=50)
    obs, info = env.reset(seed=0, options={"symbol": "BBB", "start": 100})
    assert info["symbol"] == "BBB" and info["bar"] == 100
    with pytest.raises(ValueError, match="options"):
        env.reset(options={"symbol": "ZZZ"})
    with pytest.raises(ValueError, match="options"):
        env.reset(options={"start": 3})


def test_time_in_position_and_unrealised_return(tmp_path):
    close = [100.0, 110.0, 121.0, 121.0, 121.0]
    env = TradingEnv(one_symbol_store(tmp_path, close), "train", window=1, episode_length=None)
    observations, *_ = run_actions(env, [2, 2, 1, 1])
    state = [obs[-3:].astype(np.float64) for obs in observations]
    assert state[0].tolist() == [0.0, 0.0, 0.0]
    u1, u2 = 0.1, 0.21  # long from 100: +10 %, then +21 %
    assert state[1] == pytest.approx([1.0, 1 / 33, u1 / (0.05 + u1)], rel=1e-6)
    assert state[2] == pytest.approx([1.0, 2 / 34, u2 / (0.05 + u2)], rel=1e-6)
    assert state[3] == pytest.approx([0.0, 1 / 33, 0.0], abs=1e-7)
    assert state[4] == pytest.approx([0.0, 2 / 34, 0.0], abs=1e-7)


# ---------------------------------------------------------------- seeding

def test_seeded_determinism(store_root):
    def trajectory(seed):
        env = TradingEnv(store_root, "train", episode_length=40, action_mode="continuous")
        env.action_space.seed(seed)
        out = []
        obs, info = env.reset(seed=seed)
        out.append((obs, info))
        for _ in range(200):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            out.append((obs, reward, info))
            if terminated or truncated:
                out.append(env.reset())
        return out

    def same(a, b):
        return all(all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(p, q))
                   for p, q in zip(a, b))

    assert same(trajectory(3), trajectory(3))
    assert not same(trajectory(3), trajectory(4))


def test_randomness_only_from_np_random(store_root):
    env = TradingEnv(store_root, "train", episode_length=40)
    env.reset(seed=9)
    first = [env.reset()[1]["bar"] for _ in range(10)]
    np.random.seed(0)  # the global generator must not matter
    env.reset(seed=9)
    np.random.seed(1)
    assert [env.reset()[1]["bar"] for _ in range(10)] == first


# ---------------------------------------------------------------- errors

def test_missing_store_names_the_build_command(tmp_path):
    with pytest.raises(StoreError, match="signals.build"):
        TradingEnv(tmp_path / "nowhere")


def test_stale_store_names_the_build_command(store_root):
    with pytest.raises(StoreError, match="stale.*signals.build"):
        TradingEnv(store_root, expected_key="another-key")
    with pytest.raises(StoreError, match="stale.*signals.build"):
        TradingEnv(open_store(store_root), expected_key="another-key")
    assert TradingEnv(open_store(store_root), expected_key="synthetic").reset(seed=0)[1]["equity"] == 1.0


def test_window_larger_than_split(store_root):
    message = r"env\.window = 3000 .*'test' split of BBB.*split\.train and split\.validation"
    with pytest.raises(ValueError, match=message):  # BBB has 3000 bars: no window of 3000 leaves a step
        TradingEnv(store_root, "test", window=3000, episode_length=None)


def test_a_split_shorter_than_an_episode_runs_whole(store_root):
    """BBB's validation split (600 bars) is shorter than the episode, AAA's (800) is not: a short file trains on
    episodes of its whole split, the others as before, and the note names the short symbol only."""
    env = TradingEnv(store_root, "validation", window=16, episode_length=700)
    assert env.setup.short_episode_notes() == [
        "BBB: the 'validation' split has room for 599 steps, fewer than env.episode_length = 700: each of its "
        "episodes runs the whole split"]
    lengths: dict[str, set[int]] = {"AAA": set(), "BBB": set()}
    starts: dict[str, set[int]] = {"AAA": set(), "BBB": set()}
    env.reset(seed=3)
    for _ in range(12):
        _, _, terms, truncs, infos = run_actions(env, [1] * 1000)
        symbol = infos[0]["symbol"]
        lengths[symbol].add(len(truncs))
        starts[symbol].add(infos[0]["bar"])
        assert truncs[-1] and not any(terms)
    bbb_first = env.setup.store.symbol("BBB").split("validation")[0]
    assert lengths == {"AAA": {700}, "BBB": {599}} and starts["BBB"] == {bbb_first} and len(starts["AAA"]) > 1
    assert TradingEnv(store_root, "validation", window=16, episode_length=500).setup.short_episode_notes() == []


@pytest.mark.parametrize("kwargs,key", [
    ({"window": 0}, "env.window"), ({"action_mode": "hold"}, "env.action_mode"), ({"reward": "pnl"}, "env.reward"),
    ({"episode_length": 0}, "env.episode_length"), ({"dsr_eta": 1.5}, "env.dsr_eta"),
    ({"drawdown_penalty": -1.0}, "env.drawdown_penalty"), ({"commission_bps": -1.0}, "costs.commission_bps"),
    ({"half_spread_bps": 6000.0}, "costs.half_spread_bps"), ({"split": "holdout"}, "split"),
    ({"symbols": ["ZZZ"]}, "ZZZ"), ({"symbols": []}, "symbols"),
])
def test_bad_settings_name_the_setting(store_root, kwargs, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        TradingEnv(store_root, **kwargs)


def test_step_before_reset_raises(store_root):
    with pytest.raises(RuntimeError, match="reset"):
        TradingEnv(store_root).step(1)


# ---------------------------------------------------------------- factory

def test_env_spec_from_config():
    spec = EnvSpec.from_config(EnvConfig(window=8, reward="differential_sharpe", episode_length=64),
                               CostsConfig(commission_bps=0.5, slippage_bps=2.0))
    assert spec == EnvSpec(window=8, action_mode="discrete", reward="differential_sharpe", normalise_reward=True,
                           trade_penalty=1.0, drawdown_penalty=0.0, dsr_eta=0.01, episode_length=64,
                           commission_bps=0.5, half_spread_bps=1.0, slippage_bps=2.0, symbols=None)
    assert EnvSpec.from_config(EnvConfig(), CostsConfig(), episode_length=None).episode_length is None
    with pytest.raises(TypeError):
        EnvSpec().replace(windw=3)


def test_a_spec_and_keyword_settings_build_the_same_env(store_root):
    spec = EnvSpec(window=4, episode_length=20, reward="differential_sharpe")
    by_spec, by_keywords = TradingEnv(store_root, "train", spec), TradingEnv(store_root, "train", window=4,
                                                                               episode_length=20,
                                                                               reward="differential_sharpe")
    assert by_spec.setup.spec == by_keywords.setup.spec
    assert TradingEnv(store_root, "train", spec, window=6).setup.spec.window == 6  # keywords on top of the spec
    assert np.array_equal(by_spec.reset(seed=3)[0], by_keywords.reset(seed=3)[0])


def test_make_env_fn_is_picklable_and_carries_only_the_path(store_root):
    fn = make_env_fn(store_root, "train", EnvSpec(window=4), seed=5, rank=2)
    data = pickle.dumps(fn)
    assert len(data) < 1000 and isinstance(fn, EnvFactory) and not fn.cap_threads
    env_a, env_b = pickle.loads(data)(), fn()
    assert env_a.reset()[1] == env_b.reset()[1]  # seeded 5 + 2 at creation, then the same stream
    assert env_a.reset(seed=7)[1] == TradingEnv(store_root, window=4).reset(seed=7)[1]


def test_make_vec_env_dummy_and_errors(store_root):
    venv = make_vec_env(store_root, "train", EnvSpec(window=4, episode_length=20), n_envs=3, seed=1,
                        vec_env="dummy")
    obs = venv.reset()
    assert obs.shape == (3, 4 * 3 + 3)
    assert venv.get_attr("bar") == [TradingEnv(store_root, window=4, episode_length=20).reset(seed=1 + i)[1]["bar"]
                                    for i in range(3)]
    with pytest.raises(ValueError, match="train.vec_env"):
        make_vec_env(store_root, "train", EnvSpec(), n_envs=2, seed=0, vec_env="threads")
    with pytest.raises(ValueError, match="env.window"):
        make_vec_env(store_root, "test", EnvSpec(window=3000), n_envs=2, seed=0, vec_env="subproc")


def test_worker_factory_caps_threads_before_building_the_env(store_root):
    code = textwrap.dedent(f"""
        import os, torch
        from envs.factory import make_env_fn
        from envs.spec import EnvSpec
        assert make_env_fn({str(store_root)!r}, "train", EnvSpec(), 0, 0).cap_threads is False  # the main process
        make_env_fn({str(store_root)!r}, "train", EnvSpec(), 0, 0, cap_threads=True)()
        print(torch.get_num_threads(), os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"],
              os.environ["OPENBLAS_NUM_THREADS"], os.environ["NUMBA_NUM_THREADS"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"}, check=True)
    assert out.stdout.split() == ["1"] * 5


# ---------------------------------------------------------------- memory

MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, psutil
    from envs.factory import make_vec_env
    from envs.spec import EnvSpec

    def measure(root):
        venv = make_vec_env(root, "train", EnvSpec(window=16, episode_length=256), n_envs=3, seed=0,
                            vec_env="subproc", start_method="forkserver")
        venv.reset()
        rng = np.random.default_rng(0)
        for _ in range(1500):
            venv.step(rng.integers(0, 3, 3))
        info = [psutil.Process(p.pid).memory_full_info() for p in venv.processes]
        venv.close()
        return [{"uss": m.uss, "pss": m.pss, "rss": m.rss} for m in info]

    if __name__ == "__main__":
        print(json.dumps({"small": measure(sys.argv[1]), "big": measure(sys.argv[2])}))
""")


@pytest.mark.slow
def test_subproc_workers_share_the_store(tmp_path):
    """Worker memory grows by the interpreter's cost, not by the store's size (>= 200 MB)."""
    make_store(tmp_path / "small", {"S": 2000}, n_features=4)
    n_bars, n_features = 420_000, 128  # 215 MB of features
    rng = np.random.default_rng(0)
    feats = np.empty((n_bars, n_features), dtype=np.float32)
    for lo in range(0, n_bars, 50_000):  # chunks: keep this test's own memory modest
        feats[lo:lo + 50_000] = rng.uniform(-4, 4, (min(50_000, n_bars - lo), n_features))
    make_store(tmp_path / "big", {"B": n_bars}, features={"B": feats})
    del feats
    store_bytes = sum(f.stat().st_size for f in (tmp_path / "big").rglob("*.npy"))
    assert store_bytes >= 200e6
    script = tmp_path / "measure.py"
    script.write_text(MEMORY_SCRIPT)
    # A fresh interpreter: its fork server starts here, not in whatever state this test session left.
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "small"), str(tmp_path / "big")],
                         capture_output=True, text=True, cwd=REPO, timeout=300, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for worker in result["big"]:
        assert worker["uss"] < 0.5 * store_bytes, (worker, store_bytes)
    # The big store's workers hold a few MiB more: mapped store pages that only one process maps count in
    # its USS (the kernel maps whole page-cache folios, up to 2 MiB, around each bar read).
    growth = max(b["uss"] for b in result["big"]) - max(s["uss"] for s in result["small"])
    assert growth < 0.1 * store_bytes, (result, store_bytes)
