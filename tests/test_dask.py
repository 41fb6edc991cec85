"""The build and the walk-forward folds on a real Dask cluster (a LocalCluster of 2 worker processes on
loopback, started here): the same store bit for bit as the process pool, a killed worker, the same folds as
locally, and workers that cannot see the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, run_module, synthetic_store, tiny_params, write_walkforward_params
from common import executors
from common.files import TMP_PREFIX
from settings import load_params, replace_path
from signals import build, store

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """LocalCluster(processes=True, n_workers=2, threads_per_worker=1) on 127.0.0.1, non-daemonic workers."""
    local = executors.local_cluster(2)
    client = distributed.Client(local, set_as_default=False)
    yield {"address": local.scheduler_address, "client": client}
    client.close()
    local.close()


def files(root: Path) -> dict[str, bytes]:
    """Every file of a store but the records of how and when it was built."""
    skip = {"build_info.json", "params.toml", store.MANIFEST}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name not in skip}


def manifest_contents(root: Path) -> dict:
    manifest = json.loads((root / store.MANIFEST).read_text())
    return {k: v for k, v in manifest.items() if k not in ("created", "build")}


# ---------------------------------------------------------------- the build

@pytest.mark.slow
def test_the_dask_build_writes_the_process_pools_store_bit_for_bit_and_closes_its_cluster(market, tmp_path,
                                                                                          monkeypatch):
    """`--executor dask` without a scheduler: the command's own LocalCluster (2 worker processes, one thread
    each, on 127.0.0.1), closed at the end with every process it started."""
    import uuid

    import psutil

    local = build.build(load_params(market["params"]), log=lambda *_: None)
    mark = uuid.uuid4().hex  # in the environment of the command and of every process it starts
    monkeypatch.setenv("RLST_TEST_MARK", mark)
    result = run_module("signals.build", "--params", str(market["params"]), "--executor", "dask",
                        "--out", str(tmp_path / "dask_store"))
    assert result.returncode == 0, result.stderr
    assert "executor: a Dask LocalCluster of 2 worker process(es) on 127.0.0.1" in result.stdout

    def marked(proc: psutil.Process) -> bool:
        try:
            return proc.environ().get("RLST_TEST_MARK") == mark
        except psutil.Error:
            return False

    assert [p for p in psutil.process_iter() if marked(p)] == []
    on_dask = store.open_store(tmp_path / "dask_store")
    assert on_dask.manifest["build"]["variants_computed"] == local.manifest["build"]["variants_computed"] > 0
    expected, got = files(local.root), files(on_dask.root)
    assert list(got) == list(expected) and any(name.startswith("variants/") for name in got)
    assert [name for name in expected if got[name] != expected[name]] == []
    assert manifest_contents(on_dask.root) == manifest_contents(local.root)


@pytest.mark.slow
def test_a_dask_worker_killed_mid_build_is_retried_and_leaves_nothing_half_written(market, cluster):
    """SIGKILL one of the two workers mid-build: the scheduler reruns its tasks on the other (or, past its
    allowed failures, the build stops with a clear error in bounded time); the rerun computes only what is missing."""
    args = [sys.executable, "-m", "signals.build", "--params", str(market["params"]), "--batch-size", "2",
            "--executor", "dask", "--scheduler", cluster["address"], "--set", "signals.variants_per_task=1"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    variants = market["store"] / "variants"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(variants.rglob("*.json"))) < 5 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the build ended before a worker could be killed"
    victim = max(cluster["client"].run(os.getpid).values())
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    stdout, stderr = proc.communicate(timeout=120)
    assert time.monotonic() - killed_at < 90
    done_before = len(list(variants.rglob("*.json")))
    print(f"killed worker {victim}; build exit code {proc.returncode}, {done_before} tasks done")
    if proc.returncode == 0:  # retried on the other worker
        assert store.open_store(market["store"]).manifest["build"]["variants_computed"] == 4 * 106, stdout
    else:
        assert proc.returncode == 2 and "Dask workers died" in stderr, stderr
        assert not (market["store"] / store.MANIFEST).exists()
    cluster["client"].wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    assert not list(market["store"].rglob(TMP_PREFIX + "*"))

    result = run_module("signals.build", "--params", str(market["params"]), "--executor", "dask", "--scheduler",
                        cluster["address"], "--set", "signals.variants_per_task=1")
    assert result.returncode == 0, result.stderr
    opened = store.open_store(market["store"])
    if proc.returncode == 0:
        assert "is up to date" in result.stdout
    else:
        assert f"{done_before} already in the store" in result.stdout
        assert opened.manifest["build"]["variants_computed"] == 4 * 106 - done_before
    assert not list(market["store"].rglob(TMP_PREFIX + "*"))
    for meta in variants.rglob("*.json"):
        json.loads(meta.read_text())
        assert np.load(meta.with_suffix(".npy")).shape[0] == 1500


def test_no_scheduler_at_the_address_is_a_clear_error_naming_the_setting(market, monkeypatch):
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 2.0)
    params = replace_path(load_params(market["params"]), {"build.executor": "dask",
                                                          "build.scheduler": "tcp://127.0.0.1:9"})
    with pytest.raises(build.BuildError, match=r"build.scheduler = 'tcp://127.0.0.1:9': no Dask scheduler answers"):
        build.build(params, log=lambda *_: None)
    assert not (market["store"] / store.MANIFEST).exists()


class LosingPool:
    """A Dask pool whose every task ends as the scheduler ends one whose workers kept dying."""

    kind, slots, where = "dask", 2, "nowhere"

    def __init__(self) -> None:
        from concurrent.futures import Future

        from distributed.scheduler import KilledWorker

        class Executor:
            def submit(self, fn, *args):
                future: Future = Future()
                future.set_exception(KilledWorker("run_task-1", None, 3))
                return future

        self.executor = Executor()

    worker_lost = executors.DaskPool.worker_lost


def test_a_task_whose_dask_workers_keep_dying_is_a_clear_error_naming_it():
    from signals.pool import PoolFailed, feed
    from signals.worker import Task

    tasks = [Task("root", "variants", "AAA", "rsi", f"k{i}", ({"window": 3},)) for i in range(3)]
    with pytest.raises(PoolFailed, match=r"Dask workers died .* each time they ran it, up to the scheduler's "
                                         r"distributed.scheduler.allowed-failures while the pool was running rsi on "
                                         r"AAA; finished tasks are kept, rerun the build"):
        feed(LosingPool(), tasks, batch_size=2, timeout_s=5, progress=None)


class ElsewhereClient:
    """Two workers: one sees this machine's folders; the other sees another filesystem at the same paths."""

    def __init__(self, other: Path) -> None:
        self.other = other

    def run(self, fn, token_path: str, token: str) -> dict:
        moved = self.other / Path(token_path).name  # the same file name in a folder without the token
        return {"tcp://10.0.0.1:4001": fn(token_path, token), "tcp://10.0.0.2:4002": fn(str(moved), token)}


def test_workers_that_do_not_see_the_store_are_named_with_the_folder_and_its_setting(tmp_path):
    (tmp_path / "other").mkdir()
    with pytest.raises(executors.PoolError) as caught:
        executors.check_shared_folders(ElsewhereClient(tmp_path / "other"), {tmp_path / "store": "build.out"},
                                       ".tmp-1-dask-probe")
    message = str(caught.value)
    assert f"{tmp_path / 'store'} (build.out)" in message and "tcp://10.0.0.2:4002" in message
    assert "tcp://10.0.0.1:4001" not in message and "another filesystem" in message
    assert list((tmp_path / "store").iterdir()) == []  # the probe's token is gone again


# ---------------------------------------------------------------- the walk-forward

@pytest.mark.slow
def test_the_walk_forward_on_dask_gives_the_local_figures(tmp_path, cluster):
    from trader import walkforward as wf

    params = load_params(write_walkforward_params(tmp_path))
    local = wf.run(params, [], run_dir=str(tmp_path / "local"), log=lambda *_: None)  # 2 fold processes
    lines: list[str] = []
    on_dask = wf.run(replace_path(params, {"walkforward.executor": "dask", "build.scheduler": cluster["address"]}),
                     [], run_dir=str(tmp_path / "dask"), log=lines.append)
    assert any("folds on Dask scheduler" in line for line in lines)
    assert on_dask["workers"] == 2 and len(on_dask["folds"]) == 2
    assert [f["test"] for f in on_dask["folds"]] == [f["test"] for f in local["folds"]]
    assert [f["validation"] for f in on_dask["folds"]] == [f["validation"] for f in local["folds"]]
    assert on_dask["oos"] == local["oos"]


# ---------------------------------------------------------------- tuning workers

@pytest.mark.slow
def test_tuning_workers_on_dask_add_exactly_their_quota_to_one_study(tmp_path, cluster):
    import optuna
    from optuna.trial import TrialState

    from trader.tune import runner
    from trader.tune import storage as tune_storage

    storage = f"sqlite:///{tmp_path / 'study.db'}"  # an RDB storage with heartbeats, as PostgreSQL is
    params = tiny_params(tmp_path, **{"tune.iterations": 2, "tune.jobs": 2, "tune.executor": "dask",
                                      "tune.storage": storage, "build.scheduler": cluster["address"]})
    synthetic_store(params)
    lines: list[str] = []
    runner.run_study(params, fast=True, log=lines.append)
    assert any("tuning workers on Dask scheduler" in line for line in lines)
    trials = optuna.load_study(study_name="tiny", storage=tune_storage.open_storage(storage)).trials
    assert sorted(t.number for t in trials) == [0, 1]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    slots = sorted(t.user_attrs["slot"] for t in trials)
    assert len(set(slots)) == 2  # two workers, one trial each
    pids = set(cluster["client"].run(os.getpid).values())
    assert {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in trials} <= pids  # run on the cluster

    # A worker rerun after its worker died resumes its quota: the same spec adds nothing more.
    spec = runner.WorkerSpec(params=params, fast=True, storage=storage, out_dir=str(tmp_path / "tune" / "tiny"),
                             n_trials=1, timeout=None, keep_checkpoints=False, sampler_seed=0, slot=slots[0])
    runner.run_worker(spec, log=lines.append)
    assert len(optuna.load_study(study_name="tiny", storage=tune_storage.open_storage(storage)).trials) == 2


def test_tuning_on_dask_refuses_a_journal_file(tmp_path):
    from trader.tune import runner

    params = tiny_params(tmp_path, **{"tune.jobs": 2, "tune.executor": "dask"})
    synthetic_store(params)
    with pytest.raises(runner.ConfigError, match="tune.executor = dask: tune.storage must be an RDB URL"):
        runner.run_study(params, fast=True, log=lambda *_: None)
    assert not (tmp_path / "tune").exists()  # stopped before it wrote anything
