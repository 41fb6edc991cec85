"""A dead or silent env worker is an error naming it within a bounded time, never a hang."""

from __future__ import annotations

import functools
import os
import signal
import sys
import time

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest

from envs.subproc import EnvWorkerError, WatchedSubprocVecEnv

# Workers receive the env factory by value (this test module is not importable from a worker).
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class TinyEnv(gym.Env):
    """One-number observation; `hang_on_step` makes step() never return (a stuck worker)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, hang_on_step: bool = False) -> None:
        self.hang_on_step = hang_on_step

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        if self.hang_on_step:
            time.sleep(3600)
        return np.zeros(1, np.float32), 0.0, False, False, {}


def make(hang: bool = False) -> gym.Env:
    return TinyEnv(hang)


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_killed_worker_is_named(start_method):
    venv = WatchedSubprocVecEnv([make, make], start_method=start_method, timeout_s=10)
    try:
        venv.reset()
        os.kill(venv.processes[1].pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(EnvWorkerError, match=r"env worker 1 \(pid \d+\) died \(exit code -9\)"):
            venv.step(np.array([0, 0]))
        assert time.monotonic() - started < 10
    finally:
        started = time.monotonic()
        venv.close()
        assert time.monotonic() - started < 15
    assert not any(p.is_alive() for p in venv.processes)


def test_silent_worker_times_out_and_close_kills_it():
    venv = WatchedSubprocVecEnv([make, functools.partial(make, True)], timeout_s=2)
    try:
        venv.reset()
        started = time.monotonic()
        with pytest.raises(EnvWorkerError, match=r"env worker 1 \(pid \d+\) did not answer within 2 s"):
            venv.step(np.array([0, 0]))
        assert 1.5 < time.monotonic() - started < 10
    finally:
        venv.close()
    assert not any(p.is_alive() for p in venv.processes)


def test_workers_ignore_ctrl_c():
    """Ctrl-C reaches the whole process group; only the trainer may act on it."""
    venv = WatchedSubprocVecEnv([make, make], timeout_s=10)
    try:
        venv.reset()
        for process in venv.processes:
            os.kill(process.pid, signal.SIGINT)
        time.sleep(0.5)
        obs, *_ = venv.step(np.array([1, 1]))
        assert obs.shape == (2, 1)
    finally:
        venv.close()
