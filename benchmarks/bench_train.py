"""PPO training throughput: our vectorisations beside SB3 on gym-anytrading, measured in one run.

For each setup, PPO (default SB3 hyperparameters but for the network/steps below, the same everywhere)
learns a fixed number of steps; the time is split into rollout collection (everything outside the
update: env stepping, inter-process traffic, policy inference) and the PPO update. Rollout time is
further split by measuring, on the same VecEnv, random-action stepping alone (env + traffic) and the
policy's forward pass alone (inference, as the rollout calls it).

`ours/*` rows use the trainer's policy (trader.policy.RolloutMlpPolicy: SB3's MlpPolicy network with its
rollout inference in NumPy); `ours/batched+sb3-policy` is the batched env under SB3's stock MlpPolicy,
so the environment's and the policy's shares of the gain can be told apart. gym-anytrading rows use
SB3's stock MlpPolicy and `make_vec_env`, as a user of those libraries would.

    python benchmarks/bench_train.py [--n 1 4 16 48] [--steps 8192] [--quick]

gym-anytrading is installed in the benchmark's environment only (`pip install gym-anytrading`);
without it the reference rows are skipped with a message.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

from signals.build import TreeMemory  # noqa: E402
from signals.store import write_synthetic_store  # noqa: E402
from trader.policy import RolloutMlpPolicy  # noqa: E402
from trader.train import configure_torch  # noqa: E402

N_STEPS = 128
BATCH = 64


class PhaseTimer(BaseCallback):
    """Seconds spent collecting rollouts; the rest of learn() is the update."""

    def __init__(self) -> None:
        super().__init__()
        self.rollout_s = 0.0
        self._t = 0.0

    def _on_rollout_start(self) -> None:
        self._t = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.rollout_s += time.perf_counter() - self._t

    def _on_step(self) -> bool:
        return True


def synthetic_store(root: Path, n_bars: int = 20_000, n_features: int = 50) -> Path:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n_bars)))
    features = np.tanh(rng.normal(size=(n_bars, n_features))).astype(np.float32)
    times = (np.arange(n_bars, dtype=np.int64) * 3600 * 10**9)
    splits = {"SYN": {"train": (0, 14_000), "validation": (14_100, 17_000), "test": (17_100, n_bars)}}
    write_synthetic_store(root, {"SYN": (features, close, times)}, splits, [f"f{i}" for i in range(n_features)])
    return root


def ours(store: Path, vec_env: str, n: int):
    from envs.factory import make_vec_env

    kwargs = {"window": 16, "episode_length": 512}
    return make_vec_env(store, "train", kwargs, n_envs=n, seed=0, vec_env=vec_env)


def anytrading(vec_env: str, n: int):
    import gym_anytrading  # noqa: F401  (registers stocks-v0)
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    import gymnasium

    cls = SubprocVecEnv if vec_env == "subproc" else DummyVecEnv
    kwargs = {"start_method": "forkserver"} if vec_env == "subproc" else {}
    # A callable, not the id: SB3's make_vec_env asks an id for render_mode="rgb_array", which stocks-v0 refuses.
    return make_vec_env(lambda: gymnasium.make("gym_anytrading:stocks-v0"), n_envs=n, seed=0, vec_env_cls=cls,
                        vec_env_kwargs=kwargs)


def random_step_rate(venv, steps: int) -> float:
    venv.reset()
    actions = np.array([venv.action_space.sample() for _ in range(venv.num_envs)])
    started = time.perf_counter()
    for _ in range(steps):
        venv.step(actions)
    return steps * venv.num_envs / (time.perf_counter() - started)


def inference_rate(model: PPO, venv, steps: int) -> float:
    obs = venv.reset()
    model.policy.set_training_mode(False)
    started = time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            model.policy(torch.as_tensor(obs))
    return steps * venv.num_envs / (time.perf_counter() - started)


def measure(name: str, make, n: int, total: int, policy: Any = "MlpPolicy") -> dict:
    with TreeMemory(interval_s=0.5) as memory:
        row = _measure(name, make, n, total, policy)
    row["peak_mib"] = memory.peak_bytes / 2**20
    print(f"  {name:<24} N={n:<3} {row['sps']:8.0f} steps/s   rollout {row['rollout_sps']:9.0f} steps/s   "
          f"time: rollout {row['rollout_s']:6.2f} s (env+traffic ~{row['env_s']:5.2f}, inference ~"
          f"{row['inference_s']:5.2f}) update {row['update_s']:6.2f} s   peak tree RSS {row['peak_mib']:5.0f} MiB",
          flush=True)
    return row


def _measure(name: str, make, n: int, total: int, policy: Any) -> dict:
    venv = make()
    try:
        model = PPO(policy, venv, n_steps=N_STEPS, batch_size=BATCH, seed=0, device="cpu", verbose=0)
        timer = PhaseTimer()
        started = time.perf_counter()
        model.learn(total_timesteps=total, callback=timer)
        seconds = time.perf_counter() - started
        steps = model.num_timesteps
        env_rate = random_step_rate(venv, max(50, 2000 // n))
        infer_rate = inference_rate(model, venv, max(50, 2000 // n))
    finally:
        venv.close()
    return {"name": name, "n": n, "steps": steps, "sps": steps / seconds, "rollout_sps": steps / timer.rollout_s,
            "rollout_s": timer.rollout_s, "update_s": seconds - timer.rollout_s,
            "env_s": steps / env_rate, "inference_s": steps / infer_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 16, 48])
    parser.add_argument("--steps", type=int, default=0, help="PPO steps per setup (default: 6 rollouts)")
    parser.add_argument("--quick", action="store_true", help="N = 1 and 16 only, 2 rollouts each")
    args = parser.parse_args()
    configure_torch(threads=1)  # as trader.train does with its default, for every row
    if args.quick:
        args.n = [1, 16]
    try:
        import gym_anytrading  # noqa: F401

        have_reference = True
    except ImportError:
        have_reference = False
        print("gym-anytrading is not installed: reference rows skipped (pip install gym-anytrading)")
    print(f"machine: {os.cpu_count()} cores; torch threads 1; PPO n_steps={N_STEPS}, batch={BATCH}, "
          f"MlpPolicy 64x64, 10 epochs (SB3 defaults otherwise); observations: ours window 16 x 50 features, "
          f"gym-anytrading its default (window 10 x 2)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = synthetic_store(Path(tmp) / "store")
        for n in args.n:
            total = args.steps or n * N_STEPS * (2 if args.quick else 6)
            print(f"N = {n}:")
            for vec in ("dummy", "subproc", "batched"):
                rows.append(measure(f"ours/{vec}", lambda: ours(store, vec, n), n, total, RolloutMlpPolicy))
            rows.append(measure("ours/batched+sb3-policy", lambda: ours(store, "batched", n), n, total))
            if have_reference:
                for vec in ("dummy", "subproc"):
                    rows.append(measure(f"anytrading/{vec}", lambda: anytrading(vec, n), n, total))
    if have_reference:
        print("\nrollout collection (everything outside the update) against SB3 SubprocVecEnv on gym-anytrading:")
        for n in args.n:
            ref = next(r for r in rows if r["name"] == "anytrading/subproc" and r["n"] == n)["rollout_sps"]
            for name in ("ours/subproc", "ours/batched", "ours/dummy", "ours/batched+sb3-policy"):
                mine = next(r for r in rows if r["name"] == name and r["n"] == n)["rollout_sps"]
                print(f"  N={n:<3} {name:<24} {mine / ref:6.2f}x")


if __name__ == "__main__":
    main()
