"""Trading environments over the signal store.

Importing this package registers `trader/SignalTrading-v0` with Gymnasium:

    gymnasium.make("trader/SignalTrading-v0", store="data/signals", split="train")

It is registered without Gymnasium's OrderEnforcing and PassiveEnvChecker wrappers: the environment
itself refuses step() before reset() (and after the end of an episode), the tests run Gymnasium's and
SB3's full `check_env` on it, and the two pass-through wrappers would add about 15 % to every step.
`gymnasium.make(..., disable_env_checker=False)` brings the checker back.

`envs.batched` (the array-stepped VecEnv) and `envs.factory` (vectorised-env builders) import
stable-baselines3 and are imported explicitly, not here.
"""

from gymnasium.envs.registration import register, registry

from envs.trading_env import TradingEnv

ENV_ID = "trader/SignalTrading-v0"

if ENV_ID not in registry:  # importing twice (e.g. reload) must not re-register
    register(id=ENV_ID, entry_point="envs.trading_env:TradingEnv", order_enforce=False, disable_env_checker=True)

__all__ = ["ENV_ID", "TradingEnv"]
