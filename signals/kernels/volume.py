"""Volume: OBV, money flow index, rolling VWAP, accumulation/distribution, Chaikin oscillator."""

from __future__ import annotations

import numpy as np
from numba import njit

from signals.kernels._common import _JIT, _JIT_FMA, _first_valid3_nb, _first_valid_nb, _nan_head_nb
from signals.kernels.stats import rolling_sum_nb

__all__ = ["ad_nb", "adosc_nb", "mfi_nb", "obv_nb", "vwap_nb"]


@njit(**_JIT)
def obv_nb(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """On-balance volume; ``talib.OBV``. Lookback 0: starts at the first bar's volume."""
    n = close.shape[0]
    s = max(_first_valid_nb(close), _first_valid_nb(volume))
    out = _nan_head_nb(n, s)
    if s >= n:
        return out
    obv = volume[s]
    out[s] = obv
    for i in range(s + 1, n):
        # Branch-free sign: +v, -v or +0 (exact, so the sum is TA-Lib's).
        direction = (1.0 if close[i] > close[i - 1] else 0.0) - (1.0 if close[i] < close[i - 1] else 0.0)
        obv += direction * volume[i]
        out[i] = obv
    return out


@njit(**_JIT)
def mfi_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, window: int
) -> np.ndarray:
    """Money flow index in [0, 100]; ``talib.MFI``. Lookback ``window``.

    Flows ``tp * volume`` are positive/negative when the typical price rises/falls
    (neither when equal). As in ta_MFI.c the result is 0 when the summed flow is
    below 1.0 (an absolute threshold: rescaled tiny volumes would read as 0).
    """
    n = close.shape[0]
    s = max(_first_valid3_nb(high, low, close), _first_valid_nb(volume))
    if window < 1 or n - s <= window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window)
    pos = np.zeros(window)  # ring buffers of the last `window` flows
    neg = np.zeros(window)
    slot = 0
    prev_tp = (high[s] + low[s] + close[s]) / 3
    pos_sum = 0.0
    neg_sum = 0.0
    for i in range(s + 1, n):
        tp = (high[i] + low[i] + close[i]) / 3
        flow = tp * volume[i]
        # Leave the oldest flow first, as ta_MFI.c does (zeros before it is full).
        pos_sum -= pos[slot]
        neg_sum -= neg[slot]
        p = flow if tp > prev_tp else 0.0
        m = flow if tp < prev_tp else 0.0
        pos[slot] = p
        neg[slot] = m
        pos_sum += p
        neg_sum += m
        prev_tp = tp
        slot += 1
        if slot == window:
            slot = 0
        if i >= s + window:
            total = pos_sum + neg_sum
            out[i] = 0.0 if total < 1.0 else 100.0 * (pos_sum / total)
    return out


@njit(**_JIT)
def vwap_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, window: int
) -> np.ndarray:
    """Rolling volume-weighted average of the typical price ``(h+l+c)/3``.

    Not in TA-Lib; pandas ``(tp*v).rolling(n).sum() / v.rolling(n).sum()``.
    Lookback ``window - 1``. Where the window's volume is 0 the typical price itself
    is returned (a defined value instead of 0/0).
    """
    tp = (high + low + close) / 3.0
    pv = rolling_sum_nb(tp * volume, window)
    vv = rolling_sum_nb(volume, window)
    for i in range(close.shape[0]):
        pv[i] = pv[i] / vv[i] if vv[i] > 0.0 else (tp[i] if not np.isnan(vv[i]) else np.nan)
    return pv


@njit(**_JIT)
def ad_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Chaikin accumulation/distribution line; ``talib.AD``. Lookback 0.

    ``ad += ((c - l) - (h - c)) / (h - l) * v``, unchanged on bars with h == l.
    """
    n = close.shape[0]
    s = max(_first_valid3_nb(high, low, close), _first_valid_nb(volume))
    out = _nan_head_nb(n, s)
    ad = 0.0
    for i in range(s, n):
        rng = high[i] - low[i]
        if rng > 0.0:
            ad += (((close[i] - low[i]) - (high[i] - close[i])) / rng) * volume[i]
        out[i] = ad
    return out


@njit(**_JIT_FMA)
def adosc_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, fast: int, slow: int
) -> np.ndarray:
    """Chaikin oscillator ``EMA(AD, fast) - EMA(AD, slow)``; ``talib.ADOSC``.

    Lookback ``max(fast, slow) - 1``. Unlike ``talib.EMA``, ta_ADOSC.c seeds both
    EMAs with the first AD value and uses ``k*ad + (1-k)*ema``; repeated here.
    """
    n = close.shape[0]
    s = max(_first_valid3_nb(high, low, close), _first_valid_nb(volume))
    lookback = max(fast, slow) - 1
    if min(fast, slow) < 1 or n - s <= lookback:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + lookback)
    k_fast = 2.0 / (fast + 1)
    k_slow = 2.0 / (slow + 1)
    ad = 0.0
    rng = high[s] - low[s]
    if rng > 0.0:
        ad += (((close[s] - low[s]) - (high[s] - close[s])) / rng) * volume[s]
    ema_fast = ad
    ema_slow = ad
    if lookback == 0:
        out[s] = 0.0
    for i in range(s + 1, n):
        rng = high[i] - low[i]
        if rng > 0.0:
            ad += (((close[i] - low[i]) - (high[i] - close[i])) / rng) * volume[i]
        ema_fast = (k_fast * ad) + ((1.0 - k_fast) * ema_fast)
        ema_slow = (k_slow * ad) + ((1.0 - k_slow) * ema_slow)
        if i >= s + lookback:
            out[i] = ema_fast - ema_slow
    return out
