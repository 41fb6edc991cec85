"""One thread per worker process: N workers each starting a pool per core would oversubscribe the machine."""

from __future__ import annotations

import os
import sys
from typing import MutableMapping

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def cap_thread_env(env: MutableMapping[str, str] = os.environ) -> None:
    """Set every native thread-pool size we know of to 1: read by libraries that load after this."""
    for name in THREAD_VARS:
        env[name] = "1"


def cap_threads() -> None:
    """In a worker, at its entry: cap the variables, and torch's running pools if torch is already loaded."""
    cap_thread_env()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
