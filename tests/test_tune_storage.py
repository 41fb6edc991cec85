"""trader.tune.storage and runner: interrupted studies, stale trials, several worker processes on one study
(journal file and PostgreSQL), a killed worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import urlparse

import optuna
import pytest
from optuna.trial import TrialState

from helpers import FINAL, POSTGRES_URL, ROOT, load, run_module, run_quiet, synthetic_store, tiny_params
from settings import Params, to_toml
from trader.tune import storage as tune_storage


# ---------------------------------------------------------------- resume and workers

def test_an_interrupted_study_continues(tmp_path):
    params = tiny_params(tmp_path)
    synthetic_store(params)
    run_quiet(params)
    study = load(params)
    orphan = study.ask()  # a worker killed mid-trial: RUNNING forever
    orphan.suggest_float("learning_rate", 1e-4, 1e-3, log=True)
    orphan.set_user_attr("worker", tune_storage.worker_id().rsplit(":", 1)[0] + ":999999999")  # its pid is gone
    assert [t.state for t in load(params).trials][-1] == TrialState.RUNNING
    lines = run_quiet(params)
    trials = load(params).trials
    assert [t.number for t in trials] == list(range(5))
    assert all(t.state in FINAL for t in trials)
    assert trials[2].state == TrialState.FAIL and "stopped worker" in trials[2].user_attrs["failed_reason"]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
    assert any("marked 1 trial(s) left RUNNING" in line for line in lines)


def test_stale_trials_are_told_from_live_ones_by_their_worker(tmp_path, monkeypatch):
    params = tiny_params(tmp_path)
    opened = tune_storage.open_storage(tune_storage.storage_spec(params))
    study = tune_storage.open_study(opened, params)
    live, dead, unknown = study.ask(), study.ask(), study.ask()
    live.set_user_attr("worker", tune_storage.worker_id())  # this process: alive
    dead.set_user_attr("worker", tune_storage.worker_id().rsplit(":", 1)[0] + ":999999999")  # no such pid
    # A trial with no worker yet may be one another process is still sampling: spared while young.
    assert tune_storage.fail_stale_trials(study, opened) == [dead.number]
    monkeypatch.setattr(tune_storage, "UNNAMED_TRIAL_GRACE_S", 0)
    assert tune_storage.fail_stale_trials(study, opened) == [unknown.number]
    assert [t.state for t in study.trials] == [TrialState.RUNNING, TrialState.FAIL, TrialState.FAIL]
    assert tune_storage.fail_stale_trials(study, opened, only_workers={"elsewhere:1"}) == []


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_on_an_rdb_storage_heartbeats_decide_and_a_dead_workers_trials_are_failed_with_their_reason(tmp_path):
    """SQLite stands in for PostgreSQL: the same RDBStorage with heartbeats, the same public storage calls."""
    params = tiny_params(tmp_path)
    opened = tune_storage.open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert tune_storage.uses_heartbeats(opened)
    study = tune_storage.open_study(opened, params)
    dead, live = study.ask(), study.ask()
    dead.set_user_attr("worker", tune_storage.worker_id().rsplit(":", 1)[0] + ":999999999")
    live.set_user_attr("worker", tune_storage.worker_id())
    assert tune_storage.fail_stale_trials(study, opened) == []  # neither has stopped beating: heartbeats decide
    assert tune_storage.fail_stale_trials(study, opened, only_workers={dead.user_attrs["worker"]}) == [0]
    reopened = optuna.load_study(study_name=params.tune.study_name, storage=opened)
    assert [t.state for t in reopened.trials] == [TrialState.FAIL, TrialState.RUNNING]
    assert reopened.trials[0].user_attrs["failed_reason"] == "left RUNNING by a stopped worker"


def check_worker_run(params: Params, result, storage: str | None = None) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    study = optuna.load_study(study_name=params.tune.study_name,
                              storage=tune_storage.open_storage(storage or tune_storage.storage_spec(params)))
    trials = study.trials
    assert sorted(t.number for t in trials) == list(range(params.tune.iterations)), result.stdout + result.stderr
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), \
        [(t.state, t.user_attrs) for t in trials]
    progress = [line for line in result.stdout.splitlines() if line.startswith("trial ")]
    assert len(progress) == params.tune.iterations
    assert "2 worker process(es) [2, 2]" in result.stdout and "top 3 of 4 trial(s)" in result.stdout


def test_two_worker_processes_share_a_journal_study(tmp_path):
    params = tiny_params(tmp_path, **{"tune.iterations": 4, "tune.jobs": 2})
    synthetic_store(params)
    params_file = tmp_path / "params.toml"
    params_file.write_text(to_toml(params))
    result = run_module("trader.tune", "--fast", "--params", str(params_file), timeout=300)
    check_worker_run(params, result)
    out = tmp_path / "tune" / "tiny"
    assert {"best_params.toml", "trials.csv", "history.png", "importances.png", "run.json", "params.toml"} <= \
        {p.name for p in out.iterdir()}
    assert len((out / "trials.csv").read_text().strip().splitlines()) == 5


@pytest.mark.slow
def test_a_killed_worker_fails_its_own_trial_only(tmp_path):
    """SIGKILL one of two worker processes mid-trial: its trial is failed, the other worker finishes its quota."""
    params = tiny_params(tmp_path, **{"tune.iterations": 4, "tune.jobs": 2, "train.start_method": "spawn",
                                      "tune.fast.timesteps": 1024, "tune.evaluations": 4})
    synthetic_store(params)
    params_file = tmp_path / "params.toml"
    params_file.write_text(to_toml(params))
    process = subprocess.Popen([sys.executable, "-m", "trader.tune", "--fast", "--params", str(params_file)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = None
    deadline = time.monotonic() + 180
    while victim is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            running = load(params).get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            continue
        victim = next(((t.number, int(t.user_attrs["worker"].rsplit(":", 1)[1])) for t in running
                       if "worker" in t.user_attrs), None)
    assert victim is not None, "no trial was seen running"
    os.kill(victim[1], signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 1, output
    assert "worker process(es) stopped with an error" in output
    trials = load(params).trials
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert all(t.state in FINAL for t in trials)
    killed = trials[victim[0]]
    assert killed.state == TrialState.FAIL and "stopped worker" in killed.user_attrs["failed_reason"]
    survivor = [t for t in trials if t.user_attrs.get("worker") != killed.user_attrs["worker"]]
    assert len(survivor) == 2 and all(t.state != TrialState.FAIL for t in survivor)


def postgres_or_skip(url: str) -> None:
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"no PostgreSQL server answers at {parsed.hostname}:{parsed.port or 5432} ({exc}); "
                    f"start one with .ci/postgres.sh or set TRADER_TEST_POSTGRES_URL")


@pytest.mark.slow
def test_two_worker_processes_share_a_postgresql_study(tmp_path):
    postgres_or_skip(POSTGRES_URL)
    name = f"test-{uuid.uuid4().hex[:12]}"
    params = tiny_params(tmp_path, **{"tune.iterations": 4, "tune.jobs": 2, "tune.study_name": name})
    synthetic_store(params)
    params_file = tmp_path / "params.toml"
    params_file.write_text(to_toml(params))
    try:
        result = run_module("trader.tune", "--fast", "--params", str(params_file), "--storage", POSTGRES_URL,
                            timeout=300)
        check_worker_run(params, result, storage=POSTGRES_URL)
        assert "trader:***@" in result.stdout and ":trader@" not in result.stdout  # no password in the log
    finally:
        try:
            optuna.delete_study(study_name=name, storage=tune_storage.open_storage(POSTGRES_URL))
        except KeyError:  # the study was never created
            pass


@pytest.mark.slow
def test_two_tuning_commands_on_one_postgresql_study_lose_no_trial_when_one_is_killed(tmp_path):
    """Two machines' `python -m trader.tune` on one PostgreSQL study, one SIGKILLed mid-trial: every trial is
    counted once, the survivor runs its whole quota, and the heartbeat fails the killed command's RUNNING trial."""
    postgres_or_skip(POSTGRES_URL)
    name = f"test-{uuid.uuid4().hex[:12]}"
    params = tiny_params(tmp_path, **{"tune.study_name": name, "tune.storage": POSTGRES_URL, "tune.jobs": 1,
                                      "tune.heartbeat_s": 1, "tune.heartbeat_grace_s": 3,
                                      "tune.fast.timesteps": 1024, "tune.evaluations": 4})
    synthetic_store(params)
    params_file = tmp_path / "params.toml"
    params_file.write_text(to_toml(params))
    opened = tune_storage.open_storage(POSTGRES_URL, params.tune)

    def command(machine: str, iterations: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "trader.tune", "--fast", "--params", str(params_file),
                                 "--iterations", str(iterations), "--set", f"tune.out='{tmp_path / machine}'"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    victim, survivor = command("a", 3), command("b", 4)
    try:
        running = None
        deadline = time.monotonic() + 180
        while running is None and time.monotonic() < deadline and victim.poll() is None:
            time.sleep(0.2)
            try:
                study = optuna.load_study(study_name=name, storage=opened)
            except KeyError:  # not created yet
                continue
            running = next((t.number for t in study.get_trials(states=(TrialState.RUNNING,))
                            if t.user_attrs.get("worker", "").endswith(f":{victim.pid}")), None)
        assert running is not None, "no trial of the first command was seen running"
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(timeout=30)
        output, _ = survivor.communicate(timeout=300)
        assert survivor.returncode == 0, output
        # The survivor fails a stale trial as it starts its next one; were it done within the grace period,
        # the next command opening the study does it, with the same heartbeat check.
        time.sleep(max(0.0, params.tune.heartbeat_grace_s + 1 - (time.monotonic() - killed_at)))
        study = optuna.load_study(study_name=name, storage=opened)
        tune_storage.fail_stale_trials(study, opened)
        trials = optuna.load_study(study_name=name, storage=opened).trials
        assert sorted(t.number for t in trials) == list(range(len(trials)))  # each trial once, none lost
        assert all(t.state in FINAL for t in trials), [(t.number, t.state) for t in trials]
        assert trials[running].state == TrialState.FAIL
        by_survivor = [t for t in trials if t.user_attrs.get("worker", "").endswith(f":{survivor.pid}")]
        assert len(by_survivor) == 4 and all(t.state != TrialState.FAIL for t in by_survivor)
        assert len([line for line in output.splitlines() if line.startswith("trial ")]) == 4
        by_victim = [t for t in trials if t not in by_survivor]
        assert [t.number for t in by_victim if t.state == TrialState.FAIL] == [running]
    finally:
        for proc in (victim, survivor):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        try:
            optuna.delete_study(study_name=name, storage=opened)
        except KeyError:
            pass
