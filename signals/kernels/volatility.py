"""Volatility, bands and channels: true range, ATR/NATR, Bollinger, Keltner, Donchian."""

from __future__ import annotations

import numpy as np
from numba import njit

from signals.kernels._common import _JIT, _JIT_FMA, _first_valid3_nb, _nan_head_nb, _true_range_nb, _u
from signals.kernels.stats import _rolling_moments_nb, rolling_max_nb, rolling_min_nb

__all__ = ["atr_nb", "bollinger_nb", "donchian_nb", "keltner_nb", "natr_nb", "trange_nb"]


@njit(**_JIT)
def trange_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range; ``talib.TRANGE``. Lookback 1 (needs the previous close)."""
    n = close.shape[0]
    s = _first_valid3_nb(high, low, close)
    out = _nan_head_nb(n, s + 1)
    for i in range(s + 1, n):
        out[i] = _true_range_nb(high[i], low[i], close[i - 1])
    return out


@njit(**_JIT_FMA)
def _atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int, normalise: bool) -> np.ndarray:
    """ATR (or NATR when ``normalise``) in one pass; see ``atr_nb``."""
    n = close.shape[0]
    s = _first_valid3_nb(high, low, close)
    if window == 1 and not normalise:
        return trange_nb(high, low, close)
    if window < 1 or n - s <= window:
        return np.full(n, np.nan)
    first = s + window
    out = _nan_head_nb(n, first)
    total = 0.0
    for i in range(s + 1, first + 1):
        total += _true_range_nb(high[_u(i)], low[_u(i)], close[_u(i - 1)])
    atr = total / window
    keep = (window - 1) / window
    inv = 1.0 / window
    c = close[_u(first)]
    if normalise:
        out[_u(first)] = (atr / c) * 100.0 if c != 0.0 else 0.0
        for i in range(first + 1, n):
            prev_c = c
            c = close[_u(i)]
            atr = atr * keep + _true_range_nb(high[_u(i)], low[_u(i)], prev_c) * inv
            out[_u(i)] = (atr / c) * 100.0 if c != 0.0 else 0.0
    else:
        out[_u(first)] = atr
        for i in range(first + 1, n):
            prev_c = c
            c = close[_u(i)]
            atr = atr * keep + _true_range_nb(high[_u(i)], low[_u(i)], prev_c) * inv
            out[_u(i)] = atr
    return out


@njit(**_JIT)
def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Wilder's average true range; ``talib.ATR``.

    Lookback ``window``: seeded with the mean of the first ``window`` true ranges
    (bars 1..window), then ``atr = (atr * (n-1) + tr) / n`` (ta_ATR.c).
    ``window == 1`` returns the true range, as TA-Lib.
    """
    return _atr_nb(high, low, close, window, False)


@njit(**_JIT)
def natr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Normalised ATR ``atr / close * 100``; ``talib.NATR``. Lookback ``window``; 0 where close is 0."""
    return _atr_nb(high, low, close, window, True)


@njit(**_JIT)
def bollinger_nb(
    x: np.ndarray, window: int, nbdev_up: float, nbdev_dn: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands (upper, middle, lower); ``talib.BBANDS(x, window, up, dn, matype=0)``.

    Lookback ``window - 1``; middle = rolling mean, bands = middle +- nbdev * population
    std (ddof=0, like TA-Lib), from the stable sums of ``_rolling_moments_nb``.
    """
    return _rolling_moments_nb(x, window, 0, 3, nbdev_up, nbdev_dn)


@njit(**_JIT_FMA)
def keltner_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int, mult: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keltner channel (upper, middle, lower): ``EMA(close, n) +- mult * ATR(n)``.

    Not in TA-Lib; equals ``talib.EMA`` and ``talib.ATR`` combined. Lookback
    ``window`` for all three lines (ATR's; the EMA alone would start a bar earlier).
    ``window >= 2``. EMA and ATR recursions run in one fused pass.
    """
    n = close.shape[0]
    s = _first_valid3_nb(high, low, close)
    if window < 2 or n - s <= window:
        return np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    upper = _nan_head_nb(n, s + window)
    mid = _nan_head_nb(n, s + window)
    lower = _nan_head_nb(n, s + window)
    k = 2.0 / (window + 1)
    total = 0.0
    for i in range(s, s + window):
        total += close[i]
    ema = total / window
    total = 0.0
    for i in range(s + 1, s + window + 1):
        total += _true_range_nb(high[i], low[i], close[i - 1])
    atr = total / window
    keep = (window - 1) / window
    inv = 1.0 / window
    for i in range(s + window, n):
        ema = (close[i] - ema) * k + ema
        if i > s + window:
            atr = atr * keep + _true_range_nb(high[i], low[i], close[i - 1]) * inv
        band = mult * atr
        mid[i] = ema
        upper[i] = ema + band
        lower[i] = ema - band
    return upper, mid, lower


@njit(**_JIT)
def donchian_nb(high: np.ndarray, low: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Donchian channel (upper = rolling max of high, lower = rolling min of low).

    ``talib.MAX(high, n)``, ``talib.MIN(low, n)``. Lookback ``window - 1``.
    """
    return rolling_max_nb(high, window), rolling_min_nb(low, window)
