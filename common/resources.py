"""The machine a command runs on: the cores it may use, and the peak memory of its process tree."""

from __future__ import annotations

import os
import threading
import time

import psutil


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class TreeMemory:
    """Peak memory of this process and all its children, sampled in a background thread.

    Each process counts its proportional set size (PSS: a page shared by k processes counts 1/k in each)
    where Linux provides it, so forked workers sharing the parent's pages are not counted once per
    worker, as summing resident sizes would (48 env workers: a 9.5 GB "peak" on a machine using under 2).
    Elsewhere it falls back to resident size. Reading PSS costs about 0.2 ms per process, so the sampler
    waits at least 20 times as long as a sample took: it stays under 5 % of one core at any worker count.
    """

    def __init__(self, interval_s: float = 0.2) -> None:
        self._root = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self.peak_bytes = self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        total = 0
        for proc in [self._root, *self._root.children(recursive=True)]:
            try:
                total += _proportional_bytes(proc.pid)
            except OSError:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass  # it exited between the listing and the reading
        return total

    def _run(self) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            started = time.perf_counter()
            self.peak_bytes = max(self.peak_bytes, self.sample())
            wait = max(self._interval, 20 * (time.perf_counter() - started))

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.sample())


def _proportional_bytes(pid: int) -> int:
    """The process's PSS from /proc (OSError where there is none: not Linux, or the process is gone)."""
    with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
        for line in rollup:
            if line.startswith(b"Pss:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no Pss line for pid {pid}")
