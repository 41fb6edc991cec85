"""Families on candle shapes: the body and the wicks of each bar as fractions of its range, smoothed."""

from __future__ import annotations

import numpy as np

from signals import kernels as K
from signals.families.base import Families, Ohlcv
from signals.families.transforms import W_CANDLE, WINDOW_1, lb_window_minus_1, safe_ratio, t_stat

FAMILIES = Families()

# A wick takes about a quarter of a random-walk bar's range (sd ~0.2 per bar).
_WICK_BASE = 0.25
_WICK_GAIN = 2.5


def _candle_parts(bars: Ohlcv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body (signed), upper wick and lower wick as fractions of the bar's range (0 if h == l)."""
    rng = bars.high - bars.low
    body = safe_ratio(bars.close - bars.open, rng)
    upper = safe_ratio(bars.high - np.maximum(bars.open, bars.close), rng)
    lower = safe_ratio(np.minimum(bars.open, bars.close) - bars.low, rng)
    return body, upper, lower


@FAMILIES.define("candle_body", "tanh(sqrt(w) mean signed body (close - open) / (high - low))",
                 {"window": W_CANDLE}, lookback=lb_window_minus_1, domain={"window": WINDOW_1})
def _candle_body(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return t_stat(K.sma_nb(_candle_parts(bars)[0], w), w)


@FAMILIES.define("candle_upper_wick", "tanh(2.5 sqrt(w) (mean upper wick / range - 0.25))",
                 {"window": W_CANDLE}, lookback=lb_window_minus_1, domain={"window": WINDOW_1})
def _candle_upper_wick(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return t_stat(_WICK_GAIN * (K.sma_nb(_candle_parts(bars)[1], w) - _WICK_BASE), w)


@FAMILIES.define("candle_lower_wick", "tanh(2.5 sqrt(w) (mean lower wick / range - 0.25))",
                 {"window": W_CANDLE}, lookback=lb_window_minus_1, domain={"window": WINDOW_1})
def _candle_lower_wick(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return t_stat(_WICK_GAIN * (K.sma_nb(_candle_parts(bars)[2], w) - _WICK_BASE), w)
