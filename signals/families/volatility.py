"""Families on volatility, bands and channels: NATR regime, Bollinger, Keltner, Donchian."""

from __future__ import annotations

import numpy as np

from signals import kernels as K
from signals.families.base import Families, Ohlcv, Positive, Whole
from signals.families.transforms import (
    EPS,
    W_LONG,
    W_PAIR,
    WINDOW_1,
    WINDOW_2,
    lb_window,
    lb_window_minus_1,
    range_pos,
    safe_ratio,
)

FAMILIES = Families()


def _lb_natr(window: int, ratio: int) -> int:
    return int(window) * int(ratio)


# ratio = 1 compares a NATR with itself: the feature would be 0.
@FAMILIES.define("natr", "tanh(3 log(NATR(w) / NATR(ratio w))): short against long volatility (true range)",
                 {"window": (2, 3, 4, 5, 7, 10, 14, 20, 25, 32), "ratio": (2, 3, 4)}, lookback=_lb_natr,
                 domain={"window": WINDOW_1, "ratio": Whole(2, "ratio")})
def _natr(bars: Ohlcv, window: int, ratio: int) -> np.ndarray:
    w = int(window)
    short = K.natr_nb(bars.high, bars.low, bars.close, w)
    long = K.natr_nb(bars.high, bars.low, bars.close, w * int(ratio))
    # Volatility regime: short-horizon NATR against a longer one (asset-free scale).
    return np.tanh(3.0 * np.log((short + EPS) / (long + EPS)))


def _lb_pair_window_minus_1(window: int, nbdev: float) -> int:
    return int(window) - 1


@FAMILIES.define("bb_pctb", "tanh((close - SMA) / (nbdev std)): Bollinger %B rescaled to the bands at +-1",
                 {"window": W_PAIR, "nbdev": (1.0, 2.0, 3.0)}, lookback=_lb_pair_window_minus_1,
                 domain={"window": WINDOW_2, "nbdev": Positive("band width")})
def _bb_pctb(bars: Ohlcv, window: int, nbdev: float) -> np.ndarray:
    upper, mid, lower = K.bollinger_nb(bars.close, int(window), float(nbdev), float(nbdev))
    # tanh of %B rescaled to -1 (lower band) .. +1 (upper band); 0 on a flat window.
    return np.tanh(safe_ratio(bars.close - mid, upper - mid))


def _lb_bb_width(window: int, ratio: int) -> int:
    return int(window) - 1 + int(window) * int(ratio) - 1


@FAMILIES.define("bb_width", "tanh(log(band width / its SMA over ratio*w)): squeeze versus expansion",
                 {"window": (4, 5, 6, 7, 8, 9, 10, 12, 14, 17, 20, 24), "ratio": (2, 3, 4)},
                 lookback=_lb_bb_width, domain={"window": WINDOW_2, "ratio": Whole(1, "ratio")})
def _bb_width(bars: Ohlcv, window: int, ratio: int) -> np.ndarray:
    w = int(window)
    mean, std = K.rolling_mean_std_nb(bars.close, w, 0)
    width = std / mean
    baseline = K.sma_nb(width, w * int(ratio))
    # Squeeze / expansion: band width against its own trailing average.
    return np.tanh(np.log((width + EPS) / (baseline + EPS)))


def _lb_keltner_pos(window: int, mult: float) -> int:
    return int(window)


@FAMILIES.define("keltner_pos", "tanh((close - EMA) / (mult ATR)): position in the Keltner channel",
                 {"window": W_PAIR, "mult": (1.0, 2.0, 3.0)}, lookback=_lb_keltner_pos,
                 domain={"window": WINDOW_2, "mult": Positive("channel multiplier")})
def _keltner_pos(bars: Ohlcv, window: int, mult: float) -> np.ndarray:
    upper, mid, _ = K.keltner_nb(bars.high, bars.low, bars.close, int(window), float(mult))
    return np.tanh(safe_ratio(bars.close - mid, upper - mid))


@FAMILIES.define("donchian_pos", "position of the close in the Donchian high/low channel, in [-1, 1]",
                 {"window": W_LONG}, lookback=lb_window_minus_1, domain={"window": WINDOW_1})
def _donchian_pos(bars: Ohlcv, window: int) -> np.ndarray:
    upper, lower = K.donchian_nb(bars.high, bars.low, int(window))
    return range_pos(bars.close, upper, lower)


@FAMILIES.define("donchian_breakout", "tanh(distance beyond the previous bars' channel / ATR), 0 inside",
                 {"window": W_LONG}, lookback=lb_window, domain={"window": WINDOW_1})
def _donchian_breakout(bars: Ohlcv, window: int) -> np.ndarray:
    w = int(window)
    upper, lower = K.donchian_nb(bars.high, bars.low, w)
    # The channel of the previous w bars: a close beyond it is a breakout.
    prev_upper = np.concatenate(([np.nan], upper[:-1]))
    prev_lower = np.concatenate(([np.nan], lower[:-1]))
    atr = K.atr_nb(bars.high, bars.low, bars.close, w)
    above = safe_ratio(np.maximum(bars.close - prev_upper, 0.0), atr)
    below = safe_ratio(np.minimum(bars.close - prev_lower, 0.0), atr)
    return np.tanh(above + below)
