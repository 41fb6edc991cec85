"""Rolling primitives and statistics: extremes, sums, moments (std, z-score), returns, correlation.

The generic building blocks (vectorbt's ``generic/nb.py``); the indicator sections build on them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from signals.kernels._common import _JIT, _first_valid_nb, _nan_head_nb, _u

__all__ = [
    "log_returns_nb", "rolling_corr_nb", "rolling_max_nb", "rolling_mean_std_nb", "rolling_min_nb",
    "rolling_std_nb", "rolling_sum_nb", "zscore_nb",
]


@njit(**_JIT)
def _rolling_extreme_nb(x: np.ndarray, window: int, sign: float) -> np.ndarray:
    """Rolling max of ``sign * x`` times ``sign`` (so sign=-1 gives the rolling min).

    Van Herk / Gil-Werman: blocks of ``window`` bars; the window ending at bar i is
    the suffix of the previous block plus the prefix of the current one, so each
    bar costs three branch-free comparisons whatever the window or the trend (a
    rescan on exit, as in ta_MAX.c, is O(window) per bar on a falling series).
    The first block only fills the suffix maxima (its last bar is the first output).
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    if window < 1 or n - s < window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window - 1)
    suffix = np.empty(window + 1)  # suffix maxima of the previous block
    suffix[window] = -np.inf
    b = s
    while b < n:
        size = min(window, n - b)
        if b > s:
            pre = -np.inf
            for j in range(size):
                v = sign * x[_u(b + j)]
                pre = v if v > pre else pre
                prev = suffix[j + 1]
                out[_u(b + j)] = sign * (prev if prev > pre else pre)
        if size == window:  # a partial last block has no successor to serve
            m = -np.inf
            for jj in range(window):
                j = window - 1 - jj
                v = sign * x[_u(b + j)]
                m = v if v > m else m
                suffix[j] = m
            if b == s:
                out[_u(b + window - 1)] = sign * m
        b += size
    return out


@njit(**_JIT)
def rolling_max_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Rolling maximum; ``talib.MAX`` / ``s.rolling(window).max()``. Lookback ``window - 1``.

    O(n) whatever the window or trend (van Herk / Gil-Werman blocks).
    """
    return _rolling_extreme_nb(x, window, 1.0)


@njit(**_JIT)
def rolling_min_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Rolling minimum; ``talib.MIN`` / ``s.rolling(window).min()``. Lookback ``window - 1``."""
    return _rolling_extreme_nb(x, window, -1.0)


@njit(**_JIT)
def rolling_sum_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Rolling sum; ``s.rolling(window).sum()`` / ``talib.SUM``. Lookback ``window - 1``.

    Re-summed exactly every ``window`` bars so that long series do not accumulate
    rounding (cancellation after a large value leaves the window).
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    if window < 1 or n - s < window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window - 1)
    total = 0.0
    since = window
    for i in range(s + window - 1, n):
        if since == window:
            since = 0
            total = 0.0
            for j in range(i - window + 1, i + 1):
                total += x[j]
        else:
            total += x[i] - x[i - window]
        since += 1
        out[i] = total
    return out


# Fused numba loop: one pass over the bars, longer than 60 lines on purpose (splitting it costs a pass).
@njit(**_JIT)
def _rolling_moments_nb(
    x: np.ndarray, window: int, ddof: int, mode: int, nb_up: float, nb_dn: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared rolling mean / std pass; ``mode`` picks what is written (one fused loop).

    0: (std, -, -), 1: (mean, std, -), 2: (zscore, -, -), 3: (upper, mean, lower).
    Arrays that a mode does not use are empty. Sums of ``x - anchor`` and its square
    slide in O(1). Every ``window`` bars they are re-summed exactly around a new
    anchor, the newest value (it stays inside every window until the next re-sum), so
    the deviations are of the order of the window's spread and rounding cannot drift.
    This avoids the cancellation of TA-Lib's E[x^2] - E[x]^2 on price levels, and
    TA-Lib's zeroing of any variance below 1e-8 (absolute: it flattens short-window std
    on FX prices). A window of identical values has variance exactly 0 (tracked like
    pandas does). The re-sum uses two pairs of accumulators, so it is not one long
    chain of dependent additions.
    """
    n = x.shape[0]
    s = _first_valid_nb(x)
    first = s + window - 1
    valid = window >= 1 and window - ddof >= 1 and n - s >= window
    a = _nan_head_nb(n, first if valid else n)
    b = _nan_head_nb(n if mode in (1, 3) else 0, first if valid else n)
    c = _nan_head_nb(n if mode == 3 else 0, first if valid else n)
    if not valid:
        return a, b, c
    run = 1  # length of the run of equal values ending at i
    for i in range(s + 1, first):
        run = run + 1 if x[_u(i)] == x[_u(i - 1)] else 1
    inv_w = 1.0 / window
    inv_dof = 1.0 / (window - ddof)
    block = first
    while block < n:
        anchor = x[_u(block)]
        s1 = 0.0
        s2 = 0.0
        t1 = 0.0
        t2 = 0.0
        j = block - window + 1
        while j < block:
            d = x[_u(j)] - anchor
            e = x[_u(j + 1)] - anchor
            s1 += d
            s2 += d * d
            t1 += e
            t2 += e * e
            j += 2
        if j == block:
            d = x[_u(j)] - anchor
            s1 += d
            s2 += d * d
        s1 += t1
        s2 += t2
        end = min(block + window, n)
        for i in range(block, end):
            if i > block:
                d_new = x[_u(i)] - anchor
                d_old = x[_u(i - window)] - anchor
                s1 += d_new - d_old
                s2 += d_new * d_new - d_old * d_old
            if i > s:
                run = run + 1 if x[_u(i)] == x[_u(i - 1)] else 1
            if run >= window:
                mean = x[_u(i)]
                sd = 0.0
            else:
                m = s1 * inv_w
                mean = anchor + m
                var = (s2 - s1 * m) * inv_dof
                sd = np.sqrt(var) if var > 0.0 else 0.0
            if mode == 0:
                a[_u(i)] = sd
            elif mode == 1:
                a[_u(i)] = mean
                b[_u(i)] = sd
            elif mode == 2:
                a[_u(i)] = (x[_u(i)] - mean) / sd if sd > 0.0 else 0.0
            else:
                a[_u(i)] = mean + nb_up * sd
                b[_u(i)] = mean
                c[_u(i)] = mean - nb_dn * sd
        block = end
    return a, b, c


@njit(**_JIT)
def rolling_mean_std_nb(x: np.ndarray, window: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and standard deviation; ``s.rolling(window).mean()`` / ``.std(ddof=ddof)``.

    Lookback ``window - 1`` (all NaN when ``window - ddof < 1``). Numerically stable
    sliding sums, see ``_rolling_moments_nb``.
    """
    mean, std, _ = _rolling_moments_nb(x, window, ddof, 1, 0.0, 0.0)
    return mean, std


@njit(**_JIT)
def rolling_std_nb(x: np.ndarray, window: int, ddof: int) -> np.ndarray:
    """Rolling standard deviation; ``s.rolling(window).std(ddof=ddof)``; ``talib.STDDEV`` for ddof=0.

    Lookback ``window - 1``. Departs from TA-Lib's arithmetic only where TA-Lib's own
    result is unreliable (see ``_rolling_moments_nb``).
    """
    return _rolling_moments_nb(x, window, ddof, 0, 0.0, 0.0)[0]


@njit(**_JIT)
def zscore_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Rolling z-score ``(x - mean) / std`` (ddof=0) over ``window`` bars, 0 where std is 0.

    pandas: ``(s - r.mean()) / r.std(ddof=0)`` with ``r = s.rolling(window)``.
    Lookback ``window - 1``.
    """
    return _rolling_moments_nb(x, window, 0, 2, 0.0, 0.0)[0]


@njit(**_JIT)
def log_returns_nb(x: np.ndarray) -> np.ndarray:
    """One-bar log returns ``log(x / x[t-1])``; ``np.log(s).diff()``. Lookback 1."""
    n = x.shape[0]
    out = _nan_head_nb(n, 1)
    for i in range(1, n):
        out[i] = np.log(x[i] / x[i - 1])
    return out


# Fused numba loop: one pass over the bars, longer than 60 lines on purpose (splitting it costs a pass).
@njit(**_JIT)
def rolling_corr_nb(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Rolling Pearson correlation; ``x.rolling(window).corr(y)``.

    Lookback ``window - 1`` from the first bar where both are non-NaN; ``window >= 2``.
    0 where either side has zero variance (pandas gives NaN there). Centred sums slide
    in O(1) with an exact re-sum every ``window`` bars (see ``_rolling_moments_nb``).
    """
    n = x.shape[0]
    s = max(_first_valid_nb(x), _first_valid_nb(y))
    if window < 2 or n - s < window:
        return np.full(n, np.nan)
    out = _nan_head_nb(n, s + window - 1)
    ax = 0.0
    ay = 0.0
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    inv_w = 1.0 / window
    since = window
    for i in range(s + window - 1, n):
        if since == window:
            since = 0
            ax = 0.0
            ay = 0.0
            for j in range(i - window + 1, i + 1):
                ax += x[j]
                ay += y[j]
            ax *= inv_w
            ay *= inv_w
            sx = 0.0
            sy = 0.0
            sxx = 0.0
            syy = 0.0
            sxy = 0.0
            for j in range(i - window + 1, i + 1):
                dx = x[j] - ax
                dy = y[j] - ay
                sx += dx
                sy += dy
                sxx += dx * dx
                syy += dy * dy
                sxy += dx * dy
        else:
            dxn = x[i] - ax
            dyn = y[i] - ay
            dxo = x[i - window] - ax
            dyo = y[i - window] - ay
            sx += dxn - dxo
            sy += dyn - dyo
            sxx += dxn * dxn - dxo * dxo
            syy += dyn * dyn - dyo * dyo
            sxy += dxn * dyn - dxo * dyo
        since += 1
        vx = sxx - sx * sx * inv_w
        vy = syy - sy * sy * inv_w
        if vx > 0.0 and vy > 0.0:
            r = (sxy - sx * sy * inv_w) / np.sqrt(vx * vy)
            out[i] = min(1.0, max(-1.0, r))
        else:
            out[i] = 0.0
    return out
