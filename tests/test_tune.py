"""trader.tune: a pure search space, fast mode on the store as it is, no peeking at the test split,
crashed workers, several worker processes on one study (journal file and PostgreSQL), best_params.toml.

Every study here runs on a tiny synthetic store (2 symbols x 600 bars, 4 features) whose TEST split is
poisoned with NaN prices and features: a study that read it would fail or prune its trials.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import psutil
import pytest
from optuna.trial import FixedTrial, TrialState

from helpers import FIXED, TUNE_SPLITS, load, run_quiet, synthetic_store, tiny_params
from settings import Params, load_params, replace_path, to_toml
from signals.build import store_cache_key
from common.files import sha256_file
from trader.tune import objective, summary
from trader.tune.__main__ import main as tune_main
from trader.tune.space import sample_params


# ---------------------------------------------------------------- fixtures

def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, sha256_file(p)) for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def fake_build(monkeypatch) -> list[Params]:
    """signals.build.build replaced by a synthetic store written where it is asked for; records each call."""
    import signals.build
    from signals.store import open_store

    calls: list[Params] = []

    def build(trial_params: Params, **kwargs: object):
        calls.append(trial_params)
        synthetic_store(trial_params)
        return open_store(trial_params.build.out, expected_key=store_cache_key(trial_params))

    monkeypatch.setattr(signals.build, "build", build)
    return calls


# ---------------------------------------------------------------- fast mode and the store

def test_fast_mode_never_builds_and_leaves_the_store_untouched(tmp_path, monkeypatch):
    import signals.build
    import signals.worker

    params = tiny_params(tmp_path)
    root = synthetic_store(params)
    before = snapshot(root)

    def forbidden(*args, **kwargs):
        raise AssertionError("fast mode must not build or compute signals")

    monkeypatch.setattr(signals.build, "build", forbidden)
    monkeypatch.setattr(signals.build, "run_pool", forbidden)
    monkeypatch.setattr(signals.worker, "run_task", forbidden)
    lines = run_quiet(params)
    assert snapshot(root) == before
    assert not [line for line in lines if "variants" in line or "up to date" in line]
    trials = load(params).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, [t.user_attrs for t in trials]
    trial_dir = tmp_path / "tune" / "tiny" / "trials" / "00000"
    assert sorted(p.name for p in trial_dir.iterdir()) == ["params.toml", "result.json"]  # small: no checkpoints
    trained = load_params(trial_dir / "params.toml")
    assert (trained.train.n_envs, trained.ppo.n_epochs, trained.train.timesteps) == (1, 1, 128)
    assert trained.train.vec_env == params.tune.fast.vec_env


@pytest.mark.parametrize("case", ["missing", "stale"])
def test_fast_mode_with_a_missing_or_stale_store_says_run_signals_build(tmp_path, capsys, case):
    params = tiny_params(tmp_path)
    if case == "stale":
        synthetic_store(params, cache_key="built-from-other-data")
    params_file = tmp_path / "params.toml"
    params_file.write_text(to_toml(params))
    assert tune_main(["--fast", "--params", str(params_file)]) == 2
    err = capsys.readouterr().err
    assert "python -m signals.build" in err and ("stale" in err if case == "stale" else "no signal store" in err)
    assert not (tmp_path / "tune" / "tiny" / "trials").exists()


# ---------------------------------------------------------------- honesty

def test_the_test_split_is_never_read(tmp_path, monkeypatch):
    """Spies on every split an environment or a store symbol is asked for; the test rows are NaN besides."""
    import inspect

    from envs.trading_env import TradingEnv
    from signals.store import SymbolData

    params = tiny_params(tmp_path, **{"tune.seeds_per_trial": 2})
    synthetic_store(params)
    requested: list[str] = []
    env_init, symbol_split = TradingEnv.__init__, SymbolData.split

    def spy_env(self, *args, **kwargs):
        bound = inspect.signature(env_init).bind(self, *args, **kwargs)
        bound.apply_defaults()
        requested.append(bound.arguments["split"])
        env_init(self, *args, **kwargs)

    def spy_split(self, name):
        requested.append(name)
        return symbol_split(self, name)

    monkeypatch.setattr(TradingEnv, "__init__", spy_env)
    monkeypatch.setattr(SymbolData, "split", spy_split)
    run_quiet(params)
    assert set(requested) == {"train", "validation"}
    trials = load(params).trials
    assert all(t.state == TrialState.COMPLETE and math.isfinite(t.value) for t in trials), \
        [(t.state, t.user_attrs) for t in trials]
    assert all(len(t.intermediate_values) == 2 for t in trials)
    result = json.loads((tmp_path / "tune" / "tiny" / "trials" / "00000" / "result.json").read_text())
    assert result["seeds"] == [0, 1] and [len(h["per_seed"]) for h in result["history"]] == [2, 2]
    assert [h["value"] for h in result["history"]] == [sum(h["per_seed"]) / 2 for h in result["history"]]


def test_a_diverging_trial_is_pruned_and_a_crashing_one_fails_while_the_study_goes_on(tmp_path, monkeypatch):
    params = tiny_params(tmp_path, **{"tune.iterations": 3})
    synthetic_store(params)
    calls = {"n": 0}
    real = objective.validation_result

    def flaky(model, store, trial_params):
        calls["n"] += 1
        score, symbols = real(model, store, trial_params)
        if calls["n"] == 1:
            return float("nan"), symbols  # trial 0: a NaN score
        if calls["n"] == 2:
            raise RuntimeError("boom")  # trial 1: an exception
        return score, symbols

    monkeypatch.setattr(objective, "validation_result", flaky)
    lines = run_quiet(params)
    states = [t.state for t in load(params).trials]
    assert states == [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert any("trial    0  pruned" in line and "diverged" in line for line in lines)
    assert any("trial    1  fail: RuntimeError: boom" in line for line in lines)
    assert (tmp_path / "tune" / "tiny" / "best_params.toml").exists()


def test_no_env_worker_outlives_its_trial(tmp_path, monkeypatch, fake_build):
    """Subprocess environments (full mode: fast mode keeps its few envs in-process) are closed after every
    trial, the failing one included."""
    params = tiny_params(tmp_path, **{"train.vec_env": "subproc", "train.n_envs": 2, "tune.iterations": 3,
                                      "tune.evaluations": 1})
    def workers() -> set[int]:
        """Descendants of this process, less multiprocessing's own long-lived helpers (the forkserver and the
        resource tracker: children of this process; env workers forked by the forkserver are its children)."""
        me = psutil.Process()
        helpers = {p.pid for p in me.children()
                   if any(h in " ".join(p.cmdline()) for h in ("resource_tracker", "forkserver"))}
        return {p.pid for p in me.children(recursive=True)} - helpers

    before = workers()
    seen: list[int] = []
    after_trial: list[set[int]] = []
    real_env, real_score, real_call = objective.make_training_env, objective.validation_result, \
        objective.Objective.__call__

    def checked_call(self, trial):  # as the trial returns or raises: before any garbage collection
        try:
            return real_call(self, trial)
        finally:
            after_trial.append(workers() - before)

    def counting_env(*args, **kwargs):
        env = real_env(*args, **kwargs)
        seen.append(len(workers() - before))
        return env

    def failing_once(model, store, trial_params):
        if len(seen) == 2:
            raise RuntimeError("evaluation crashed")
        return real_score(model, store, trial_params)

    monkeypatch.setattr(objective, "make_training_env", counting_env)
    monkeypatch.setattr(objective, "validation_result", failing_once)
    monkeypatch.setattr(objective.Objective, "__call__", checked_call)
    run_quiet(params, fast=False)
    assert [t.state for t in load(params).trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert seen == [2, 2, 2]  # two env workers alive during each trial
    assert after_trial == [set(), set(), set()]  # and gone (joined) as each trial ends, the failed one included
    assert workers() - before == set()


@pytest.mark.parametrize("action_mode", ["discrete", "long_only", "continuous"])
def test_the_lean_predictor_acts_exactly_as_sb3_predict(tmp_path, action_mode):
    from trader.evaluate import DeterministicPolicy, evaluate_policy, validation_score
    from trader.train import make_training_env, new_model

    params = tiny_params(tmp_path, **{"env.action_mode": action_mode, "ppo.net_arch": [16, 16]})
    root = synthetic_store(params)
    from signals.store import open_store

    store = open_store(root)
    env = make_training_env(params, root, 1, 0, "dummy")
    try:
        model = new_model(params, env, "cpu")
        model.learn(64)
        lean = DeterministicPolicy(model)
        rng = np.random.default_rng(0)
        for scale in (0.1, 1.0, 100.0):  # large inputs push continuous actions past the bounds: clipped alike
            for obs in rng.normal(0.0, scale, (50, *env.observation_space.shape)).astype(np.float32):
                expected = model.predict(obs, deterministic=True)[0]
                got = lean.predict(obs, deterministic=True)[0]
                assert np.asarray(got).shape == np.asarray(expected).shape and np.array_equal(got, expected)
        sb3 = evaluate_policy(lambda o: model.predict(o, deterministic=True)[0], store, params, "validation")
        assert validation_score(model, store, params) == sb3[0]["agent"]["sharpe"]
    finally:
        env.close()


# ---------------------------------------------------------------- outputs

def test_best_params_round_trip_into_training(tmp_path):
    from trader.train import parse_args, resolve_params

    params = tiny_params(tmp_path, **{"tune.iterations": 3})
    synthetic_store(params)
    run_quiet(params)
    study = load(params)
    best = study.best_trial
    out = tmp_path / "tune" / "tiny"
    expected = replace_path(params, sample_params(FixedTrial(best.params), params.tune, full=False))
    assert load_params(out / "best_params.toml") == expected
    assert resolve_params(parse_args(["--params", str(out / "best_params.toml")])) == expected
    assert expected.train.timesteps == params.train.timesteps  # the fast budget is not carried over
    record = (out / "run.json").read_text()
    assert '"store_manifest_sha256"' in record and '"versions"' in record and "trader.tune" in record
    assert load_params(out / "params.toml") == params

    # Training from the file builds exactly the tuned model and environment.
    from trader.train import make_training_env, new_model

    trained = resolve_params(parse_args(["--params", str(out / "best_params.toml")]))
    env = make_training_env(trained, trained.build.out, trained.train.n_envs, 0, "dummy")
    try:
        model = new_model(trained, env, "cpu")
        model.learn(64)
        ppo = expected.ppo
        assert (model.learning_rate, model.n_steps, model.batch_size, model.n_epochs, model.gamma, model.gae_lambda,
                model.ent_coef, model.clip_range(1.0)) == (ppo.learning_rate, ppo.n_steps, ppo.batch_size,
                                                           ppo.n_epochs, ppo.gamma, ppo.gae_lambda, ppo.ent_coef,
                                                           ppo.clip_range)
        assert model.policy.net_arch == list(ppo.net_arch)
        assert env.observation_space.shape[0] == expected.env.window * 4 + 3
    finally:
        env.close()


@pytest.mark.parametrize("drift_test", ["mirror", "none"])
def test_the_validation_result_is_the_checkpoint_score_with_the_moments_of_its_returns(tmp_path, drift_test):
    """A trial is scored as training ranks checkpoints: with the mirror test on the symbols and their mirror
    images (so a bet on the validation period's direction earns a trial nothing), else on the symbols."""
    from signals.store import open_store
    from trader.evaluate import validation_score
    from trader.selection import checkpoint_score
    from trader.train import make_training_env, new_model

    params = tiny_params(tmp_path, **{"train.drift_test": drift_test})
    store = open_store(synthetic_store(params, mirrored=drift_test == "mirror"))
    env = make_training_env(params, store.root, 1, 0, "dummy")
    try:
        model = new_model(params, env, "cpu")
        model.learn(64)
        score, symbols = objective.validation_result(model, store, params)
        assert score == checkpoint_score(model, store, params)
        if drift_test == "mirror":
            assert set(symbols) == {"AAA", "AAA~mirror", "BBB", "BBB~mirror"}
            assert score != validation_score(model, store, params)  # the images count
        else:
            assert score == validation_score(model, store, params) and set(symbols) == {"AAA", "BBB"}
        for name, figures in symbols.items():
            start, stop = figures["bars"]
            assert TUNE_SPLITS["validation"][0] <= start and stop <= TUNE_SPLITS["validation"][1]
            assert figures["n"] == stop - start - 1  # returns between consecutive bars
            assert figures["periods_per_year"] == pytest.approx(store.symbol(name).periods_per_year)
            assert math.isfinite(figures["skewness"]) and figures["kurtosis"] >= 1.0
    finally:
        env.close()


def budget_comments(text: str) -> dict[str, tuple[str, str]]:
    """{key: (kept, trained)} from best_params.toml's comment lines `#   key = X here; the trial trained with Y`."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#   ") and " here; the trial trained with " in line:
            key, rest = line[4:].split(" = ", 1)
            kept, trained = rest.split(" here; the trial trained with ")
            found[key] = (kept, trained)
    return found


def test_best_params_says_which_values_the_budget_cut_and_the_deflated_sharpe_ratio(tmp_path):
    from trader.stats import deflated_sharpe
    from trader.tune.space import BUDGET_KEYS, dotted

    params = tiny_params(tmp_path, **{"tune.iterations": 3, "tune.n_epochs": [2, 3], "tune.fast.n_epochs": 1})
    synthetic_store(params)
    lines = run_quiet(params)
    out = tmp_path / "tune" / "tiny"
    best = load(params).best_trial
    text = (out / "best_params.toml").read_text()
    kept = load_params(out / "best_params.toml")
    trained = load_params(out / "trials" / f"{best.number:05d}" / "params.toml")
    assert kept.ppo.n_epochs == best.params["n_epochs"] >= 2 and trained.ppo.n_epochs == 1
    cut = {key for key in BUDGET_KEYS if dotted(kept, key) != dotted(trained, key)}
    assert {"ppo.n_epochs", "train.n_envs", "train.timesteps", "train.vec_env"} == cut
    assert budget_comments(text) == {key: (summary.format_value(dotted(kept, key)),
                                           summary.format_value(dotted(trained, key))) for key in cut}

    # The deflated Sharpe ratio: N = the scored trials, V = their variance, the best trial's own error.
    trials = load(params).trials
    scores = [t.value if t.state == TrialState.COMPLETE else t.intermediate_values[max(t.intermediate_values)]
              for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    result = json.loads((out / "trials" / f"{best.number:05d}" / "result.json").read_text())
    error = objective.score_standard_error(result["validation"])
    assert best.user_attrs["score_standard_error"] == pytest.approx(error)
    expected = deflated_sharpe(best.value, error, len(scores), float(np.var(scores, ddof=1)))
    record = json.loads((out / "run.json").read_text())["deflated_sharpe"]
    assert record["deflated_sharpe"] == pytest.approx(expected) and record["n_trials"] == len(scores) == 3
    assert 0.0 <= expected <= 1.0
    assert f"deflated Sharpe ratio of the best trial: {expected:.4f}" in text.splitlines()[1]
    assert any(f"deflated Sharpe ratio of the best trial: {expected:.4f}" in line for line in lines)
    # Fast mode on one store with one window: every trial scored on the same validation bars.
    assert len({json.dumps(t.user_attrs["validation_bars"]) for t in trials}) == 1
    assert json.loads((out / "run.json").read_text())["same_validation_bars"] is True


# ---------------------------------------------------------------- full mode

def test_full_mode_builds_one_store_per_selection_sharing_the_variants(tmp_path, fake_build):
    """The build is faked here (the real one is exercised below): only where and with what it is called."""
    params = tiny_params(tmp_path, **{"tune.iterations": 3})
    run_quiet(params, fast=False)
    trials = load(params).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3, [t.user_attrs for t in trials]
    assert len(fake_build) == 3
    for call, trial in zip(fake_build, trials, strict=True):
        assert call.build.out == str(tmp_path / "tune" / "stores" / store_cache_key(call)[:12])
        assert call.build.variants_dir == str(tmp_path / "store" / "variants")
        assert call.signals.horizon == trial.params["horizon"] and call.train.timesteps == params.tune.timesteps
        assert call.signals.keep_per_family == trial.params["keep_per_family"]
    best = load_params(tmp_path / "tune" / "tiny" / "best_params.toml")
    assert best.build.out.startswith(str(tmp_path / "tune" / "stores"))
    assert best.signals.keep_per_family == load(params).best_trial.params["keep_per_family"]


@pytest.mark.slow
def test_full_mode_reselects_without_recomputing_variants(market, monkeypatch):
    """The real build on a small synthetic market: trials rescore and reselect, the variants stay as they are."""
    import signals.build

    tmp = market["tmp"]
    params = replace_path(load_params(market["params"]), {
        "tune.out": str(tmp / "tune"), "env.window": 4, "env.episode_length": 64, "train.vec_env": "dummy",
        "train.n_envs": 1, "ppo.n_steps": 32, "ppo.batch_size": 32, "tune.timesteps": 64, "tune.evaluations": 1,
        "tune.iterations": 2, "tune.study_name": "full", "tune.n_steps_pow2": [5, 5], "tune.batch_size_pow2": [5, 5],
        "tune.net_width_pow2": [3, 3], "tune.n_epochs": [1, 1], "tune.window": [4], "signals.score_backend": "numpy"})
    signals.build.build(params, log=lambda *_: None)
    variants = tmp / "store" / "variants"
    before = snapshot(variants)
    run_quiet(params, fast=False)
    trials = load(params).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, [t.user_attrs for t in trials]
    assert snapshot(variants) == before
    stores = list((tmp / "tune" / "stores").iterdir())
    assert stores and all((s / "manifest.json").exists() and not (s / "variants").exists() for s in stores)


@pytest.mark.slow
@pytest.mark.parametrize("windows", [
    pytest.param((4, 4), id="horizon"),
    pytest.param((4, 8), id="window-and-horizon"),  # the window reaches back before the split start
])
def test_two_trials_with_different_horizons_and_windows_are_scored_on_the_same_validation_bars(market, windows):
    """Real full-mode trial stores on a small synthetic market: horizon 1 and horizon 4."""
    import signals.build

    tmp = market["tmp"]
    params = replace_path(load_params(market["params"]), {
        "tune.out": str(tmp / "tune"), "env.episode_length": 64, "train.vec_env": "dummy", "train.n_envs": 1,
        "ppo.n_steps": 32, "ppo.batch_size": 32, "tune.timesteps": 32, "tune.evaluations": 1,
        "tune.window": [4, 8], "tune.horizon": [1, 4], "tune.n_steps_pow2": [5, 5], "tune.batch_size_pow2": [5, 5],
        "tune.net_width_pow2": [3, 3], "tune.n_epochs": [1, 1], "signals.score_backend": "numpy"})
    signals.build.build(params, log=lambda *_: None)
    bars = []
    for number, (window, horizon) in enumerate(zip(windows, (1, 4), strict=True)):
        values = dict(FIXED, n_steps_pow2=5, batch_size_pow2=5, net_width_pow2=3, n_epochs=1, window=window,
                      horizon=horizon)
        objective.Objective(params, False, tmp / "tune" / "study")(FixedTrial(values, number=number))
        result = json.loads((tmp / "tune" / "study" / "trials" / f"{number:05d}" / "result.json").read_text())
        assert result["state"] == "complete", result
        bars.append({symbol: figures["bars"] for symbol, figures in result["validation"][0].items()})
    assert bars[0] == bars[1]
