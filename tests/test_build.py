"""`python -m signals.build` end to end: store contents, cache, interruption, bad input, no leak."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from helpers import ROOT, run_module, synthetic_ohlcv
from settings import load_params
from common import files
from signals import build, store


def build_quiet(params_file: Path, *overrides: str, force: bool = False) -> store.Store:
    params = load_params(params_file, overrides)
    return build.build(params, force=force, log=lambda *_: None)


def test_store_contents(market):
    opened = build_quiet(market["params"])
    manifest = opened.manifest
    assert set(opened.symbols) == {"AAA", "BBB"}
    assert manifest["variants_tried"] >= 30 and 0 < manifest["variants_selected"] <= manifest["variants_tried"]
    # every symbol and its mirror image (data.mirror, on by default) has every variant computed
    computed = manifest["build"]["variants_computed"]
    assert computed == len(opened.training_symbols) * manifest["variants_tried"] == 4 * 106
    for symbol in opened.symbols:
        data = opened.symbol(symbol)
        assert isinstance(data.features, np.memmap) and data.features.dtype == np.float32
        assert data.features.shape == (1500, opened.n_features) and np.isfinite(data.features).all()
        (a, b), (c, d), (e, f) = (data.splits[s] for s in store.SPLITS)
        purge = manifest["split"]["purge"]
        assert a == manifest["max_lookback"] and c - b == purge and e - d == purge
        # The purge is the scoring horizon (+ split.extra_embargo = 0), not the lookback: the past is allowed.
        assert purge == manifest["horizon"] < manifest["max_lookback"]
        assert manifest["symbols"][symbol]["sha256"] == files.sha256_file(Path(manifest["symbols"][symbol]["file"]))
    kept = [f for f in manifest["features"]]
    assert all(set(f) >= {"name", "family", "params", "scores"} for f in kept)
    for csv in ("top_signals.csv", "variant_scores.csv", "params.toml", "build_info.json"):
        assert (opened.root / csv).exists()
    assert not list(opened.root.rglob(files.TMP_PREFIX + "*"))


def test_symbols_with_interleaved_calendars_are_cut_at_common_dates_recorded_in_the_manifest(market):
    """One symbol starts 200 days late, the other trades 12-hourly and ends 180 days earlier: one set of cut dates."""
    import pandas as pd

    frames = {"AAA": synthetic_ohlcv(1500, 1, start="2015-01-01", freq="D").iloc[200:],
              "BBB": synthetic_ohlcv(2760, 2, start="2015-01-01 06:00", freq="12h").iloc[:-120]}
    for path in market["paths"]:
        frames[Path(path).stem].to_csv(path, index=False)
    opened = build_quiet(market["params"], "split.extra_embargo=2")
    split = opened.manifest["split"]
    assert split["calendar"] == "common" and split["purge"] == opened.manifest["horizon"] + 2
    dates = {k: pd.Timestamp(v) for k, v in split["dates"].items() if v != "end"}
    assert dates["train_end"] < dates["validation_start"] < dates["validation_end"] < dates["test_start"]
    for symbol in opened.symbols:
        data = opened.symbol(symbol)
        times = pd.to_datetime(np.asarray(data.timestamps))
        (a, b), (c, d), (e, f) = (data.splits[s] for s in store.SPLITS)
        assert times[b - 1] < dates["train_end"] and times[d - 1] < dates["validation_end"]
        assert times[c] >= dates["validation_start"] and times[e] >= dates["test_start"]
        assert c - b >= split["purge"] and e - d >= split["purge"] and f == len(times)


def test_per_symbol_calendar_is_used_only_when_asked_for(market):
    opened = build_quiet(market["params"], 'split.calendar="per_symbol"')
    assert opened.manifest["split"]["calendar"] == "per_symbol"
    dates = opened.manifest["split"]["dates_per_symbol"]
    assert set(dates) == {"AAA", "BBB", "AAA~mirror", "BBB~mirror"}  # data.mirror is on by default
    assert dates["AAA~mirror"] == dates["AAA"] and dates["BBB~mirror"] == dates["BBB"]


def test_unchanged_rerun_does_nothing_and_force_recomputes(market):
    first = build_quiet(market["params"])
    lines: list[str] = []
    params = load_params(market["params"])
    again = build.build(params, log=lines.append)
    assert "up to date" in lines[0] and again.manifest == first.manifest
    forced = build_quiet(market["params"], force=True)
    assert forced.manifest["build"]["variants_computed"] == 4 * forced.manifest["variants_tried"]
    assert forced.manifest["features"] == first.manifest["features"]


def test_changed_parameter_reselects_without_recomputing_variants(market):
    first = build_quiet(market["params"])
    second = build_quiet(market["params"], "signals.max_correlation=0.3")
    assert second.manifest["cache_key"] != first.manifest["cache_key"]
    assert second.manifest["build"]["variants_computed"] == 0
    assert second.manifest["variants_selected"] <= first.manifest["variants_selected"]


def test_selection_never_reads_validation_or_test_bars(market, tmp_path):
    """Rewriting every bar from the first one after the training split changes no selected feature and no score."""
    first = build_quiet(market["params"])
    for path in market["paths"]:
        stop = first.symbol(Path(path).stem).splits["train"][1]  # the first bar not in the training split
        frame = synthetic_ohlcv(1500, 1)
        original = __import__("pandas").read_csv(path)
        tail = frame.iloc[stop:].copy()
        tail[["Open", "High", "Low", "Close"]] *= 3.0  # a different future
        original.iloc[stop:, 1:] = tail.iloc[:, 1:].to_numpy()
        original.to_csv(path, index=False)
    second = build_quiet(market["params"])
    assert second.manifest["cache_key"] != first.manifest["cache_key"]
    assert [f["name"] for f in second.manifest["features"]] == [f["name"] for f in first.manifest["features"]]
    assert [f["scores"] for f in second.manifest["features"]] == [f["scores"] for f in first.manifest["features"]]


@pytest.mark.parametrize("override, message", [
    ("data.paths=['nowhere.csv']", "data.paths: nowhere.csv does not exist"),
    ("signals.families.rsii={window=[3]}", "unknown family 'rsii' .did you mean 'rsi'"),
    ("build.workrs=2", "unknown key 'build.workrs' .did you mean 'build.workers'"),
    ("split.train=0.01", "train split has"),
    ('build.executor="threads"', "build.executor must be one of process, dask"),
])
def test_bad_input_is_a_clear_error_through_the_cli(market, override, message):
    result = run_module("signals.build", "--params", str(market["params"]), "--set", override)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr or __import__("re").search(message, result.stderr), result.stderr
    assert not (market["store"] / store.MANIFEST).exists()


def test_bad_data_file_names_file_and_row(market):
    path = Path(market["paths"][0])
    lines = path.read_text().splitlines()
    fields = lines[10].split(",")
    fields[4] = "-1"  # a negative low
    lines[10] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    result = run_module("signals.build", "--params", str(market["params"]))
    assert result.returncode == 2
    assert "AAA.csv" in result.stderr and "11" in result.stderr, result.stderr
    assert not (market["store"] / store.MANIFEST).exists()


@pytest.mark.slow
def test_killed_worker_is_an_error_and_rerun_computes_only_the_missing(market):
    """kill -9 on a pool worker mid-build: an error within seconds, then a rerun that finishes the rest."""
    args = [sys.executable, "-m", "signals.build", "--params", str(market["params"]), "--batch-size", "2",
            "--set", "signals.variants_per_task=1"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    variants = market["store"] / "variants"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(variants.rglob("*.json"))) < 5:
        time.sleep(0.05)
    workers = psutil.Process(proc.pid).children(recursive=True)
    # Direct children are the forkserver and the resource tracker; pool workers are forked from the former.
    victims = [w for w in workers if w.ppid() != proc.pid]
    assert victims, "no pool worker found"
    os.kill(victims[-1].pid, signal.SIGKILL)
    killed_at = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "worker process died" in stderr, stderr
    assert time.monotonic() - killed_at < 30
    assert not (market["store"] / store.MANIFEST).exists()
    done_before = len(list(variants.rglob("*.json")))

    result = run_module("signals.build", "--params", str(market["params"]), "--set", "signals.variants_per_task=1")
    assert result.returncode == 0, result.stderr
    opened = store.open_store(market["store"])
    total = len(opened.training_symbols) * opened.manifest["variants_tried"]
    assert opened.manifest["build"]["variants_computed"] == total - done_before
    assert f"{done_before} already in the store" in result.stdout
    assert not list(market["store"].rglob(files.TMP_PREFIX + "*"))
    for meta in variants.rglob("*.json"):
        json.loads(meta.read_text())
        assert np.load(meta.with_suffix(".npy")).shape[0] == 1500


def test_mirror_images_train_but_never_report(market, tmp_path):
    """data.mirror adds SYMBOL~mirror (prices inverted, high and low swapped) for training only."""
    from envs.trading_env import TradingEnv
    from signals.data import mirror_bars

    result = run_module("signals.build", "--params", str(market["params"]), "--set", "data.mirror=true")
    assert result.returncode == 0, result.stderr[-3000:]
    opened = store.open_store(market["store"])
    assert opened.symbols == ("AAA", "BBB")
    assert opened.training_symbols == ("AAA", "BBB", "AAA~mirror", "BBB~mirror")
    real, mirror = opened.symbol("AAA"), opened.symbol("AAA~mirror")
    assert real.splits == mirror.splits and np.array_equal(real.timestamps, mirror.timestamps)
    returns, mirrored = np.diff(np.log(real.close)), np.diff(np.log(mirror.close))
    assert np.allclose(mirrored, -returns, rtol=0, atol=1e-12)
    assert opened.manifest["symbols"]["AAA~mirror"]["mirror_of"] == "AAA"
    assert TradingEnv(opened, "train", episode_length=64).setup.symbols == opened.training_symbols
    assert TradingEnv(opened, "validation", episode_length=None).setup.symbols == ("AAA", "BBB")
    assert TradingEnv(opened, "test", episode_length=None).setup.symbols == ("AAA", "BBB")
    from signals.data import load_bars

    bars = load_bars(market["paths"][0])
    image = mirror_bars(bars)
    assert np.all(image.high >= np.maximum(image.open, image.close)) and np.all(image.low <= image.close)
