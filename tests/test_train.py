"""`python -m trader.train` and `python -m trader.evaluate`, run as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_module, small_grid_toml, write_market

TRAIN_SETTINGS = """
[env]
window = 4
episode_length = 128

[ppo]
n_steps = 64
batch_size = 64
n_epochs = 2
net_arch = [32, 32]

[train]
n_envs = 2
vec_env = "dummy"
timesteps = 512
checkpoint_every = 128
eval_every = 256
random_baseline_seeds = 2
"""


def write_params(tmp: Path, momentum: float = 0.0, n: int = 1500, extra: str = "") -> Path:
    paths = write_market(tmp / "data", {"AAA": 1, "BBB": 2}, n=n, momentum=momentum)
    params = tmp / "params.toml"
    params.write_text(f"[data]\npaths = {paths!r}\n\n[build]\nout = '{tmp / 'store'}'\nworkers = 2\n\n"
                      f"[signals]\nvariants_per_task = 8\n\n" + TRAIN_SETTINGS.replace(
                          "[train]", f"[train]\nrun_dir = '{tmp / 'runs'}'") + extra + "\n" + small_grid_toml())
    return params


def only_run(tmp: Path) -> Path:
    runs = sorted((tmp / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


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
    assert test["agent_costs"]["0x"]["costs_paid"] == 0.0
    record = json.loads((run / "run.json").read_text())
    for key in ("command", "seed", "store_manifest_sha256", "versions", "wall_seconds", "steps_per_second",
                "peak_memory_mib", "num_timesteps"):
        assert key in record, key
    assert record["num_timesteps"] == 512
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


def test_no_build_with_missing_store_is_an_error(tmp_path):
    params = write_params(tmp_path)
    result = run_module("trader.train", "--params", str(params), "--no-build")
    assert result.returncode == 2 and "python -m signals.build" in result.stderr, result.stderr


@pytest.mark.slow
def test_sigint_then_resume_reaches_the_same_step_count(tmp_path):
    params = write_params(tmp_path)
    args = [sys.executable, "-m", "trader.train", "--params", str(params), "--timesteps", "4096",
            "--vec-env", "subproc"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((tmp_path / "runs").glob("*/checkpoints/step_*.zip")):
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

    saved = PPO.load(latest_checkpoints(run / "checkpoints")[0])
    assert 0 < saved.num_timesteps < 4096
    result = run_module("trader.train", "--resume", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["num_timesteps"] == 4096
    assert (run / "report.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_48_subprocess_envs_on_two_cores_complete(tmp_path):
    params = write_params(tmp_path)
    result = run_module("trader.train", "--params", str(params), "--vec-env", "subproc", "--n-envs", "48",
                        "--timesteps", str(48 * 64 * 2), timeout=540)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "48 env workers share" in result.stdout
    assert json.loads((only_run(tmp_path) / "run.json").read_text())["num_timesteps"] == 48 * 64 * 2


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["sb3", "jax"])
@pytest.mark.parametrize("momentum, learns", [(0.4, True), (0.0, False)])
def test_agent_learns_a_planted_edge_and_not_a_random_walk(tmp_path, momentum, learns, learner):
    """A market whose returns are AR(1) has an edge any trend signal sees; a random walk has none."""
    params = write_params(tmp_path, momentum=momentum, n=4000, extra="")
    result = run_module("trader.train", "--params", str(params), "--timesteps", "30000", "--set",
                        "train.eval_every=5000", "--set", "ppo.n_steps=256", "--set", "ppo.batch_size=128",
                        "--set", "ppo.n_epochs=5", "--set", "train.random_baseline_seeds=5", "--set",
                        "costs.commission_bps=0.5", "--set", "costs.half_spread_bps=0.5",
                        "--set", f"train.learner={learner}")
    assert result.returncode == 0, result.stderr[-3000:]
    test = json.loads((only_run(tmp_path) / "report.json").read_text())["test"]
    agent, random = test["agent"]["sharpe"], test["baselines"]["random"]["sharpe"]
    if learns:
        assert agent > 2.0 and agent > random + 2.0, (agent, random)
    else:
        assert agent < 2.0, (agent, random)
