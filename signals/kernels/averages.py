"""Moving averages: SMA, EMA, WMA, DEMA/TEMA (one EMA cascade), KAMA, Hull."""

from __future__ import annotations

import numpy as np
from numba import njit

from signals.kernels._common import _JIT, _JIT_FMA, _first_valid_nb, _nan_head_nb, _ta_is_zero_nb, _u

__all__ = ["dema_nb", "ema_nb", "hma_nb", "kama_nb", "sma_nb", "tema_nb", "wma_nb"]


@njit(**_JIT)
def sma_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average; ``talib.SMA(x, window)`` / ``Series.rolling(window).mean()``.

    Lookback ``window - 1``. Running sum updated like ta_SMA.c (add, emit, subtract).
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    if window < 1 or n - s < window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window - 1)
    total = 0.0
    for i in range(s, s + window - 1):
        total += x[i]
    for i in range(s + window - 1, n):
        total += x[i]
        out[i] = total / window
        total -= x[i - window + 1]
    return out


@njit(**_JIT_FMA)
def ema_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average; ``talib.EMA(x, window)``.

    Lookback ``window - 1``: TA-Lib seeds with the SMA of the first ``window``
    values, then ``ema = (x - ema) * k + ema`` with ``k = 2 / (window + 1)``.
    (pandas' ``ewm(span=window, adjust=False)`` seeds with the first value instead
    and differs during the first ~4*window bars.)
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    if window < 1 or n - s < window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window - 1)
    k = 2.0 / (window + 1)
    total = 0.0
    for i in range(s, s + window):
        total += x[i]
    prev = total / window
    out[s + window - 1] = prev
    for i in range(s + window, n):
        prev = (x[i] - prev) * k + prev
        out[i] = prev
    return out


@njit(**_JIT)
def wma_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Linearly weighted moving average (weights 1..window); ``talib.WMA``.

    Lookback ``window - 1``. O(n) with TA-Lib's two running sums (ta_WMA.c): the
    weighted sum loses the plain sum of the window at each step.
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    if window < 1 or n - s < window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window - 1)
    divider = float((window * (window + 1)) >> 1)
    period_sum = 0.0
    period_sub = 0.0
    for j in range(window - 1):
        v = x[s + j]
        period_sub += v
        period_sum += v * (j + 1)
    trailing_value = 0.0
    trailing_idx = s
    for i in range(s + window - 1, n):
        v = x[i]
        period_sub += v
        period_sub -= trailing_value
        period_sum += v * window
        trailing_value = x[trailing_idx]
        trailing_idx += 1
        out[i] = period_sum / divider
        period_sum -= period_sub
    return out


@njit(**_JIT_FMA)
def _ema_cascade_nb(x: np.ndarray, window: int, depth: int, mode: int) -> np.ndarray:
    """EMA of EMA (of EMA) in one pass: mode 0 DEMA, 1 TEMA, 2 TRIX.

    Each level is seeded like ``talib.EMA`` with the mean of the first ``window``
    values of the level below, so this equals chained ``ema_nb`` calls, without
    the intermediate arrays.
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    lookback = depth * (window - 1) + (1 if mode == 2 else 0)
    if window < 1 or n - s <= lookback:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + lookback)
    k = 2.0 / (window + 1)
    total = 0.0
    for i in range(s, s + window):
        total += x[i]
    e1 = total / window
    # Level 2 seed: the mean of e1 over bars s+w-1 .. s+2w-2.
    total = e1
    for i in range(s + window, s + 2 * window - 1):
        e1 = (x[i] - e1) * k + e1
        total += e1
    e2 = total / window
    start = s + 2 * window - 2
    if depth == 2:
        out[start] = 2.0 * e1 - e2
        for i in range(start + 1, n):
            e1 = (x[i] - e1) * k + e1
            e2 = (e1 - e2) * k + e2
            out[i] = 2.0 * e1 - e2
        return out
    total = e2
    for i in range(start + 1, s + 3 * window - 2):
        e1 = (x[i] - e1) * k + e1
        e2 = (e1 - e2) * k + e2
        total += e2
    e3 = total / window
    start = s + 3 * window - 3
    if mode == 1:
        # Same grouping as ta_TEMA.c: out = E3; out += 3*E1 - 3*E2.
        out[start] = e3 + (3.0 * e1 - 3.0 * e2)
        for i in range(start + 1, n):
            e1 = (x[i] - e1) * k + e1
            e2 = (e1 - e2) * k + e2
            e3 = (e2 - e3) * k + e3
            out[i] = e3 + (3.0 * e1 - 3.0 * e2)
        return out
    for i in range(start + 1, n):
        prev = e3
        e1 = (x[i] - e1) * k + e1
        e2 = (e1 - e2) * k + e2
        e3 = (e2 - e3) * k + e3
        out[i] = ((e3 / prev) - 1.0) * 100.0 if prev != 0.0 else 0.0
    return out


@njit(**_JIT)
def dema_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Double EMA ``2*EMA - EMA(EMA)``; ``talib.DEMA``. Lookback ``2 * (window - 1)``."""
    return _ema_cascade_nb(x, window, 2, 0)


@njit(**_JIT)
def tema_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Triple EMA ``3*E1 - 3*E2 + E3``; ``talib.TEMA``. Lookback ``3 * (window - 1)``."""
    return _ema_cascade_nb(x, window, 3, 1)


@njit(**_JIT_FMA)
def kama_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Kaufman adaptive moving average (fast 2, slow 30); ``talib.KAMA``.

    Lookback ``window``. Follows ta_KAMA.c, including its quirks: the efficiency
    ratio is forced to 1 when ``sum|diff| <= signed change`` or the sum is ~0, and
    the recursion starts from ``x[window-1]``.
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    if window < 1 or n - s <= window:
        return np.full(n, np.nan)
    first = s + window
    out = _nan_head_nb(n, first)
    const_max = 2.0 / (30 + 1)
    const_diff = 2.0 / (2 + 1) - const_max
    sum_roc1 = 0.0
    for i in range(s, first):
        sum_roc1 += abs(x[_u(i)] - x[_u(i + 1)])
    prev_kama = x[_u(first - 1)]
    for i in range(first, n):
        current = x[_u(i)]
        oldest = x[_u(i - window)]
        if i > first:
            # Slide the path length by one bar (the first bar uses the initial sum).
            sum_roc1 -= abs(x[_u(i - window - 1)] - oldest)
            sum_roc1 += abs(current - x[_u(i - 1)])
        period_roc = current - oldest
        if sum_roc1 <= period_roc or _ta_is_zero_nb(sum_roc1):
            er = 1.0
        else:
            er = abs(period_roc / sum_roc1)
        sc = er * const_diff + const_max
        sc *= sc
        prev_kama = (current - prev_kama) * sc + prev_kama
        out[_u(i)] = prev_kama
    return out


@njit(**_JIT)
def hma_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Hull moving average ``WMA(2*WMA(x, n//2) - WMA(x, n), floor(sqrt(n)))``.

    Not in TA-Lib; equals that composition of ``talib.WMA`` (periods clamped to >= 1).
    Lookback ``window - 1 + floor(sqrt(window)) - 1``.
    """
    half = max(window // 2, 1)
    root = max(int(np.floor(np.sqrt(window))), 1)
    raw = 2.0 * wma_nb(x, half) - wma_nb(x, window)
    return wma_nb(raw, root)
