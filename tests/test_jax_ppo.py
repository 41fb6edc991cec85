"""The JAX learner (trader.jax_ppo): SB3's PPO update to float32 rounding, and runs across learners."""

from __future__ import annotations

import copy
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from helpers import only_run, run_module, write_params
from trader.jax_ppo import JaxPPO, minibatch_order

N_STEPS, N_ENVS = 32, 2


class TinyEnv(gym.Env):
    """Seven random observations in [-1, 1] (seeded); the action space is the test's; reward 0, episodes of 50."""

    def __init__(self, action_space: gym.Space) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
        self.action_space = action_space
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._observation(), {}

    def step(self, action):
        self._t += 1
        return self._observation(), 0.0, self._t >= 50, False, {}

    def _observation(self) -> np.ndarray:
        return self.np_random.uniform(-1, 1, self.observation_space.shape).astype(np.float32)


ACTION_SPACES = {"discrete": gym.spaces.Discrete(3), "box": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)}


def model_pair(action_space: gym.Space, **kwargs) -> tuple[PPO, JaxPPO]:
    """SB3's PPO and JaxPPO with the same initial weights and the same fixed rollout buffer."""
    env = DummyVecEnv([lambda: TinyEnv(action_space)] * N_ENVS)
    settings = dict(n_steps=N_STEPS, seed=0, device="cpu", policy_kwargs={"net_arch": [16, 16]}) | kwargs
    sb3, ours = PPO("MlpPolicy", env, **settings), JaxPPO("MlpPolicy", env, **settings)
    ours.policy.load_state_dict(sb3.policy.state_dict())
    fill_buffer(sb3)
    ours.rollout_buffer = copy.deepcopy(sb3.rollout_buffer)
    for model in (sb3, ours):
        model.set_logger(configure(None, []))
    return sb3, ours


def fill_buffer(model: PPO) -> None:
    """A rollout of random observations with the policy's own actions, values and log-probabilities."""
    rng = np.random.default_rng(1)
    buffer = model.rollout_buffer
    obs = rng.uniform(-1, 1, (N_STEPS * N_ENVS, 7)).astype(np.float32)
    with torch.no_grad():
        actions, values, log_probs = model.policy(torch.as_tensor(obs))
    shape = (N_STEPS, N_ENVS)
    buffer.observations[:] = obs.reshape(*shape, 7)
    buffer.actions[:] = actions.numpy().reshape(*shape, -1)
    buffer.values[:] = values.numpy().reshape(shape)
    buffer.log_probs[:] = log_probs.numpy().reshape(shape)
    buffer.advantages[:] = rng.normal(0, 1, shape).astype(np.float32)
    buffer.returns[:] = buffer.values + buffer.advantages
    buffer.full = True


def train_both(sb3: PPO, ours: JaxPPO, updates: int = 1) -> None:
    for update in range(updates):
        for model in (sb3, ours):
            np.random.seed(100 + update)  # the same minibatch order for both
            model.train()


def assert_same_weights(sb3: PPO, ours: JaxPPO) -> None:
    theirs = dict(sb3.policy.named_parameters())
    for name, p in ours.policy.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), theirs[name].detach().numpy(), rtol=2e-5, atol=2e-6,
                                   err_msg=name)
    sb3_state, our_state = sb3.policy.optimizer.state_dict()["state"], ours.policy.optimizer.state_dict()["state"]
    for key, moments in sb3_state.items():
        assert int(moments["step"]) == int(our_state[key]["step"])
        for moment in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_allclose(our_state[key][moment].numpy(), moments[moment].numpy(), rtol=1e-4, atol=1e-7)


def assert_same_logs(sb3: PPO, ours: JaxPPO) -> None:
    theirs, mine = sb3.logger.name_to_value, ours.logger.name_to_value
    assert set(mine) == set(theirs)
    for key, value in theirs.items():
        assert mine[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


@pytest.mark.parametrize("action_space", ACTION_SPACES.values(), ids=ACTION_SPACES.keys())
def test_one_epoch_gives_sb3s_weights_adam_state_and_logs(action_space):
    # max_grad_norm small and a large learning rate: gradient clipping and ratio clipping both act.
    sb3, ours = model_pair(action_space, n_epochs=1, batch_size=16, learning_rate=3e-3, max_grad_norm=0.05)
    before = {n: p.detach().clone() for n, p in ours.policy.named_parameters()}
    train_both(sb3, ours)
    assert_same_weights(sb3, ours)
    assert_same_logs(sb3, ours)
    assert any(not torch.equal(before[n], p) for n, p in ours.policy.named_parameters())


@pytest.mark.parametrize("action_space", ACTION_SPACES.values(), ids=ACTION_SPACES.keys())
def test_several_epochs_and_updates_with_a_partial_minibatch_and_clipped_values_stay_equal(action_space):
    # 64 samples in batches of 24: SB3's last minibatch has 16; Adam's state carries across updates.
    sb3, ours = model_pair(action_space, n_epochs=3, batch_size=24, learning_rate=1e-2, clip_range_vf=0.1)
    train_both(sb3, ours)
    assert sb3.rollout_buffer.generator_ready  # SB3's get() flattened its buffer in place: ours reads that too
    ours.rollout_buffer = copy.deepcopy(sb3.rollout_buffer)
    train_both(sb3, ours)
    assert_same_weights(sb3, ours)
    assert_same_logs(sb3, ours)
    assert ours.logger.name_to_value["train/clip_fraction"] > 0  # the ratio clipping is exercised
    assert ours._n_updates == sb3._n_updates == 6


def test_target_kl_stops_where_sb3_stops_and_leaves_the_rng_as_sb3_does():
    sb3, ours = model_pair(ACTION_SPACES["discrete"], n_epochs=10, batch_size=16, learning_rate=3e-2, target_kl=0.002)
    draws = []
    for model in (sb3, ours):
        np.random.seed(7)
        model.train()
        draws.append(np.random.random())
    assert_same_weights(sb3, ours)
    assert_same_logs(sb3, ours)
    assert 1 <= ours._n_updates == sb3._n_updates < 10  # it did stop early
    assert draws[0] == draws[1]


class RewardingEnv(TinyEnv):
    """TinyEnv paying the first observation's sign times (action - 1): something to learn."""

    def reset(self, *, seed=None, options=None):
        self._obs, info = super().reset(seed=seed)
        return self._obs, info

    def step(self, action):
        reward = float(np.sign(self._obs[0]) * (int(action) - 1))
        self._obs, _, terminated, truncated, info = super().step(action)
        return self._obs, reward, terminated, truncated, info


def test_a_seeded_learn_gives_the_same_weights_under_either_learner():
    from trader.policy import RolloutMlpPolicy

    weights = []
    for algorithm in (PPO, JaxPPO):
        env = DummyVecEnv([lambda: RewardingEnv(ACTION_SPACES["discrete"])] * N_ENVS)
        model = algorithm(RolloutMlpPolicy, env, n_steps=N_STEPS, batch_size=16, n_epochs=4, seed=5, device="cpu",
                          policy_kwargs={"net_arch": [16, 16]})
        model.learn(total_timesteps=3 * N_STEPS * N_ENVS)
        weights.append({n: p.detach().numpy().copy() for n, p in model.policy.named_parameters()})
    for name, value in weights[0].items():
        np.testing.assert_allclose(weights[1][name], value, rtol=1e-4, atol=1e-5, err_msg=name)


def test_minibatch_order_is_the_rollout_buffers_permutation_padded():
    np.random.seed(3)
    expected = [np.random.permutation(10) for _ in range(2)]
    np.random.seed(3)
    indices, weights = minibatch_order(10, 4, 2)
    assert indices.shape == weights.shape == (6, 4)
    for epoch in range(2):
        got = indices[3 * epoch:3 * epoch + 3].ravel()
        np.testing.assert_array_equal(got[:10], expected[epoch])
        np.testing.assert_array_equal(weights[3 * epoch:3 * epoch + 3].ravel(), [1] * 10 + [0, 0])


def test_an_unsupported_policy_is_refused_naming_what_is_unsupported():
    env = DummyVecEnv([lambda: TinyEnv(gym.spaces.MultiBinary(3))])
    with pytest.raises(ValueError, match="action space MultiBinary"):
        JaxPPO("MlpPolicy", env, n_steps=8, batch_size=8, device="cpu")


def test_train_learner_is_validated_like_the_other_choices():
    from settings import ConfigError, params_from_dict

    assert params_from_dict({}).train.learner == "sb3"
    with pytest.raises(ConfigError, match=r"train.learner must be one of sb3, jax \(got 'torch'\)"):
        params_from_dict({"train": {"learner": "torch"}})


def learner_run(tmp_path, learner: str, *args: str):

    result = run_module("trader.train", *args, "--set", f"train.learner={learner}")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("first, then", [("jax", "sb3"), pytest.param("sb3", "jax", marks=pytest.mark.slow)])
def test_a_run_saved_under_one_learner_resumes_and_evaluates_under_the_other(tmp_path, first, then):
    import csv
    import json


    params = write_params(tmp_path)
    learner_run(tmp_path, first, "--params", str(params), "--timesteps", "256")
    run = only_run(tmp_path)
    assert json.loads((run / "run.json").read_text())["num_timesteps"] == 256
    result = learner_run(tmp_path, then, "--resume", str(run), "--timesteps", "512")
    assert "resuming from step_000000000256.zip" in result.stdout
    assert json.loads((run / "run.json").read_text())["num_timesteps"] == 512
    assert json.loads((run / "report.json").read_text())["test"]["agent"]["trades"] >= 0
    jax_logs = run / "logs" / ("from_step_0" if first == "jax" else "from_step_256") / "progress.csv"
    rows = list(csv.DictReader(jax_logs.open()))
    logged = [row for row in rows if row.get("train/approx_kl")]
    assert logged, rows
    for key in ("train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/clip_fraction",
                "train/loss", "train/explained_variance", "train/n_updates", "train/clip_range"):
        assert np.isfinite(float(logged[-1][key])), key

    again = run_module("trader.evaluate", str(run))
    assert again.returncode == 0, again.stderr[-2000:]


def test_one_learner_thread_keeps_xla_on_the_calling_thread_and_keeps_other_flags(monkeypatch):
    from trader.jax_ppo import limit_xla_threads

    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    limit_xla_threads(1)
    limit_xla_threads(1)
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false"
    monkeypatch.delenv("XLA_FLAGS")
    limit_xla_threads(2)
    assert "XLA_FLAGS" not in os.environ
