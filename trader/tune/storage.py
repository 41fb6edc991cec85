"""Where a study lives (journal file or RDB URL), how it samples and prunes, and stale-trial recovery.

Public Optuna API only: the storage object opened here is passed along with the study wherever a trial
must be changed behind the sampler's back (a trial left RUNNING by a dead worker), instead of reaching
into `study._storage`; heartbeats are read from `RDBStorage.heartbeat_interval`, and a frozen trial's
storage id is looked up from its number with `get_trial_id_from_study_id_trial_number`.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import re
import socket
import warnings
from pathlib import Path

import optuna
import psutil
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from settings import ConfigError, Params, TuneConfig

JOURNAL_SUFFIX = ".log"
PRUNER_STARTUP_TRIALS = 5
"""Trials that run to the end before the pruner may stop any."""
PERCENTILE_KEPT = 25.0
"""`tune.pruner = percentile`: only trials in the top 25 % at each evaluation go on."""
UNNAMED_TRIAL_GRACE_S = 300
"""A RUNNING trial with no worker recorded yet may be one another worker is still sampling: spare it this long."""


# ---------------------------------------------------------------- storage

def storage_spec(params: Params) -> str:
    """tune.storage, or the default journal file `<tune.out>/<study name>.log`."""
    return params.tune.storage or str(Path(params.tune.out) / f"{params.tune.study_name}{JOURNAL_SUFFIX}")


def open_storage(spec: str, tune: TuneConfig | None = None) -> BaseStorage:
    """A journal file for a path ending in .log; an RDB storage with heartbeats for a URL (every
    `tune.heartbeat_s`, stale after `tune.heartbeat_grace_s`; their defaults without `tune`)."""
    tune = tune or TuneConfig()
    if "://" not in spec:
        if not spec.endswith(JOURNAL_SUFFIX):
            raise ConfigError(f"tune.storage = {spec!r}: give an Optuna storage URL (e.g. postgresql://...) or a "
                              f"journal file path ending in {JOURNAL_SUFFIX}")
        Path(spec).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(spec))
    spec = rdb_url(spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use
            return RDBStorage(spec, heartbeat_interval=tune.heartbeat_s, grace_period=tune.heartbeat_grace_s,
                              engine_kwargs={"pool_pre_ping": True})
    except ImportError as exc:  # e.g. no psycopg2 for postgresql://
        raise ConfigError(f"tune.storage = {masked(spec)}: {exc}") from None
    except Exception as exc:  # sqlalchemy: server down, bad credentials, unknown database
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"tune.storage = {masked(spec)}: cannot open it ({message})") from None


def rdb_url(url: str) -> str:
    """A bare postgresql:// URL names the driver that is installed (SQLAlchemy 2.1 assumes psycopg 3)."""
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def masked(spec: str) -> str:
    """A storage URL with its password replaced by ***, for logs and records."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", spec)


def uses_heartbeats(storage: BaseStorage) -> bool:
    """Whether running trials beat (RDB storages as opened here); a journal file has no heartbeats."""
    return isinstance(storage, RDBStorage) and storage.heartbeat_interval is not None


# ---------------------------------------------------------------- the study

def make_pruner(tune: TuneConfig) -> optuna.pruners.BasePruner:
    warmup = tune.evaluations // 3
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=warmup)
    if tune.pruner == "percentile":
        return optuna.pruners.PercentilePruner(PERCENTILE_KEPT, n_startup_trials=PRUNER_STARTUP_TRIALS,
                                               n_warmup_steps=warmup)
    return optuna.pruners.NopPruner()


def make_sampler(seed: int) -> optuna.samplers.BaseSampler:
    # constant_liar: trials running in other workers count as bad guesses, so workers spread out.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def sampler_seed(params: Params, worker: int, trials_before: int) -> int:
    """Distinct per worker and per invocation: a continued study must not replay its first random trials."""
    return (params.train.seed * 1_000_003 + trials_before * 7_919 + worker) % (2**31 - 1)


def open_study(storage: BaseStorage, params: Params, sampler: optuna.samplers.BaseSampler | None = None
               ) -> optuna.Study:
    return optuna.create_study(storage=storage, study_name=params.tune.study_name, direction="maximize",
                               load_if_exists=True, pruner=make_pruner(params.tune), sampler=sampler)


# ---------------------------------------------------------------- workers and stale trials

def worker_id() -> str:
    """`host:pid` of this process, recorded on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_alive(worker: str | None, started: datetime.datetime | None) -> bool:
    """Whether the process named `host:pid` still runs here and is the one that started the trial.

    False for a pid that is gone or was reused by a process started after the trial; also False for a
    trial with no worker recorded or from another host, which cannot be checked without heartbeats.
    """
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        created = psutil.Process(int(pid)).create_time()
    except psutil.Error:
        return False
    return started is None or created <= started.timestamp() + 1.0


def _just_started(trial: FrozenTrial) -> bool:
    started = trial.datetime_start
    return started is not None and (datetime.datetime.now() - started).total_seconds() < UNNAMED_TRIAL_GRACE_S


def fail_stale_trials(study: optuna.Study, storage: BaseStorage, only_workers: set[str] | None = None) -> list[int]:
    """Fail trials a stopped worker left RUNNING; returns their numbers. `storage` is the study's storage.

    RDB storages (heartbeats): trials whose worker stopped beating. Journal files: trials whose worker
    process (recorded as host:pid) is gone from this machine, plus every RUNNING trial from another host
    or with no worker recorded: there is no way to tell those from live ones, hence the caveat that a
    journal study shared by several machines must not be reopened while another invocation works on it.
    `only_workers` limits the check to trials of those workers (the ones this invocation saw die).
    """
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if only_workers is not None:
        running = [t for t in running if t.user_attrs.get("worker") in only_workers]
    if uses_heartbeats(storage) and only_workers is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        still = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        return sorted(t.number for t in running if t.number not in still)
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for trial in running:
        worker = trial.user_attrs.get("worker")
        if worker_alive(worker, trial.datetime_start) or (worker is None and _just_started(trial)):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "failed_reason", "left RUNNING by a stopped worker")
        study.tell(trial.number, state=TrialState.FAIL)
        failed.append(trial.number)
    return failed
