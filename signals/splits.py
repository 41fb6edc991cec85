"""Calendar cuts: chronological train/validation/test splits on one calendar for every symbol, with purges.

A basket of symbols is cut on *dates*, not bar counts, so that no symbol's training or validation bar lies
inside another symbol's test period (for correlated symbols that would be look-ahead). The pieces:

* :func:`calendar` - the sorted union of every symbol's bar times after its warm-up;
* :func:`fraction_edges` / :func:`date_edge` - cut dates from fractions of that calendar or ISO dates;
* :func:`cut_calendar` - the pure cutter: consecutive segments between given dates, each after the first
  starting once *every* symbol has had ``purge`` bars past the cut. Walk-forward folds are the same call
  with a fold's own start, cuts and end;
* :func:`split_symbols` - what the build uses: ``split.*`` settings -> per-symbol bar ranges and the dates.

Dates are int64 nanoseconds since the epoch (UTC-naive, as :class:`signals.data.Bars` stores them). A cut
date is the first moment *not* in the segment before it. Bar ranges are half-open ``(start, stop)``.

Why the purge is only the scoring horizon (plus ``split.extra_embargo``): features are causal, so an
observation window or indicator warm-up at the start of a split may read earlier bars (the past); only
a label that looks ``horizon`` bars ahead can carry a later split's prices into an earlier one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from settings.schema import SPLIT_CALENDARS as CALENDARS

__all__ = ["CALENDARS", "MIN_SPLIT_BARS", "SPLITS", "Cuts", "calendar", "cut_calendar", "date_edge",
           "fraction_edges", "iso", "split_bounds", "split_symbols"]

SPLITS = ("train", "validation", "test")
# A split shorter than this cannot score or evaluate anything meaningful.
MIN_SPLIT_BARS = 50
# No bar is this late: the "date" of a cut past every calendar's end.
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Cuts:
    """Where a calendar was cut.

    ``bounds[symbol][name]`` is the half-open bar range ``(start, stop)`` of segment ``name`` for that
    symbol. ``starts[name]`` / ``ends[name]`` are the common dates (ns) of each segment: it holds the bars
    at or after ``starts[name]`` and before ``ends[name]``; for the first segment ``starts`` is the
    earliest bar after the warm-up (or the given start) and for the last ``ends`` is past every bar (or the
    given end). ``purge`` is the number of bars every symbol skips after each cut.
    """

    bounds: Mapping[str, Mapping[str, tuple[int, int]]]
    starts: Mapping[str, int]
    ends: Mapping[str, int]
    purge: int


def calendar(timestamps: Mapping[str, np.ndarray], warmup: int) -> np.ndarray:
    """The sorted union of every symbol's bar times from its ``warmup``-th bar on (int64 ns)."""
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0 (got {warmup})")
    parts = [np.asarray(ts, dtype=np.int64)[warmup:] for ts in timestamps.values()]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)


def fraction_edges(days: np.ndarray, fractions: Sequence[float]) -> list[int]:
    """The cut date at each cumulative fraction of a calendar's bars (the first moment not before the cut).

    ``fraction_edges(cal, [0.6, 0.8])`` gives the dates after 60 % and 80 % of the calendar's bars.
    """
    n = len(days)
    if n == 0:
        raise ValueError("the calendar is empty: no bar is left after the warm-up")
    edges = []
    for fraction in fractions:
        i = round(fraction * n)
        edges.append(int(days[i]) if i < n else int(days[-1]) + 1)
    return edges


def date_edge(date: str, name: str) -> int:
    """An ISO date (or date-time) as a cut date in ns; a time zone is converted to UTC. ``name`` is the setting."""
    try:
        stamp = pd.Timestamp(date)
    except ValueError as exc:
        raise ValueError(f"{name}={date!r} is not an ISO date: {exc}") from None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.as_unit("ns").value)


def iso(date: int) -> str:
    """A cut date for people and manifests (``"end"`` for a cut past every bar)."""
    return "end" if date >= _NEVER else pd.Timestamp(date).isoformat()


def cut_calendar(timestamps: Mapping[str, np.ndarray], edges: Sequence[int], *, warmup: int, purge: int,
                 names: Sequence[str] = SPLITS, start: int | None = None, end: int | None = None) -> Cuts:
    """Cut every symbol's bars into ``len(edges) + 1`` consecutive segments at the same dates.

    Segment 0 runs from each symbol's ``warmup``-th bar (or its first bar at or after ``start``, whichever
    is later) to ``edges[0]``; segment i from a common resume date after ``edges[i - 1]`` to ``edges[i]``;
    the last one to ``end`` (default: each symbol's last bar). The resume date is the latest, over the
    symbols, of the time of each symbol's ``purge``-th bar after the cut, so that every symbol skips at least
    ``purge`` bars and no bar of a later segment of any symbol comes before another's purge is over. Pure:
    sizes are not checked here (see :func:`check_sizes`).
    """
    if len(names) != len(edges) + 1:
        raise ValueError(f"cut_calendar: {len(edges)} cut dates need {len(edges) + 1} names (got {list(names)})")
    if warmup < 0 or purge < 0:
        raise ValueError(f"cut_calendar: warmup ({warmup}) and purge ({purge}) must be >= 0")
    if any(b <= a for a, b in pairwise(edges)):
        raise ValueError(f"cut_calendar: cut dates must increase (got {[iso(int(e)) for e in edges]})")
    times = {s: np.asarray(ts, dtype=np.int64) for s, ts in timestamps.items()}
    first = min((int(ts[warmup]) for ts in times.values() if len(ts) > warmup), default=_NEVER)
    starts = [max(first, start if start is not None else first)]
    starts += [_resume(times, int(edge), purge) for edge in edges]
    ends = [int(edge) for edge in edges] + [end if end is not None else _NEVER]
    bounds = {symbol: {name: _bar_range(ts, s, e, floor) for name, s, e, floor
                       in zip(names, starts, ends, _floors(ts, edges, warmup, purge))}
              for symbol, ts in times.items()}
    return Cuts(bounds=bounds, starts=dict(zip(names, starts)), ends=dict(zip(names, ends)), purge=purge)


def _resume(times: Mapping[str, np.ndarray], edge: int, purge: int) -> int:
    """The first date by which every symbol that has them has had ``purge`` bars at or after ``edge``."""
    resume = edge
    for ts in times.values():
        i = int(np.searchsorted(ts, edge, side="left")) + purge
        if i < len(ts):
            resume = max(resume, int(ts[i]))
    return resume


def _floors(ts: np.ndarray, edges: Sequence[int], warmup: int, purge: int) -> list[int]:
    """Each segment's first admissible bar of one symbol: after its warm-up, then ``purge`` bars past each cut.

    The common resume date already ensures this for every symbol with bars after its purge; this also
    keeps the later segment empty for one whose bars end inside the purge.
    """
    return [warmup] + [int(np.searchsorted(ts, edge, side="left")) + purge for edge in edges]


def _bar_range(ts: np.ndarray, start: int, end: int, floor: int) -> tuple[int, int]:
    """Bars of ``ts`` at or after ``start`` and index ``floor``, and before ``end``."""
    a = max(int(np.searchsorted(ts, start, side="left")), min(floor, len(ts)))
    b = int(np.searchsorted(ts, end, side="left"))
    return a, max(a, b)


def check_sizes(cuts: Cuts, knobs: str, minimum: int = MIN_SPLIT_BARS) -> None:
    """ValueError naming the symbol, the split and the settings to change, for any split under ``minimum`` bars."""
    for symbol, bounds in cuts.bounds.items():
        for name, (a, b) in bounds.items():
            if b - a < minimum:
                raise ValueError(
                    f"{symbol}: the {name} split has {b - a} bars (bars {a}..{b}, dates {iso(cuts.starts[name])} to "
                    f"{iso(cuts.ends[name])}), fewer than the minimum {minimum} (purge {cuts.purge} bars after each "
                    f"cut); change {knobs}, lower split.extra_embargo, or use more data for {symbol}")


def split_symbols(timestamps: Mapping[str, np.ndarray], *, warmup: int, purge: int, train: float,
                  validation: float, train_end: str = "", validation_end: str = "",
                  calendar_mode: str = "common", start: str = "", end: str = "",
                  minimum: int = MIN_SPLIT_BARS) -> dict[str, Cuts]:
    """Train/validation/test cuts for every symbol from the ``split.*`` settings.

    ``calendar_mode="common"`` cuts every symbol at the same dates: ``train_end`` / ``validation_end``
    when given, else the ``train`` and ``train + validation`` fractions of the union of the symbols' bar
    times after the warm-up (within ``start`` .. ``end`` when given: a walk-forward fold's span, outside
    which no bar is in any split). Returns ``{"common": cuts}`` then. ``"per_symbol"`` cuts each symbol on its own
    bars and returns ``{symbol: cuts}``. Raises ValueError naming the symbol, split and setting for a split
    under ``minimum`` bars.
    """
    if calendar_mode not in CALENDARS:
        raise ValueError(f"split.calendar must be one of {', '.join(CALENDARS)} (got {calendar_mode!r})")
    if not (train_end and validation_end):  # fractions only matter where a date is missing
        _check_fractions(train, validation)
    groups = ({"common": timestamps} if calendar_mode == "common"
              else {s: {s: ts} for s, ts in timestamps.items()})
    knobs = _knobs(train, validation, train_end, validation_end, calendar_mode)
    first = date_edge(start, "split.start") if start else None
    last = date_edge(end, "split.end") if end else None
    result = {}
    for key, group in groups.items():
        days = calendar(group, warmup)
        if first is not None:
            days = days[days >= first]
        if last is not None:
            days = days[days < last]
        edges = fraction_edges(days, [train, train + validation])
        if train_end:
            edges[0] = date_edge(train_end, "split.train_end")
        if validation_end:
            edges[1] = date_edge(validation_end, "split.validation_end")
        if edges[1] <= edges[0]:
            raise ValueError(f"the validation split ends ({iso(edges[1])}) before it starts ({iso(edges[0])}); "
                             f"change {knobs}")
        cuts = cut_calendar(group, edges, warmup=warmup, purge=purge, start=first, end=last)
        check_sizes(cuts, knobs, minimum)
        result[key] = cuts
    return result


def split_bounds(n_bars: int, timestamps: np.ndarray, *, warmup: int, embargo: int, train: float,
                 validation: float, train_end: str = "", validation_end: str = "") -> dict[str, tuple[int, int]]:
    """One symbol's train/validation/test bar ranges (its own calendar), ``embargo`` bars purged after each cut."""
    if len(timestamps) != n_bars:
        raise ValueError(f"split_bounds: {len(timestamps)} timestamps for {n_bars} bars")
    if warmup >= n_bars:
        raise ValueError(f"split_bounds: warmup of {warmup} bars leaves nothing of {n_bars} bars")
    cuts = split_symbols({"symbol": timestamps}, warmup=warmup, purge=embargo, train=train, validation=validation,
                         train_end=train_end, validation_end=validation_end, calendar_mode="per_symbol")
    return dict(cuts["symbol"].bounds["symbol"])


def _check_fractions(train: float, validation: float) -> None:
    if not (0 < train < 1 and 0 < validation < 1 and train + validation < 1):
        raise ValueError(f"split fractions train={train}, validation={validation} must be > 0 with "
                         "train + validation < 1 (test gets the rest)")


def _knobs(train: float, validation: float, train_end: str, validation_end: str, calendar_mode: str) -> str:
    """The settings that placed the cuts, for error messages."""
    knobs = f"split.train={train}, split.validation={validation}"
    if train_end or validation_end:
        knobs = f"split.train_end={train_end!r}, split.validation_end={validation_end!r} ({knobs})"
    if calendar_mode == "common":
        knobs += ' or split.calendar="per_symbol" (cuts each symbol on its own bars, not look-ahead-safe across them)'
    return knobs
