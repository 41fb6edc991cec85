"""The build's pool on Dask against the process pool, on the same cores, measured in the same run.

The same tasks (the catalogue's first `--per-family` variants of each family on a seeded synthetic series,
one variant per task, batches of 20, as in bench_signals.py part 2) go through `signals.pool.run_pool`:

- process: `build.executor = "process"`, `--workers` local processes (started and ended in each run);
- dask, own cluster: `build.executor = "dask"` without a scheduler: the command's LocalCluster of
  `--workers` processes on 127.0.0.1, started and closed in each run (what `--executor dask` costs alone);
- dask, running cluster: a LocalCluster of `--workers` processes started once, before the rounds, and
  `build.scheduler` at its address (a long-lived cluster: connect, checks, tasks).

Rounds interleave the three, so a load change on the machine hits them alike; the table gives the median
seconds and each one's ratio to the process pool's (above 1: slower; the Dask engine's overhead).

    python benchmarks/bench_build_dask.py [--bars 1000000] [--per-family 2] [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals.threads import cap_thread_env  # noqa: E402

cap_thread_env()

import numpy as np  # noqa: E402

from benchmarks.bench_signals import synthetic_bars  # noqa: E402


def run_once(bars: dict[str, np.ndarray], variants: list, workers: int, executor: str, scheduler: str) -> float:
    """Seconds for every task through run_pool, the pool's start and end included."""
    from tqdm import tqdm

    from settings import BuildConfig
    from signals import store
    from signals.pool import run_pool
    from signals.worker import Task

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        store.write_ohlcv(root, "SYN", np.vstack([bars[k] for k in ("open", "high", "low", "close", "volume")]))
        tasks = [Task(str(root), str(root / "variants"), "SYN", name, f"t{i}", (p,))
                 for i, (name, p) in enumerate(variants)]
        config = BuildConfig(batch_size=20, executor=executor, scheduler=scheduler)
        with tqdm(total=len(tasks), disable=True) as progress:
            started = time.perf_counter()
            results = run_pool(tasks, config, workers, root, root / "variants", progress, log=lambda _: None)
            seconds = time.perf_counter() - started
        assert len(results) == len(tasks)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--per-family", type=int, default=2, help="variants per family (0: the whole default grid)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import dask

    from common.executors import local_cluster
    from signals.catalog import CATALOG, expand_grid, warm_up

    warm_up()
    variants = [(name, p) for name, family in CATALOG.items() for p in expand_grid(family)[:args.per_family or None]]
    bars = synthetic_bars(args.bars)
    print(f"machine: {os.cpu_count()} cores visible, {len(os.sched_getaffinity(0))} usable; dask {dask.__version__}")
    print(f"{len(variants)} variants ({len(CATALOG)} families) on {args.bars:,} bars, one variant per task, batches "
          f"of 20, {args.workers} workers of one thread each; {args.rounds} interleaved rounds")
    cluster = local_cluster(args.workers)  # the same LocalCluster as `--executor dask` starts
    modes = {"process pool": ("process", ""), "dask, own LocalCluster": ("dask", ""),
             "dask, running cluster": ("dask", cluster.scheduler_address)}
    times: dict[str, list[float]] = {name: [] for name in modes}
    try:
        run_once(bars, variants[:4], args.workers, "dask", cluster.scheduler_address)  # the workers' imports
        for _ in range(args.rounds):
            for name, (executor, scheduler) in modes.items():
                times[name].append(run_once(bars, variants, args.workers, executor, scheduler))
    finally:
        cluster.close()
    reference = statistics.median(times["process pool"])
    print(f"{'pool':<24}{'median s':>9}{'variants/s':>11}{'vs process':>11}   rounds (s)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24}{median:9.2f}{len(variants) / median:11.1f}{median / reference:10.2f}x   "
              + " ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
