"""The project's one config tree, loaded from parameters.toml (stdlib only).

It sits below `signals`, `envs` and `trader` so that each command can load the whole tree
without importing upwards.
"""

from settings.cli import add_params_arguments, params_from_cli
from settings.loader import (ConfigError, apply_override, load_params, params_from_dict, parse_override,
                             replace_path, to_dict, to_toml)
from settings import choices
from settings.choices import EXECUTORS
from settings.schema import (BuildConfig, CostsConfig, DataConfig, EnvConfig, Params, PPOConfig,
                             SignalsConfig, SplitConfig, TrainConfig, TuneConfig, TuneFastConfig, WalkForwardConfig)

__all__ = [
    "EXECUTORS", "choices",
    "BuildConfig", "ConfigError", "CostsConfig", "DataConfig", "EnvConfig", "Params", "PPOConfig",
    "SignalsConfig", "SplitConfig", "TrainConfig", "TuneConfig", "TuneFastConfig", "WalkForwardConfig",
    "add_params_arguments", "apply_override", "load_params", "params_from_cli",
    "params_from_dict", "parse_override", "replace_path", "to_dict", "to_toml",
]
