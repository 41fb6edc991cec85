"""The reward registry: each reward's scalar form (TradingEnv) beside its array form (BatchedTradingVecEnv).

A reward turns the step's log growth of equity `r` (net of costs: `envs.accounting.log_growth`) into the
number the agent learns from. It may keep a state between steps (a tuple of floats in the single env, a
tuple of per-env arrays in the batched env), started at each reset by `initial_state(scale)`, where `scale`
is the symbol's per-bar volatility of log returns on the training split (`TradingSetup.reward_scales`).
Both forms do the same operations in the same order, so the batched env reproduces the single env bit for
bit (tested for every registered reward).

To add a reward: write its three functions here, add one `Reward` to `REWARDS`, and its name to
`settings.choices.REWARDS` (the config sits below envs and cannot import this; a test checks the two
agree); both environments and the tests pick it up from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

DSR_MIN_VARIANCE = 1e-12
"""Below this variance of the moving moments the differential Sharpe ratio is 0 (it is undefined at 0)."""

ScalarState = tuple[float, ...]
ArrayState = tuple[np.ndarray, ...]


class Reward(NamedTuple):
    """One reward: its state at reset, and one step of it for a float and for an array of floats."""

    initial_state: Callable[[float, float], ScalarState]
    """(scale, dsr_eta) -> the state at reset."""
    scalar: Callable[[float, ScalarState, float], tuple[float, ScalarState]]
    """(r, state, dsr_eta) -> (reward, next state)."""
    array: Callable[[np.ndarray, ArrayState, float], tuple[np.ndarray, ArrayState]]
    """(r, state, dsr_eta) -> (rewards, next state), element-wise the same as `scalar`."""


# ---------------------------------------------------------------- log return (in volatility units)

def _log_return_state(scale: float, eta: float) -> ScalarState:
    return (scale,)


def log_return(r: float, state: ScalarState, eta: float) -> tuple[float, ScalarState]:
    """The log return net of costs over the scale: rewards of order 1 however volatile the market is."""
    return r / state[0], state


def log_return_array(r: np.ndarray, state: ArrayState, eta: float) -> tuple[np.ndarray, ArrayState]:
    return r / state[0], state


# ---------------------------------------------------------------- differential Sharpe ratio

def _dsr_state(scale: float, eta: float) -> ScalarState:
    """Moments seeded as if the strategy had been fully invested: A = 0, B = scale**2.

    Moody & Saffell's recurrence started at A = B = 0 divides by a variance that is ~0 for the first
    steps, so |D| reaches ~1e4 at the start of every episode and those few steps dominate the gradient.
    Seeded with the training split's per-bar variance, D starts at about r / scale and stays of order 1.
    """
    return (0.0, scale * scale)


def differential_sharpe(r: float, state: ScalarState, eta: float) -> tuple[float, ScalarState]:
    """Moody & Saffell's D_t from the moments before this step, then the moments' update."""
    a, b = state
    delta_a, delta_b = r - a, r * r - b
    variance = b - a * a
    following = (a + eta * delta_a, b + eta * delta_b)
    if variance > DSR_MIN_VARIANCE:
        return (b * delta_a - 0.5 * a * delta_b) / (variance * math.sqrt(variance)), following
    return 0.0, following


def differential_sharpe_array(r: np.ndarray, state: ArrayState, eta: float) -> tuple[np.ndarray, ArrayState]:
    a, b = state
    delta_a, delta_b = r - a, r * r - b
    variance = b - a * a
    following = (a + eta * delta_a, b + eta * delta_b)
    ok = variance > DSR_MIN_VARIANCE
    safe = np.where(ok, variance, 1.0)
    return np.where(ok, (b * delta_a - 0.5 * a * delta_b) / (safe * np.sqrt(safe)), 0.0), following


REWARDS: dict[str, Reward] = {
    "log_return": Reward(_log_return_state, log_return, log_return_array),
    "differential_sharpe": Reward(_dsr_state, differential_sharpe, differential_sharpe_array),
}
"""Every reward by its `env.reward` name."""


def training_volatility(close: np.ndarray, start: int, stop: int) -> float:
    """Per-bar std of the log returns between the closes of bars [start, stop): the reward scale."""
    prices = np.asarray(close[start:stop], dtype=np.float64)
    returns = np.diff(np.log(prices))
    returns = returns[np.isfinite(returns)]
    scale = float(returns.std()) if len(returns) > 1 else 0.0
    return scale if scale > 1e-12 else 1.0
