"""trader.agent: a trained agent from its run directory alone, with features and observations equal to
the store's and the environment's."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from envs.trading_env import TradingEnv
from helpers import synthetic_ohlcv
from signals.catalog import Ohlcv
from signals.store import open_store
from trader.agent import (
    AGENT_FILE,
    TOLERANCE,
    Agent,
    AgentError,
    AgentSpec,
    AgentState,
    FeatureSpec,
    Policy,
    feature_matrix,
    observation,
    select_model,
    tail,
)


def store_bars(store, symbol: str) -> tuple[np.ndarray, Ohlcv]:
    data = store.symbol(symbol)
    ohlcv = np.load(store.root / symbol / "ohlcv.npy")
    return np.asarray(data.timestamps), Ohlcv(*ohlcv)


def flat_agent(window: int = 4, history: int = 30, action_mode: str = "discrete") -> Agent:
    """An agent whose policy is the flat one: no model file needed."""
    spec = AgentSpec(features=(FeatureSpec("rsi(window=14)", "rsi", {"window": 14}, 14, history),),
                     window=window, action_mode=action_mode, costs_bps=2.0, feature_bound=1.0, symbols={},
                     store_manifest_sha256="none")
    return Agent(spec, Policy(None, spec), run_dir=None, model_name=None, selection="flat")


def bars_frame(n: int, seed: int = 0) -> pd.DataFrame:
    frame = synthetic_ohlcv(n, seed, freq="D").rename(columns=str.lower).rename(columns={"date": "time"})
    return frame


# ---------------------------------------------------------------- without a trained run

def test_too_few_bars_is_an_error_that_says_how_many_are_needed():
    agent = flat_agent(window=4, history=30)
    assert agent.min_bars == 33
    with pytest.raises(AgentError, match=r"32 bars given, 33 needed.*30 bars for rsi\(window=14\).*other 3 rows"):
        agent.decide(bars_frame(32))
    assert agent.decide(bars_frame(33)).position == 0.0


@pytest.mark.parametrize("mode, flat_action, probabilities", [
    ("discrete", 1, (0.0, 1.0, 0.0)), ("long_only", 0, (1.0, 0.0)), ("continuous", 0.0, None)])
def test_the_flat_policy_puts_everything_on_the_flat_action(mode, flat_action, probabilities):
    frame = bars_frame(40)
    decision = flat_agent(action_mode=mode).decide(frame)
    assert decision.position == 0.0 and decision.action == flat_action
    assert decision.probabilities == probabilities
    assert decision.iso_time == frame["time"].iloc[-1].replace(" ", "T")


def test_agent_state_follows_the_environments_bookkeeping():
    state = AgentState(entry=100.0)
    assert state.values(100.0) == (0.0, 0.0, 0.0)
    state = state.after(1.0, 100.0)  # a change: one bar held, entry at this close
    assert (state.held, state.entry) == (1, 100.0)
    position, time_in, unrealised = state.values(105.0)
    assert position == 1.0 and time_in == pytest.approx(1 / 33) and unrealised == pytest.approx(0.05 / 0.1)
    state = state.after(1.0, 105.0)  # no change: one more bar, same entry
    assert (state.held, state.entry) == (2, 100.0)
    assert state.after(-1.0, 103.0) == AgentState(position=-1.0, held=1, entry=103.0)


def test_selection_follows_best_model_json_then_falls_back_to_the_files(tmp_path):
    (tmp_path / "model.zip").write_bytes(b"")
    assert select_model(tmp_path)[0] == ["model.zip"]
    (tmp_path / "best_model.zip").write_bytes(b"")
    assert select_model(tmp_path)[0] == ["best_model.zip"]
    (tmp_path / "best_model.json").write_text(json.dumps({"validation_sharpe": 1.0, "step": 256}))  # today's file
    assert select_model(tmp_path)[0] == ["best_model.zip"]
    (tmp_path / "best_model.json").write_text(json.dumps({"selected": "model", "model": "model.zip", "reason": "r"}))
    assert select_model(tmp_path)[0] == ["model.zip"]
    (tmp_path / "best_model.json").write_text(json.dumps({"selected": "flat", "model": None, "reason": "worse"}))
    assert select_model(tmp_path) == (None, "best_model.json: flat (worse)")
    (tmp_path / "best_model.json").write_text(json.dumps({"selected": "model", "model": "gone.zip"}))
    with pytest.raises(AgentError, match="gone.zip"):
        select_model(tmp_path)


def test_an_ensembles_members_are_found_in_order_and_selected_together(tmp_path):
    (tmp_path / "best_model.zip").write_bytes(b"")
    for k, name in ((2, "model.zip"), (1, "best_model.zip"), (10, "best_model.zip")):
        (tmp_path / "members" / str(k)).mkdir(parents=True)
        (tmp_path / "members" / str(k) / name).write_bytes(b"")
    (tmp_path / "members" / "3").mkdir()  # a member interrupted before it saved anything
    files = ["best_model.zip", "members/1/best_model.zip", "members/2/model.zip", "members/10/best_model.zip"]
    assert select_model(tmp_path) == (files, f"ensemble of 4 ({', '.join(files)}) (no selection in best_model.json)")
    (tmp_path / "best_model.json").write_text(json.dumps({"selected": "model", "model": "best_model.zip",
                                                          "members": files[:2]}))
    assert select_model(tmp_path)[0] == files[:2]
    (tmp_path / "best_model.json").write_text(json.dumps({"selected": "model",
                                                          "members": ["members/7/best_model.zip"]}))
    with pytest.raises(AgentError, match="members/7/best_model.zip"):
        select_model(tmp_path)


def test_a_store_without_its_ohlcv_inputs_is_an_agent_error_not_a_crash(tmp_path):
    from signals.store import write_synthetic_store
    from trader.agent import write_agent_spec

    n = 300
    store = write_synthetic_store(tmp_path / "store", {"AAA": (np.zeros((n, 1), np.float32), np.ones(n),
                                                               np.arange(n, dtype=np.int64))},
                                  {"AAA": {"train": (0, 200), "validation": (200, 250), "test": (250, 300)}},
                                  ["rsi(window=14)"])
    with pytest.raises(AgentError, match="no ohlcv.npy for AAA"):
        write_agent_spec(tmp_path, store, params=None)


# ---------------------------------------------------------------- against a trained run (about 30 s once)

@pytest.mark.slow
def test_tail_features_equal_the_stores_rows_for_every_selected_feature(trained_run):
    store = open_store(trained_run["store"])
    agent = Agent.load(trained_run["run"])
    assert [f.name for f in agent.spec.features] == list(store.feature_names)
    assert all(f.converged for f in agent.spec.features)
    for symbol in store.symbols:
        _, ohlcv = store_bars(store, symbol)
        stored = np.asarray(store.symbol(symbol).features)
        start, stop = store.symbol(symbol).split("test")
        for t in range(start, stop):
            rows = feature_matrix(agent.spec.features, tail(ohlcv, t + 1, agent.min_bars))
            expected = stored[t - agent.spec.window + 1:t + 1]
            got = rows[-agent.spec.window:]
            assert got.dtype == np.float32
            bad = np.argwhere(np.abs(got - expected) > TOLERANCE)
            assert not len(bad), (symbol, t, [agent.spec.features[j].name for _, j in bad])


@pytest.mark.slow
def test_agent_observations_equal_the_environments_over_the_test_split(trained_run):
    store = open_store(trained_run["store"])
    agent = Agent.load(trained_run["run"])
    for symbol in store.symbols:
        _, ohlcv = store_bars(store, symbol)
        env = TradingEnv(store, "test", symbols=[symbol], window=agent.spec.window,
                         action_mode=agent.spec.action_mode, episode_length=None)
        obs, info = env.reset(seed=0)
        state, steps, done = None, 0, False
        while not done:
            t = info["bar"]
            rows = feature_matrix(agent.spec.features, tail(ohlcv, t + 1, agent.min_bars))[-agent.spec.window:]
            state = AgentState(entry=float(ohlcv.close[t])) if state is None else state
            mine = observation(rows, state, float(ohlcv.close[t]))
            assert mine.shape == obs.shape and mine.dtype == obs.dtype
            np.testing.assert_allclose(mine, obs, rtol=0, atol=TOLERANCE, err_msg=f"bar {t}")
            assert np.array_equal(mine[-3:], obs[-3:]), (t, mine[-3:], obs[-3:])  # the state values exactly
            action, _ = agent.policy.act(mine)
            state = state.after(agent.policy.position(action), float(ohlcv.close[t]))
            obs, _, terminated, truncated, info = env.step(action)
            done, steps = terminated or truncated, steps + 1
        assert steps > 100


@pytest.mark.slow
def test_load_needs_the_run_directory_alone(trained_run, tmp_path):
    run = tmp_path / "copied_run"
    shutil.copytree(trained_run["run"], run, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    store = trained_run["store"]
    moved = store.with_name("store.moved")
    frame = pd.read_csv(trained_run["data"]["AAA"]).rename(columns=str.lower).rename(columns={"date": "time"})
    store.rename(moved)  # nothing of the store (nor the training data's features) is reachable
    try:
        agent = Agent.load(run)
        decision = agent.decide(frame)
    finally:
        moved.rename(store)
    assert agent.model_name == "ensemble of 2 (best_model.zip, members/1/best_model.zip)"
    assert decision.position in (-1.0, 0.0, 1.0) and sum(decision.probabilities) == pytest.approx(1.0)
    assert decision.iso_time == frame["time"].iloc[-1].replace(" ", "T")


@pytest.mark.slow
def test_load_honours_a_flat_or_model_selection_in_best_model_json(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run["run"], run, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    frame = pd.read_csv(trained_run["data"]["BBB"]).rename(columns=str.lower).rename(columns={"date": "time"})
    (run / "best_model.json").write_text(json.dumps(
        {"selected": "flat", "model": None, "reason": "validation Sharpe below flat"}))
    agent = Agent.load(run)
    assert agent.model_name is None and "below flat" in agent.selection
    decision = agent.decide(frame, position=1.0)
    assert decision.position == 0.0 and decision.probabilities == (0.0, 1.0, 0.0)
    (run / "best_model.json").write_text(json.dumps({"selected": "model", "model": "model.zip", "reason": "ok"}))
    assert Agent.load(run).model_name == "model.zip"
    (run / "best_model.json").unlink()
    (run / "best_model.zip").unlink()
    assert Agent.load(run).model_name == "ensemble of 2 (model.zip, members/1/best_model.zip)"
    (run / AGENT_FILE).unlink()
    with pytest.raises(AgentError, match="agent.json is missing.*trader.evaluate"):
        Agent.load(run)


@pytest.mark.slow
def test_policy_actions_and_probabilities_are_sb3s(trained_run):
    """One member: SB3's deterministic action and probabilities; the ensemble: its members' mean probabilities."""
    import torch

    agent = Agent.load(trained_run["run"])
    models = agent.policy.models
    assert models is not None and len(models) == 2
    single = Policy(models[:1], agent.spec)
    for obs in np.random.default_rng(0).uniform(-1, 1, (64, models[0].observation_space.shape[0])).astype(np.float32):
        with torch.no_grad():
            sb3 = [m.policy.get_distribution(torch.as_tensor(obs).reshape(1, -1)).distribution.probs.numpy().reshape(-1)
                   for m in models]
        action, probs = single.act(obs)
        assert action == models[0].predict(obs, deterministic=True)[0]
        np.testing.assert_allclose(probs, sb3[0], rtol=0, atol=1e-7)
        action, probs = agent.policy.act(obs)
        np.testing.assert_allclose(probs, np.mean(sb3, axis=0), rtol=0, atol=1e-7)
        assert action == int(np.argmax(np.mean(sb3, axis=0)))


