"""Numba kernels of the technical indicators used by the signal catalogue.

Discipline (after vectorbt's ``rolling_mean_1d_nb``): every public kernel is an
``@njit(**_JIT)`` function named ``*_nb`` that takes 1-D float64 NumPy arrays
and plain numbers and returns new float64 arrays of the input's length. No pandas,
no configuration, no I/O.

Conventions shared by all kernels
---------------------------------
* **Warm-up.** Bars before an indicator's *lookback* are NaN, exactly where TA-Lib
  (through its Python wrapper) or pandas put them; every docstring states the
  lookback, counted from the first bar where all inputs are non-NaN.
* **Leading NaNs** of an input are skipped like TA-Lib's Python wrapper does, so
  kernels can be chained (``ema_nb(ema_nb(x, n), n)``). A NaN *inside* the data
  poisons every recursive value after it, as it does in TA-Lib; clean data first.
* **O(n).** Running sums, Wilder recursions and block-wise (van Herk / Gil-Werman)
  rolling extremes keep every kernel linear in the number of bars whatever the
  window; only CCI's mean absolute deviation is inherently O(n * window), as in
  TA-Lib. Outputs are written in one fused pass where TA-Lib chains calls.
* **TA-Lib semantics.** Where a TA-Lib function exists the kernel follows its C
  source: same seeds (SMA-seeded EMA, first-ATR average, ...), same special cases
  (``TA_IS_ZERO`` = |v| < 1e-8, 0 on a flat range, ...), same lookbacks. Values agree
  to ~1e-12 relative rather than bit for bit: the TA-Lib binary is itself built with
  value-changing float optimisations, and Wilder recursions here are written as
  ``v * (n-1)/n + new / n`` so the loop-carried dependency is one fused multiply-add.
  ``fastmath`` is limited to that contraction (``contract``): no reassociation, no
  NaN/inf assumptions, so results do not depend on the array length (causality).
* **Rolling variance** is the one deliberate departure from TA-Lib's arithmetic
  (see ``_rolling_moments_nb``).
* **Window arguments** are integers >= 1 (>= 2 where stated); a window too long for
  the data gives all-NaN output, as TA-Lib does.
"""

from __future__ import annotations

import sys

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "ad_nb",
    "adosc_nb",
    "aroon_nb",
    "atr_nb",
    "bollinger_nb",
    "cci_nb",
    "dema_nb",
    "dmi_nb",
    "donchian_nb",
    "efficiency_ratio_nb",
    "ema_nb",
    "hma_nb",
    "kama_nb",
    "keltner_nb",
    "linreg_slope_nb",
    "log_returns_nb",
    "macd_nb",
    "mfi_nb",
    "mom_nb",
    "natr_nb",
    "obv_nb",
    "roc_nb",
    "rolling_corr_nb",
    "rolling_max_nb",
    "rolling_mean_std_nb",
    "rolling_min_nb",
    "rolling_std_nb",
    "rolling_sum_nb",
    "rsi_nb",
    "sma_nb",
    "stoch_nb",
    "stochf_nb",
    "tema_nb",
    "trange_nb",
    "trix_nb",
    "vwap_nb",
    "willr_nb",
    "wma_nb",
    "zscore_nb",
]

# TA_IS_ZERO threshold of TA-Lib (ta_func/ta_utility.h): an absolute 1e-8.
_TA_EPSILON = 1e-8
# Division by zero gives inf/NaN instead of raising: every division that can meet a
# zero is guarded explicitly, and the per-division checks would cost speed and code size.
_JIT = {"cache": True, "error_model": "numpy"}
# Recursions also allow fused multiply-add contraction (only that; see the docstring).
_JIT_FMA = {**_JIT, "fastmath": {"contract"}}
# Index cast for hot loops: numba wraps negative signed indices (x[-1]), which costs
# three integer instructions per access that LLVM cannot drop when the start of the loop
# is a runtime value (s + window - 1); an unsigned index has no wraparound. Only used
# where the index is non-negative by construction (no bounds checks either way).
_u = np.uint64
# NumPy advises transparent huge pages for arrays of 4 MiB and more (madvise
# MADV_HUGEPAGE, numpy's alloc.c); arrays allocated by numba get no such advice, and on
# Linux with THP in "madvise" mode each fresh 8 MB output then costs ~2,000 4 KiB page
# faults instead of a few: most of the gap to TA-Lib on three-output kernels (MACD,
# BBANDS). Outputs of that size get the same advice as NumPy's (Linux only; a no-op
# elsewhere). It is only advice: values and layout are unchanged.
_HUGEPAGE_ADVICE = sys.platform.startswith("linux")
_MADV_HUGEPAGE = 14
_HUGEPAGE_MIN_ITEMS = (1 << 22) // 8


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


@njit(**_JIT)
def _first_valid_nb(x: np.ndarray) -> int:
    """Index of the first non-NaN value of ``x`` (len(x) when there is none)."""
    for i in range(x.shape[0]):
        if not np.isnan(x[i]):
            return i
    return x.shape[0]


@njit(**_JIT)
def _first_valid3_nb(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> int:
    """First index where none of three inputs is NaN (TA-Lib wrapper's begidx)."""
    return max(_first_valid_nb(a), max(_first_valid_nb(b), _first_valid_nb(c)))


@intrinsic
def _advise_huge_pages_nb(typingctx, arr):
    """``madvise(MADV_HUGEPAGE)`` on the whole pages inside a contiguous array (Linux only)."""
    if not isinstance(arr, types.Array) or arr.layout not in "CF":
        return None

    def codegen(context, builder, signature, args):
        if not _HUGEPAGE_ADVICE:
            return context.get_dummy_value()
        arrty = signature.args[0]
        ary = context.make_array(arrty)(context, builder, args[0])
        size_t = context.get_value_type(types.uintp)
        itemsize = context.get_abi_sizeof(context.get_data_type(arrty.dtype))
        start = builder.ptrtoint(ary.data, size_t)
        end = builder.add(start, builder.mul(ary.nitems, ir.Constant(size_t, itemsize)))
        # Round the start up and the end down to page boundaries: only the array's own pages.
        mask = ir.Constant(size_t, ~4095 & ((1 << size_t.width) - 1))
        start = builder.and_(builder.add(start, ir.Constant(size_t, 4095)), mask)
        end = builder.and_(end, mask)
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(8).as_pointer(), size_t, ir.IntType(32)])
        madvise = cgutils.get_or_insert_function(builder.module, fnty, "madvise")
        with builder.if_then(builder.icmp_unsigned(">", end, start)):
            builder.call(madvise, [builder.inttoptr(start, ir.IntType(8).as_pointer()),
                                   builder.sub(end, start), ir.Constant(ir.IntType(32), _MADV_HUGEPAGE)])
        return context.get_dummy_value()

    return types.void(arr), codegen


@njit(**_JIT)
def _nan_head_nb(n: int, start: int) -> np.ndarray:
    """Uninitialised float64 array of length n whose first ``start`` values are NaN.

    Callers write every value from ``start`` on; skipping a full NaN fill saves a
    pass over memory on million-bar inputs. Large arrays get NumPy's huge-page advice
    (see ``_HUGEPAGE_ADVICE``).
    """
    out = np.empty(n)
    if n >= _HUGEPAGE_MIN_ITEMS:
        _advise_huge_pages_nb(out)
    out[: min(max(start, 0), n)] = np.nan
    return out


@njit(**_JIT)
def _ta_is_zero_nb(v: float) -> bool:
    """TA-Lib's TA_IS_ZERO: |v| < 1e-8 (an absolute threshold, as in TA-Lib)."""
    return -_TA_EPSILON < v < _TA_EPSILON


@njit(**_JIT)
def _true_range_nb(high: float, low: float, prev_close: float) -> float:
    """TA-Lib's TRUE_RANGE macro: max(h - l, |h - prev c|, |l - prev c|)."""
    out = high - low
    tmp = abs(high - prev_close)
    out = tmp if tmp > out else out
    tmp = abs(low - prev_close)
    return tmp if tmp > out else out


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


# ---------------------------------------------------------------------------
# moving averages
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# momentum / oscillators
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# directional movement / trend
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# volatility / bands / channels
# ---------------------------------------------------------------------------


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
def donchian_nb(high: np.ndarray, low: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Donchian channel (upper = rolling max of high, lower = rolling min of low).

    ``talib.MAX(high, n)``, ``talib.MIN(low, n)``. Lookback ``window - 1``.
    """
    return rolling_max_nb(high, window), rolling_min_nb(low, window)


# ---------------------------------------------------------------------------
# volume
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# returns / statistics
# ---------------------------------------------------------------------------


@njit(**_JIT)
def log_returns_nb(x: np.ndarray) -> np.ndarray:
    """One-bar log returns ``log(x / x[t-1])``; ``np.log(s).diff()``. Lookback 1."""
    n = x.shape[0]
    out = _nan_head_nb(n, 1)
    for i in range(1, n):
        out[i] = np.log(x[i] / x[i - 1])
    return out


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
