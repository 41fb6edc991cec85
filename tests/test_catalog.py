"""signals.catalog: size of the catalogue, the feature contract (bounded, finite after
an exact warm-up), causality, and the grid helpers."""

from __future__ import annotations

import math
import pickle
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import signals.build
from helpers import random_bars
from settings import ConfigError
from signals.catalog import (
    CATALOG,
    FEATURE_BOUND,
    Family,
    GridError,
    Ohlcv,
    check_grid,
    compute_variants,
    default_grids_toml,
    expand_grid,
    family_grids,
    max_lookback,
    variant_label,
    warm_up,
)
from signals.families.base import Below, Positive, Whole

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def perturbed_after(bars: Ohlcv, t: int, seed: int) -> Ohlcv:
    """Bars identical up to t, then a different but still consistent market."""
    rng = np.random.default_rng(seed)
    n = len(bars.close)
    scale = np.ones(n)
    scale[t + 1:] = np.exp(np.cumsum(rng.normal(0.0, 0.02, n - t - 1)))
    o, c = bars.open * scale, bars.close * scale
    h = np.maximum(bars.high * scale, np.maximum(o, c)) * np.where(np.arange(n) > t, 1.01, 1.0)
    lo = np.minimum(bars.low * scale, np.minimum(o, c))
    v = bars.volume * np.where(np.arange(n) > t, rng.lognormal(0.0, 1.0, n), 1.0)
    return Ohlcv(o, h, lo, c, v)


def load_csv(name: str) -> Ohlcv:
    frame = pd.read_csv(DATA / name)
    return Ohlcv(*(frame[col].to_numpy(np.float64) for col in ("Open", "High", "Low", "Close", "Volume")))


N = max_lookback() + 400
BARS = random_bars(N, seed=5, flat_fraction=0.01)
FAMILIES = sorted(CATALOG)


def test_catalog_has_at_least_30_families_in_name_order() -> None:
    assert len(CATALOG) >= 30
    assert list(CATALOG) == sorted(CATALOG)
    for name, family in CATALOG.items():
        assert isinstance(family, Family) and family.name == name and family.description
        assert family.default_grid and all(len(v) > 0 for v in family.default_grid.values())


def test_default_grids_give_at_least_1000_variants() -> None:
    counts = {name: len(expand_grid(f)) for name, f in CATALOG.items()}
    assert min(counts.values()) >= 10, counts
    assert sum(counts.values()) >= 1000, counts


@pytest.mark.parametrize("name", FAMILIES)
def test_every_default_variant_is_bounded_and_finite_after_exact_warm_up(name: str) -> None:
    family = CATALOG[name]
    variants = expand_grid(family)
    matrix = compute_variants(family, BARS, variants)
    assert matrix.dtype == np.float32 and matrix.shape == (N, len(variants))
    for j, params in enumerate(variants):
        lookback = family.lookback(**params)
        assert 0 <= lookback < N - 100, (params, lookback)
        column = matrix[:, j]
        assert np.isnan(column[:lookback]).all(), params
        assert np.isfinite(column[lookback:]).all(), (params, np.flatnonzero(~np.isfinite(column[lookback:]))[:5])
        assert np.abs(column[lookback:]).max() <= FEATURE_BOUND, params
        assert np.std(column[lookback:]) > 1e-3, (params, "a constant feature")


@pytest.mark.parametrize("file", ["FOREX_EURUSD_1H_ASK.csv", "STOCKS_GOOGL.csv"])
def test_every_family_is_finite_and_bounded_on_the_bundled_data(file: str) -> None:
    # Real bars have flat hours, gaps and FX price levels (tiny variances).
    bars = load_csv(file)
    for name, family in CATALOG.items():
        variants = expand_grid(family)
        for params in (variants[0], variants[len(variants) // 2], variants[-1]):
            values = family.compute(bars, **params)
            lookback = family.lookback(**params)
            assert values.dtype == np.float64 and values.shape == bars.close.shape
            assert np.isnan(values[:lookback]).all(), (name, params)
            tail = values[lookback:]
            assert np.isfinite(tail).all() and np.abs(tail).max() <= FEATURE_BOUND, (name, params)


def _same(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", FAMILIES)
def test_features_are_causal(name: str) -> None:
    family = CATALOG[name]
    variants = expand_grid(family)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for params in (variants[0], variants[-1]):
        full = family.compute(BARS, **params)
        lookback = family.lookback(**params)
        for t in sorted(rng.integers(lookback + 1, N - 2, size=3)):
            # The value at t from bars[: t + 1] alone equals the full run's value at t...
            prefix = family.compute(Ohlcv(*(a[: t + 1] for a in BARS)), **params)
            _same(prefix, full[: t + 1])
            # ...and rewriting the future leaves everything up to t unchanged.
            changed = family.compute(perturbed_after(BARS, t, seed=int(t)), **params)
            _same(changed[: t + 1], full[: t + 1])
            assert not np.allclose(changed[t + 1:], full[t + 1:]), "the perturbation did not reach the feature"


def test_expand_grid_rejects_an_unknown_parameter_with_a_suggestion() -> None:
    with pytest.raises(ValueError) as info:
        expand_grid(CATALOG["rsi"], {"windw": [14]})
    message = str(info.value)
    assert "'rsi'" in message and "'windw'" in message and "did you mean 'window'" in message


def test_expand_grid_order_defaults_and_validity() -> None:
    family = CATALOG["ma_cross"]
    variants = expand_grid(family)
    assert variants == expand_grid(family, None)  # stable
    assert all(p["fast"] < p["slow"] for p in variants)
    assert [list(p) for p in variants[:1]] == [["fast", "slow"]]
    # A partial grid keeps the other parameters' defaults; scalars are one-value grids.
    partial = expand_grid(family, {"slow": [50]})
    assert [p["fast"] for p in partial] == [f for f in family.default_grid["fast"] if f < 50]
    assert expand_grid(CATALOG["rsi"], {"window": 14}) == [{"window": 14}]
    assert expand_grid(CATALOG["rsi"], {"window": [5, 5, 9]}) == [{"window": 5}, {"window": 9}]
    assert expand_grid(family, {"fast": [50], "slow": [10]}) == []


def test_max_lookback() -> None:
    everything = max(f.lookback(**p) for f in CATALOG.values() for p in expand_grid(f))
    assert max_lookback() == everything
    assert max_lookback({"rsi": {"window": [14, 30]}, "sma_dist": {"window": [5]}}) == 30
    assert max_lookback({"rsi": {}}) == max(CATALOG["rsi"].default_grid["window"])
    with pytest.raises(ValueError, match="did you mean 'rsi'"):
        max_lookback({"rsii": {}})


def test_variant_label() -> None:
    assert variant_label("rsi", {"window": 14}) == "rsi(window=14)"
    assert variant_label("bb_pctb", {"window": np.int64(20), "nbdev": 2.0}) == "bb_pctb(window=20, nbdev=2.0)"


def test_default_grids_toml_round_trips() -> None:
    parsed = tomllib.loads(default_grids_toml())["signals"]["families"]
    assert list(parsed) == list(CATALOG)
    for name, family in CATALOG.items():
        assert parsed[name] == {k: list(v) for k, v in family.default_grid.items()}


def test_float_parameters_from_a_config_file_are_accepted() -> None:
    # TOML may give 14.0 for a window; the result must equal the integer variant's.
    family = CATALOG["rsi"]
    np.testing.assert_array_equal(family.compute(BARS, window=14.0), family.compute(BARS, window=14))


def test_families_pickle_for_process_pools() -> None:
    family = pickle.loads(pickle.dumps(CATALOG["macd_hist"]))
    params = expand_grid(family)[0]
    np.testing.assert_array_equal(family.compute(BARS, **params), CATALOG["macd_hist"].compute(BARS, **params))
    assert family.valid(fast=5, slow=13, signal=9) and not family.valid(fast=13, slow=5, signal=9)


def test_warm_up_and_input_checks() -> None:
    warm_up()
    with pytest.raises(ValueError, match="equal length"):
        CATALOG["rsi"].compute(Ohlcv(*(a[: 50 + i] for i, a in enumerate(BARS))), window=14)
    # Non-contiguous float32 input is converted, not rejected.
    strided = Ohlcv(*(np.repeat(a, 2)[::2].astype(np.float32) for a in BARS))
    assert np.isfinite(CATALOG["rsi"].compute(strided, window=14)[20:]).all()


def test_parameters_toml_holds_the_default_grids_as_generated() -> None:
    # parameters.toml's [signals.families.*] sections are default_grids_toml() pasted verbatim.
    assert default_grids_toml() in (ROOT / "parameters.toml").read_text()


# ---------------------------------------------------------------- parameter domains

PARAMS = [(name, param) for name in FAMILIES for param in CATALOG[name].default_grid]


def bad_values(domain: object) -> list[object]:
    """Values just outside a domain, and values of the wrong kind."""
    if isinstance(domain, Whole):
        return [domain.low - 1, -5, domain.low + 0.5, "14", True, math.nan]
    assert isinstance(domain, Positive), domain
    return [0.0, -1.0, math.inf, math.nan, "2"]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_has_a_domain_per_parameter_that_accepts_its_defaults(name: str) -> None:
    family = CATALOG[name]
    assert set(family.domain) == set(family.default_grid)
    for param, values in family.default_grid.items():
        assert all(family.domain[param].problem(name, param, v) is None for v in values), param
    # The defaults pass the start-up check unchanged, every value taking part in some variant.
    assert check_grid(family) == expand_grid(family)
    assert family_grids({})[name] == expand_grid(family)


@pytest.mark.parametrize("name, param", PARAMS)
def test_every_domain_rejects_a_bad_value_naming_the_key(name: str, param: str) -> None:
    family = CATALOG[name]
    for value in bad_values(family.domain[param]):
        with pytest.raises(GridError) as info:
            expand_grid(family, {param: [family.default_grid[param][-1], value]})
        assert info.value.key == f"signals.families.{name}.{param}" and name in str(info.value), value
        with pytest.raises(ConfigError, match=rf"^signals\.families\.{name}\.{param}: .* is not a valid "):
            family_grids({name: {param: [value]}})


def test_a_bad_window_reads_like_the_other_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        family_grids({"rsi": {"window": [0, -5]}})
    assert str(info.value) == "signals.families.rsi.window: 0 is not a valid window (rsi needs window >= 2)"
    with pytest.raises(ConfigError, match=r"signals\.families\.rsi\.window: 2\.5 is not a valid window "
                                          r"\(rsi needs window >= 2, a whole number\)"):
        family_grids({"rsi": {"window": [14, 2.5]}})
    with pytest.raises(ConfigError, match=r"signals\.families\.bb_pctb\.nbdev: 0\.0 is not a valid band width "
                                          r"\(bb_pctb needs nbdev > 0\)"):
        family_grids({"bb_pctb": {"nbdev": [0.0]}})
    with pytest.raises(ConfigError, match=r"unknown family 'rsii' \(did you mean 'rsi'\?\)"):
        family_grids({"rsii": {"window": [3]}})
    with pytest.raises(ConfigError, match=r"signals\.families\.rsi: family 'rsi' has no parameter 'windw'"):
        family_grids({"rsi": {"windw": [3]}})


@pytest.mark.parametrize("name", [n for n in FAMILIES if isinstance(CATALOG[n].valid, Below)])
def test_ordered_pairs_reject_a_value_in_no_variant_and_a_grid_with_none(name: str) -> None:
    family = CATALOG[name]
    low, high = family.valid.low, family.valid.high
    top = max(family.default_grid[high])
    with pytest.raises(ConfigError, match=rf"^signals\.families\.{name}\.{low}: {top} is in no variant "
                                          rf"\({name} needs {low} < {high}\)"):
        family_grids({name: {low: [min(family.default_grid[low]), top]}})
    with pytest.raises(ConfigError, match=rf"^signals\.families\.{name}: no variant"):
        family_grids({name: {low: [top], high: [top]}})
    # Expansion alone still filters quietly (what the grid helpers and max_lookback rely on).
    assert expand_grid(family, {low: [top], high: [top]}) == []


def test_disabled_families_are_left_out_and_checked_by_name() -> None:
    grids = family_grids({}, disabled=("rsi",))
    assert "rsi" not in grids and set(grids) == set(CATALOG) - {"rsi"}
    with pytest.raises(ConfigError, match="unknown family 'rsx'"):
        family_grids({}, disabled=("rsx",))


def test_the_build_command_stops_at_a_bad_grid_value_before_writing_anything(tmp_path: Path, capsys) -> None:
    out = tmp_path / "store"
    code = signals.build.main(["--data", str(DATA / "STOCKS_GOOGL.csv"), "--out", str(out),
                               "--set", "signals.families.rsi.window=[0,-5]"])
    assert code == 2
    message = "error: signals.families.rsi.window: 0 is not a valid window (rsi needs window >= 2)"
    assert message in capsys.readouterr().err
    assert not out.exists()
