"""trader.selection: flat is a candidate; a checkpoint trades only with an edge beyond the noise."""

from __future__ import annotations

import json

from trader.runinfo import read_selection
from trader.selection import SELECTION_FILE, choose


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
