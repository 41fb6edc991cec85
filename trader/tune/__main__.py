"""`python -m trader.tune`: arguments -> parameters -> `runner.run_study` (see the package docstring)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import trader.tune
from settings import EXECUTORS, ConfigError, Params, add_params_arguments, params_from_cli
from signals.build import BuildError
from signals.store import StoreError
from trader.train import stop_on_sigint


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trader.tune",
                                     description=(trader.tune.__doc__ or "").split("\n\n")[0])
    parser.add_argument("--fast", action="store_true",
                        help="use the signal store as it is and cut N_ENVS, epochs and timesteps to [tune.fast]")
    parser.add_argument("--iterations", type=int, help="trials this invocation adds (tune.iterations)")
    parser.add_argument("--jobs", type=int, help="worker processes on the same study (tune.jobs)")
    parser.add_argument("--study-name", help="Optuna study name; an existing study is continued (tune.study_name)")
    parser.add_argument("--storage", help="Optuna storage URL or a path ending in .log (tune.storage)")
    parser.add_argument("--executor", choices=EXECUTORS,
                        help="where the --jobs workers run: processes here or a Dask cluster (tune.executor)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:8786",
                        help="the Dask scheduler (build.scheduler; empty: a LocalCluster of --jobs processes)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop starting trials after this long")
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep each trial's final model(s)")
    add_params_arguments(parser)
    return parser.parse_args(argv)


def resolve_params(args: argparse.Namespace) -> Params:
    """parameters.toml, then --set, then the dedicated flags (which win)."""
    if args.timeout is not None and not args.timeout > 0:
        raise ConfigError(f"--timeout must be > 0 seconds (got {args.timeout})")
    return params_from_cli(args.params, args.overrides, {
        "tune.iterations": args.iterations, "tune.jobs": args.jobs, "tune.study_name": args.study_name,
        "tune.storage": args.storage, "tune.executor": args.executor, "build.scheduler": args.scheduler})


def main(argv: Sequence[str] | None = None) -> int:
    stop_on_sigint()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    # The runner is imported once the arguments parse: it brings optuna, torch and stable-baselines3.
    # Measured on the 2-core machine: `--help` answers in about 0.45 s without it; importing it takes 2.4-5 s.
    from trader.tune.runner import WorkerError, run_study

    try:
        params = resolve_params(args)
        run_study(params, fast=args.fast, argv=argv, timeout=args.timeout, keep_checkpoints=args.keep_checkpoints)
    except (ConfigError, StoreError, BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WorkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished trials are in the study; run the same command to continue it", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
