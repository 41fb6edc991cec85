"""`python -m trader.predict RUN_DIR --data FILE [FILE ...] [--all] [--from TIME] [--out FILE.csv]`

Without `--all`: the agent's decision for the last bar of each file (one symbol per file, named after
it, read by `signals.data.load_bars` like the build reads its data), from a flat position, as if
starting now. With `--all`: every bar after the
warm-up replayed as paper trading would have seen it, one bar at a time (each decision from the last
`min_bars` bars only, the agent's own position carried from bar to bar), written as `timestamp,
symbol, position, equity` with the run's costs. `--from TIME` starts the paper account (flat, equity
1) at the first bar at or after TIME, as an evaluation episode starts at its split's first decision bar.

The report writes the test split's positions in the same columns (`RUN_DIR/test_positions.csv`,
`write_test_positions`): the policy run through `TradingEnv` on the store's rows. Replaying the data
file from that file's first timestamp gives the same positions and equity (tested).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from common.files import save_text
from envs.accounting import backtest
from envs.spec import EnvSpec
from envs.trading_env import TradingEnv
from settings import Params
from signals.catalog import Ohlcv
from signals.data import load_bars
from signals.store import Store
from trader.agent import Agent, AgentError, iso

POSITIONS_FILE = "test_positions.csv"
COLUMNS = ("timestamp", "symbol", "position", "equity")


# ---------------------------------------------------------------- CSV of positions

def position_rows(symbol: str, times: np.ndarray, positions: np.ndarray, equity: np.ndarray) -> list[list[str]]:
    """One row per bar: the position taken at its close, the equity before that trade (repr: exact floats)."""
    return [[iso(t), symbol, repr(float(p)), repr(float(e))] for t, p, e in zip(times, positions, equity)]


def write_rows(path: Path | None, rows: Iterable[list[str]]) -> None:
    """The rows under COLUMNS, to `path` (atomically) or stdout."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    if path is None:
        sys.stdout.write(buffer.getvalue())
    else:
        save_text(Path(path), buffer.getvalue())


# ---------------------------------------------------------------- the report's reference positions

def env_positions(agent: Agent, store: Store, params: Params, symbol: str, split: str = "test"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(bar indices, positions) of the agent's policy run through TradingEnv over a split of the store.

    As trader.evaluate runs a policy, plus the decision at the split's last bar (observed, never traded
    by the environment): the decision a live agent would act on next.
    """
    env = TradingEnv(store, split, EnvSpec.from_config(params.env, params.costs, episode_length=None,
                                                       symbols=[symbol]))
    obs, info = env.reset(seed=params.train.seed)
    bars, positions, done = [int(info["bar"])], [], False
    while True:
        action, _ = agent.policy.act(obs)
        positions.append(agent.policy.position(action))
        if done:
            break
        obs, _, terminated, truncated, info = env.step(np.asarray([action]) if agent.spec.positions is None else action)
        bars.append(int(info["bar"]))
        done = terminated or truncated
    env.close()
    return np.asarray(bars), np.asarray(positions)


def write_test_positions(run_dir: Path, store: Store, params: Params) -> Path:
    """RUN_DIR/test_positions.csv: the test split's positions and equity, every symbol, the run's costs."""
    agent = Agent.load(run_dir)
    rows: list[list[str]] = []
    for symbol in store.symbols:
        data = store.symbol(symbol)
        bars, positions = env_positions(agent, store, params, symbol)
        equity = backtest(np.asarray(data.close), positions[:-1], int(bars[0]), agent.spec.costs_bps)["equity"]
        rows += position_rows(symbol, np.asarray(data.timestamps)[bars], positions, equity)
    path = Path(run_dir) / POSITIONS_FILE
    write_rows(path, rows)
    return path


# ---------------------------------------------------------------- the command

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trader.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run directory written by python -m trader.train")
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="OHLCV files, one symbol each")
    parser.add_argument("--format", default="auto", help="data format (as data.format; default: detected)")
    parser.add_argument("--all", action="store_true", help="replay every bar after the warm-up, bar by bar")
    parser.add_argument("--from", dest="start", metavar="TIME",
                        help="with --all: start the paper account at the first bar at or after TIME")
    parser.add_argument("--out", type=Path, help="write the CSV here (default: stdout)")
    return parser.parse_args(argv)


def start_index(agent: Agent, times: np.ndarray, start: str | None, name: str) -> int:
    """Index of the first replayed bar: the warm-up's end, or the first bar at or after `start`."""
    first = agent.min_bars - 1
    if start is None:
        return first
    index = int(np.searchsorted(times, np.datetime64(start, "ns").astype(np.int64)))
    if index < first:
        raise AgentError(f"{name}: --from {start} is bar {index}, but the first bar with {agent.min_bars} bars "
                         f"of history is {iso(times[first])} (bar {first})")
    if index >= len(times):
        raise AgentError(f"{name}: --from {start} is after the last bar ({iso(times[-1])})")
    return index


def last_decisions(agent: Agent, files: Sequence[Any]) -> list[dict[str, Any]]:
    """The decision on each file's last bar, from a flat position."""
    out = []
    for bars in files:
        decision = agent.decide(bars)
        out.append({"symbol": bars.symbol, "time": decision.iso_time, "position": decision.position,
                    "probabilities": decision.probabilities})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        agent = Agent.load(args.run_dir)
        files = [load_bars(path, args.format) for path in args.data]
        if not args.all:
            decisions = last_decisions(agent, files)
            if args.out:
                save_text(args.out, "".join(json.dumps(d) + "\n" for d in decisions))
            else:
                for d in decisions:
                    print(json.dumps(d))
            return 0
        rows: list[list[str]] = []
        for bars in files:
            times, ohlcv = bars.timestamps, _ohlcv(bars)
            result = agent.replay(times, ohlcv, start_index(agent, times, args.start, str(bars.path)))
            rows += position_rows(bars.symbol, result["times"], result["positions"], result["equity"])
        write_rows(args.out, rows)
    except (AgentError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _ohlcv(bars: Any) -> Any:
    return Ohlcv(bars.open, bars.high, bars.low, bars.close, bars.volume)


if __name__ == "__main__":
    sys.exit(main())
