"""Trading accounting: the one place where positions, prices and costs become equity.

Conventions (shared by the environment, the batched environment and the report's baselines):

* ``positions[k]`` is the position chosen after observing bar ``t = start + k``. It is executed at
  ``close[t]`` and held until ``close[t + 1]``: it earns ``close[t + 1] / close[t] - 1`` times the position.
* Changing the position from ``old`` to ``new`` costs ``cost_rate * |new - old|`` of equity, charged at the
  change, where ``cost_rate = (commission_bps + half_spread_bps + slippage_bps) / 1e4``. The position before
  the first step is flat, so the first entry is charged.
* One step of equity: ``equity[t + 1] = equity[t] * (1 - cost[t]) * (1 + pos[t] * (close[t+1]/close[t] - 1))``.

`step` is that formula for one bar; it takes Python floats or numpy arrays alike (plain arithmetic only),
so the single environment, the batched one and `backtest` compute every step with the same floating-point
operations in the same order and agree to the last bit. The log of the growth (the default reward) is taken
with libm's log (`math.log`) by the single environment and by `backtest`, so those two agree exactly too;
the batched environment takes `np.log` of its arrays, which on CPUs where numpy vectorises log (AVX-512,
NEON) can differ in the last bit of a float64 (never in the float32 rewards a VecEnv returns, but for a
one-in-a-billion tie).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

BPS = 1e-4
"""One basis point as a fraction."""

MIN_GROWTH = 1e-12
"""Growth factors at or below this are ruin (equity wiped out); their log is taken at this floor."""
LOG_MIN_GROWTH = math.log(MIN_GROWTH)

Num = TypeVar("Num", float, np.ndarray)


def cost_rate(commission_bps: float, half_spread_bps: float = 0.0, slippage_bps: float = 0.0) -> float:
    """Fraction of equity paid per unit of position traded."""
    return (commission_bps + half_spread_bps + slippage_bps) * BPS


def step(old_position: Num, new_position: Num, close_now: Num, close_next: Num, rate: float) -> tuple[Num, Num]:
    """(cost, growth) of one bar: cost = rate * |new - old|, growth = equity[t+1] / equity[t].

    `close_now` is the execution price of the change (bar t's close); `close_next` is bar t+1's close.
    """
    # growth = (1 - cost) * (1 + new_position * (close_next / close_now - 1)), written with augmented
    # assignments: in place on arrays (no temporaries in the batched env's hot path), plain arithmetic on
    # floats; the same IEEE operations either way (x * y == y * x and x + y == y + x exactly).
    cost = abs(new_position - old_position)
    cost *= rate
    held_return = close_next / close_now
    held_return -= 1.0
    held_return *= new_position
    held_return += 1.0
    growth = 1.0 - cost
    growth *= held_return
    return cost, growth


def log_growth(growth: float) -> float:
    """log(equity[t+1] / equity[t]) for one step, floored at log(MIN_GROWTH) when the step ruins the account."""
    return math.log(growth) if growth > MIN_GROWTH else LOG_MIN_GROWTH


def log_growth_array(growth: np.ndarray) -> np.ndarray:
    """`log_growth` of each element (np.log: see the module docstring about the last bit)."""
    floored = np.maximum(growth, MIN_GROWTH)
    return np.log(floored, out=floored)


def backtest(close: np.ndarray, positions: np.ndarray, start: int = 0, costs_bps: float = 0.0, *,
             initial_position: float = 0.0, initial_equity: float = 1.0) -> dict[str, np.ndarray]:
    """Replay `positions` on `close` from bar `start`; every array describes the same n = len(positions) steps.

    Needs ``close[start : start + n + 1]``. `costs_bps` is the total cost per unit traded (commission +
    half spread + slippage). Returns:

    * ``positions``   (n,) the positions held, as float64
    * ``turnover``    (n,) ``|pos[k] - pos[k-1]|`` (``pos[-1] = initial_position``)
    * ``trades``      (n,) 1 where the position changed, else 0 (``trades.sum()`` is the trade count)
    * ``costs``       (n,) cost of step k as a fraction of the equity before it
    * ``cost_paid``   (n,) cost of step k in units of equity (``costs * equity[:-1]``)
    * ``price_returns`` (n,) ``close[t+1] / close[t] - 1``
    * ``net_returns`` (n,) ``equity[k+1] / equity[k] - 1``, net of costs
    * ``log_returns`` (n,) ``log(equity[k+1] / equity[k])`` (the environment's default reward; see `log_growth`)
    * ``equity``      (n + 1,) ``equity[0] = initial_equity``, then after each step
    * ``drawdown``    (n + 1,) ``1 - equity / running peak``
    """
    positions = np.asarray(positions, dtype=np.float64)
    n = len(positions)
    close = np.asarray(close, dtype=np.float64)
    if start < 0 or start + n + 1 > len(close):
        raise ValueError(f"backtest needs close[{start}:{start + n + 1}] but close has {len(close)} bars")
    previous = np.concatenate(([float(initial_position)], positions[:-1]))
    price_now, price_next = close[start:start + n], close[start + 1:start + n + 1]
    costs, growth = step(previous, positions, price_now, price_next, costs_bps * BPS)
    # Multiply in the same order as the environment does step by step (cumprod is sequential).
    equity = np.cumprod(np.concatenate(([float(initial_equity)], growth)))
    turnover = np.abs(positions - previous)
    # libm's log element by element: bit-identical to the environment's rewards on every platform.
    log_returns = np.fromiter(map(log_growth, growth.tolist()), dtype=np.float64, count=n)
    return {
        "positions": positions,
        "turnover": turnover,
        "trades": (turnover > 0).astype(np.int64),
        "costs": costs,
        "cost_paid": costs * equity[:-1],
        "price_returns": price_next / price_now - 1.0,
        "net_returns": growth - 1.0,
        "log_returns": log_returns,
        "equity": equity,
        "drawdown": 1.0 - equity / np.maximum.accumulate(equity),
    }
