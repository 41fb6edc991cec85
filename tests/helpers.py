"""What the tests share: synthetic markets, synthetic stores, small parameter sets, running a command.

One home for the builders; conftest.py holds the fixtures made from them. Test modules import what they
need from here (`from helpers import make_store`), never from one another.

- Markets: `random_bars` (arrays, for kernels and families), `synthetic_ohlcv` (a dated frame, optionally
  with AR(1) momentum) and `write_market` (one CSV per symbol of it).
- Stores: `make_store` (random features and closes, any symbols and splits), `one_symbol_store` (given
  closes, zero features), `synthetic_store` (the tuner's: at params.build.out, test split poisoned with NaN).
- Parameters: `small_grid_toml` (every family, a small grid), `write_params` (a tiny training run),
  `tiny_params` (a tiny tuning study).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks' market generators are shared with the tests

from benchmarks.markets import ar1_returns  # noqa: E402
from envs.trading_env import TradingEnv  # noqa: E402
from settings import Params, load_params, replace_path  # noqa: E402
from signals.cache import store_cache_key  # noqa: E402
from signals.catalog import CATALOG, Ohlcv, expand_grid  # noqa: E402
from signals.store import Store, write_manifest, write_synthetic_store  # noqa: E402
from trader.tune import runner  # noqa: E402
from trader.tune import storage as tune_storage  # noqa: E402


# ---------------------------------------------------------------- commands

def run_module(module: str, *args: str, cwd: Path = ROOT, timeout: float = 600, **popen) -> subprocess.CompletedProcess:
    """Run `python -m module args` as a user would."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, **popen)


# ---------------------------------------------------------------- synthetic markets

def random_bars(n: int, seed: int, tick: float | None = None, flat_fraction: float = 0.0) -> Ohlcv:
    """Seeded random-walk bars with consistent OHLC (high >= max(o, c), low <= min(o, c)), as arrays.

    ``tick`` rounds prices to a grid, which creates ties (for arg-max tie rules); ``flat_fraction`` of the
    bars become doji bars with no range (high == low), where 0/0 guards must hold.
    """
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n)))
    if tick is not None:
        open_, close = np.round(open_ / tick) * tick, np.round(close / tick) * tick
        high = np.maximum(np.ceil(high / tick) * tick, np.maximum(open_, close))
        low = np.minimum(np.floor(low / tick) * tick, np.minimum(open_, close))
    if flat_fraction:
        flat = rng.random(n) < flat_fraction
        open_[flat] = high[flat] = low[flat] = close[flat]
    volume = rng.lognormal(10.0, 0.5, n)
    return Ohlcv(open_, high, low, close, volume)


def synthetic_ohlcv(n: int, seed: int, start: str = "2015-01-01", freq: str = "h", momentum: float = 0.0
                    ) -> pd.DataFrame:
    """A seeded market with consistent OHLC and positive volume.

    momentum = 0 is a random walk; momentum = phi > 0 makes log returns AR(1) with coefficient phi,
    an edge that any trend or rate-of-change signal can see one bar ahead.
    """
    rng = np.random.default_rng(seed)
    returns = ar1_returns(rng.normal(0.0, 0.01, n), momentum)
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n)))
    volume = rng.lognormal(10.0, 0.5, n)
    index = pd.date_range(start, periods=n, freq=freq)
    return pd.DataFrame({"Date": index.strftime("%Y-%m-%d %H:%M:%S"), "Open": open_, "High": high, "Low": low,
                         "Close": close, "Volume": volume})


def write_market(folder: Path, symbols: dict[str, int], n: int = 1500, momentum: float = 0.0,
                 freq: str = "D") -> list[str]:
    """One CSV per symbol (name -> seed) of daily bars; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, seed in symbols.items():
        path = folder / f"{name}.csv"
        synthetic_ohlcv(n, seed, freq=freq, momentum=momentum).to_csv(path, index=False)
        paths.append(str(path))
    return paths


# ---------------------------------------------------------------- synthetic stores

def make_store(root: Path, bars: dict[str, int], n_features: int = 3, seed: int = 0,
               close: dict[str, np.ndarray] | None = None, features: dict[str, np.ndarray] | None = None,
               splits: dict[str, dict[str, tuple[int, int]]] | None = None) -> Store:
    """A synthetic store: bounded random features, a random-walk close; splits 60/20/20 unless given."""
    rng = np.random.default_rng(seed)
    arrays, all_splits = {}, {}
    for symbol, n in bars.items():
        feats = (features or {}).get(symbol)
        if feats is None:
            feats = (np.tanh(rng.normal(size=(n, n_features))) * 4).astype(np.float32)
        prices = (close or {}).get(symbol)
        if prices is None:
            prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
        arrays[symbol] = (feats, prices, np.arange(n, dtype=np.int64) * 3_600_000_000_000)
        a, b = int(n * 0.6), int(n * 0.8)
        all_splits[symbol] = (splits or {}).get(symbol) or {"train": (0, a), "validation": (a, b), "test": (b, n)}
    return write_synthetic_store(root, arrays, all_splits, [f"f{i}" for i in range(feats.shape[1])])


def one_symbol_store(root: Path, close: np.ndarray, n_features: int = 2) -> Path:
    """Whole history in the train split (validation/test: empty tails are not needed by these tests)."""
    n = len(close)
    feats = np.zeros((n, n_features), dtype=np.float32)
    make_store(root, {"X": n}, close={"X": np.asarray(close, dtype=np.float64)}, features={"X": feats},
               splits={"X": {"train": (0, n), "validation": (n, n), "test": (n, n)}})
    return root


def run_actions(env: TradingEnv, actions, **reset_kwargs):
    """(observations, rewards, terminated, truncated, infos) of one episode driven by `actions`."""
    obs, info = env.reset(**reset_kwargs)
    observations, rewards, terms, truncs, infos = [obs], [], [], [], [info]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        terms.append(terminated)
        truncs.append(truncated)
        infos.append(info)
        if terminated or truncated:
            break
    return observations, rewards, terms, truncs, infos


# ---------------------------------------------------------------- a tiny training run

def small_grid_toml() -> str:
    """Every family with only its first two values per parameter: the whole pipeline, a small grid."""
    lines = []
    for name, family in CATALOG.items():
        grid = {p: list(v[:2]) for p, v in family.default_grid.items()}
        if not expand_grid(family, grid):  # e.g. fast < slow needs other values
            grid = {p: list(v) for p, v in family.default_grid.items()}
        lines.append(f"[signals.families.{name}]")
        lines += [f"{p} = {v!r}" for p, v in grid.items()]
    return "\n".join(lines) + "\n"


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
# two members: every test of a trained run (report, agent, predict, serve) covers an ensemble
ensemble = 2
"""


def write_params(tmp: Path, momentum: float = 0.0, n: int = 1500, extra: str = "") -> Path:
    """A synthetic two-symbol market under tmp/data and the parameters of a tiny training run on it."""
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


# ---------------------------------------------------------------- a tiny walk-forward (2 folds)

WALKFORWARD_SETTINGS = """
[env]
window = 4
episode_length = 128

[ppo]
n_steps = 64
batch_size = 64
n_epochs = 1
net_arch = [16, 16]

[train]
n_envs = 2
vec_env = "dummy"
timesteps = 128
checkpoint_every = 128
eval_every = 128
random_baseline_seeds = 2
run_dir = '{runs}'

[walkforward]
folds = 2
workers = 2
"""


def write_walkforward_params(tmp: Path, n: int = 1500) -> Path:
    """Two synthetic symbols and walk-forward settings small enough for a test (2 folds of 128 steps)."""
    paths = write_market(tmp / "data", {"AAA": 1, "BBB": 2}, n=n)
    params = tmp / "params.toml"
    params.write_text(f"[data]\npaths = {paths!r}\n\n[build]\nout = '{tmp / 'store'}'\nworkers = 2\n\n"
                      f"[signals]\nvariants_per_task = 8\n" + WALKFORWARD_SETTINGS.format(runs=tmp / "runs")
                      + small_grid_toml())
    return params


# ---------------------------------------------------------------- a tiny tuning study

TUNE_DATA = [str(ROOT / "data" / "FOREX_EURUSD_1H_ASK.csv"), str(ROOT / "data" / "STOCKS_GOOGL.csv")]
TUNE_SPLITS = {"train": (20, 350), "validation": (370, 480), "test": (500, 600)}
FINAL = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
POSTGRES_URL = os.environ.get("TRADER_TEST_POSTGRES_URL", "postgresql://trader:trader@127.0.0.1:5432/trader")

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the tests' studies report through their own logs

FIXED = {"n_steps_pow2": 7, "batch_size_pow2": 9, "net_width_pow2": 5, "learning_rate": 3e-4, "n_epochs": 4,
         "one_minus_gamma": 0.01, "one_minus_gae_lambda": 0.05, "clip_range": 0.2, "ent_coef": 1e-3,
         "window": 8, "reward": "differential_sharpe", "trade_penalty": 1.5, "keep_per_family": 2,
         "max_correlation": 0.8, "horizon": 2}
"""Fixed values of every searched parameter (tests/test_tune_space.py, best_params round trip)."""


def tiny_params(tmp: Path, **extra: object) -> Params:
    """Bundled data paths (for the cache key), a store and tune.out under tmp, budgets of a few rollouts."""
    values = {
        "data.paths": TUNE_DATA, "build.out": str(tmp / "store"), "tune.out": str(tmp / "tune"),
        "env.window": 4, "env.episode_length": 64, "train.vec_env": "dummy", "train.n_envs": 2,
        "ppo.n_steps": 32, "ppo.batch_size": 32,
        "tune.fast.n_envs": 1, "tune.fast.n_epochs": 1, "tune.fast.timesteps": 128, "tune.timesteps": 128,
        "tune.evaluations": 2, "tune.iterations": 2, "tune.study_name": "tiny",
        "tune.n_steps_pow2": [5, 5], "tune.batch_size_pow2": [4, 5], "tune.net_width_pow2": [3, 4],
        "tune.n_epochs": [1, 3], "tune.window": [4], "tune.horizon": [1, 2],
    }
    values.update(extra)
    return replace_path(load_params(ROOT / "parameters.toml"), values)


def synthetic_store(params: Params, seed: int = 0, cache_key: str | None = None, mirrored: bool = False) -> Path:
    """2 symbols x 600 hourly bars at params.build.out; test rows (500..600) of prices and features are NaN.
    `mirrored`: each also with its mirror image (prices inverted, features negated), as data.mirror builds."""
    rng = np.random.default_rng(seed)
    symbols = {}
    for name in ("AAA", "BBB"):
        n = 600
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
        features = rng.normal(0.0, 1.0, (n, 4)).astype(np.float32)
        close[TUNE_SPLITS["test"][0]:] = np.nan
        features[TUNE_SPLITS["test"][0]:] = np.nan
        hour = 3_600_000_000_000
        timestamps = np.datetime64("2020-01-01", "ns").astype(np.int64) + np.arange(n, dtype=np.int64) * hour
        symbols[name] = (features, close, timestamps)
        if mirrored:
            symbols[f"{name}~mirror"] = (-features, close[0] ** 2 / close, timestamps)
    key = store_cache_key(params) if cache_key is None else cache_key
    mirror_of = {s: s.split("~")[0] for s in symbols if s.endswith("~mirror")}
    opened = write_synthetic_store(params.build.out, symbols, {s: TUNE_SPLITS for s in symbols},
                                   [f"f{i}(x)" for i in range(4)], cache_key=key, mirror_of=mirror_of)
    # Training-split scores per feature, as a real build writes them (evaluation's best-signal baseline reads them).
    manifest = {k: v for k, v in opened.manifest.items() if k != "format"}
    manifest["features"] = [{**f, "scores": {"rank_ic": 0.01 * (i + 1)}} for i, f in enumerate(manifest["features"])]
    write_manifest(opened.root, manifest)
    return opened.root


def load(params: Params) -> optuna.Study:
    """The tiny study, as its storage holds it now."""
    storage = tune_storage.open_storage(tune_storage.storage_spec(params))
    return optuna.load_study(study_name=params.tune.study_name, storage=storage)


def run_quiet(params: Params, fast: bool = True, **kwargs) -> list[str]:
    """runner.run_study, its log lines returned instead of printed."""
    lines: list[str] = []
    runner.run_study(params, fast=fast, log=lines.append, **kwargs)
    return lines
