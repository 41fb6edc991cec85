"""A trained agent loaded from its run directory alone, deciding on new bars.

```python
from trader.agent import Agent

agent = Agent.load("runs/20261203-083158-seed0")
decision = agent.decide(bars)          # bars: a DataFrame with time, open, high, low, close, volume
decision.position, decision.probabilities, decision.time
```

What the agent needs lives in the run directory: the policy (`best_model.json`'s do-no-harm choice
when it names one, else `best_model.zip`, else `model.zip`, of each ensemble member: `members/k/` beside
member 0's files, their action probabilities averaged) and `agent.json`, written at the end of
training by `write_agent_spec`: the selected features' families and parameters in the store's column
order, how many bars each needs, the observation window, the action map, the costs, the feature bound
and the store's manifest hash. Neither the signal store nor the training data is read.

## Features from a tail

Features are computed for the selected variants only, by `signals.catalog.compute_variants` (the
same numba kernels the store was built with), over the last `min_bars` bars. A trailing-window
feature is exact once its lookback is covered, but the recursive ones (EMAs, Wilder smoothing, KAMA)
remember where the series started: computed from a tail they equal the store's full-history values
only once the start has been forgotten. `write_agent_spec` measures, per feature, on the training
split, after how many bars the tail's values equal the store's rows to float32 rounding, and keeps
twice that (`FeatureSpec.history`; `converged` is false where a tail never matched within the training
split, and the history is then a lower bound). Matching means within `TOLERANCE` (float32 rounding).
A test checks every selected feature on every test bar.

## Agent state

The observation ends with the three agent-state values of `envs.trading_env.TradingEnv` (position,
time in position, unrealised return), formed with the environment's own constants. `AgentState`
follows the environment's bookkeeping (a change of position resets the time and the entry price to
the close it was made at); a test drives a real `TradingEnv` over the test split and checks that every
observation the agent builds equals the environment's, so a change to the environment's observation
makes that test fail rather than drift silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from common.files import save_json
from envs.accounting import backtest
from envs.trading_env import ACTION_POSITIONS, DEFAULT_FEATURE_BOUND, N_STATE, TIME_SCALE, UNREALISED_SCALE
from settings import Params
from signals.catalog import CATALOG, Ohlcv, compute_variants
from signals.store import Store
from trader.runinfo import SELECTION_FILE, describe_models, member_model_files, policy_files

AGENT_FILE = "agent.json"
AGENT_FORMAT = 1
HISTORY_MARGIN = 2
"""Each feature's tail is this many times the bars its measured convergence took."""
TOLERANCE = 4 * float(np.finfo(np.float32).eps)
"""Tail features equal the store's to float32 rounding: within 4 units of the last place at 1 (features lie
in [-1, 1]). Not 1 ulp of each value: kernels with running sums (WMA, HMA, SMA) round differently from
another start, up to 2e-7 absolute on the bundled data, which is many ulps of a value near 0."""
FLAT_POSITION = 0.0
BAR_FIELDS = ("open", "high", "low", "close", "volume")
TIME_COLUMNS = ("time", "date", "datetime", "timestamp")
"""A DataFrame's bar times: the first of these columns it has (any case), else its index."""


class AgentError(ValueError):
    """A run directory or bars the agent cannot use; the message says what is missing."""


# ---------------------------------------------------------------- what agent.json holds

@dataclass(frozen=True)
class FeatureSpec:
    """One selected feature: its family and parameters, and the bars its value at a bar needs."""

    name: str
    family: str
    params: Mapping[str, Any]
    lookback: int
    history: int
    converged: bool = True


@dataclass(frozen=True)
class AgentSpec:
    """Everything but the policy weights: the contents of `agent.json`."""

    features: tuple[FeatureSpec, ...]
    window: int
    action_mode: str
    costs_bps: float
    feature_bound: float
    symbols: Mapping[str, Mapping[str, float]]
    store_manifest_sha256: str
    store_cache_key: str | None = None

    @property
    def history(self) -> int:
        """Bars of history the longest-memory feature needs for its value at one bar."""
        return max(f.history for f in self.features)

    @property
    def min_bars(self) -> int:
        """Bars a decision needs: the longest feature history, plus the window's other rows."""
        return self.history + self.window - 1

    @property
    def positions(self) -> tuple[float, ...] | None:
        """Position of each discrete action (None: continuous actions are the position)."""
        return ACTION_POSITIONS.get(self.action_mode)

    @property
    def flat_action(self) -> int | None:
        """The discrete action that means flat (None in continuous mode)."""
        return None if self.positions is None else self.positions.index(FLAT_POSITION)

    def to_json(self) -> dict[str, Any]:
        out = {"format": AGENT_FORMAT, **{k: v for k, v in self.__dict__.items() if k != "features"}}
        out["features"] = [dict(f.__dict__, params=dict(f.params)) for f in self.features]
        out["action_positions"] = None if self.positions is None else list(self.positions)
        out["history"], out["min_bars"] = self.history, self.min_bars
        out["store_rows"] = "float32, NaN (warm-up) -> 0, as signals.build.write_store writes them"
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path) -> AgentSpec:
        if data.get("format") != AGENT_FORMAT:
            raise AgentError(f"{path}: format {data.get('format')!r}, this code reads format {AGENT_FORMAT}")
        try:
            features = tuple(FeatureSpec(**f) for f in data["features"])
            spec = cls(features=features, **{k: data[k] for k in (
                "window", "action_mode", "costs_bps", "feature_bound", "symbols", "store_manifest_sha256")},
                store_cache_key=data.get("store_cache_key"))
        except (KeyError, TypeError) as exc:
            raise AgentError(f"{path}: missing or bad field {exc}") from None
        unknown = [f.family for f in features if f.family not in CATALOG]
        if unknown:
            raise AgentError(f"{path}: families {unknown} are not in this code's catalogue")
        return spec


# ---------------------------------------------------------------- bars and features

def as_bars(bars: Any) -> tuple[np.ndarray, Ohlcv]:
    """(timestamps as int64 ns, Ohlcv) from a DataFrame (a time column, see TIME_COLUMNS, or a datetime index), a
    `signals.data.Bars`, or a mapping of arrays (`time`, `open`, `high`, `low`, `close`, `volume`)."""
    import pandas as pd  # here, not at the top: a deployed agent given arrays never pays pandas' 0.7 s import

    if isinstance(bars, pd.DataFrame):
        frame = bars.rename(columns=lambda c: str(c).lower())
        missing = [f for f in BAR_FIELDS if f not in frame.columns]
        if missing:
            raise AgentError(f"bars: no column {', '.join(missing)} (columns: {', '.join(map(str, bars.columns))})")
        named = [c for c in TIME_COLUMNS if c in frame.columns]
        times = frame[named[0]] if named else frame.index.to_series()
        times = pd.to_datetime(times).to_numpy(dtype="datetime64[ns]").astype(np.int64)
        arrays = [frame[f].to_numpy(dtype=np.float64) for f in BAR_FIELDS]
    elif hasattr(bars, "timestamps"):
        times = np.asarray(bars.timestamps, dtype=np.int64)
        arrays = [np.asarray(getattr(bars, f), dtype=np.float64) for f in BAR_FIELDS]
    else:
        times = np.asarray(bars["time"]).astype("datetime64[ns]").astype(np.int64)
        arrays = [np.asarray(bars[f], dtype=np.float64) for f in BAR_FIELDS]
    return times, Ohlcv(*arrays)


def tail(ohlcv: Ohlcv, stop: int, length: int) -> Ohlcv:
    """Bars [stop - length, stop) of each field."""
    return Ohlcv(*(a[stop - length:stop] for a in ohlcv))


def feature_matrix(features: Sequence[FeatureSpec], bars: Ohlcv) -> np.ndarray:
    """(n, n_features) float32, in the store's column order and its form (NaN warm-up rows are 0)."""
    columns = [compute_variants(CATALOG[f.family], bars, [dict(f.params)]) for f in features]
    # signals.build.write_store: float32 first, then NaN -> 0 (tested against the store's rows).
    return np.nan_to_num(np.concatenate(columns, axis=1), nan=0.0)


# ---------------------------------------------------------------- agent state and observation

@dataclass(frozen=True)
class AgentState:
    """The position held and what the observation says about it (TradingEnv's bookkeeping).

    `held` counts bars since the position last changed; `entry` is the close the change was made at.
    """

    position: float = FLAT_POSITION
    held: int = 0
    entry: float | None = None

    def values(self, close: float) -> tuple[float, float, float]:
        """Position, time in position and unrealised return at `close`, as the observation holds them."""
        entry = close if self.entry is None else self.entry
        unrealised = self.position * (close / entry - 1.0)
        return (self.position, self.held / (self.held + TIME_SCALE),
                unrealised / (UNREALISED_SCALE + abs(unrealised)))

    def after(self, position: float, close: float) -> AgentState:
        """The state once `position` is taken at `close` (TradingEnv.step: a change resets time and entry)."""
        if position != self.position:
            return AgentState(position=position, held=1, entry=close)
        return AgentState(position=position, held=self.held + 1, entry=close if self.entry is None else self.entry)


def observation(rows: np.ndarray, state: AgentState, close: float) -> np.ndarray:
    """The flat float32 observation: `rows` (window x features) row by row, then the agent state."""
    k = rows.size
    obs = np.empty(k + N_STATE, dtype=np.float32)
    obs[:k] = rows.reshape(-1)
    obs[k:] = state.values(close)
    return obs


@dataclass(frozen=True)
class Decision:
    """The target position after a bar, the action probabilities (None for continuous actions) and
    the bar's time (int64 ns since the epoch, as the store holds it)."""

    time: int
    position: float
    probabilities: tuple[float, ...] | None
    action: int | float = field(default=0)

    @property
    def iso_time(self) -> str:
        return iso(self.time)


def iso(time_ns: int) -> str:
    """A bar time as ISO 8601 text to the second (how outputs and the service write times)."""
    return str(np.datetime64(int(time_ns), "ns").astype("datetime64[s]"))


# ---------------------------------------------------------------- the policy

class Policy:
    """The selected policy: the deterministic action of a PPO model or of an ensemble of them (their action
    probabilities averaged: `trader.policy.combine_outputs`, as the evaluation does), or flat.

    Safe to call from several threads at once (the service does): it keeps nothing between calls.
    """

    def __init__(self, models: Sequence[Any] | None, spec: AgentSpec) -> None:
        self.models, self.spec = (list(models) if models else None), spec

    def act(self, obs: np.ndarray) -> tuple[int | float, tuple[float, ...] | None]:
        """(action, probabilities) for one observation."""
        if self.models is None:  # the do-no-harm choice: stay flat
            if self.spec.positions is None:
                return FLAT_POSITION, None
            assert self.spec.flat_action is not None  # discrete actions have a flat one
            flat = int(self.spec.flat_action)
            probs = [0.0] * len(self.spec.positions)
            probs[flat] = 1.0
            return flat, tuple(probs)
        import torch  # here, not at the top: a flat agent (do-no-harm) decides without torch's 2.5 s import

        from trader.policy import actor_output, combine_outputs

        tensor = torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1)
        action, weights = combine_outputs([actor_output(m.policy, tensor) for m in self.models],
                                          discrete=self.spec.positions is not None)
        if weights is None:  # SB3's deterministic action: the Gaussian mean, clipped
            return float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0)), None
        return int(action[0]), tuple(float(p) for p in weights.reshape(-1))

    def position(self, action: int | float) -> float:
        return float(action) if self.spec.positions is None else self.spec.positions[int(action)]


def select_model(run_dir: Path) -> tuple[list[str] | None, str]:
    """(model files, member 0 first, or None for flat; why): best_model.json's choice, else each member's
    best_model.zip, else its model.zip (`trader.runinfo.member_model_files`)."""
    selection = run_dir / SELECTION_FILE
    if selection.exists():
        choice = json.loads(selection.read_text())
        if choice.get("selected") == "flat":
            return None, f"{SELECTION_FILE}: flat ({choice.get('reason', 'no reason given')})"
        if choice.get("selected") == "model":
            names = policy_files(run_dir, choice) if (choice.get("members") or choice.get("model")) \
                else ["best_model.zip"]
            missing = [name for name in names if not (run_dir / name).exists()]
            if missing:
                raise AgentError(f"{selection} selects {', '.join(missing)}, not in {run_dir}")
            return names, f"{SELECTION_FILE}: {describe_models(names)}"
    names = member_model_files(run_dir)
    if names:
        return names, f"{describe_models(names)} (no selection in {SELECTION_FILE})"
    raise AgentError(f"{run_dir} has neither best_model.zip nor model.zip; did the run finish?")


# ---------------------------------------------------------------- the agent

class Agent:
    """A trained agent: `Agent.load(run_dir)`, then `decide(bars)` on the newest bar, or `step` bar by bar."""

    def __init__(self, spec: AgentSpec, policy: Policy, run_dir: Path, model_name: str | None,
                 selection: str) -> None:
        self.spec, self.policy, self.run_dir = spec, policy, run_dir
        self.model_name, self.selection = model_name, selection

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "cpu") -> Agent:
        """The agent of a finished run; needs `agent.json` and the selected model file only."""
        run_dir = Path(run_dir)
        path = run_dir / AGENT_FILE
        if not path.exists():
            raise AgentError(f"{path} is missing: the run predates trader.agent; re-run its report with "
                             f"`python -m trader.evaluate {run_dir}` to write it")
        spec = AgentSpec.from_json(json.loads(path.read_text()), path)
        names, why = select_model(run_dir)
        models = []
        for name in names or []:
            from stable_baselines3 import PPO  # here: only an agent with a model pays SB3's and torch's import

            model = PPO.load(run_dir / name, device=device)
            expected = spec.window * len(spec.features) + N_STATE
            if model.observation_space.shape != (expected,):
                raise AgentError(f"{run_dir / name} takes observations of shape {model.observation_space.shape}, "
                                 f"but {path} describes {expected} values")
            models.append(model)
        return cls(spec, Policy(models or None, spec), run_dir, describe_models(names) if names else None, why)

    @property
    def min_bars(self) -> int:
        return self.spec.min_bars

    def check_bars(self, n_bars: int) -> None:
        if n_bars < self.min_bars:
            f = max(self.spec.features, key=lambda f: f.history)
            raise AgentError(
                f"{n_bars} bars given, {self.min_bars} needed: the longest feature history ({f.history} bars for "
                f"{f.name}: lookback {f.lookback} plus the bars its averages need to forget their start) plus "
                f"the observation window's other {self.spec.window - 1} rows")

    def step(self, times: np.ndarray, bars: Ohlcv, state: AgentState | None = None
             ) -> tuple[Decision, AgentState]:
        """Decide on the last of `bars` (its last `min_bars` are used) from `state` (None: flat, as an
        episode starts); returns the decision and the state once its position is taken."""
        n = len(bars.close)
        self.check_bars(n)
        close = float(bars.close[-1])
        state = AgentState(entry=close) if state is None else state
        rows = feature_matrix(self.spec.features, tail(bars, n, self.min_bars))[-self.spec.window:]
        action, probs = self.policy.act(observation(rows, state, close))
        position = self.policy.position(action)
        return Decision(int(times[-1]), position, probs, action), state.after(position, close)

    def decide(self, bars: Any, position: float | AgentState | None = None) -> Decision:
        """The target position for the last bar of `bars`, its probabilities and its time.

        `position` is the position held now (as just taken: time in position 0, no unrealised return), or
        a full `AgentState`; None is flat.
        """
        times, ohlcv = as_bars(bars)
        if isinstance(position, (int, float)):
            position = AgentState(position=float(position), entry=float(ohlcv.close[-1]))
        return self.step(times, ohlcv, position)[0]

    def replay(self, times: np.ndarray, bars: Ohlcv, start: int | None = None) -> dict[str, np.ndarray]:
        """Paper trading bar by bar from bar index `start` (default: the first with enough bars), flat
        before it: times, positions and equity (before each bar's trade, net of the run's costs)."""
        start = self.min_bars - 1 if start is None else int(start)
        self.check_bars(start + 1)
        state: AgentState | None = None
        positions = []
        for t in range(start, len(bars.close)):
            decision, state = self.step(times[:t + 1], tail(bars, t + 1, self.min_bars), state)
            positions.append(decision.position)
        positions_arr = np.asarray(positions)
        equity = backtest(bars.close, positions_arr[:-1], start, self.spec.costs_bps)["equity"]
        return {"times": np.asarray(times[start:]), "positions": positions_arr, "equity": equity}


# ---------------------------------------------------------------- writing agent.json (end of training)

def measure_history(family: str, params: Mapping[str, Any], ohlcv: np.ndarray, stored: np.ndarray,
                    stop: int, starts: Sequence[int]) -> tuple[int, bool]:
    """(bars after which the feature computed from a tail equals the stored column within TOLERANCE,
    whether it did so from every start).

    For each start s, the feature is computed on bars [s, stop) and compared with the store's rows
    there; the bars needed are one more than the last row that differs (max over the starts). A start
    whose values still differ at its last bar did not converge: it counts as needing all its bars.
    """
    needed, converged = 1, True
    for s in starts:
        values = compute_variants(CATALOG[family], Ohlcv(*ohlcv[:, s:stop]), [dict(params)])[:, 0]
        values = np.nan_to_num(values, nan=0.0)
        bad = np.nonzero(np.abs(values - np.asarray(stored[s:stop])) > TOLERANCE)[0]
        if len(bad) and bad[-1] >= (stop - s) - 1:
            converged = False
        needed = max(needed, int(bad[-1]) + 2 if len(bad) else 1)
    return needed, converged


def measurement_starts(train: tuple[int, int], count: int = 3) -> list[int]:
    """Tail starts in the first quarter of the data up to the training split's end (the rest is the room
    to converge: a slow EMA or Wilder average needs several hundred bars)."""
    stop = train[1]
    return sorted({int(s) for s in np.linspace(stop // 16, stop // 4, count)})


def write_agent_spec(run_dir: Path, store: Store, params: Params) -> AgentSpec:
    """Measure each selected feature's history on the training split and write `agent.json`."""
    features, symbols = [], {}
    missing = [s for s in store.symbols if not (Path(store.root) / s / "ohlcv.npy").exists()]
    if missing:
        raise AgentError(f"the store {store.root} has no ohlcv.npy for {', '.join(missing)} (not written by "
                         f"signals.build?): the features' histories cannot be measured")
    data = {s: (np.load(Path(store.root) / s / "ohlcv.npy", mmap_mode="r"), store.symbol(s)) for s in store.symbols}
    for column, entry in enumerate(store.manifest["features"]):
        lookback = int(CATALOG[entry["family"]].lookback(**entry["params"]))
        measured = [measure_history(entry["family"], entry["params"], np.asarray(ohlcv), sym.features[:, column],
                                    sym.split("train")[1], measurement_starts(sym.split("train")))
                    for ohlcv, sym in data.values()]
        needed = max(n for n, _ in measured)
        features.append(FeatureSpec(entry["name"], entry["family"], dict(entry["params"]), lookback,
                                    max(HISTORY_MARGIN * needed, lookback + 1), all(ok for _, ok in measured)))
    for name, (_, sym) in data.items():
        gaps = np.diff(np.asarray(sym.timestamps[slice(*sym.split("train"))])) / 1e9
        bar = float(np.median(gaps))
        symbols[name] = {"bar_seconds": bar, "max_gap_bars": float(gaps.max() / bar)}
    spec = AgentSpec(features=tuple(features), window=int(params.env.window), action_mode=params.env.action_mode,
                     costs_bps=float(params.costs.total_bps),
                     feature_bound=float(store.manifest.get("feature_bound", DEFAULT_FEATURE_BOUND)), symbols=symbols,
                     store_manifest_sha256=store.manifest_hash, store_cache_key=store.manifest.get("cache_key"))
    save_json(Path(run_dir) / AGENT_FILE, spec.to_json())
    return spec
