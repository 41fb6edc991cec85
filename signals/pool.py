"""The build's pool: its tasks fed to local worker processes or a Dask cluster (`build.executor`), in batches.

Either way the pool is a `concurrent.futures` executor (`common.executors`), fed `build.batch_size` tasks at a
time with one batch queued behind the running one; each task (`signals.worker.run_task`, an importable
function) memory-maps its inputs from the store, writes its own arrays there and sends back a few numbers.
A worker that dies is an error (processes) or is retried by the Dask scheduler on another worker, and a
task that does not finish in `build.task_timeout_s` is an error, not a hang; the rerun then computes only
the missing tasks.

With Dask the store (`build.out`, and `build.variants_dir` where it is elsewhere) must be on a filesystem
every worker sees at the same path, and every worker must run the same signal code as this process: both
are checked before the first task.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path
from typing import Any, Callable

from common.executors import Pool, PoolError, open_pool
from settings import BuildConfig
from common import files
from signals.cache import variant_code_hash
from signals.threads import cap_thread_env, cap_threads
from signals.worker import Task, init_worker, run_task


class PoolFailed(RuntimeError):
    """The pool stopped before every task finished; finished tasks stay in the store for the rerun."""


def run_pool(tasks: list[Task], config: BuildConfig, workers: int, root: Path, variants_dir: Path, progress: Any,
             log: Callable[[str], None]) -> list[dict]:
    """Run `tasks` on the pool `config.executor` names; returns their metadata, in the order they finished."""
    cap_thread_env()  # inherited by a fork server, or a LocalCluster's workers, started from here on
    dask = config.executor == "dask"
    try:
        with open_pool(config.executor, workers=workers, start_method=config.start_method,
                       # A Dask worker may serve other clients: it gets the thread caps, not our SIGINT handling.
                       initializer=cap_threads if dask else init_worker, scheduler=config.scheduler,
                       shared={root: "build.out", variants_dir: "build.variants_dir (default <build.out>/variants)"},
                       ) as pool:
            if dask:
                log(f"executor: {pool.where}")
                check_code(pool)
                # On each worker's host: temporaries of writers killed there in an earlier build.
                pool.run_everywhere(files.remove_temporaries, variants_dir)
            results = feed(pool, tasks, config.batch_size, config.task_timeout_s, progress)
            # A worker killed while writing (and its task retried elsewhere) may have left a temporary behind.
            pool.run_everywhere(files.remove_temporaries, variants_dir)
            return results
    except PoolError as exc:
        raise PoolFailed(str(exc)) from None


def check_code(pool: Pool) -> None:
    """Every worker computes variants with the signal code this process hashes into the task keys."""
    mine = variant_code_hash()
    other = sorted(w for w, h in pool.run_everywhere(variant_code_hash).items() if h != mine)
    if other:
        raise PoolFailed(f"Dask worker(s) {', '.join(other)} run other signal code than this machine (the hash of "
                         f"signals/ differs): install the same version of the project on every worker")


def feed(pool: Pool, tasks: list[Task], batch_size: int, timeout_s: float, progress: Any) -> list[dict]:
    """Submit `batch_size` tasks at a time, keeping one batch (at least a task per worker) queued behind the
    running ones so that workers never idle between batches."""
    results: list[dict] = []
    queue = iter(tasks)
    pending: dict[Any, Task] = {}
    while True:
        while len(pending) <= max(batch_size, pool.slots):
            batch = [t for _, t in zip(range(batch_size), queue)]
            if not batch:
                break
            pending.update({pool.executor.submit(run_task, t): t for t in batch})
        if not pending:
            return results
        done, _ = wait(pending, timeout=timeout_s, return_when=FIRST_COMPLETED)
        if not done:
            stuck = next(iter(pending.values()))
            raise PoolFailed(f"no task finished in {timeout_s:.0f} s (build.task_timeout_s); "
                             f"stuck e.g. on {stuck.family} for {stuck.symbol}")
        for future in done:
            task = pending.pop(future)
            try:
                results.append(future.result())
            except Exception as exc:
                lost = pool.worker_lost(exc)
                if lost is None:
                    raise
                raise PoolFailed(f"{lost} while the pool was running {task.family} on {task.symbol}; finished "
                                 f"tasks are kept, rerun the build to compute only the missing ones") from None
            progress.update(1)
