"""`python -m trader.predict`, run as a user runs it: replaying the test split gives the report's positions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import only_run, run_module, write_params

pytestmark = pytest.mark.slow  # every test here uses the session's trained run (about 30 s once)


def reference(run) -> pd.DataFrame:
    return pd.read_csv(run / "test_positions.csv", dtype={"position": str, "equity": str})


def test_replaying_the_test_split_gives_exactly_the_reports_positions_and_equity(trained_run, tmp_path):
    run = trained_run["run"]
    expected = reference(run)
    report = json.loads((run / "report.json").read_text())
    for symbol, path in trained_run["data"].items():
        rows = expected[expected["symbol"] == symbol].reset_index(drop=True)
        assert len(rows) > 100
        out = tmp_path / f"{symbol}.csv"
        result = run_module("trader.predict", str(run), "--data", str(path), "--all",
                            "--from", rows["timestamp"].iloc[0], "--out", str(out))
        assert result.returncode == 0, result.stderr[-3000:]
        replay = pd.read_csv(out, dtype={"position": str, "equity": str})
        assert list(replay.columns) == ["timestamp", "symbol", "position", "equity"]
        # Compared as text: the same floats to the last bit.
        pd.testing.assert_frame_equal(replay, rows)
        # ... and the reference is the report's agent: the same total return.
        total = float(rows["equity"].iloc[-1]) - 1.0
        assert total == pytest.approx(report["test"]["per_symbol"][symbol]["agent"]["total_return"], rel=1e-12)


def test_replay_without_from_starts_after_the_warm_up(trained_run, tmp_path):
    run, path = trained_run["run"], trained_run["data"]["AAA"]
    agent_json = json.loads((run / "agent.json").read_text())
    out = tmp_path / "all.csv"
    result = run_module("trader.predict", str(run), "--data", str(path), "--all", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    replay, bars = pd.read_csv(out), pd.read_csv(path)
    assert len(replay) == len(bars) - agent_json["min_bars"] + 1
    assert replay["timestamp"].iloc[0] == bars["Date"].iloc[agent_json["min_bars"] - 1].replace(" ", "T")
    assert replay["equity"].iloc[0] == 1.0 and set(replay["position"]) <= {-1.0, 0.0, 1.0}


def test_the_default_prints_the_decision_on_each_files_last_bar(trained_run):
    paths = [str(p) for p in trained_run["data"].values()]
    result = run_module("trader.predict", str(trained_run["run"]), "--data", *paths)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["symbol"] for d in lines] == list(trained_run["data"])
    for d, path in zip(lines, paths):
        assert d["time"] == pd.read_csv(path)["Date"].iloc[-1].replace(" ", "T")
        assert d["position"] in (-1.0, 0.0, 1.0)
        assert np.isclose(sum(d["probabilities"]), 1.0)
        assert d["position"] == (-1.0, 0.0, 1.0)[int(np.argmax(d["probabilities"]))]


def test_from_inside_the_warm_up_and_too_short_files_are_errors(trained_run, tmp_path):
    run, path = trained_run["run"], trained_run["data"]["AAA"]
    result = run_module("trader.predict", str(run), "--data", str(path), "--all", "--from", "2015-01-05")
    assert result.returncode == 2 and "bars of history is" in result.stderr, result.stderr
    short = tmp_path / "SHORT.csv"
    pd.read_csv(path).head(100).to_csv(short, index=False)
    result = run_module("trader.predict", str(run), "--data", str(short))
    assert result.returncode == 2 and "100 bars given" in result.stderr, result.stderr


@pytest.mark.parametrize("mode", ["long_only", "continuous"])
def test_the_replay_matches_the_report_in_the_other_action_modes(tmp_path, mode):

    result = run_module("trader.train", "--params", str(write_params(tmp_path)), "--set", f'env.action_mode="{mode}"',
                        "--set", "train.do_no_harm=false")  # the model, not flat: its positions are replayed
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path)
    rows = reference(run)
    rows = rows[rows["symbol"] == "AAA"].reset_index(drop=True)
    out = tmp_path / "replay.csv"
    result = run_module("trader.predict", str(run), "--data", str(tmp_path / "data" / "AAA.csv"), "--all",
                        "--from", rows["timestamp"].iloc[0], "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    replay = pd.read_csv(out, dtype={"position": str, "equity": str})
    assert list(replay["timestamp"]) == list(rows["timestamp"])
    if mode == "long_only":  # discrete actions: the same positions, so the same equity to the bit
        pd.testing.assert_frame_equal(replay, rows)
        assert set(replay["position"].astype(float)) <= {0.0, 1.0}
    else:  # a position is the policy's mean: features within float32 rounding move it by about as much
        got, want = replay["position"].astype(float), rows["position"].astype(float)
        assert np.abs(got - want).max() < 1e-5 and np.abs(want).max() > 0.0
        np.testing.assert_allclose(replay["equity"].astype(float), rows["equity"].astype(float), rtol=1e-6)
