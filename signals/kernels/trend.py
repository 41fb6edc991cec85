"""Directional movement and trend: Wilder's DMI/ADX, Aroon, least-squares slope."""

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
    _true_range_nb,
)

__all__ = ["aroon_nb", "dmi_nb", "linreg_slope_nb"]


# Fused numba loop: one pass over the bars, longer than 60 lines on purpose (splitting it costs a pass).
@njit(**_JIT_FMA)
def dmi_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilder's +DI, -DI and ADX; ``talib.PLUS_DI``, ``talib.MINUS_DI``, ``talib.ADX``.

    Lookbacks: +DI/-DI ``window``, ADX ``2 * window - 1``; ``window >= 2``. One pass
    following ta_ADX.c: DM and TR are summed over the first ``window - 1`` bars, then
    Wilder-smoothed ``v - v/n + new``; the first ADX averages ``window`` DX values and
    is Wilder-smoothed after. DI is 0 where the smoothed TR is ~0 (TA_IS_ZERO), and
    ADX then keeps its previous value, as in TA-Lib.
    """
    n = close.shape[0]
    s = _first_valid3_nb(high, low, close)
    if window < 2 or n - s <= window:
        return np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    plus_di = _nan_head_nb(n, s + window)
    minus_di = _nan_head_nb(n, s + window)
    adx = _nan_head_nb(n, s + 2 * window - 1)
    keep = (window - 1) / window
    inv = 1.0 / window
    pdm = 0.0
    mdm = 0.0
    tr = 0.0
    for i in range(s + 1, s + window):
        diff_p = high[i] - high[i - 1]
        diff_m = low[i - 1] - low[i]
        mdm += diff_m if (diff_m > 0 and diff_p < diff_m) else 0.0
        pdm += diff_p if (diff_p > 0 and diff_p > diff_m) else 0.0
        tr += _true_range_nb(high[i], low[i], close[i - 1])
    sum_dx = 0.0
    prev_adx = 0.0
    first_adx = s + 2 * window - 1
    for i in range(s + window, n):
        diff_p = high[i] - high[i - 1]
        diff_m = low[i - 1] - low[i]
        mdm = mdm * keep + (diff_m if (diff_m > 0 and diff_p < diff_m) else 0.0)
        pdm = pdm * keep + (diff_p if (diff_p > 0 and diff_p > diff_m) else 0.0)
        tr = tr * keep + _true_range_nb(high[i], low[i], close[i - 1])
        has_dx = False
        dx = 0.0
        if _ta_is_zero_nb(tr):
            p = 0.0
            m = 0.0
        else:
            scale = 100.0 / tr
            p = pdm * scale
            m = mdm * scale
            total = m + p
            if not _ta_is_zero_nb(total):
                has_dx = True
                dx = 100.0 * (abs(m - p) / total)
        plus_di[i] = p
        minus_di[i] = m
        if i < first_adx:
            sum_dx += dx
        elif i == first_adx:
            prev_adx = (sum_dx + dx) / window
            adx[i] = prev_adx
        else:
            if has_dx:
                prev_adx = prev_adx * keep + dx * inv
            adx[i] = prev_adx
    return plus_di, minus_di, adx


# Fused numba loop: one pass over the bars, longer than 60 lines on purpose (splitting it costs a pass).
@njit(**_JIT)
def aroon_nb(
    high: np.ndarray, low: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aroon down, up and oscillator (up - down); ``talib.AROON`` / ``talib.AROONOSC``.

    Lookback ``window``: each value looks at ``window + 1`` bars, and ties go to the
    most recent bar (ta_AROON.c's >= / <=). The oscillator is computed as
    ``factor * (i_high - i_low)`` like ta_AROONOSC.c. Arg-max/arg-min come from one
    van Herk pass over (value, index) pairs (see ``_rolling_extreme_nb``).
    """
    n = high.shape[0]
    s = max(_first_valid_nb(high), _first_valid_nb(low))
    if window < 1 or n - s <= window:
        return np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    down = _nan_head_nb(n, s + window)
    up = _nan_head_nb(n, s + window)
    osc = _nan_head_nb(n, s + window)
    factor = 100.0 / window
    span = window + 1
    suf_hi = np.full(span + 1, -np.inf)
    suf_hi_idx = np.full(span + 1, -1, np.int64)
    suf_lo = np.full(span + 1, np.inf)
    suf_lo_idx = np.full(span + 1, -1, np.int64)
    first = s + window
    b = s
    while b < n:
        size = min(span, n - b)
        pre_hi = -np.inf
        pre_hi_idx = -1
        pre_lo = np.inf
        pre_lo_idx = -1
        for j in range(size):
            i = b + j
            if high[i] >= pre_hi:  # the later bar wins a tie inside the prefix
                pre_hi = high[i]
                pre_hi_idx = i
            if low[i] <= pre_lo:
                pre_lo = low[i]
                pre_lo_idx = i
            if i >= first:
                # The prefix holds later bars than the suffix, so it wins ties.
                hi_idx = pre_hi_idx if pre_hi >= suf_hi[j + 1] else suf_hi_idx[j + 1]
                lo_idx = pre_lo_idx if pre_lo <= suf_lo[j + 1] else suf_lo_idx[j + 1]
                up[i] = factor * (window - (i - hi_idx))
                down[i] = factor * (window - (i - lo_idx))
                osc[i] = factor * (hi_idx - lo_idx)
        m_hi = -np.inf
        m_hi_idx = -1
        m_lo = np.inf
        m_lo_idx = -1
        for jj in range(size):
            j = size - 1 - jj
            i = b + j
            if high[i] > m_hi:  # scanning backwards, strict keeps the later bar on ties
                m_hi = high[i]
                m_hi_idx = i
            if low[i] < m_lo:
                m_lo = low[i]
                m_lo_idx = i
            suf_hi[j] = m_hi
            suf_hi_idx[j] = m_hi_idx
            suf_lo[j] = m_lo
            suf_lo_idx[j] = m_lo_idx
        b += size
    return down, up, osc


@njit(**_JIT)
def linreg_slope_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Least-squares slope per bar over ``window`` bars; ``talib.LINEARREG_SLOPE``.

    Lookback ``window - 1``; ``window >= 2``. TA-Lib re-sums the window (O(n*window));
    here the sums of y and j*y slide in O(1), on values centred by an anchor that is
    refreshed (with an exact re-sum) every ``window`` bars, so rounding stays bounded.
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    if window < 2 or n - s < window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window - 1)
    w = float(window)
    sum_j = w * (w - 1) / 2.0
    sum_jj = w * (w - 1) * (2 * w - 1) / 6.0
    inv_divisor = 1.0 / (w * sum_jj - sum_j * sum_j)
    anchor = 0.0
    sum_y = 0.0
    sum_jy = 0.0
    since = window
    for i in range(s + window - 1, n):
        if since == window:
            since = 0
            anchor = x[i]
            sum_y = 0.0
            sum_jy = 0.0
            for j in range(window):
                y = x[i - window + 1 + j] - anchor
                sum_y += y
                sum_jy += j * y
        else:
            y_old = x[i - window] - anchor
            y_new = x[i] - anchor
            # Dropping the oldest bar shifts every weight j down by one.
            sum_jy -= sum_y - y_old
            sum_y += y_new - y_old
            sum_jy += (w - 1) * y_new
        since += 1
        out[i] = (w * sum_jy - sum_j * sum_y) * inv_divisor
    return out
