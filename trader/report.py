"""The out-of-sample report: report.json, equity.png and the table printed at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from common.files import save_json
from trader.metrics import drawdown_series

TABLE_COLUMNS = (("total_return", "total", "{:+.2%}"), ("annualised_return", "annual", "{:+.2%}"),
                 ("sharpe", "sharpe", "{:+.2f}"), ("sortino", "sortino", "{:+.2f}"),
                 ("max_drawdown", "max dd", "{:.2%}"), ("trades", "trades", "{:.0f}"),
                 ("turnover", "turnover", "{:.3f}"), ("hit_rate", "hit", "{:.1%}"), ("costs_paid", "costs", "{:.4f}"))


def format_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """One line per strategy, the metrics as columns."""
    width = max(len(name) for name in rows) + 2
    header = f"{'':<{width}}" + "".join(f"{title:>10}" for _, title, _ in TABLE_COLUMNS)
    lines = [header]
    for name, metrics in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{fmt.format(metrics[key]):>10}" for key, _, fmt in TABLE_COLUMNS))
    return "\n".join(lines)


def table_rows(split_report: Mapping[str, Any]) -> dict[str, Mapping[str, float]]:
    flat = "not_selected" in split_report
    rows: dict[str, Mapping[str, float]] = {"agent (flat: selected)" if flat else "agent": split_report["agent"]}
    rows.update({f"{name} (baseline)": m for name, m in split_report["baselines"].items()})
    costs = split_report["not_selected"]["agent_costs"] if flat else split_report["agent_costs"]
    if flat:
        rows["best checkpoint (not selected)"] = split_report["not_selected"]["agent"]
    label = "best checkpoint" if flat else "agent"
    rows.update({f"{label} at {k} costs": m for k, m in costs.items() if k != "1x"})
    return rows


def interval_lines(split_report: Mapping[str, Any]) -> list[str]:
    """The Sharpe intervals and the agent's chances against buy-and-hold and flat, in words."""
    if "agent_beats" not in split_report:
        return []
    level = split_report["interval_level"]
    items = [("agent", split_report["agent"])] + list(split_report["baselines"].items())
    lines = [f"Sharpe {level:.0%} intervals (stationary bootstrap): " + ", ".join(
        f"{name} [{m['sharpe_interval'][0]:+.2f}, {m['sharpe_interval'][1]:+.2f}]" for name, m in items)]
    beats = split_report["agent_beats"]
    lines.append(f"P(agent's Sharpe > buy_and_hold's) = {beats['buy_and_hold']:.2f}, "
                 f"P(> flat's) = {beats['flat']:.2f}; an interval that spans 0 is no evidence of an edge")
    return lines


def plot_equity(path: Path, curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], title: str) -> None:
    """Per symbol: equity of every strategy over the split, and the agent's drawdown beneath.

    curves: {symbol: {strategy: (timestamps_ns, equity)}}.
    """
    # Imported here, not at the top: matplotlib takes about 0.8 s to import (measured on the 2-core machine),
    # and trader.evaluate, which every tuning trial's process imports, imports this module but never plots there.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    symbols = list(curves)
    fig, axes = plt.subplots(2, len(symbols), figsize=(7 * len(symbols), 6), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]}, sharex="col")
    for col, symbol in enumerate(symbols):
        top, bottom = axes[0, col], axes[1, col]
        for name, (times, equity) in curves[symbol].items():
            when = times.astype("datetime64[ns]")
            top.plot(when, equity, label=name, linewidth=2.0 if name == "agent" else 1.0)
            if name == "agent":
                bottom.fill_between(when, drawdown_series(equity), 0.0, color="tab:red", alpha=0.4)
        top.set_title(f"{symbol}: {title}")
        top.set_ylabel("equity")
        top.legend(fontsize=8)
        top.grid(alpha=0.3)
        bottom.set_ylabel("agent drawdown")
        bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(run_dir: Path, report: Mapping[str, Any], curves: Mapping[str, Mapping[str, Any]],
                 log: Callable[[str], None] = print, name: str = "report.json") -> None:
    """Write a finished report (trader.evaluate.evaluate_run's) as `name` and its equity plot, print the table.

    Pure rendering: the report and its curves ({symbol: {strategy: (timestamps_ns, equity)}}) are given.
    """
    split = report["split"]
    save_json(run_dir / name, report)
    plot_equity(run_dir / ("equity.png" if split == "test" else f"equity_{split}.png"), curves,
                f"{split} split, {report['model']}")
    log(f"\n{split} split ({', '.join(report['symbols'])}; metrics averaged over symbols; "
        f"costs {report['costs_bps']:g} bps per unit traded):")
    log(format_table(table_rows(report[split])))
    for line in interval_lines(report[split]):
        log(line)
    log(f"selected policy: {report['model']} ({report['selection_reason']})")
    log(f"report: {run_dir / name}")
