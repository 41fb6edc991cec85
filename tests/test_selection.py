"""trader.selection: flat is a candidate; a checkpoint trades only with an edge beyond the noise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.accounting import backtest
from trader.runinfo import read_selection
from trader.selection import DRIFT_LABELS, SELECTION_FILE, choose, drift_neutral_returns, mirror_paired_returns


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


def test_the_policys_files_are_the_selection_records_else_the_members_on_disk(tmp_path):
    from trader.runinfo import policy_files

    for name in ("best_model.zip", "members/1/best_model.zip", "members/2/model.zip"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    on_disk = ["best_model.zip", "members/1/best_model.zip", "members/2/model.zip"]
    assert policy_files(tmp_path, None) == on_disk
    chosen = ["best_model.zip", "members/1/best_model.zip"]
    assert policy_files(tmp_path, {"selected": "model", "members": chosen}) == chosen
    assert policy_files(tmp_path, {"selected": "flat", "members": None, "candidate_members": chosen}) == chosen
    assert policy_files(tmp_path, {"selected": "model", "model": "best_model.zip"}) == ["best_model.zip"]  # older
    assert policy_files(tmp_path, {"selected": "flat", "model": None}) == on_disk  # older: no candidate named


def test_read_selection_ignores_a_record_without_a_choice(tmp_path):
    assert read_selection(tmp_path) is None
    (tmp_path / SELECTION_FILE).write_text(json.dumps({"validation_sharpe": 1.0, "step": 5}))
    assert read_selection(tmp_path) is None  # written by ValidationCallback only (an older run)
    (tmp_path / SELECTION_FILE).write_text(json.dumps({"selected": "flat", "reason": "r"}))
    assert read_selection(tmp_path)["selected"] == "flat"


def test_a_checkpoint_whose_edge_is_only_the_periods_drift_selects_flat():
    selected, reason = choose(summary(6.1, 3.8, 8.4), do_no_harm=True, drift=(0.3, (-1.9, 2.5)))
    assert selected == "flat" and "beyond the period's drift +0.30" in reason
    selected, reason = choose(summary(6.1, 3.8, 8.4), do_no_harm=True, drift=(2.3, (0.2, 4.5)),
                              drift_label=DRIFT_LABELS["mirror"])
    assert selected == "model" and "beyond the noise" in reason and "paired with the mirror images +2.30" in reason


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


def test_mirror_pairing_pays_a_constant_position_exactly_nothing_and_a_follower_on_both():
    rng = np.random.default_rng(5)
    drift = np.where(np.arange(4000) < 3000, 1e-3, -1e-3)  # a long rise, then a shorter fall
    close = 100 * np.exp(np.cumsum(drift + 2e-3 * rng.standard_normal(4000)))
    mirror = close[0] ** 2 / close
    n = len(close) - 1
    held = [backtest(c, np.ones(n), 0, 0.0)["net_returns"] for c in (close, mirror)]
    assert held[0].mean() > 3e-4  # always long looks like an edge on the symbol alone
    assert np.abs(mirror_paired_returns(*held)).max() < 1e-12  # and earns exactly nothing on the pair
    assert np.mean((held[0] + held[1]) / 2) > 1e-6  # (an arithmetic half-and-half book would harvest r**2 / 2)
    follow = np.sign(drift[:n])  # follows the direction, so it trades the mirror the other way round
    timed = [backtest(close, follow, 0, 0.0)["net_returns"], backtest(mirror, -follow, 0, 0.0)["net_returns"]]
    paired = mirror_paired_returns(*timed)
    assert paired.mean() == pytest.approx(np.mean(np.log1p(timed[0])), rel=0.05) and paired.mean() > 8e-4
    costly = [backtest(c, np.ones(n), 0, 2.0)["net_returns"] for c in (close, mirror)]
    assert mirror_paired_returns(*costly)[0] < -1e-4  # costs are still charged


def test_the_mirror_test_stays_flat_on_a_bet_on_the_periods_direction_and_trades_a_follower(tmp_path):
    """On a store with a mirror image: always long has a validation interval above 0 but nothing on the pair; a
    long bias with a little timing earns on the pair but loses on the mirror; a policy that reads the direction
    off its feature passes every test."""
    from settings import Params, replace_path
    from signals.store import write_synthetic_store
    from trader.evaluate import evaluate_policy
    from trader.selection import mirror_figures

    rng = np.random.default_rng(7)
    n = 3000
    direction = np.where((np.arange(n) // 250) % 3 == 2, -1.0, 1.0)  # mostly rising, with falls
    close = 100 * np.exp(np.cumsum(8e-4 * direction + 2e-3 * rng.standard_normal(n)))
    times = np.arange(n, dtype=np.int64) * 3_600 * 10**9
    features = np.stack([direction, rng.uniform(-1, 1, n)], axis=1).astype(np.float32)
    splits = {"train": (0, 1500), "validation": (1500, 2400), "test": (2400, n)}
    store = write_synthetic_store(
        tmp_path / "store", {"SYN": (features, close, times), "SYN~mirror": (-features, close[0] ** 2 / close, times)},
        {"SYN": splits, "SYN~mirror": splits}, ["direction", "noise"], mirror_of={"SYN~mirror": "SYN"})
    assert store.symbols == ("SYN",) and store.mirror_image("SYN") == "SYN~mirror"
    params = replace_path(Params(), {"train.random_baseline_seeds": 1})

    def always_long(obs: np.ndarray) -> int:
        return 2

    def long_bias(obs: np.ndarray) -> int:
        return 0 if obs[0] < 0 and obs[1] > 0.4 else 2  # short on a third of the falls it sees, else long

    def follower(obs: np.ndarray) -> int:
        return 2 if obs[0] > 0 else 0

    for predict, expected, why in ((always_long, "flat", "moves the other way"),
                                   (long_bias, "flat", "moves the other way"), (follower, "model", "beyond the noise")):
        validation, _ = evaluate_policy(predict, store, params, "validation")
        pair, mirror_sharpe = mirror_figures(predict, store, params, "validation")
        assert validation["agent"]["sharpe_interval"][0] > 0  # all look good on the symbol alone
        selected, reason = choose(validation, True, pair, DRIFT_LABELS["mirror"], mirror_sharpe)
        assert selected == expected and why in reason, reason
        if predict is always_long:
            assert pair[0] <= 0  # its entry cost, and nothing else
        if predict is long_bias:
            assert pair[1][0] > 0 and mirror_sharpe < 0  # its timing is real, its bias is not


def test_the_mirror_test_needs_the_mirror_images():
    from settings import ConfigError, load_params

    with pytest.raises(ConfigError, match=r"train\.drift_test = 'mirror' needs .*data\.mirror = true"):
        load_params(None, ["data.mirror=false"])
    assert load_params(None, ["data.mirror=false", "train.drift_test=none"]).train.drift_test == "none"
