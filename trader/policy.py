"""The trainer's PPO policy: SB3's MlpPolicy, with rollout inference done in NumPy.

During rollout collection SB3 calls `policy(obs)` once per vector step under `torch.no_grad()`. For a
batch of 16 observations that call is a dozen tiny torch ops and a `Categorical` object, about 0.75 ms
here, far more than the batched environment's own step; the same MLP evaluated with NumPy on views of
the same weights takes less than half of it (0.35 ms). Training (gradients enabled) and every other method are SB3's
own, untouched, and the parameters, their shapes and the saved zip are those of `MlpPolicy`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel
from stable_baselines3.common.torch_layers import FlattenExtractor

ACTIVATIONS: dict[type, Callable[[np.ndarray], np.ndarray]] = {
    torch.nn.Tanh: np.tanh,
    torch.nn.ReLU: lambda x: np.maximum(x, 0.0, out=x),
}

Layers = list[tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray] | None]]


class RolloutMlpPolicy(ActorCriticPolicy):
    """`MlpPolicy` whose gradient-free `forward` runs in NumPy when it can (Discrete actions, CPU, flat
    observations, Tanh or ReLU); anything else, and everything with gradients, is SB3's code path.

    Actions are drawn from the same softmax distribution with torch's global generator (so SB3's seeding
    still fixes them); values and log-probabilities equal SB3's to float32 rounding (tested).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._numpy_layers: tuple[Layers, Layers] | None = None

    def forward(self, obs: torch.Tensor, deterministic: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if torch.is_grad_enabled() or not self._numpy_capable(obs):
            return super().forward(obs, deterministic)
        if self._numpy_layers is None:
            self._numpy_layers = (self._layers(self.mlp_extractor.policy_net, self.action_net),  # type: ignore[arg-type]
                                  self._layers(self.mlp_extractor.value_net, self.value_net))
        pi_layers, vf_layers = self._numpy_layers
        x = obs.reshape(obs.shape[0], -1).numpy()
        logits, values = _mlp(x, pi_layers), _mlp(x, vf_layers)
        shifted = logits - logits.max(axis=1, keepdims=True)
        weights = np.exp(shifted)  # unnormalised probabilities
        cdf = np.cumsum(weights, axis=1)
        if deterministic:
            actions = shifted.argmax(axis=1)
        else:  # inverse-CDF draw; torch's generator keeps SB3's seeding in charge
            uniform = torch.rand(len(x), dtype=torch.float64).numpy()[:, None] * cdf[:, -1:]
            actions = np.minimum((uniform >= cdf).sum(axis=1), logits.shape[1] - 1)
        chosen = shifted[np.arange(len(x)), actions] - np.log(cdf[:, -1])
        return torch.from_numpy(actions), torch.from_numpy(values), torch.from_numpy(chosen)

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        self._numpy_layers = None  # views are re-taken per rollout: cheap, and safe against replaced tensors

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._numpy_layers = None  # .to(device) and friends may swap the parameter tensors
        return super()._apply(fn, *args, **kwargs)

    def _numpy_capable(self, obs: torch.Tensor) -> bool:
        return (obs.device.type == "cpu" and obs.dtype == torch.float32 and self.share_features_extractor
                and isinstance(self.action_space, spaces.Discrete)
                and isinstance(self.features_extractor, FlattenExtractor)
                and self.activation_fn in ACTIVATIONS)

    def _layers(self, hidden: torch.nn.Sequential, head: torch.nn.Linear) -> Layers:
        """(weight.T, bias, activation) as NumPy views sharing memory with the torch parameters."""
        linears = [m for m in hidden if isinstance(m, torch.nn.Linear)] + [head]
        activation = ACTIVATIONS[self.activation_fn]
        return [(layer.weight.detach().numpy().T, layer.bias.detach().numpy(),
                 activation if i < len(linears) - 1 else None) for i, layer in enumerate(linears)]


def _mlp(x: np.ndarray, layers: Layers) -> np.ndarray:
    for weight_t, bias, activation in layers:
        x = x @ weight_t
        x += bias
        if activation is not None:
            x = activation(x)
    return x


# ---------------------------------------------------------------- deterministic actions of one policy or an ensemble

def actor_output(policy: ActorCriticPolicy, obs: torch.Tensor) -> np.ndarray:
    """The action net's output for a batch of observations, without gradients: logits (Discrete actions) or
    the Gaussian mean (Box). SB3's actor path, without `get_distribution` (it keeps the last distribution in
    a shared object, which threads would race on)."""
    with torch.no_grad():  # BaseModel's extract_features: the actor's features, shared extractor or not
        features = BaseModel.extract_features(policy, obs, policy.pi_features_extractor)
        return policy.action_net(policy.mlp_extractor.forward_actor(features)).cpu().numpy()


def combine_outputs(outputs: list[np.ndarray], discrete: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The deterministic action of the members whose actor outputs these are: (actions, probabilities).

    Discrete: each member's softmax probabilities, averaged over members, and their most probable action (for
    one member, SB3's deterministic action). Box: the mean of the members' Gaussian means (probabilities None;
    the caller clips to the action space, as SB3 does).
    """
    if not discrete:
        return np.mean(outputs, axis=0), None
    probabilities = np.mean([_softmax(o) for o in outputs], axis=0)
    return probabilities.argmax(axis=-1), probabilities


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
