"""Catalogue of indicator families: parameter grids and bounded, causal feature transforms.

Each :class:`Family` turns OHLCV bars into one feature column per parameter variant.
Every feature is a *fixed* transform of the ``signals.kernels`` outputs:

* **causal** - the value at bar t uses bars <= t only (recursions and trailing
  windows; no full-sample statistic, no centring by a global mean);
* **bounded** - squashed (``tanh``) or rescaled into [-1, 1], then clipped to
  ``[-FEATURE_BOUND, FEATURE_BOUND]``;
* **roughly stationary** - prices enter as log distances normalised by the trailing
  volatility of log returns (``sigma * sqrt(horizon)``), volumes as ratios;
* **NaN exactly in the warm-up** - rows ``[0, lookback(**params))`` are NaN and every
  later row is finite on clean data.

The default grids (``Family.default_grid``) give 1,100+ variants per symbol; render them
for ``parameters.toml`` with :func:`default_grids_toml`.
"""

from __future__ import annotations

import difflib
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from signals import kernels as K

__all__ = [
    "CATALOG",
    "FEATURE_BOUND",
    "Family",
    "Ohlcv",
    "compute_variants",
    "default_grids_toml",
    "expand_grid",
    "max_lookback",
    "variant_label",
    "warm_up",
]

# Every feature lies in [-FEATURE_BOUND, FEATURE_BOUND] after warm-up.
FEATURE_BOUND = 1.0
# Volatility normalisers use at least this many returns: a 3-bar std is mostly noise.
VOL_MIN_WINDOW = 10
# Guards divisions by a volatility or range that can be exactly 0 on flat data.
_EPS = 1e-12


class Ohlcv(NamedTuple):
    """Bars of one symbol: float64 1-D arrays of equal length, oldest first."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def _always_valid(**params: Any) -> bool:
    """Default ``Family.valid``: every combination is allowed (module-level so it pickles)."""
    return True


@dataclass(frozen=True)
class Family:
    """One indicator family.

    ``compute(bars, **params)`` returns the float64 (n,) feature, NaN in the warm-up;
    ``lookback(**params)`` is the number of leading NaN rows; ``valid(**params)``
    filters grid combinations (e.g. fast < slow). All callables are module-level
    functions or instances of module-level classes, so a ``Family`` pickles.
    """

    name: str
    description: str
    default_grid: dict[str, tuple[float | int, ...]]
    compute: Callable[..., np.ndarray]
    lookback: Callable[..., int]
    valid: Callable[..., bool] = _always_valid


@dataclass(frozen=True)
class _Feature:
    """Picklable ``Family.compute``: raw transform, then clip and the NaN warm-up.

    Centralising the finish makes every family honour the same contract: rows before
    ``lookback`` are NaN (even where a kernel would already have a value), the rest
    is clipped to the feature bound.
    """

    raw: Callable[..., np.ndarray]
    lookback: Callable[..., int]

    def __call__(self, bars: Ohlcv, **params: Any) -> np.ndarray:
        out = np.asarray(self.raw(_as_bars(bars), **params), dtype=np.float64)
        out = np.clip(out, -FEATURE_BOUND, FEATURE_BOUND)
        out[: min(int(self.lookback(**params)), out.shape[0])] = np.nan
        return out


def _as_bars(bars: Ohlcv) -> Ohlcv:
    """Bars as writeable, contiguous float64 arrays: the one signature the kernels are
    compiled for. Read-only inputs (``np.load(mmap_mode="r")``, pandas copy-on-write
    ``to_numpy()``) are copied, else numba would compile every kernel a second time."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in bars]
    arrays = [a if a.flags.writeable else a.copy() for a in arrays]
    n = arrays[0].shape[0]
    if any(a.ndim != 1 or a.shape[0] != n for a in arrays):
        raise ValueError(f"Ohlcv arrays must be 1-D of equal length, got shapes {[a.shape for a in arrays]}")
    return Ohlcv(*arrays)


# ---------------------------------------------------------------------------
# shared building blocks
# ---------------------------------------------------------------------------


def _vol_window(window: int) -> int:
    return max(int(window), VOL_MIN_WINDOW)


def _sigma(close: np.ndarray, window: int) -> np.ndarray:
    """Trailing std (ddof=0) of one-bar log returns over max(window, VOL_MIN_WINDOW) bars.

    Lookback ``_vol_window(window)`` (one bar for the first return).
    """
    return K.rolling_std_nb(K.log_returns_nb(close), _vol_window(window), 0)


def _vol_scaled(log_distance: np.ndarray, close: np.ndarray, window: int, gain: float) -> np.ndarray:
    """tanh(gain * d / (sigma * sqrt(window))): a log distance in units of the move a
    random walk makes over ``window`` bars, squashed into (-1, 1)."""
    scale = _sigma(close, window) * math.sqrt(window) + _EPS
    return np.tanh(gain * log_distance / scale)


def _t_stat(mean: np.ndarray, window: int) -> np.ndarray:
    """tanh(sqrt(w) * mean): a window average of roughly unit-variance, independent
    per-bar terms is ~N(0, 1/w) by chance; this puts it on the same scale for any w."""
    return np.tanh(math.sqrt(window) * mean)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (NaN stays NaN)."""
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0.0)
    out[np.isnan(num) | np.isnan(den)] = np.nan
    return out


def _ma_dist(bars: Ohlcv, ma: np.ndarray, window: int) -> np.ndarray:
    """Close versus a moving average, in random-walk units of the MA's horizon."""
    return _vol_scaled(np.log(bars.close / ma), bars.close, window, 2.0)


def _range_pos(x: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Position of x in [lower, upper] mapped to [-1, 1]; 0 (the middle) on a flat range."""
    return _safe_ratio(2.0 * x - upper - lower, upper - lower)


def _candle_parts(bars: Ohlcv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body (signed), upper wick and lower wick as fractions of the bar's range (0 if h == l)."""
    rng = bars.high - bars.low
    body = _safe_ratio(bars.close - bars.open, rng)
    upper = _safe_ratio(bars.high - np.maximum(bars.open, bars.close), rng)
    lower = _safe_ratio(np.minimum(bars.open, bars.close) - bars.low, rng)
    return body, upper, lower


# ---------------------------------------------------------------------------
# default grids (geometric-ish; the lead copies them into parameters.toml)
# ---------------------------------------------------------------------------

# Trailing windows from 2 to 100 bars. The longest lookback sets the embargo between splits
# (lookback + horizon), so grids stop near 128 bars: a daily series keeps usable validation and test splits.
W_LONG = (2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 18, 20, 24, 28, 32, 38, 44, 50, 60, 70, 80, 90, 100)
# For indicators whose lookback is 2-3x the window (DEMA, TEMA, TRIX, ADX): up to 42.
W_SHORT = (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 20, 22, 24, 26, 28, 30, 34, 38, 42)
# Statistics that are degenerate on 2-4 points (correlation, CCI, z-scores).
W_STAT = (5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 24, 28, 32, 36, 40, 46, 52, 60, 68, 76, 84, 92, 100)
# Smoothing of per-bar candle shapes, 1 = the raw bar.
W_CANDLE = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 18, 20, 24, 28, 32, 38, 44, 50, 60, 70, 84, 100)
# Windows of two-parameter families.
W_PAIR = (5, 7, 10, 14, 20, 28, 40, 56, 80, 100)


# ---------------------------------------------------------------------------
# trend: price versus moving averages
# ---------------------------------------------------------------------------


def _sma_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return _ma_dist(bars, K.sma_nb(bars.close, int(window)), int(window))


def _lb_sma_dist(window: int) -> int:
    return max(int(window) - 1, _vol_window(window))


def _ema_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return _ma_dist(bars, K.ema_nb(bars.close, int(window)), int(window))


def _wma_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return _ma_dist(bars, K.wma_nb(bars.close, int(window)), int(window))


def _dema_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return _ma_dist(bars, K.dema_nb(bars.close, int(window)), int(window))


def _lb_dema_dist(window: int) -> int:
    return max(2 * (int(window) - 1), _vol_window(window))


def _tema_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return _ma_dist(bars, K.tema_nb(bars.close, int(window)), int(window))


def _lb_tema_dist(window: int) -> int:
    return max(3 * (int(window) - 1), _vol_window(window))


def _kama_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return _ma_dist(bars, K.kama_nb(bars.close, int(window)), int(window))


def _lb_kama_dist(window: int) -> int:
    return max(int(window), _vol_window(window))


def _hma_dist(bars: Ohlcv, window: int) -> np.ndarray:
    return _ma_dist(bars, K.hma_nb(bars.close, int(window)), int(window))


def _lb_hma_dist(window: int) -> int:
    w = int(window)
    return max(w - 1 + max(int(math.isqrt(w)), 1) - 1, _vol_window(w))


def _ma_cross(bars: Ohlcv, fast: int, slow: int) -> np.ndarray:
    fast_ma = K.ema_nb(bars.close, int(fast))
    slow_ma = K.ema_nb(bars.close, int(slow))
    return _vol_scaled(np.log(fast_ma / slow_ma), bars.close, int(slow), 2.0)


def _lb_ma_cross(fast: int, slow: int) -> int:
    return max(int(slow) - 1, int(fast) - 1, _vol_window(slow))


def _fast_below_slow(fast: int, slow: int, **_: Any) -> bool:
    return fast < slow


def _macd_hist(bars: Ohlcv, fast: int, slow: int, signal: int) -> np.ndarray:
    _, _, hist = K.macd_nb(bars.close, int(fast), int(slow), int(signal))
    # The histogram is a price difference: divide by the close to get a return.
    return _vol_scaled(hist / bars.close, bars.close, int(signal), 4.0)


def _lb_macd_hist(fast: int, slow: int, signal: int) -> int:
    return max(max(int(fast), int(slow)) - 1 + int(signal) - 1, _vol_window(signal))


def _linreg_slope(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    slope = K.linreg_slope_nb(np.log(bars.close), w)
    # slope * window is the fitted log move over the window.
    return _vol_scaled(slope * w, bars.close, w, 1.0)


def _lb_linreg_slope(window: int) -> int:
    return max(int(window) - 1, _vol_window(window))


def _vwap_dist(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    vwap = K.vwap_nb(bars.high, bars.low, bars.close, bars.volume, w)
    return _vol_scaled(np.log(bars.close / vwap), bars.close, w, 2.0)


# ---------------------------------------------------------------------------
# momentum / oscillators
# ---------------------------------------------------------------------------


def _rsi(bars: Ohlcv, window: int) -> np.ndarray:
    return K.rsi_nb(bars.close, int(window)) / 50.0 - 1.0


def _lb_window(window: int) -> int:
    return int(window)


def _lb_window_minus_1(window: int) -> int:
    return int(window) - 1


def _stoch(bars: Ohlcv, window: int, smooth: int) -> np.ndarray:
    _, d = K.stochf_nb(bars.high, bars.low, bars.close, int(window), int(smooth))
    return d / 50.0 - 1.0


def _lb_stoch(window: int, smooth: int) -> int:
    return int(window) - 1 + int(smooth) - 1


def _willr(bars: Ohlcv, window: int) -> np.ndarray:
    return K.willr_nb(bars.high, bars.low, bars.close, int(window)) / 50.0 + 1.0


def _cci(bars: Ohlcv, window: int) -> np.ndarray:
    # |CCI| > 100 is the classic "extreme"; tanh(1) ~ 0.76 there.
    return np.tanh(K.cci_nb(bars.high, bars.low, bars.close, int(window)) / 100.0)


def _roc(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    log_change = np.log1p(K.roc_nb(bars.close, w) / 100.0)
    return _vol_scaled(log_change, bars.close, w, 1.0)


def _lb_roc(window: int) -> int:
    return max(int(window), _vol_window(window))


def _mom(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    atr = K.atr_nb(bars.high, bars.low, bars.close, w)
    # Price change in units of the range a random walk covers in w bars.
    return np.tanh(_safe_ratio(K.mom_nb(bars.close, w), atr * math.sqrt(w)))


def _trix(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    # TRIX is the one-bar % change of a triple EMA: in sigma units, scaled by sqrt(w).
    return _vol_scaled(K.trix_nb(bars.close, w) / 100.0 * w, bars.close, w, 1.0)


def _lb_trix(window: int) -> int:
    return max(3 * (int(window) - 1) + 1, _vol_window(window))


def _efficiency_ratio(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return _t_stat(K.efficiency_ratio_nb(bars.close, w), w)


def _aroon_osc(bars: Ohlcv, window: int) -> np.ndarray:
    return K.aroon_nb(bars.high, bars.low, int(window))[2] / 100.0


def _mfi(bars: Ohlcv, window: int) -> np.ndarray:
    return K.mfi_nb(bars.high, bars.low, bars.close, bars.volume, int(window)) / 50.0 - 1.0


def _up_fraction(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return _t_stat(K.sma_nb(np.sign(K.log_returns_nb(bars.close)), w), w)


def _return_autocorr(bars: Ohlcv, window: int) -> np.ndarray:
    r = K.log_returns_nb(bars.close)
    lagged = np.concatenate(([np.nan], r[:-1]))
    w = int(window)
    return _t_stat(K.rolling_corr_nb(r, lagged, w), w)


def _lb_return_autocorr(window: int) -> int:
    return int(window) + 1


# ---------------------------------------------------------------------------
# directional movement
# ---------------------------------------------------------------------------


def _adx(bars: Ohlcv, window: int) -> np.ndarray:
    # 25 is Wilder's trending / not-trending line; ADX >= 50 saturates.
    return (K.dmi_nb(bars.high, bars.low, bars.close, int(window))[2] - 25.0) / 25.0


def _lb_adx(window: int) -> int:
    return 2 * int(window) - 1


def _adx_dmi(bars: Ohlcv, window: int) -> np.ndarray:
    plus_di, minus_di, adx = K.dmi_nb(bars.high, bars.low, bars.close, int(window))
    # Trend strength (ADX 50 -> full scale) signed by the dominant direction.
    return np.sign(plus_di - minus_di) * adx / 50.0


def _dmi_spread(bars: Ohlcv, window: int) -> np.ndarray:
    plus_di, minus_di, _ = K.dmi_nb(bars.high, bars.low, bars.close, int(window))
    return _safe_ratio(plus_di - minus_di, plus_di + minus_di)


# ---------------------------------------------------------------------------
# volatility, bands and channels
# ---------------------------------------------------------------------------


def _natr(bars: Ohlcv, window: int, ratio: int) -> np.ndarray:
    w = int(window)
    short = K.natr_nb(bars.high, bars.low, bars.close, w)
    long = K.natr_nb(bars.high, bars.low, bars.close, w * int(ratio))
    # Volatility regime: short-horizon NATR against a longer one (asset-free scale).
    return np.tanh(3.0 * np.log((short + _EPS) / (long + _EPS)))


def _lb_natr(window: int, ratio: int) -> int:
    return int(window) * int(ratio)


def _volatility(bars: Ohlcv, short: int, long: int) -> np.ndarray:
    r = K.log_returns_nb(bars.close)
    s = K.rolling_std_nb(r, int(short), 0)
    lng = K.rolling_std_nb(r, int(long), 0)
    return np.tanh(2.0 * np.log((s + _EPS) / (lng + _EPS)))


def _lb_volatility(short: int, long: int) -> int:
    return max(int(short), int(long))


def _short_below_long(short: int, long: int, **_: Any) -> bool:
    return short < long


def _bb_pctb(bars: Ohlcv, window: int, nbdev: float) -> np.ndarray:
    upper, mid, lower = K.bollinger_nb(bars.close, int(window), float(nbdev), float(nbdev))
    # tanh of %B rescaled to -1 (lower band) .. +1 (upper band); 0 on a flat window.
    return np.tanh(_safe_ratio(bars.close - mid, upper - mid))


def _bb_width(bars: Ohlcv, window: int, ratio: int) -> np.ndarray:
    w = int(window)
    mean, std = K.rolling_mean_std_nb(bars.close, w, 0)
    width = std / mean
    baseline = K.sma_nb(width, w * int(ratio))
    # Squeeze / expansion: band width against its own trailing average.
    return np.tanh(np.log((width + _EPS) / (baseline + _EPS)))


def _lb_bb_width(window: int, ratio: int) -> int:
    return int(window) - 1 + int(window) * int(ratio) - 1


def _keltner_pos(bars: Ohlcv, window: int, mult: float) -> np.ndarray:
    upper, mid, _ = K.keltner_nb(bars.high, bars.low, bars.close, int(window), float(mult))
    return np.tanh(_safe_ratio(bars.close - mid, upper - mid))


def _lb_keltner_pos(window: int, mult: float) -> int:
    return int(window)


def _lb_pair_window_minus_1(window: int, nbdev: float) -> int:
    return int(window) - 1


def _donchian_pos(bars: Ohlcv, window: int) -> np.ndarray:
    upper, lower = K.donchian_nb(bars.high, bars.low, int(window))
    return _range_pos(bars.close, upper, lower)


def _donchian_breakout(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    upper, lower = K.donchian_nb(bars.high, bars.low, w)
    # The channel of the previous w bars: a close beyond it is a breakout.
    prev_upper = np.concatenate(([np.nan], upper[:-1]))
    prev_lower = np.concatenate(([np.nan], lower[:-1]))
    atr = K.atr_nb(bars.high, bars.low, bars.close, w)
    above = _safe_ratio(np.maximum(bars.close - prev_upper, 0.0), atr)
    below = _safe_ratio(np.minimum(bars.close - prev_lower, 0.0), atr)
    return np.tanh(above + below)


def _price_range_pos(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return _range_pos(bars.close, K.rolling_max_nb(bars.close, w), K.rolling_min_nb(bars.close, w))


def _zscore(bars: Ohlcv, window: int) -> np.ndarray:
    return np.tanh(K.zscore_nb(bars.close, int(window)) / 2.0)


def _drawdown(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    peak = K.rolling_max_nb(bars.close, w)
    # In [-1, 0]: the fall from the trailing peak in random-walk units.
    return _vol_scaled(np.log(bars.close / peak), bars.close, w, 1.0)


# ---------------------------------------------------------------------------
# volume
# ---------------------------------------------------------------------------


def _obv_slope(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    obv = K.obv_nb(bars.close, bars.volume)
    change = obv - np.concatenate((np.full(w, np.nan), obv[:-w]))
    # Net signed volume of the last w bars over their total volume, in [-1, 1].
    return _t_stat(_safe_ratio(change, K.rolling_sum_nb(bars.volume, w)), w)


def _chaikin_osc(bars: Ohlcv, fast: int, slow: int) -> np.ndarray:
    f, s = int(fast), int(slow)
    adosc = K.adosc_nb(bars.high, bars.low, bars.close, bars.volume, f, s)
    # ADOSC is in volume units and grows with the span between the two EMAs.
    scale = K.sma_nb(bars.volume, s) * (s - f) / 2.0
    return np.tanh(4.0 * _safe_ratio(adosc, scale))


def _lb_chaikin_osc(fast: int, slow: int) -> int:
    return max(int(fast), int(slow)) - 1


def _volume_z(bars: Ohlcv, window: int) -> np.ndarray:
    return np.tanh(K.zscore_nb(np.log1p(np.maximum(bars.volume, 0.0)), int(window)) / 2.0)


# ---------------------------------------------------------------------------
# candles
# ---------------------------------------------------------------------------


# A wick takes about a quarter of a random-walk bar's range (sd ~0.2 per bar).
_WICK_BASE = 0.25
_WICK_GAIN = 2.5


def _candle_body(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return _t_stat(K.sma_nb(_candle_parts(bars)[0], w), w)


def _candle_upper_wick(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return _t_stat(_WICK_GAIN * (K.sma_nb(_candle_parts(bars)[1], w) - _WICK_BASE), w)


def _candle_lower_wick(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    return _t_stat(_WICK_GAIN * (K.sma_nb(_candle_parts(bars)[2], w) - _WICK_BASE), w)


# ---------------------------------------------------------------------------
# the catalogue
# ---------------------------------------------------------------------------


def _family(
    name: str,
    description: str,
    grid: dict[str, tuple[float | int, ...]],
    raw: Callable[..., np.ndarray],
    lookback: Callable[..., int],
    valid: Callable[..., bool] = _always_valid,
) -> Family:
    return Family(name, description, grid, _Feature(raw, lookback), lookback, valid)


_FAMILIES = [
    _family("sma_dist", "tanh(2 log(close/SMA) / (sigma sqrt(w))): close versus its simple moving average",
            {"window": W_LONG}, _sma_dist, _lb_sma_dist),
    _family("ema_dist", "close versus its EMA (TA-Lib seeding), in random-walk units of the window",
            {"window": W_LONG}, _ema_dist, _lb_sma_dist),
    _family("wma_dist", "close versus its linearly weighted moving average",
            {"window": W_LONG}, _wma_dist, _lb_sma_dist),
    _family("dema_dist", "close versus its double EMA", {"window": W_SHORT}, _dema_dist, _lb_dema_dist),
    _family("tema_dist", "close versus its triple EMA", {"window": W_SHORT}, _tema_dist, _lb_tema_dist),
    _family("kama_dist", "close versus Kaufman's adaptive moving average",
            {"window": W_LONG}, _kama_dist, _lb_kama_dist),
    _family("hma_dist", "close versus the Hull moving average", {"window": W_LONG}, _hma_dist, _lb_hma_dist),
    _family("ma_cross", "log(EMA fast / EMA slow) in random-walk units of the slow window",
            {"fast": (2, 3, 5, 8, 13, 21, 34, 55), "slow": (5, 8, 13, 21, 34, 55, 89, 120)},
            _ma_cross, _lb_ma_cross, _fast_below_slow),
    _family("macd_hist", "MACD histogram / close in random-walk units of the signal window",
            {"fast": (5, 8, 12, 19), "slow": (13, 26, 39, 52, 78), "signal": (5, 9, 14)},
            _macd_hist, _lb_macd_hist, _fast_below_slow),
    _family("linreg_slope", "least-squares slope of log close times the window, in random-walk units",
            {"window": W_LONG[1:] + (120,)}, _linreg_slope, _lb_linreg_slope),
    _family("vwap_dist", "close versus the rolling VWAP of the typical price",
            {"window": W_LONG}, _vwap_dist, _lb_sma_dist),
    _family("rsi", "Wilder RSI / 50 - 1", {"window": W_LONG}, _rsi, _lb_window),
    _family("stoch", "fast stochastic %D (SMA of %K over `smooth`; 1 = raw %K) / 50 - 1",
            {"window": W_PAIR, "smooth": (1, 3, 5)}, _stoch, _lb_stoch),
    _family("willr", "Williams %R / 50 + 1", {"window": W_LONG}, _willr, _lb_window_minus_1),
    _family("cci", "tanh(CCI / 100)", {"window": W_STAT}, _cci, _lb_window_minus_1),
    _family("roc", "log rate of change over the window in random-walk units",
            {"window": W_LONG}, _roc, _lb_roc),
    _family("mom", "momentum / (ATR sqrt(w)), squashed", {"window": W_LONG}, _mom, _lb_window),
    _family("trix", "TRIX (1-bar change of the triple EMA) times w, in sigma units",
            {"window": W_SHORT}, _trix, _lb_trix),
    _family("efficiency_ratio", "tanh(sqrt(w) ER): signed Kaufman efficiency ratio (net change / path length)",
            {"window": W_LONG}, _efficiency_ratio, _lb_window),
    _family("aroon_osc", "Aroon oscillator / 100", {"window": W_LONG}, _aroon_osc, _lb_window),
    _family("mfi", "money flow index / 50 - 1", {"window": W_LONG}, _mfi, _lb_window),
    _family("up_fraction", "tanh(sqrt(w) mean sign of the one-bar returns): up-bar majority",
            {"window": W_LONG}, _up_fraction, _lb_window),
    _family("return_autocorr", "tanh(sqrt(w) rolling correlation of consecutive one-bar returns)",
            {"window": W_STAT}, _return_autocorr, _lb_return_autocorr),
    _family("adx", "(ADX - 25) / 25, clipped: trend strength regardless of direction",
            {"window": W_SHORT}, _adx, _lb_adx),
    _family("adx_dmi", "ADX / 50 signed by +DI - -DI", {"window": W_SHORT}, _adx_dmi, _lb_adx),
    _family("dmi_spread", "(+DI - -DI) / (+DI + -DI)", {"window": W_SHORT}, _dmi_spread, _lb_window),
    _family("natr", "tanh(3 log(NATR(w) / NATR(ratio w))): short against long volatility (true range)",
            {"window": (2, 3, 4, 5, 7, 10, 14, 20, 25, 32), "ratio": (2, 3, 4)}, _natr, _lb_natr),
    _family("volatility", "tanh(2 log(std short / std long)) of one-bar log returns",
            {"short": (3, 5, 8, 13, 21, 34, 55), "long": (10, 20, 40, 60, 90, 120)},
            _volatility, _lb_volatility, _short_below_long),
    _family("bb_pctb", "tanh((close - SMA) / (nbdev std)): Bollinger %B rescaled to the bands at +-1",
            {"window": W_PAIR, "nbdev": (1.0, 2.0, 3.0)}, _bb_pctb, _lb_pair_window_minus_1),
    _family("bb_width", "tanh(log(band width / its SMA over ratio*w)): squeeze versus expansion",
            {"window": (4, 5, 6, 7, 8, 9, 10, 12, 14, 17, 20, 24), "ratio": (2, 3, 4)},
            _bb_width, _lb_bb_width),
    _family("keltner_pos", "tanh((close - EMA) / (mult ATR)): position in the Keltner channel",
            {"window": W_PAIR, "mult": (1.0, 2.0, 3.0)}, _keltner_pos, _lb_keltner_pos),
    _family("donchian_pos", "position of the close in the Donchian high/low channel, in [-1, 1]",
            {"window": W_LONG}, _donchian_pos, _lb_window_minus_1),
    _family("donchian_breakout", "tanh(distance beyond the previous bars' channel / ATR), 0 inside",
            {"window": W_LONG}, _donchian_breakout, _lb_window),
    _family("price_range_pos", "position of the close in its own rolling close range, in [-1, 1]",
            {"window": W_STAT}, _price_range_pos, _lb_window_minus_1),
    _family("zscore", "tanh(z / 2) of the close against its rolling mean and std",
            {"window": W_STAT}, _zscore, _lb_window_minus_1),
    _family("drawdown", "log(close / rolling max close) in random-walk units, in [-1, 0]",
            {"window": W_LONG}, _drawdown, _lb_sma_dist),
    _family("obv_slope", "tanh(sqrt(w) OBV change / volume traded over the window)",
            {"window": W_LONG}, _obv_slope, _lb_window),
    _family("chaikin_osc", "tanh(4 ADOSC / (SMA(volume, slow) (slow - fast) / 2)): Chaikin oscillator in volume units",
            {"fast": (2, 3, 5, 8, 13), "slow": (5, 8, 10, 13, 21, 34, 55, 89)},
            _chaikin_osc, _lb_chaikin_osc, _fast_below_slow),
    _family("volume_z", "tanh(z / 2) of log volume against its rolling mean and std",
            {"window": W_STAT}, _volume_z, _lb_window_minus_1),
    _family("candle_body", "tanh(sqrt(w) mean signed body (close - open) / (high - low))",
            {"window": W_CANDLE}, _candle_body, _lb_window_minus_1),
    _family("candle_upper_wick", "tanh(2.5 sqrt(w) (mean upper wick / range - 0.25))",
            {"window": W_CANDLE}, _candle_upper_wick, _lb_window_minus_1),
    _family("candle_lower_wick", "tanh(2.5 sqrt(w) (mean lower wick / range - 0.25))",
            {"window": W_CANDLE}, _candle_lower_wick, _lb_window_minus_1),
]

CATALOG: dict[str, Family] = {f.name: f for f in sorted(_FAMILIES, key=lambda f: f.name)}


# ---------------------------------------------------------------------------
# public helpers
# ---------------------------------------------------------------------------


def _as_values(values: Any) -> tuple:
    """A grid entry as a tuple of values; a bare scalar is a one-value grid."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        return (values,)
    return tuple(values)


def expand_grid(family: Family, grid: Mapping[str, Sequence] | None = None) -> list[dict]:
    """Every valid parameter combination of ``family``, in a stable order.

    ``grid`` maps parameter names to value lists; parameters it leaves out take the
    family's default values, and ``None`` means the default grid. The cartesian
    product runs in the order of ``family.default_grid`` (last parameter fastest)
    and is filtered by ``family.valid``; repeated values are kept once.
    Raises ``ValueError`` naming the family, the parameter and the closest known
    parameter for an unknown name.
    """
    grid = {} if grid is None else grid
    known = list(family.default_grid)
    for name in grid:
        if name not in family.default_grid:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"family '{family.name}' has no parameter '{name}'{hint} (parameters: {', '.join(known)})"
            )
    axes = [tuple(dict.fromkeys(_as_values(grid.get(p, family.default_grid[p])))) for p in known]
    combos = (dict(zip(known, values)) for values in itertools.product(*axes))
    return [p for p in combos if family.valid(**p)]


def compute_variants(family: Family, bars: Ohlcv, params_list: Sequence[dict]) -> np.ndarray:
    """Feature matrix of ``family`` on ``bars``: float32 (n, len(params_list)), NaN in warm-up rows."""
    bars = _as_bars(bars)
    out = np.empty((bars.close.shape[0], len(params_list)), dtype=np.float32)
    for j, params in enumerate(params_list):
        out[:, j] = family.compute(bars, **params)
    return out


def max_lookback(grids: Mapping[str, Mapping[str, Sequence]] | None = None) -> int:
    """Longest warm-up over the given families and all their variants.

    ``grids`` maps family names to grids as in :func:`expand_grid` (an empty or
    ``None`` grid means the family's default grid); only the named families count.
    ``None`` means every family of the catalogue with its default grid.
    """
    if grids is None:
        grids = {name: None for name in CATALOG}
    longest = 0
    for name, grid in grids.items():
        if name not in CATALOG:
            close = difflib.get_close_matches(str(name), list(CATALOG), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"unknown family '{name}'{hint}")
        family = CATALOG[name]
        for params in expand_grid(family, grid or None):
            longest = max(longest, int(family.lookback(**params)))
    return longest


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel with the argument types the
    catalogue uses, so a process pool started afterwards only loads cached machine code."""
    rng = np.random.default_rng(0)
    n = 64
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    bars = Ohlcv(open_, np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999, close,
                 rng.lognormal(10.0, 0.5, n))
    for family in CATALOG.values():
        family.compute(bars, **expand_grid(family)[0])
    # Kernels the catalogue does not reach, with the same argument types.
    h, lo, c, v, w = bars.high, bars.low, bars.close, bars.volume, 5
    K.stoch_nb(h, lo, c, w, 3, 3)
    K.trange_nb(h, lo, c)
    K.ad_nb(h, lo, c, v)
    K.mom_nb(c, w)
    K.rolling_mean_std_nb(c, w, 1)
    K.rolling_std_nb(c, w, 1)


def _format_value(value: Any) -> str:
    """A parameter value as Python/TOML literal: 14, 2.0, 'x' (NumPy scalars unwrapped)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return repr(value)


def variant_label(family_name: str, params: dict) -> str:
    """Readable, stable name of one variant, e.g. ``rsi(window=14)``."""
    inner = ", ".join(f"{k}={_format_value(v)}" for k, v in params.items())
    return f"{family_name}({inner})"


def default_grids_toml() -> str:
    """The default grids as ``[signals.families.<name>]`` TOML sections, one per family."""
    blocks = []
    for name, family in CATALOG.items():
        lines = [f"# {family.description}", f"[signals.families.{name}]"]
        for param, values in family.default_grid.items():
            lines.append(f"{param} = [{', '.join(_format_value(v) for v in values)}]")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
