"""SubprocVecEnv that never hangs: a dead or silent worker becomes an error naming it.

stable-baselines3's SubprocVecEnv waits on its pipes without a limit, so a worker that dies or stops
answering leaves training blocked forever (the old system's failure with 48 environments). Here every
receive polls with a timeout, a closed pipe is reported with the worker's exit code, `close()` kills
what does not exit, and workers ignore Ctrl-C so only the trainer handles it (and saves a checkpoint).
"""

from __future__ import annotations

import functools
import select
import signal
from typing import Any, Callable, Sequence

import gymnasium as gym
from stable_baselines3.common.vec_env import SubprocVecEnv

from signals.threads import cap_threads


class EnvWorkerError(RuntimeError):
    """An environment worker process died or stopped answering."""


def _worker_env(env_fn: Callable[[], gym.Env]) -> gym.Env:
    """Runs first inside each worker: no Ctrl-C (the parent handles it), one thread, then the env."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cap_threads()
    return env_fn()


class _WatchedPipe:
    """The parent's end of one worker's pipe, with a bounded wait on every receive."""

    def __init__(self, conn: Any, index: int, process: Any, timeout_s: float) -> None:
        self._conn = conn
        self._index = index
        self._process = process
        self._timeout_s = timeout_s
        # Connection.poll builds and tears down a selector on every call (about 40 us, paid per worker
        # per step); one registered poll object answers the same question in a few microseconds.
        self._poller = select.poll() if hasattr(select, "poll") else None
        if self._poller is not None:
            self._poller.register(conn.fileno(), select.POLLIN)

    def send(self, message: Any) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise self._died() from None

    def _ready(self) -> bool:
        if self._poller is None:
            return self._conn.poll(self._timeout_s)
        return bool(self._poller.poll(self._timeout_s * 1000))  # POLLHUP of a dead worker counts too

    def recv(self) -> Any:
        if not self._ready():
            raise EnvWorkerError(f"env worker {self._index} (pid {self._process.pid}) did not answer within "
                                 f"{self._timeout_s:g} s (train.worker_timeout_s); stopping instead of hanging")
        try:
            return self._conn.recv()
        except (EOFError, ConnectionResetError):
            raise self._died() from None

    def _died(self) -> EnvWorkerError:
        self._process.join(timeout=1)
        return EnvWorkerError(f"env worker {self._index} (pid {self._process.pid}) died "
                              f"(exit code {self._process.exitcode}); see its error above")

    def close(self) -> None:
        self._conn.close()


class WatchedSubprocVecEnv(SubprocVecEnv):
    """SubprocVecEnv with bounded waits, named worker errors and a close that cannot hang."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], start_method: str = "forkserver",
                 timeout_s: float = 60.0) -> None:
        wrapped: list[Callable[[], gym.Env]] = [functools.partial(_worker_env, fn) for fn in env_fns]
        try:
            super().__init__(wrapped, start_method=start_method)
        except (EOFError, ConnectionResetError):
            raise EnvWorkerError("an env worker died while starting; see its error above") from None
        self.remotes = [_WatchedPipe(conn, i, proc, timeout_s)
                        for i, (conn, proc) in enumerate(zip(self.remotes, self.processes))]

    def close(self) -> None:
        if self.closed:
            return
        for remote in self.remotes:
            try:
                remote.send(("close", None))
            except EnvWorkerError:
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for remote in self.remotes:
            remote.close()
        self.closed = True
