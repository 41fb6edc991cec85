"""Tests for signals.splits: common calendar cuts over a basket, purges, errors, and the one-symbol cutter."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from signals.splits import (
    MIN_SPLIT_BARS,
    SPLITS,
    calendar,
    cut_calendar,
    date_edge,
    fraction_edges,
    split_bounds,
    split_symbols,
)


def daily(n: int, start: str = "2020-01-01") -> np.ndarray:
    return pd.date_range(start, periods=n, freq="D").as_unit("ns").asi8


def interleaved_basket() -> dict[str, np.ndarray]:
    """Hourly bars 2018-2020; 4-hourly bars at :30 that end in mid-November 2020; weekday bars from September 2018."""
    return {
        "HOURLY": pd.date_range("2018-01-01", "2020-12-31 23:00", freq="h").as_unit("ns").asi8,
        "ENDS_EARLY": pd.date_range("2018-01-01 02:30", "2020-11-15", freq="4h").as_unit("ns").asi8,
        "STARTS_LATE": pd.bdate_range("2018-09-03", "2020-12-31").as_unit("ns").asi8,
    }


def bar_times(ts: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    return ts[bounds[0]:bounds[1]]


# ---------------------------------------------------------------- a common calendar

@pytest.mark.parametrize("dates", [{}, {"train_end": "2019-10-01", "validation_end": "2020-06-01T12:00"}])
def test_no_training_or_validation_bar_of_any_symbol_falls_at_or_after_the_earliest_test_start(dates):
    basket = interleaved_basket()
    cuts = split_symbols(basket, warmup=20, purge=3, train=0.6, validation=0.2, **dates)["common"]
    test_start = min(basket[s][cuts.bounds[s]["test"][0]] for s in basket)
    validation_start = min(basket[s][cuts.bounds[s]["validation"][0]] for s in basket)
    for symbol, ts in basket.items():
        bounds = cuts.bounds[symbol]
        assert bar_times(ts, bounds["train"]).max() < validation_start
        assert bar_times(ts, bounds["validation"]).max() < test_start
        assert all(stop - start >= MIN_SPLIT_BARS for start, stop in bounds.values())
        assert bounds["train"][0] == 20  # each symbol's own warm-up
        assert bounds["test"][1] == len(ts)


def test_per_symbol_cuts_put_one_symbols_training_bars_inside_anothers_test_period():
    """The look-ahead the common calendar removes: with per-symbol cuts the property above fails."""
    basket = interleaved_basket()
    cuts = split_symbols(basket, warmup=20, purge=3, train=0.6, validation=0.2, calendar_mode="per_symbol")
    test_start = min(basket[s][cuts[s].bounds[s]["test"][0]] for s in basket)
    latest_validation = max(bar_times(basket[s], cuts[s].bounds[s]["validation"]).max() for s in basket)
    assert latest_validation >= test_start


def test_common_cut_dates_are_the_fractions_of_the_union_of_bar_times_after_each_warm_up():
    basket = interleaved_basket()
    cal = calendar(basket, 20)
    assert len(cal) == len(np.unique(np.concatenate([ts[20:] for ts in basket.values()])))
    assert cal[0] == min(ts[20] for ts in basket.values())
    cuts = split_symbols(basket, warmup=20, purge=0, train=0.6, validation=0.2)["common"]
    assert cuts.ends["train"] == cal[round(0.6 * len(cal))]
    assert cuts.ends["validation"] == cal[round(0.8 * len(cal))]
    for symbol, ts in basket.items():  # a cut date is the first moment not in the split before it
        stop = cuts.bounds[symbol]["train"][1]
        assert ts[stop - 1] < cuts.ends["train"] <= ts[stop]


def test_every_symbol_skips_at_least_the_purge_after_each_cut_and_resumes_at_a_common_date():
    basket, purge = interleaved_basket(), 4
    cuts = split_symbols(basket, warmup=0, purge=purge, train=0.5, validation=0.3)["common"]
    for name, previous in (("validation", "train"), ("test", "validation")):
        gaps = {}
        for symbol, ts in basket.items():
            at_cut = int(np.searchsorted(ts, cuts.ends[previous]))
            start = cuts.bounds[symbol][name][0]
            gaps[symbol] = start - at_cut
            assert ts[start] >= cuts.starts[name] > ts[start - 1]
        # The symbol whose purge ends last sets the resume date: it skips exactly the purge, the others more.
        assert min(gaps.values()) == purge


def test_identical_calendars_get_the_same_cuts_in_common_and_per_symbol_mode():
    basket = {"A": daily(1000), "B": daily(1000)}
    common = split_symbols(basket, warmup=30, purge=5, train=0.6, validation=0.2)["common"]
    single = split_symbols(basket, warmup=30, purge=5, train=0.6, validation=0.2, calendar_mode="per_symbol")
    assert common.bounds["A"] == common.bounds["B"] == single["A"].bounds["A"] == single["B"].bounds["B"]


@pytest.mark.parametrize("dates, symbol, split", [
    ({"train_end": "2018-10-15"}, "STARTS_LATE", "train"),       # starts too late for the training split
    ({"validation_end": "2020-11-10"}, "ENDS_EARLY", "test"),    # its history ends too soon in the test split
])
def test_a_symbol_with_too_few_bars_in_a_split_is_an_error_naming_symbol_split_and_setting(dates, symbol, split):
    with pytest.raises(ValueError, match=rf"{symbol}: the {split} split has \d+ bars.*change split\.") as info:
        split_symbols(interleaved_basket(), warmup=20, purge=3, train=0.6, validation=0.2, **dates)
    assert 'split.calendar="per_symbol"' in str(info.value) and "split.extra_embargo" in str(info.value)


def test_unknown_calendar_and_reversed_dates_are_errors():
    with pytest.raises(ValueError, match="split.calendar must be one of common, per_symbol"):
        split_symbols(interleaved_basket(), warmup=0, purge=0, train=0.6, validation=0.2, calendar_mode="union")
    with pytest.raises(ValueError, match="validation split ends .* before it starts.*split.validation_end"):
        split_symbols(interleaved_basket(), warmup=0, purge=0, train=0.6, validation=0.2,
                      train_end="2020-06-01", validation_end="2020-03-01")


def test_a_later_segment_of_a_symbol_never_starts_before_another_symbols_purge_is_over():
    """Seen from the calendar: between a cut and the common resume date no symbol has a later-split bar."""
    basket = interleaved_basket()
    cuts = split_symbols(basket, warmup=0, purge=3, train=0.6, validation=0.2)["common"]
    for symbol, ts in basket.items():
        for name in ("validation", "test"):
            assert ts[cuts.bounds[symbol][name][0]] >= cuts.starts[name] > cuts.ends[SPLITS[SPLITS.index(name) - 1]]


# ---------------------------------------------------------------- the cutter, reusable for folds

def test_cut_calendar_cuts_any_number_of_consecutive_purged_segments_between_a_start_and_an_end():
    basket = interleaved_basket()
    edges = [date_edge(d, "d") for d in ("2020-04-01", "2020-05-01", "2020-06-01", "2020-07-01")]
    names = ["a", "b", "c", "d", "e"]
    end = date_edge("2020-09-01", "end")
    cuts = cut_calendar(basket, edges, warmup=10, purge=2, names=names, start=date_edge("2020-03-01", "s"), end=end)
    for symbol, ts in basket.items():
        ranges = [cuts.bounds[symbol][n] for n in names]
        assert all(stop1 + 2 <= start2 for (_, stop1), (start2, _) in pairwise(ranges) if start2 < len(ts))
        assert ts[ranges[0][0]] >= date_edge("2020-03-01", "s")
        assert ranges[-1][1] == len(ts) or ts[ranges[-1][1]] >= end
        assert all(ts[b - 1] < cuts.ends[n] for n, (a, b) in zip(names, ranges) if b > a)
    with pytest.raises(ValueError, match="cut dates must increase"):
        cut_calendar(basket, edges[::-1], warmup=0, purge=0, names=names)


def test_a_symbol_whose_bars_end_inside_the_purge_has_no_bar_in_the_next_segment():
    hourly = pd.date_range("2020-01-01", periods=24 * 100, freq="h").as_unit("ns").asi8
    basket = {"HOURLY": hourly, "SHORT": daily(53)}  # SHORT's last three days fall in its purge after day 50
    cut = int(daily(53)[50])
    cuts = cut_calendar(basket, [cut], warmup=0, purge=5, names=["a", "b"])
    assert cuts.bounds["SHORT"]["b"][1] - cuts.bounds["SHORT"]["b"][0] == 0
    assert cuts.bounds["HOURLY"]["b"] == (50 * 24 + 5, len(hourly))  # and it costs the others nothing


def test_fraction_edges_past_the_last_bar_is_after_every_bar():
    cal = daily(10)
    assert fraction_edges(cal, [0.0, 0.5, 1.0]) == [cal[0], cal[5], cal[-1] + 1]


# ---------------------------------------------------------------- one symbol (split.calendar = "per_symbol")

@pytest.mark.parametrize("purge", [0, 5, 37])
@pytest.mark.parametrize("warmup", [0, 100])
def test_fraction_splits_ordered_with_exact_purge(warmup: int, purge: int) -> None:
    n = 1000
    b = split_bounds(n, daily(n), warmup=warmup, embargo=purge, train=0.6, validation=0.2)
    assert list(b) == list(SPLITS)
    usable = n - warmup
    assert b["train"] == (warmup, warmup + round(0.6 * usable))
    assert b["validation"][0] - b["train"][1] == purge
    assert b["test"][0] - b["validation"][1] == purge
    assert b["validation"][1] == warmup + round(0.8 * usable)
    assert b["test"][1] == n


def test_dates_override_fractions() -> None:
    n = 1000
    b = split_bounds(n, daily(n), warmup=30, embargo=7, train=0.5, validation=0.1,
                     train_end="2021-01-01", validation_end="2021-07-01")
    # 2020 is a leap year: 366 days to 2021-01-01, 181 more to 2021-07-01; dates are exclusive ends.
    assert b == {"train": (30, 366), "validation": (373, 547), "test": (554, 1000)}


def test_one_date_with_fraction_for_the_other_cut() -> None:
    b = split_bounds(1000, daily(1000), warmup=0, embargo=0, train=0.5, validation=0.3, train_end="2020-04-10")
    assert b == {"train": (0, 100), "validation": (100, 800), "test": (800, 1000)}


@pytest.mark.parametrize("kwargs, pattern", [
    ({"train": 0.6, "validation": 0.399},
     r"the test split has \d+ bars.*change split.train=0.6, split.validation=0.399"),
    ({"train": 0.04, "validation": 0.2, "embargo": 30}, r"the train split has 40 bars.*minimum 50"),
    ({"train": 0.8, "validation": 0.3}, r"train \+ validation < 1"),
    ({"train": 0.0, "validation": 0.3}, r"must be > 0"),
    ({"train_end": "2019-06-01", "validation_end": "2020-06-01"},
     r"the train split has 0 bars.*train_end='2019-06-01'"),
    ({"train_end": "2020-06-01", "validation_end": "2020-03-01"}, r"validation split ends.*validation_end="),
    ({"train_end": "not a date"}, r"train_end='not a date' is not an ISO date"),
    ({"warmup": 1000}, r"warmup of 1000 bars leaves nothing"),
])
def test_split_errors(kwargs: dict, pattern: str) -> None:
    args = {"warmup": 0, "embargo": 0, "train": 0.6, "validation": 0.2} | kwargs
    with pytest.raises(ValueError, match=pattern):
        split_bounds(1000, daily(1000, "2020-01-01"), **args)
