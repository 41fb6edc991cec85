"""Families on moving averages: the close against an average, and two averages against each other."""

from __future__ import annotations

import math

import numpy as np

from signals import kernels as K
from signals.families.base import Below, Families, Ohlcv, Whole
from signals.families.transforms import W_LONG, W_SHORT, W_TREND, WINDOW_2, lb_vol, ma_dist, vol_scaled, vol_window

FAMILIES = Families()


@FAMILIES.define("sma_dist", "tanh(2 log(close/SMA) / (sigma sqrt(w))): close versus its simple moving average",
                 {"window": W_TREND}, lookback=lb_vol, domain={"window": WINDOW_2})
def _sma_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return ma_dist(bars, K.sma_nb(bars.close, int(window)), int(window))


@FAMILIES.define("ema_dist", "close versus its EMA (TA-Lib seeding), in random-walk units of the window",
                 {"window": W_TREND}, lookback=lb_vol, domain={"window": WINDOW_2})
def _ema_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return ma_dist(bars, K.ema_nb(bars.close, int(window)), int(window))


@FAMILIES.define("wma_dist", "close versus its linearly weighted moving average",
                 {"window": W_LONG}, lookback=lb_vol, domain={"window": WINDOW_2})
def _wma_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return ma_dist(bars, K.wma_nb(bars.close, int(window)), int(window))


def _lb_dema_dist(window: int) -> int:
    return max(2 * (int(window) - 1), vol_window(window))


@FAMILIES.define("dema_dist", "close versus its double EMA", {"window": W_SHORT}, lookback=_lb_dema_dist,
                 domain={"window": WINDOW_2})
def _dema_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return ma_dist(bars, K.dema_nb(bars.close, int(window)), int(window))


def _lb_tema_dist(window: int) -> int:
    return max(3 * (int(window) - 1), vol_window(window))


@FAMILIES.define("tema_dist", "close versus its triple EMA", {"window": W_SHORT}, lookback=_lb_tema_dist,
                 domain={"window": WINDOW_2})
def _tema_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return ma_dist(bars, K.tema_nb(bars.close, int(window)), int(window))


def _lb_kama_dist(window: int) -> int:
    return max(int(window), vol_window(window))


@FAMILIES.define("kama_dist", "close versus Kaufman's adaptive moving average",
                 {"window": W_LONG}, lookback=_lb_kama_dist, domain={"window": WINDOW_2})
def _kama_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return ma_dist(bars, K.kama_nb(bars.close, int(window)), int(window))


def _lb_hma_dist(window: int) -> int:
    w = int(window)
    return max(w - 1 + max(int(math.isqrt(w)), 1) - 1, vol_window(w))


@FAMILIES.define("hma_dist", "close versus the Hull moving average", {"window": W_LONG}, lookback=_lb_hma_dist,
                 domain={"window": WINDOW_2})
def _hma_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return ma_dist(bars, K.hma_nb(bars.close, int(window)), int(window))


def _lb_ma_cross(fast: int, slow: int) -> int:
    return max(int(slow) - 1, int(fast) - 1, vol_window(slow))


# fast = 1 is the close itself: close against the slow EMA, still a signal.
@FAMILIES.define("ma_cross", "log(EMA fast / EMA slow) in random-walk units of the slow window",
                 {"fast": (2, 3, 5, 8, 13, 21, 34, 55), "slow": (5, 8, 13, 21, 34, 55, 89, 120)},
                 lookback=_lb_ma_cross, domain={"fast": Whole(1), "slow": WINDOW_2}, valid=Below("fast", "slow"))
def _ma_cross(bars: Ohlcv, fast: int, slow: int) -> np.ndarray:
    fast_ma = K.ema_nb(bars.close, int(fast))
    slow_ma = K.ema_nb(bars.close, int(slow))
    return vol_scaled(np.log(fast_ma / slow_ma), bars.close, int(slow), 2.0)
