"""Every choice list of the config in one place: the schema checks values against these, and each layer
that branches on a choice (the data loader, the environments, the trainer's flags) imports the same tuple.

Rewards are the exception that proves the rule: their functions live in `envs/rewards.py` (the registry),
which settings cannot import (settings sits below every other package); `REWARDS` here names them, and a
test checks that the two agree.
"""

from __future__ import annotations

DATA_FORMATS = ("auto", "plain", "dayfirst", "index", "mt5", "parquet")
"""data.format: detected, or one of the named layouts (signals/data.py)."""
SPLIT_CALENDARS = ("common", "per_symbol")
"""split.calendar."""
SCORE_BACKENDS = ("jax", "numpy")
"""signals.score_backend."""
START_METHODS = ("forkserver", "spawn")
"""build.start_method, train.start_method: safe with torch and JAX loaded (fork is not)."""
EXECUTORS = ("process", "dask")
"""build.executor, walkforward.executor, tune.executor."""
ACTION_MODES = ("discrete", "long_only", "continuous")
"""env.action_mode."""
REWARDS = ("log_return", "differential_sharpe")
"""env.reward: the names of envs.rewards.REWARDS."""
VEC_ENVS = ("subproc", "dummy", "batched")
"""train.vec_env, tune.fast.vec_env."""
DEVICES = ("auto", "cpu", "cuda")
"""train.device."""
LEARNERS = ("sb3", "jax")
"""train.learner."""
DRIFT_TESTS = ("mirror", "drift", "none")
"""train.drift_test: what do-no-harm asks beyond the validation interval (trader/selection.py)."""
PRUNERS = ("median", "percentile", "none")
"""tune.pruner."""
WALKFORWARD_WINDOWS = ("expanding", "rolling")
"""walkforward.window."""
