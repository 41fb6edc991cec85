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

Section 3 compares the learners: whole-PPO env-steps/s of JaxPPO (trader.jax_ppo, `train.learner = "jax"`)
and SB3's PPO.train on our batched env and on gym-anytrading, against SB3 on gym-anytrading, a fresh
model per run so the one-off compilation is inside the figure (and also reported apart). Section 4 is
time to quality: training seconds until the validation Sharpe first reaches a set level on an AR(1)
trend market generated here (a stand-in for benchmarks/bench_learning.py's markets).

    python benchmarks/bench_train.py [--n 1 4 16 48] [--steps 8192] [--quick] [--sections 1 2 3 4]
    python benchmarks/bench_train.py --n 1 16 48 --sections 3 4     # the learner comparison only

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

from benchmarks.markets import ar1_returns  # noqa: E402
from common.resources import TreeMemory  # noqa: E402
from signals.store import write_synthetic_store  # noqa: E402
from trader.policy import RolloutMlpPolicy  # noqa: E402
from trader.train import configure_learner  # noqa: E402

N_STEPS = 128
BATCH = 64
QUALITY_LEVEL = 1.5  # validation Sharpe, net of costs, of section 4 (buy-and-hold there: see its output)


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
    from envs.spec import EnvSpec

    return make_vec_env(store, "train", EnvSpec(window=16, episode_length=512), n_envs=n, seed=0, vec_env=vec_env)


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


def new_ppo(policy: Any, venv, algorithm: type[PPO] = PPO) -> PPO:
    return algorithm(policy, venv, n_steps=N_STEPS, batch_size=BATCH, seed=0, device="cpu", verbose=0)


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


# ---------------------------------------------------------------- 3. the learners: whole-PPO steps/s

def learner_run(make, policy: Any, algorithm: type[PPO], rollouts: int) -> dict:
    """One fresh model learning `rollouts` rollouts: whole-run steps/s (compilation included), its parts."""
    from trader.jax_ppo import clear_compiled

    clear_compiled()  # every JaxPPO run compiles, as one `python -m trader.train` does
    venv = make()
    try:
        model = new_ppo(policy, venv, algorithm)
        timer = PhaseTimer()
        started = time.perf_counter()
        model.learn(total_timesteps=rollouts * N_STEPS * venv.num_envs, callback=timer)
        seconds = time.perf_counter() - started
    finally:
        venv.close()
    compile_s = getattr(model, "jax_compile_seconds", 0.0)
    return {"sps": model.num_timesteps / seconds, "update_s": seconds - timer.rollout_s,
            "rollout_s": timer.rollout_s, "compile_s": compile_s,
            "warm_sps": model.num_timesteps / (seconds - compile_s)}


def learner_ratios(setups: dict[str, tuple], n: int, rounds: int, rollouts: int) -> dict[str, dict]:
    """Whole-PPO steps/s of each setup as the median of interleaved rounds, against SB3 on gym-anytrading."""
    runs: dict[str, list[dict]] = {name: [] for name in setups}
    for _ in range(rounds):
        for name, (make, policy, algorithm) in setups.items():
            runs[name].append(learner_run(make, policy, algorithm, rollouts))
    medians = {name: {k: float(np.median([r[k] for r in rs])) for k in rs[0]} for name, rs in runs.items()}
    reference = medians["anytrading/subproc+sb3"]["sps"]
    for name, m in medians.items():
        spread = ", ".join(f"{r['sps']:,.0f}" for r in runs[name])
        print(f"  N={n:<3} {name:<24} {m['sps']:8,.0f} steps/s ({spread})  {m['sps'] / reference:5.2f}x   "
              f"update {m['update_s']:6.2f} s  rollout {m['rollout_s']:6.2f} s  compile {m['compile_s']:5.2f} s  "
              f"(without compile {m['warm_sps']:,.0f} steps/s)", flush=True)
    return medians


def learner_setups(store: Path, n: int) -> dict[str, tuple]:
    from trader.jax_ppo import JaxPPO

    return {
        "ours/batched+jax": (lambda: ours(store, "batched", n), RolloutMlpPolicy, JaxPPO),
        "ours/batched+sb3": (lambda: ours(store, "batched", n), RolloutMlpPolicy, PPO),
        "anytrading/subproc+jax": (lambda: anytrading("subproc", n), "MlpPolicy", JaxPPO),
        "anytrading/subproc+sb3": (lambda: anytrading("subproc", n), "MlpPolicy", PPO),
    }


# ---------------------------------------------------------------- 4. time to quality on a trending market

def trend_store(root: Path, n_bars: int = 10_000, momentum: float = 0.4, n_noise: int = 12) -> Path:
    """A market whose log returns are AR(1) (coefficient `momentum`), the planted edge of tests/test_train.py.

    Features at bar t: the last 4 returns scaled into [-1, 1] (what a trend signal sees) and `n_noise`
    pure-noise columns, written straight into a store: the time-to-quality clock measures the learner,
    not the signal build (benchmarks/bench_learning.py measures learning on the full pipeline).
    """
    rng = np.random.default_rng(1)
    returns = ar1_returns(rng.normal(0.0, 0.01, n_bars), momentum)
    close = 100 * np.exp(np.cumsum(returns))
    lagged = np.stack([np.concatenate([np.zeros(k), returns[:n_bars - k]]) for k in range(4)], axis=1)
    features = np.concatenate([np.tanh(lagged / 0.01), np.tanh(rng.normal(size=(n_bars, n_noise)))], axis=1)
    times = np.arange(n_bars, dtype=np.int64) * 86_400 * 10**9
    splits = {"TRD": {"train": (0, 6_000), "validation": (6_100, 8_000), "test": (8_100, n_bars)}}
    names = [f"ret_lag{k}" for k in range(4)] + [f"noise{i}" for i in range(n_noise)]
    write_synthetic_store(root, {"TRD": (features.astype(np.float32), close, times)}, splits, names)
    return root


class QualityClock(BaseCallback):
    """Validation Sharpe at each rollout boundary past `every` steps, against training wall time.

    The evaluation's own time is excluded from the clock (it is the same work under either learner).
    """

    def __init__(self, score, every: int) -> None:
        super().__init__()
        self.score, self.every = score, every
        self.history: list[tuple[float, int, float]] = []  # (training seconds, steps, validation Sharpe)
        self._started = self._excluded = 0.0
        self._last = 0

    def _on_training_start(self) -> None:
        self._started = time.perf_counter()

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps - self._last < self.every:
            return
        self._last = self.model.num_timesteps
        paused = time.perf_counter()
        sharpe = self.score(self.model)
        self.history.append((paused - self._started - self._excluded, self.model.num_timesteps, sharpe))
        self._excluded += time.perf_counter() - paused

    def _on_step(self) -> bool:
        return True


def time_to_quality(store_root: Path, algorithm: type[PPO], seed: int, level: float, budget: int, n: int
                    ) -> dict:
    """Seconds and steps of training until the validation Sharpe first reaches `level` (None: never)."""
    from envs.factory import make_vec_env
    from envs.spec import EnvSpec
    from settings import params_from_dict
    from signals.store import open_store
    from trader.evaluate import validation_score
    from trader.train import ppo_kwargs

    params = params_from_dict({"costs": {"commission_bps": 0.5, "half_spread_bps": 0.5},
                               "train": {"random_baseline_seeds": 1}})
    store = open_store(store_root)
    from trader.jax_ppo import clear_compiled

    clear_compiled()
    venv = make_vec_env(store_root, "train", EnvSpec.from_config(params.env, params.costs), n_envs=n, seed=seed,
                        vec_env="batched")
    try:
        model = algorithm(RolloutMlpPolicy, venv, seed=seed, device="cpu", verbose=0, **ppo_kwargs(params))
        clock = QualityClock(lambda m: validation_score(m, store, params), every=params.ppo.n_steps * n)
        model.learn(total_timesteps=budget, callback=clock)
        clock._on_rollout_start()  # the final weights
    finally:
        venv.close()
    reached = next(((s, steps) for s, steps, sharpe in clock.history if sharpe >= level), (None, None))
    return {"seconds": reached[0], "steps": reached[1], "final": clock.history[-1][2],
            "best": max(h[2] for h in clock.history), "total_s": clock.history[-1][0],
            "compile_s": getattr(model, "jax_compile_seconds", 0.0)}


def quality_table(seeds: int, level: float, budget: int, n: int) -> None:
    from trader.jax_ppo import JaxPPO

    with tempfile.TemporaryDirectory() as tmp:
        root = trend_store(Path(tmp) / "trend")
        results: dict[str, list[dict]] = {"sb3": [], "jax": []}
        for seed in range(seeds):  # interleaved: a slow spell of the shared machine hits both learners
            for name, algorithm in (("sb3", PPO), ("jax", JaxPPO)):
                results[name].append(time_to_quality(root, algorithm, seed, level, budget, n))
    for name, rows in results.items():
        cells = "  ".join(f"seed {i}: " + (f"{r['seconds']:6.1f} s at {r['steps']:,}" if r["seconds"] is not None
                                           else "not reached") + f" (final {r['final']:.2f}, best {r['best']:.2f})"
                          for i, r in enumerate(rows))
        times = [r["seconds"] for r in rows if r["seconds"] is not None]
        median = f"{np.median(times):.1f} s" if len(times) == len(rows) else f"reached by {len(times)}/{len(rows)}"
        whole, compile_s = (np.median([r[k] for r in rows]) for k in ("total_s", "compile_s"))
        print(f"  learner {name}: median time to Sharpe >= {level}: {median}; whole {budget:,}-step run "
              f"{whole:.1f} s (compile {compile_s:.2f} s)\n    {cells}", flush=True)


# ---------------------------------------------------------------- 5. one update, in CPU seconds

def update_cpu_seconds(algorithm: type[PPO], n_envs: int = 16, inputs: int = 803, updates: int = 4) -> list[float]:
    """CPU seconds of each of `updates` train() calls on one fixed random buffer (the first JaxPPO call compiles).

    CPU time, not wall time: on a shared machine it counts this process's work only.
    """
    import gymnasium

    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import DummyVecEnv
    from trader.jax_ppo import clear_compiled

    class FlatEnv(gymnasium.Env):
        observation_space = gymnasium.spaces.Box(-1.0, 1.0, (inputs,), np.float32)
        action_space = gymnasium.spaces.Discrete(3)

    clear_compiled()
    model = new_ppo("MlpPolicy", DummyVecEnv([FlatEnv] * n_envs), algorithm)
    model.set_logger(configure(None, []))
    buffer, rng = model.rollout_buffer, np.random.default_rng(0)
    buffer.observations[:] = rng.uniform(-1, 1, buffer.observations.shape)
    buffer.actions[:] = rng.integers(0, 3, buffer.actions.shape)
    buffer.advantages[:] = rng.normal(size=buffer.advantages.shape)
    buffer.returns[:] = buffer.advantages
    buffer.full = True
    seconds = []
    for _ in range(updates):
        started = time.process_time()
        model.train()
        seconds.append(time.process_time() - started)
    return seconds


def update_table() -> None:
    from trader.jax_ppo import JaxPPO

    for name, algorithm in (("sb3", PPO), ("jax", JaxPPO)):
        first, *rest = update_cpu_seconds(algorithm)
        print(f"  learner {name}: first update {first:.3f} s CPU (compilation included), then "
              f"{', '.join(f'{s:.3f}' for s in rest)} s CPU (median {np.median(rest):.3f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 16, 48])
    parser.add_argument("--steps", type=int, default=0, help="PPO steps per setup (default: 6 rollouts)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the rollout comparison")
    parser.add_argument("--quick", action="store_true", help="N = 1 and 16 only, 2 rollouts each, 1 round")
    parser.add_argument("--sections", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                        help="1 phases, 2 rollout ratios, 3 learners' whole-PPO steps/s, 4 time to quality, "
                             "5 one update in CPU seconds")
    parser.add_argument("--learner-rollouts", type=int, default=3, help="rollouts per whole-PPO run in section 3")
    parser.add_argument("--quality-seeds", type=int, default=3, help="seeds per learner in section 4")
    parser.add_argument("--quality-level", type=float, default=QUALITY_LEVEL, help="validation Sharpe to reach")
    parser.add_argument("--quality-budget", type=int, default=40_960, help="training steps per run in section 4")
    parser.add_argument("--quality-n", type=int, default=8, help="batched envs in section 4 (train.n_envs default)")
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
        if 1 in args.sections:
            phases(args, setups)
        if 2 in args.sections:
            rollouts = 2 if args.quick else 3
            print(f"\n2. rollout collection (everything outside the update) against SB3 SubprocVecEnv on "
                  f"gym-anytrading: median of {args.rounds} interleaved round(s) of {rollouts} rollouts "
                  f"(per-round rates in brackets)")
            for n in args.n:
                rollout_ratios(setups[n], n, args.rounds, rollouts)
        if 3 in args.sections:
            print(f"\n3. whole-PPO steps/s by learner (JaxPPO or SB3's PPO.train), a fresh model per run, "
                  f"compilation included: median of {args.rounds} interleaved round(s) of "
                  f"{args.learner_rollouts} rollouts, against SB3 (SubprocVecEnv, MlpPolicy) on gym-anytrading")
            for n in args.n:
                learner_ratios(learner_setups(store, n), n, args.rounds, args.learner_rollouts)
    if 4 in args.sections:
        print(f"\n4. time to quality: training seconds (validation excluded, compilation included) until the "
              f"validation Sharpe first reaches {args.quality_level} on an AR(1) trend market (bench's own "
              f"generator), {args.quality_n} batched envs, parameters.toml's PPO")
        quality_table(args.quality_seeds, args.quality_level, args.quality_budget, args.quality_n)
    if 5 in args.sections:
        print(f"\n5. one PPO update of a fixed buffer ({16 * N_STEPS:,} samples, 803 inputs, batch {BATCH}, "
              f"10 epochs), CPU seconds of this process")
        update_table()


def phases(args: argparse.Namespace, setups: dict) -> None:
    print("\n1. PPO learn(): throughput, where the time goes, peak memory of the process tree")
    for n in args.n:
        total = args.steps or n * N_STEPS * (2 if args.quick else 6)
        print(f"N = {n}:")
        for name, (make, policy) in setups[n].items():
            measure(name, make, n, total, policy)


if __name__ == "__main__":
    main()
