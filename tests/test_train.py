"""`python -m trader.train` and `python -m trader.evaluate`, run as a user runs them."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, only_run, run_module, write_params

def test_train_end_to_end_writes_every_output(tmp_path):
    params = write_params(tmp_path)
    result = run_module("trader.train", "--params", str(params))
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path)
    for name in ("model.zip", "best_model.zip", "report.json", "equity.png", "params.toml", "run.json"):
        assert (run / name).exists(), name
    report = json.loads((run / "report.json").read_text())
    test = report["test"]
    assert set(test["baselines"]) == {"buy_and_hold", "flat", "random", "best_signal"}
    assert set(test["agent_costs"]) == {"0x", "1x", "2x"}
    for key in ("total_return", "annualised_return", "sharpe", "sortino", "max_drawdown", "trades", "turnover",
                "hit_rate", "costs_paid"):
        assert key in test["agent"]
    assert test["baselines"]["flat"]["total_return"] == 0.0
    selection = json.loads((run / "best_model.json").read_text())
    assert report["selected"] == selection["selected"] in ("model", "flat")
    assert selection["reason"] == report["selection_reason"] and len(selection["candidate_validation_interval"]) == 2
    for name, metrics in [("agent", test["agent"])] + list(test["baselines"].items()):
        low, high = metrics["sharpe_interval"]
        assert low <= high, name
    assert set(test["agent_beats"]) == {"buy_and_hold", "flat", "random", "best_signal"}
    progress = (run / "logs" / "from_step_0" / "progress.csv").read_text().splitlines()
    columns = progress[0].split(",")
    for key in ("episode/return", "episode/length", "episode/turnover", "episode/costs", "validation/sharpe"):
        assert key in columns, key
    lengths = [row.split(",")[columns.index("episode/length")] for row in progress[1:]]
    assert any(value and float(value) == 128 for value in lengths)  # env.episode_length of these settings
    if report["selected"] == "flat":
        assert test["agent"]["trades"] == 0 and "not_selected" in test
        assert "no edge found on validation: the selected policy stays flat" in result.stdout
    assert test["agent_costs"]["0x"]["costs_paid"] == 0.0
    record = json.loads((run / "run.json").read_text())
    for key in ("command", "seed", "store_manifest_sha256", "versions", "wall_seconds", "steps_per_second",
                "peak_memory_mib", "num_timesteps"):
        assert key in record, key
    assert record["num_timesteps"] == 512
    members = record["ensemble"]  # train.ensemble = 2 in these settings: member 1 trains under members/1/
    assert [m["num_timesteps"] for m in members] == [512, 512] and len({m["seed"] for m in members}) == 2
    assert (run / "members" / "1" / "best_model.zip").exists() and (run / "members" / "1" / "checkpoints").is_dir()
    assert selection["candidate_members"] == ["best_model.zip", "members/1/best_model.zip"]
    assert "agent" in result.stdout and "buy_and_hold" in result.stdout
    again = run_module("trader.evaluate", str(run))
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((run / "report.json").read_text())["test"] == test


def test_same_seed_same_report(tmp_path):
    params = write_params(tmp_path)
    reports = []
    for _ in range(2):
        result = run_module("trader.train", "--params", str(params), "--vec-env", "dummy", "--seed", "3")
        assert result.returncode == 0, result.stderr[-3000:]
    for run in sorted((tmp_path / "runs").iterdir()):
        reports.append(json.loads((run / "report.json").read_text())["test"])
    assert reports[0] == reports[1]


def test_a_file_shorter_than_an_episode_trains_on_whole_split_episodes(tmp_path):
    params = write_params(tmp_path)  # 1,500 bars a symbol: each training split is far shorter than 5,000 steps
    result = run_module("trader.train", "--params", str(params), "--set", "env.episode_length=5000",
                        "--set", "train.ensemble=1", "--set", "train.timesteps=2048")  # 1,024 steps per env
    assert result.returncode == 0, result.stderr[-3000:]
    notes = [line for line in result.stdout.splitlines() if "fewer than env.episode_length = 5000" in line]
    assert sorted(note.split(":")[1].strip() for note in notes) == ["AAA", "AAA~mirror", "BBB", "BBB~mirror"]
    progress = (only_run(tmp_path) / "logs" / "from_step_0" / "progress.csv").read_text().splitlines()
    column = progress[0].split(",").index("episode/length")
    lengths = {float(row.split(",")[column]) for row in progress[1:] if row.split(",")[column]}
    assert lengths and max(lengths) < 5000


def test_no_build_with_missing_store_is_an_error(tmp_path):
    params = write_params(tmp_path)
    result = run_module("trader.train", "--params", str(params), "--no-build")
    assert result.returncode == 2 and "python -m signals.build" in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("member, afresh", [("", False), ("members/1/", False), ("members/1/", True)])
def test_sigint_then_resume_reaches_the_same_step_count(tmp_path, member, afresh):
    """Interrupted in ensemble member 0 or in member 1, the resumed run brings every member to its steps; a
    member without a checkpoint starts afresh, and a best score left by its earlier start does not gate it."""
    params = write_params(tmp_path)
    args = [sys.executable, "-m", "trader.train", "--params", str(params), "--timesteps", "4096",
            "--vec-env", "subproc"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((tmp_path / "runs").glob(f"*/{member}checkpoints/step_*.zip")):
        time.sleep(0.2)
    import psutil

    workers = psutil.Process(proc.pid).children(recursive=True)
    assert len(workers) >= 2  # the env workers (and the forkserver)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"child processes left behind: {alive}"
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted: saved" in stdout
    run = only_run(tmp_path)
    from stable_baselines3 import PPO

    from trader.callbacks import latest_checkpoints

    saved = PPO.load(latest_checkpoints(run / member / "checkpoints")[0])
    assert 0 < saved.num_timesteps < 4096
    assert f"--resume {run}`" in stdout  # the run's directory, not the member's folder
    if afresh:
        shutil.rmtree(run / member / "checkpoints")
        (run / member / "best_model.json").write_text(json.dumps({"validation_sharpe": 1e9, "step": 1}))
    result = run_module("trader.train", "--resume", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((run / "run.json").read_text())
    assert record["num_timesteps"] == 4096 and [m["num_timesteps"] for m in record["ensemble"]] == [4096, 4096]
    assert (run / "report.json").exists()
    if afresh:
        assert json.loads((run / member / "best_model.json").read_text())["validation_sharpe"] < 1e9


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_48_subprocess_envs_on_two_cores_complete(tmp_path):
    params = write_params(tmp_path)
    result = run_module("trader.train", "--params", str(params), "--vec-env", "subproc", "--n-envs", "48",
                        "--timesteps", str(48 * 64 * 2), timeout=540)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "48 env workers share" in result.stdout
    assert json.loads((only_run(tmp_path) / "run.json").read_text())["num_timesteps"] == 48 * 64 * 2


def reference_sharpe(run: Path, report: dict) -> float:
    """The best one-line rule (EMA trend, reversal or momentum) chosen on each symbol's training split,
    scored on the agent's test bars at the run's costs, averaged over symbols."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from markets import choose_rule, segment_metrics

    from settings import load_params
    from signals.store import open_store

    params = load_params(run / "params.toml")
    store = open_store(params.build.out)
    sharpes = []
    for symbol in store.symbols:
        data = store.symbol(symbol)
        close, ppy = np.asarray(data.close, dtype=np.float64), data.periods_per_year
        _, positions = choose_rule("file", close, data.split("train"), report["costs_bps"], ppy)
        bars = tuple(report["test"]["per_symbol"][symbol]["bars"])
        sharpes.append(segment_metrics(close, positions, bars, report["costs_bps"], ppy)["sharpe"])
    return float(np.mean(sharpes))


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["sb3", "jax"])
@pytest.mark.parametrize("momentum, learns", [(0.4, True), (0.0, False)])
def test_agent_learns_a_planted_edge_and_leaves_a_random_walk_alone(tmp_path, momentum, learns, learner):
    """AR(1) returns are an edge a one-line momentum rule sees; the agent must make at least 0.6 of that
    rule's test Sharpe. On a random walk it must not trade (do-no-harm keeps it flat) nor lose."""
    params = write_params(tmp_path, momentum=momentum, n=4000, extra="")
    result = run_module("trader.train", "--params", str(params), "--timesteps", "30000", "--set",
                        "train.eval_every=5000", "--set", "ppo.n_steps=256", "--set", "ppo.batch_size=128",
                        "--set", "ppo.n_epochs=5", "--set", "train.random_baseline_seeds=5", "--set",
                        "costs.commission_bps=0.5", "--set", "costs.half_spread_bps=0.5",
                        "--set", f"train.learner={learner}")
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path)
    report = json.loads((run / "report.json").read_text())
    agent = report["test"]["agent"]
    if learns:
        reference = reference_sharpe(run, report)
        assert reference > 3.0, reference  # the planted edge is there to be found
        assert report["selected"] == "model", report["selection_reason"]
        assert agent["sharpe"] >= 0.6 * reference, (agent["sharpe"], reference)
    else:
        assert agent["turnover"] <= 0.02, (agent["turnover"], report["selection_reason"])
        assert agent["sharpe"] >= -0.5, agent["sharpe"]


@pytest.mark.slow
def test_train_seeds_trains_one_run_per_seed_and_reports_each_with_their_mean_and_spread(tmp_path):
    params = write_params(tmp_path)
    result = run_module("trader.train", "--params", str(params), "--timesteps", "256", "--set", "train.seeds=[3, 5]")
    assert result.returncode == 0, result.stderr[-3000:]
    parent = only_run(tmp_path)
    assert parent.name.startswith("seeds-")
    report = json.loads((parent / "seeds_report.json").read_text())
    assert [r["seed"] for r in report["seeds"]] == [3, 5]
    sharpes = [r["test_sharpe"] for r in report["seeds"]]
    for row in report["seeds"]:
        run = Path(row["run_dir"])
        assert run.parent == parent and run.name.endswith(f"seed{row['seed']}")
        test = json.loads((run / "report.json").read_text())
        assert row["test_sharpe"] == test["test"]["agent"]["sharpe"] and row["selected"] == test["selected"]
        assert row["test_sharpe_interval"] == test["test"]["agent"]["sharpe_interval"]
        checkpoint = test["test"]["not_selected"] if test["selected"] == "flat" else test["test"]
        assert row["checkpoint_test_sharpe"] == checkpoint["agent"]["sharpe"]
        assert "seeds = []" in (run / "params.toml").read_text()  # each run is a single run (resumable as one)
    assert report["test_sharpe"]["mean"] == pytest.approx(np.mean(sharpes))
    assert report["test_sharpe"]["std"] == pytest.approx(np.std(sharpes, ddof=1))
    assert "mean" in result.stdout and "seeds report:" in result.stdout
