"""Small stable-baselines3 callbacks: checkpoints, validation, progress."""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from tqdm import tqdm

from common.files import atomic_path, save_json

LATEST = "latest.json"


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block until the block is done, then raise it.

    A KeyboardInterrupt raised inside torch's zip writer leaves the writer broken ("unexpected pos"), and
    the checkpoint that Ctrl-C asks for then fails too; a save must finish before the interrupt is seen.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def save_model_atomically(model: BaseAlgorithm, path: Path, num_timesteps: int | None = None) -> None:
    """model.save to a temporary file, then rename; `num_timesteps` overrides the saved step count."""
    saved_steps = model.num_timesteps
    if num_timesteps is not None:
        model.num_timesteps = num_timesteps
    try:
        with sigint_deferred(), atomic_path(path) as tmp, open(tmp, "wb") as fh:
            model.save(fh)
    finally:
        model.num_timesteps = saved_steps


def save_checkpoint(model: BaseAlgorithm, folder: Path, num_timesteps: int) -> Path:
    """checkpoints/step_<n>.zip, then latest.json pointing at it (so latest.json only ever names a whole file)."""
    path = folder / f"step_{num_timesteps:012d}.zip"
    save_model_atomically(model, path, num_timesteps)
    save_json(folder / LATEST, {"path": path.name, "num_timesteps": num_timesteps})
    return path


def latest_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints newest first: the one latest.json names, then the others by step count."""
    found = sorted(folder.glob("step_*.zip"), reverse=True)
    latest = folder / LATEST
    if latest.exists():
        named = folder / json.loads(latest.read_text())["path"]
        found = [named] + [p for p in found if p != named] if named.exists() else found
    return found


class CheckpointCallback(BaseCallback):
    """Save every `every` steps, at rollout boundaries, where the weights and the step count agree.

    `trained_steps` is the step count the current weights were trained on; an interrupted run saves
    that, so a resume redoes the partial rollout instead of skipping it. (A Ctrl-C that lands inside
    the PPO update itself saves weights part-way through that update: still a valid model, labelled
    with the steps of the rollout it was being trained on.)
    """

    def __init__(self, folder: Path, every: int) -> None:
        super().__init__()
        self.folder = folder
        self.every = every
        self.trained_steps = 0
        self._last_saved = 0

    def _on_training_start(self) -> None:
        self.trained_steps = self._last_saved = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        self.trained_steps = self.model.num_timesteps
        if self.trained_steps - self._last_saved >= self.every:
            save_checkpoint(self.model, self.folder, self.trained_steps)
            self._last_saved = self.trained_steps

    def _on_step(self) -> bool:
        return True

    def save_now(self) -> Path:
        return save_checkpoint(self.model, self.folder, self.trained_steps)


class ValidationCallback(BaseCallback):
    """Every `every` steps, score the policy on the validation split; keep the best model.

    The best score so far is written beside the model (`best_model.json`), so a resumed run only
    replaces `best_model.zip` with a model that beats the one saved before the interruption.
    """

    def __init__(self, evaluate: Callable[[BaseAlgorithm], float], every: int, best_path: Path,
                 on_result: Callable[[int, float], None] | None = None) -> None:
        super().__init__()
        self.evaluate = evaluate
        self.every = every
        self.best_path = best_path
        self.on_result = on_result
        self.best_score, self.best_step = self._saved_best()
        self.history: list[tuple[int, float]] = []
        self._last = 0

    def _saved_best(self) -> tuple[float, int]:
        record = self.best_path.with_suffix(".json")
        if record.exists() and self.best_path.exists():
            saved = json.loads(record.read_text())
            return float(saved["validation_sharpe"]), int(saved["step"])
        return -math.inf, -1

    def _on_training_start(self) -> None:
        self._last = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps - self._last >= self.every:
            self.run()

    def _on_step(self) -> bool:
        return True

    def run(self) -> float:
        self._last = self.model.num_timesteps
        score = self.evaluate(self.model)
        self.history.append((self.model.num_timesteps, score))
        self.logger.record("validation/sharpe", score)
        if math.isfinite(score) and score > self.best_score:
            self.best_score, self.best_step = score, self.model.num_timesteps
            save_model_atomically(self.model, self.best_path)
            save_json(self.best_path.with_suffix(".json"), {"validation_sharpe": score, "step": self.best_step})
        if self.on_result is not None:
            self.on_result(self.model.num_timesteps, score)
        return score


class ProgressCallback(BaseCallback):
    """A progress bar with steps per second (tqdm on stderr)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self._bar: Any = None
        self._start_steps = 0
        self._started = 0.0

    def _on_training_start(self) -> None:
        self._start_steps = self.model.num_timesteps
        self._started = time.perf_counter()
        self._bar = tqdm(total=self.total, initial=self._start_steps, unit="step", file=sys.stderr,
                         desc="training", dynamic_ncols=True, mininterval=1.0)

    def _on_step(self) -> bool:
        self._bar.update(self.model.num_timesteps - self._bar.n)
        return True

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()

    @property
    def steps_per_second(self) -> float:
        elapsed = time.perf_counter() - self._started
        return (self.model.num_timesteps - self._start_steps) / elapsed if elapsed > 0 else 0.0


class EpisodeStatsCallback(BaseCallback):
    """Statistics of the training episodes that ended during each rollout, in the TensorBoard and CSV logs.

    `episode/return` (log of the final equity: net of costs, in plain units whatever the reward's scaling),
    `episode/length`, `episode/turnover` (sum of |change of position| per bar), `episode/costs` (paid, in
    units of the starting equity) and `episode/count`. Only the infos of the environments that finished
    are read, so the batched env builds no other info dict.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lengths: Any = None
        self._ended: list[tuple[float, int, float, float]] = []

    def _on_training_start(self) -> None:
        self._lengths = np.zeros(self.training_env.num_envs, dtype=np.int64)

    def _on_step(self) -> bool:
        self._lengths += 1
        dones = self.locals["dones"]
        if dones.any():
            infos = self.locals["infos"]
            for i in np.flatnonzero(dones).tolist():
                info, length = infos[i], int(self._lengths[i])
                equity = float(info.get("equity", 1.0))
                growth = math.log(equity) if equity > 0 else -math.inf
                self._ended.append((growth, length, float(info.get("turnover", 0.0)) / length,
                                    float(info.get("total_cost", 0.0))))
                self._lengths[i] = 0
        return True

    def _on_rollout_end(self) -> None:
        if not self._ended:
            return
        for key, values in zip(("return", "length", "turnover", "costs"), zip(*self._ended)):
            self.logger.record(f"episode/{key}", sum(values) / len(values))
        self.logger.record("episode/count", len(self._ended))
        self._ended = []
