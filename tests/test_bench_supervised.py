"""benchmarks/bench_supervised.py: its regime detectors read only the past and see the planted reversion, and
its positions hold between crossings of the threshold."""

from __future__ import annotations

import numpy as np

from benchmarks.bench_supervised import held_positions, regime_detectors
from benchmarks.markets import make_market


def test_the_detectors_read_only_the_past_and_see_reversion_but_not_a_drift() -> None:
    close = make_market("reversion", seed=1, n=6000).close
    t = 4000
    changed = close.copy()
    changed[t + 1:] *= 1.05
    np.testing.assert_array_equal(regime_detectors(close)[:t + 1], regime_detectors(changed)[:t + 1])
    reverting = np.nanmean(regime_detectors(close)[1000:], axis=0)
    drifting = np.nanmean(regime_detectors(make_market("trend", seed=1, n=6000).close)[1000:], axis=0)
    assert (reverting < drifting - 0.3).all(), (reverting, drifting)


def test_positions_hold_until_the_other_threshold_is_crossed() -> None:
    prediction = np.array([0.0, 0.5, 2.0, 0.5, -0.5, -2.0, 0.0, 1.5])
    np.testing.assert_array_equal(held_positions(prediction, 1.0), [0, 0, 1, 1, 1, -1, -1, 1])
    np.testing.assert_array_equal(held_positions(prediction, 0.0), [0, 1, 1, 1, -1, -1, -1, 1])
