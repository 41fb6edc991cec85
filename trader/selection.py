"""Do-no-harm model selection: the best validation checkpoint trades only if its edge is beyond the noise.

Flat is always a candidate. After training, the best checkpoint (best_model.zip, chosen on validation
Sharpe) is scored on the validation split again with a stationary-bootstrap interval of its Sharpe ratio
(trader.bootstrap). If the interval's lower end is above 0, and (`train.beyond_drift`) so is that of its
Sharpe beyond the validation period's drift (`drift_neutral_returns`), the checkpoint is selected; otherwise
the run's selected policy is flat, and the report says so in words while still showing the checkpoint, labelled
"not selected". The choice and its reason go to `RUN_DIR/best_model.json` (beside the validation Sharpe and
step that `ValidationCallback` keeps there), which `trader.evaluate` and a loaded agent read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from common.files import save_json
from envs.accounting import backtest
from settings import Params
from signals.store import Store
from trader import bootstrap
from trader.evaluate import evaluate_policy, load_run_model, model_predictor, policy_positions
from trader.metrics import performance
from trader.runinfo import SELECTION_FILE

Figure = tuple[float, tuple[float, float]]
"""A Sharpe ratio and its bootstrap interval."""


def choose(validation: dict[str, Any], do_no_harm: bool, beyond_drift: Figure | None = None) -> tuple[str, str]:
    """("model" or "flat", the reason in words) from the candidate's validation summary and, when given, its
    Sharpe ratio beyond the validation period's drift with that figure's interval."""
    level = validation["interval_level"]
    figures = _figures("validation Sharpe", (validation["agent"]["sharpe"], validation["agent"]["sharpe_interval"]),
                       level)
    if beyond_drift is not None:
        figures += "; " + _figures("beyond the period's drift", beyond_drift, level)
    if not do_no_harm:
        return "model", f"{figures}; do-no-harm selection is off (train.do_no_harm = false)"
    lows = [validation["agent"]["sharpe_interval"][0]] + ([beyond_drift[1][0]] if beyond_drift else [])
    if min(lows) > 0.0:
        return "model", f"{figures}: the edge is beyond the noise, the best checkpoint is selected"
    return "flat", (f"no edge found on validation: the selected policy stays flat (the best checkpoint's "
                    f"{figures}: not every interval lies above 0)")


def _figures(label: str, figure: Figure, level: float) -> str:
    sharpe, (low, high) = figure
    return f"{label} {sharpe:+.2f}, {level:.0%} interval [{low:+.2f}, {high:+.2f}]"


def drift_neutral_returns(close: np.ndarray, first_bar: int, positions: np.ndarray, cost_bps: float) -> np.ndarray:
    """Net returns per bar less what the period's average price move paid the position held: net - pos * mean.

    Holding one position through the whole period earns about 0 (less its costs) by this measure, however
    the period drifted; a policy earns more only by being long when prices rise faster than their average
    over the period and short when they rise slower, which is timing, not the period's direction.
    """
    result = backtest(close, positions, first_bar, cost_bps)
    return result["net_returns"] - result["positions"] * float(np.mean(result["price_returns"]))


def beyond_drift_figure(predict: Callable[[np.ndarray], Any], store: Store, params: Params, split: str) -> Figure:
    """The symbol-mean Sharpe ratio of `drift_neutral_returns` on `split` and its bootstrap interval."""
    returns: list[np.ndarray] = []
    sharpes: list[float] = []
    periods: list[float] = []
    for symbol in store.symbols:
        data = store.symbol(symbol)
        first_bar, positions = policy_positions(predict, store, params, split, symbol)
        excess = drift_neutral_returns(np.asarray(data.close), first_bar, positions, params.costs.total_bps)
        returns.append(excess)
        periods.append(data.periods_per_year)
        sharpes.append(performance(excess, positions, np.zeros_like(excess), data.periods_per_year)["sharpe"])
    draws = bootstrap.sharpe_draws({"agent": returns}, periods, seed=params.train.seed)["agent"]
    return float(np.mean(sharpes)), bootstrap.interval(draws)


def select_policy(run_dir: Path, store: Store, params: Params, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Score the best checkpoint on validation with its intervals, choose it or flat, write best_model.json."""
    model, name = load_run_model(run_dir)
    predict = model_predictor(model)
    validation, _ = evaluate_policy(predict, store, params, "validation")
    drift = beyond_drift_figure(predict, store, params, "validation") if params.train.beyond_drift else None
    selected, reason = choose(validation, params.train.do_no_harm, drift)
    path = Path(run_dir) / SELECTION_FILE
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update({
        "selected": selected, "model": name if selected == "model" else None, "candidate": name,
        "reason": reason, "candidate_validation_sharpe": validation["agent"]["sharpe"],
        "candidate_validation_interval": validation["agent"]["sharpe_interval"],
        "interval_level": validation["interval_level"], "do_no_harm": params.train.do_no_harm,
        "candidate_beyond_drift_sharpe": drift[0] if drift else None,
        "candidate_beyond_drift_interval": list(drift[1]) if drift else None,
    })
    save_json(path, record)
    log(f"model selection: {reason}")
    return record
