"""The study from start to summary: open it, recover stale trials, run the workers, summarise.

Reads top to bottom: the run record -> worker processes (one per quota; Ctrl-C stops them all) ->
`run_study`, which ties storage, workers and summary together.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import optuna

from settings import ConfigError, Params, replace_path, to_dict
from common.files import sha256_json
from common.provenance import now, update_run_record, write_run_record
from signals.store import Store
from trader.runinfo import store_fields
from trader.train import configure_learner
from trader.tune import Log
from trader.tune.objective import Objective, base_store_if_any, base_variants_dir, open_fast_store
from trader.tune.storage import (fail_stale_trials, make_pruner, make_sampler, masked, open_storage, open_study,
                                 sampler_seed, storage_spec)
from trader.tune.summary import print_flush, progress_callback, summarize


class WorkerError(RuntimeError):
    """A tuning worker process stopped with an error (not a trial: those fail alone)."""


# ---------------------------------------------------------------- the run record

def check_continuation(study: optuna.Study, params: Params, fast: bool, log: Log) -> None:
    """Remember the mode and base parameters of a new study; warn when a continuation changes them."""
    searched = {k: v for k, v in to_dict(params).items() if k != "tune"}
    digest = sha256_json(searched)
    mode = "fast" if fast else "full"
    attrs = study.user_attrs
    if "base_params_sha256" not in attrs:
        study.set_user_attr("base_params_sha256", digest)
        study.set_user_attr("mode", mode)
        return
    if attrs.get("mode") != mode:
        log(f"warning: study {params.tune.study_name!r} was started in {attrs.get('mode')} mode and is continued "
            f"in {mode} mode; its trials are not comparable")
    if attrs["base_params_sha256"] != digest:
        log(f"warning: study {params.tune.study_name!r} is continued with other base parameters than it was "
            f"started with; trials before and after are not comparable")


def tune_fields(params: Params, fast: bool, spec: str, store: Store | None, trials_before: int) -> dict[str, Any]:
    """run.json's fields of this invocation: mode, study, storage, trial count, the store it read."""
    return {
        "cwd": str(Path.cwd()),
        "mode": "fast" if fast else "full",
        "study_name": params.tune.study_name,
        "storage": masked(spec),
        "iterations": params.tune.iterations,
        "jobs": params.tune.jobs,
        "trials_before": trials_before,
        **store_fields(store),
        "objective": "annualised Sharpe net of costs on the validation split, mean over symbols and seeds",
    }


# ---------------------------------------------------------------- workers

@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs (picklable: the storage is reopened inside the worker)."""

    params: Params
    fast: bool
    storage: str
    out_dir: str
    n_trials: int
    timeout: float | None
    keep_checkpoints: bool
    sampler_seed: int
    slot: str = ""
    """Set on a Dask cluster: the trials this worker started carry it, so a rerun of it resumes its quota."""


def split_quota(iterations: int, jobs: int) -> list[int]:
    """Trials per worker: `iterations` split as evenly as possible, no worker without one."""
    jobs = max(1, min(jobs, iterations))
    return [iterations // jobs + (1 if i < iterations % jobs else 0) for i in range(jobs)]


def run_worker(spec: WorkerSpec, log: Log = print_flush) -> None:
    """Add `spec.n_trials` trials to the study; an exception inside a trial fails that trial only.

    With a `spec.slot`, trials an earlier run of the same spec started count against the quota: a Dask task
    rerun after its worker died adds only the rest (its RUNNING trial is failed by the heartbeat).
    """
    configure_learner(spec.params.train.torch_threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=spec.params.tune.study_name,
                              storage=open_storage(spec.storage, spec.params.tune),
                              sampler=make_sampler(spec.sampler_seed), pruner=make_pruner(spec.params.tune))
    n_trials = spec.n_trials
    if spec.slot:
        n_trials -= sum(t.user_attrs.get("slot") == spec.slot for t in study.get_trials(deepcopy=False))
        if n_trials <= 0:
            return
    objective = Objective(spec.params, spec.fast, Path(spec.out_dir), spec.keep_checkpoints, slot=spec.slot)
    study.optimize(objective, n_trials=n_trials, timeout=spec.timeout, catch=(Exception,),
                   callbacks=[progress_callback(log)], gc_after_trial=True)


def _worker_process(spec: WorkerSpec) -> None:
    """Entry point of a worker process."""
    try:
        run_worker(spec)
    except KeyboardInterrupt:
        sys.exit(130)


def run_workers(specs: list[WorkerSpec], start_method: str, log: Log) -> set[str]:
    """One process per spec (never threads); returns the `host:pid` of those that failed. Ctrl-C stops them all."""
    host = socket.gethostname()
    context = mp.get_context(start_method)
    # typeshed's BaseContext has no Process attribute; every context get_context returns has one.
    processes = [context.Process(target=_worker_process, args=(spec,), name=f"tune-worker-{i}",  # type: ignore[attr-defined]
                                 daemon=False)
                 for i, spec in enumerate(specs)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            process.join(timeout=30)  # they got the Ctrl-C too: each fails its trial and stops
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        raise
    dead = set()
    for i, process in enumerate(processes):
        if process.exitcode != 0:
            log(f"worker {i} (pid {process.pid}) exited with code {process.exitcode}; the rest of its quota "
                f"was not run")
            dead.add(f"{host}:{process.pid}")
    return dead


def run_on_cluster(specs: list[WorkerSpec], params: Params, fast: bool, log: Log) -> None:
    """Each spec as a task on the Dask cluster at build.scheduler (`tune.executor = "dask"`); a worker's
    progress lines go to its own log. Raises WorkerError naming the workers that failed."""
    from common.executors import open_pool
    from signals.threads import cap_thread_env

    shared = {Path(params.tune.out): "tune.out (each trial's outputs)"}
    if fast:
        shared[Path(params.build.out)] = "build.out (the store fast trials train on)"
    else:
        shared[Path(base_variants_dir(params))] = "build.variants_dir (the raw variants full trials share)"
    invocation = uuid.uuid4().hex[:8]
    # A trial's own build (full mode) runs in local processes: a worker waiting for cluster tasks that the
    # tuning workers keep from running would deadlock.
    local_builds = replace_path(params, {"build.executor": "process"})
    specs = [dataclasses.replace(s, params=local_builds, slot=f"{invocation}-{i}") for i, s in enumerate(specs)]
    failed = []
    with open_pool("dask", workers=len(specs), initializer=cap_thread_env, scheduler=params.build.scheduler,
                   shared=shared, kill_on_error=False) as pool:
        log(f"tuning workers on {pool.where}")
        futures = [pool.executor.submit(run_worker, s) for s in specs]
        for i, future in enumerate(futures):
            try:
                future.result()
            except Exception as exc:  # each worker's failure is reported; the others finish
                failed.append(f"worker {i}: {type(exc).__name__}: {exc}")
    if failed:
        raise WorkerError(f"{len(failed)} of {len(specs)} tuning worker(s) on the cluster failed ("
                          f"{'; '.join(failed)}); the trials they finished are in the study, run the same command "
                          f"to add the rest")


def fail_trials_of(dead: set[str], params: Params, spec: str, log: Log) -> None:
    """The RUNNING trials of worker processes that died will never finish: fail them now (theirs only)."""
    storage = open_storage(spec, params.tune)
    study = optuna.load_study(study_name=params.tune.study_name, storage=storage)
    lost = fail_stale_trials(study, storage, only_workers=dead)
    if lost:
        log(f"marked trial(s) {lost} of the stopped worker(s) as FAILED")


# ---------------------------------------------------------------- the study

def run_study(params: Params, fast: bool, argv: Sequence[str] = (), timeout: float | None = None,
              keep_checkpoints: bool = False, log: Log = print_flush) -> Path:
    """Add `tune.iterations` trials to the study (over `tune.jobs` processes), then summarise; returns its folder."""
    started = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out_dir = Path(params.tune.out) / params.tune.study_name
    spec = storage_spec(params)
    if params.tune.executor == "dask" and "://" not in spec:
        raise ConfigError(f"tune.executor = dask: tune.storage must be an RDB URL (postgresql://...), which workers "
                          f"on other machines reach and whose heartbeats fail a lost worker's trial (got {spec!r})")
    store = open_fast_store(params) if fast else base_store_if_any(params)
    if not fast and store is None:
        log(f"full mode: no up-to-date base store at {params.build.out}; the first trial computes the variants "
            f"into {base_variants_dir(params)}, later trials reuse them")

    storage = open_storage(spec, params.tune)
    study = open_study(storage, params)
    check_continuation(study, params, fast, log)
    stale = fail_stale_trials(study, storage)
    if stale:
        log(f"marked {len(stale)} trial(s) left RUNNING by a stopped worker as FAILED: {stale}")
    trials_before = len(study.trials)
    write_run_record(out_dir, params, [sys.executable, "-m", "trader.tune", *argv],
                     tune_fields(params, fast, spec, store, trials_before))

    quotas = split_quota(params.tune.iterations, params.tune.jobs)
    log(f"study {params.tune.study_name!r} in {masked(spec)}: {trials_before} trial(s) so far, adding "
        f"{params.tune.iterations} ({'fast' if fast else 'full'} mode) in {len(quotas)} worker process(es) "
        f"{quotas}; outputs in {out_dir}")
    specs = [WorkerSpec(params=params, fast=fast, storage=spec, out_dir=str(out_dir), n_trials=n, timeout=timeout,
                        keep_checkpoints=keep_checkpoints, sampler_seed=sampler_seed(params, i, trials_before))
             for i, n in enumerate(quotas)]
    dead: set[str] = set()
    if params.tune.executor == "dask":
        run_on_cluster(specs, params, fast, log)
    elif len(specs) == 1:
        run_worker(specs[0], log)  # in this process: no start-up cost, and Ctrl-C behaves as usual
    else:
        dead = run_workers(specs, params.train.start_method, log)
        if dead:
            fail_trials_of(dead, params, spec, log)

    study = optuna.load_study(study_name=params.tune.study_name, storage=open_storage(spec, params.tune))
    summary = summarize(study, params, out_dir, log)
    update_run_record(out_dir, {"finished": now(),
                                "wall_seconds": round(time.perf_counter() - started, 2),
                                "failed_workers": sorted(dead), **summary})
    if dead:
        raise WorkerError(f"{len(dead)} of {len(specs)} worker process(es) stopped with an error (see above); "
                          f"the trials they finished are in the study, run the same command to add the rest")
    return out_dir
