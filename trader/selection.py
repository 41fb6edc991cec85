"""Do-no-harm model selection: the best validation checkpoint trades only if its edge is beyond the noise.

Flat is always a candidate. After training, the run's policy (the best checkpoint, best_model.zip, chosen
on validation, of each ensemble member of `train.ensemble`, their probabilities averaged) is scored on the
validation split again with a stationary-bootstrap interval of its Sharpe ratio (trader.bootstrap). If the
interval's lower end is above 0, and so is that of the figure `train.drift_test` names, the policy is
selected; otherwise the run's selected policy is flat, and the report says so in words while still showing
the candidate, labelled "not selected". The choice and its reason go to `RUN_DIR/best_model.json` (beside
the validation score and step that `ValidationCallback` keeps there), which `trader.evaluate` and a loaded
agent read.

Why a second figure: a validation period of a few thousand bars may hold one long rise, and a checkpoint that
stays long through it has a validation interval well above 0 without reading anything in its features.
- `mirror` (the default) replays the checkpoint on each symbol's mirror image too (`data.mirror`: prices
  inverted, the same bars) and pairs the two books bar by bar (`mirror_paired_returns`). A position held in
  one direction loses on the mirror exactly what it gains on the symbol, while a policy that follows what its
  features say trades the mirror the other way round and gains on both.
- `drift` takes the Sharpe ratio beyond the period's average move (`drift_neutral_returns`). This also pays
  a constant position nothing, but it pays a trend follower through a period that rose throughout nothing
  either.
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
from trader.evaluate import evaluate_policy, load_run_model, model_predictor, policy_positions, validation_score
from trader.metrics import performance
from trader.runinfo import SELECTION_FILE, member_model_files

Figure = tuple[float, tuple[float, float]]
"""A Sharpe ratio and its bootstrap interval."""


DRIFT_LABELS = {"mirror": "paired with the mirror images", "drift": "beyond the period's drift"}
"""How the reason names the figure of each `train.drift_test`."""


def choose(validation: dict[str, Any], do_no_harm: bool, drift: Figure | None = None,
           drift_label: str = DRIFT_LABELS["drift"], mirror_sharpe: float | None = None) -> tuple[str, str]:
    """("model" or "flat", the reason in words) from the candidate's validation summary and, when given, the
    figure of the drift test (`drift_label` names it) with its interval, and its Sharpe ratio on the mirror
    images alone, which must be above 0 too."""
    level = validation["interval_level"]
    figures = _figures("validation Sharpe", (validation["agent"]["sharpe"], validation["agent"]["sharpe_interval"]),
                       level)
    if drift is not None:
        figures += "; " + _figures(drift_label, drift, level)
    if mirror_sharpe is not None:
        figures += f"; on the mirror images alone {mirror_sharpe:+.2f}"
    if not do_no_harm:
        return "model", f"{figures}; do-no-harm selection is off (train.do_no_harm = false)"
    lows = [validation["agent"]["sharpe_interval"][0]] + ([drift[1][0]] if drift else [])
    if mirror_sharpe is not None and not mirror_sharpe > 0.0:
        return "flat", (f"no edge found on validation: the selected policy stays flat (the best checkpoint's "
                        f"{figures}: it loses where the market moves the other way)")
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


def mirror_paired_returns(returns: np.ndarray, mirror_returns: np.ndarray) -> np.ndarray:
    """Per-bar return of a book that earns the mean of the log returns of two books: sqrt((1+a)(1+b)) - 1.

    a: a policy's net returns on a symbol, b: its net returns on the symbol's mirror image over the same bars.
    Where the policy holds one position on both, (1 + r)(1 / (1 + r)) = 1: it earns nothing but its costs. An
    arithmetic mean would not do: half long a price and half long its inverse, rebalanced each bar, earns
    r**2 / 2 on every bar, a riskless-looking gain of any constant position.
    """
    return np.sqrt((1.0 + np.asarray(returns)) * (1.0 + np.asarray(mirror_returns))) - 1.0


def _net_returns(predict: Callable[[np.ndarray], Any], store: Store, params: Params, split: str, symbol: str
                 ) -> tuple[int, np.ndarray, np.ndarray]:
    """(first decision bar, net returns, positions) of the policy over one symbol's split."""
    first_bar, positions = policy_positions(predict, store, params, split, symbol)
    result = backtest(np.asarray(store.symbol(symbol).close), positions, first_bar, params.costs.total_bps)
    return first_bar, result["net_returns"], result["positions"]


def mirror_figures(predict: Callable[[np.ndarray], Any], store: Store, params: Params, split: str
                   ) -> tuple[Figure, float]:
    """(symbol-mean Sharpe ratio of `mirror_paired_returns` on `split` with its bootstrap interval, symbol-mean
    Sharpe ratio on the mirror images alone)."""
    returns: list[np.ndarray] = []
    sharpes: list[float] = []
    mirror_sharpes: list[float] = []
    periods: list[float] = []
    for symbol in store.symbols:
        image = store.mirror_image(symbol)
        if image is None:
            raise ValueError(f"train.drift_test = 'mirror': the store {store.root} has no mirror image of {symbol} "
                             f"(build it with data.mirror = true)")
        ppy = store.symbol(symbol).periods_per_year
        _, net, positions = _net_returns(predict, store, params, split, symbol)
        _, mirror_net, mirror_positions = _net_returns(predict, store, params, split, image)
        paired = mirror_paired_returns(net, mirror_net)
        returns.append(paired)
        periods.append(ppy)
        sharpes.append(performance(paired, positions, np.zeros_like(paired), ppy)["sharpe"])
        mirror_sharpes.append(performance(mirror_net, mirror_positions, np.zeros_like(mirror_net), ppy)["sharpe"])
    draws = bootstrap.sharpe_draws({"agent": returns}, periods, seed=params.train.seed)["agent"]
    return (float(np.mean(sharpes)), bootstrap.interval(draws)), float(np.mean(mirror_sharpes))


def drift_figures(predict: Callable[[np.ndarray], Any], store: Store, params: Params, split: str
                  ) -> tuple[Figure | None, float | None]:
    """(the figure `train.drift_test` names on `split`, the Sharpe ratio on the mirror images alone): None where
    the test has none."""
    if params.train.drift_test == "mirror":
        return mirror_figures(predict, store, params, split)
    if params.train.drift_test == "drift":
        return beyond_drift_figure(predict, store, params, split), None
    return None, None


def checkpoint_score(model: Any, store: Store, params: Params) -> float:
    """What `ValidationCallback` ranks checkpoints by: the validation Sharpe ratio (`validation_score`), or with
    `train.drift_test = "mirror"` the mean of the symbols' and their mirror images' validation Sharpe ratios.

    Ranked by the symbols' Sharpe alone, the best checkpoint of a run is often the one most biased towards
    the validation period's direction, which the mirror test then sends flat while a checkpoint that
    followed its features was on hand. On the mirror images too, a bias earns nothing on average, and each
    checkpoint is scored on twice the bars.
    """
    if params.train.drift_test != "mirror":
        return validation_score(model, store, params)
    returns = mirrored_validation_returns(model_predictor(model), store, params)
    return float(np.mean([performance(net, positions, np.zeros_like(net), ppy)["sharpe"]
                          for _, net, positions, ppy in returns.values()]))


def mirrored_validation_returns(predict: Callable[[np.ndarray], Any], store: Store, params: Params
                                ) -> dict[str, tuple[int, np.ndarray, np.ndarray, float]]:
    """Per symbol and per mirror image (the symbol's order, each followed by its image): the first decision
    bar, net returns and positions of the policy over validation, and the symbol's bars per year; what
    `checkpoint_score` averages with the mirror test, and the tuner's trials with it too."""
    out = {}
    for symbol in store.symbols:
        image = store.mirror_image(symbol)
        for name in [symbol] if image is None else [symbol, image]:
            out[name] = (*_net_returns(predict, store, params, "validation", name),
                         store.symbol(symbol).periods_per_year)
    return out


def select_policy(run_dir: Path, store: Store, params: Params, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Score the run's policy (the best checkpoint of each ensemble member, their probabilities averaged) on
    validation with its intervals, choose it or flat, write best_model.json."""
    files = member_model_files(run_dir)
    models, name = load_run_model(run_dir, files=files)
    predict = model_predictor(models)
    validation, _ = evaluate_policy(predict, store, params, "validation")
    drift, mirror_sharpe = drift_figures(predict, store, params, "validation")
    selected, reason = choose(validation, params.train.do_no_harm, drift,
                              DRIFT_LABELS.get(params.train.drift_test, ""), mirror_sharpe)
    path = Path(run_dir) / SELECTION_FILE
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update({
        "selected": selected, "model": files[0] if selected == "model" else None,
        "members": files if selected == "model" else None, "candidate": name, "candidate_members": files,
        "reason": reason, "candidate_validation_sharpe": validation["agent"]["sharpe"],
        "candidate_validation_interval": validation["agent"]["sharpe_interval"],
        "interval_level": validation["interval_level"], "do_no_harm": params.train.do_no_harm,
        "drift_test": params.train.drift_test,
        "candidate_drift_test_sharpe": drift[0] if drift else None,
        "candidate_drift_test_interval": list(drift[1]) if drift else None,
        "candidate_mirror_sharpe": mirror_sharpe,
    })
    save_json(path, record)
    log(f"model selection: {reason}")
    return record
