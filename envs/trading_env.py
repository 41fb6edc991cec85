"""A Gymnasium environment that trades one symbol of the signal store, bar by bar.

The store's arrays stay memory-mapped: an environment holds views on them (never copies), so any number
of environments in any number of processes share one copy of the data in the page cache. Everything that
does not change within an episode is prepared at construction or reset; `step` only slices and does
arithmetic. `TradingSetup` (validation, spaces, per-symbol views) and `draw_episode` (the reset's random
draws) are shared with `envs.batched`, which must reproduce this environment exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs import accounting
from envs.rewards import DSR_MIN_VARIANCE, REWARDS, training_volatility  # noqa: F401 (re-exported)
from envs.spec import EnvSpec, resolve_spec
from settings.choices import ACTION_MODES
from signals.store import SPLITS, Store, open_store

ACTION_POSITIONS: Mapping[str, tuple[float, ...]] = {"discrete": (-1.0, 0.0, 1.0), "long_only": (0.0, 1.0)}
"""Position of each discrete action: discrete 0/1/2 = short/flat/long; long_only 0/1 = flat/long."""


def flat_action(action_mode: str) -> Any:
    """The action that holds no position in `action_mode` (what a policy that stays flat sends)."""
    if action_mode == "continuous":
        return np.zeros(1, dtype=np.float32)
    return ACTION_POSITIONS[action_mode].index(0.0)


DEFAULT_FEATURE_BOUND = 5.0
"""|feature| bound assumed when the store's manifest has no `feature_bound`."""
TIME_SCALE = 32.0
"""Time-in-position feature = bars / (bars + TIME_SCALE): 0 at a change, 0.5 after 32 bars, -> 1."""
UNREALISED_SCALE = 0.05
"""Unrealised-return feature = u / (UNREALISED_SCALE + |u|): 0.5 at +5 %, -0.5 at -5 %, within (-1, 1)."""
N_STATE = 3
"""Agent-state values appended to the features: position, time in position, unrealised return."""
BLOCK = 64
"""Observation windows a TradingEnv copies from the memmap at a time (64 x (window x features + 3) float32)."""


# ---------------------------------------------------------------- setup shared with the batched env

@dataclass(frozen=True)
class SymbolLayout:
    """One symbol's views on the store and the bars an episode may use.

    `windows[t - window + 1]` is the flattened observation window ending at bar t (a strided view on the
    memory-mapped features: rows t - window + 1 .. t). `first_bar` is the first decision bar of the split
    (its start, or train start + window - 1 if later); `last_bar` (stop - 1) is the last bar of the split:
    it is observed, never traded from, since trading from it would earn the return to a bar outside the split.
    """

    name: str
    windows: np.ndarray
    close: np.ndarray
    first_bar: int
    last_bar: int
    reward_scale: float = 1.0
    """What the reward divides by: the per-bar volatility of the training split, or 1 (no normalisation)."""

    @property
    def n_steps(self) -> int:
        """Steps of an episode that runs the whole split."""
        return self.last_bar - self.first_bar

    def episode_steps(self, episode_length: int | None) -> int:
        """Steps of one episode on this symbol: `episode_length`, or the whole split where that is shorter (a
        short file still trains, on episodes that each run its whole split) or `episode_length` is None."""
        return self.n_steps if episode_length is None else min(episode_length, self.n_steps)


def _split_hint(split: str) -> str:
    """The settings that size a split, for error messages."""
    if split == "test":
        return "split.train and split.validation (the test split gets the bars they leave)"
    return f"split.{split} (or split.{split}_end)"


def _window_view(features: np.ndarray, window: int) -> np.ndarray:
    """(n_bars - window + 1, window * n_features) read-only strided view: row i = rows i .. i+window-1 flattened."""
    n_bars, n_features = features.shape
    row = features.strides[0]
    return np.lib.stride_tricks.as_strided(features, shape=(n_bars - window + 1, window * n_features),
                                           strides=(row, features.strides[1]), writeable=False)


def _check_settings(split: str, window: int, action_mode: str, reward: str, drawdown_penalty: float,
                    dsr_eta: float, episode_length: int | None, rate: float, trade_penalty: float = 0.0) -> None:
    """ValueError naming the setting to change, for values no store could make right."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    if int(window) != window or window < 1:
        raise ValueError(f"env.window must be an integer >= 1 (got {window})")
    if action_mode not in ACTION_MODES:
        raise ValueError(f"env.action_mode must be one of {', '.join(ACTION_MODES)} (got {action_mode!r})")
    if reward not in REWARDS:
        raise ValueError(f"env.reward must be one of {', '.join(REWARDS)} (got {reward!r})")
    if not drawdown_penalty >= 0:
        raise ValueError(f"env.drawdown_penalty must be >= 0 (got {drawdown_penalty})")
    if not trade_penalty >= 0:
        raise ValueError(f"env.trade_penalty must be >= 0 (got {trade_penalty})")
    if not 0 < dsr_eta < 1:
        raise ValueError(f"env.dsr_eta must be in (0, 1) (got {dsr_eta})")
    if episode_length is not None and (int(episode_length) != episode_length or episode_length < 1):
        raise ValueError(f"env.episode_length must be an integer >= 1 or None (got {episode_length})")
    if not 0 <= rate < 0.5:
        # A full reversal (|change| = 2) must leave some equity: 2 * rate < 1.
        raise ValueError(f"costs.commission_bps + costs.half_spread_bps + costs.slippage_bps must be in "
                         f"[0, 5000) basis points (got {rate / accounting.BPS:g})")


def _layout(store: Store, name: str, split: str, window: int, scaled: bool = False) -> SymbolLayout:
    """Views for one symbol, after checking that its split holds the window and one step."""
    data = store.symbol(name)
    start, stop = data.split(split)
    n_bars = stop - start
    # The window may reach back before the split (the past: features are causal), never into the warm-up
    # before the training split, where features are not valid yet.
    first_bar = max(start, data.split("train")[0] + window - 1)
    steps = stop - 1 - first_bar
    if steps < 1:
        raise ValueError(
            f"env.window = {window} does not fit the {split!r} split of {name} ({n_bars} bars; an observation "
            f"needs window bars and a step one bar more): lower env.window or give the split more bars via "
            f"{_split_hint(split)}")
    # Plain ndarray views of the memmaps: same pages, but no np.memmap subclass overhead on every slice.
    features = data.features.view(np.ndarray)
    close = data.close.view(np.ndarray)
    # The scale comes from the training split whatever split this env trades: the same reward units in
    # training and validation, and nothing read from the bars being evaluated.
    scale = training_volatility(close, *data.split("train")) if scaled else 1.0
    return SymbolLayout(name=name, windows=_window_view(features, window), close=close,
                        first_bar=first_bar, last_bar=stop - 1, reward_scale=scale)


@dataclass(frozen=True)
class TradingSetup:
    """Everything about an environment that is fixed at construction; shared by the single and batched envs."""

    store: Store
    split: str
    spec: EnvSpec
    """The settings, checked, with plain types (int window and episode length, floats) and the symbols named."""
    layouts: tuple[SymbolLayout, ...]
    n_features: int
    cost_rate: float
    feature_bound: float

    @classmethod
    def create(cls, store: str | Path | Store, split: str = "train", spec: EnvSpec | None = None, *,
               expected_key: str | None = None) -> TradingSetup:
        """Open (or take) the store, check every setting of `spec` (default: EnvSpec()), build the per-symbol views."""
        spec = spec or EnvSpec()
        for key in ("commission_bps", "half_spread_bps", "slippage_bps"):
            value = getattr(spec, key)
            if not value >= 0:
                raise ValueError(f"costs.{key} must be >= 0 basis points (got {value})")
        rate = accounting.cost_rate(spec.commission_bps, spec.half_spread_bps, spec.slippage_bps)
        _check_settings(split, spec.window, spec.action_mode, spec.reward, spec.drawdown_penalty, spec.dsr_eta,
                        spec.episode_length, rate, spec.trade_penalty)
        window = int(spec.window)
        episode_length = None if spec.episode_length is None else int(spec.episode_length)
        symbols, reward, normalise_reward = spec.symbols, spec.reward, spec.normalise_reward
        if isinstance(store, Store):
            # An open store is checked against the expected key the same way open_store checks a path.
            opened = store if expected_key is None else open_store(store.root, expected_key)
        else:
            opened = open_store(store, expected_key)
        if symbols is not None:
            names = tuple(symbols)
        else:  # mirror images (data.mirror) are training data only
            names = opened.training_symbols if split == "train" else opened.symbols
        if not names:
            raise ValueError("symbols is empty: name at least one symbol of the store (or None for all)")
        unknown = [s for s in names if s not in opened.training_symbols]
        if unknown:
            raise ValueError(f"symbols {unknown} are not in the store {opened.root} "
                             f"(it has {', '.join(opened.symbols)})")
        # differential_sharpe is scale-free, but its moments are seeded with the training variance.
        scaled = bool(normalise_reward) or reward == "differential_sharpe"
        layouts = tuple(_layout(opened, s, split, window, scaled) for s in names)
        checked = spec.replace(window=window, episode_length=episode_length, symbols=names,
                               drawdown_penalty=float(spec.drawdown_penalty), dsr_eta=float(spec.dsr_eta),
                               normalise_reward=bool(normalise_reward), trade_penalty=float(spec.trade_penalty))
        return cls(store=opened, split=split, spec=checked, layouts=layouts, n_features=opened.n_features,
                   cost_rate=rate, feature_bound=float(opened.manifest.get("feature_bound", DEFAULT_FEATURE_BOUND)))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(layout.name for layout in self.layouts)

    def short_episode_notes(self) -> list[str]:
        """One line per symbol whose split is shorter than `spec.episode_length`: its episodes run the whole split."""
        length = self.spec.episode_length
        return [f"{layout.name}: the {self.split!r} split has room for {layout.n_steps} steps, fewer than "
                f"env.episode_length = {length}: each of its episodes runs the whole split"
                for layout in self.layouts if length is not None and layout.n_steps < length]

    @property
    def window_size(self) -> int:
        """Feature values in an observation (window * n_features)."""
        return self.spec.window * self.n_features

    def observation_space(self) -> spaces.Box:
        """A new Box: the features within +-feature_bound, then position, time in position, unrealised return."""
        size = self.window_size
        low = np.concatenate([np.full(size, -self.feature_bound), [-1.0, 0.0, -1.0]]).astype(np.float32)
        high = np.concatenate([np.full(size, self.feature_bound), [1.0, 1.0, 1.0]]).astype(np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.Space:
        """A new action space (each env seeds its own)."""
        if self.spec.action_mode == "continuous":
            return spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
        return spaces.Discrete(len(ACTION_POSITIONS[self.spec.action_mode]))


def draw_episode(rng: np.random.Generator, layouts: Sequence[SymbolLayout], episode_length: int | None,
                 options: Mapping[str, Any] | None = None) -> tuple[int, int, int]:
    """(symbol index, first decision bar, bar where the episode ends) of a new episode.

    Draws, in this order and only when needed: the symbol (uniform, when there are several and
    options has no "symbol"), then the start (uniform over the starts whose episode fits in the split,
    when episode_length is set and options has no "start"). Without episode_length the episode runs from
    the first decision bar of the split (or options["start"]) to its last bar; a symbol whose split is
    shorter than episode_length has episodes of its whole split (`SymbolLayout.episode_steps`).
    """
    options = options or {}
    if "symbol" in options:
        names = [layout.name for layout in layouts]
        if options["symbol"] not in names:
            raise ValueError(f"options['symbol'] = {options['symbol']!r} is not one of this env's symbols {names}")
        index = names.index(options["symbol"])
    elif len(layouts) > 1:
        index = int(rng.integers(len(layouts)))
    else:
        index = 0
    layout = layouts[index]
    length = layout.episode_steps(episode_length)
    if "start" in options:
        start = int(options["start"])
        latest = layout.last_bar - (1 if episode_length is None else length)
        if not layout.first_bar <= start <= latest:
            raise ValueError(f"options['start'] = {start} is outside [{layout.first_bar}, {latest}], the decision "
                             f"bars of {layout.name} where an episode fits")
    elif episode_length is None:
        start = layout.first_bar
    else:
        start = int(rng.integers(layout.first_bar, layout.last_bar - length + 1))
    end = layout.last_bar if episode_length is None else start + length
    return index, start, end


# ---------------------------------------------------------------- the environment

class TradingEnv(gym.Env):
    """Trade one symbol of the signal store: each step holds a position from one bar's close to the next.

    ## Arguments

    `store` is a store directory (opened with `signals.store.open_store(store, expected_key)`) or an open
    `Store`; `split` is "train", "validation" or "test"; `spec` (an `envs.spec.EnvSpec`, built from the
    config with `EnvSpec.from_config`) holds every other setting, and keyword `settings` (its field names,
    e.g. `window=8`) change single ones on top of it. `spec.symbols` limits the symbols (default: all; each
    episode picks one uniformly with `self.np_random`). Costs are in basis points of traded notional.

    ## Action Space

    * `action_mode="discrete"` (default): `Discrete(3)`, 0 / 1 / 2 = short / flat / long (position -1 / 0 / +1).
    * `"long_only"`: `Discrete(2)`, 0 / 1 = flat / long (position 0 / +1).
    * `"continuous"`: `Box(-1, 1, (1,), float32)`, the target position (clipped to [-1, 1]).

    The action chosen after observing bar t is executed at bar t's close and held until bar t+1's close:
    the close it is paid at the end of the step (bar t+1) is outside every observation up to bar t.

    ## Observation Space

    A flat `Box` of `window * n_features + 3` float32 values with finite bounds:

    * the features of bars t - window + 1 .. t, row by row (bounded by the store's `feature_bound`, default
      +-5). The window may reach back before the split start (past bars), never before the training split's.
    * position held now, in [-1, 1];
    * time in position: bars since the position last changed (bars flat count too) n, as n / (n + 32), in [0, 1);
    * unrealised return of the open position, u = position * (close[t] / close at the last change - 1),
      as u / (0.05 + |u|), in (-1, 1); 0 when flat.

    ## Rewards

    With `cost = (commission_bps + half_spread_bps + slippage_bps) / 1e4 * |new_pos - old_pos|` and
    `equity[t+1] = equity[t] * (1 - cost) * (1 + new_pos * (close[t+1] / close[t] - 1))` (`envs.accounting`):

    The rewards are registered in `envs.rewards` (scalar and array forms side by side). With `s` the
    symbol's per-bar volatility of log returns on the training split (`normalise_reward=True`, the
    default; else s = 1 for log_return):

    * `reward="log_return"` (default): `log(equity[t+1] / equity[t]) / s`, net of costs; the rewards of an
      episode sum to the log of its final equity over s. Costs are charged in full either way; only the
      units change, so that the value head fits targets of order 1.
    * `reward="differential_sharpe"`: Moody & Saffell's differential Sharpe ratio of that log return R_t,
      `D_t = (B ΔA - A ΔB / 2) / (B - A²)^(3/2)` with `ΔA = R_t - A`, `ΔB = R_t² - B`, using the moments A, B
      before the update `A += dsr_eta * ΔA`, `B += dsr_eta * ΔB`; at reset A = 0 and B = s² (as if fully
      invested: D starts at about R_t / s instead of ~1e4); D = 0 while B - A² <= 1e-12.
    * `trade_penalty > 0` subtracts `trade_penalty * cost / s` from either on each change of position: a
      training signal against churn on top of the cost, which equity (and so every reported figure) pays
      in full and only once.
    * `drawdown_penalty > 0` subtracts `drawdown_penalty * max(0, dd[t+1] - dd[t]) / s` from either, where
      `dd = 1 - equity / running peak of equity` (the episode's peak, starting at 1).

    ## Starting State

    Flat, equity 1, no costs paid. With `episode_length` set, the first decision bar is drawn uniformly
    (with `self.np_random`) among those whose episode fits inside the split (a symbol whose split is
    shorter than `episode_length` runs its whole split, from its first decision bar); with `episode_length=None`
    the episode starts at the split's first decision bar (evaluation). `reset(options={"symbol": name,
    "start": bar})` may fix either.

    ## Episode End

    * Truncation: after `episode_length` steps (or the symbol's whole split, if shorter), or, with
      `episode_length=None`, when the observation reaches the split's last bar (its close has no next close
      inside the split to trade towards).
    * Termination: only ruin, a step whose growth factor is <= 1e-12 (equity wiped out: a short through a
      price that doubles within one bar, or a long through a price that falls to zero). Its reward is
      floored at log(1e-12).

    ## Info

    `equity` (starting at 1), `position` (held now), `cost` (paid by this step, in units of the starting
    equity) and `total_cost` (over the episode), `trades` (changes of position so far), `turnover` (the sum
    of |change of position| so far), `bar` (index in the store of the bar the observation ends at), `symbol`.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, store: str | Path | Store, split: str = "train", spec: EnvSpec | None = None, *,
                 expected_key: str | None = None, **settings: Any) -> None:
        super().__init__()
        self.setup = TradingSetup.create(store, split, resolve_spec(spec, settings), expected_key=expected_key)
        spec = self.setup.spec
        self.observation_space = self.setup.observation_space()
        self.action_space = self.setup.action_space()
        # Constants of step(), kept as attributes so step() does no lookups through the setup.
        self._positions = ACTION_POSITIONS.get(spec.action_mode)
        self._rate = self.setup.cost_rate
        self._reward = REWARDS[spec.reward]
        self._eta = spec.dsr_eta
        self._penalty = spec.drawdown_penalty
        self._trade_penalty = spec.trade_penalty * self.setup.cost_rate
        self._k = self.setup.window_size
        # Windows of the next BLOCK bars, copied from the memmap in one go: a step then copies one row
        # (window + state) instead of allocating and filling an array from the memmap (about 1 us less).
        self._block = np.zeros((BLOCK, self._k + N_STATE), dtype=np.float32)
        self._block_bar = -BLOCK  # bar of the block's first row: none yet
        self._first_row = spec.window - 1
        self._t = self._end = 0  # no episode yet: step() before reset() raises
        self._select(0)

    # ------------------------------------------------------------ reset

    def _select(self, index: int) -> None:
        """Point the per-episode views at one symbol."""
        layout = self.setup.layouts[index]
        self._symbol = layout.name
        self._windows = layout.windows
        # A memoryview indexes to Python floats straight from the memmap, faster than ndarray indexing.
        self._price = memoryview(layout.close)  # type: ignore[arg-type]  # an ndarray is a buffer
        self._scale = layout.reward_scale

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode (see Starting State); options may hold "symbol" and/or "start"."""
        super().reset(seed=seed)
        index, start, end = draw_episode(self.np_random, self.setup.layouts, self.setup.spec.episode_length, options)
        self._select(index)
        self._t, self._end = start, end
        self._block_bar = -BLOCK  # the next observation refills the block from the new episode's start
        self._position = 0.0
        self._held = 0
        self._entry = self._price[start]
        self._equity = self._peak = 1.0
        self._drawdown = self._total_cost = 0.0
        self._trades = 0
        self._turnover = 0.0
        self._reward_state = self._reward.initial_state(self._scale, self._eta)
        return self._observation(start, 0.0, 0, 0.0), self._info(0.0)

    # ------------------------------------------------------------ step

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Trade to the action's position at bar t's close, earn the move to bar t+1, observe bar t+1."""
        t = self._t
        if t >= self._end:
            raise RuntimeError("the episode is over (or never started): call reset()")
        old = self._position
        if self._positions is not None:
            new = self._positions[action]
        else:
            new = float(action[0])
            new = -1.0 if new < -1.0 else (1.0 if new > 1.0 else new)
        price, price_next = self._price[t], self._price[t + 1]
        cost, growth = accounting.step(old, new, price, price_next, self._rate)
        paid = cost * self._equity
        equity = self._equity * growth
        if new != old:
            self._trades += 1
            self._turnover += abs(new - old)
            self._held = held = 1
            self._entry = price
        else:
            self._held = held = self._held + 1
        unrealised = new * (price_next / self._entry - 1.0)
        reward, self._reward_state = self._reward.scalar(accounting.log_growth(growth), self._reward_state,
                                                         self._eta)
        if self._trade_penalty and new != old:
            reward -= self._trade_penalty * abs(new - old) / self._scale
        if self._penalty:
            reward = self._penalise_drawdown(reward, equity)
        t += 1
        self._t = t
        self._position = new
        self._equity = equity
        self._total_cost += paid
        # The observation, inline (this is the hot path): `_observation` without the call.
        i = t - self._block_bar
        if i >= BLOCK:
            self._prefetch(t)
            i = 0
        row = self._block[i]
        k = self._k
        row[k] = new
        row[k + 1] = held / (held + TIME_SCALE)
        row[k + 2] = unrealised / (UNREALISED_SCALE + abs(unrealised))
        obs = row.copy()
        info = {"equity": equity, "position": new, "cost": paid, "total_cost": self._total_cost,
                "trades": self._trades, "turnover": self._turnover, "bar": t, "symbol": self._symbol}
        terminated = growth <= accounting.MIN_GROWTH
        truncated = t == self._end
        if terminated:
            self._end = t  # ruin ends the episode: a further step() raises until reset()
        return obs, reward, terminated, truncated, info

    def _penalise_drawdown(self, reward: float, equity: float) -> float:
        """Reward minus drawdown_penalty times the increase of the drawdown from the running peak (over s)."""
        peak = equity if equity > self._peak else self._peak
        drawdown = 1.0 - equity / peak
        increase = drawdown - self._drawdown
        self._peak, self._drawdown = peak, drawdown
        return reward - self._penalty * increase / self._scale if increase > 0.0 else reward

    # ------------------------------------------------------------ observation and info

    def _prefetch(self, t: int) -> None:
        """Copy the windows of bars t, t+1, ... (up to BLOCK, not past the episode's end) into the block."""
        rows = min(BLOCK, self._end - t + 1)
        first = t - self._first_row
        self._block[:rows, :self._k] = self._windows[first:first + rows]
        self._block_bar = t

    def _observation(self, t: int, position: float, held: int, unrealised: float) -> np.ndarray:
        """A new array: the window ending at bar t, then the three agent-state values (step() inlines this).

        The windows come from the block prefetched for the next bars; the agent gets a copy of one row of
        it, never a view, so nothing of a later bar is reachable from an observation.
        """
        i = t - self._block_bar
        if not 0 <= i < BLOCK:
            self._prefetch(t)
            i = 0
        row = self._block[i]
        k = self._k
        row[k] = position
        row[k + 1] = held / (held + TIME_SCALE)
        row[k + 2] = unrealised / (UNREALISED_SCALE + abs(unrealised))
        return row.copy()

    def _info(self, paid: float) -> dict[str, Any]:
        return {"equity": self._equity, "position": self._position, "cost": paid, "total_cost": self._total_cost,
                "trades": self._trades, "turnover": self._turnover, "bar": self._t, "symbol": self._symbol}

    # ------------------------------------------------------------ helpers for callers

    @property
    def symbol(self) -> str:
        """Symbol of the current episode."""
        return self._symbol

    @property
    def bar(self) -> int:
        """Store index of the bar the current observation ends at."""
        return self._t
