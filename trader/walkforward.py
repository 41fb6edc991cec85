"""`python -m trader.walkforward`: train and test on K consecutive folds of the common calendar.

Reads top to bottom: arguments -> parameters -> the base store (every signal variant, computed once for
the whole series: they are causal) -> the fold layout (sizes checked before anything trains) -> the folds,
in a process pool or on a Dask cluster (walkforward.executor) -> the stitched out-of-sample summary ->
walkforward.json, oos_equity.png and a table.

The layout, on the common calendar c of N bars after the warm-up (`signals.splits.calendar`), with
t = walkforward.test and K = walkforward.folds: test slice k starts at c[N (1 - t) + k N t / K] and runs to
the start of test slice k + 1 (the last one to the last bar), so the stitched test slices cover the
out-of-sample span once, without gaps; validation slice k is the `walkforward.validation` test-slice
lengths just before test slice k; training slice k runs from the first bar (window = expanding) or over
as many calendar bars as fold 0 trains on (rolling). Each cut purges the scoring horizon plus
`split.extra_embargo` bars for every symbol, as the build does (`signals.splits.cut_calendar`).

Each fold, in its own process: its own store (`signals.build.build` with the fold's dates: the base
store's raw variants are reused, only scoring and selection on the fold's training bars rerun, as
full-mode tuning does), training (trader.train's functions), do-no-harm selection on its validation
slice (trader.selection), and one read of its test slice (trader.evaluate). The fold dispatch is
`run_folds(executor, tasks)`, for any `concurrent.futures.Executor`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from common.files import save_json
from common.provenance import update_run_record, write_run_record
from common.resources import TreeMemory, available_cores
from settings import (
    EXECUTORS,
    ConfigError,
    Params,
    add_params_arguments,
    params_from_cli,
    replace_path,
)
from signals.build import BuildError, expand_data_paths
from signals.splits import calendar, check_sizes, cut_calendar, iso
from signals.store import Store, StoreError
from signals.threads import cap_thread_env
from trader.metrics import mean_metrics, performance
from trader.report import plot_equity
from trader.runinfo import member_records, new_parent_dir, training_fields
from trader.train import (
    configure_learner,
    learn_ensemble,
    learner_device,
    make_training_env,
    prepare_store,
)

# envs.factory, trader.evaluate and trader.selection (stable-baselines3 and torch, 2.5 s to import: measured on the
# 2-core machine) and matplotlib (0.8 s) are imported in the functions that use them, not here: `--help`, a bad
# `--set` and a layout that does not fit answer without them.

WALKFORWARD_FILE = "walkforward.json"
FOLD_MEMORY_BYTES = 2**31
"""Memory set aside per fold running at once (2 GiB): two default folds at once (an ensemble of 3 each)
peaked at about 1.7 GiB each (PSS, the whole process tree, on the bundled data; benchmarks/RESULTS.md)."""
RETURN_METRICS = ("total_return", "annualised_return", "sharpe", "sortino", "max_drawdown", "bars")
"""The metrics of `trader.metrics.performance` that depend on the returns alone (what stitching keeps)."""


# ---------------------------------------------------------------- arguments and parameters

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trader.walkforward", description=__doc__.split("\n\n")[0])
    add_params_arguments(parser)
    parser.add_argument("--folds", type=int, help="consecutive folds (walkforward.folds)")
    parser.add_argument("--data", nargs="+", metavar="PATH", help="market data files or folders (default: data.paths)")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="the walk-forward run directory (default: a new walkforward-<time> under train.run_dir)")
    parser.add_argument("--window", choices=("expanding", "rolling"), help="training window (walkforward.window)")
    parser.add_argument("--workers", type=int, help="folds at a time (walkforward.workers; 0 = cores)")
    parser.add_argument("--executor", choices=EXECUTORS,
                        help="where the folds run: local processes or a Dask cluster (walkforward.executor)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:8786",
                        help="the Dask scheduler (build.scheduler; empty: a LocalCluster of --workers processes)")
    return parser.parse_args(argv)


def resolve_params(args: argparse.Namespace) -> Params:
    """parameters.toml, then --set, then the dedicated flags (which win)."""
    return params_from_cli(args.params, args.overrides, {
        "data.paths": expand_data_paths(args.data) if args.data else None, "walkforward.folds": args.folds,
        "walkforward.window": args.window, "walkforward.workers": args.workers,
        "walkforward.executor": args.executor, "build.scheduler": args.scheduler})


# ---------------------------------------------------------------- the fold layout

@dataclass(frozen=True)
class Fold:
    """One fold's cut dates (int64 ns): training from `start` (None: the first bar), validation from
    `train_end`, test from `validation_end` to `end` (None: past the last bar); purges follow each cut."""

    index: int
    start: int | None
    train_end: int
    validation_end: int
    end: int | None

    def split_overrides(self) -> dict[str, str]:
        """The fold as `split.*` settings, which the build turns into the same cuts."""
        return {"split.start": "" if self.start is None else iso(self.start),
                "split.train_end": iso(self.train_end), "split.validation_end": iso(self.validation_end),
                "split.end": "" if self.end is None else iso(self.end)}


def fold_layout(timestamps: Mapping[str, np.ndarray], *, warmup: int, purge: int, folds: int, test: float,
                validation: float, window: str) -> list[Fold]:
    """K consecutive folds on the common calendar (see the module docstring); sizes are not checked here."""
    days = calendar(timestamps, warmup)
    n = len(days)
    size = n * test / folds
    first_test = n - round(n * test)
    test_at = [first_test + round(k * size) for k in range(folds)]
    val_len = max(1, round(validation * size))
    train_len = first_test - val_len
    if train_len < 1 or test_at[-1] >= n:
        raise ValueError(f"walkforward: {folds} folds with test = {test} and validation = {validation} leave "
                         f"no training bars in a calendar of {n} bars")

    def resume(edge: int) -> int:  # the first date of the segment after a cut at `edge`, purge included
        return cut_calendar(timestamps, [edge], warmup=warmup, purge=purge, names=("a", "b")).starts["b"]

    result = []
    for k, at in enumerate(test_at):
        start = None if window == "expanding" or k == 0 else int(days[at - val_len - train_len])
        end = resume(int(days[test_at[k + 1]])) if k + 1 < folds else None
        result.append(Fold(k, start, int(days[at - val_len]), int(days[at]), end))
    return result


def fold_cuts(timestamps: Mapping[str, np.ndarray], fold: Fold, *, warmup: int, purge: int) -> Any:
    """The fold's `signals.splits.Cuts`: exactly the bar ranges its build uses."""
    return cut_calendar(timestamps, [fold.train_end, fold.validation_end], warmup=warmup, purge=purge,
                        start=fold.start, end=fold.end)


def check_folds(timestamps: Mapping[str, np.ndarray], folds: Sequence[Fold], params: Params, *, warmup: int,
                purge: int) -> None:
    """Every fold's splits are long enough for every symbol; else a ValueError naming fold, symbol and knobs."""
    wf = params.walkforward
    knobs = (f"walkforward.folds={wf.folds}, walkforward.test={wf.test}, walkforward.validation={wf.validation} "
             f"or walkforward.min_bars={wf.min_bars} (window {wf.window})")
    room = params.env.window + 1  # what the env asks of a training split (checked there again: an observation
    for fold in folds:            # and one step; a shorter split than an episode trains on whole-split episodes)
        cuts = fold_cuts(timestamps, fold, warmup=warmup, purge=purge)
        try:
            check_sizes(cuts, knobs, wf.min_bars)
            for symbol, bounds in cuts.bounds.items():
                a, b = bounds["train"]
                if b - a < room:
                    raise ValueError(f"{symbol}: the train split has {b - a} bars, fewer than env.window + 1 = "
                                     f"{room}; change {knobs}, or lower env.window")
        except ValueError as exc:
            raise ValueError(f"fold {fold.index + 1} of {len(folds)}: {exc}") from None


def base_layout(base: Any, params: Params) -> tuple[dict[str, np.ndarray], list[Fold]]:
    """The base store's bar times and the checked fold layout on them."""
    timestamps = {s: np.asarray(base.symbol(s).timestamps) for s in base.symbols}
    warmup, purge = int(base.manifest["max_lookback"]), int(base.manifest["split"]["purge"])
    wf = params.walkforward
    folds = fold_layout(timestamps, warmup=warmup, purge=purge, folds=wf.folds, test=wf.test,
                        validation=wf.validation, window=wf.window)
    check_folds(timestamps, folds, params, warmup=warmup, purge=purge)
    return timestamps, folds


def fold_params(params: Params, fold: Fold, fold_dir: Path) -> Params:
    """The fold's parameters: its dates, its store in its directory (sharing the base raw variants), its run.

    A fold's own build computes variants (locally) only where the base store's are missing: a fold running on
    a Dask worker must not wait for cluster tasks that the folds themselves keep from running.
    """
    variants = Path(params.build.variants_dir or Path(params.build.out) / "variants").resolve()
    return replace_path(params, {**fold.split_overrides(), "split.min_bars": params.walkforward.min_bars,
                                 "build.out": str(fold_dir / "store"), "build.executor": "process",
                                 "build.variants_dir": str(variants), "train.run_dir": str(fold_dir)})


# ---------------------------------------------------------------- one fold (in a worker process)

@dataclass(frozen=True)
class FoldTask:
    """What a worker needs to run one fold: picklable, so any executor can carry it."""

    fold: Fold
    params: Params
    fold_dir: str
    command: tuple[str, ...]


def run_fold(task: FoldTask) -> dict[str, Any]:
    """One fold: its store, training, do-no-harm selection on validation, one read of its test slice.

    Returns the fold's record for walkforward.json plus `returns` ({symbol: {strategy: net returns}}) and
    `times` ({symbol: the bar time each return is realised at}) of its test slice, for stitching.
    """
    from envs.factory import preload_forkserver
    from trader.evaluate import evaluate_run
    from trader.selection import select_policy

    started = time.perf_counter()
    params, run_dir = task.params, Path(task.fold_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = _fold_log(run_dir / "log.txt")
    configure_learner(params.train.torch_threads)
    preload_forkserver()
    store = prepare_store(params, no_build=False, log=log)  # scoring and selection on the fold's training bars
    write_run_record(run_dir, params, task.command, training_fields(params, store), extra={"fold": task.fold.index + 1})
    members = _train(params, run_dir, store, log)
    update_run_record(run_dir, {"ensemble": member_records(members)})
    selection = select_policy(run_dir, store, params, log)
    validation, _ = evaluate_run(run_dir, store, params, "validation")
    test, curves = evaluate_run(run_dir, store, params, "test")  # the fold's one read of its test slice
    save_json(run_dir / "report_validation.json", validation)
    save_json(run_dir / "report.json", test)
    plot_equity(run_dir / "equity.png", curves, f"fold {task.fold.index + 1} test slice, {test['model']}")
    returns, times = test_returns(test, curves, store, params)
    return {"fold": task.fold.index + 1, "dates": dict(store.manifest["split"]["dates"]),
            "run_dir": str(run_dir), "features": list(store.feature_names),
            "selection": {k: selection[k] for k in ("selected", "candidate", "reason", "candidate_validation_sharpe",
                                                    "candidate_validation_interval")},
            "validation": _summary(validation["validation"]), "test": _summary(test["test"]),
            "num_timesteps": members[0]["num_timesteps"], "seeds": [m["seed"] for m in members],
            "seconds": round(time.perf_counter() - started, 2),
            "returns": returns, "times": times}


def _train(params: Params, run_dir: Path, store: Store, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """trader.train's environments, ensemble members and learning loop, in the fold's run directory: each
    member's statistics."""
    env = make_training_env(params, store.root, params.train.n_envs, params.train.seed, params.train.vec_env)
    try:
        return learn_ensemble(env, params, run_dir, store, learner_device(params.train.device), False, log)
    finally:
        env.close()


def _fold_log(path: Path) -> Callable[[str], None]:
    """A fold's log goes to its own file (folds running at once would interleave on the screen)."""
    def log(message: str = "") -> None:
        with open(path, "a") as fh:
            fh.write(f"{message}\n")
    return log


def _summary(split_report: Mapping[str, Any]) -> dict[str, Any]:
    """A split's figures for walkforward.json: agent, baselines, intervals, not the per-symbol detail."""
    return {k: v for k, v in split_report.items() if k != "per_symbol"} | {
        "per_symbol_bars": {s: r["bars"] for s, r in split_report["per_symbol"].items()}}


def test_returns(report: Mapping[str, Any], curves: Mapping[str, Any], store: Store, params: Params
                 ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Per symbol, each strategy's net returns on the test slice, and the time each is realised at.

    From the evaluation's equity curves (the selected policy's as `agent`); the random baseline, which has
    no curve (it is averaged over seeds), is replayed for its first seed, as its interval in the report is.
    """
    from trader.evaluate import random_positions, strategy_result

    returns: dict[str, dict[str, np.ndarray]] = {}
    times: dict[str, np.ndarray] = {}
    for symbol, strategies in curves.items():
        returns[symbol] = {name: equity[1:] / equity[:-1] - 1.0 for name, (_, equity) in strategies.items()}
        times[symbol] = np.asarray(strategies["agent"][0][1:])
        first, last = report["test"]["per_symbol"][symbol]["bars"]
        data = store.symbol(symbol)
        positions = random_positions(last - first - 1, params.env.action_mode, params.train.seed)
        _, _, returns[symbol]["random"] = strategy_result(np.asarray(data.close), first, positions,
                                                          params.costs.total_bps, data.periods_per_year)
    return returns, times


# ---------------------------------------------------------------- dispatch

def run_folds(executor: Executor, tasks: Sequence[FoldTask]) -> list[dict[str, Any]]:
    """Run every fold on `executor` (any concurrent.futures.Executor); results in fold order."""
    futures = [executor.submit(run_fold, task) for task in tasks]
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:  # a failed fold: the folds not started yet never start
            future.cancel()
        raise


def fold_workers(requested: int, n_folds: int, cores: int, available_bytes: int) -> int:
    """Folds at a time: `requested` (0: the cores), no more than the folds, nor than memory holds."""
    return max(1, min(requested or cores, n_folds, available_bytes // FOLD_MEMORY_BYTES))


def fold_pool(params: Params, workers: int, out: Path) -> Any:
    """The folds' pool (`walkforward.executor`), entered with `with`: local fold processes, or tasks on the Dask
    cluster at build.scheduler (a LocalCluster of `workers` processes when it is empty). Its workers start
    with native thread pools capped at one thread (each fold then caps its learner to train.torch_threads,
    as a training run does). A fold that fails lets the running ones finish: a killed fold would orphan its
    environment processes."""
    from common.executors import open_pool

    variants = Path(params.build.variants_dir or Path(params.build.out) / "variants").resolve()
    return open_pool(params.walkforward.executor, workers=workers, start_method=params.train.start_method,
                     initializer=cap_thread_env, scheduler=params.build.scheduler, kill_on_error=False,
                     shared={out.resolve(): "the walk-forward run directory (--run-dir)",
                             variants: "build.variants_dir (the base store's raw variants, which every fold reads)"})


# ---------------------------------------------------------------- the stitched out-of-sample summary

def stitch(results: Sequence[Mapping[str, Any]]) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Every fold's test returns, one after another: {symbol: {strategy: returns}} and {symbol: times}."""
    symbols = list(results[0]["returns"])
    names = list(results[0]["returns"][symbols[0]])
    returns = {s: {n: np.concatenate([r["returns"][s][n] for r in results]) for n in names} for s in symbols}
    times = {s: np.concatenate([r["times"][s] for r in results]) for s in symbols}
    for s, t in times.items():
        if np.any(np.diff(t) <= 0):
            raise RuntimeError(f"walkforward: the test slices of {s} overlap or are out of order")
    return returns, times


def oos_summary(results: Sequence[Mapping[str, Any]], periods_per_year: Mapping[str, float], seed: int
                ) -> dict[str, Any]:
    """Metrics of the stitched test returns (mean over symbols), bootstrap intervals, P(agent beats each)."""
    from trader.evaluate import add_intervals

    returns, times = stitch(results)
    symbols = list(returns)

    def metrics(name: str) -> dict[str, float]:
        per_symbol: list[Mapping[str, float]] = []
        for s in symbols:
            r = returns[s][name]  # positions do not survive stitching: keep what the returns alone give
            m = performance(r, np.zeros_like(r), np.zeros_like(r), periods_per_year[s])
            per_symbol.append({k: m[k] for k in RETURN_METRICS})
        return mean_metrics(per_symbol) | {"turnover": _turnover(results, name)}

    names = list(returns[symbols[0]])
    summary: dict[str, Any] = {"agent": metrics("agent"), "baselines": {n: metrics(n) for n in names[1:]}}
    add_intervals(summary, returns, [periods_per_year[s] for s in symbols], seed)
    summary["start"], summary["end"] = _iso(min(t[0] for t in times.values())), _iso(max(t[-1] for t in times.values()))
    summary["selected"] = {str(r["fold"]): r["selection"]["selected"] for r in results}
    return summary


def _turnover(results: Sequence[Mapping[str, Any]], name: str) -> float:
    """Mean turnover per bar over the stitched slices: the folds' test turnovers weighted by their bars."""
    weights = np.array([r["test"]["agent"]["bars"] for r in results], dtype=float)  # the same bars for all
    values = np.array([(r["test"]["agent"] if name == "agent" else r["test"]["baselines"][name])["turnover"]
                       for r in results])
    return float(np.sum(weights * values) / np.sum(weights))


def _iso(ns: int) -> str:
    return iso(int(ns))


# ---------------------------------------------------------------- outputs

def plot_oos(path: Path, results: Sequence[Mapping[str, Any]]) -> None:
    """Per symbol: the stitched out-of-sample equity of the agent and every baseline, each fold's start marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    returns, times = stitch(results)
    fig, axes = plt.subplots(len(returns), 1, figsize=(11, 4 * len(returns)), squeeze=False)
    for ax, symbol in zip(axes[:, 0], returns):
        when = times[symbol].astype("datetime64[ns]")
        for name, r in returns[symbol].items():
            ax.plot(when, np.cumprod(1.0 + r), label=name, linewidth=2.0 if name == "agent" else 1.0)
        for result in results:
            start = np.asarray(result["times"][symbol][:1]).astype("datetime64[ns]")[0]
            ax.axvline(start, color="grey", linestyle="--", linewidth=0.8)
            ax.text(start, 0.98, f" fold {result['fold']} ({result['selection']['selected']})", fontsize=7,
                    va="top", transform=ax.get_xaxis_transform())
        ax.set_title(f"{symbol}: stitched out-of-sample equity (each fold's test slice)")
        ax.set_ylabel("equity")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_folds(results: Sequence[Mapping[str, Any]]) -> str:
    """One line per fold: test dates, the best checkpoint's validation Sharpe and interval, the selected
    policy, and the test Sharpe of the agent (the selected policy), of the checkpoint and of each baseline."""
    names = list(results[0]["test"]["baselines"])
    lines = [f"{'fold':<5}{'test from':<12}{'to':<12}{'checkpoint on validation':<26}{'selected':<10}{'agent':>7}"
             f"{'ckpt':>7}" + "".join(f"{n[:12]:>13}" for n in names)]
    for r in results:
        d, test, sel = r["dates"], r["test"], r["selection"]
        low, high = sel["candidate_validation_interval"]
        checkpoint = test.get("not_selected", test)["agent"]["sharpe"]
        lines.append(f"{r['fold']:<5}{d['test_start'][:10]:<12}{d['test_end'][:10]:<12}"
                     f"{sel['candidate_validation_sharpe']:+6.2f} [{low:+6.2f}, {high:+6.2f}]{'':<4}"
                     f"{sel['selected']:<10}"
                     f"{test['agent']['sharpe']:>+7.2f}{checkpoint:>+7.2f}"
                     + "".join(f"{test['baselines'][n]['sharpe']:>+13.2f}" for n in names))
    return "\n".join(lines)


def format_oos(oos: Mapping[str, Any]) -> str:
    """The stitched out-of-sample table: Sharpe with its interval, returns, drawdown, turnover."""
    level = oos["interval_level"]
    lines = [f"{'':<16}{'sharpe':>8}  {f'{level:.0%} interval':<18}{'total':>9}{'annual':>9}{'max dd':>8}"
             f"{'turnover':>10}"]
    for name, m in [("agent", oos["agent"]), *oos["baselines"].items()]:
        low, high = m["sharpe_interval"]
        lines.append(f"{name:<16}{m['sharpe']:>+8.2f}  [{low:+.2f}, {high:+.2f}]{'':<3}{m['total_return']:>+9.2%}"
                     f"{m['annualised_return']:>+9.2%}{m['max_drawdown']:>8.2%}{m['turnover']:>10.3f}")
    beats = oos["agent_beats"]
    lines.append(f"P(agent's Sharpe > buy_and_hold's) = {beats['buy_and_hold']:.2f}, "
                 f"P(> flat's) = {beats['flat']:.2f}; an interval that spans 0 is no evidence of an edge")
    return "\n".join(lines)


# ---------------------------------------------------------------- the run

def run(params: Params, argv: Sequence[str], run_dir: str | None = None, log: Callable[[str], None] = print
        ) -> dict[str, Any]:
    """The whole walk-forward: base store, layout, folds in a pool, summary and outputs; returns walkforward.json."""
    started = time.perf_counter()
    base = prepare_store(params, no_build=False, log=log)  # every variant, once, for the whole series
    _, folds = base_layout(base, params)
    out = Path(run_dir) if run_dir else new_parent_dir(params.train.run_dir, "walkforward")
    out.mkdir(parents=True, exist_ok=True)
    command = (sys.executable, "-m", "trader.walkforward", *argv)
    write_run_record(out, params, command, training_fields(params, base))
    tasks = [FoldTask(f, fold_params(params, f, out / f"fold_{f.index + 1}"), str(out / f"fold_{f.index + 1}"),
                      command) for f in folds]
    workers = fold_workers(params.walkforward.workers, len(tasks), available_cores(),
                           psutil.virtual_memory().available)
    log(f"walk-forward: {len(tasks)} {params.walkforward.window} folds, {workers} at a time (logs: "
        f"{out}/fold_<k>/log.txt); each trains {params.train.ensemble} ensemble member(s) of "
        f"{params.train.timesteps:,} steps on {params.train.n_envs} "
        f"{params.train.vec_env} environment(s)")
    with TreeMemory() as memory, fold_pool(params, workers, out) as pool:
        if pool.kind == "dask":
            log(f"walk-forward: folds on {pool.where}")
        workers = pool.slots  # a remote cluster's worker threads, not the local count
        results = run_folds(pool.executor, tasks)
    ppy = {s: base.symbol(s).periods_per_year for s in base.symbols}
    oos = oos_summary(results, ppy, params.train.seed)
    record = {"folds": [{k: v for k, v in r.items() if k not in ("returns", "times")} for r in results],
              "oos": oos, "window": params.walkforward.window, "workers": workers}
    save_json(out / WALKFORWARD_FILE, record)
    plot_oos(out / "oos_equity.png", results)
    seconds = time.perf_counter() - started
    update_run_record(out, {"wall_seconds": round(seconds, 2), "workers": workers,
                            "peak_memory_mib": round(memory.peak_bytes / 2**20, 1)})
    log(f"\nfolds (test Sharpe, net of costs, mean over symbols):\n{format_folds(results)}")
    log(f"\nstitched out of sample, {oos['start'][:10]} to {oos['end'][:10]}:\n{format_oos(oos)}")
    log(f"walk-forward: {out / WALKFORWARD_FILE}, {out / 'oos_equity.png'} [{seconds:.0f} s, {workers} worker(s)]")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        run(resolve_params(args), argv, run_dir=args.run_dir)
    except (ConfigError, BuildError, StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:  # a fold's env worker error and the like: say it plainly
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
