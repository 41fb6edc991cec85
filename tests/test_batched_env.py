"""BatchedTradingVecEnv equals N single TradingEnvs (as DummyVecEnv / SubprocVecEnv step them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from envs.batched import BatchedTradingVecEnv, BatchInfos
from envs.factory import make_env_fn, make_vec_env
from envs.rewards import REWARDS
from envs.spec import EnvSpec
from signals.store import write_synthetic_store

N_FEATURES = 3


@pytest.fixture(scope="module")
def store_root(tmp_path_factory) -> Path:
    """Two symbols of different lengths; CCC jumps x3 every 97 bars so that shorts get ruined (termination)."""
    root = tmp_path_factory.mktemp("batched_store")
    rng = np.random.default_rng(0)
    arrays, splits = {}, {}
    for symbol, n in (("AAA", 2000), ("CCC", 1300)):
        log_close = np.cumsum(rng.normal(0.0, 0.01, n))
        if symbol == "CCC":
            jumps = np.zeros(n)
            jumps[::97] = np.log(3.0)
            jumps[1::97] = -np.log(3.0)
            log_close += np.cumsum(jumps)
        feats = (np.tanh(rng.normal(size=(n, N_FEATURES))) * 4).astype(np.float32)
        arrays[symbol] = (feats, 100.0 * np.exp(log_close), np.arange(n, dtype=np.int64) * 86_400_000_000_000)
        a, b = int(n * 0.6), int(n * 0.8)
        splits[symbol] = {"train": (0, a), "validation": (a, b), "test": (b, n)}
    write_synthetic_store(root, arrays, splits, [f"f{i}" for i in range(N_FEATURES)])
    return root


def random_actions(mode: str, n_envs: int, n_steps: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if mode == "continuous":
        return list(rng.uniform(-1.3, 1.3, (n_steps, n_envs, 1)).astype(np.float32))
    return list(rng.integers(0, 3 if mode == "discrete" else 2, (n_steps, n_envs)))


def assert_same_step(step: int, expected, actual) -> int:
    """Compare one VecEnv step result; returns how many envs were done."""
    (obs_e, rew_e, done_e, infos_e), (obs_a, rew_a, done_a, infos_a) = expected, actual
    assert np.array_equal(obs_e, obs_a), f"observations differ at step {step}"
    assert rew_a.dtype == rew_e.dtype and np.array_equal(rew_e, rew_a), f"rewards differ at step {step}"
    assert np.array_equal(done_e, done_a), f"dones differ at step {step}"
    assert len(infos_e) == len(infos_a)
    for i, (info_e, info_a) in enumerate(zip(infos_e, infos_a)):
        info_e, info_a = dict(info_e), dict(info_a)
        term_e, term_a = info_e.pop("terminal_observation", None), info_a.pop("terminal_observation", None)
        assert (term_e is None) == (term_a is None), f"terminal_observation of env {i} at step {step}"
        if term_e is not None:
            assert np.array_equal(term_e, term_a)
        assert info_e == info_a, f"info of env {i} at step {step}"
    return int(done_e.sum())


CONFIGS = [
    {"episode_length": 40},
    {"episode_length": 25, "reward": "differential_sharpe", "dsr_eta": 0.05},
    {"episode_length": None, "drawdown_penalty": 0.7, "window": 3},
    {"episode_length": 60, "reward": "differential_sharpe", "drawdown_penalty": 0.2, "symbols": ["CCC"]},
    {"episode_length": 300},  # CCC's validation split has room for 259 steps: its episodes run the whole split
]


@pytest.mark.parametrize("mode", ["discrete", "long_only", "continuous"])
@pytest.mark.parametrize("config", CONFIGS, ids=["log", "dsr", "full-split-penalty", "one-symbol",
                                                 "a-split-shorter-than-an-episode"])
def test_batched_equals_single_envs(store_root, mode, config):
    n_envs, n_steps, seed = 7, 400, 123
    spec = EnvSpec(**{"window": 5, "action_mode": mode, "commission_bps": 2.0, "slippage_bps": 1.0, **config})
    dummy = DummyVecEnv([make_env_fn(store_root, "validation", spec, seed, rank) for rank in range(n_envs)])
    batched = BatchedTradingVecEnv(store_root, "validation", n_envs, spec)
    dummy.seed(seed)
    batched.seed(seed)
    assert np.array_equal(dummy.reset(), batched.reset())
    assert dummy.reset_infos == batched.reset_infos
    done = terminated = 0
    for step, actions in enumerate(random_actions(mode, n_envs, n_steps)):
        expected, actual = dummy.step(actions), batched.step(actions)
        done += assert_same_step(step, expected, actual)
        terminated += sum(bool(d) and not i["TimeLimit.truncated"] for d, i in zip(expected[2], expected[3]))
        assert dummy.reset_infos == batched.reset_infos
    assert done >= n_envs  # every environment went through at least one automatic reset
    if mode != "long_only" and config.get("symbols") == ["CCC"]:
        assert terminated > 0  # ruin (termination) was exercised too


@pytest.mark.parametrize("normalise", [True, False])
@pytest.mark.parametrize("reward", sorted(REWARDS))
def test_every_registered_reward_is_the_same_in_the_single_and_the_batched_env(store_root, reward, normalise):
    """Each reward's scalar form (TradingEnv) and array form (the batched env) give the same rewards, bit for bit,
    over several symbols (each with its own scale) and automatic resets."""
    n_envs, seed = 5, 7
    spec = EnvSpec(window=3, episode_length=35, reward=reward, normalise_reward=normalise, drawdown_penalty=0.3,
                   trade_penalty=1.5)
    dummy = DummyVecEnv([make_env_fn(store_root, "train", spec, seed, rank) for rank in range(n_envs)])
    batched = BatchedTradingVecEnv(store_root, "train", n_envs, spec)
    dummy.seed(seed)
    batched.seed(seed)
    assert np.array_equal(dummy.reset(), batched.reset())
    for step, actions in enumerate(random_actions("discrete", n_envs, 200)):
        assert_same_step(step, dummy.step(actions), batched.step(actions))


def test_batched_equals_subproc(store_root):
    spec = EnvSpec(window=4, episode_length=30)
    subproc = make_vec_env(store_root, "train", spec, n_envs=2, seed=9, vec_env="subproc")
    batched = make_vec_env(store_root, "train", spec, n_envs=2, seed=9, vec_env="batched")
    try:
        assert np.array_equal(subproc.reset(), batched.reset())
        for step, actions in enumerate(random_actions("discrete", 2, 100)):
            expected, actual = subproc.step(actions), batched.step(actions)
            # SubprocVecEnv passes the env's float64 rewards through; DummyVecEnv and the batched env give float32.
            expected = (expected[0], expected[1].astype(np.float32), *expected[2:])
            assert_same_step(step, expected, actual)
    finally:
        subproc.close()


def test_unseeded_reset_continues_each_generator(store_root):
    spec = EnvSpec(window=4, episode_length=30)
    dummy = DummyVecEnv([make_env_fn(store_root, "train", spec, None, rank) for rank in range(3)])
    batched = BatchedTradingVecEnv(store_root, "train", 3, spec)
    dummy.seed(5)
    batched.seed(5)
    dummy.reset(), batched.reset()
    assert np.array_equal(dummy.reset(), batched.reset())  # second reset: no seed, generators continue
    assert dummy.reset_infos == batched.reset_infos


def test_reset_options_reach_every_env(store_root):
    batched = BatchedTradingVecEnv(store_root, "train", 3, window=4, episode_length=30)
    batched.set_options({"symbol": "CCC", "start": 50})
    batched.reset()
    assert batched.get_attr("symbol") == ["CCC"] * 3 and batched.get_attr("bar") == [50] * 3
    batched.reset()  # options are used once
    assert len(set(batched.get_attr("bar"))) > 1


def test_batch_infos_behave_like_a_list(store_root):
    batched = BatchedTradingVecEnv(store_root, "train", 4, window=4, episode_length=2)
    batched.seed(0)
    batched.reset()
    _, _, _, infos = batched.step(np.array([2, 2, 0, 1]))
    assert isinstance(infos, BatchInfos) and len(infos) == 4
    assert infos[0] is infos[0] and infos[-1] is infos[3]
    infos[1]["extra"] = 1  # changes stick, as in a list of dicts
    assert infos[1]["extra"] == 1 and infos[1:3][0] is infos[1]
    assert [i["position"] for i in infos] == [1.0, 1.0, -1.0, 0.0]
    assert list(infos) == [infos[i] for i in range(4)]
    with pytest.raises(IndexError):
        infos[4]
    _, _, dones, infos = batched.step(np.array([1, 1, 1, 1]))
    assert dones.all() and all("terminal_observation" in i and i["TimeLimit.truncated"] for i in infos)


def test_ppo_trains_on_the_batched_env(store_root):
    venv = VecMonitor(make_vec_env(store_root, "train", EnvSpec(window=4, episode_length=16), n_envs=4, seed=0,
                                   vec_env="batched"))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    assert len(model.ep_info_buffer) > 0


def test_vec_env_interface_and_errors(store_root):
    batched = BatchedTradingVecEnv(store_root, "train", 2, window=4, episode_length=30)
    with pytest.raises(RuntimeError, match="reset"):
        batched.step(np.array([1, 1]))
    batched.reset()
    assert batched.env_is_wrapped(VecMonitor) == [False, False]
    assert batched.get_attr("equity") == [1.0, 1.0]
    batched.set_attr("some_setting", 3)
    assert batched.get_attr("some_setting", indices=[1]) == [3]
    with pytest.raises(ValueError, match="all"):
        batched.set_attr("some_setting", 4, indices=[0])
    with pytest.raises(NotImplementedError):
        batched.env_method("render")
    with pytest.raises(ValueError, match="train.n_envs"):
        BatchedTradingVecEnv(store_root, "train", 0)
    with pytest.raises(ValueError, match="env.window"):
        BatchedTradingVecEnv(store_root, "test", 2, window=5000)
