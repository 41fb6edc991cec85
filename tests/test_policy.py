"""The trainer's policy: SB3's MlpPolicy with NumPy rollout inference giving SB3's numbers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from trader.policy import RolloutMlpPolicy

OBS = gym.spaces.Box(-1.0, 1.0, (37,), np.float32)


def make_policy(action_space: gym.Space, **kwargs) -> RolloutMlpPolicy:
    torch.manual_seed(0)
    return RolloutMlpPolicy(OBS, action_space, lambda _: 3e-4, **kwargs)


def observations(n: int = 64) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (n, OBS.shape[0])).astype(np.float32))


@pytest.mark.parametrize("n_actions", [2, 3])
@pytest.mark.parametrize("policy_kwargs", [{}, {"net_arch": [32]}, {"activation_fn": torch.nn.ReLU},
                                           {"net_arch": {"pi": [16, 8], "vf": [24]}}])
def test_values_and_log_probs_equal_sb3s(n_actions, policy_kwargs):
    policy = make_policy(gym.spaces.Discrete(n_actions), **policy_kwargs)
    obs = observations()
    with torch.no_grad():
        actions, values, log_probs = policy(obs)
        sb3_values, sb3_log_probs, _ = ActorCriticPolicy.evaluate_actions(policy, obs, actions)
        sb3_mode, _, _ = ActorCriticPolicy.forward(policy, obs, deterministic=True)
        mode, _, _ = policy(obs, deterministic=True)
    assert actions.dtype == torch.int64 and actions.shape == (len(obs),)
    assert values.shape == (len(obs), 1) and log_probs.shape == (len(obs),)
    np.testing.assert_allclose(values.numpy(), sb3_values.numpy(), atol=1e-5)
    np.testing.assert_allclose(log_probs.numpy(), sb3_log_probs.numpy(), atol=1e-5)
    np.testing.assert_array_equal(mode.numpy(), sb3_mode.numpy())


def test_sampled_actions_follow_the_policys_distribution():
    policy = make_policy(gym.spaces.Discrete(3))
    obs = observations(1).repeat(20_000, 1)
    with torch.no_grad():
        actions, _, _ = policy(obs)
        probs = ActorCriticPolicy.get_distribution(policy, obs[:1]).distribution.probs[0].numpy()
    frequencies = np.bincount(actions.numpy(), minlength=3) / len(actions)
    np.testing.assert_allclose(frequencies, probs, atol=0.015)  # about 4 standard errors at n = 20,000


def test_sampling_is_seeded_by_torch():
    policy = make_policy(gym.spaces.Discrete(3))
    obs = observations()
    draws = []
    for _ in range(2):
        torch.manual_seed(7)
        with torch.no_grad():
            draws.append(policy(obs)[0].numpy())
    np.testing.assert_array_equal(*draws)


def test_weights_changed_by_an_update_are_seen_at_once():
    policy = make_policy(gym.spaces.Discrete(3))
    obs = observations()
    with torch.no_grad():
        before = policy(obs)[1].numpy().copy()
        policy.value_net.bias += 1.0  # in place, as the optimiser writes
        after = policy(obs)[1].numpy()
    np.testing.assert_allclose(after, before + 1.0, atol=1e-5)


def test_with_gradients_or_continuous_actions_it_is_sb3s_forward():
    policy = make_policy(gym.spaces.Discrete(3))
    _, values, log_probs = policy(observations())
    assert values.requires_grad and log_probs.requires_grad  # training goes through SB3's code
    continuous = make_policy(gym.spaces.Box(-1.0, 1.0, (1,), np.float32))
    with torch.no_grad():
        actions, values, _ = continuous(observations())
    assert actions.shape == (64, 1) and values.shape == (64, 1)


def test_an_ensembles_discrete_action_is_the_most_probable_on_average_not_the_majority_vote():
    from trader.policy import combine_outputs

    # member 0 is sure of action 2, members 1 and 2 lean a little to action 0: the mean probability picks 2
    logits = [np.log(np.array([[0.01, 0.01, 0.98]])), np.log(np.array([[0.40, 0.30, 0.30]])),
              np.log(np.array([[0.40, 0.30, 0.30]]))]
    action, probabilities = combine_outputs(logits, discrete=True)
    np.testing.assert_allclose(probabilities, [[0.27, 0.2033333, 0.5266667]], atol=1e-6)
    assert action.tolist() == [2]
    alone, p = combine_outputs(logits[1:2], discrete=True)  # one member: SB3's argmax of its logits
    assert alone.tolist() == [0] and np.isclose(p.sum(), 1.0)


def test_an_ensembles_continuous_action_is_the_mean_of_the_members_means():
    from trader.policy import combine_outputs

    means = [np.array([[0.9]]), np.array([[-0.3]]), np.array([[0.6]])]
    action, probabilities = combine_outputs(means, discrete=False)
    np.testing.assert_allclose(action, [[0.4]])
    assert probabilities is None
