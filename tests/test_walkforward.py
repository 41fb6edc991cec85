"""Walk-forward folds: the layout, no fold reading its own test slice, the stitched out-of-sample summary, and
`python -m trader.walkforward` run as a user runs it (serial and parallel giving the same figures)."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_module, write_walkforward_params

from settings import load_params, replace_path
from trader import walkforward as wf

def interleaved_timestamps() -> dict[str, np.ndarray]:
    """An hourly symbol inside a daily one's span: the common calendar is mostly the hourly bars."""
    daily = pd.date_range("2015-01-01", periods=900, freq="D").as_unit("ns").asi8
    hourly = pd.date_range("2016-06-01", periods=6000, freq="h").as_unit("ns").asi8
    return {"DAILY": daily, "HOURLY": hourly}


@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_folds_never_overlap_their_own_test_slices_and_their_test_slices_tile_the_out_of_sample_span(window):
    times = interleaved_timestamps()
    folds = wf.fold_layout(times, warmup=30, purge=3, folds=4, test=0.5, validation=1.0, window=window)
    cuts = [wf.fold_cuts(times, f, warmup=30, purge=3) for f in folds]
    for fold, c in zip(folds, cuts):
        for symbol, ts in times.items():
            (_, train_stop), (val_start, val_stop), (test_start, _) = (c.bounds[symbol][s] for s in
                                                                       ("train", "validation", "test"))
            assert ts[train_stop - 1] < fold.train_end <= ts[val_start]
            assert ts[val_stop - 1] < fold.validation_end <= ts[test_start]
            assert test_start - val_stop >= 3 and val_start - train_stop >= 3  # the purge, for every symbol
    for before, after in pairwise(cuts):
        assert before.ends["test"] == after.starts["test"]
        for symbol in times:  # the next fold's test slice starts on the bar after this one's last bar
            assert before.bounds[symbol]["test"][1] == after.bounds[symbol]["test"][0]
    assert cuts[-1].bounds["HOURLY"]["test"][1] == len(times["HOURLY"])
    train_bars = [c.bounds["HOURLY"]["train"][1] - c.bounds["HOURLY"]["train"][0] for c in cuts]
    if window == "expanding":
        assert all(c.bounds["DAILY"]["train"][0] == 30 for c in cuts) and train_bars == sorted(train_bars)
    else:
        assert folds[0].start is None and all(f.start is not None for f in folds[1:])
        assert [f.start for f in folds[1:]] == sorted(f.start for f in folds[1:])


def test_a_fold_too_short_for_a_symbol_is_an_error_naming_the_fold_the_symbol_and_the_knobs():
    times = interleaved_timestamps()
    params = replace_path(load_params(), {"walkforward.folds": 40, "walkforward.test": 0.5})
    folds = wf.fold_layout(times, warmup=30, purge=1, folds=40, test=0.5, validation=1.0, window="expanding")
    with pytest.raises(ValueError, match=r"fold \d+ of 40: DAILY: the \w+ split has .*walkforward.folds=40"):
        wf.check_folds(times, folds, params, warmup=30, purge=1)


@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_a_folds_selection_never_reads_its_validation_or_test_bars(tmp_path, window):
    """Garbage in every bar from a fold's validation start on changes none of its selected features or scores."""
    from signals.build import build

    params = replace_path(load_params(write_walkforward_params(tmp_path)), {"walkforward.window": window})
    base = build(params, log=lambda *_: None)
    _, folds = wf.base_layout(base, params)
    fold = folds[1]
    fold_params = wf.fold_params(params, fold, tmp_path / "fold")
    first = build(fold_params, log=lambda *_: None)
    times = {s: np.asarray(base.symbol(s).timestamps) for s in base.symbols}
    cuts = wf.fold_cuts(times, fold, warmup=base.manifest["max_lookback"], purge=base.manifest["split"]["purge"])
    for symbol in base.symbols:  # the fold's dates, through split.* settings, give the build the layout's bars
        assert first.symbol(symbol).splits == dict(cuts.bounds[symbol])
        start = first.symbol(symbol).splits["train"][0]
        assert (fold.start is None) == (window == "expanding")
        assert start == base.manifest["max_lookback"] if fold.start is None else \
            first.symbol(symbol).timestamps[start] >= fold.start > first.symbol(symbol).timestamps[start - 1]
    for path in params.data.paths:
        frame = pd.read_csv(path)
        late = pd.to_datetime(frame["Date"]).to_numpy().astype("datetime64[ns]").astype(np.int64) >= fold.train_end
        rng = np.random.default_rng(7)
        garbage = np.exp(rng.normal(3.0, 1.0, late.sum()))  # prices from nowhere, every later bar
        for column in ("Open", "High", "Low", "Close"):
            frame.loc[late, column] = garbage
        frame.loc[late, "Volume"] = rng.lognormal(5.0, 2.0, late.sum())
        frame.to_csv(path, index=False)
    second = build(fold_params, log=lambda *_: None)
    assert second.manifest["cache_key"] != first.manifest["cache_key"]
    assert first.feature_names == second.feature_names
    assert [f["scores"] for f in second.manifest["features"]] == [f["scores"] for f in first.manifest["features"]]
    assert first.manifest["split"]["dates"] == second.manifest["split"]["dates"]


def test_fold_workers_are_the_cores_or_the_setting_but_never_more_than_the_folds_or_the_memory():
    gib = 2**30
    assert wf.fold_workers(0, 4, cores=2, available_bytes=64 * gib) == 2
    assert wf.fold_workers(3, 2, cores=16, available_bytes=64 * gib) == 2
    assert wf.fold_workers(0, 8, cores=16, available_bytes=4 * gib) == 4 * gib // wf.FOLD_MEMORY_BYTES
    assert wf.fold_workers(0, 8, cores=16, available_bytes=gib // 2) == 1  # one fold runs whatever the memory


def test_stitch_puts_each_test_slice_once_in_order_and_refuses_overlaps():
    def result(fold: int, start: int) -> dict:
        times = np.arange(start, start + 5, dtype=np.int64)
        return {"fold": fold, "times": {"S": times}, "returns": {"S": {"agent": times * 0.001, "flat": 0 * times}}}

    returns, times = wf.stitch([result(1, 0), result(2, 5)])
    assert list(times["S"]) == list(range(10))
    assert np.allclose(returns["S"]["agent"], np.arange(10) * 0.001)
    with pytest.raises(RuntimeError, match="overlap"):
        wf.stitch([result(1, 0), result(2, 3)])


@pytest.mark.slow
def test_walkforward_end_to_end_through_the_cli_and_serial_equals_parallel(tmp_path):
    params_file = write_walkforward_params(tmp_path)
    result = run_module("trader.walkforward", "--params", str(params_file), "--run-dir", str(tmp_path / "wf2"),
                        "--set", "train.vec_env=dummy")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stitched out of sample" in result.stdout and "P(agent's Sharpe > buy_and_hold's)" in result.stdout
    record = json.loads((tmp_path / "wf2" / wf.WALKFORWARD_FILE).read_text())
    assert (tmp_path / "wf2" / "oos_equity.png").stat().st_size > 0
    assert record["workers"] == 2 and len(record["folds"]) == 2
    for fold in record["folds"]:
        assert fold["features"] and fold["selection"]["selected"] in ("model", "flat")
        members = json.loads((Path(fold["run_dir"]) / "run.json").read_text())["ensemble"]  # every member's seed
        assert [m["seed"] for m in members] == fold["seeds"] and len(set(fold["seeds"])) == len(members) >= 2
        for split in ("validation", "test"):
            assert set(fold[split]["baselines"]) == {"buy_and_hold", "flat", "random", "best_signal"}
            assert len(fold[split]["agent"]["sharpe_interval"]) == 2
        assert fold["dates"]["validation_end"] == fold["dates"]["test_start"] or \
            fold["dates"]["validation_end"] < fold["dates"]["test_start"]
    for before, after in pairwise(record["folds"]):  # the stitched span covers each slice once
        assert before["dates"]["test_end"] == after["dates"]["test_start"]
        for symbol, (_, stop) in before["test"]["per_symbol_bars"].items():
            assert after["test"]["per_symbol_bars"][symbol][0] == stop
    oos = record["oos"]
    assert oos["agent"]["bars"] == sum(f["test"]["agent"]["bars"] for f in record["folds"])
    assert set(oos["agent_beats"]) == {"buy_and_hold", "flat", "random", "best_signal"}
    low, high = oos["agent"]["sharpe_interval"]
    assert low <= oos["agent"]["sharpe"] <= high

    serial = wf.run(replace_path(load_params(params_file), {"walkforward.workers": 1}), [],
                    run_dir=str(tmp_path / "wf1"), log=lambda *_: None)
    assert serial["workers"] == 1
    for fold in serial["folds"]:  # the trained model's own figures are compared too, selected or not
        assert fold["selection"]["selected"] == "model" or "not_selected" in fold["test"]
    assert [f["test"] for f in serial["folds"]] == [f["test"] for f in record["folds"]]
    assert [f["validation"] for f in serial["folds"]] == [f["validation"] for f in record["folds"]]
    assert serial["oos"] == record["oos"]


def test_a_layout_that_does_not_fit_stops_through_the_cli_before_any_fold_trains(tmp_path):
    params_file = write_walkforward_params(tmp_path)
    result = run_module("trader.walkforward", "--params", str(params_file), "--folds", "40",
                        "--run-dir", str(tmp_path / "wf"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "fold 1 of 40" in result.stderr and "walkforward.folds=40" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "wf").exists()  # nothing trained, nothing written
