"""Families on volume: rolling VWAP, money flow, OBV, Chaikin oscillator, volume z-score."""

from __future__ import annotations

import numpy as np

from signals import kernels as K
from signals.families.base import Below, Families, Ohlcv, Whole
from signals.families.transforms import (
    W_LONG,
    W_STAT,
    WINDOW_1,
    WINDOW_2,
    lb_vol,
    lb_window,
    lb_window_minus_1,
    safe_ratio,
    t_stat,
    vol_scaled,
)

FAMILIES = Families()


@FAMILIES.define("vwap_dist", "close versus the rolling VWAP of the typical price",
                 {"window": W_LONG}, lookback=lb_vol, domain={"window": WINDOW_1})
def _vwap_dist(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    vwap = K.vwap_nb(bars.high, bars.low, bars.close, bars.volume, w)
    return vol_scaled(np.log(bars.close / vwap), bars.close, w, 2.0)


@FAMILIES.define("mfi", "money flow index / 50 - 1", {"window": W_LONG}, lookback=lb_window,
                 domain={"window": WINDOW_1})
def _mfi(bars: Ohlcv, window: int) -> np.ndarray:
    return K.mfi_nb(bars.high, bars.low, bars.close, bars.volume, int(window)) / 50.0 - 1.0


@FAMILIES.define("obv_slope", "tanh(sqrt(w) OBV change / volume traded over the window)",
                 {"window": W_LONG}, lookback=lb_window, domain={"window": WINDOW_1})
def _obv_slope(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    obv = K.obv_nb(bars.close, bars.volume)
    change = obv - np.concatenate((np.full(w, np.nan), obv[:-w]))
    # Net signed volume of the last w bars over their total volume, in [-1, 1].
    return t_stat(safe_ratio(change, K.rolling_sum_nb(bars.volume, w)), w)


def _lb_chaikin_osc(fast: int, slow: int) -> int:
    return max(int(fast), int(slow)) - 1


@FAMILIES.define("chaikin_osc",
                 "tanh(4 ADOSC / (SMA(volume, slow) (slow - fast) / 2)): Chaikin oscillator in volume units",
                 {"fast": (2, 3, 5, 8, 13), "slow": (5, 8, 10, 13, 21, 34, 55, 89)}, lookback=_lb_chaikin_osc,
                 domain={"fast": Whole(1), "slow": WINDOW_2}, valid=Below("fast", "slow"))
def _chaikin_osc(bars: Ohlcv, fast: int, slow: int) -> np.ndarray:
    f, s = int(fast), int(slow)
    adosc = K.adosc_nb(bars.high, bars.low, bars.close, bars.volume, f, s)
    # ADOSC is in volume units and grows with the span between the two EMAs.
    scale = K.sma_nb(bars.volume, s) * (s - f) / 2.0
    return np.tanh(4.0 * safe_ratio(adosc, scale))


@FAMILIES.define("volume_z", "tanh(z / 2) of log volume against its rolling mean and std",
                 {"window": W_STAT}, lookback=lb_window_minus_1, domain={"window": WINDOW_2})
def _volume_z(bars: Ohlcv, window: int) -> np.ndarray:
    return np.tanh(K.zscore_nb(np.log1p(np.maximum(bars.volume, 0.0)), int(window)) / 2.0)
