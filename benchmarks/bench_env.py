"""Steps per second and memory of the trading environments, beside gym-anytrading's stocks-v0.

    python benchmarks/bench_env.py            # full run (a few minutes)
    python benchmarks/bench_env.py --quick    # short run (well under a minute of stepping)
    python benchmarks/bench_env.py --json out.json

Measured on a synthetic store written to a temporary directory (one symbol, `--features` features,
`--store-mb` MiB), with random actions drawn up front (so the action sampler is not timed), each
environment with its default settings (window 16, discrete actions, 512-step episodes):

* the single env through `gymnasium.make("trader/SignalTrading-v0")`, and gym-anytrading's `stocks-v0`
  through `gymnasium.make` in the same run (skipped with a message if gym-anytrading is not installed:
  `pip install gym-anytrading`; it is not a project dependency);
* SubprocVecEnv (forkserver) with N = 1, 2, 4, 8, 16, 48 workers, and each worker's memory (USS: pages
  only that worker holds; PSS: its share of shared pages) against the store's size;
* the batched env with N = 1, 16, 256 (its infos are built lazily; the "infos read" column also reads
  every info dict of every step, as SB3's PPO does).

Each figure is the best of several timed blocks: the machine may be shared, and the best block is the
closest to the code's own speed. Ratios are ours / gym-anytrading's single-env steps per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import psutil  # noqa: E402

import envs  # noqa: E402  (registers trader/SignalTrading-v0)
from envs.batched import BatchedTradingVecEnv  # noqa: E402
from envs.factory import make_vec_env  # noqa: E402
from envs.spec import EnvSpec  # noqa: E402
from signals.store import write_synthetic_store  # noqa: E402

SUBPROC_SIZES = (1, 2, 4, 8, 16, 48)
BATCHED_SIZES = (1, 16, 256)
TARGET_SINGLE_RATIO = 1.5
TARGET_BATCHED_256 = 2_000_000


def write_store(root: Path, megabytes: float, n_features: int) -> tuple[int, int]:
    """One synthetic symbol of about `megabytes` MiB; returns (bars, bytes on disk)."""
    n_bars = max(10_000, int(megabytes * 2**20 / (n_features * 4 + 16)))
    rng = np.random.default_rng(0)
    features = np.empty((n_bars, n_features), dtype=np.float32)
    for lo in range(0, n_bars, 500_000):  # chunks keep the benchmark's own memory small
        hi = min(n_bars, lo + 500_000)
        features[lo:hi] = rng.uniform(-4.0, 4.0, (hi - lo, n_features))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n_bars)))
    times = np.arange(n_bars, dtype=np.int64) * 3_600_000_000_000
    a, b = int(n_bars * 0.6), int(n_bars * 0.8)
    write_synthetic_store(root, {"SYN": (features, close, times)},
                          {"SYN": {"train": (0, a), "validation": (a, b), "test": (b, n_bars)}},
                          [f"f{i}" for i in range(n_features)])
    return n_bars, sum(f.stat().st_size for f in root.rglob("*.npy"))


def best_rate(run_block: Callable[[], int], blocks: int) -> float:
    """Highest steps/s over `blocks` calls of run_block (which returns the steps it made)."""
    best = 0.0
    for _ in range(blocks):
        start = time.perf_counter()
        steps = run_block()
        best = max(best, steps / (time.perf_counter() - start))
    return best


def single_env_block(env: gym.Env, n_actions: int, block: int, seed: int = 0) -> Callable[[], int]:
    """A function stepping `env` `block` times with random actions (reset when an episode ends, as a
    training loop does); the actions are drawn before, so the sampler is not timed."""
    actions = np.random.default_rng(seed).integers(0, n_actions, block).tolist()
    env.reset(seed=seed)

    def run_block() -> int:
        step, reset = env.step, env.reset
        for action in actions:
            _, _, terminated, truncated, _ = step(action)
            if terminated or truncated:
                reset()
        return block

    return run_block


def single_env_rates(ours: gym.Env, theirs: gym.Env | None, block: int, blocks: int) -> tuple[float, float | None]:
    """Best steps/s of our env and of gym-anytrading's, timed in alternating blocks (same machine state)."""
    run_ours = single_env_block(ours, 3, block)
    run_theirs = None if theirs is None else single_env_block(theirs, 2, block)
    best_ours = best_theirs = 0.0
    for _ in range(blocks):
        best_ours = max(best_ours, best_rate(run_ours, 1))
        if run_theirs is not None:
            best_theirs = max(best_theirs, best_rate(run_theirs, 1))
    return best_ours, (best_theirs if run_theirs is not None else None)


def anytrading_env() -> gym.Env | None:
    """gym-anytrading's stocks-v0 through gymnasium.make, or None (with a message) when not installed."""
    try:
        import gym_anytrading  # noqa: F401  (registers stocks-v0)
    except ImportError:
        print("gym-anytrading is not installed: skipping it (pip install gym-anytrading to compare)")
        return None
    warnings.filterwarnings("ignore", module="gymnasium")  # its checker's notes on shared observation buffers
    return gym.make("stocks-v0")


def worker_memory(processes: list[Any]) -> dict[str, float]:
    """Mean USS and PSS (MiB) of the worker processes."""
    infos = [psutil.Process(p.pid).memory_full_info() for p in processes]
    return {"uss_mib": float(np.mean([m.uss for m in infos])) / 2**20,
            "pss_mib": float(np.mean([m.pss for m in infos])) / 2**20}


def forkserver_memory() -> float | None:
    """USS (MiB) of this process's multiprocessing fork server, if one runs."""
    import multiprocessing.forkserver as forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    try:
        return psutil.Process(pid).memory_full_info().uss / 2**20 if pid else None
    except psutil.Error:
        return None


def subproc_rate(root: Path, n_envs: int, steps: int, blocks: int) -> dict[str, float]:
    start = time.perf_counter()
    venv = make_vec_env(root, "train", EnvSpec(), n_envs=n_envs, seed=0, vec_env="subproc", start_method="forkserver")
    venv.reset()
    started = time.perf_counter() - start
    actions = np.random.default_rng(0).integers(0, 3, (64, n_envs))
    counter = [0]

    def run_block() -> int:
        for _ in range(steps):
            venv.step(actions[counter[0] & 63])
            counter[0] += 1
        return steps * n_envs

    try:
        run_block()  # warm-up: touch the pages, fill the pipes
        rate = best_rate(run_block, blocks)
        memory = worker_memory(venv.processes)
    finally:
        venv.close()
    return {"steps_per_s": rate, "start_s": started, **memory}


def batched_rate(root: Path, n_envs: int, steps: int, blocks: int, read_infos: bool) -> float:
    venv = BatchedTradingVecEnv(root, "train", n_envs)
    venv.seed(0)
    venv.reset()
    actions = np.random.default_rng(0).integers(0, 3, (64, n_envs))
    counter = [0]

    def run_block() -> int:
        for _ in range(steps):
            infos = venv.step(actions[counter[0] & 63])[3]
            if read_infos:
                for info in infos:
                    info.get("episode")
            counter[0] += 1
        return steps * n_envs

    run_block()
    return best_rate(run_block, blocks)


def fmt_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:>12,.0f}"


def fmt_ratio(rate: float, reference: float | None) -> str:
    return "-" if not reference else f"{rate / reference:6.2f}x"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run: fewer and shorter timed blocks")
    parser.add_argument("--features", type=int, default=16, help="features per bar (default 16)")
    parser.add_argument("--store-mb", type=float, default=None, help="store size in MiB (default 256; quick 64)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    quick = args.quick
    store_mb = args.store_mb or (64.0 if quick else 256.0)
    single_block, single_blocks = (20_000, 3) if quick else (100_000, 5)
    sub_blocks, batch_blocks = (2, 3) if quick else (3, 7)

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "numpy": np.__version__, "load_average_at_start": os.getloadavg()},
        "quick": quick,
    }
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench_env_") as tmp:
        root = Path(tmp) / "store"
        n_bars, store_bytes = write_store(root, store_mb, args.features)
        results["store"] = {"bars": n_bars, "features": args.features, "mib": store_bytes / 2**20}
        print(f"store: {n_bars:,} bars x {args.features} features, {store_bytes / 2**20:.0f} MiB\n")

        ours, reference = single_env_rates(gym.make(envs.ENV_ID, store=str(root), split="train"), anytrading_env(),
                                           single_block, single_blocks)
        results["gym_anytrading_stocks_v0"] = reference
        results["single_env"] = ours
        print(f"{'environment':42s} {'env-steps/s':>12s}  {'ours/anytrading':>15s}")
        print(f"{'gym-anytrading stocks-v0 (gym.make)':42s} {fmt_rate(reference)}")
        print(f"{'TradingEnv (gym.make)':42s} {fmt_rate(ours)}  {fmt_ratio(ours, reference):>15s}")

        results["subproc"] = {}
        for n in SUBPROC_SIZES:
            steps = max(50, (400 if quick else 3000) // n)
            figures = subproc_rate(root, n, steps, sub_blocks)
            results["subproc"][n] = figures
            label = f"SubprocVecEnv N={n} (forkserver)"
            print(f"{label:42s} {fmt_rate(figures['steps_per_s'])}  {fmt_ratio(figures['steps_per_s'], reference):>15s}"
                  f"   worker USS {figures['uss_mib']:.1f} MiB, PSS {figures['pss_mib']:.1f} MiB, "
                  f"start {figures['start_s']:.1f} s")

        results["batched"] = {}
        for n in BATCHED_SIZES:
            steps = max(100, (20_000 if quick else 100_000) // n) // 4
            lazy = batched_rate(root, n, steps, batch_blocks, read_infos=False)
            read = batched_rate(root, n, steps, batch_blocks, read_infos=True)
            results["batched"][n] = {"steps_per_s": lazy, "steps_per_s_infos_read": read}
            label = f"BatchedTradingVecEnv N={n}"
            print(f"{label:42s} {fmt_rate(lazy)}  {fmt_ratio(lazy, reference):>15s}"
                  f"   infos read: {read:,.0f} ({fmt_ratio(read, reference).strip()})")

    uss_48 = results["subproc"][48]["uss_mib"]
    server = forkserver_memory()
    if server is not None:
        results["forkserver_uss_mib"] = server
        print(f"\nthe fork server (once, whatever N; it preloads SB3/torch for the workers to share): "
              f"USS {server:.0f} MiB")
    print(f"memory: store {results['store']['mib']:.0f} MiB; each of 48 workers holds {uss_48:.1f} MiB of its own "
          f"(USS = {100 * uss_48 / results['store']['mib']:.1f} % of the store)")
    if reference:
        ratio = ours / reference
        print(f"target single env >= {TARGET_SINGLE_RATIO}x gym-anytrading: {ratio:.2f}x "
              f"{'met' if ratio >= TARGET_SINGLE_RATIO else 'NOT met'}")
    rate_256 = results["batched"][256]["steps_per_s"]
    print(f"target batched N=256 >= {TARGET_BATCHED_256:,} env-steps/s: {rate_256:,.0f} "
          f"{'met' if rate_256 >= TARGET_BATCHED_256 else 'NOT met'}")
    results["machine"]["load_average_at_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


if __name__ == "__main__":
    main()
