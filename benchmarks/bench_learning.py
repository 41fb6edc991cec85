"""Does the agent learn? The default pipeline on seeded markets with known edges, and on the bundled files.

    python benchmarks/bench_learning.py            # 4 markets x 3 seeds + the bundled files x 3 seeds
    python benchmarks/bench_learning.py --quick    # development: 2 seeds, shorter markets, fewer steps
    python benchmarks/bench_learning.py --markets trend --seeds 0 --set ppo.gamma=0.9
    python benchmarks/bench_learning.py --references-only --seeds 0 1 2 3 4 5 6 7 8 9   # no training
    python benchmarks/bench_learning.py --combine A/learning.json B/learning.json      # one table over runs

Each run is `python -m trader.train` exactly as a user runs it (its own store, its own run directory),
seeded by the seed of the market. On the same test bars as the agent's report, the benchmark replays
the reference rule (chosen on the training split: an EMA trend rule or a short reversal rule), the
oracle that knows the planted edge (benchmarks/markets.py), buy-and-hold and the report's best_signal,
all at the run's costs. It prints per market the mean and spread over seeds, the targets of the
learning issue as met / not met, and writes everything to `<out>/learning.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from markets import (  # noqa: E402
    ALL_MARKETS,
    INFORMED_RULES,
    MARKETS,
    NO_EDGE,
    Market,
    choose_oracle,
    choose_rule,
    make_market,
    segment_metrics,
)

from signals.store import open_store, periods_per_year  # noqa: E402

BUNDLED = ("data/FOREX_EURUSD_1H_ASK.csv", "data/STOCKS_GOOGL.csv")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 12,000-bar markets, 60,000 steps")
    parser.add_argument("--markets", nargs="*", default=list(MARKETS), choices=ALL_MARKETS,
                        help="default: the development suite; markets.CHECK_MARKETS are the other generators")
    parser.add_argument("--files", nargs="*", default=list(BUNDLED), help="real data files, each run alone")
    parser.add_argument("--seeds", nargs="+", type=int, help="default: 0 1 2 (quick: 0 1)")
    parser.add_argument("--bars", type=int, help="bars per synthetic market (default 20,000; quick 12,000)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to every trader.train run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "learning"))
    parser.add_argument("--combine", nargs="+", metavar="LEARNING_JSON",
                        help="no training: one table and the targets over the rows of earlier runs' learning.json, "
                        "their references replayed with this code")
    parser.add_argument("--references-only", action="store_true",
                        help="no training: the synthetic markets' rules and oracles on the default splits")
    return parser.parse_args(argv)


def _params_file(folder: Path, data_path: Path) -> Path:
    params = folder / "params.toml"
    params.write_text(f"[data]\npaths = [{str(data_path)!r}]\n\n[build]\nout = {str(folder / 'store')!r}\n\n"
                      f"[train]\nrun_dir = {str(folder / 'runs')!r}\n")
    return params


def train(folder: Path, data_path: Path, seed: int, overrides: list[str]) -> tuple[dict[str, Any], float]:
    """One `python -m trader.train` run: (report.json, wall seconds)."""
    params = _params_file(folder, data_path)
    command = [sys.executable, "-m", "trader.train", "--params", str(params), "--seed", str(seed)]
    for item in overrides:
        command += ["--set", item]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ))
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    run_dir = sorted((folder / "runs").iterdir())[-1]
    return json.loads((run_dir / "report.json").read_text()), wall


def references(kind: str, close: np.ndarray, train_bars: tuple[int, int], test_bars: tuple[int, int],
               cost: float, ppy: float, market: Market | None) -> dict[str, dict[str, Any]]:
    """Reference rule, and for synthetic markets the oracle (and where there is one the informed rule), each
    chosen on the training bars and measured on the test bars at the run's costs."""
    label, positions = choose_rule(kind, close, train_bars, cost, ppy)
    out: dict[str, dict[str, Any]] = {"reference": segment_metrics(close, positions, test_bars, cost, ppy)
                                      | {"rule": label}}
    if market is not None:
        # The store keeps every bar of the file (warm-up included), so the market's mu aligns by index.
        positions = choose_oracle(market, close, train_bars, cost, ppy)
        out["oracle"] = segment_metrics(close, positions, test_bars, cost, ppy)
        out["buy_and_hold"] = segment_metrics(close, np.ones(len(close)), test_bars, cost, ppy)
    if kind in INFORMED_RULES:
        label, positions = INFORMED_RULES[kind](close, train_bars, cost, ppy)
        out["informed"] = segment_metrics(close, positions, test_bars, cost, ppy) | {"rule": label}
    return out


def evaluate_references(kind: str, folder: Path, report: dict[str, Any], market: Market | None
                        ) -> dict[str, dict[str, Any]]:
    """references() on the report's test bars and its store's training bars."""
    store = open_store(folder / "store")
    symbol = store.symbols[0]
    data = store.symbol(symbol)
    close = np.asarray(data.close, dtype=np.float64)
    ppy = periods_per_year(np.asarray(data.timestamps))
    first, last = report["test"]["per_symbol"][symbol]["bars"]
    return references(kind, close, tuple(data.split("train")), (first, last), float(report["costs_bps"]), ppy,
                      market)


def reference_columns(refs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    nan = float("nan")
    return {"reference": refs["reference"]["sharpe"], "reference_rule": refs["reference"]["rule"],
            "oracle": refs["oracle"]["sharpe"] if "oracle" in refs else nan,
            "informed": refs["informed"]["sharpe"] if "informed" in refs else nan}


def combined_rows(paths: list[str]) -> list[dict[str, Any]]:
    """The rows of earlier runs' learning.json, their references replayed with this code where the run's
    folder (`<out>/<market>/seed<seed>`, its store and report) is still there."""
    rows = []
    for path in paths:
        saved = json.loads(Path(path).read_text())
        for row in saved["rows"]:
            folder = Path(path).parent / row["market"] / f"seed{row['seed']}"
            runs = sorted((folder / "runs").glob("*/report.json"))
            if (folder / "store").is_dir() and runs:
                kind = row["kind"]
                market = None if kind == "file" else make_market(kind, row["seed"], saved["bars"])
                refs = evaluate_references(kind, folder, json.loads(runs[-1].read_text()), market)
                row = row | reference_columns(refs)
            rows.append(row)
    return rows


def run_case(kind: str, name: str, data_path: Path, folder: Path, seed: int, overrides: list[str],
             market: Market | None) -> dict[str, Any]:
    report, wall = train(folder, data_path, seed, overrides)
    test = report["test"]
    refs = evaluate_references(kind, folder, report, market)
    checkpoint = test.get("not_selected", test)
    row = {"market": name, "seed": seed, "wall_s": round(wall, 1),
           "agent": test["agent"]["sharpe"], "turnover": test["agent"]["turnover"],
           "agent_0x": test["agent_costs"]["0x"]["sharpe"],
           "best_signal": test["baselines"]["best_signal"]["sharpe"],
           "buy_and_hold": test["baselines"]["buy_and_hold"]["sharpe"],
           **reference_columns(refs),
           "selected": report.get("selected", "model"),
           "checkpoint": checkpoint["agent"]["sharpe"], "checkpoint_turnover": checkpoint["agent"]["turnover"],
           "agent_interval": test["agent"].get("sharpe_interval")}
    print(f"  {name:12s} seed {seed}: agent {row['agent']:+.2f} (turnover {row['turnover']:.3f}, 0x "
          f"{row['agent_0x']:+.2f}, {row['selected']}; checkpoint {row['checkpoint']:+.2f} turnover "
          f"{row['checkpoint_turnover']:.3f}), reference {row['reference']:+.2f} "
          f"[{row['reference_rule']}], oracle {row['oracle']:+.2f}, informed {row['informed']:+.2f}, "
          f"b&h {row['buy_and_hold']:+.2f}, "
          f"best_signal {row['best_signal']:+.2f}; {wall:.0f} s", flush=True)
    return row


def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):+.2f} ± {sd:.2f}"


COLUMNS = ("agent", "turnover", "checkpoint", "agent_0x", "reference", "oracle", "informed", "best_signal",
           "buy_and_hold", "wall_s")


REFERENCE_COLUMNS = ("reference", "oracle", "half_oracle", "informed", "buy_and_hold")
"""The columns of `--references-only`."""


def summary_table(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    lines = ["| market | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for market in dict.fromkeys(r["market"] for r in rows):
        group = [r for r in rows if r["market"] == market]
        cells = [_mean_sd([r.get(c, float("nan")) for r in group]) if c != "turnover" else
                 f"{statistics.mean(r[c] for r in group):.3f}" for c in columns]
        lines.append(f"| {market} ({len(group)} seeds) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The learning issue's targets, each met or not, on the means over seeds."""
    lines = []
    for market in dict.fromkeys(r["market"] for r in rows):
        group = [r for r in rows if r["market"] == market]
        mean = {c: statistics.mean(r[c] for r in group) for c in ("agent", "turnover", "reference", "oracle")}
        kind = group[0]["kind"]
        if kind in NO_EDGE:
            ok = mean["turnover"] <= 0.02 and mean["agent"] >= -0.5
            goal = f"turnover {mean['turnover']:.3f} <= 0.02 and Sharpe {mean['agent']:+.2f} >= -0.5"
        elif kind == "file":
            ok = mean["agent"] >= 0.0 or all(r["agent_interval"] and r["agent_interval"][1] >= 0 for r in group)
            goal = f"Sharpe {mean['agent']:+.2f} not below flat beyond its interval"
        else:
            ok = mean["agent"] >= mean["reference"] and mean["agent"] >= 0.5 * mean["oracle"]
            goal = (f"Sharpe {mean['agent']:+.2f} >= reference {mean['reference']:+.2f} and >= half the oracle "
                    f"{0.5 * mean['oracle']:+.2f}")
        lines.append(f"{'met    ' if ok else 'NOT met'} {market}: {goal}")
    return lines


def references_only(kinds: list[str], seeds: list[int], bars: int, overrides: list[str]) -> list[dict[str, Any]]:
    """Each synthetic market's rules and oracle on the splits a default build would cut, without training."""
    from settings import load_params
    from signals.build import cut_splits, family_grids, purge_bars, warmup_bars

    params = load_params(ROOT / "parameters.toml", overrides)
    warmup = warmup_bars(family_grids(params))
    rows = []
    for kind in kinds:
        for seed in seeds:
            market = make_market(kind, seed, bars)
            times = pd.to_datetime(market.frame["Date"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
            # as the build cuts the symbol and its mirror image (same bar times, so the same bars)
            bounds = cut_splits(params, {market.name: times}, warmup, purge_bars(params))[0][market.name]
            refs = references(kind, market.close, bounds["train"], bounds["test"], params.costs.total_bps,
                              periods_per_year(times), market)
            row = {"market": kind, "kind": kind, "seed": seed} | {name: ref["sharpe"] for name, ref in refs.items()}
            row["half_oracle"] = 0.5 * row["oracle"]
            rows.append(row)
            print(f"  {kind:12s} seed {seed}: " + ", ".join(
                f"{name} {ref['sharpe']:+.2f}" + (f" [{ref['rule']}]" if "rule" in ref else "")
                for name, ref in refs.items()), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    bars = args.bars or (12_000 if args.quick else 20_000)
    if args.combine:
        rows = combined_rows(args.combine)
        print(f"{len(rows)} runs from {', '.join(args.combine)}; test-split Sharpe net of costs, mean ± sd over "
              f"seeds:\n\n{summary_table(rows)}\n\n" + "\n".join(targets(rows)))
        return 0
    if args.references_only:
        rows = references_only(args.markets, seeds, bars, args.overrides)
        print(f"\nreferences without training ({len(seeds)} seeds; {bars:,}-bar markets); test-split Sharpe net "
              f"of costs, mean ± sd over seeds:\n\n{summary_table(rows, REFERENCE_COLUMNS)}")
        return 0
    overrides = (["train.timesteps=60000"] if args.quick else []) + args.overrides
    out = Path(args.out)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for kind in args.markets:
        for seed in seeds:
            market = make_market(kind, seed, bars)
            folder = out / kind / f"seed{seed}"
            (folder / "data").mkdir(parents=True, exist_ok=True)
            path = folder / "data" / f"{market.name}.csv"
            market.frame.to_csv(path, index=False)
            rows.append(run_case(kind, kind, path, folder, seed, overrides, market) | {"kind": kind})
    for file in args.files:
        path = (ROOT / file).resolve()
        for seed in seeds:
            folder = out / path.stem / f"seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            rows.append(run_case("file", path.stem, path, folder, seed, overrides, None) | {"kind": "file"})
    print(f"\nlearning benchmark ({'quick' if args.quick else 'full'}; seeds {seeds}; {bars:,}-bar markets; "
          f"overrides {overrides or 'none'}); test-split Sharpe net of costs, mean ± sd over seeds:\n")
    print(summary_table(rows))
    print()
    print("\n".join(targets(rows)))
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning.json").write_text(json.dumps({"rows": rows, "overrides": overrides, "seeds": seeds,
                                                   "bars": bars}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
