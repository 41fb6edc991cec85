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
import warnings
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
from trader.train import configure_learner  # noqa: E402

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
          f"{row['inference_s']:5.2f}) update {row['update_s']:6.2f} s   peak tree PSS {row['peak_mib']:5.0f} MiB",
          flush=True)
    return row


def _measure(name: str, make, n: int, total: int, policy: Any) -> dict:
    venv = make()
    try:
        model = new_ppo(policy, venv)
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


def new_ppo(policy: Any, venv) -> PPO:
    return PPO(policy, venv, n_steps=N_STEPS, batch_size=BATCH, seed=0, device="cpu", verbose=0)


def rollout_rate(make, policy: Any, rollouts: int) -> float:
    """Steps per second of PPO's own collect_rollouts (SB3's code, callbacks included), after one warm-up."""
    venv = make()
    try:
        model = new_ppo(policy, venv)
        _, callback = model._setup_learn(total_timesteps=(rollouts + 1) * N_STEPS * venv.num_envs, callback=None)
        callback.on_training_start(locals(), globals())
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=N_STEPS)
        started = time.perf_counter()
        for _ in range(rollouts):
            model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=N_STEPS)
        return rollouts * N_STEPS * venv.num_envs / (time.perf_counter() - started)
    finally:
        venv.close()


def rollout_ratios(setups: dict[str, tuple[Any, Any]], n: int, rounds: int, rollouts: int) -> None:
    """Rollout collection against SB3 SubprocVecEnv on gym-anytrading, as the median of interleaved rounds.

    On a small machine shared with a scheduler, one run of a multi-process setup varies by +-20 %;
    interleaving the setups round by round spreads any slow spell over all of them.
    """
    rates: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(rounds):
        for name, (make, policy) in setups.items():
            rates[name].append(rollout_rate(make, policy, rollouts))
    reference = float(np.median(rates["anytrading/subproc"]))
    for name, values in rates.items():
        ratio = float(np.median(values)) / reference
        spread = ", ".join(f"{v:,.0f}" for v in values)
        print(f"  N={n:<3} {name:<24} {np.median(values):9,.0f} steps/s  ({spread})   {ratio:5.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 16, 48])
    parser.add_argument("--steps", type=int, default=0, help="PPO steps per setup (default: 6 rollouts)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the rollout comparison")
    parser.add_argument("--quick", action="store_true", help="N = 1 and 16 only, 2 rollouts each, 1 round")
    args = parser.parse_args()
    # gym-anytrading warns on every reset in every worker; workers inherit this through the environment.
    os.environ["PYTHONWARNINGS"] = "ignore::UserWarning"
    warnings.simplefilter("ignore", UserWarning)
    configure_learner(threads=1)  # as trader.train does with its default, for every row
    if args.quick:
        args.n, args.rounds = [1, 16], 1
    try:
        import gym_anytrading  # noqa: F401
    except ImportError:
        sys.exit("gym-anytrading is not installed; it is the reference here (pip install gym-anytrading)")
    print(f"machine: {os.cpu_count()} cores; torch threads 1; PPO n_steps={N_STEPS}, batch={BATCH}, "
          f"MlpPolicy 64x64, 10 epochs (SB3 defaults otherwise); observations: ours window 16 x 50 features, "
          f"gym-anytrading its default (window 10 x 2)")
    with tempfile.TemporaryDirectory() as tmp:
        store = synthetic_store(Path(tmp) / "store")
        setups = {n: {
            "ours/dummy": (lambda n=n: ours(store, "dummy", n), RolloutMlpPolicy),
            "ours/subproc": (lambda n=n: ours(store, "subproc", n), RolloutMlpPolicy),
            "ours/batched": (lambda n=n: ours(store, "batched", n), RolloutMlpPolicy),
            "ours/batched+sb3-policy": (lambda n=n: ours(store, "batched", n), "MlpPolicy"),
            "anytrading/dummy": (lambda n=n: anytrading("dummy", n), "MlpPolicy"),
            "anytrading/subproc": (lambda n=n: anytrading("subproc", n), "MlpPolicy"),
        } for n in args.n}
        print("\n1. PPO learn(): throughput, where the time goes, peak memory of the process tree")
        for n in args.n:
            total = args.steps or n * N_STEPS * (2 if args.quick else 6)
            print(f"N = {n}:")
            for name, (make, policy) in setups[n].items():
                measure(name, make, n, total, policy)
        rollouts = 2 if args.quick else 3
        print(f"\n2. rollout collection (everything outside the update) against SB3 SubprocVecEnv on gym-anytrading: "
              f"median of {args.rounds} interleaved round(s) of {rollouts} rollouts (per-round rates in brackets)")
        for n in args.n:
            rollout_ratios(setups[n], n, args.rounds, rollouts)


if __name__ == "__main__":
    main()
