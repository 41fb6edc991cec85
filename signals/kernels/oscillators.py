"""Momentum and oscillators: MACD, RSI, stochastics, Williams %R, CCI, ROC, momentum, TRIX,
efficiency ratio.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from signals.kernels._common import (
    _JIT,
    _JIT_FMA,
    _first_valid3_nb,
    _first_valid_nb,
    _nan_head_nb,
    _ta_is_zero_nb,
    _u,
)
from signals.kernels.averages import _ema_cascade_nb, sma_nb

__all__ = [
    "cci_nb", "efficiency_ratio_nb", "macd_nb", "mom_nb", "roc_nb", "rsi_nb", "stoch_nb", "stochf_nb", "trix_nb",
    "willr_nb",
]


@njit(**_JIT_FMA)
def macd_nb(
    x: np.ndarray, fast: int, slow: int, signal: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram; ``talib.MACD(x, fast, slow, signal)``.

    Lookback ``slow - 1 + signal - 1`` for all three outputs (TA-Lib trims the MACD
    line to the signal's start too). As in ta_MACD.c, both EMAs start at bar
    ``slow - 1``: the fast EMA is seeded with the mean of the ``fast`` bars ending
    there, not at bar ``fast - 1`` like ``talib.EMA`` would. ``fast > slow`` is swapped.
    """
    n = x.shape[0]
    if slow < fast:
        fast, slow = slow, fast
    s = _first_valid_nb(x)
    lookback = (slow - 1) + (signal - 1)
    if fast < 1 or signal < 1 or n - s <= lookback:
        return np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    first = s + lookback
    line = _nan_head_nb(n, first)
    sig = _nan_head_nb(n, first)
    hist = _nan_head_nb(n, first)
    start = s + slow - 1
    k_fast = 2.0 / (fast + 1)
    k_slow = 2.0 / (slow + 1)
    k_sig = 2.0 / (signal + 1)
    total = 0.0
    for i in range(s, start + 1):
        total += x[_u(i)]
    e_slow = total / slow
    total = 0.0
    for i in range(start - fast + 1, start + 1):
        total += x[_u(i)]
    e_fast = total / fast
    # The signal EMA is seeded with the mean of the first `signal` MACD values.
    sig_total = e_fast - e_slow
    for i in range(start + 1, first + 1):
        v = x[_u(i)]
        e_fast = (v - e_fast) * k_fast + e_fast
        e_slow = (v - e_slow) * k_slow + e_slow
        sig_total += e_fast - e_slow
    e_sig = sig_total / signal
    m = e_fast - e_slow
    line[_u(first)] = m
    sig[_u(first)] = e_sig
    hist[_u(first)] = m - e_sig
    for i in range(first + 1, n):
        v = x[_u(i)]
        e_fast = (v - e_fast) * k_fast + e_fast
        e_slow = (v - e_slow) * k_slow + e_slow
        m = e_fast - e_slow
        e_sig = (m - e_sig) * k_sig + e_sig
        line[_u(i)] = m
        sig[_u(i)] = e_sig
        hist[_u(i)] = m - e_sig
    return line, sig, hist


@njit(**_JIT_FMA)
def rsi_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Wilder's relative strength index in [0, 100]; ``talib.RSI``.

    Lookback ``window``: the first value averages the first ``window`` gains and
    losses, then Wilder smoothing ``avg = (avg * (n-1) + new) / n`` (ta_RSI.c).
    0 where gains + losses are ~0 (TA_IS_ZERO), as TA-Lib.
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    if window < 1 or n - s <= window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window)
    gain = 0.0
    loss = 0.0
    for i in range(s + 1, s + window + 1):
        diff = x[i] - x[i - 1]
        gain += diff if diff > 0.0 else 0.0
        loss -= diff if diff < 0.0 else 0.0
    gain /= window
    loss /= window
    total = gain + loss
    out[s + window] = 0.0 if _ta_is_zero_nb(total) else 100.0 * (gain / total)
    keep = (window - 1) / window
    inv = 1.0 / window
    for i in range(s + window + 1, n):
        diff = x[i] - x[i - 1]
        gain = gain * keep + (diff if diff > 0.0 else 0.0) * inv
        loss = loss * keep - (diff if diff < 0.0 else 0.0) * inv
        total = gain + loss
        out[i] = 0.0 if _ta_is_zero_nb(total) else 100.0 * (gain / total)
    return out


@njit(**_JIT)
def _range_position_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int, willr: bool
) -> np.ndarray:
    """Close within the rolling high-low range: raw stochastic %K or Williams %R.

    %K = 100 * (c - LL) / (HH - LL) (ta_STOCH.c), %R = -100 * (HH - c) / (HH - LL)
    (ta_WILLR.c), 0 on a flat range; lookback ``window - 1``. HH and LL come from
    one fused van Herk pass (see ``_rolling_extreme_nb``) with no temporary arrays.
    """
    n = close.shape[0]
    s = _first_valid3_nb(high, low, close)
    if window < 1 or n - s < window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window - 1)
    suf_hi = np.full(window + 1, -np.inf)
    suf_lo = np.full(window + 1, np.inf)
    first = s + window - 1
    b = s
    while b < n:
        size = min(window, n - b)
        pre_hi = -np.inf
        pre_lo = np.inf
        for j in range(size):
            v = high[b + j]
            pre_hi = v if v > pre_hi else pre_hi
            v = low[b + j]
            pre_lo = v if v < pre_lo else pre_lo
            if b + j >= first:
                hh = suf_hi[j + 1]
                hh = hh if hh > pre_hi else pre_hi
                ll = suf_lo[j + 1]
                ll = ll if ll < pre_lo else pre_lo
                rng = hh - ll
                if rng == 0.0:
                    out[b + j] = 0.0
                elif willr:
                    out[b + j] = -100.0 * ((hh - close[b + j]) / rng)
                else:
                    out[b + j] = 100.0 * ((close[b + j] - ll) / rng)
        m_hi = -np.inf
        m_lo = np.inf
        for jj in range(size):
            j = size - 1 - jj
            v = high[b + j]
            m_hi = v if v > m_hi else m_hi
            suf_hi[j] = m_hi
            v = low[b + j]
            m_lo = v if v < m_lo else m_lo
            suf_lo[j] = m_lo
        b += size
    return out


@njit(**_JIT)
def stochf_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, fastk: int, fastd: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fast stochastic (%K, %D = SMA(%K, fastd)); ``talib.STOCHF(..., fastd_matype=0)``.

    Lookback ``fastk - 1 + fastd - 1`` for both lines (TA-Lib trims %K to %D's start).
    """
    k = _range_position_nb(high, low, close, fastk, False)
    d = sma_nb(k, fastd)
    s = _first_valid3_nb(high, low, close)
    k[: min(s + fastk - 1 + fastd - 1, k.shape[0])] = np.nan
    return k, d


@njit(**_JIT)
def stoch_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, fastk: int, slowk: int, slowd: int
) -> tuple[np.ndarray, np.ndarray]:
    """Slow stochastic (%K = SMA(raw %K, slowk), %D = SMA(%K, slowd)); ``talib.STOCH`` (SMA types).

    Lookback ``fastk - 1 + slowk - 1 + slowd - 1`` for both lines, like TA-Lib.
    """
    k = sma_nb(_range_position_nb(high, low, close, fastk, False), slowk)
    d = sma_nb(k, slowd)
    s = _first_valid3_nb(high, low, close)
    k[: min(s + fastk - 1 + slowk - 1 + slowd - 1, k.shape[0])] = np.nan
    return k, d


@njit(**_JIT)
def willr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Williams %R in [-100, 0]; ``talib.WILLR``. Lookback ``window - 1``; 0 on a flat range."""
    return _range_position_nb(high, low, close, window, True)


@njit(**_JIT)
def cci_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Commodity channel index; ``talib.CCI``. Lookback ``window - 1``.

    Typical price ``(h+l+c)/3``; CCI = (tp - mean) / (0.015 * mean|tp - mean|), 0 when
    either factor is 0. The mean absolute deviation around the *current* mean has no
    O(1) update, so this kernel (like TA-Lib) is O(n * window); the mean is a running
    sum (re-summed every ``window`` bars), which saves one of TA-Lib's two inner loops.
    """
    n = close.shape[0]
    s = _first_valid3_nb(high, low, close)
    if window < 1 or n - s < window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window - 1)
    tp = np.empty(n)
    for i in range(s, n):
        tp[i] = (high[i] + low[i] + close[i]) / 3
    total = 0.0
    since = window  # bars since the last exact re-sum
    for i in range(s + window - 1, n):
        if since == window:
            since = 0
            total = 0.0
            for j in range(i - window + 1, i + 1):
                total += tp[j]
        else:
            total += tp[i] - tp[i - window]
        since += 1
        mean = total / window
        mad = 0.0
        for j in range(i - window + 1, i + 1):
            mad += abs(tp[j] - mean)
        dev = tp[i] - mean
        out[i] = dev / (0.015 * (mad / window)) if dev != 0.0 and mad != 0.0 else 0.0
    return out


@njit(**_JIT)
def roc_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Rate of change in percent ``(x / x[t-n] - 1) * 100``; ``talib.ROC``.

    Lookback ``window``; 0 where ``x[t-n] == 0`` (TA-Lib).
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    out = _nan_head_nb(n, s + window)
    for i in range(s + window, n):
        prev = x[i - window]
        out[i] = ((x[i] / prev) - 1.0) * 100.0 if prev != 0.0 else 0.0
    return out


@njit(**_JIT)
def mom_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Momentum ``x - x[t-n]``; ``talib.MOM``. Lookback ``window``."""
    n = x.shape[0]
    s = _first_valid_nb(x)
    out = _nan_head_nb(n, s + window)
    for i in range(s + window, n):
        out[i] = x[i] - x[i - window]
    return out


@njit(**_JIT)
def trix_nb(x: np.ndarray, window: int) -> np.ndarray:
    """TRIX: one-bar ROC (percent) of the triple EMA; ``talib.TRIX``.

    Lookback ``3 * (window - 1) + 1``; 0 where the previous triple EMA is 0.
    """
    return _ema_cascade_nb(x, window, 3, 2)


@njit(**_JIT)
def efficiency_ratio_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Signed Kaufman efficiency ratio ``(x - x[t-n]) / sum(|diff|, n)`` in [-1, 1].

    Not a TA-Lib function (KAMA uses it unsigned); equals
    ``s.diff(n) / s.diff().abs().rolling(n).sum()`` in pandas, with 0 where the
    path length is 0. Lookback ``window``. The running sum is re-summed every
    ``window`` bars so rounding cannot drift over long series.
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    if window < 1 or n - s <= window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window)
    path = 0.0
    since = window
    for i in range(s + window, n):
        if since == window:
            since = 0
            path = 0.0
            for j in range(i - window + 1, i + 1):
                path += abs(x[j] - x[j - 1])
        else:
            path += abs(x[i] - x[i - 1]) - abs(x[i - window] - x[i - window - 1])
        since += 1
        change = x[i] - x[i - window]
        out[i] = change / path if path > 0.0 else 0.0
    return out
