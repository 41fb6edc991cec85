"""benchmarks/bench_selection.py: its rules read the bootstrap draws at their level, the default's form is
trader.selection.choose's, and a candidate that loses on the mirror images never trades."""

from __future__ import annotations

import numpy as np

from benchmarks.bench_selection import RULES, Validation, intervals_rule
from trader import bootstrap
from trader.selection import choose


def _validation(centre: float, paired_centre: float, mirror: float) -> Validation:
    rng = np.random.default_rng(0)
    draws, paired = rng.normal(centre, 1.0, 4000), rng.normal(paired_centre, 1.0, 4000)
    return Validation(centre, draws, paired_centre, paired, mirror)


def test_a_looser_level_trades_where_the_default_does_not() -> None:
    edge = _validation(1.2, 1.2, 0.5)  # lower ends: 90 % about -0.4, 60 % about +0.4
    assert not intervals_rule(0.9)(edge) and intervals_rule(0.6)(edge)
    assert intervals_rule(0.9)(_validation(2.0, 2.0, 0.5))
    assert not any(rule(_validation(3.0, 3.0, -0.1)) for rule in RULES.values())  # loses on the mirror images


def test_paired_only_rules_ignore_the_raw_interval() -> None:
    biased = _validation(-1.0, 2.5, 0.5)
    assert intervals_rule(0.9, raw=False)(biased) and not intervals_rule(0.9)(biased)


def test_the_default_rule_is_trader_selection_s_choice() -> None:
    for centre, paired, mirror in [(2.0, 2.0, 0.5), (1.2, 2.0, 0.5), (2.0, 1.2, 0.5), (3.0, 3.0, -0.1)]:
        v = _validation(centre, paired, mirror)
        summary = {"interval_level": bootstrap.LEVEL,
                   "agent": {"sharpe": v.sharpe, "sharpe_interval": list(bootstrap.interval(v.draws))}}
        figure = (v.paired_sharpe, bootstrap.interval(v.paired_draws))
        expected = choose(summary, True, figure, mirror_sharpe=v.mirror_sharpe)[0] == "model"
        assert RULES["default (trader.selection)"](v) == expected, (centre, paired, mirror)
