"""What a study says when it ends: progress lines, the top-3 table, the deflated Sharpe ratio of the best
trial, best_params.toml (with what the trial's budget changed), trials.csv and plots.

The deflated Sharpe ratio (`trader.stats`, Bailey and López de Prado 2014) is computed in the units of
the scores (annualised): N is the number of scored trials (a complete trial's value, a pruned trial's
last reported value: the search saw both), V the sample variance of those scores, and the standard
error that of the best trial's score, from its validation returns (`objective.score_standard_error`).
For one symbol and one seed this is exactly the paper's per-period statistic (the annualisation factor
cancels between the numerator and the standard error).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypedDict

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from settings import Params, TuneConfig, replace_path, to_toml
from common.files import save_text
from trader.stats import deflated_sharpe, expected_max_sharpe
from trader.tune import Log
from trader.tune.space import budget_changes, sample_params

if TYPE_CHECKING:
    from matplotlib.axes import Axes


class Deflation(TypedDict):
    """The deflated Sharpe ratio of the best trial and what went into it (run.json's `deflated_sharpe`)."""

    deflated_sharpe: float
    n_trials: int
    """Scored trials: complete ones and pruned ones (at their last report)."""
    trials_variance: float
    """Sample variance of the scored trials' scores (annualised Sharpe ratios)."""
    expected_max_sharpe: float
    """The best score that many skill-less trials with that variance would be expected to show."""
    standard_error: float
    """Of the best trial's score, from its validation returns."""


# ---------------------------------------------------------------- progress lines

def print_flush(message: str) -> None:
    print(message, flush=True)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def format_overrides(overrides: dict[str, Any]) -> str:
    return " ".join(f"{key.split('.', 1)[-1]}={format_value(v)}" for key, v in overrides.items())


def trial_line(trial: FrozenTrial) -> str:
    """One line per finished trial: number, outcome, value, seconds, parameters."""
    seconds = trial.duration.total_seconds() if trial.duration is not None else float("nan")
    overrides = trial.user_attrs.get("overrides", trial.params)
    if trial.state == TrialState.COMPLETE:
        outcome = f"value {trial.value:+.4f}"
    elif trial.state == TrialState.PRUNED:
        last = trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None
        at = f" at evaluation {max(trial.intermediate_values)} ({last:+.4f})" if last is not None else ""
        why = " (diverged)" if str(trial.user_attrs.get("pruned_reason", "")).startswith("diverged") else ""
        outcome = f"pruned{at}{why}"
    else:
        outcome = f"{trial.state.name.lower()}: {trial.user_attrs.get('failed_reason', 'see the log above')}"
    return f"trial {trial.number:>4}  {outcome}  [{seconds:.1f} s]  {format_overrides(overrides)}"


def progress_callback(log: Log) -> Callable[[optuna.Study, FrozenTrial], None]:
    return lambda study, trial: log(trial_line(trial))


# ---------------------------------------------------------------- the search, accounted for

def scored_values(trials: list[FrozenTrial]) -> list[float]:
    """Every score the search saw: complete trials' values, pruned trials' last reported values."""
    values = []
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            values.append(float(trial.value))
        elif trial.state == TrialState.PRUNED and trial.intermediate_values:
            values.append(float(trial.intermediate_values[max(trial.intermediate_values)]))
    return [v for v in values if math.isfinite(v)]


def deflation(trials: list[FrozenTrial], best: FrozenTrial) -> Deflation | None:
    """The deflated Sharpe ratio of `best` among `trials` and what went into it; None without its error."""
    error = best.user_attrs.get("score_standard_error")
    scores = scored_values(trials)
    if error is None or not scores or best.value is None:
        return None
    variance = float(np.var(scores, ddof=1)) if len(scores) > 1 else 0.0
    return Deflation(deflated_sharpe=deflated_sharpe(best.value, error, len(scores), variance),
                     n_trials=len(scores), trials_variance=variance,
                     expected_max_sharpe=expected_max_sharpe(len(scores), variance), standard_error=float(error))


def deflation_line(figures: Deflation | None) -> str:
    if figures is None:
        return "deflated Sharpe ratio: not available (the best trial recorded no standard error)"
    return (f"deflated Sharpe ratio of the best trial: {figures['deflated_sharpe']:.4f} (P[true Sharpe > "
            f"{figures['expected_max_sharpe']:+.4f}, the best of {figures['n_trials']} scored trial(s) with score "
            f"variance {figures['trials_variance']:.4f} expected with no skill]; its score's standard error "
            f"{figures['standard_error']:.4f})")


def same_validation_bars(trials: list[FrozenTrial]) -> bool:
    """Whether every trial that recorded its validation bars was scored on the same ones."""
    seen = {json.dumps(t.user_attrs["validation_bars"], sort_keys=True) for t in trials
            if "validation_bars" in t.user_attrs}
    return len(seen) <= 1


# ---------------------------------------------------------------- best_params.toml

def best_training_overrides(trial: FrozenTrial, space: TuneConfig) -> dict[str, Any]:
    """What best_params.toml changes in the base tree: the trial's sampled values (and, full mode, its store)."""
    if "train_overrides" in trial.user_attrs:
        return dict(trial.user_attrs["train_overrides"])
    full = trial.user_attrs.get("mode") == "full"
    return sample_params(optuna.trial.FixedTrial(trial.params), space, full=full)


def best_params_header(study_name: str, best: FrozenTrial, figures: Deflation | None,
                       changes: dict[str, tuple[Any, Any]]) -> list[str]:
    """The comment lines at the top of best_params.toml: the trial, its DSR, what its budget changed."""
    lines = [f"# best trial {best.number} of study {study_name!r}: validation Sharpe {best.value:+.4f} "
             f"(annualised, net of costs)",
             "# " + deflation_line(figures)]
    if changes:
        lines.append("# the trial's training budget changed these values; this file keeps them for the final run:")
        lines += [f"#   {key} = {format_value(kept)} here; the trial trained with {format_value(trained)}"
                  for key, (kept, trained) in changes.items()]
    purge = best.user_attrs.get("train_overrides", {}).get("split.extra_embargo")
    if purge is not None:
        lines.append(f"# split.extra_embargo = {purge}: every full-mode trial store purges the embargo of the longest "
                     f"searched horizon, so all trials were scored on the same validation bars")
    return lines


def write_best_params(path: Path, params: Params, study_name: str, best: FrozenTrial,
                      figures: Deflation | None) -> Params:
    """best_params.toml: the base tree with the best trial's values, under its header; returns the tree."""
    best_params = replace_path(params, best_training_overrides(best, params.tune))
    changes = budget_changes(best_params, best.user_attrs.get("budget", {}))
    header = best_params_header(study_name, best, figures, changes)
    save_text(path, "\n".join(header) + "\n\n" + to_toml(best_params))
    return best_params


# ---------------------------------------------------------------- the summary

def summarize(study: optuna.Study, params: Params, out_dir: Path, log: Log = print_flush) -> dict[str, Any]:
    """Top-3 table, deflated Sharpe ratio, best_params.toml, trials.csv and plots; returns figures for run.json."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE and t.value is not None),
                      key=lambda t: float(t.value or 0.0), reverse=True)
    log(f"{len(trials)} trial(s) in the study: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_trials_csv(study, out_dir / "trials.csv")
    summary: dict[str, Any] = {"trials": len(trials), "states": counts,
                               "same_validation_bars": same_validation_bars(trials)}
    if not summary["same_validation_bars"]:
        log("warning: the trials were not all scored on the same validation bars (env.window moves a split's "
            "first decision bar); their scores are not strictly comparable")
    if not complete:
        log("no complete trial: no best_params.toml (see the progress lines above for why trials failed)")
        return summary
    log(top_table(complete[:3], len(trials)))
    best = complete[0]
    figures = deflation(trials, best)
    log(deflation_line(figures))
    write_best_params(out_dir / "best_params.toml", params, params.tune.study_name, best, figures)
    log(f"best: trial {best.number}, validation Sharpe {best.value:+.4f}; train with it: "
        f"python -m trader.train --params {out_dir / 'best_params.toml'}")
    summary.update(best_trial=best.number, best_value=best.value, deflated_sharpe=figures)
    write_plots(study, out_dir, len(complete), log)
    return summary


def top_table(top: list[FrozenTrial], total: int) -> str:
    """The best trials side by side, one row per parameter."""
    columns = [f"#{i} (trial {t.number})" for i, t in enumerate(top, start=1)]
    rows = [("validation Sharpe", [f"{t.value:+.4f}" for t in top]),
            ("seconds", [f"{t.duration.total_seconds():.1f}" if t.duration else "" for t in top])]
    keys = list(dict.fromkeys(k for t in top for k in t.user_attrs.get("overrides", t.params)))
    for key in keys:
        rows.append((key, [format_value(t.user_attrs.get("overrides", t.params).get(key, "")) for t in top]))
    width = max(len(name) for name, _ in rows)
    col = max(len(cell) for cell in columns + [v for _, values in rows for v in values])
    lines = [f"top {len(top)} of {total} trial(s) (objective: validation Sharpe net of costs)",
             " " * width + "".join(f"  {c:>{col}}" for c in columns)]
    lines += [f"{name:<{width}}" + "".join(f"  {v:>{col}}" for v in values) for name, values in rows]
    return "\n".join(lines)


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    frame = study.trials_dataframe(attrs=("number", "state", "value", "datetime_start", "datetime_complete",
                                          "duration", "params", "user_attrs"))
    if "duration" in frame:
        frame["duration"] = frame["duration"].dt.total_seconds()
    save_text(path, frame.to_csv(index=False))


def write_plots(study: optuna.Study, out_dir: Path, n_complete: int, log: Log) -> None:
    """history.png always; importances.png from 2 complete trials (skipped with a note otherwise)."""
    # Imported here, not at the top: matplotlib and optuna's matplotlib backend add 0.5-1.0 s to a process's
    # start (measured on the 2-core machine), and every spawned worker process imports this module but never plots.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from optuna.visualization import matplotlib as optuna_plots

    def save(axes: Axes, path: Path) -> None:
        figure = axes.figure
        assert isinstance(figure, Figure)  # optuna's plots are whole figures, not subfigures
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's ExperimentalWarning on its matplotlib backend
        save(optuna_plots.plot_optimization_history(study, target_name="validation Sharpe"), out_dir / "history.png")
        if n_complete < 2:
            log("importances.png skipped: parameter importances need at least 2 complete trials")
            return
        try:
            axes = optuna_plots.plot_param_importances(study)
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            log(f"importances.png skipped: {exc}")
            return
        save(axes, out_dir / "importances.png")
