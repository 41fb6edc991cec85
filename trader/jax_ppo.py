"""PPO whose update runs as one jitted JAX program (`train.learner = "jax"`).

SB3's `PPO.train()` runs each minibatch as a few dozen small torch ops with a host sync per logged value;
with SB3's default 10 epochs that update takes 73-97 % of a whole PPO run at N = 16 and 48 envs here
(benchmarks/RESULTS.md). `JaxPPO` keeps everything of SB3's PPO but `train()`: rollouts, callbacks,
logger, saving and loading are SB3's own. Its `train()`:

1. reads the weights and the Adam state from the torch policy and its optimizer (their one home
   between updates: checkpoints, the NumPy rollout policy and SB3's learner all see them there);
2. draws SB3's minibatch order: one `np.random.permutation` per epoch from NumPy's global generator,
   as `RolloutBuffer.get` does, so a seeded run shuffles identically under either learner;
3. runs every epoch x minibatch step in one `jit` (`lax.scan`): SB3's clipped surrogate, value loss
   (optionally clipped), entropy, per-minibatch advantage normalisation, torch's gradient-norm
   clipping, Adam (optax) with the torch optimizer's betas and epsilon (SB3 sets 1e-5), and the
   target-KL early stop as a mask (the stopping minibatch is logged, not applied, as in SB3);
4. writes the new weights and Adam state back into the torch tensors in place, once, and logs SB3's
   `train/*` values.

A checkpoint is an ordinary SB3 zip with the optimizer state in it, so a run saved under one learner
loads, evaluates and resumes under the other. Supported: `ActorCriticPolicy` MLPs (MlpPolicy and
trader.policy.RolloutMlpPolicy) on flat Box observations, Tanh or ReLU, Discrete or Box actions, no
gSDE; anything else is refused at construction, naming what is unsupported.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.utils import explained_variance

Params = dict[str, jax.Array]

# Compiled updates of this process by (code path, argument shapes): the tuner's many models of one shape
# compile once. clear_compiled() empties it (the benchmark does, so that every run pays its compilation).
_COMPILED: dict[tuple, Any] = {}

ACTIVATIONS: dict[type, Callable[[jax.Array], jax.Array]] = {torch.nn.Tanh: jnp.tanh, torch.nn.ReLU: jax.nn.relu}
LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


def limit_xla_threads(threads: int) -> None:
    """With `threads` = 1, keep XLA's CPU kernels on the calling thread, as the learner's torch and BLAS are.

    XLA's CPU backend otherwise splits large ops over an Eigen pool with a thread per core, whose
    threads would take cores from the env workers. XLA has no flag for a pool of another size, so
    `threads` > 1 leaves XLA as it is. XLA reads XLA_FLAGS once, when JAX first starts a backend;
    call this at the start of the process (trader.train.configure_learner does).
    """
    flag = "--xla_cpu_multi_thread_eigen"
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and flag not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {flag}=false".strip()


# ---------------------------------------------------------------- the network, as SB3 builds it

class Layout(NamedTuple):
    """Parameter names of the policy (pi) and value (vf) MLPs, hidden layers then head, in torch's layout."""

    pi: tuple[tuple[str, str], ...]
    vf: tuple[tuple[str, str], ...]
    activation: Callable[[jax.Array], jax.Array]
    discrete: bool


def policy_layout(policy: Any) -> Layout:  # an SB3 ActorCriticPolicy (its submodules are untyped attributes)
    """The layer names of an SB3 ActorCriticPolicy MLP; ValueError naming what this learner cannot run."""
    problems = []
    if not isinstance(policy.observation_space, spaces.Box):
        problems.append(f"observation space {policy.observation_space} (a Box is needed)")
    if not isinstance(policy.action_space, (spaces.Discrete, spaces.Box)):
        problems.append(f"action space {policy.action_space} (Discrete or Box)")
    if not isinstance(policy.features_extractor, FlattenExtractor) or not policy.share_features_extractor:
        problems.append("a features extractor other than one shared FlattenExtractor")
    if policy.activation_fn not in ACTIVATIONS:
        problems.append(f"activation {policy.activation_fn.__name__} (Tanh or ReLU)")
    if getattr(policy, "use_sde", False):
        problems.append("gSDE")
    if problems:
        raise ValueError("train.learner = jax does not support " + "; ".join(problems) + "; use learner = sb3")
    names = {id(p): n for n, p in policy.named_parameters()}

    def chain(hidden: torch.nn.Sequential, head: torch.nn.Linear) -> tuple[tuple[str, str], ...]:
        linears = [m for m in hidden if isinstance(m, torch.nn.Linear)] + [head]
        return tuple((names[id(m.weight)], names[id(m.bias)]) for m in linears)

    return Layout(chain(policy.mlp_extractor.policy_net, policy.action_net),
                  chain(policy.mlp_extractor.value_net, policy.value_net),
                  ACTIVATIONS[policy.activation_fn], isinstance(policy.action_space, spaces.Discrete))


def _mlp(params: Params, layers: tuple[tuple[str, str], ...], x: jax.Array, activation: Callable) -> jax.Array:
    for i, (weight, bias) in enumerate(layers):
        x = x @ params[weight].T + params[bias]
        if i < len(layers) - 1:
            x = activation(x)
    return x


def evaluate_actions(params: Params, layout: Layout, obs: jax.Array, actions: jax.Array
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(values, log_prob, entropy) per sample: SB3's `ActorCriticPolicy.evaluate_actions`."""
    x = obs.reshape(obs.shape[0], -1)
    values = _mlp(params, layout.vf, x, layout.activation)[:, 0]
    out = _mlp(params, layout.pi, x, layout.activation)
    if layout.discrete:  # Categorical(logits)
        log_p = jax.nn.log_softmax(out)
        log_prob = jnp.take_along_axis(log_p, actions.reshape(-1, 1).astype(jnp.int32), axis=1)[:, 0]
        return values, log_prob, -(jnp.exp(log_p) * log_p).sum(axis=1)
    log_std = jnp.broadcast_to(params["log_std"], out.shape)  # DiagGaussian, state-independent std
    actions = actions.reshape(out.shape)
    log_prob = (-((actions - out) ** 2) / (2 * jnp.exp(2 * log_std)) - log_std - LOG_SQRT_2PI).sum(axis=1)
    return values, log_prob, (0.5 + LOG_SQRT_2PI + log_std).sum(axis=1)


# ---------------------------------------------------------------- one minibatch

class Hyper(NamedTuple):
    """Per-update scalars, traced (a schedule changes them without recompiling)."""

    learning_rate: jax.Array
    clip_range: jax.Array
    clip_range_vf: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    max_grad_norm: jax.Array
    target_kl: jax.Array


class Static(NamedTuple):
    """Choices fixed for a model: they select code paths, so a change compiles anew."""

    layout: Layout
    normalize_advantage: bool
    clip_vf: bool
    use_target_kl: bool
    b1: float
    b2: float
    eps: float


def _wmean(x: jax.Array, w: jax.Array) -> jax.Array:
    return (x * w).sum() / w.sum()


def minibatch_loss(params: Params, batch: dict[str, jax.Array], hp: Hyper, static: Static
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """SB3's PPO loss on one minibatch; `batch["w"]` is 1 for real samples, 0 for padding."""
    w = batch["w"]
    values, log_prob, entropy = evaluate_actions(params, static.layout, batch["obs"], batch["actions"])
    advantages = batch["advantages"]
    count = w.sum()
    if static.normalize_advantage:  # torch's std is the unbiased one; SB3 skips a batch of one
        mean = _wmean(advantages, w)
        std = jnp.sqrt(((advantages - mean) ** 2 * w).sum() / jnp.maximum(count - 1, 1))
        advantages = jnp.where(count > 1, (advantages - mean) / (std + 1e-8), advantages)
    log_ratio = log_prob - batch["old_log_prob"]
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1 - hp.clip_range, 1 + hp.clip_range)
    policy_loss = -_wmean(jnp.minimum(advantages * ratio, advantages * clipped), w)
    values_pred = values
    if static.clip_vf:
        old = batch["old_values"]
        values_pred = old + jnp.clip(values - old, -hp.clip_range_vf, hp.clip_range_vf)
    value_loss = _wmean((batch["returns"] - values_pred) ** 2, w)
    entropy_loss = -_wmean(entropy, w)
    loss = policy_loss + hp.ent_coef * entropy_loss + hp.vf_coef * value_loss
    stats = {"policy_gradient_loss": policy_loss, "value_loss": value_loss, "entropy_loss": entropy_loss,
             "clip_fraction": _wmean((jnp.abs(ratio - 1) > hp.clip_range).astype(jnp.float32), w),
             "approx_kl": jax.lax.stop_gradient(_wmean(ratio - 1 - log_ratio, w)), "loss": loss}
    return loss, stats


def clip_by_global_norm(grads: Params, max_norm: jax.Array) -> Params:
    """torch.nn.utils.clip_grad_norm_: scale by min(1, max_norm / (norm + 1e-6))."""
    norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
    scale = jnp.minimum(max_norm / (norm + 1e-6), 1.0)
    return jax.tree_util.tree_map(lambda g: g * scale, grads)


# ---------------------------------------------------------------- the whole update

def make_update(static: Static) -> Callable[..., Any]:
    """The jitted update: (params, adam, data, indices, weights, hp) -> (params, adam, per-minibatch stats).

    `data` holds the rollout buffer's arrays as SB3 stores them, (n_steps, n_envs, ...); they are
    flattened env-major, as `RolloutBuffer.swap_and_flatten` does, so SB3's permutation indexes them.
    `indices` and `weights` are (epochs x minibatches, batch_size): SB3's order, padded with weight 0.
    """
    adam = optax.scale_by_adam(b1=static.b1, b2=static.b2, eps=static.eps)

    def update(params: Params, opt_state: Any, data: dict[str, jax.Array], indices: jax.Array,
               weights: jax.Array, hp: Hyper) -> tuple[Params, Any, dict[str, jax.Array]]:
        flat = {k: v.swapaxes(0, 1).reshape(v.shape[0] * v.shape[1], *v.shape[2:]) for k, v in data.items()}

        def step(carry: tuple, minibatch: tuple) -> tuple[tuple, dict[str, jax.Array]]:
            params, opt_state, stopped = carry
            idx, w = minibatch
            batch = {name: array[idx] for name, array in flat.items()} | {"w": w}
            grads, stats = jax.grad(minibatch_loss, has_aux=True)(params, batch, hp, static)
            stop_now = (~stopped & (stats["approx_kl"] > 1.5 * hp.target_kl)) if static.use_target_kl else False
            updates, new_opt = adam.update(clip_by_global_norm(grads, hp.max_grad_norm), opt_state)
            new_params = jax.tree_util.tree_map(lambda p, u: p - hp.learning_rate * u, params, updates)
            if static.use_target_kl:  # a stopped update keeps its weights (the scan runs on, masked)
                apply = ~(stopped | stop_now)
                new_params, new_opt = jax.tree_util.tree_map(lambda a, b: jnp.where(apply, a, b),
                                                             (new_params, new_opt), (params, opt_state))
            stats["recorded"] = ~stopped  # SB3 logs the minibatch that trips target_kl, then stops
            return (new_params, new_opt, stopped | stop_now), stats

        (params, opt_state, _), stats = jax.lax.scan(step, (params, opt_state, jnp.asarray(False)),
                                                     (indices, weights))
        return params, opt_state, stats

    return jax.jit(update)


def clear_compiled() -> None:
    """Forget this process's compiled updates: the next update of each shape compiles again."""
    _COMPILED.clear()


def minibatch_order(n: int, batch_size: int, n_epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """SB3's minibatch indices for `n_epochs` epochs, drawn as RolloutBuffer.get draws them, padded to full batches.

    Returns (indices, weights), each (n_epochs * ceil(n / batch_size), batch_size); padding has weight 0.
    """
    per_epoch = -(-n // batch_size)
    padded = per_epoch * batch_size
    indices = np.zeros((n_epochs, padded), dtype=np.int32)
    weights = np.zeros((n_epochs, padded), dtype=np.float32)
    for epoch in range(n_epochs):
        indices[epoch, :n] = np.random.permutation(n)
        weights[epoch, :n] = 1.0
    return indices.reshape(-1, batch_size), weights.reshape(-1, batch_size)


# ---------------------------------------------------------------- the torch side: the weights' home

def torch_adam(policy: Any) -> torch.optim.Optimizer:  # an SB3 policy: `optimizer` is an untyped attribute
    """The policy's optimizer, checked to be one this learner reproduces (plain Adam, one param group)."""
    optimizer = policy.optimizer
    group = optimizer.param_groups[0]
    plain = (type(optimizer) is torch.optim.Adam and len(optimizer.param_groups) == 1 and not group["weight_decay"]
             and not group["amsgrad"] and not group["maximize"])
    if not plain:
        raise ValueError("train.learner = jax reproduces plain Adam (one parameter group, no weight decay, "
                         f"amsgrad or maximize); the policy has {optimizer!r}; use learner = sb3")
    return optimizer


def read_weights(policy: torch.nn.Module) -> tuple[Params, optax.ScaleByAdamState]:
    """The policy's parameters and Adam moments as JAX arrays (zero moments before the first update)."""
    state = torch_adam(policy).state
    params, mu, nu, count = {}, {}, {}, 0
    for name, p in policy.named_parameters():
        params[name] = jnp.asarray(p.detach().cpu().numpy())
        moments = state.get(p)
        if moments:
            mu[name] = jnp.asarray(moments["exp_avg"].cpu().numpy())
            nu[name] = jnp.asarray(moments["exp_avg_sq"].cpu().numpy())
            count = int(moments["step"])
        else:
            mu[name] = nu[name] = jnp.zeros(p.shape, jnp.float32)
    return params, optax.ScaleByAdamState(count=jnp.asarray(count, jnp.int32), mu=mu, nu=nu)


def write_weights(policy: torch.nn.Module, params: Params, adam: optax.ScaleByAdamState) -> None:
    """Copy the new parameters and Adam moments into the torch tensors in place (views on them stay valid)."""
    state = torch_adam(policy).state
    count = int(adam.count)
    for name, p in policy.named_parameters():
        moments = state[p]
        if not moments:  # torch's own initial state, as its first step() would create it
            moments.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        _copy_into(p.data, params[name])
        _copy_into(moments["exp_avg"], adam.mu[name])
        _copy_into(moments["exp_avg_sq"], adam.nu[name])
        moments["step"].fill_(count)


def _copy_into(tensor: torch.Tensor, array: jax.Array) -> None:
    if tensor.device.type == "cpu":
        tensor.numpy()[...] = np.asarray(array)
    else:
        tensor.copy_(torch.as_tensor(np.array(array), device=tensor.device))


# ---------------------------------------------------------------- the algorithm

class JaxPPO(PPO):
    """SB3's PPO with `train()` as one jitted JAX update; every argument is PPO's.

    `jax_compile_seconds` accumulates the time this model spent compiling its update (once per process,
    code path and rollout shape); it is included in the wall time of whatever called `learn()`.
    """

    def _setup_model(self) -> None:
        super()._setup_model()
        self._layout = policy_layout(self.policy)
        torch_adam(self.policy)
        self.jax_compile_seconds = 0.0

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_layout", "jax_compile_seconds"]

    def train(self) -> None:
        """One PPO update of the current rollout buffer (see the module docstring)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        progress = self._current_progress_remaining
        clip_range = float(self.clip_range(progress))  # type: ignore[operator]  # a schedule after _setup_model
        clip_range_vf = None if self.clip_range_vf is None else float(self.clip_range_vf(progress))  # type: ignore[operator]
        n = self.rollout_buffer.buffer_size * self.rollout_buffer.n_envs
        rng_state = np.random.get_state()
        indices, weights = minibatch_order(n, self.batch_size, self.n_epochs)
        params, adam = read_weights(self.policy)
        args = (params, adam, self._buffer_arrays(), jnp.asarray(indices), jnp.asarray(weights),
                self._hyper(clip_range, clip_range_vf))
        params, adam, stats = self._compiled(clip_range_vf is not None, args)(*args)
        write_weights(self.policy, params, adam)
        epochs_run = self._log(jax.device_get(stats), clip_range, clip_range_vf)
        if epochs_run < self.n_epochs:  # SB3 draws a permutation only per epoch begun: leave the RNG as it would
            np.random.set_state(rng_state)
            minibatch_order(n, self.batch_size, epochs_run)

    def _buffer_arrays(self) -> dict[str, jax.Array]:
        """The rollout buffer as (n_steps, n_envs, ...) arrays (a buffer already flattened by `get` as (1, n, ...))."""
        buffer = self.rollout_buffer
        arrays = {"obs": buffer.observations, "actions": buffer.actions, "old_values": buffer.values,
                  "old_log_prob": buffer.log_probs, "advantages": buffer.advantages, "returns": buffer.returns}
        if buffer.generator_ready:  # flattened by an earlier get(): env-major already, so one "step" of n envs
            n = buffer.buffer_size * buffer.n_envs
            tails = {"obs": tuple(buffer.obs_shape), "actions": (buffer.action_dim,)}
            arrays = {k: v.reshape(1, n, *tails.get(k, ())) for k, v in arrays.items()}
        return {k: jnp.asarray(v, jnp.float32) for k, v in arrays.items()}

    def _hyper(self, clip_range: float, clip_range_vf: float | None) -> Hyper:
        lr = self.policy.optimizer.param_groups[0]["lr"]
        target = math.inf if self.target_kl is None else self.target_kl
        return Hyper(*(jnp.asarray(v, jnp.float32) for v in (lr, clip_range, clip_range_vf or 0.0, self.ent_coef,
                                                             self.vf_coef, self.max_grad_norm, target)))

    def _compiled(self, clip_vf: bool, args: tuple) -> Any:
        """The update compiled for these shapes and code paths (timed: the first call per shape compiles)."""
        group = self.policy.optimizer.param_groups[0]
        static = Static(self._layout, bool(self.normalize_advantage), clip_vf, self.target_kl is not None,
                        float(group["betas"][0]), float(group["betas"][1]), float(group["eps"]))
        key = (static, str(jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), args)))
        if key not in _COMPILED:
            started = time.perf_counter()
            update = make_update(static)  # a jax.jit-wrapped function: it has .lower
            _COMPILED[key] = update.lower(*args).compile()  # type: ignore[attr-defined]
            self.jax_compile_seconds += time.perf_counter() - started
        return _COMPILED[key]

    def _log(self, stats: dict[str, np.ndarray], clip_range: float, clip_range_vf: float | None) -> int:
        """Record SB3's train/* values; returns the epochs begun (all of them unless target_kl stopped it)."""
        recorded = np.asarray(stats.pop("recorded"), bool)
        per_epoch = recorded.reshape(self.n_epochs, -1)
        epochs_run = int(per_epoch.any(axis=1).sum())
        self._n_updates += epochs_run
        for key in ("entropy_loss", "policy_gradient_loss", "value_loss"):
            self.logger.record(f"train/{key}", float(np.mean(stats[key][recorded].astype(np.float64))))
        last_epoch = stats["approx_kl"].reshape(self.n_epochs, -1)[epochs_run - 1][per_epoch[epochs_run - 1]]
        self.logger.record("train/approx_kl", float(np.mean(last_epoch.astype(np.float64))))
        self.logger.record("train/clip_fraction", float(np.mean(stats["clip_fraction"][recorded].astype(np.float64))))
        self.logger.record("train/loss", float(stats["loss"][recorded][-1]))
        buffer = self.rollout_buffer
        self.logger.record("train/explained_variance",
                           explained_variance(buffer.values.flatten(), buffer.returns.flatten()))
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", torch.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
        return epochs_run
