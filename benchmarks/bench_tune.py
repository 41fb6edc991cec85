"""Cost of one fast tuning trial against one full trial, on the bundled data, measured in the same run.

* fast: `python -m trader.tune --fast`'s trial: the signal store as it is, N_ENVS, PPO epochs and timesteps
  cut to [tune.fast];
* full: a full-mode trial: default N_ENVS and epochs, `tune.timesteps`, and the trial's own signal store
  (rescored and reselected from the base store's shared variants, as every full trial after the first).

Both trials use the same hyperparameters (the defaults of parameters.toml, fed in as a fixed trial) and the
same evaluation schedule; the base store is built first if needed, and a short trial of each mode warms
up the process first (neither is timed): the figures are the steady cost of a trial within a study.
Target: fast <= 1/5 of full.

    python benchmarks/bench_tune.py            # the real budgets (a few minutes on 2 cores)
    python benchmarks/bench_tune.py --quick    # both budgets / 8: a smoke run, overheads weigh more
    python benchmarks/bench_tune.py --store DIR   # another base store than build.out
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # parameters.toml's relative paths (data/, data/signals) are relative to the repository

from optuna.trial import FixedTrial  # noqa: E402

from settings import Params, load_params, replace_path  # noqa: E402

TARGET = 1 / 5


def default_trial(params: Params) -> dict:
    """The values sample_params would need to reproduce parameters.toml's own hyperparameters."""
    ppo, env, signals = params.ppo, params.env, params.signals
    return {"n_steps_pow2": int(math.log2(ppo.n_steps)), "batch_size_pow2": int(math.log2(ppo.batch_size)),
            "net_width_pow2": int(math.log2(ppo.net_arch[0])), "learning_rate": ppo.learning_rate,
            "n_epochs": ppo.n_epochs, "one_minus_gamma": 1.0 - ppo.gamma, "one_minus_gae_lambda": 1.0 - ppo.gae_lambda,
            "clip_range": ppo.clip_range, "ent_coef": ppo.ent_coef, "window": env.window, "reward": env.reward,
            "keep_per_family": signals.keep_per_family, "max_correlation": signals.max_correlation,
            "horizon": signals.horizon}


def timed_trial(params: Params, fast: bool, out: Path, number: int, values: dict | None = None
                ) -> tuple[float, float, float]:
    """(seconds, validation Sharpe, seconds inside signals.build.build) of one trial."""
    import signals.build
    from trader.tune.objective import Objective

    real_build, build_seconds = signals.build.build, [0.0]

    def timed_build(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real_build(*args, **kwargs)
        finally:
            build_seconds[0] += time.perf_counter() - started

    signals.build.build = timed_build
    try:
        trial = FixedTrial(values or default_trial(params), number=number)
        started = time.perf_counter()
        value = Objective(params, fast, out)(trial)
        return time.perf_counter() - started, value, build_seconds[0]
    finally:
        signals.build.build = real_build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="both trials' timesteps / 8 (a smoke run)")
    parser.add_argument("--out", help="tuning output folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--store", help="base signal store (default: build.out of parameters.toml)")
    args = parser.parse_args(argv)

    params = load_params(ROOT / "parameters.toml")
    if args.store:
        params = replace_path(params, {"build.out": args.store})
    if args.quick:
        params = replace_path(params, {"tune.timesteps": max(1, params.tune.timesteps // 8),
                                       "tune.fast.timesteps": max(1, params.tune.fast.timesteps // 8)})
    import signals.build
    from trader.train import configure_learner
    from trader.tune.space import trial_budget

    configure_learner(params.train.torch_threads)  # as a tuning worker does
    started = time.perf_counter()
    signals.build.build(params, log=lambda *_: None)  # the base store fast mode needs; not timed
    print(f"base store {params.build.out}: ready in {time.perf_counter() - started:.1f} s (not timed)")
    for name, fast in (("fast", True), ("full", False)):
        budget = trial_budget(params, fast)
        print(f"{name}: {budget.get('train.n_envs', params.train.n_envs)} "
              f"{budget.get('train.vec_env', params.train.vec_env)} envs, "
              f"{budget['train.timesteps']:,} timesteps, epochs "
              f"{min(params.ppo.n_epochs, budget.get('ppo.n_epochs', params.ppo.n_epochs))}, "
              f"{params.tune.evaluations} validation evaluations"
              + ("" if fast else ", own store reselected from the shared variants"))

    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        out = Path(args.out or tmp)
        run_params = replace_path(params, {"tune.out": str(out)})
        # Warm-up, not timed: a short trial of each mode, so that the timed ones find torch, the env workers'
        # start method and the scorer's JIT initialised, as every trial of a study but its first does. The
        # full one keeps another number of variants per family, so the timed full trial still reselects.
        short = replace_path(run_params, {"tune.timesteps": 512, "tune.fast.timesteps": 512, "tune.evaluations": 1})
        started = time.perf_counter()
        timed_trial(short, True, out / "warm-up-fast", 100)
        other = default_trial(params) | {"keep_per_family": params.signals.keep_per_family % 5 + 1}
        timed_trial(short, False, out / "warm-up-full", 101, other)
        print(f"warm-up: {time.perf_counter() - started:.1f} s (not timed)")
        fast_s, fast_value, _ = timed_trial(run_params, True, out / "fast", 0)
        full_s, full_value, build_s = timed_trial(run_params, False, out / "full", 1)

    ratio = fast_s / full_s
    print(f"{'trial':<6} {'seconds':>9} {'validation Sharpe':>18}")
    print(f"{'fast':<6} {fast_s:9.1f} {fast_value:18.3f}")
    print(f"{'full':<6} {full_s:9.1f} {full_value:18.3f}   (of which store rebuild {build_s:.1f} s)")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"fast / full = {ratio:.3f} (1/{1 / ratio:.1f}); target <= 1/{1 / TARGET:.0f}: {verdict}"
          + (" [--quick: budgets / 8, fixed costs weigh more]" if args.quick else ""))
    print(f"30 fast trials ~ {30 * fast_s / 60:.1f} min on this machine ({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
