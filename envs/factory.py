"""Build trading environments from the config tree: single ones for workers, vectorised ones for training.

Only the store's path crosses to a SubprocVecEnv worker: `make_env_fn` returns a small picklable object
(`EnvFactory`) and each worker opens the store itself, memory-mapping the same files, so the data is
shared through the page cache instead of being copied into every process.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver as forkserver
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from envs.batched import BatchedTradingVecEnv
from envs.spec import EnvSpec
from envs.subproc import WatchedSubprocVecEnv
from envs.trading_env import TradingEnv
from settings.choices import VEC_ENVS
from signals.threads import cap_threads


@dataclass(frozen=True)
class EnvFactory:
    """Picklable `() -> TradingEnv`: holds the store's path and the spec (plain settings), never arrays."""

    store_root: str
    split: str
    spec: EnvSpec = field(default_factory=EnvSpec)
    seed: int | None = None
    rank: int = 0
    cap_threads: bool = False

    def __call__(self) -> gym.Env:
        if self.cap_threads:
            cap_threads()  # before the env exists, so nothing it starts gets a full-size pool
        env = TradingEnv(self.store_root, self.split, self.spec)
        if self.seed is not None:
            # SB3's convention: environment `rank` uses seed + rank (its first reset, its action space).
            env.reset(seed=self.seed + self.rank)
            env.action_space.seed(self.seed + self.rank)
        return env


def make_env_fn(store_root: str | Path, split: str, spec: EnvSpec, seed: int | None, rank: int,
                *, cap_threads: bool | None = None) -> Callable[[], gym.Env]:
    """A picklable function building environment `rank` (seeded seed + rank).

    `cap_threads` (default: only when called in a child process, e.g. a SubprocVecEnv worker) caps the
    process's thread pools to one thread before the environment is built.
    """
    if cap_threads is None:
        cap_threads = multiprocessing.parent_process() is not None
    return EnvFactory(store_root=str(store_root), split=split, spec=spec, seed=seed, rank=rank,
                      cap_threads=cap_threads)


FORKSERVER_PRELOAD = ("stable_baselines3.common.vec_env.subproc_vec_env", "envs.trading_env")
"""Imported once by the fork server, so that workers share those modules' memory (torch's above all,
which SB3's worker imports) copy-on-write instead of each importing them privately: about 10-20 MiB of
private memory per worker instead of about 170 MiB."""


def preload_forkserver() -> None:
    """Add FORKSERVER_PRELOAD to the fork server's preload list (effective if it has not started yet)."""
    # multiprocessing has no getter: read the current list so as to extend, not replace, another caller's.
    current = list(getattr(forkserver._forkserver, "_preload_modules", ["__main__"]))
    forkserver.set_forkserver_preload(current + [m for m in FORKSERVER_PRELOAD if m not in current])


def make_vec_env(store_root: str | Path, split: str, spec: EnvSpec, n_envs: int, seed: int | None,
                 vec_env: str = "subproc", start_method: str = "forkserver", timeout_s: float = 60.0) -> VecEnv:
    """N environments as a VecEnv: "subproc" (one worker process each), "dummy" (in this process, one after
    another) or "batched" (in this process, stepped together with array operations).

    All three give the same episodes for the same seed: environment i is seeded seed + i at the first
    `reset()`. The settings are checked here, in this process, so a bad value fails with its own message
    rather than as a dead worker. "subproc" workers that die or stay silent for `timeout_s` seconds raise
    `envs.subproc.EnvWorkerError` naming the worker. Wrap the result in `VecMonitor` for episode statistics.
    """
    if vec_env not in VEC_ENVS:
        raise ValueError(f"train.vec_env must be one of {', '.join(VEC_ENVS)} (got {vec_env!r})")
    if int(n_envs) != n_envs or n_envs < 1:
        raise ValueError(f"train.n_envs must be an integer >= 1 (got {n_envs})")
    store_root = str(store_root)
    if vec_env == "batched":
        venv: VecEnv = BatchedTradingVecEnv(store_root, split, int(n_envs), spec)
    else:
        TradingEnv(store_root, split, spec).close()  # fail here, with the setting's name
        fns = [make_env_fn(store_root, split, spec, seed, rank, cap_threads=vec_env == "subproc")
               for rank in range(int(n_envs))]
        if vec_env == "subproc":
            if start_method == "forkserver":
                preload_forkserver()
            venv = WatchedSubprocVecEnv(fns, start_method=start_method, timeout_s=timeout_s)
        else:
            venv = DummyVecEnv(fns)
    if seed is not None:
        venv.seed(seed)
    return venv
