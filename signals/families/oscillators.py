"""Families on momentum and oscillators: MACD, RSI, stochastics, %R, CCI, ROC, momentum, TRIX, efficiency."""

from __future__ import annotations

import math

import numpy as np

from signals import kernels as K
from signals.families.base import Below, Families, Ohlcv
from signals.families.transforms import (
    W_LONG,
    W_PAIR,
    W_SHORT,
    W_STAT,
    WINDOW_1,
    WINDOW_2,
    lb_window,
    lb_window_minus_1,
    safe_ratio,
    t_stat,
    vol_scaled,
    vol_window,
)

FAMILIES = Families()


def _lb_macd_hist(fast: int, slow: int, signal: int) -> int:
    return max(max(int(fast), int(slow)) - 1 + int(signal) - 1, vol_window(signal))


# A 1-bar signal EMA is the MACD line itself: the histogram would be 0.
@FAMILIES.define("macd_hist", "MACD histogram / close in random-walk units of the signal window",
                 {"fast": (5, 8, 12, 19), "slow": (13, 26, 39, 52, 78), "signal": (5, 9, 14)},
                 lookback=_lb_macd_hist, domain={"fast": WINDOW_2, "slow": WINDOW_2, "signal": WINDOW_2},
                 valid=Below("fast", "slow"))
def _macd_hist(bars: Ohlcv, fast: int, slow: int, signal: int) -> np.ndarray:
    _, _, hist = K.macd_nb(bars.close, int(fast), int(slow), int(signal))
    # The histogram is a price difference: divide by the close to get a return.
    return vol_scaled(hist / bars.close, bars.close, int(signal), 4.0)


@FAMILIES.define("rsi", "Wilder RSI / 50 - 1", {"window": W_LONG}, lookback=lb_window, domain={"window": WINDOW_2})
def _rsi(bars: Ohlcv, window: int) -> np.ndarray:
    return K.rsi_nb(bars.close, int(window)) / 50.0 - 1.0


def _lb_stoch(window: int, smooth: int) -> int:
    return int(window) - 1 + int(smooth) - 1


@FAMILIES.define("stoch", "fast stochastic %D (SMA of %K over `smooth`; 1 = raw %K) / 50 - 1",
                 {"window": W_PAIR, "smooth": (1, 3, 5)}, lookback=_lb_stoch,
                 domain={"window": WINDOW_1, "smooth": WINDOW_1})
def _stoch(bars: Ohlcv, window: int, smooth: int) -> np.ndarray:
    _, d = K.stochf_nb(bars.high, bars.low, bars.close, int(window), int(smooth))
    return d / 50.0 - 1.0


@FAMILIES.define("willr", "Williams %R / 50 + 1", {"window": W_LONG}, lookback=lb_window_minus_1,
                 domain={"window": WINDOW_1})
def _willr(bars: Ohlcv, window: int) -> np.ndarray:
    return K.willr_nb(bars.high, bars.low, bars.close, int(window)) / 50.0 + 1.0


@FAMILIES.define("cci", "tanh(CCI / 100)", {"window": W_STAT}, lookback=lb_window_minus_1,
                 domain={"window": WINDOW_2})
def _cci(bars: Ohlcv, window: int) -> np.ndarray:
    # |CCI| > 100 is the classic "extreme"; tanh(1) ~ 0.76 there.
    return np.tanh(K.cci_nb(bars.high, bars.low, bars.close, int(window)) / 100.0)


def _lb_roc(window: int) -> int:
    return max(int(window), vol_window(window))


@FAMILIES.define("roc", "log rate of change over the window in random-walk units",
                 {"window": W_LONG}, lookback=_lb_roc, domain={"window": WINDOW_1})
def _roc(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    log_change = np.log1p(K.roc_nb(bars.close, w) / 100.0)
    return vol_scaled(log_change, bars.close, w, 1.0)


@FAMILIES.define("mom", "momentum / (ATR sqrt(w)), squashed", {"window": W_LONG}, lookback=lb_window,
                 domain={"window": WINDOW_1})
def _mom(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    atr = K.atr_nb(bars.high, bars.low, bars.close, w)
    # Price change in units of the range a random walk covers in w bars.
    return np.tanh(safe_ratio(K.mom_nb(bars.close, w), atr * math.sqrt(w)))


def _lb_trix(window: int) -> int:
    return max(3 * (int(window) - 1) + 1, vol_window(window))


@FAMILIES.define("trix", "TRIX (1-bar change of the triple EMA) times w, in sigma units",
                 {"window": W_SHORT}, lookback=_lb_trix, domain={"window": WINDOW_1})
def _trix(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    # TRIX is the one-bar % change of a triple EMA: in sigma units, scaled by sqrt(w).
    return vol_scaled(K.trix_nb(bars.close, w) / 100.0 * w, bars.close, w, 1.0)


@FAMILIES.define("efficiency_ratio",
                 "tanh(sqrt(w) ER): signed Kaufman efficiency ratio (net change / path length)",
                 {"window": W_LONG}, lookback=lb_window, domain={"window": WINDOW_1})
def _efficiency_ratio(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return t_stat(K.efficiency_ratio_nb(bars.close, w), w)
