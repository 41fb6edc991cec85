"""Where a command's independent jobs run: local worker processes or a Dask cluster, behind one interface.

`open_pool(kind, ...)` yields a `Pool` whose `executor` is a `concurrent.futures.Executor` either way: a
`ProcessPoolExecutor` (kind "process") or a Dask client's `get_executor(pure=False)` (kind "dask": every
job is a fresh task, never deduplicated by its arguments, as a job that writes files must be). Callers submit
top-level functions of importable modules with small picklable arguments; the jobs write their own outputs
where the caller can read them and send back small results.

Dask: `scheduler` ("tcp://host:8786") connects to a running cluster (`dask scheduler`, `dask worker`);
empty starts a `LocalCluster` of `workers` processes with one thread each on 127.0.0.1, which the pool
closes with itself. Every worker runs the caller's `initializer` (the same thread caps a process pool's
initializer sets), registered as a worker plugin so that a worker its nanny restarts after a crash runs it
too. Before any job, every worker proves that it sees the caller's `shared` folders (see
`check_shared_folders`): Dask moves tasks and results, never files.

Below signals, envs and trader, importing none of them (the choice list is settings' EXECUTORS).
`distributed` is imported only when a Dask pool is opened (about 0.8 s), so commands that never use one do
not pay for it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.files import TMP_PREFIX
from settings import EXECUTORS

CONNECT_TIMEOUT_S = 20.0
"""Seconds to wait for a Dask scheduler to answer before the command stops with an error."""
PROBE_PREFIX = TMP_PREFIX
"""Probe files start like the store's temporaries (`.tmp-<pid>-`), so a build removes any left by a killed probe."""


class PoolError(RuntimeError):
    """The pool cannot run jobs: no scheduler answers, or workers cannot see the shared folders."""


class Pool(ABC):
    """An executor with what a caller needs around it: how many jobs run at once, where, and how to stop."""

    kind: str
    executor: Executor
    slots: int
    """Jobs that run at once: worker processes, or the cluster's worker threads."""
    where: str
    """Where the jobs run, for the log."""

    @abstractmethod
    def close(self) -> None:
        """Wait for running jobs, then release the workers (and a cluster the pool started)."""

    @abstractmethod
    def kill(self) -> None:
        """Stop at once: cancel queued jobs and end the workers this pool started."""

    @abstractmethod
    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        """`fn(*args)` once in each worker's environment (here, for local processes): {worker: result}."""

    @abstractmethod
    def worker_lost(self, exc: BaseException) -> str | None:
        """What happened, when `exc` from a job's future means a worker died under it; else None."""


class ProcessPool(Pool):
    kind = "process"

    def __init__(self, workers: int, start_method: str, initializer: Callable[[], None] | None) -> None:
        self.executor = self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(start_method),
                                                         initializer=initializer)
        self.slots = workers
        self.where = f"{workers} local worker process(es), start method {start_method}"

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def kill(self) -> None:
        # A hung worker would block shutdown forever: kill the processes, then shut down without waiting.
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        for proc in processes:
            if proc.is_alive():
                proc.kill()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            proc.join(timeout=5)

    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        return {"local": fn(*args)}  # the workers share this machine, and so its files

    def worker_lost(self, exc: BaseException) -> str | None:
        return "a worker process died (killed or out of memory)" if isinstance(exc, BrokenProcessPool) else None


class DaskPool(Pool):
    kind = "dask"

    def __init__(self, scheduler: str, workers: int, initializer: Callable[[], None] | None,
                 shared: Mapping[Path, str], probe_name: str) -> None:
        from distributed import Client

        from common.dask_worker import RunAtStart

        self._cluster = None
        if scheduler:
            try:
                self._client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise PoolError(f"build.scheduler = {scheduler!r}: no Dask scheduler answers there within "
                                f"{CONNECT_TIMEOUT_S:.0f} s ({exc}); start one with `dask scheduler` and workers "
                                f"with `dask worker {scheduler}`") from None
        else:
            self._cluster = local_cluster(workers)
            self._client = Client(self._cluster, set_as_default=False)
        try:
            if initializer is not None:
                self._client.register_plugin(RunAtStart(initializer), name="rl-signal-trader-initializer")
            self.slots = max(1, sum(self._client.nthreads().values()))
            check_shared_folders(self._client, shared, probe_name)
        except BaseException:
            self._release()
            raise
        self.executor = self._client.get_executor(pure=False)
        self.where = (f"Dask scheduler {scheduler}, {len(self._client.nthreads())} worker(s), {self.slots} thread(s)"
                      if scheduler else f"a Dask LocalCluster of {workers} worker process(es) on 127.0.0.1")

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self._release()

    def kill(self) -> None:
        # Cancelled tasks that already run on a remote worker finish there and are discarded; the workers
        # of a LocalCluster this pool started are ended with it.
        self.executor.shutdown(wait=False)
        self._release()

    def _release(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        return dict(self._client.run(fn, *args))

    def worker_lost(self, exc: BaseException) -> str | None:
        from distributed.scheduler import KilledWorker

        if isinstance(exc, KilledWorker):
            return ("Dask workers died (killed or out of memory) each time they ran it, up to the scheduler's "
                    "distributed.scheduler.allowed-failures")
        return None


def local_cluster(workers: int) -> Any:
    """A `distributed.LocalCluster` of `workers` processes with one thread each, all on 127.0.0.1 (random
    ports: no clash with another cluster, nothing reachable from outside). Its workers are not daemonic, so
    they may start processes of their own (a fold's environments, its forkserver); closing it ends them."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.worker.daemon": False}):
        # The scheduler's HTTP server starts even without a dashboard, on port 8787 unless told otherwise.
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})


@contextmanager
def open_pool(kind: str, *, workers: int, start_method: str = "forkserver",
              initializer: Callable[[], None] | None = None, scheduler: str = "",
              shared: Mapping[Path, str] | None = None, kill_on_error: bool = True) -> Iterator[Pool]:
    """A pool of `kind` ("process" or "dask"), closed (or killed, on an error) when the block ends.

    Args:
        workers: local worker processes, or the LocalCluster's when kind is "dask" without a scheduler.
        start_method: multiprocessing start method of local worker processes.
        initializer: run once in each worker process at its start (thread caps).
        scheduler: a Dask scheduler address; empty: a LocalCluster this pool starts and closes.
        shared: {folder: the setting it comes from}: folders every Dask worker must see as this process does
            (checked at start).
        kill_on_error: on an exception, stop the workers at once rather than wait for running jobs.
    """
    pool: Pool
    if kind == "process":
        pool = ProcessPool(workers, start_method, initializer)
    elif kind == "dask":
        pool = DaskPool(scheduler, workers, initializer, shared or {}, f"{PROBE_PREFIX}{os.getpid()}-dask-probe")
    else:
        raise PoolError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
    try:
        yield pool
    except BaseException:
        if kill_on_error:
            pool.kill()
        else:
            pool.close()
        raise
    pool.close()


def check_shared_folders(client: Any, folders: Mapping[Path, str], probe_name: str) -> None:
    """Every Dask worker reads a token this process wrote in each folder and writes a file of its own there.

    A worker that cannot read the token sees another filesystem (or none) at that path: its outputs would
    never reach this process. PoolError names each folder, its setting and the workers that failed, with
    their reason. `folders` maps each folder to the setting it comes from.
    """
    from common.dask_worker import probe_folder

    problems = []
    for folder, setting in {Path(f).resolve(): s for f, s in folders.items()}.items():
        folder.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        token_path = folder / f"{probe_name}.{token}"
        token_path.write_text(token)
        try:
            answers = client.run(probe_folder, str(token_path), token)
        finally:
            token_path.unlink(missing_ok=True)
        failed = {worker: reason for worker, reason in answers.items() if reason is not None}
        if failed:
            problems.append(f"{folder} ({setting}): " + "; ".join(f"{w} {r}" for w, r in sorted(failed.items())))
    if problems:
        raise PoolError("every Dask worker must see these folders on a filesystem shared with this machine, at the "
                        "same path; some do not:\n  " + "\n  ".join(problems))
