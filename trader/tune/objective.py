"""One trial: sample, resolve the trial's parameters, get its store, train in chunks, score on validation.

The score is the agent's annualised Sharpe ratio net of costs on the validation split, averaged over
symbols (with the mirror test, and their mirror images) and `tune.seeds_per_trial` seeds
(`trader.selection.checkpoint_score`'s figure). Beside it each
trial records, per seed and symbol, what the deflated Sharpe ratio of the study's best trial needs:
the validation bars scored, their number, the per-bar Sharpe ratio, skewness and kurtosis of the
agent's net returns (result.json), and the standard error of the trial's score (a user attribute).
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import optuna
import torch

import signals.build
from settings import ConfigError, Params, replace_path, to_toml
from common.files import save_json, save_text
from signals.store import Store, StoreError, open_store
from trader.callbacks import save_model_atomically
from trader.evaluate import evaluate_policy, model_predictor
from trader.metrics import performance
from trader.stats import return_moments, sharpe_standard_error
from trader.train import learner_device, make_training_env, new_model
from trader.tune import Log
from trader.tune.space import sample_params, trial_budget, trial_params
from trader.tune.storage import worker_id

if TYPE_CHECKING:
    from stable_baselines3 import PPO


class SymbolValidation(TypedDict):
    """One seed's validation figures on one symbol (result.json's `validation`, one dict per seed)."""

    bars: list[int]
    """[first bar, last bar + 1] of the evaluation: n positions and the n + 1 prices they are valued at."""
    n: int
    """Returns scored (one per position)."""
    sharpe: float
    """Per-bar Sharpe ratio of the agent's net returns (the score is its annualised value)."""
    skewness: float
    kurtosis: float
    """Plain (not excess) kurtosis of the agent's net returns."""
    periods_per_year: float


# ---------------------------------------------------------------- the trial's store

def open_fast_store(params: Params) -> Store:
    """The store at build.out, exactly as built for these parameters; never (re)built here."""
    try:
        return open_store(params.build.out, expected_key=signals.build.store_cache_key(params))
    except StoreError as exc:
        raise StoreError(f"tune --fast uses the signal store as it is and never rebuilds it: {exc}") from None


def base_store_if_any(params: Params) -> Store | None:
    """The base store when it is there and up to date (full mode can start without one)."""
    try:
        return open_fast_store(params)
    except (StoreError, ConfigError):
        return None


def build_trial_store(params: Params, variants_dir: str, log: Log) -> tuple[Params, Store]:
    """Full mode: the trial's own store under <tune.out>/stores/<key[:12]>, sharing the base variants."""
    out = Path(params.tune.out) / "stores" / signals.build.store_cache_key(params)[:12]
    params = replace_path(params, {"build.out": str(out), "build.variants_dir": variants_dir})
    return params, signals.build.build(params, log=log)


def base_variants_dir(params: Params) -> str:
    return params.build.variants_dir or str(Path(params.build.out) / "variants")


# ---------------------------------------------------------------- learning and scoring

def chunk_targets(timesteps: int, evaluations: int) -> list[int]:
    """Step counts at which a trial is evaluated and reported: `evaluations` equal chunks of `timesteps`."""
    n = max(1, min(evaluations, timesteps))
    return [round(timesteps * k / n) for k in range(1, n + 1)]


def diverged(model: PPO) -> str | None:
    """Why a model has diverged (non-finite loss or weights), or None."""
    loss = model.logger.name_to_value.get("train/loss") if model.logger is not None else None
    if loss is not None and not math.isfinite(float(loss)):
        return f"training loss is {loss}"
    for name, tensor in model.policy.named_parameters():
        if not bool(torch.isfinite(tensor).all()):
            return f"policy weights {name} are not finite"
    return None


def learn_to(model: PPO, target: int) -> None:
    """Learn up to `target` steps; a diverged model prunes the trial."""
    try:
        # log_interval=None: no log lines (SB3 checks for None; its hint says int).
        model.learn(total_timesteps=target - model.num_timesteps, reset_num_timesteps=False,
                    log_interval=None)  # type: ignore[arg-type]
    except Exception as exc:  # NaN logits raise inside the policy's distribution
        reason = diverged(model)
        if reason:
            raise optuna.TrialPruned(f"diverged: {reason}") from exc
        raise
    reason = diverged(model)
    if reason:
        raise optuna.TrialPruned(f"diverged: {reason}")


def validation_result(model: PPO, store: Store, params: Params) -> tuple[float, dict[str, SymbolValidation]]:
    """(score, per symbol: bars, n, per-bar Sharpe, skewness, kurtosis, periods per year) on validation.

    The score is the figure training ranks checkpoints by (`trader.selection.checkpoint_score`; tests check
    they agree): with the mirror test, the mean over the symbols and their mirror images (each one of the
    result's "symbols"), so that a trial is not rewarded for a bet on the validation period's direction;
    else `trader.evaluate.validation_score`'s, whose net returns are read back from the agent's equity curve.
    """
    if params.train.drift_test == "mirror":
        return _mirrored_validation_result(model, store, params)
    summary, curves = evaluate_policy(model_predictor(model), store, params, "validation", intervals=False)
    symbols = {}
    for symbol, result in summary["per_symbol"].items():
        equity = np.asarray(curves[symbol]["agent"][1], dtype=np.float64)
        moments = return_moments(equity[1:] / equity[:-1] - 1.0)
        symbols[symbol] = SymbolValidation(bars=list(result["bars"]), n=moments["n"], sharpe=moments["sharpe"],
                                           skewness=moments["skewness"], kurtosis=moments["kurtosis"],
                                           periods_per_year=store.symbol(symbol).periods_per_year)
    return float(summary["agent"]["sharpe"]), symbols


def _mirrored_validation_result(model: PPO, store: Store, params: Params
                                ) -> tuple[float, dict[str, SymbolValidation]]:
    from trader.selection import mirrored_validation_returns

    names, sharpes = {}, []
    for name, (first_bar, net, positions, ppy) in mirrored_validation_returns(model_predictor(model), store,
                                                                            params).items():
        sharpes.append(performance(net, positions, np.zeros_like(net), ppy)["sharpe"])
        moments = return_moments(net)
        names[name] = SymbolValidation(bars=[first_bar, first_bar + len(net) + 1], n=moments["n"],
                                       sharpe=moments["sharpe"], skewness=moments["skewness"],
                                       kurtosis=moments["kurtosis"], periods_per_year=ppy)
    return float(np.mean(sharpes)), names


def score_standard_error(per_seed: list[dict[str, SymbolValidation]]) -> float:
    """Standard error of a trial's score (annualised): the mean of its seeds' and symbols' standard errors.

    Each is the standard error of one annualised Sharpe estimate (`sharpe_standard_error` x sqrt(bars
    per year)). The mean of the errors bounds the error of the mean of correlated estimates from above
    (seeds share their validation bars; symbols may move together), so the DSR is not flattered.
    """
    errors = [math.sqrt(s["periods_per_year"]) * sharpe_standard_error(s["sharpe"], s["n"], s["skewness"],
                                                                       s["kurtosis"])
              for symbols in per_seed for s in symbols.values()]
    return float(sum(errors) / len(errors))


def train_and_score(trial: optuna.Trial, params: Params, store: Store, trial_dir: Path,
                    keep_checkpoints: bool, record: dict[str, Any]) -> float:
    """Learn in `tune.evaluations` chunks; after each, every seed's validation Sharpe, their mean reported."""
    device = learner_device(params.train.device)
    seeds = [params.train.seed + i for i in range(params.tune.seeds_per_trial)]
    targets = chunk_targets(params.train.timesteps, params.tune.evaluations)
    record["seeds"], record["history"] = seeds, []
    with contextlib.ExitStack() as envs:  # every environment closed, whatever happens
        models = []
        for seed in seeds:
            env = make_training_env(params, store.root, params.train.n_envs, seed, params.train.vec_env)
            envs.callback(env.close)
            seeded = params if seed == params.train.seed else replace_path(params, {"train.seed": seed})
            models.append(new_model(seeded, env, device))
        scores = [math.nan] * len(models)
        details: list[dict[str, SymbolValidation]] = [{} for _ in models]
        value = math.nan
        for step, target in enumerate(targets, start=1):
            for i, model in enumerate(models):
                if model.num_timesteps >= target:  # a rollout overshot this chunk: the score stands
                    continue
                learn_to(model, target)
                scores[i], details[i] = validation_result(model, store, params)
            value = float(sum(scores) / len(scores))
            record["history"].append({"step": step, "timesteps": target, "value": value, "per_seed": list(scores)})
            if step == 1:
                trial.set_user_attr("validation_bars", {s: d["bars"] for s, d in details[0].items()})
            if not math.isfinite(value):
                raise optuna.TrialPruned(f"diverged: validation Sharpe is {value}")
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned by the {params.tune.pruner} pruner at evaluation {step}")
        record["num_timesteps"] = [m.num_timesteps for m in models]
        record["validation"] = details
        trial.set_user_attr("score_standard_error", score_standard_error(details))
        if keep_checkpoints:
            for seed, model in zip(seeds, models, strict=True):
                save_model_atomically(model, trial_dir / f"model_seed{seed}.zip")
    return value


# ---------------------------------------------------------------- the objective

class Objective:
    """One trial: sample, resolve the trial's parameters, get its store, train, score on validation.

    Writes trials/<number>/params.toml (what the trial trained with) and result.json whatever the outcome.
    """

    def __init__(self, params: Params, fast: bool, out_dir: Path, keep_checkpoints: bool = False, slot: str = ""
                 ) -> None:
        self.params = params
        self.slot = slot
        self.fast = fast
        self.out_dir = Path(out_dir)
        self.keep_checkpoints = keep_checkpoints
        self.store = open_fast_store(params) if fast else None
        self.variants_dir = base_variants_dir(params)

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        trial.set_user_attr("worker", worker_id())
        if self.slot:
            trial.set_user_attr("slot", self.slot)  # which quota it counts against (runner.run_worker)
        overrides = sample_params(trial, self.params.tune, full=not self.fast)
        trial.set_user_attr("mode", "fast" if self.fast else "full")
        trial.set_user_attr("overrides", overrides)
        trial_dir = self.out_dir / "trials" / f"{trial.number:05d}"
        trial_dir.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"number": trial.number, "mode": "fast" if self.fast else "full",
                                  "overrides": overrides, "state": "running"}
        try:
            params, store = self.prepare(trial, overrides, record)
            save_text(trial_dir / "params.toml", to_toml(params))
            value = train_and_score(trial, params, store, trial_dir, self.keep_checkpoints, record)
            record.update(state="complete", value=value)
            return value
        except optuna.TrialPruned as exc:
            trial.set_user_attr("pruned_reason", str(exc))
            record.update(state="pruned", reason=str(exc))
            raise
        except BaseException as exc:
            trial.set_user_attr("failed_reason", f"{type(exc).__name__}: {exc}")
            record.update(state="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - started, 3)
            save_json(trial_dir / "result.json", record)

    def prepare(self, trial: optuna.Trial, overrides: dict[str, Any], record: dict[str, Any]
                ) -> tuple[Params, Store]:
        """The trial's parameters and store; records what best_params.toml needs to retrain it.

        `train_overrides` (what best_params.toml changes in the base tree): the sampled values, in full
        mode the common purge and the trial's store; `budget`: what the trial's training budget set.
        """
        params = trial_params(self.params, overrides, self.fast)
        train_overrides = dict(overrides)
        if self.fast:
            assert self.store is not None
            store = self.store
        else:
            build_log: list[str] = []
            params, store = build_trial_store(params, self.variants_dir, build_log.append)
            train_overrides.update({"split.extra_embargo": params.split.extra_embargo,
                                    "build.out": params.build.out, "build.variants_dir": self.variants_dir})
            record["build_log"] = build_log[-3:]
        trial.set_user_attr("train_overrides", train_overrides)
        trial.set_user_attr("budget", trial_budget(params, self.fast))
        record["store"] = str(store.root)
        record["store_manifest_sha256"] = store.manifest_hash
        return params, store
