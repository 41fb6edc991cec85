"""Families on return and price statistics: volatility ratio, up-bar majority, autocorrelation,
range position, z-score, drawdown."""

from __future__ import annotations

import numpy as np

from signals import kernels as K
from signals.families.base import Below, Families, Ohlcv
from signals.families.transforms import (
    EPS,
    W_LONG,
    W_STAT,
    WINDOW_1,
    WINDOW_2,
    lb_vol,
    lb_window,
    lb_window_minus_1,
    range_pos,
    t_stat,
    vol_scaled,
)

FAMILIES = Families()


def _lb_volatility(short: int, long: int) -> int:
    return max(int(short), int(long))


# A std of one return is 0: both windows need two returns.
@FAMILIES.define("volatility", "tanh(2 log(std short / std long)) of one-bar log returns",
                 {"short": (3, 5, 8, 13, 21, 34, 55), "long": (10, 20, 40, 60, 90, 120)}, lookback=_lb_volatility,
                 domain={"short": WINDOW_2, "long": WINDOW_2}, valid=Below("short", "long"))
def _volatility(bars: Ohlcv, short: int, long: int) -> np.ndarray:
    r = K.log_returns_nb(bars.close)
    s = K.rolling_std_nb(r, int(short), 0)
    lng = K.rolling_std_nb(r, int(long), 0)
    return np.tanh(2.0 * np.log((s + EPS) / (lng + EPS)))


@FAMILIES.define("up_fraction", "tanh(sqrt(w) mean sign of the one-bar returns): up-bar majority",
                 {"window": W_LONG}, lookback=lb_window, domain={"window": WINDOW_1})
def _up_fraction(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return t_stat(K.sma_nb(np.sign(K.log_returns_nb(bars.close)), w), w)


def _lb_return_autocorr(window: int) -> int:
    return int(window) + 1


@FAMILIES.define("return_autocorr", "tanh(sqrt(w) rolling correlation of consecutive one-bar returns)",
                 {"window": W_STAT}, lookback=_lb_return_autocorr, domain={"window": WINDOW_2})
def _return_autocorr(bars: Ohlcv, window: int) -> np.ndarray:
    r = K.log_returns_nb(bars.close)
    lagged = np.concatenate(([np.nan], r[:-1]))
    w = int(window)
    return t_stat(K.rolling_corr_nb(r, lagged, w), w)


@FAMILIES.define("price_range_pos", "position of the close in its own rolling close range, in [-1, 1]",
                 {"window": W_STAT}, lookback=lb_window_minus_1, domain={"window": WINDOW_2})
def _price_range_pos(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return range_pos(bars.close, K.rolling_max_nb(bars.close, w), K.rolling_min_nb(bars.close, w))


@FAMILIES.define("zscore", "tanh(z / 2) of the close against its rolling mean and std",
                 {"window": W_STAT}, lookback=lb_window_minus_1, domain={"window": WINDOW_2})
def _zscore(bars: Ohlcv, window: int) -> np.ndarray:
    return np.tanh(K.zscore_nb(bars.close, int(window)) / 2.0)


@FAMILIES.define("drawdown", "log(close / rolling max close) in random-walk units, in [-1, 0]",
                 {"window": W_LONG}, lookback=lb_vol, domain={"window": WINDOW_2})
def _drawdown(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    peak = K.rolling_max_nb(bars.close, w)
    # In [-1, 0]: the fall from the trailing peak in random-walk units.
    return vol_scaled(np.log(bars.close / peak), bars.close, w, 1.0)
