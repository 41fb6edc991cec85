"""Families on trend and directional movement: least-squares slope, Aroon, Wilder's ADX and DMI."""

from __future__ import annotations

import numpy as np

from signals import kernels as K
from signals.families.base import Families, Ohlcv
from signals.families.transforms import W_LONG, W_SHORT, WINDOW_2, lb_vol, lb_window, safe_ratio, vol_scaled

FAMILIES = Families()


@FAMILIES.define("linreg_slope", "least-squares slope of log close times the window, in random-walk units",
                 {"window": W_LONG[1:] + (120,)}, lookback=lb_vol, domain={"window": WINDOW_2})
def _linreg_slope(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    slope = K.linreg_slope_nb(np.log(bars.close), w)
    # slope * window is the fitted log move over the window.
    return vol_scaled(slope * w, bars.close, w, 1.0)


@FAMILIES.define("aroon_osc", "Aroon oscillator / 100", {"window": W_LONG}, lookback=lb_window,
                 domain={"window": WINDOW_2})
def _aroon_osc(bars: Ohlcv, window: int) -> np.ndarray:
    return K.aroon_nb(bars.high, bars.low, int(window))[2] / 100.0


def _lb_adx(window: int) -> int:
    return 2 * int(window) - 1


@FAMILIES.define("adx", "(ADX - 25) / 25, clipped: trend strength regardless of direction",
                 {"window": W_SHORT}, lookback=_lb_adx, domain={"window": WINDOW_2})
def _adx(bars: Ohlcv, window: int) -> np.ndarray:
    # 25 is Wilder's trending / not-trending line; ADX >= 50 saturates.
    return (K.dmi_nb(bars.high, bars.low, bars.close, int(window))[2] - 25.0) / 25.0


@FAMILIES.define("adx_dmi", "ADX / 50 signed by +DI - -DI", {"window": W_SHORT}, lookback=_lb_adx,
                 domain={"window": WINDOW_2})
def _adx_dmi(bars: Ohlcv, window: int) -> np.ndarray:
    plus_di, minus_di, adx = K.dmi_nb(bars.high, bars.low, bars.close, int(window))
    # Trend strength (ADX 50 -> full scale) signed by the dominant direction.
    return np.sign(plus_di - minus_di) * adx / 50.0


@FAMILIES.define("dmi_spread", "(+DI - -DI) / (+DI + -DI)", {"window": W_SHORT}, lookback=lb_window,
                 domain={"window": WINDOW_2})
def _dmi_spread(bars: Ohlcv, window: int) -> np.ndarray:
    plus_di, minus_di, _ = K.dmi_nb(bars.high, bars.low, bars.close, int(window))
    return safe_ratio(plus_di - minus_di, plus_di + minus_di)
