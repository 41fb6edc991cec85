"""trader.tune.space: the pure search space, trial budgets, the common purge, storage choices."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import FixedTrial

from helpers import FIXED, ROOT, tiny_params
from settings import ConfigError, TuneConfig, load_params, replace_path
from trader.tune import runner
from trader.tune import storage as tune_storage
from trader.tune.space import sample_params, trial_params


# ---------------------------------------------------------------- the search space


def test_sample_params_is_a_pure_function_of_the_trial():
    space = load_params(ROOT / "parameters.toml").tune
    first = sample_params(FixedTrial(FIXED), space, full=True)
    assert first == sample_params(FixedTrial(dict(FIXED)), space, full=True)
    assert first == {
        "ppo.learning_rate": 3e-4, "ppo.n_steps": 128, "ppo.batch_size": 128,  # capped at n_steps
        "ppo.n_epochs": 4, "ppo.gamma": 1.0 - 0.01, "ppo.gae_lambda": 1.0 - 0.05, "ppo.clip_range": 0.2,
        "ppo.ent_coef": 1e-3, "ppo.net_arch": [32, 32], "env.window": 8, "env.reward": "differential_sharpe",
        "env.trade_penalty": 1.5, "signals.keep_per_family": 2, "signals.max_correlation": 0.8, "signals.horizon": 2}
    fast = sample_params(FixedTrial(FIXED), space, full=False)
    assert fast == {k: v for k, v in first.items() if not k.startswith("signals.")}


def test_sample_params_respects_ranges_and_log_scales():
    space = load_params(ROOT / "parameters.toml").tune
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(60):
        trial = study.ask()
        values = sample_params(trial, space, full=True)
        replace_path(load_params(ROOT / "parameters.toml"), values)  # every draw is a valid tree
        assert space.learning_rate[0] <= values["ppo.learning_rate"] <= space.learning_rate[1]
        assert space.ent_coef[0] <= values["ppo.ent_coef"] <= space.ent_coef[1]
        for key, name in (("ppo.gamma", "one_minus_gamma"), ("ppo.gae_lambda", "one_minus_gae_lambda")):
            low, high = getattr(space, name)
            assert low * (1 - 1e-9) <= 1 - values[key] <= high * (1 + 1e-9)
        for key, (low, high) in (("ppo.n_steps", space.n_steps_pow2), ("ppo.net_arch", space.net_width_pow2)):
            value = values[key][0] if key == "ppo.net_arch" else values[key]
            assert value in [2 ** p for p in range(low, high + 1)]
        low, high = space.batch_size_pow2
        assert values["ppo.batch_size"] in [2 ** p for p in range(low, high + 1)] \
            or values["ppo.batch_size"] == values["ppo.n_steps"]
        assert values["ppo.batch_size"] <= values["ppo.n_steps"]
        assert len(values["ppo.net_arch"]) == 2 and values["ppo.net_arch"][0] == values["ppo.net_arch"][1]
        assert space.n_epochs[0] <= values["ppo.n_epochs"] <= space.n_epochs[1]
        assert values["ppo.clip_range"] in space.clip_range and values["env.window"] in space.window
        assert values["env.reward"] in space.reward and values["signals.horizon"] in space.horizon
        assert space.trade_penalty[0] <= values["env.trade_penalty"] <= space.trade_penalty[1]
        assert space.keep_per_family[0] <= values["signals.keep_per_family"] <= space.keep_per_family[1]
        assert space.max_correlation[0] <= values["signals.max_correlation"] <= space.max_correlation[1]
        for name in ("learning_rate", "ent_coef", "one_minus_gamma", "one_minus_gae_lambda"):
            assert trial.distributions[name].log, name
        study.tell(trial, 0.0)
    lrs = np.log10([t.params["learning_rate"] for t in study.trials])
    assert lrs.min() < -4 and lrs.max() > -3  # spread over decades, as a log scale gives


def test_fast_cuts_never_raise_a_budget(tmp_path):
    params = tiny_params(tmp_path, **{"tune.fast.n_envs": 4, "tune.fast.n_epochs": 2})
    cut = trial_params(params, {"ppo.n_epochs": 7}, fast=True)
    assert (cut.train.n_envs, cut.ppo.n_epochs, cut.train.timesteps) == (2, 2, 128)
    assert cut.train.vec_env == "batched"  # a few envs: stepped in-process
    full = trial_params(params, {"ppo.n_epochs": 7}, fast=False)
    assert (full.train.n_envs, full.ppo.n_epochs, full.train.timesteps) == (2, 7, params.tune.timesteps)


def test_full_mode_trials_purge_the_longest_searched_horizon_whatever_their_own(tmp_path):
    """signals.build purges lookback + horizon + extra_embargo bars after each cut: with the extra embargo
    topped up, every horizon gives the same purge, never less than its own horizon needs."""
    params = tiny_params(tmp_path, **{"tune.horizon": [1, 2, 4], "split.extra_embargo": 3})
    purges = set()
    for horizon in (1, 2, 4):
        trained = trial_params(params, {"signals.horizon": horizon}, fast=False)
        assert trained.signals.horizon == horizon and trained.split.extra_embargo >= 3
        purges.add(trained.signals.horizon + trained.split.extra_embargo)
    assert purges == {4 + 3}
    assert trial_params(params, {"ppo.n_epochs": 2}, fast=True).split.extra_embargo == 3  # no horizon searched


def test_quota_split_is_exact():
    for iterations in range(1, 12):
        for jobs in range(1, 6):
            quota = runner.split_quota(iterations, jobs)
            assert sum(quota) == iterations and min(quota) >= 1 and max(quota) - min(quota) <= 1


def test_storage_choices(tmp_path):
    from optuna.storages import JournalStorage, RDBStorage

    journal = tune_storage.open_storage(str(tmp_path / "x" / "s.log"))
    assert isinstance(journal, JournalStorage)
    rdb = tune_storage.open_storage(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(rdb, RDBStorage) and rdb.heartbeat_interval == TuneConfig().heartbeat_s
    with pytest.raises(ConfigError, match=r"\.log"):
        tune_storage.open_storage(str(tmp_path / "s.db"))
    assert tune_storage.storage_spec(tiny_params(tmp_path)) == str(tmp_path / "tune" / "tiny.log")
    assert tune_storage.masked("postgresql://trader:secret@host:5432/db") == "postgresql://trader:***@host:5432/db"
    with pytest.raises(ConfigError, match="cannot open it") as error:  # no server there
        tune_storage.open_storage("postgresql://trader:secret@127.0.0.1:9/trader")
    assert "secret" not in str(error.value)
