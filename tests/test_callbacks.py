"""Checkpoints and the best-model record, the pieces a resumed run relies on."""

from __future__ import annotations

import json

import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure

from trader.callbacks import ValidationCallback, latest_checkpoints, save_checkpoint


@pytest.fixture(scope="module")
def model():
    ppo = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, device="cpu", seed=0)
    ppo.set_logger(configure(None, []))
    return ppo


def validation(model, best_path, score: float) -> ValidationCallback:
    callback = ValidationCallback(lambda _: score, every=32, best_path=best_path)
    callback.init_callback(model)
    return callback


def test_a_resumed_run_keeps_a_better_earlier_best_model(model, tmp_path):
    best = tmp_path / "best_model.zip"
    validation(model, best, 2.0).run()
    saved = best.read_bytes()
    resumed = validation(model, best, 1.0)  # a new process after --resume: starts from the record
    assert resumed.best_score == 2.0
    resumed.run()
    assert best.read_bytes() == saved and json.loads(best.with_suffix(".json").read_text())["validation_sharpe"] == 2.0
    validation(model, best, 3.0).run()
    assert json.loads(best.with_suffix(".json").read_text())["validation_sharpe"] == 3.0


def test_nan_validation_never_becomes_the_best(model, tmp_path):
    best = tmp_path / "best_model.zip"
    validation(model, best, float("nan")).run()
    assert not best.exists()


def test_checkpoints_newest_first_and_loadable(model, tmp_path):
    folder = tmp_path / "checkpoints"
    save_checkpoint(model, folder, 64)
    save_checkpoint(model, folder, 128)
    assert [p.name for p in latest_checkpoints(folder)] == ["step_000000000128.zip", "step_000000000064.zip"]
    assert PPO.load(latest_checkpoints(folder)[0]).num_timesteps == 128
    assert not list(folder.glob(".tmp-*"))


def test_a_ctrl_c_during_a_save_waits_for_the_save_to_finish():
    import os
    import signal

    import pytest

    from trader.callbacks import sigint_deferred

    done = []
    before = signal.getsignal(signal.SIGINT)  # default, or ignored where the runner was started in the background
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the save went on")
    assert done == ["the save went on"]
    assert signal.getsignal(signal.SIGINT) == before
