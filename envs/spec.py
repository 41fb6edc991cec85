"""The one environment spec: every setting of an environment but its store and split, built from the config.

`TradingEnv`, `BatchedTradingVecEnv` and the factory (`envs.factory`) all take an `EnvSpec`, so a setting
is written once, here. The spec is plain data (picklable, a few hundred bytes): a SubprocVecEnv worker
gets it with the store's path and builds its environment itself. Its values are checked when an
environment is built from it (`TradingSetup.create`), with messages naming the config key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from settings.schema import CostsConfig, EnvConfig


@dataclass(frozen=True)
class EnvSpec:
    """What an environment trades and how (the defaults are those of an environment built without a config).

    See `TradingEnv` for what each setting does.
    """

    window: int = 16
    """Rows of features in each observation (env.window)."""
    action_mode: str = "discrete"
    """discrete, long_only or continuous (env.action_mode)."""
    reward: str = "log_return"
    """A reward of envs.rewards.REWARDS (env.reward)."""
    normalise_reward: bool = True
    """Divide the reward by the symbol's per-bar volatility on the training split (env.normalise_reward)."""
    trade_penalty: float = 0.0
    """Training reward minus this times the cost of each change of position (env.trade_penalty)."""
    drawdown_penalty: float = 0.0
    """Reward minus this times the increase of the drawdown at each step (env.drawdown_penalty)."""
    dsr_eta: float = 0.01
    """Adaptation rate of the differential Sharpe ratio's moving moments (env.dsr_eta)."""
    episode_length: int | None = 512
    """Steps per episode from a random start; None: the whole split from its start (evaluation)."""
    commission_bps: float = 1.0
    """Commission in basis points of traded notional (costs.commission_bps)."""
    half_spread_bps: float = 1.0
    """Half the bid-ask spread in basis points (costs.half_spread_bps)."""
    slippage_bps: float = 0.0
    """Extra slippage in basis points per unit of position traded (costs.slippage_bps)."""
    symbols: Sequence[str] | None = None
    """The symbols traded (each episode draws one); None: all of the store's for the split."""

    @classmethod
    def from_config(cls, env: EnvConfig, costs: CostsConfig, **changes: Any) -> EnvSpec:
        """The spec of the [env] and [costs] sections, with `changes` (e.g. episode_length=None) on top."""
        return cls(window=env.window, action_mode=env.action_mode, reward=env.reward,
                   normalise_reward=env.normalise_reward, trade_penalty=env.trade_penalty,
                   drawdown_penalty=env.drawdown_penalty, dsr_eta=env.dsr_eta, episode_length=env.episode_length,
                   commission_bps=costs.commission_bps, half_spread_bps=costs.half_spread_bps,
                   slippage_bps=costs.slippage_bps).replace(**changes)

    def replace(self, **changes: Any) -> EnvSpec:
        """A copy with `changes` (unknown names are a TypeError, as in the constructor)."""
        return dataclasses.replace(self, **changes) if changes else self


def resolve_spec(spec: EnvSpec | None, settings: dict[str, Any]) -> EnvSpec:
    """`spec` (default: EnvSpec()) with keyword `settings` on top: an environment's `spec=` and `**settings`."""
    return (spec or EnvSpec()).replace(**settings)
