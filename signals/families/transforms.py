"""Building blocks shared by the section modules: volatility scaling, safe ratios, default
window grids and the common lookbacks.

Every feature is a *fixed* transform of the ``signals.kernels`` outputs: prices enter as
log distances normalised by the trailing volatility of log returns (``sigma * sqrt(horizon)``),
averages of per-bar terms as t-statistics, volumes as ratios (see ``signals.catalog``).
"""

from __future__ import annotations

import math

import numpy as np

from signals import kernels as K
from signals.families.base import Ohlcv, Whole

# Volatility normalisers use at least this many returns: a 3-bar std is mostly noise.
VOL_MIN_WINDOW = 10
# Guards divisions by a volatility or range that can be exactly 0 on flat data.
EPS = 1e-12

# ---------------------------------------------------------------------------
# default grids (geometric-ish; parameters.toml holds them, see default_grids_toml)
# ---------------------------------------------------------------------------

# Trailing windows from 2 to 100 bars. The longest lookback sets the embargo between splits
# (lookback + horizon), so grids stop near 128 bars: a daily series keeps usable validation and test splits.
W_LONG = (2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 18, 20, 24, 28, 32, 38, 44, 50, 60, 70, 80, 90, 100)
# For indicators whose lookback is 2-3x the window (DEMA, TEMA, TRIX, ADX): up to 42.
# The close against its SMA or EMA also over the slow windows a trend follower uses (up to 400 bars).
W_TREND = W_LONG + (150, 200, 300, 400)
W_SHORT = (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 20, 22, 24, 26, 28, 30, 34, 38, 42)
# Statistics that are degenerate on 2-4 points (correlation, CCI, z-scores).
W_STAT = (5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 24, 28, 32, 36, 40, 46, 52, 60, 68, 76, 84, 92, 100)
# Smoothing of per-bar candle shapes, 1 = the raw bar.
W_CANDLE = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 18, 20, 24, 28, 32, 38, 44, 50, 60, 70, 84, 100)
# Windows of two-parameter families.
W_PAIR = (5, 7, 10, 14, 20, 28, 40, 56, 80, 100)

# Parameter domains. A window of 1 is allowed where the one-bar value still varies (a bar's
# own range, a one-bar return); families whose one-bar value is constant (an average of one
# close is the close, a std of one value is 0) or whose kernel needs two points take >= 2.
WINDOW_1 = Whole(1)
WINDOW_2 = Whole(2)


# ---------------------------------------------------------------------------
# transforms
# ---------------------------------------------------------------------------


def vol_window(window: int) -> int:
    """Bars of the volatility normaliser of a ``window``-bar feature."""
    return max(int(window), VOL_MIN_WINDOW)


def sigma(close: np.ndarray, window: int) -> np.ndarray:
    """Trailing std (ddof=0) of one-bar log returns over max(window, VOL_MIN_WINDOW) bars.

    Lookback ``vol_window(window)`` (one bar for the first return).
    """
    return K.rolling_std_nb(K.log_returns_nb(close), vol_window(window), 0)


def vol_scaled(log_distance: np.ndarray, close: np.ndarray, window: int, gain: float) -> np.ndarray:
    """tanh(gain * d / (sigma * sqrt(window))): a log distance in units of the move a
    random walk makes over ``window`` bars, squashed into (-1, 1)."""
    scale = sigma(close, window) * math.sqrt(window) + EPS
    return np.tanh(gain * log_distance / scale)


def t_stat(mean: np.ndarray, window: int) -> np.ndarray:
    """tanh(sqrt(w) * mean): a window average of roughly unit-variance, independent
    per-bar terms is ~N(0, 1/w) by chance; this puts it on the same scale for any w."""
    return np.tanh(math.sqrt(window) * mean)


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (NaN stays NaN)."""
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0.0)
    out[np.isnan(num) | np.isnan(den)] = np.nan
    return out


def ma_dist(bars: Ohlcv, ma: np.ndarray, window: int) -> np.ndarray:
    """Close versus a moving average, in random-walk units of the MA's horizon."""
    return vol_scaled(np.log(bars.close / ma), bars.close, window, 2.0)


def range_pos(x: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Position of x in [lower, upper] mapped to [-1, 1]; 0 (the middle) on a flat range."""
    return safe_ratio(2.0 * x - upper - lower, upper - lower)


# ---------------------------------------------------------------------------
# lookbacks shared by several families
# ---------------------------------------------------------------------------


def lb_window(window: int) -> int:
    """Warm-up of ``window`` bars."""
    return int(window)


def lb_window_minus_1(window: int) -> int:
    """Warm-up of a trailing window: ``window - 1`` bars."""
    return int(window) - 1


def lb_vol(window: int) -> int:
    """Warm-up of a ``window - 1`` bar statistic scaled by ``sigma`` (which needs ``vol_window``)."""
    return max(int(window) - 1, vol_window(window))
