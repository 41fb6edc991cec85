"""The search space (one pure function of the trial) and what a trial trains with.

`sample_params` draws dotted-key overrides; `trial_params` turns them into the tree a trial trains with
(the trial budget: fast-mode cuts or `tune.timesteps`; in full mode the common purge that keeps every
trial's validation bars where they are). Nothing here opens a file or a study.
"""

from __future__ import annotations

import functools
from typing import Any

import optuna

from settings import Params, TuneConfig, replace_path

BUDGET_KEYS = ("train.timesteps", "train.n_envs", "ppo.n_epochs", "train.vec_env")
"""The values a trial budget may set: what best_params.toml keeps at the run's values, not the trial's."""


def sample_params(trial: optuna.trial.BaseTrial, space: TuneConfig, full: bool) -> dict[str, Any]:
    """Dotted-key overrides drawn from `trial` within the ranges of `space`; a pure function of the trial.

    `trial` is a live trial or a `FixedTrial` (rebuilding a finished trial's values from its parameters).

    Learning rate, entropy coefficient, 1 - gamma and 1 - GAE lambda on log scales; n_steps, batch size
    and the width of the two hidden layers as powers of two (batch size capped at n_steps, so a rollout
    always splits into whole minibatches); epochs, clip range, observation window and reward. Full mode
    adds the signal selection: variants kept per family, correlation threshold and scoring horizon.
    """
    n_steps = 2 ** trial.suggest_int("n_steps_pow2", *space.n_steps_pow2)
    batch_size = 2 ** trial.suggest_int("batch_size_pow2", *space.batch_size_pow2)
    width = 2 ** trial.suggest_int("net_width_pow2", *space.net_width_pow2)
    values: dict[str, Any] = {
        "ppo.learning_rate": trial.suggest_float("learning_rate", *space.learning_rate, log=True),
        "ppo.n_steps": n_steps,
        "ppo.batch_size": min(batch_size, n_steps),
        "ppo.n_epochs": trial.suggest_int("n_epochs", *space.n_epochs),
        "ppo.gamma": 1.0 - trial.suggest_float("one_minus_gamma", *space.one_minus_gamma, log=True),
        "ppo.gae_lambda": 1.0 - trial.suggest_float("one_minus_gae_lambda", *space.one_minus_gae_lambda, log=True),
        "ppo.clip_range": trial.suggest_categorical("clip_range", space.clip_range),
        "ppo.ent_coef": trial.suggest_float("ent_coef", *space.ent_coef, log=True),
        "ppo.net_arch": [width, width],
        "env.window": trial.suggest_categorical("window", space.window),
        "env.reward": trial.suggest_categorical("reward", space.reward),
        "env.trade_penalty": trial.suggest_float("trade_penalty", *space.trade_penalty),
    }
    if full:
        values["signals.keep_per_family"] = trial.suggest_int("keep_per_family", *space.keep_per_family)
        values["signals.max_correlation"] = trial.suggest_float("max_correlation", *space.max_correlation)
        values["signals.horizon"] = trial.suggest_categorical("horizon", space.horizon)
    return values


def trial_budget(params: Params, fast: bool) -> dict[str, Any]:
    """What a trial trains for: full mode `tune.timesteps`; fast mode cuts N_ENVS, epochs and timesteps.

    Fast mode also steps its few environments in this process (`tune.fast.vec_env`, default batched):
    every vectorisation gives the same episodes, and with two or so environments worker processes
    cost more in pipe traffic than they save.
    """
    if not fast:
        return {"train.timesteps": params.tune.timesteps}
    cut = params.tune.fast
    return {"train.timesteps": min(params.tune.timesteps, cut.timesteps),
            "train.n_envs": min(params.train.n_envs, cut.n_envs),
            "ppo.n_epochs": min(params.ppo.n_epochs, cut.n_epochs),
            "train.vec_env": cut.vec_env}


def common_purge(base: Params, overrides: dict[str, Any]) -> dict[str, Any]:
    """Full mode: `split.extra_embargo` that gives every trial store the purge of the longest searched horizon.

    `signals.build` purges `longest lookback + signals.horizon + split.extra_embargo` bars after each
    cut, so a trial's own horizon would move the first validation bar, and trials with different
    horizons would be scored on different bars. Topping the extra embargo up by (longest horizon -
    this horizon) keeps the purge, and so the validation bars, the same for every trial; the purge
    never falls below what the trial's own horizon needs. Nothing to do when the horizon is not searched.
    """
    if "signals.horizon" not in overrides:
        return {}
    horizon = int(overrides["signals.horizon"])
    longest = max([horizon, *base.tune.horizon])
    return {"split.extra_embargo": base.split.extra_embargo + longest - horizon}


def trial_params(base: Params, overrides: dict[str, Any], fast: bool) -> Params:
    """The tree one trial trains with: base, the sampled overrides, the common purge, then the trial budget.

    The budget comes last: fast cuts win over the sampled values (a cut never raises a budget).
    """
    sampled = {**overrides, **common_purge(base, overrides)}
    budget = trial_budget(replace_path(base, sampled), fast)
    return replace_path(base, {**sampled, **budget})


def dotted(params: Params, key: str) -> Any:
    """The value at a dotted key of the tree (`ppo.n_epochs`)."""
    return functools.reduce(getattr, key.split("."), params)


def budget_changes(kept: Params, budget: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{key: (value in `kept`, value the trial trained with)} for each budget value that differs."""
    return {key: (dotted(kept, key), value) for key, value in budget.items() if dotted(kept, key) != value}
