"""The one config tree: typed, frozen dataclasses, one per `[section]` of parameters.toml.

Every field has a default and a one-line docstring under it. Derived values are properties,
never written back. Checks live in `__post_init__` and raise `FieldError(key, message)`; the
loader turns that into a `ConfigError` naming the full key path (e.g. `env.window`).
Stdlib only: signals, envs and trader all import this package, it imports none of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from settings.choices import (ACTION_MODES, DATA_FORMATS, DEVICES, DRIFT_TESTS, EXECUTORS, LEARNERS, PRUNERS,
                              REWARDS, SCORE_BACKENDS, SPLIT_CALENDARS, START_METHODS, VEC_ENVS,
                              WALKFORWARD_WINDOWS)


class FieldError(ValueError):
    """A bad value for one field; the loader adds the section path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def require(ok: bool, key: str, message: str) -> None:
    """Raise FieldError(key, message) unless ok."""
    if not ok:
        raise FieldError(key, message)


def require_choice(value: str, choices: tuple[str, ...], key: str) -> None:
    require(value in choices, key, f"must be one of {', '.join(choices)} (got {value!r})")


"""Where independent jobs run (common.executors): local worker processes, or a Dask cluster."""
_SCHEDULER = re.compile(r"^[a-z][a-z0-9+]*://[^\s/:]+(:\d+)?$")


def require_scheduler(value: str, key: str) -> None:
    """Empty, or a scheduler address `scheme://host[:port]` (tcp://10.0.0.5:8786, tls://...)."""
    require(not value or bool(_SCHEDULER.match(value)), key,
            f"must be a Dask scheduler address like tcp://host:8786, or empty for a LocalCluster (got {value!r})")


def require_fraction(value: float, key: str, *, open_low: bool = False) -> None:
    ok = (0.0 < value <= 1.0) if open_low else (0.0 <= value <= 1.0)
    require(ok, key, f"must be a fraction in {'(0' if open_low else '[0'}, 1] (got {value})")


@dataclass(frozen=True)
class DataConfig:
    paths: tuple[str, ...] = ("data/FOREX_EURUSD_1H_ASK.csv", "data/STOCKS_GOOGL.csv")
    """Market data files, one symbol per file (CSV or Parquet), relative to the working directory."""
    format: str = "auto"
    """File format: auto (detected), plain, dayfirst, index, mt5 or parquet."""
    mirror: bool = True
    """Train also on each symbol's mirror image (prices inverted): no direction is learnt from the period alone."""

    def __post_init__(self) -> None:
        require(len(self.paths) > 0, "paths", "needs at least one data file")
        require_choice(self.format, DATA_FORMATS, "format")


"""How split dates are placed: the same for every symbol, or each symbol on its own bars (signals.splits)."""


@dataclass(frozen=True)
class SplitConfig:
    train: float = 0.6
    """Fraction of usable bars (after warm-up) in the training split."""
    validation: float = 0.2
    """Fraction of usable bars in the validation split; the test split gets the rest."""
    train_end: str = ""
    """ISO date ending the training split; when set, it wins over the fraction."""
    validation_end: str = ""
    """ISO date ending the validation split; when set, it wins over the fraction."""
    extra_embargo: int = 0
    """Bars purged after each cut on top of the scoring horizon (features are causal: the past needs no purge)."""
    calendar: str = "common"
    """"common": every symbol cut at the same dates (no bar of one inside another's later split); "per_symbol"."""
    start: str = ""
    """ISO date before which no bar is in any split (a walk-forward fold's start); empty: the first bar."""
    end: str = ""
    """ISO date from which no bar is in any split (a walk-forward fold's end); empty: past the last bar."""
    min_bars: int = 50
    """Fewest bars any symbol may have in any split (walk-forward folds use walkforward.min_bars)."""

    def __post_init__(self) -> None:
        require_choice(self.calendar, SPLIT_CALENDARS, "calendar")
        require_fraction(self.train, "train", open_low=True)
        require_fraction(self.validation, "validation", open_low=True)
        require(self.train + self.validation < 1.0, "validation",
                f"train + validation must leave bars for the test split (got {self.train} + {self.validation})")
        require(self.extra_embargo >= 0, "extra_embargo", f"must be >= 0 (got {self.extra_embargo})")
        require(self.min_bars >= 2, "min_bars", f"must be >= 2 (got {self.min_bars})")


@dataclass(frozen=True)
class CostsConfig:
    commission_bps: float = 1.0
    """Commission in basis points of traded notional, charged on every change of position."""
    half_spread_bps: float = 1.0
    """Half the bid-ask spread in basis points, charged on every change of position."""
    slippage_bps: float = 0.0
    """Extra slippage in basis points per unit of position traded."""

    def __post_init__(self) -> None:
        for name in ("commission_bps", "half_spread_bps", "slippage_bps"):
            value = getattr(self, name)
            require(0.0 <= value < 1e4, name, f"must be in [0, 10000) basis points (got {value})")

    @property
    def total_bps(self) -> float:
        """Cost of trading one unit of position, in basis points."""
        return self.commission_bps + self.half_spread_bps + self.slippage_bps


@dataclass(frozen=True)
class SignalsConfig:
    horizon: int = 1
    """Bars ahead of the forward return that variants are scored against."""
    keep_per_family: int = 3
    """Most variants kept per indicator family."""
    max_correlation: float = 0.7
    """A variant whose |correlation| with one already kept exceeds this is dropped."""
    max_features: int = 0
    """Most variants kept in all (the best-scored first); 0: no cap beyond keep_per_family."""
    variants_per_task: int = 16
    """Parameter variants computed by one pool task (family x chunk x symbol)."""
    score_backend: str = "jax"
    """Scorer: jax (jit/vmap, GPU where JAX sees one) or numpy (the reference)."""
    families: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """Parameter grid per family: {family: {param: [values]}}; a family left out uses its built-in grid."""
    disabled: tuple[str, ...] = ()
    """Families not computed at all."""

    def __post_init__(self) -> None:
        require(self.horizon >= 1, "horizon", f"must be >= 1 bar (got {self.horizon})")
        require(self.keep_per_family >= 1, "keep_per_family", f"must be >= 1 (got {self.keep_per_family})")
        require_fraction(self.max_correlation, "max_correlation", open_low=True)
        require(self.max_features >= 0, "max_features", f"must be >= 0, 0 for no cap (got {self.max_features})")
        require(self.variants_per_task >= 1, "variants_per_task", f"must be >= 1 (got {self.variants_per_task})")
        require_choice(self.score_backend, SCORE_BACKENDS, "score_backend")
        for family, grid in self.families.items():
            require(isinstance(grid, dict), f"families.{family}", "must be a table of param = [values]")
            for param, values in grid.items():
                require(isinstance(values, list) and len(values) > 0, f"families.{family}.{param}",
                        "must be a non-empty list of values")


@dataclass(frozen=True)
class BuildConfig:
    out: str = "data/signals"
    """Directory of the signal store."""
    variants_dir: str = ""
    """Directory of the raw variant arrays (a cache shared by stores); empty: <out>/variants."""
    workers: int = 0
    """Worker processes; 0 means the cores available to this process."""
    batch_size: int = 20
    """Tasks submitted to the pool at a time."""
    start_method: str = "forkserver"
    """multiprocessing start method; forkserver and spawn are safe with torch and JAX loaded."""
    task_timeout_s: float = 600.0
    """A task that has not finished after this many seconds is an error, not a hang."""
    executor: str = "process"
    """process: local worker processes; dask: a Dask cluster (the store on a filesystem every worker sees)."""
    scheduler: str = ""
    """Dask scheduler address (tcp://host:8786); empty: a LocalCluster of `workers` processes on this machine."""

    def __post_init__(self) -> None:
        require(self.workers >= 0, "workers", f"must be >= 0 (got {self.workers})")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1 (got {self.batch_size})")
        require_choice(self.start_method, START_METHODS, "start_method")
        require(self.task_timeout_s > 0, "task_timeout_s", f"must be > 0 (got {self.task_timeout_s})")
        require_choice(self.executor, EXECUTORS, "executor")
        require_scheduler(self.scheduler, "scheduler")


@dataclass(frozen=True)
class EnvConfig:
    window: int = 1
    """Rows of features in each observation."""
    action_mode: str = "discrete"
    """discrete (short/flat/long), long_only (flat/long) or continuous (target position in [-1, 1])."""
    reward: str = "log_return"
    """log_return (net of costs) or differential_sharpe."""
    normalise_reward: bool = True
    """Divide the reward by the symbol's per-bar volatility on the training split (costs stay in full)."""
    trade_penalty: float = 1.0
    """Training reward minus this times the cost of each change of position (equity pays the cost once)."""
    drawdown_penalty: float = 0.0
    """Reward minus this times the increase of the drawdown at each step."""
    dsr_eta: float = 0.01
    """Adaptation rate of the differential Sharpe ratio's moving moments."""
    episode_length: int = 512
    """Steps per training episode (random start); a symbol whose training split is shorter has episodes of its
    whole split (the run's log says which); evaluation episodes run the whole split."""

    def __post_init__(self) -> None:
        require(self.window >= 1, "window", f"must be >= 1 (got {self.window})")
        require_choice(self.action_mode, ACTION_MODES, "action_mode")
        require_choice(self.reward, REWARDS, "reward")
        require(self.drawdown_penalty >= 0, "drawdown_penalty", f"must be >= 0 (got {self.drawdown_penalty})")
        require(self.trade_penalty >= 0, "trade_penalty", f"must be >= 0 (got {self.trade_penalty})")
        require(0 < self.dsr_eta < 1, "dsr_eta", f"must be in (0, 1) (got {self.dsr_eta})")
        require(self.episode_length >= 2, "episode_length", f"must be >= 2 (got {self.episode_length})")


@dataclass(frozen=True)
class PPOConfig:
    learning_rate: float = 3e-4
    """Adam learning rate."""
    n_steps: int = 256
    """Steps per environment per rollout."""
    batch_size: int = 256
    """Minibatch size of the PPO update."""
    n_epochs: int = 5
    """Passes over each rollout in the update."""
    gamma: float = 0.95
    """Discount factor."""
    gae_lambda: float = 0.8
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO clipping parameter."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the policy and value networks."""

    def __post_init__(self) -> None:
        require(0 < self.learning_rate < 1, "learning_rate", f"must be in (0, 1) (got {self.learning_rate})")
        require(self.n_steps >= 2, "n_steps", f"must be >= 2 (got {self.n_steps})")
        require(self.batch_size >= 2, "batch_size", f"must be >= 2 (got {self.batch_size})")
        require(self.n_epochs >= 1, "n_epochs", f"must be >= 1 (got {self.n_epochs})")
        require(0 < self.gamma <= 1, "gamma", f"must be in (0, 1] (got {self.gamma})")
        require(0 < self.gae_lambda <= 1, "gae_lambda", f"must be in (0, 1] (got {self.gae_lambda})")
        require(0 < self.clip_range < 1, "clip_range", f"must be in (0, 1) (got {self.clip_range})")
        require(self.ent_coef >= 0, "ent_coef", f"must be >= 0 (got {self.ent_coef})")
        require(self.vf_coef >= 0, "vf_coef", f"must be >= 0 (got {self.vf_coef})")
        require(self.max_grad_norm > 0, "max_grad_norm", f"must be > 0 (got {self.max_grad_norm})")
        require(all(n >= 1 for n in self.net_arch), "net_arch", f"sizes must be >= 1 (got {self.net_arch})")


@dataclass(frozen=True)
class TrainConfig:
    n_envs: int = 8
    """Parallel training environments (N_ENVS)."""
    vec_env: str = "subproc"
    """subproc (SubprocVecEnv), dummy (DummyVecEnv, one process) or batched (array-stepped VecEnv)."""
    timesteps: int = 100_000
    """Environment steps of training, per ensemble member (train.ensemble)."""
    seed: int = 0
    """Seed of the agent, the environments and the random baseline."""
    device: str = "auto"
    """auto (CPU for MLP policies), cpu or cuda."""
    torch_threads: int = 1
    """Torch threads of the learner; 1 leaves the cores to the env workers."""
    learner: str = "sb3"
    """PPO update: sb3 (SB3's PPO.train) or jax (the same update as one jitted JAX program, trader.jax_ppo)."""
    checkpoint_every: int = 20_000
    """Steps between checkpoints."""
    eval_every: int = 20_000
    """Steps between validation evaluations."""
    run_dir: str = "runs"
    """Parent directory of run directories."""
    random_baseline_seeds: int = 5
    """Seeds the random-policy baseline is averaged over."""
    worker_timeout_s: float = 60.0
    """An env worker that does not answer within this many seconds is an error naming it."""
    start_method: str = "forkserver"
    """Start method of SubprocVecEnv workers; forkserver and spawn are safe with torch and JAX loaded."""
    do_no_harm: bool = True
    """Stay flat unless the best checkpoint's validation Sharpe interval lies above 0."""
    drift_test: str = "mirror"
    """What do-no-harm also asks to lie above 0: mirror (the interval of the Sharpe ratio on each symbol paired
    with its mirror image, which needs data.mirror), drift (that of the Sharpe beyond the period's drift) or
    none."""
    seeds: tuple[int, ...] = ()
    """Seeds to train one run each (under one parent directory, with a combined report); empty: train.seed only."""
    ensemble: int = 3
    """Members of a run's policy: independently seeded agents, each trained for train.timesteps, whose action
    probabilities are averaged."""

    def __post_init__(self) -> None:
        require(self.n_envs >= 1, "n_envs", f"must be >= 1 (got {self.n_envs})")
        require_choice(self.vec_env, VEC_ENVS, "vec_env")
        require(self.timesteps >= 1, "timesteps", f"must be >= 1 (got {self.timesteps})")
        require_choice(self.device, DEVICES, "device")
        require(self.torch_threads >= 1, "torch_threads", f"must be >= 1 (got {self.torch_threads})")
        require_choice(self.learner, LEARNERS, "learner")
        require(self.checkpoint_every >= 1, "checkpoint_every", f"must be >= 1 (got {self.checkpoint_every})")
        require(self.eval_every >= 1, "eval_every", f"must be >= 1 (got {self.eval_every})")
        require(self.random_baseline_seeds >= 1, "random_baseline_seeds",
                f"must be >= 1 (got {self.random_baseline_seeds})")
        require(self.worker_timeout_s > 0, "worker_timeout_s", f"must be > 0 (got {self.worker_timeout_s})")
        require_choice(self.start_method, START_METHODS, "start_method")
        require_choice(self.drift_test, DRIFT_TESTS, "drift_test")
        require(len(set(self.seeds)) == len(self.seeds), "seeds", f"must not repeat a seed (got {list(self.seeds)})")
        require(self.ensemble >= 1, "ensemble", f"must be >= 1 (got {self.ensemble})")


@dataclass(frozen=True)
class TuneFastConfig:
    n_envs: int = 2
    """N_ENVS of a fast trial."""
    n_epochs: int = 2
    """PPO epochs of a fast trial."""
    timesteps: int = 8_192
    """Training steps of a fast trial."""
    vec_env: str = "batched"
    """Vectorisation of a fast trial: its few envs step fastest in-process (same episodes as subproc)."""

    def __post_init__(self) -> None:
        require(self.n_envs >= 1, "n_envs", f"must be >= 1 (got {self.n_envs})")
        require_choice(self.vec_env, VEC_ENVS, "vec_env")
        require(self.n_epochs >= 1, "n_epochs", f"must be >= 1 (got {self.n_epochs})")
        require(self.timesteps >= 1, "timesteps", f"must be >= 1 (got {self.timesteps})")


@dataclass(frozen=True)
class TuneConfig:
    study_name: str = "ppo"
    """Optuna study name; an existing study of that name is continued."""
    storage: str = ""
    """Optuna storage URL or a path ending in .log (journal file); empty: a journal under `out`."""
    out: str = "runs/tune"
    """Directory of the tuning outputs."""
    iterations: int = 30
    """Trials this invocation adds."""
    jobs: int = 1
    """Worker processes on the same study."""
    executor: str = "process"
    """process: `jobs` worker processes here; dask: `jobs` workers as tasks on the cluster at build.scheduler."""
    heartbeat_s: int = 60
    """RDB storages (PostgreSQL): seconds between the heartbeats of a running trial."""
    heartbeat_grace_s: int = 180
    """RDB storages: a RUNNING trial whose worker has not beaten for this long is failed by the next trial."""
    pruner: str = "median"
    """median, percentile or none."""
    seeds_per_trial: int = 1
    """Training seeds averaged per trial."""
    timesteps: int = 50_000
    """Training steps of a full (not fast) trial."""
    evaluations: int = 4
    """Validation evaluations reported per trial for pruning."""
    learning_rate: tuple[float, float] = (1e-5, 1e-2)
    """Range of the learning rate (log scale)."""
    ent_coef: tuple[float, float] = (1e-8, 0.01)
    """Range of the entropy coefficient (log scale)."""
    one_minus_gamma: tuple[float, float] = (0.01, 0.5)
    """Range of 1 - gamma (log scale)."""
    one_minus_gae_lambda: tuple[float, float] = (0.02, 0.5)
    """Range of 1 - GAE lambda (log scale)."""
    n_steps_pow2: tuple[int, int] = (6, 10)
    """Range of log2(n_steps)."""
    batch_size_pow2: tuple[int, int] = (5, 9)
    """Range of log2(batch_size)."""
    n_epochs: tuple[int, int] = (1, 10)
    """Range of PPO epochs."""
    clip_range: tuple[float, ...] = (0.1, 0.2, 0.3)
    """Choices of the clip range."""
    net_width_pow2: tuple[int, int] = (5, 8)
    """Range of log2 of the hidden layer width (two layers)."""
    window: tuple[int, ...] = (1, 2, 4, 8)
    """Choices of the observation window."""
    trade_penalty: tuple[float, float] = (0.0, 3.0)
    """Range of the training penalty per unit traded, as a multiple of the costs."""
    reward: tuple[str, ...] = REWARDS
    """Choices of the reward."""
    keep_per_family: tuple[int, int] = (1, 5)
    """Full mode: range of variants kept per family."""
    max_correlation: tuple[float, float] = (0.5, 0.95)
    """Full mode: range of the correlation threshold."""
    horizon: tuple[int, ...] = (1, 2, 4)
    """Full mode: choices of the scoring horizon."""
    fast: TuneFastConfig = field(default_factory=TuneFastConfig)
    """What fast mode cuts: [tune.fast]."""

    def __post_init__(self) -> None:
        require(self.iterations >= 1, "iterations", f"must be >= 1 (got {self.iterations})")
        require(self.jobs >= 1, "jobs", f"must be >= 1 (got {self.jobs})")
        require_choice(self.executor, EXECUTORS, "executor")
        require(self.heartbeat_s >= 1, "heartbeat_s", f"must be >= 1 (got {self.heartbeat_s})")
        require(self.heartbeat_grace_s > self.heartbeat_s, "heartbeat_grace_s",
                f"must exceed tune.heartbeat_s = {self.heartbeat_s}, or live trials are failed (got "
                f"{self.heartbeat_grace_s})")
        require_choice(self.pruner, PRUNERS, "pruner")
        require(self.seeds_per_trial >= 1, "seeds_per_trial", f"must be >= 1 (got {self.seeds_per_trial})")
        require(self.evaluations >= 1, "evaluations", f"must be >= 1 (got {self.evaluations})")
        for name in ("learning_rate", "ent_coef", "one_minus_gamma", "one_minus_gae_lambda"):
            low, high = getattr(self, name)
            require(0 < low < high, name, f"must be [low, high] with 0 < low < high (got {[low, high]})")
        low, high = self.trade_penalty
        require(0 <= low <= high, "trade_penalty", f"must be [low, high] with 0 <= low <= high (got {[low, high]})")
        for name in ("n_steps_pow2", "batch_size_pow2", "n_epochs", "net_width_pow2", "keep_per_family"):
            low, high = getattr(self, name)
            require(1 <= low <= high, name, f"must be [low, high] with 1 <= low <= high (got {[low, high]})")




@dataclass(frozen=True)
class WalkForwardConfig:
    folds: int = 4
    """Consecutive folds, each with its own training, validation and test slices."""
    window: str = "expanding"
    """expanding: every fold trains from the first bar; rolling: on as many bars as the first fold."""
    test: float = 0.54
    """Fraction of the calendar's bars in the stitched out-of-sample span, cut into `folds` equal test slices."""
    validation: float = 1.0
    """Length of each fold's validation slice (just before its test slice), in test slices."""
    min_bars: int = 40
    """Fewest bars any symbol may have in a fold's training, validation or test slice (its split.min_bars)."""
    workers: int = 0
    """Folds trained at the same time, each in its own process; 0 means the cores available."""
    executor: str = "process"
    """process: local fold processes; dask: folds as tasks on the Dask cluster at build.scheduler."""

    def __post_init__(self) -> None:
        require(self.folds >= 1, "folds", f"must be >= 1 (got {self.folds})")
        require_choice(self.window, WALKFORWARD_WINDOWS, "window")
        require(0.0 < self.test < 1.0, "test", f"must be a fraction in (0, 1) (got {self.test})")
        require(self.validation > 0.0, "validation", f"must be > 0 test slices (got {self.validation})")
        require(self.test * (1.0 + self.validation / self.folds) < 1.0, "test",
                f"the test span ({self.test}) and the first fold's validation ({self.validation} x {self.test} / "
                f"{self.folds}) must leave bars for its training")
        require(self.min_bars >= 2, "min_bars", f"must be >= 2 (got {self.min_bars})")
        require(self.workers >= 0, "workers", f"must be >= 0 (got {self.workers})")
        require_choice(self.executor, EXECUTORS, "executor")


@dataclass(frozen=True)
class Params:
    """The whole tree, one field per [section] of parameters.toml."""

    data: DataConfig = field(default_factory=DataConfig)
    """Market data files."""
    split: SplitConfig = field(default_factory=SplitConfig)
    """Train / validation / test split."""
    costs: CostsConfig = field(default_factory=CostsConfig)
    """Trading costs, used by scoring, the environment and the reports alike."""
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    """Signal catalogue grids, scoring and selection."""
    build: BuildConfig = field(default_factory=BuildConfig)
    """The build's process pool and store location."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """The trading environment."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyperparameters."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training run settings."""
    tune: TuneConfig = field(default_factory=TuneConfig)
    """Hyperparameter search."""
    walkforward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    """Walk-forward folds (python -m trader.walkforward)."""

    def __post_init__(self) -> None:
        require(self.train.drift_test != "mirror" or self.data.mirror, "train.drift_test",
                "= 'mirror' needs the mirror images of data.mirror = true: set data.mirror = true, or "
                "train.drift_test to 'drift' or 'none'")
