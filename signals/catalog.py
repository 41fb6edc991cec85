"""Catalogue of indicator families: parameter grids and bounded, causal feature transforms.

Each :class:`Family` turns OHLCV bars into one feature column per parameter variant.
Every feature is a *fixed* transform of the ``signals.kernels`` outputs:

* **causal** - the value at bar t uses bars <= t only (recursions and trailing
  windows; no full-sample statistic, no centring by a global mean);
* **bounded** - squashed (``tanh``) or rescaled into [-1, 1], then clipped to
  ``[-FEATURE_BOUND, FEATURE_BOUND]``;
* **roughly stationary** - prices enter as log distances normalised by the trailing
  volatility of log returns (``sigma * sqrt(horizon)``), volumes as ratios;
* **NaN exactly in the warm-up** - rows ``[0, lookback(**params))`` are NaN and every
  later row is finite on clean data.

The families themselves live in ``signals.families`` (one module per kernel section, each
family's maths, lookback, parameter domains and default grid in one block); this module
assembles them into :data:`CATALOG` and holds what works on any family: grid validation
and expansion, computing variants, lookbacks, labels. The default grids
(``Family.default_grid``) give 1,100+ variants per symbol; render them for
``parameters.toml`` with :func:`default_grids_toml`.
"""

from __future__ import annotations

import difflib
import itertools
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from settings import ConfigError
from signals import kernels as K
from signals.families import all_families
from signals.families.base import FEATURE_BOUND, Family, Ohlcv, as_bars, format_value
from signals.families.transforms import VOL_MIN_WINDOW

__all__ = [
    "CATALOG",
    "FEATURE_BOUND",
    "VOL_MIN_WINDOW",
    "Family",
    "GridError",
    "Ohlcv",
    "check_grid",
    "compute_variants",
    "default_grids_toml",
    "expand_grid",
    "family_grids",
    "max_lookback",
    "variant_label",
    "warm_up",
]

CATALOG: dict[str, Family] = {f.name: f for f in sorted(all_families(), key=lambda f: f.name)}
if len(CATALOG) != len(all_families()):
    raise RuntimeError("two families in signals.families have the same name")


class GridError(ValueError):
    """A bad grid for one family; ``param`` names the parameter (None: the grid as a whole)."""

    def __init__(self, family: str, param: str | None, message: str) -> None:
        super().__init__(message)
        self.family = family
        self.param = param
        self.message = message

    @property
    def key(self) -> str:
        """The config key path, e.g. ``signals.families.rsi.window``."""
        return f"signals.families.{self.family}" + (f".{self.param}" if self.param else "")


# ---------------------------------------------------------------------------
# grids: validation and expansion
# ---------------------------------------------------------------------------


def _as_values(values: Any) -> tuple:
    """A grid entry as a tuple of values; a bare scalar is a one-value grid."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        return (values,)
    return tuple(values)


def _axes(family: Family, grid: Mapping[str, Any]) -> list[tuple]:
    """Each parameter's values (the grid's or the defaults), checked against the family's
    parameter names and domains; raises :class:`GridError`."""
    known = list(family.default_grid)
    for name in grid:
        if name not in family.default_grid:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise GridError(family.name, None,
                            f"family '{family.name}' has no parameter '{name}'{hint} (parameters: {', '.join(known)})")
    axes = [tuple(dict.fromkeys(_as_values(grid.get(p, family.default_grid[p])))) for p in known]
    for param, values in zip(known, axes):
        domain = family.domain.get(param)
        problems = [domain.problem(family.name, param, v) for v in values] if domain is not None else []
        for problem in problems:
            if problem:
                raise GridError(family.name, param, problem)
    return axes


def expand_grid(family: Family, grid: Mapping[str, Sequence] | None = None) -> list[dict]:
    """Every valid parameter combination of ``family``, in a stable order.

    ``grid`` maps parameter names to value lists; parameters it leaves out take the
    family's default values, and ``None`` means the default grid. The cartesian
    product runs in the order of ``family.default_grid`` (last parameter fastest)
    and is filtered by ``family.valid``; repeated values are kept once.
    Raises :class:`GridError` (a ``ValueError``) naming the family, the parameter and the
    closest known parameter for an unknown name, or the value outside the parameter's
    domain (a window of 0, a negative band width).
    """
    known = list(family.default_grid)
    combos = (dict(zip(known, values)) for values in itertools.product(*_axes(family, grid or {})))
    return [p for p in combos if family.valid(**p)]


def check_grid(family: Family, grid: Mapping[str, Sequence] | None = None) -> list[dict]:
    """:func:`expand_grid`, and also reject a grid that leaves no variant, or has a value that
    takes part in none (``fast = 50`` when every ``slow`` is below it). Returns the variants."""
    variants = expand_grid(family, grid)
    if not variants:
        raise GridError(family.name, None, f"no variant: no combination of the grid meets {family.valid}")
    for param, values in zip(family.default_grid, _axes(family, grid or {})):
        used = {p[param] for p in variants}
        for value in values:
            if value not in used:
                raise GridError(family.name, param, f"{format_value(value)} is in no variant "
                                                    f"({family.name} needs {family.valid})")
    return variants


def family_grids(families: Mapping[str, Mapping[str, Sequence]], disabled: Iterable[str] = ()
                 ) -> dict[str, list[dict]]:
    """The variants of every enabled family (``signals.families`` and ``signals.disabled``), all
    checked before anything is computed: a ``ConfigError`` names the key of the first bad one,
    e.g. ``signals.families.rsi.window: 0 is not a valid window (rsi needs window >= 2)``."""
    disabled = set(disabled)
    for name in [*families, *disabled]:
        if name not in CATALOG:
            close = difflib.get_close_matches(name, list(CATALOG), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"signals.families: unknown family '{name}'{hint}")
    grids = {}
    for name, family in CATALOG.items():
        if name in disabled:
            continue
        try:
            grids[name] = check_grid(family, families.get(name))
        except GridError as exc:
            raise ConfigError(f"{exc.key}: {exc.message}") from None
    return grids


# ---------------------------------------------------------------------------
# computing variants
# ---------------------------------------------------------------------------


def compute_variants(family: Family, bars: Ohlcv, params_list: Sequence[dict]) -> np.ndarray:
    """Feature matrix of ``family`` on ``bars``: float32 (n, len(params_list)), NaN in warm-up rows."""
    bars = as_bars(bars)
    out = np.empty((bars.close.shape[0], len(params_list)), dtype=np.float32)
    for j, params in enumerate(params_list):
        out[:, j] = family.compute(bars, **params)
    return out


def max_lookback(grids: Mapping[str, Mapping[str, Sequence] | None] | None = None) -> int:
    """Longest warm-up over the given families and all their variants.

    ``grids`` maps family names to grids as in :func:`expand_grid` (an empty or
    ``None`` grid means the family's default grid); only the named families count.
    ``None`` means every family of the catalogue with its default grid.
    """
    if grids is None:
        grids = {name: None for name in CATALOG}
    longest = 0
    for name, grid in grids.items():
        if name not in CATALOG:
            close = difflib.get_close_matches(str(name), list(CATALOG), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"unknown family '{name}'{hint}")
        family = CATALOG[name]
        for params in expand_grid(family, grid or None):
            longest = max(longest, int(family.lookback(**params)))
    return longest


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel with the argument types the
    catalogue uses, so a process pool started afterwards only loads cached machine code."""
    rng = np.random.default_rng(0)
    n = 64
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    bars = Ohlcv(open_, np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999, close,
                 rng.lognormal(10.0, 0.5, n))
    for family in CATALOG.values():
        family.compute(bars, **expand_grid(family)[0])
    # Kernels the catalogue does not reach, with the same argument types.
    h, lo, c, v, w = bars.high, bars.low, bars.close, bars.volume, 5
    K.stoch_nb(h, lo, c, w, 3, 3)
    K.trange_nb(h, lo, c)
    K.ad_nb(h, lo, c, v)
    K.mom_nb(c, w)
    K.rolling_mean_std_nb(c, w, 1)
    K.rolling_std_nb(c, w, 1)


# ---------------------------------------------------------------------------
# names and the parameters.toml section
# ---------------------------------------------------------------------------


def variant_label(family_name: str, params: dict) -> str:
    """Readable, stable name of one variant, e.g. ``rsi(window=14)``."""
    inner = ", ".join(f"{k}={format_value(v)}" for k, v in params.items())
    return f"{family_name}({inner})"


def default_grids_toml() -> str:
    """The default grids as ``[signals.families.<name>]`` TOML sections, one per family."""
    blocks = []
    for name, family in CATALOG.items():
        lines = [f"# {family.description}", f"[signals.families.{name}]"]
        for param, values in family.default_grid.items():
            lines.append(f"{param} = [{', '.join(format_value(v) for v in values)}]")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
