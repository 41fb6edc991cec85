"""N trading environments stepped together with array operations: the fast path for cheap steps.

`BatchedTradingVecEnv` is a stable-baselines3 `VecEnv` that gives exactly what a `DummyVecEnv` of N
`TradingEnv`s seeded seed+i gives (observations, rewards, dones, infos including `terminal_observation`
and `TimeLimit.truncated`, `reset_infos`), but each step is a fixed number of numpy operations over all N
environments (plus one gather per symbol when there are several): no Python loop over environments,
except over the few that finish an episode in that step (their reset draws come from their own
generator, as in N separate environments).

The infos of a step are a `BatchInfos`: a sequence of N dicts that are built the first time they are read
(then kept, so changes to them stick), because building N dicts on every step would cost more than the step
itself. It supports `len`, indexing, slicing and iteration like the list SB3 expects; `list(infos)` makes a
plain list.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterator

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from envs import accounting
from envs.rewards import REWARDS
from envs.spec import EnvSpec, resolve_spec
from envs.trading_env import ACTION_POSITIONS, N_STATE, TIME_SCALE, UNREALISED_SCALE, TradingSetup, draw_episode
from signals.store import Store


class BatchInfos(Sequence):
    """The N info dicts of one step, built when first read (one by one, or all at once on iteration).

    The arrays are the step's own results, which the env never changes afterwards (it replaces its state
    arrays rather than writing into them; a reset copies before writing), so no snapshot copy is needed.
    A dict, once built, is kept: changes to it stick, as in a list of dicts.
    """

    __slots__ = ("_arrays", "_done", "_terminated", "_names", "_first_row", "_extras", "_cache", "_columns",
                 "_list")

    def __init__(self, arrays: tuple[np.ndarray, ...], done: np.ndarray, terminated: np.ndarray,
                 names: Sequence[str], first_row: int) -> None:
        self._arrays = arrays  # equity, position, cost, total_cost, trades, turnover, row (= bar - first_row), symbol
        self._done = done
        self._terminated = terminated
        self._names = names
        self._first_row = first_row
        self._extras: dict[int, dict[str, Any]] = {}  # terminal_observation of the envs that finished
        self._cache: dict[int, dict[str, Any]] = {}  # dicts built one by one
        self._columns: list[list[Any]] | None = None  # the arrays as lists, made at the first read
        self._list: list[dict[str, Any]] | None = None  # all N dicts, once iterated

    def __len__(self) -> int:
        return len(self._terminated)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._all()[index]
        if self._list is not None:
            return self._list[index]
        i = operator.index(index)
        n = len(self._terminated)
        if not -n <= i < n:
            raise IndexError(f"info index {index} out of range for {n} environments")
        i %= n
        info = self._cache.get(i)
        if info is None:
            info = self._cache[i] = self._build(i, *(column[i] for column in self._lists()))
        return info

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._all())

    def _lists(self) -> list[list[Any]]:
        if self._columns is None:  # one tolist per array beats N scalar reads per array
            self._columns = [a.tolist() for a in (*self._arrays, self._done, self._terminated)]
        return self._columns

    def _all(self) -> list[dict[str, Any]]:
        if self._list is None:
            built = [self._build(i, *values) for i, values in enumerate(zip(*self._lists()))]
            self._list = [self._cache.get(i, info) for i, info in enumerate(built)]
        return self._list

    def _build(self, i: int, equity: float, position: float, cost: float, total_cost: float, trades: int,
               turnover: float, row: int, symbol: int, done: bool, terminated: bool) -> dict[str, Any]:
        info = {"equity": equity, "position": position, "cost": cost, "total_cost": total_cost, "trades": trades,
                "turnover": turnover, "bar": row + self._first_row, "symbol": self._names[symbol],
                "TimeLimit.truncated": done and not terminated}
        if self._extras and i in self._extras:
            info.update(self._extras[i])
        return info

    def __repr__(self) -> str:
        return f"BatchInfos({self._all()!r})"


def _as_items(windows: np.ndarray, item: np.dtype) -> np.ndarray:
    """(rows,) view of a (rows, k) float32 window view whose elements are whole windows (void items)."""
    return windows.view(np.uint8).view(item)[:, 0]


class BatchedTradingVecEnv(VecEnv):
    """N `TradingEnv`s (same store, split and settings) as one array-stepped SB3 VecEnv.

    Takes TradingEnv's arguments (the store, the split, an `EnvSpec` and keyword settings) plus `n_envs`.
    Seeding follows SB3: `seed(s)` makes the next `reset()` seed environment i with s + i; later episodes
    continue each environment's own generator. Episodes end, reset automatically and report
    `terminal_observation` exactly as in `DummyVecEnv`. Rewards are float32 (as DummyVecEnv returns them).
    Per-env attributes for `get_attr`: symbol, bar, equity, position.
    """

    def __init__(self, store: str | Path | Store, split: str = "train", n_envs: int = 1, spec: EnvSpec | None = None,
                 *, expected_key: str | None = None, **settings: Any) -> None:
        if int(n_envs) != n_envs or n_envs < 1:
            raise ValueError(f"train.n_envs must be an integer >= 1 (got {n_envs})")
        self.setup = TradingSetup.create(store, split, resolve_spec(spec, settings), expected_key=expected_key)
        spec = self.setup.spec
        n = int(n_envs)
        self.render_mode = None
        super().__init__(n, self.setup.observation_space(), self.setup.action_space())
        positions = ACTION_POSITIONS.get(spec.action_mode)
        self._table = None if positions is None else np.array(positions, dtype=np.float64)
        self._names = self.setup.symbols
        self._k = self.setup.window_size
        self._first_row = spec.window - 1
        # Bars are kept as window rows, row = bar - (window - 1): windows[row] is the observation window
        # ending at the bar, and closes[row] its close (a view shifted by window - 1): one index for both.
        self._windows = [layout.windows for layout in self.setup.layouts]
        # The same windows as single items of window * n_features * 4 bytes: gathering N items is N memcpys,
        # where gathering N rows of floats goes element by element.
        self._window_item = np.dtype((np.void, self._k * 4))
        self._items = [_as_items(w, self._window_item) for w in self._windows]
        self._closes = [layout.close[self._first_row:] for layout in self.setup.layouts]
        self._rate = self.setup.cost_rate
        self._reward = REWARDS[spec.reward]
        self._symbol_scales = np.array([layout.reward_scale for layout in self.setup.layouts])
        self._eta = spec.dsr_eta
        self._penalty = spec.drawdown_penalty
        self._trade_penalty = spec.trade_penalty * self.setup.cost_rate
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._actions: np.ndarray | None = None
        self._not_done = np.zeros(n, dtype=bool)  # never written: the done flags BatchInfos gets on most steps
        self._allocate(n)

    # ------------------------------------------------------------ state

    # Per-env float state, one array each (declared for the type checker; made by _allocate).
    _position: np.ndarray
    _held: np.ndarray
    _entry: np.ndarray
    _equity: np.ndarray
    _total_cost: np.ndarray
    _turnover: np.ndarray
    _peak: np.ndarray
    _drawdown: np.ndarray
    _scale: np.ndarray

    def _allocate(self, n: int) -> None:
        """Per-env state arrays (index i = environment i); set properly by the first reset()."""
        self._symbol = np.zeros(n, dtype=np.int64)
        self._row = np.zeros(n, dtype=np.int64)
        self._end_row = np.zeros(n, dtype=np.int64)
        self._trades = np.zeros(n, dtype=np.int64)
        for name in ("_position", "_held", "_entry", "_equity", "_total_cost", "_turnover", "_peak", "_drawdown",
                     "_scale"):
            setattr(self, name, np.zeros(n))
        # The reward's state, one array per value of its scalar state, filled at each episode's start.
        self._reward_state = tuple(np.zeros(n) for _ in self._reward.initial_state(1.0, self._eta))
        self._groups: list[tuple[int, np.ndarray]] = []
        self._steps_to_end = 0  # steps until the first truncation (every env advances one bar per step)
        self._obs = np.zeros((n, self._k + N_STATE), dtype=np.float32)
        self._tail = np.zeros((N_STATE, n))  # scratch: the state columns of the observation, in float64
        self._scratch = np.zeros((N_STATE - 1, n))
        self._scales = np.repeat([[TIME_SCALE], [UNREALISED_SCALE]], n, axis=1)  # full size: no broadcasting
        # Constants as arrays: array-with-array arithmetic skips numpy's per-call scalar conversion.
        self._one_row = np.ones(n, dtype=np.int64)
        self._one = np.ones(n)
        self._rates = np.full(n, self._rate)

    # Arrays that a step's BatchInfos may still hold: a reset copies them before writing into them.
    _SHARED_WITH_INFOS = ("_symbol", "_row", "_trades", "_position", "_equity", "_total_cost", "_turnover")

    def _start_episodes(self, envs: np.ndarray, options: Sequence[dict[str, Any] | None]) -> None:
        """New episodes for environments `envs` (each draws from its own generator, as TradingEnv.reset does)."""
        draws = np.array([draw_episode(self._rngs[i], self.setup.layouts, self.setup.spec.episode_length, options[j])
                          for j, i in enumerate(envs.tolist())], dtype=np.int64).reshape(-1, 3)
        for name in self._SHARED_WITH_INFOS:
            setattr(self, name, getattr(self, name).copy())
        symbol, row, end_row = draws[:, 0], draws[:, 1] - self._first_row, draws[:, 2] - self._first_row
        self._symbol[envs], self._row[envs], self._end_row[envs] = symbol, row, end_row
        self._trades[envs] = 0
        for name, value in (("_position", 0.0), ("_held", 0.0), ("_equity", 1.0), ("_total_cost", 0.0),
                            ("_turnover", 0.0), ("_peak", 1.0), ("_drawdown", 0.0)):
            getattr(self, name)[envs] = value
        self._scale[envs] = self._symbol_scales[symbol]
        state = [self._reward.initial_state(scale, self._eta) for scale in self._symbol_scales[symbol].tolist()]
        self._reward_state = tuple(column.copy() for column in self._reward_state)  # a step may still hold them
        for column, values in zip(self._reward_state, zip(*state)):
            column[envs] = values
        self._entry[envs] = [self._closes[s][r] for s, r in zip(symbol.tolist(), row.tolist())]
        if len(self._names) > 1:
            groups = [(s, np.flatnonzero(self._symbol == s)) for s in range(len(self._names))]
            self._groups = [(s, members) for s, members in groups if len(members)]
        self._steps_to_end = int((self._end_row - self._row).min())
        # Their observations: the first window, flat, no time in position, no unrealised return.
        symbols = self._symbol[envs]
        for s in np.unique(symbols).tolist():
            members = envs[symbols == s]
            self._obs[members, :self._k] = self._windows[s][self._row[members]]
        self._obs[envs, self._k:] = 0.0

    def _reset_info(self, i: int) -> dict[str, Any]:
        return {"equity": 1.0, "position": 0.0, "cost": 0.0, "total_cost": 0.0, "trades": 0, "turnover": 0.0,
                "bar": int(self._row[i]) + self._first_row, "symbol": self._names[int(self._symbol[i])]}

    # ------------------------------------------------------------ VecEnv API

    def reset(self) -> VecEnvObs:
        """Start every environment's episode, seeding those with a pending seed (see `seed`)."""
        for i, seed in enumerate(self._seeds):
            if seed is not None or self._rngs[i] is None:
                self._rngs[i], _ = seeding.np_random(seed)
        self._obs = np.zeros_like(self._obs)  # the last step's observations belong to the caller now
        self._start_episodes(np.arange(self.num_envs), [options or None for options in self._options])
        self.reset_infos = [self._reset_info(i) for i in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """One step of every environment, then the automatic reset of those whose episode ended.

        The same arithmetic as TradingEnv.step, operation for operation, over arrays; every array a
        BatchInfos keeps is a new one (never written afterwards).
        """
        if self._actions is None or self._steps_to_end <= 0:
            raise RuntimeError("call reset() and step_async() before step_wait()")
        new = self._target_positions(self._actions)
        self._actions = None
        row = self._row
        row_next = row + self._one_row
        price, price_next = self._prices(row, row_next)
        old = self._position
        cost, growth = accounting.step(old, new, price, price_next, self._rates)  # type: ignore[arg-type]  # arrays too
        paid = cost * self._equity
        equity = self._equity * growth
        total_cost = self._total_cost + paid
        changed = new != old
        trades = self._trades + changed
        turnover = self._turnover + np.abs(new - old)
        held = self._held + self._one
        held[changed] = 1.0
        entry = self._entry
        np.copyto(entry, price, where=changed)
        reward, self._reward_state = self._reward.array(accounting.log_growth_array(growth), self._reward_state,
                                                        self._eta)
        if self._trade_penalty:
            reward = reward - self._trade_penalty * np.abs(new - old) / self._scale
        if self._penalty:
            reward = self._penalise_drawdown(reward, equity)
        terminated = growth <= accounting.MIN_GROWTH
        self._row, self._position, self._equity, self._total_cost, self._trades, self._held = (
            row_next, new, equity, total_cost, trades, held)
        self._turnover = turnover
        obs = self._observe(row_next, new, held, price_next, entry)
        arrays = (equity, new, paid, total_cost, trades, turnover, row_next, self._symbol)
        self._steps_to_end -= 1
        # Most steps end nothing: two cheap tests instead of building truncation flags for every env.
        if self._steps_to_end == 0 or np.count_nonzero(terminated):
            dones = terminated | (row_next == self._end_row)
            infos = BatchInfos(arrays, dones, terminated, self._names, self._first_row)
            self._auto_reset(np.flatnonzero(dones), obs, infos)
        else:
            dones = np.zeros(self.num_envs, dtype=bool)
            infos = BatchInfos(arrays, self._not_done, terminated, self._names, self._first_row)
        return obs, reward.astype(np.float32), dones, infos  # type: ignore[return-value]  # BatchInfos is a Sequence

    def _auto_reset(self, finished: np.ndarray, obs: np.ndarray, infos: BatchInfos) -> None:
        """Reset the finished environments as DummyVecEnv does: terminal observation in the info, new obs."""
        infos._extras = {i: {"terminal_observation": obs[i].copy()} for i in finished.tolist()}
        self._start_episodes(finished, [None] * len(finished))  # writes their rows of obs (= self._obs)
        for i in finished.tolist():
            self.reset_infos[i] = self._reset_info(i)

    # ------------------------------------------------------------ step pieces

    def _target_positions(self, actions: Any) -> np.ndarray:
        """Positions (float64, shape (N,)) the actions ask for."""
        actions = np.asarray(actions)
        if actions.ndim != 1:
            actions = actions.reshape(self.num_envs)
        if self._table is not None:
            return self._table[actions]
        return np.clip(actions.astype(np.float64), -1.0, 1.0)

    def _prices(self, row: np.ndarray, row_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """close[t] and close[t + 1] of each environment's symbol."""
        if not self._groups:
            close = self._closes[0]
            return close[row], close[row_next]
        price, price_next = np.empty(self.num_envs), np.empty(self.num_envs)
        for s, members in self._groups:
            close = self._closes[s]
            price[members] = close[row[members]]
            price_next[members] = close[row_next[members]]
        return price, price_next

    def _observe(self, row: np.ndarray, position: np.ndarray, held: np.ndarray, price_next: np.ndarray,
                 entry: np.ndarray) -> np.ndarray:
        """New (N, obs) array: each env's window at `row`, then its agent state; kept as self._obs.

        The state columns are TradingEnv's expressions, computed in place in a float64 scratch block
        (a * b == b * a and a + b == b + a exactly, so the order of operands does not change a bit; the
        result is rounded to float32 once, as TradingEnv's assignment into its float32 row does).
        """
        k = self._k
        obs = np.empty_like(self._obs)
        windows = np.ndarray((self.num_envs,), self._window_item, obs, 0, (obs.strides[0],))  # obs[:, :k]
        if not self._groups:
            windows[...] = self._items[0][row]
        else:
            for s, members in self._groups:
                windows[members] = self._items[s][row[members]]
        tail, scratch = self._tail, self._scratch
        tail[0] = position
        tail[1] = held
        unrealised = tail[2]
        np.divide(price_next, entry, out=unrealised)
        unrealised -= self._one
        unrealised *= position
        # Both bounded transforms at once: x / (|x| + scale), scale 32 for held (>= 0, so |held| = held).
        transformed = tail[1:]
        np.abs(transformed, out=scratch)
        scratch += self._scales
        transformed /= scratch
        obs[:, k:] = tail.T
        self._obs = obs
        return obs

    def _penalise_drawdown(self, reward: np.ndarray, equity: np.ndarray) -> np.ndarray:
        """TradingEnv._penalise_drawdown over arrays."""
        peak = np.maximum(self._peak, equity)
        drawdown = 1.0 - equity / peak
        increase = drawdown - self._drawdown
        self._peak, self._drawdown = peak, drawdown
        return reward - self._penalty * np.maximum(increase, 0.0) / self._scale

    # ------------------------------------------------------------ the rest of the VecEnv interface

    _PER_ENV = {"symbol": lambda self: [self._names[s] for s in self._symbol.tolist()],
                "bar": lambda self: (self._row + self._first_row).tolist(),
                "equity": lambda self: self._equity.tolist(),
                "position": lambda self: self._position.tolist()}

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Per-env values for symbol/bar/equity/position; otherwise the (shared) attribute, once per env."""
        targets = self._indices(indices)
        if attr_name in self._PER_ENV and hasattr(self, "_symbol"):
            values = self._PER_ENV[attr_name](self)
            return [values[i] for i in targets]
        return [getattr(self, attr_name) for _ in targets]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Settings are shared by all environments: only setting them for all is possible."""
        if sorted(self._indices(indices)) != list(range(self.num_envs)):
            raise ValueError("BatchedTradingVecEnv shares its attributes between environments: set them for all")
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        raise NotImplementedError(f"BatchedTradingVecEnv has no per-environment objects to call "
                                  f"{method_name!r} on; use vec_env='dummy' or 'subproc' for that")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def close(self) -> None:
        """Nothing to release: the store's memory maps go with the object."""
