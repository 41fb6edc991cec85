"""Deterministic evaluation of a policy on one split, beside baselines on the same bars and costs.

`python -m trader.evaluate RUN_DIR [--split test|validation]` re-runs a saved run's evaluation.

The agent is run through the environment once (its positions depend on its own state); every
strategy's positions, the agent's included, are then replayed by `envs.accounting.backtest`, the one
place positions become equity, so all of them pay the same costs on the same bars.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO

from envs.accounting import backtest
from envs.spec import EnvSpec
from envs.trading_env import TradingEnv, flat_action
from settings import ConfigError, Params, load_params
from signals.cache import store_cache_key
from signals.store import Store, StoreError, open_store
from trader import baselines, bootstrap
from trader.agent import AgentError, write_agent_spec
from trader.metrics import mean_metrics, performance
from trader.predict import write_test_positions
from trader.report import write_report
from trader.policy import actor_output, combine_outputs
from trader.runinfo import SELECTION_FILE, describe_models, member_model_files, policy_files, read_selection

COST_MULTIPLIERS = {"0x": 0.0, "1x": 1.0, "2x": 2.0}


# ---------------------------------------------------------------- positions of each strategy

def policy_positions(predict: Callable[[np.ndarray], Any], store: Store, params: Params, split: str,
                     symbol: str) -> tuple[int, np.ndarray]:
    """(first decision bar, positions) of a policy run over the whole split of one symbol."""
    env = TradingEnv(store, split, EnvSpec.from_config(params.env, params.costs, episode_length=None,
                                                       symbols=[symbol]))
    obs, info = env.reset(seed=params.train.seed)
    first_bar = int(info["bar"])
    positions = []
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(predict(obs))
        positions.append(float(info["position"]))
        done = terminated or truncated
    env.close()
    return first_bar, np.asarray(positions)


class DeterministicPolicy:
    """`model.predict(obs, deterministic=True)` of a PPO MLP policy, or of an ensemble of them, one observation at a
    time, minus SB3's overhead.

    SB3's predict toggles train mode over every module and builds a distribution object on each call,
    about 1 ms per bar, which made validation the larger part of a fast trial. This computes the same
    action the same way (features -> actor MLP -> action net; the most probable action of the normalised
    logits, or the Gaussian mean clipped to the action space) with none of that. Several models (an
    ensemble, `train.ensemble`): their probabilities averaged, or their means (`trader.policy.combine_outputs`).
    Only Discrete and Box action spaces (what TradingEnv has); tests check it against SB3's predict.
    """

    def __init__(self, model: Any | Sequence[Any]) -> None:
        models: list[Any] = list(model) if isinstance(model, (list, tuple)) else [model]
        self.policies = [m.policy for m in models]
        self.space = models[0].action_space
        if not isinstance(self.space, (spaces.Discrete, spaces.Box)):
            raise TypeError(f"DeterministicPolicy covers Discrete and Box action spaces, not {self.space}")
        self.discrete = isinstance(self.space, spaces.Discrete)
        self._np, self._torch = np, torch
        self._device = self.policies[0].device  # a property that walks the parameters on every call
        for policy in self.policies:
            policy.set_training_mode(False)  # once per evaluation, not per bar

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[Any, Any]:
        return self.predict_action(observation), state

    def predict_action(self, observation: Any) -> Any:
        obs = self._torch.as_tensor(self._np.asarray(observation), device=self._device).reshape(1, -1)
        action, _ = combine_outputs([actor_output(policy, obs) for policy in self.policies], self.discrete)
        if self.discrete:
            return self._np.asarray(action[0])
        return self._np.clip(action.reshape(self.space.shape), self.space.low, self.space.high)


def model_predictor(model: Any | Sequence[Any]) -> Callable[[np.ndarray], Any]:
    """The deterministic action of a model, or of an ensemble of models, for one observation (the lean path;
    same actions as SB3's predict for one model)."""
    return DeterministicPolicy(model).predict_action


def random_positions(n: int, action_mode: str, seed: int) -> np.ndarray:
    """A uniformly random action each bar, mapped to positions as the environment maps actions."""
    return baselines.random_policy(baselines.BaselineBars(n, np.zeros(n), 1.0, action_mode, seed))


def best_signal(store: Store) -> tuple[int, str, float]:
    """(column, name, direction) of the kept feature with the best training score (selection order)."""
    return baselines.best_signal_column(store.manifest)


def flat_predictor(action_mode: str) -> Callable[[np.ndarray], Any]:
    """The do-nothing policy: the flat action on every bar."""
    action = flat_action(action_mode)
    return lambda observation: action


# ---------------------------------------------------------------- metrics

def strategy_metrics(close: np.ndarray, first_bar: int, positions: np.ndarray, cost_bps: float,
                     periods_per_year: float) -> tuple[dict[str, float], np.ndarray]:
    metrics, equity, _ = strategy_result(close, first_bar, positions, cost_bps, periods_per_year)
    return metrics, equity


def strategy_result(close: np.ndarray, first_bar: int, positions: np.ndarray, cost_bps: float,
                    periods_per_year: float) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """(metrics, equity curve, net returns per bar) of holding `positions` from `first_bar` on."""
    result = backtest(close, positions, first_bar, cost_bps)
    metrics = performance(result["net_returns"], result["positions"], result["cost_paid"], periods_per_year)
    return metrics, result["equity"], result["net_returns"]


def evaluate_symbol(predict: Callable[[np.ndarray], Any], store: Store, params: Params, split: str, symbol: str
                    ) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """Agent and baselines on one symbol's split: metrics, equity curves and net returns per bar."""
    data = store.symbol(symbol)
    close, ppy = np.asarray(data.close), data.periods_per_year
    cost = params.costs.total_bps
    first_bar, agent = policy_positions(predict, store, params, split, symbol)
    n = len(agent)
    column, _, direction = best_signal(store)
    bars = baselines.BaselineBars(n, np.asarray(data.features[first_bar:first_bar + n, column]), direction,
                                  params.env.action_mode, params.train.seed)
    times = np.asarray(data.timestamps[first_bar:first_bar + n + 1])
    result: dict[str, Any] = {"bars": [first_bar, first_bar + n + 1], "baselines": {}}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    returns: dict[str, np.ndarray] = {}
    result["agent"], equity, returns["agent"] = strategy_result(close, first_bar, agent, cost, ppy)
    curves["agent"] = (times, equity)
    result["agent_costs"] = {k: strategy_metrics(close, first_bar, agent, cost * m, ppy)[0]
                             for k, m in COST_MULTIPLIERS.items()}
    seeds = range(params.train.seed, params.train.seed + params.train.random_baseline_seeds)
    for name, baseline in baselines.BASELINES.items():
        draws = [dataclasses.replace(bars, seed=s) for s in seeds] if baseline.seeded else [bars]
        runs = [strategy_result(close, first_bar, baseline.positions(b), cost, ppy) for b in draws]
        result["baselines"][name] = mean_metrics([r[0] for r in runs])
        returns[name] = runs[0][2]  # a seeded baseline's interval is that of its first seed
        if not baseline.seeded:
            curves[name] = (times, runs[0][1])
    return result, curves, returns


def evaluate_policy(predict: Callable[[np.ndarray], Any], store: Store, params: Params, split: str,
                    intervals: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """{agent, agent_costs, baselines} averaged over symbols, plus per-symbol results and curves.

    With `intervals`, the agent's and every baseline's Sharpe ratio get a stationary-bootstrap interval
    (`sharpe_interval`, level `bootstrap.LEVEL`, seeded by train.seed) and `agent_beats` holds the
    probability that the agent's Sharpe ratio exceeds each baseline's on resampled histories of the same bars.
    """
    per_symbol, curves, returns = {}, {}, {}
    for symbol in store.symbols:
        per_symbol[symbol], curves[symbol], returns[symbol] = evaluate_symbol(predict, store, params, split, symbol)
    symbols = list(per_symbol.values())
    summary = {
        "agent": mean_metrics([s["agent"] for s in symbols]),
        "agent_costs": {k: mean_metrics([s["agent_costs"][k] for s in symbols]) for k in COST_MULTIPLIERS},
        "baselines": {b: mean_metrics([s["baselines"][b] for s in symbols]) for b in symbols[0]["baselines"]},
        "per_symbol": per_symbol,
    }
    if intervals:
        add_intervals(summary, returns, [store.symbol(s).periods_per_year for s in store.symbols], params.train.seed)
    return summary, curves


def add_intervals(summary: dict[str, Any], returns: dict[str, dict[str, np.ndarray]], periods_per_year: list[float],
                  seed: int) -> None:
    """Bootstrap intervals of the Sharpe ratios and the agent's probability of beating each baseline."""
    names = list(next(iter(returns.values())))
    draws = bootstrap.sharpe_draws({name: [returns[s][name] for s in returns] for name in names}, periods_per_year,
                                   seed=seed)
    summary["agent"]["sharpe_interval"] = list(bootstrap.interval(draws["agent"]))
    for name in names[1:]:
        summary["baselines"][name]["sharpe_interval"] = list(bootstrap.interval(draws[name]))
    summary["agent_beats"] = {name: bootstrap.probability_better(draws["agent"], draws[name]) for name in names[1:]}
    summary["interval_level"] = bootstrap.LEVEL


def validation_score(model: Any, store: Store, params: Params) -> float:
    """The agent's annualised Sharpe on the validation split, net of costs, averaged over symbols."""
    summary, _ = evaluate_policy(model_predictor(model), store, params, "validation", intervals=False)
    return float(summary["agent"]["sharpe"])


# ---------------------------------------------------------------- a saved run

def load_run_model(run_dir: Path, device: str = "cpu", files: Sequence[str] | None = None
                   ) -> tuple[list[Any], str]:
    """The models of `files` (relative to the run directory), by default each ensemble member's best
    validation model when it has one, else its final model (`trader.runinfo.member_model_files`); and how
    reports name them."""
    files = list(files) if files is not None else member_model_files(run_dir)
    if not files:
        raise FileNotFoundError(f"{run_dir} has neither best_model.zip nor model.zip; did the run finish?")
    missing = [name for name in files if not (run_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{run_dir / SELECTION_FILE} names {', '.join(missing)}, not in {run_dir}")
    return [PPO.load(run_dir / name, device=device) for name in files], describe_models(files)


def evaluate_run(run_dir: Path, store: Store, params: Params, split: str = "test") -> tuple[dict[str, Any], Any]:
    """The report of a run's selected policy on `split`: what report.json holds.

    When do-no-harm selection chose flat (trader.selection), the agent's figures are flat's, and the best
    checkpoint's are shown beside them under `not_selected`.
    """
    selection = read_selection(run_dir)
    model, name = load_run_model(run_dir, files=policy_files(run_dir, selection))
    selected = selection["selected"] if selection else "model"
    if selected == "flat":
        summary, curves = evaluate_policy(flat_predictor(params.env.action_mode), store, params, split)
        candidate, _ = evaluate_policy(model_predictor(model), store, params, split, intervals=False)
        summary["not_selected"] = {"model": name, "agent": candidate["agent"],
                                   "agent_costs": candidate["agent_costs"]}
    else:
        summary, curves = evaluate_policy(model_predictor(model), store, params, split)
    report = {
        "model": name if selected == "model" else "flat",
        "selected": selected,
        "selection_reason": selection["reason"] if selection else "no selection record: the best validation model",
        "split": split,
        "symbols": list(store.symbols),
        "costs_bps": params.costs.total_bps,
        "store_manifest_sha256": store.manifest_hash,
        "best_signal": best_signal(store)[1],
        split: summary,
    }
    return report, curves


def report_run(run_dir: Path, store: Store, params: Params, log: Any = print, split: str = "test",
               name: str = "report.json") -> dict[str, Any]:
    """Evaluate the run's selected policy on `split`, write report.json and equity.png, print the table.

    On the test split also agent.json and test_positions.csv: what trader.agent needs to run without the
    store, and the replay's reference.
    """
    report, curves = evaluate_run(run_dir, store, params, split)
    write_report(run_dir, report, curves, log=log, name=name)
    if split == "test":
        try:
            spec = write_agent_spec(run_dir, store, params)
        except AgentError as exc:  # the run and its report stand; only the deployable agent is missing
            log(f"agent.json not written: {exc}")
            return report
        log(f"agent: {run_dir / 'agent.json'} (decisions need {spec.min_bars} bars); "
            f"test positions: {write_test_positions(run_dir, store, params)}")
    return report


def open_run_store(run_dir: Path, params: Params) -> Store:
    """The store the run was trained on: same cache key and, byte for byte, the same manifest."""
    store = open_store(params.build.out, expected_key=store_cache_key(params))
    record = run_dir / "run.json"
    trained_on = json.loads(record.read_text()).get("store_manifest_sha256") if record.exists() else None
    if trained_on is not None and store.manifest_hash != trained_on:
        raise StoreError(f"the signal store at {store.root} is not the one {run_dir} was trained on (its manifest "
                         f"changed since); rebuild it with "
                         f"`python -m signals.build --params {run_dir / 'params.toml'}`")
    return store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trader.evaluate", description="Re-run a saved run's evaluation.")
    parser.add_argument("run_dir", help="a run directory written by python -m trader.train")
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    try:
        params = load_params(run_dir / "params.toml", recorded=True)
        store = open_run_store(run_dir, params)
        report_run(run_dir, store, params, split=args.split,
                     name="report.json" if args.split == "test" else f"report_{args.split}.json")
    except (ConfigError, StoreError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
