"""What runs inside a build's pool workers: one core's worth of work each, one thread each."""

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signals import store
from signals.threads import cap_threads


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
    """Pool initializer: one thread; Ctrl-C is the parent's to handle (it stops the pool cleanly)."""
    cap_threads()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_task(task: Task) -> dict[str, Any]:
    """Compute the task's variants, write them to the store, return only small metadata."""
    # Imported here, not at the top: signals.build imports this module, and the catalogue brings numba,
    # the kernels and the families (about 0.4 s measured), which an up-to-date build never needs.
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
