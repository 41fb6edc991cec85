"""What a family is: the bars it reads, its parameter domains, and the :class:`Family` record.

The section modules beside this one define families with :meth:`Families.define`, which
keeps a family's compute function, lookback, parameter domains and default grid in one
place; ``signals.catalog`` assembles them into the catalogue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Protocol

import numpy as np

__all__ = [
    "FEATURE_BOUND",
    "Below",
    "Domain",
    "Families",
    "Family",
    "Ohlcv",
    "Positive",
    "Whole",
    "always_valid",
    "as_bars",
    "format_value",
]

# Every feature lies in [-FEATURE_BOUND, FEATURE_BOUND] after warm-up.
FEATURE_BOUND = 1.0


class Ohlcv(NamedTuple):
    """Bars of one symbol: float64 1-D arrays of equal length, oldest first."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def as_bars(bars: Ohlcv) -> Ohlcv:
    """Bars as writeable, contiguous float64 arrays: the one signature the kernels are
    compiled for. Read-only inputs (``np.load(mmap_mode="r")``, pandas copy-on-write
    ``to_numpy()``) are copied, else numba would compile every kernel a second time."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in bars]
    arrays = [a if a.flags.writeable else a.copy() for a in arrays]
    n = arrays[0].shape[0]
    if any(a.ndim != 1 or a.shape[0] != n for a in arrays):
        raise ValueError(f"Ohlcv arrays must be 1-D of equal length, got shapes {[a.shape for a in arrays]}")
    return Ohlcv(*arrays)


def format_value(value: Any) -> str:
    """A parameter value as Python/TOML literal: 14, 2.0, 'x' (NumPy scalars unwrapped)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return repr(value)


# ---------------------------------------------------------------------------
# parameter domains: checked for every grid value before anything is computed
# ---------------------------------------------------------------------------


class Domain(Protocol):
    """The values one parameter may take."""

    def problem(self, family: str, param: str, value: Any) -> str | None:
        """Why ``value`` is not allowed, as a sentence fragment naming the family; None if it is."""


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool, a string or NaN)."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


@dataclass(frozen=True)
class Whole:
    """A whole number >= ``low``: a window in bars, a smoothing length, a ratio of windows.

    TOML may give 14.0 for 14: an integral float is accepted (the kernels take ``int(v)``).
    """

    low: int
    noun: str = "window"

    def problem(self, family: str, param: str, value: Any) -> str | None:
        if not _is_number(value) or not float(value).is_integer():
            return f"{format_value(value)} is not a valid {self.noun} ({family} needs {param} >= {self.low}, " \
                   f"a whole number)"
        if value < self.low:
            return f"{format_value(value)} is not a valid {self.noun} ({family} needs {param} >= {self.low})"
        return None


@dataclass(frozen=True)
class Positive:
    """A finite real number > 0: a band width in standard deviations, a channel multiplier."""

    noun: str

    def problem(self, family: str, param: str, value: Any) -> str | None:
        if _is_number(value) and value > 0:
            return None
        return f"{format_value(value)} is not a valid {self.noun} ({family} needs {param} > 0)"


def always_valid(**params: Any) -> bool:
    """Default ``Family.valid``: every combination is allowed (module-level so it pickles)."""
    return True


@dataclass(frozen=True)
class Below:
    """``Family.valid`` for two parameters where the first must be smaller (fast < slow).

    Grid expansion drops the combinations that fail it; a grid left with no variant, or
    with a value that takes part in none, is a config error.
    """

    low: str
    high: str

    def __call__(self, **params: Any) -> bool:
        return bool(params[self.low] < params[self.high])

    def __str__(self) -> str:
        return f"{self.low} < {self.high}"


# ---------------------------------------------------------------------------
# the family record
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """One indicator family.

    ``compute(bars, **params)`` returns the float64 (n,) feature, NaN in the warm-up;
    ``lookback(**params)`` is the number of leading NaN rows; ``valid(**params)``
    filters grid combinations (e.g. fast < slow); ``domain`` maps every parameter to the
    values it may take. All callables are module-level functions or instances of
    module-level classes, so a ``Family`` pickles.
    """

    name: str
    description: str
    default_grid: dict[str, tuple[float | int, ...]]
    compute: Callable[..., np.ndarray]
    lookback: Callable[..., int]
    valid: Callable[..., bool] = always_valid
    domain: Mapping[str, Domain] = field(default_factory=dict)


@dataclass(frozen=True)
class _Feature:
    """Picklable ``Family.compute``: raw transform, then clip and the NaN warm-up.

    Centralising the finish makes every family honour the same contract: rows before
    ``lookback`` are NaN (even where a kernel would already have a value), the rest
    is clipped to the feature bound.
    """

    raw: Callable[..., np.ndarray]
    lookback: Callable[..., int]

    def __call__(self, bars: Ohlcv, **params: Any) -> np.ndarray:
        out = np.asarray(self.raw(as_bars(bars), **params), dtype=np.float64)
        out = np.clip(out, -FEATURE_BOUND, FEATURE_BOUND)
        out[: min(int(self.lookback(**params)), out.shape[0])] = np.nan
        return out


RawFeature = Callable[..., np.ndarray]


class Families(list[Family]):
    """The families of one section module, in definition order."""

    def define(self, name: str, description: str, grid: dict[str, tuple[float | int, ...]], *,
               lookback: Callable[..., int], domain: Mapping[str, Domain],
               valid: Callable[..., bool] = always_valid) -> Callable[[RawFeature], RawFeature]:
        """Decorator: the function below is the family's raw feature ``(bars, **params) -> (n,)``.

        ``grid`` is the default grid, ``lookback(**params)`` the warm-up, ``domain`` the
        values each parameter may take (one entry per grid parameter), ``valid`` a filter
        on combinations. The function is returned unchanged (so it pickles by name).
        """
        if set(domain) != set(grid):
            raise TypeError(f"family '{name}': domain {sorted(domain)} does not match grid {sorted(grid)}")

        def register(raw: RawFeature) -> RawFeature:
            self.append(Family(name, description, grid, _Feature(raw, lookback), lookback, valid, dict(domain)))
            return raw

        return register
