"""trader.selection: flat is a candidate; a checkpoint trades only with an edge beyond the noise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.accounting import backtest
from trader.runinfo import read_selection
from trader.selection import SELECTION_FILE, choose, drift_neutral_returns


def summary(sharpe: float, low: float, high: float) -> dict:
    return {"agent": {"sharpe": sharpe, "sharpe_interval": [low, high]}, "interval_level": 0.9}


def test_a_checkpoint_whose_interval_is_above_zero_is_selected():
    selected, reason = choose(summary(3.1, 0.4, 5.9), do_no_harm=True)
    assert selected == "model" and "beyond the noise" in reason and "+3.10" in reason


def test_an_interval_that_reaches_zero_selects_flat_and_says_so():
    for low in (-1.2, 0.0):
        selected, reason = choose(summary(1.5, low, 4.0), do_no_harm=True)
        assert selected == "flat"
        assert reason.startswith("no edge found on validation: the selected policy stays flat")


def test_without_do_no_harm_the_best_checkpoint_is_kept():
    selected, reason = choose(summary(-2.0, -4.0, -0.1), do_no_harm=False)
    assert selected == "model" and "do_no_harm = false" in reason


def test_read_selection_ignores_a_record_without_a_choice(tmp_path):
    assert read_selection(tmp_path) is None
    (tmp_path / SELECTION_FILE).write_text(json.dumps({"validation_sharpe": 1.0, "step": 5}))
    assert read_selection(tmp_path) is None  # written by ValidationCallback only (an older run)
    (tmp_path / SELECTION_FILE).write_text(json.dumps({"selected": "flat", "reason": "r"}))
    assert read_selection(tmp_path)["selected"] == "flat"


def test_a_checkpoint_whose_edge_is_only_the_periods_drift_selects_flat():
    selected, reason = choose(summary(6.1, 3.8, 8.4), do_no_harm=True, beyond_drift=(0.3, (-1.9, 2.5)))
    assert selected == "flat" and "beyond the period's drift +0.30" in reason
    selected, reason = choose(summary(6.1, 3.8, 8.4), do_no_harm=True, beyond_drift=(2.3, (0.2, 4.5)))
    assert selected == "model" and "beyond the noise" in reason


def test_drift_neutral_returns_pay_a_constant_position_nothing_and_timing_its_edge():
    rng = np.random.default_rng(3)
    drift = np.where(np.arange(4000) < 2000, 1e-3, 3e-4)  # rising through the period, faster in its first half
    close = 100 * np.exp(np.cumsum(drift + 2e-3 * rng.standard_normal(4000)))
    n = len(close) - 1
    held = drift_neutral_returns(close, 0, np.ones(n), 0.0)
    assert abs(held.mean()) < 1e-12  # always long: the period's drift, and nothing beyond it
    net = backtest(close, np.ones(n), 0, 0.0)["net_returns"]
    assert net.mean() > 5e-4  # while its plain returns look like an edge
    timed = drift_neutral_returns(close, 0, np.where(np.arange(n) < 2000, 1.0, -1.0), 0.0)
    assert timed.mean() > 2e-4  # long in the fast half, short in the slow one: timing earns beyond the drift
    costly = drift_neutral_returns(close, 0, np.ones(n), 2.0)
    assert costly[0] == pytest.approx(held[0] - 2e-4 * close[1] / close[0], rel=1e-9)  # costs are still charged
