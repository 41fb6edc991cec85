"""What runs inside a build's pool workers.

Thread caps are set before numpy or numba are imported: a worker is one core's worth of work,
and a BLAS or numba thread pool per worker would oversubscribe the machine.
"""

import os

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def cap_threads_env(env: "os._Environ[str] | dict[str, str]" = os.environ) -> None:
    """One thread per worker for every native thread pool we know of."""
    for name in THREAD_VARS:
        env[name] = "1"


cap_threads_env()

import signal  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from signals import store  # noqa: E402


@dataclass(frozen=True)
class Task:
    """One unit of pool work: a chunk of one family's parameter grid on one symbol."""

    root: str
    variants_dir: str
    symbol: str
    family: str
    task_key: str
    params: tuple[dict, ...]


def init_worker() -> None:
    """Pool initializer: Ctrl-C is the parent's to handle; the parent stops the pool cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_task(task: Task) -> dict[str, Any]:
    """Compute the task's variants, write them to the store, return only small metadata."""
    from signals.catalog import CATALOG, Ohlcv, compute_variants

    started = time.perf_counter()
    root = Path(task.root)
    ohlcv = np.load(root / task.symbol / "ohlcv.npy", mmap_mode="r")
    bars = Ohlcv(*(np.ascontiguousarray(row) for row in ohlcv))
    values = compute_variants(CATALOG[task.family], bars, list(task.params))
    store.write_task_output(Path(task.variants_dir), task.symbol, task.family, task.task_key, values,
                            {"family": task.family, "symbol": task.symbol, "params": list(task.params)})
    return {"task_key": task.task_key, "seconds": time.perf_counter() - started, "variants": values.shape[1],
            "pid": os.getpid()}
