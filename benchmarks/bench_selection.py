"""How strict should do-no-harm selection be? Other rules replayed on the saved runs of bench_learning.py.

    python benchmarks/bench_selection.py OUT/learning.json [OUT2/learning.json ...]

A run's candidate (its ensemble of best validation checkpoints) is fixed once trained; only the choice
between it and flat depends on the rule. So each rule below is replayed exactly, without training, on the
runs that `bench_learning.py` left under `<out>/<market>/seed<seed>/`: the candidate is scored on validation
again (its Sharpe ratio with the bootstrap draws `trader.selection` uses, on the symbols and paired with
their mirror images), each rule keeps it or goes flat, and what it keeps earns the candidate's test Sharpe
and turnover from the run's report. The printed table is per market: mean ± sd over seeds of what each
rule makes on test, its mean turnover and how many seeds it traded. The first rule is the default's; its
choices must match the runs' own (checked), which ties the replay to the trainer's code.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from settings import Params, load_params  # noqa: E402
from signals.store import Store, open_store  # noqa: E402
from trader import bootstrap  # noqa: E402
from envs.accounting import backtest  # noqa: E402
from trader.evaluate import evaluate_symbol, load_run_model, model_predictor, policy_positions  # noqa: E402
from trader.metrics import performance  # noqa: E402
from trader.runinfo import member_model_files  # noqa: E402
from trader.selection import mirror_paired_returns, mirrored_validation_returns  # noqa: E402


@dataclass(frozen=True)
class Validation:
    """What a rule may read of a candidate's validation split."""

    sharpe: float
    draws: np.ndarray
    """Bootstrap draws of its symbol-mean Sharpe ratio (the report's, paired with its baselines)."""
    paired_sharpe: float
    paired_draws: np.ndarray
    """The same for the returns paired bar by bar with the mirror images (`mirror_paired_returns`)."""
    mirror_sharpe: float
    """Its symbol-mean Sharpe ratio on the mirror images alone."""


def _low(draws: np.ndarray, level: float) -> float:
    return bootstrap.interval(draws, level)[0]


def intervals_rule(level: float, raw: bool = True) -> Callable[[Validation], bool]:
    """The default's form at another level: the lower ends of the `level` intervals (of the validation Sharpe
    when `raw`, and of the mirror-paired one) above 0, and the mirror images alone above 0."""
    def rule(v: Validation) -> bool:
        lows = [_low(v.paired_draws, level)] + ([_low(v.draws, level)] if raw else [])
        return min(lows) > 0.0 and v.mirror_sharpe > 0.0
    return rule


RULES: dict[str, Callable[[Validation], bool]] = {
    "default (trader.selection)": intervals_rule(bootstrap.LEVEL),
    "80 % intervals": intervals_rule(0.8),
    "70 % intervals": intervals_rule(0.7),
    "60 % intervals": intervals_rule(0.6),
    "paired only, 90 %": intervals_rule(0.9, raw=False),
    "paired only, 80 %": intervals_rule(0.8, raw=False),
}
"""Each rule: does the candidate trade? The first is trader.selection.choose at bootstrap.LEVEL (90 %)."""


def load_candidate(run_dir: Path, store_root: Path) -> tuple[Params, Store, Callable[[np.ndarray], Any]]:
    """(the run's parameters, its store, its candidate's deterministic action): the ensemble of best
    validation checkpoints that trader.selection scored."""
    models, _ = load_run_model(run_dir, files=member_model_files(run_dir))
    return load_params(run_dir / "params.toml", recorded=True), open_store(store_root), model_predictor(models)


def candidate_validation(params: Params, store: Store, predict: Callable[[np.ndarray], Any]) -> Validation:
    """The candidate's validation figures, with the bootstrap draws and seed of trader.selection."""
    returns, sharpes = {}, []
    for symbol in store.symbols:
        result, _, returns[symbol] = evaluate_symbol(predict, store, params, "validation", symbol)
        sharpes.append(result["agent"]["sharpe"])
    periods = [store.symbol(s).periods_per_year for s in store.symbols]
    names = list(next(iter(returns.values())))
    draws = bootstrap.sharpe_draws({n: [returns[s][n] for s in returns] for n in names}, periods,
                                   seed=params.train.seed)["agent"]
    mirrored = mirrored_validation_returns(predict, store, params)
    paired, paired_sharpes, mirror_sharpes = [], [], []
    for symbol in store.symbols:
        image = store.mirror_image(symbol)
        if image is None:
            raise ValueError(f"{store.root}: no mirror image of {symbol}; these runs did not use the mirror test")
        _, net, positions, ppy = mirrored[symbol]
        _, mirror_net, mirror_positions, _ = mirrored[image]
        paired.append(mirror_paired_returns(net, mirror_net))
        paired_sharpes.append(_sharpe(paired[-1], positions, ppy))
        mirror_sharpes.append(_sharpe(mirror_net, mirror_positions, ppy))
    paired_draws = bootstrap.sharpe_draws({"agent": paired}, periods, seed=params.train.seed)["agent"]
    return Validation(float(np.mean(sharpes)), draws, float(np.mean(paired_sharpes)), paired_draws,
                      float(np.mean(mirror_sharpes)))


def training_sharpes(params: Params, store: Store, predict: Callable[[np.ndarray], Any]) -> tuple[float, float]:
    """(symbol-mean Sharpe ratio on the training split, the same paired with the mirror images): in-sample,
    so biased upwards by what the agent memorised; a diagnostic, not a rule."""
    sharpes, paired = [], []
    for symbol in store.symbols:
        image = store.mirror_image(symbol)
        if image is None:
            raise ValueError(f"{store.root}: no mirror image of {symbol}; these runs did not use the mirror test")
        ppy = store.symbol(symbol).periods_per_year
        books = []
        for name in (symbol, image):
            first_bar, positions = policy_positions(predict, store, params, "train", name)
            books.append(backtest(np.asarray(store.symbol(name).close), positions, first_bar,
                                  params.costs.total_bps))
        sharpes.append(_sharpe(books[0]["net_returns"], books[0]["positions"], ppy))
        paired.append(_sharpe(mirror_paired_returns(books[0]["net_returns"], books[1]["net_returns"]),
                              books[0]["positions"], ppy))
    return float(np.mean(sharpes)), float(np.mean(paired))


def check_replay(run_dir: Path, validation: Validation) -> None:
    """The replayed figures are the ones the run's selection recorded (best_model.json), or a RuntimeError."""
    record = json.loads((run_dir / "best_model.json").read_text())
    replayed = [validation.sharpe, *bootstrap.interval(validation.draws), validation.paired_sharpe,
                *bootstrap.interval(validation.paired_draws), validation.mirror_sharpe]
    recorded = [record["candidate_validation_sharpe"], *record["candidate_validation_interval"],
                record["candidate_drift_test_sharpe"], *record["candidate_drift_test_interval"],
                record["candidate_mirror_sharpe"]]
    if not np.allclose(replayed, recorded, rtol=1e-9, atol=1e-9):
        raise RuntimeError(f"{run_dir}: replayed validation figures {replayed} differ from the recorded {recorded}")


def _sharpe(returns: np.ndarray, positions: np.ndarray, periods_per_year: float) -> float:
    """The report's annualised Sharpe ratio, as trader.selection computes it."""
    return float(performance(returns, positions, np.zeros_like(returns), periods_per_year)["sharpe"])


def replay(learning_json: Path) -> list[dict[str, Any]]:
    """One row per saved run: its candidate's test figures and each rule's choice."""
    saved = json.loads(learning_json.read_text())
    rows = []
    for row in saved["rows"]:
        folder = learning_json.parent / row["market"] / f"seed{row['seed']}"
        run_dir = sorted((folder / "runs").glob("*/report.json"))[-1].parent
        report = json.loads((run_dir / "report.json").read_text())
        candidate = report["test"].get("not_selected", report["test"])["agent"]
        candidate_policy = load_candidate(run_dir, folder / "store")
        validation = candidate_validation(*candidate_policy)
        check_replay(run_dir, validation)
        choices = {name: rule(validation) for name, rule in RULES.items()}
        if choices[next(iter(RULES))] != (report.get("selected", "model") == "model"):
            raise RuntimeError(f"{run_dir}: the replayed default rule chose otherwise than the run did")
        train_sharpe, train_paired = training_sharpes(*candidate_policy)
        rows.append({"market": row["market"], "seed": row["seed"], "test_sharpe": candidate["sharpe"],
                     "test_turnover": candidate["turnover"], "validation_sharpe": validation.sharpe,
                     "paired_sharpe": validation.paired_sharpe, "mirror_sharpe": validation.mirror_sharpe,
                     "validation_low": bootstrap.interval(validation.draws)[0],
                     "paired_low": bootstrap.interval(validation.paired_draws)[0],
                     "train_sharpe": train_sharpe, "train_paired_sharpe": train_paired, "choices": choices})
        print(f"  {row['market']:12s} seed {row['seed']}: candidate test {candidate['sharpe']:+.2f} (turnover "
              f"{candidate['turnover']:.3f}); validation {validation.sharpe:+.2f}, paired "
              f"{validation.paired_sharpe:+.2f}, mirror {validation.mirror_sharpe:+.2f}; training (in-sample) "
              f"{train_sharpe:+.2f}, paired {train_paired:+.2f}; trades under: "
              + ", ".join(name for name, chosen in choices.items() if chosen), flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| market | rule | test Sharpe | turnover | seeds traded |", "|---|---|---|---|---|"]
    for market in dict.fromkeys(r["market"] for r in rows):
        group = [r for r in rows if r["market"] == market]
        for name in RULES:
            sharpes = [r["test_sharpe"] if r["choices"][name] else 0.0 for r in group]
            turnover = statistics.mean(r["test_turnover"] if r["choices"][name] else 0.0 for r in group)
            spread = statistics.stdev(sharpes) if len(sharpes) > 1 else 0.0
            traded = sum(r["choices"][name] for r in group)
            lines.append(f"| {market} ({len(group)} seeds) | {name} | {statistics.mean(sharpes):+.2f} ± "
                         f"{spread:.2f} | {turnover:.3f} | {traded} of {len(group)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("learning_json", nargs="+", type=Path, help="bench_learning.py outputs, run folders beside")
    args = parser.parse_args(argv)
    rows = [row for path in args.learning_json for row in replay(path)]
    print("\n" + table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
