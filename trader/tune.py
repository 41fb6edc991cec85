"""`python -m trader.tune`: Optuna search over the trainer's hyperparameters, scored on the validation split.

Reads top to bottom: arguments -> parameters -> search space (one pure function) -> storage and study
-> the objective (one trial: store, environments, chunked learning with pruning) -> worker processes
-> summary (progress lines, top-3 table, best_params.toml, trials.csv, plots).

What a trial may see. The objective is the agent's annualised Sharpe ratio net of costs on the
VALIDATION split (`trader.evaluate.validation_score`), averaged over `tune.seeds_per_trial` seeds.
Training uses the train split only; nothing in a study opens the test split. Signals were selected on
the training split by `signals.build`.

Fast and full mode. `--fast` uses the signal store at `build.out` as it is (a missing or stale store is
an error telling you to run `python -m signals.build`; it never rebuilds or reselects signals), cuts
N_ENVS, PPO epochs and timesteps to `[tune.fast]` (each cut is a minimum: a cut never raises a budget)
and steps its few environments in-process (batched: the same episodes, no pipe traffic). A sampled
`ppo.n_epochs` above the cut is trained with the cut, but best_params.toml keeps the sampled value, as it
keeps the base N_ENVS and timesteps: the fast budget is for ranking trials, not for the final run.
Full mode also searches the signal selection (`signals.keep_per_family`, `signals.max_correlation`,
`signals.horizon`): each trial builds its own store under `<tune.out>/stores/<cache key[:12]>`, sharing
the raw variants of the base store (`<build.out>/variants`), so only scoring and selection rerun.

Storage. Default: an Optuna journal file `<tune.out>/<study name>.log`, safe for several processes on
one machine. `--storage` takes any Optuna storage URL (`postgresql://user:password@host/db` to spread a
study over machines: run `python -m trader.tune --storage URL` on each) or a path ending in `.log` (a
journal file there). An existing study of the same name is continued; `--iterations` is the number of
trials this invocation adds, split exactly among `--jobs` worker processes.

Crashed workers. Each trial records its worker as `host:pid`. When a worker process of this invocation
dies, its RUNNING trial is marked FAILED at once; trials a killed invocation left RUNNING are marked
FAILED when the study is opened again. Caveat: a journal file has no heartbeats, so a RUNNING trial
whose worker cannot be checked (another host, or none recorded) counts as left behind: do not reopen a
study shared across machines while another invocation is still working on it (on one machine it is
safe: live workers are recognised by their pid). RDB storages (PostgreSQL, SQLite, MySQL) get
heartbeats here, so only trials whose worker stopped beating are failed, and reopening is always safe.

Outputs under `<tune.out>/<study name>/`: params.toml and run.json (the invocation's resolved
parameters, command, versions, store manifest hash), best_params.toml (the full parameter tree with the
best trial's values, and in full mode `build.out` at that trial's store; `python -m trader.train --params
best_params.toml` trains with it as is),
trials.csv, history.png, importances.png, and trials/<number>/ with each trial's params.toml and
result.json (model files only with `--keep-checkpoints`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from settings import (ConfigError, Params, TuneConfig, add_params_arguments, params_from_cli, replace_path, to_dict,
                      to_toml)

if TYPE_CHECKING:  # optuna is imported where it is used: `--help` stays fast
    import optuna

Log = Callable[[str], None]
JOURNAL_SUFFIX = ".log"
HEARTBEAT_INTERVAL_S = 60
"""Seconds between heartbeats of a running trial on RDB storages."""
HEARTBEAT_GRACE_S = 180
"""A RUNNING trial whose worker has not beaten for this long is failed (RDB storages)."""
PRUNER_STARTUP_TRIALS = 5
"""Trials that run to the end before the pruner may stop any."""
PERCENTILE_KEPT = 25.0
"""`tune.pruner = percentile`: only trials in the top 25 % at each evaluation go on."""


# ---------------------------------------------------------------- arguments and parameters

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trader.tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true",
                        help="use the signal store as it is and cut N_ENVS, epochs and timesteps to [tune.fast]")
    parser.add_argument("--iterations", type=int, help="trials this invocation adds (tune.iterations)")
    parser.add_argument("--jobs", type=int, help="worker processes on the same study (tune.jobs)")
    parser.add_argument("--study-name", help="Optuna study name; an existing study is continued (tune.study_name)")
    parser.add_argument("--storage", help="Optuna storage URL or a path ending in .log (tune.storage)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop starting trials after this long")
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep each trial's final model(s)")
    add_params_arguments(parser)
    return parser.parse_args(argv)


def resolve_params(args: argparse.Namespace) -> Params:
    """parameters.toml, then --set, then the dedicated flags (which win)."""
    if args.timeout is not None and not args.timeout > 0:
        raise ConfigError(f"--timeout must be > 0 seconds (got {args.timeout})")
    return params_from_cli(args.params, args.overrides, {
        "tune.iterations": args.iterations, "tune.jobs": args.jobs, "tune.study_name": args.study_name,
        "tune.storage": args.storage})


# ---------------------------------------------------------------- search space

def sample_params(trial: "optuna.Trial", space: TuneConfig, full: bool) -> dict[str, Any]:
    """Dotted-key overrides drawn from `trial` within the ranges of `space`; a pure function of the trial.

    Learning rate, entropy coefficient, 1 - gamma and 1 - GAE lambda on log scales; n_steps, batch size
    and the width of the two hidden layers as powers of two (batch size capped at n_steps, so a rollout
    always splits into whole minibatches); epochs, clip range, observation window and reward. Full mode
    adds the signal selection: variants kept per family, correlation threshold and scoring horizon.
    """
    n_steps = 2 ** trial.suggest_int("n_steps_pow2", *space.n_steps_pow2)
    batch_size = 2 ** trial.suggest_int("batch_size_pow2", *space.batch_size_pow2)
    width = 2 ** trial.suggest_int("net_width_pow2", *space.net_width_pow2)
    values: dict[str, Any] = {
        "ppo.learning_rate": trial.suggest_float("learning_rate", *space.learning_rate, log=True),
        "ppo.n_steps": n_steps,
        "ppo.batch_size": min(batch_size, n_steps),
        "ppo.n_epochs": trial.suggest_int("n_epochs", *space.n_epochs),
        "ppo.gamma": 1.0 - trial.suggest_float("one_minus_gamma", *space.one_minus_gamma, log=True),
        "ppo.gae_lambda": 1.0 - trial.suggest_float("one_minus_gae_lambda", *space.one_minus_gae_lambda, log=True),
        "ppo.clip_range": trial.suggest_categorical("clip_range", space.clip_range),
        "ppo.ent_coef": trial.suggest_float("ent_coef", *space.ent_coef, log=True),
        "ppo.net_arch": [width, width],
        "env.window": trial.suggest_categorical("window", space.window),
        "env.reward": trial.suggest_categorical("reward", space.reward),
    }
    if full:
        values["signals.keep_per_family"] = trial.suggest_int("keep_per_family", *space.keep_per_family)
        values["signals.max_correlation"] = trial.suggest_float("max_correlation", *space.max_correlation)
        values["signals.horizon"] = trial.suggest_categorical("horizon", space.horizon)
    return values


def trial_budget(params: Params, fast: bool) -> dict[str, Any]:
    """What a trial trains for: full mode `tune.timesteps`; fast mode cuts N_ENVS, epochs and timesteps.

    Fast mode also steps its few environments in this process (`tune.fast.vec_env`, default batched):
    every vectorisation gives the same episodes, and with two or so environments worker processes
    cost more in pipe traffic than they save.
    """
    if not fast:
        return {"train.timesteps": params.tune.timesteps}
    cut = params.tune.fast
    return {"train.timesteps": min(params.tune.timesteps, cut.timesteps),
            "train.n_envs": min(params.train.n_envs, cut.n_envs),
            "ppo.n_epochs": min(params.ppo.n_epochs, cut.n_epochs),
            "train.vec_env": cut.vec_env}


def trial_params(base: Params, overrides: dict[str, Any], fast: bool) -> Params:
    """The tree one trial trains with: base, the sampled overrides, then the trial budget (fast cuts win)."""
    budget = trial_budget(replace_path(base, overrides), fast)
    return replace_path(base, {**overrides, **budget})


# ---------------------------------------------------------------- storage and study

def storage_spec(params: Params) -> str:
    """tune.storage, or the default journal file `<tune.out>/<study name>.log`."""
    return params.tune.storage or str(Path(params.tune.out) / f"{params.tune.study_name}{JOURNAL_SUFFIX}")


def open_storage(spec: str) -> "optuna.storages.BaseStorage":
    """A journal file for a path ending in .log; an RDB storage with heartbeats for a URL."""
    import optuna

    if "://" not in spec:
        if not spec.endswith(JOURNAL_SUFFIX):
            raise ConfigError(f"tune.storage = {spec!r}: give an Optuna storage URL (e.g. postgresql://...) or a "
                              f"journal file path ending in {JOURNAL_SUFFIX}")
        Path(spec).parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(spec))
    import warnings

    spec = rdb_url(spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use
            return optuna.storages.RDBStorage(spec, heartbeat_interval=HEARTBEAT_INTERVAL_S,
                                              grace_period=HEARTBEAT_GRACE_S,
                                              engine_kwargs={"pool_pre_ping": True})
    except ImportError as exc:  # e.g. no psycopg2 for postgresql://
        raise ConfigError(f"tune.storage = {masked(spec)}: {exc}") from None
    except Exception as exc:  # sqlalchemy: server down, bad credentials, unknown database
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"tune.storage = {masked(spec)}: cannot open it ({message})") from None


def rdb_url(url: str) -> str:
    """A bare postgresql:// URL names the driver that is installed (SQLAlchemy 2.1 assumes psycopg 3)."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def masked(spec: str) -> str:
    """A storage URL with its password replaced by ***, for logs and records."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", spec)


def make_pruner(tune: TuneConfig) -> "optuna.pruners.BasePruner":
    import optuna

    warmup = tune.evaluations // 3
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=warmup)
    if tune.pruner == "percentile":
        return optuna.pruners.PercentilePruner(PERCENTILE_KEPT, n_startup_trials=PRUNER_STARTUP_TRIALS,
                                               n_warmup_steps=warmup)
    return optuna.pruners.NopPruner()


def make_sampler(seed: int) -> "optuna.samplers.BaseSampler":
    import optuna

    # constant_liar: trials running in other workers count as bad guesses, so workers spread out.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def sampler_seed(params: Params, worker: int, trials_before: int) -> int:
    """Distinct per worker and per invocation: a continued study must not replay its first random trials."""
    return (params.train.seed * 1_000_003 + trials_before * 7_919 + worker) % (2**31 - 1)


def open_study(storage: Any, params: Params, sampler: Any = None) -> "optuna.Study":
    import optuna

    return optuna.create_study(storage=storage, study_name=params.tune.study_name, direction="maximize",
                               load_if_exists=True, pruner=make_pruner(params.tune), sampler=sampler)


def worker_id() -> str:
    """`host:pid` of this process, recorded on each trial it runs."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def worker_alive(worker: str | None, started: Any) -> bool:
    """Whether the process named `host:pid` still runs here and is the one that started the trial.

    False for a pid that is gone or was reused by a process started after the trial; also False for a
    trial with no worker recorded or from another host, which cannot be checked without heartbeats.
    """
    import socket

    import psutil

    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        created = psutil.Process(int(pid)).create_time()
    except psutil.Error:
        return False
    return started is None or created <= started.timestamp() + 1.0


UNNAMED_TRIAL_GRACE_S = 300
"""A RUNNING trial with no worker recorded yet may be one another worker is still sampling: spare it this long."""


def _just_started(trial: "optuna.trial.FrozenTrial") -> bool:
    import datetime

    started = trial.datetime_start
    return started is not None and (datetime.datetime.now() - started).total_seconds() < UNNAMED_TRIAL_GRACE_S


def fail_stale_trials(study: "optuna.Study", only_workers: set[str] | None = None) -> list[int]:
    """Fail trials a stopped worker left RUNNING; returns their numbers.

    RDB storages (heartbeats): trials whose worker stopped beating. Journal files: trials whose worker
    process (recorded as host:pid) is gone from this machine, plus every RUNNING trial from another host
    or with no worker recorded: there is no way to tell those from live ones, hence the caveat that a
    journal study shared by several machines must not be reopened while another invocation works on it.
    `only_workers` limits the check to trials of those workers (the ones this invocation saw die).
    """
    import optuna
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if only_workers is not None:
        running = [t for t in running if t.user_attrs.get("worker") in only_workers]
    if is_heartbeat_enabled(study._storage) and only_workers is None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        still = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        return sorted(t.number for t in running if t.number not in still)
    failed = []
    for trial in running:
        worker = trial.user_attrs.get("worker")
        if worker_alive(worker, trial.datetime_start) or (worker is None and _just_started(trial)):
            continue
        study._storage.set_trial_user_attr(trial._trial_id, "failed_reason", "left RUNNING by a stopped worker")
        study.tell(trial.number, state=TrialState.FAIL)
        failed.append(trial.number)
    return failed


def split_quota(iterations: int, jobs: int) -> list[int]:
    """Trials per worker: `iterations` split as evenly as possible, no worker without one."""
    jobs = max(1, min(jobs, iterations))
    return [iterations // jobs + (1 if i < iterations % jobs else 0) for i in range(jobs)]


# ---------------------------------------------------------------- the objective

def open_fast_store(params: Params) -> Any:
    """The store at build.out, exactly as built for these parameters; never (re)built here."""
    from signals.build import store_cache_key
    from signals.store import StoreError, open_store

    try:
        return open_store(params.build.out, expected_key=store_cache_key(params))
    except StoreError as exc:
        raise StoreError(f"tune --fast uses the signal store as it is and never rebuilds it: {exc}") from None


def build_trial_store(params: Params, variants_dir: str, log: Log) -> tuple[Params, Any]:
    """Full mode: the trial's own store under <tune.out>/stores/<key[:12]>, sharing the base variants."""
    from signals.build import build, store_cache_key

    out = Path(params.tune.out) / "stores" / store_cache_key(params)[:12]
    params = replace_path(params, {"build.out": str(out), "build.variants_dir": variants_dir})
    return params, build(params, log=log)


def base_variants_dir(params: Params) -> str:
    return params.build.variants_dir or str(Path(params.build.out) / "variants")


def chunk_targets(timesteps: int, evaluations: int) -> list[int]:
    """Step counts at which a trial is evaluated and reported: `evaluations` equal chunks of `timesteps`."""
    n = max(1, min(evaluations, timesteps))
    return [round(timesteps * k / n) for k in range(1, n + 1)]


def diverged(model: Any) -> str | None:
    """Why a model has diverged (non-finite loss or weights), or None."""
    import torch

    loss = model.logger.name_to_value.get("train/loss") if model.logger is not None else None
    if loss is not None and not math.isfinite(float(loss)):
        return f"training loss is {loss}"
    for name, tensor in model.policy.named_parameters():
        if not bool(torch.isfinite(tensor).all()):
            return f"policy weights {name} are not finite"
    return None


def train_and_score(trial: "optuna.Trial", params: Params, store: Any, trial_dir: Path,
                    keep_checkpoints: bool, record: dict[str, Any]) -> float:
    """Learn in `tune.evaluations` chunks; after each, every seed's validation Sharpe, their mean reported."""
    import optuna

    from trader.evaluate import validation_score
    from trader.train import learner_device, make_training_env, new_model

    device = learner_device(params.train.device)
    seeds = [params.train.seed + i for i in range(params.tune.seeds_per_trial)]
    targets = chunk_targets(params.train.timesteps, params.tune.evaluations)
    record["seeds"], record["history"] = seeds, []
    with contextlib.ExitStack() as envs:  # every environment closed, whatever happens
        models = []
        for seed in seeds:
            env = make_training_env(params, store.root, params.train.n_envs, seed, params.train.vec_env)
            envs.callback(env.close)
            seeded = params if seed == params.train.seed else replace_path(params, {"train.seed": seed})
            models.append(new_model(seeded, env, device))
        scores = [math.nan] * len(models)
        value = math.nan
        for step, target in enumerate(targets, start=1):
            for i, model in enumerate(models):
                if model.num_timesteps >= target:  # a rollout overshot this chunk: the score stands
                    continue
                try:
                    model.learn(total_timesteps=target - model.num_timesteps, reset_num_timesteps=False,
                                log_interval=None)
                except Exception as exc:  # NaN logits raise inside the policy's distribution
                    reason = diverged(model)
                    if reason:
                        raise optuna.TrialPruned(f"diverged: {reason}") from exc
                    raise
                reason = diverged(model)
                if reason:
                    raise optuna.TrialPruned(f"diverged: {reason}")
                scores[i] = validation_score(model, store, params)
            value = float(sum(scores) / len(scores))
            record["history"].append({"step": step, "timesteps": target, "value": value, "per_seed": list(scores)})
            if not math.isfinite(value):
                raise optuna.TrialPruned(f"diverged: validation Sharpe is {value}")
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned by the {params.tune.pruner} pruner at evaluation {step}")
        record["num_timesteps"] = [m.num_timesteps for m in models]
        if keep_checkpoints:
            from trader.callbacks import save_model_atomically

            for seed, model in zip(seeds, models):
                save_model_atomically(model, trial_dir / f"model_seed{seed}.zip")
    return value


class WorkerError(RuntimeError):
    """A tuning worker process stopped with an error (not a trial: those fail alone)."""


class Objective:
    """One trial: sample, resolve the trial's parameters, get its store, train, score on validation.

    Writes trials/<number>/params.toml (what the trial trained with) and result.json whatever the outcome.
    """

    def __init__(self, params: Params, fast: bool, out_dir: Path, keep_checkpoints: bool = False) -> None:
        self.params = params
        self.fast = fast
        self.out_dir = Path(out_dir)
        self.keep_checkpoints = keep_checkpoints
        self.store = open_fast_store(params) if fast else None
        self.variants_dir = base_variants_dir(params)

    def __call__(self, trial: "optuna.Trial") -> float:
        import optuna

        started = time.perf_counter()
        trial.set_user_attr("worker", worker_id())
        overrides = sample_params(trial, self.params.tune, full=not self.fast)
        trial.set_user_attr("mode", "fast" if self.fast else "full")
        trial.set_user_attr("overrides", overrides)
        trial_dir = self.out_dir / "trials" / f"{trial.number:05d}"
        trial_dir.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"number": trial.number, "mode": "fast" if self.fast else "full",
                                  "overrides": overrides, "state": "running"}
        try:
            params = trial_params(self.params, overrides, self.fast)
            train_overrides = dict(overrides)
            if self.fast:
                store = self.store
            else:
                build_log: list[str] = []
                params, store = build_trial_store(params, self.variants_dir, build_log.append)
                train_overrides.update({"build.out": params.build.out, "build.variants_dir": self.variants_dir})
                record["build_log"] = build_log[-3:]
            trial.set_user_attr("train_overrides", train_overrides)
            record["store"] = str(store.root)
            record["store_manifest_sha256"] = store.manifest_hash
            from signals.store import save_text

            save_text(trial_dir / "params.toml", to_toml(params))
            value = train_and_score(trial, params, store, trial_dir, self.keep_checkpoints, record)
            record.update(state="complete", value=value)
            return value
        except optuna.TrialPruned as exc:
            trial.set_user_attr("pruned_reason", str(exc))
            record.update(state="pruned", reason=str(exc))
            raise
        except BaseException as exc:
            trial.set_user_attr("failed_reason", f"{type(exc).__name__}: {exc}")
            record.update(state="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            from signals.store import save_json

            record["seconds"] = round(time.perf_counter() - started, 3)
            save_json(trial_dir / "result.json", record)


# ---------------------------------------------------------------- progress lines

def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def format_overrides(overrides: dict[str, Any]) -> str:
    return " ".join(f"{key.split('.', 1)[-1]}={format_value(v)}" for key, v in overrides.items())


def trial_line(trial: "optuna.trial.FrozenTrial") -> str:
    """One line per finished trial: number, outcome, value, seconds, parameters."""
    from optuna.trial import TrialState

    seconds = trial.duration.total_seconds() if trial.duration is not None else float("nan")
    overrides = trial.user_attrs.get("overrides", trial.params)
    if trial.state == TrialState.COMPLETE:
        outcome = f"value {trial.value:+.4f}"
    elif trial.state == TrialState.PRUNED:
        last = trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None
        at = f" at evaluation {max(trial.intermediate_values)} ({last:+.4f})" if last is not None else ""
        why = " (diverged)" if str(trial.user_attrs.get("pruned_reason", "")).startswith("diverged") else ""
        outcome = f"pruned{at}{why}"
    else:
        outcome = f"{trial.state.name.lower()}: {trial.user_attrs.get('failed_reason', 'see the log above')}"
    return f"trial {trial.number:>4}  {outcome}  [{seconds:.1f} s]  {format_overrides(overrides)}"


def progress_callback(log: Log) -> Callable[["optuna.Study", "optuna.trial.FrozenTrial"], None]:
    return lambda study, trial: log(trial_line(trial))


def print_flush(message: str) -> None:
    print(message, flush=True)


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


def run_worker(spec: WorkerSpec, log: Log = print_flush) -> None:
    """Add `spec.n_trials` trials to the study; an exception inside a trial fails that trial only."""
    import optuna

    from trader.train import configure_learner

    configure_learner(spec.params.train.torch_threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=spec.params.tune.study_name, storage=open_storage(spec.storage),
                              sampler=make_sampler(spec.sampler_seed), pruner=make_pruner(spec.params.tune))
    objective = Objective(spec.params, spec.fast, Path(spec.out_dir), spec.keep_checkpoints)
    study.optimize(objective, n_trials=spec.n_trials, timeout=spec.timeout, catch=(Exception,),
                   callbacks=[progress_callback(log)], gc_after_trial=True)


def _worker_process(spec: WorkerSpec) -> None:
    """Entry point of a worker process."""
    try:
        run_worker(spec)
    except KeyboardInterrupt:
        sys.exit(130)


def run_workers(specs: list[WorkerSpec], start_method: str, log: Log) -> set[str]:
    """One process per spec (never threads); returns the `host:pid` of those that failed. Ctrl-C stops them all."""
    import socket

    host = socket.gethostname()
    context = mp.get_context(start_method)
    processes = [context.Process(target=_worker_process, args=(spec,), name=f"tune-worker-{i}", daemon=False)
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


# ---------------------------------------------------------------- the study

def run_study(params: Params, fast: bool, argv: Sequence[str] = (), timeout: float | None = None,
              keep_checkpoints: bool = False, log: Log = print_flush) -> Path:
    """Add `tune.iterations` trials to the study (over `tune.jobs` processes), then summarise; returns its folder."""
    import optuna

    started = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out_dir = Path(params.tune.out) / params.tune.study_name
    spec = storage_spec(params)
    store = open_fast_store(params) if fast else _base_store_if_any(params)
    if not fast and store is None:
        log(f"full mode: no up-to-date base store at {params.build.out}; the first trial computes the variants "
            f"into {base_variants_dir(params)}, later trials reuse them")

    storage = open_storage(spec)
    study = open_study(storage, params)
    _check_continuation(study, params, fast, log)
    stale = fail_stale_trials(study)
    if stale:
        log(f"marked {len(stale)} trial(s) left RUNNING by a stopped worker as FAILED: {stale}")
    trials_before = len(study.trials)
    write_run_record(out_dir, params, fast, spec, store, trials_before, argv)

    quotas = split_quota(params.tune.iterations, params.tune.jobs)
    log(f"study {params.tune.study_name!r} in {masked(spec)}: {trials_before} trial(s) so far, adding "
        f"{params.tune.iterations} ({'fast' if fast else 'full'} mode) in {len(quotas)} worker process(es) "
        f"{quotas}; outputs in {out_dir}")
    specs = [WorkerSpec(params=params, fast=fast, storage=spec, out_dir=str(out_dir), n_trials=n, timeout=timeout,
                        keep_checkpoints=keep_checkpoints, sampler_seed=sampler_seed(params, i, trials_before))
             for i, n in enumerate(quotas)]
    dead: set[str] = set()
    if len(specs) == 1:
        run_worker(specs[0], log)  # in this process: no start-up cost, and Ctrl-C behaves as usual
    else:
        dead = run_workers(specs, params.train.start_method, log)
        if dead:  # their RUNNING trials will never finish: fail them now (theirs only)
            lost = fail_stale_trials(optuna.load_study(study_name=params.tune.study_name, storage=open_storage(spec)),
                                     only_workers=dead)
            if lost:
                log(f"marked trial(s) {lost} of the stopped worker(s) as FAILED")

    from trader.runinfo import update_run_record

    study = optuna.load_study(study_name=params.tune.study_name, storage=open_storage(spec))
    summary = summarize(study, params, out_dir, log)
    update_run_record(out_dir, {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "wall_seconds": round(time.perf_counter() - started, 2),
                                 "failed_workers": sorted(dead), **summary})
    if dead:
        raise WorkerError(f"{len(dead)} of {len(specs)} worker process(es) stopped with an error (see above); "
                          f"the trials they finished are in the study, run the same command to add the rest")
    return out_dir


def _base_store_if_any(params: Params) -> Any:
    from signals.store import StoreError

    try:
        return open_fast_store(params)
    except (StoreError, ConfigError):
        return None


def _check_continuation(study: "optuna.Study", params: Params, fast: bool, log: Log) -> None:
    """Remember the mode and base parameters of a new study; warn when a continuation changes them."""
    from signals.store import sha256_json

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


def write_run_record(out_dir: Path, params: Params, fast: bool, spec: str, store: Any, trials_before: int,
                     argv: Sequence[str]) -> None:
    """params.toml (resolved) and run.json (command, versions, storage, store manifest hash) of this invocation."""
    from signals.build import package_versions
    from signals.store import save_json, save_text

    save_text(out_dir / "params.toml", to_toml(params))
    save_json(out_dir / "run.json", {
        "command": [sys.executable, "-m", "trader.tune", *argv],
        "cwd": str(Path.cwd()),
        "mode": "fast" if fast else "full",
        "study_name": params.tune.study_name,
        "storage": masked(spec),
        "iterations": params.tune.iterations,
        "jobs": params.tune.jobs,
        "trials_before": trials_before,
        "store": str(store.root) if store is not None else None,
        "store_manifest_sha256": store.manifest_hash if store is not None else None,
        "store_cache_key": store.manifest.get("cache_key") if store is not None else None,
        "objective": "annualised Sharpe net of costs on the validation split, mean over symbols and seeds",
        "versions": package_versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })


# ---------------------------------------------------------------- summary

def best_training_overrides(trial: "optuna.trial.FrozenTrial", space: TuneConfig) -> dict[str, Any]:
    """What best_params.toml changes in the base tree: the trial's sampled values (and, full mode, its store)."""
    import optuna

    if "train_overrides" in trial.user_attrs:
        return dict(trial.user_attrs["train_overrides"])
    full = trial.user_attrs.get("mode") == "full"
    return sample_params(optuna.trial.FixedTrial(trial.params), space, full=full)


def summarize(study: "optuna.Study", params: Params, out_dir: Path, log: Log = print_flush) -> dict[str, Any]:
    """Top-3 table, best_params.toml, trials.csv and plots; returns counts for the run record."""
    from optuna.trial import TrialState

    from signals.store import save_text

    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value, reverse=True)
    log(f"{len(trials)} trial(s) in the study: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_trials_csv(study, out_dir / "trials.csv")
    summary: dict[str, Any] = {"trials": len(trials), "states": counts}
    if not complete:
        log("no complete trial: no best_params.toml (see the progress lines above for why trials failed)")
        return summary
    log(top_table(complete[:3], len(trials)))
    best = complete[0]
    best_params = replace_path(params, best_training_overrides(best, params.tune))
    save_text(out_dir / "best_params.toml", to_toml(best_params))
    log(f"best: trial {best.number}, validation Sharpe {best.value:+.4f}; train with it: "
        f"python -m trader.train --params {out_dir / 'best_params.toml'}")
    summary.update(best_trial=best.number, best_value=best.value)
    write_plots(study, out_dir, len(complete), log)
    return summary


def top_table(top: list["optuna.trial.FrozenTrial"], total: int) -> str:
    """The best trials side by side, one row per parameter."""
    columns = [f"#{i} (trial {t.number})" for i, t in enumerate(top, start=1)]
    rows = [("validation Sharpe", [f"{t.value:+.4f}" for t in top]),
            ("seconds", [f"{t.duration.total_seconds():.1f}" if t.duration else "" for t in top])]
    keys = list(dict.fromkeys(k for t in top for k in t.user_attrs.get("overrides", t.params)))
    for key in keys:
        rows.append((key, [format_value(t.user_attrs.get("overrides", t.params).get(key, "")) for t in top]))
    width = max(len(name) for name, _ in rows)
    col = max(len(cell) for cell in columns + [v for _, values in rows for v in values])
    lines = [f"top {len(top)} of {total} trial(s) (objective: validation Sharpe net of costs)",
             " " * width + "".join(f"  {c:>{col}}" for c in columns)]
    lines += [f"{name:<{width}}" + "".join(f"  {v:>{col}}" for v in values) for name, values in rows]
    return "\n".join(lines)


def write_trials_csv(study: "optuna.Study", path: Path) -> None:
    from signals.store import save_text

    frame = study.trials_dataframe(attrs=("number", "state", "value", "datetime_start", "datetime_complete",
                                          "duration", "params", "user_attrs"))
    if "duration" in frame:
        frame["duration"] = frame["duration"].dt.total_seconds()
    save_text(path, frame.to_csv(index=False))


def write_plots(study: "optuna.Study", out_dir: Path, n_complete: int, log: Log) -> None:
    """history.png always; importances.png from 2 complete trials (skipped with a note otherwise)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's ExperimentalWarning on its matplotlib backend
        axes = optuna_plots.plot_optimization_history(study, target_name="validation Sharpe")
        axes.figure.savefig(out_dir / "history.png", dpi=100, bbox_inches="tight")
        plt.close(axes.figure)
        if n_complete < 2:
            log("importances.png skipped: parameter importances need at least 2 complete trials")
            return
        try:
            axes = optuna_plots.plot_param_importances(study)
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            log(f"importances.png skipped: {exc}")
            return
        axes.figure.savefig(out_dir / "importances.png", dpi=100, bbox_inches="tight")
        plt.close(axes.figure)


# ---------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    from signals.build import BuildError
    from signals.store import StoreError
    from trader.train import stop_on_sigint

    stop_on_sigint()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        params = resolve_params(args)
        run_study(params, fast=args.fast, argv=argv, timeout=args.timeout, keep_checkpoints=args.keep_checkpoints)
    except (ConfigError, StoreError, BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WorkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished trials are in the study; run the same command to continue it", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
