"""signals.kernels against TA-Lib (where it has the indicator) and pandas (otherwise).

Every comparison checks the NaN warm-up explicitly (same NaN positions) and then the
values. No TA-Lib unstable period needs cropping: TA-Lib's unstable periods default to
0, and the kernels start each recursion (EMA, Wilder, KAMA, ADX...) at the same bar with
the same seed as TA-Lib, so values agree from the first output. Tolerances are rounding
noise (rtol 1e-10 for sums and EMAs, 1e-9 for Wilder recursions and ratios): the TA-Lib
binary is compiled with value-changing float optimisations and the recursions here use
fused multiply-adds, so bit equality is neither possible nor the point. Looser
tolerances are explained where used.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import pytest

talib = pytest.importorskip("talib")

from helpers import random_bars  # noqa: E402
from signals import kernels as K  # noqa: E402

N = 600
WINDOWS = (2, 5, 14, 50)


class Bars(NamedTuple):
    h: np.ndarray
    l: np.ndarray  # noqa: E741
    c: np.ndarray
    v: np.ndarray


B = random_bars(N, seed=7)
H, L, C, V = B.high, B.low, B.close, B.volume
BARS = Bars(H, L, C, V)


def assert_same(actual, expected, rtol: float = 1e-9, atol: float = 1e-10) -> None:
    """Same NaN positions, then values within tolerance; tuples compared item by item."""
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same(a, e, rtol, atol)
        return
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg="NaN warm-up differs")
    ok = ~np.isnan(expected)
    assert ok.any(), "nothing to compare: the window is too long for the data"
    np.testing.assert_allclose(actual[ok], expected[ok], rtol=rtol, atol=atol)


def _keltner_reference(b: Bars, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mid, atr = talib.EMA(b.c, window), talib.ATR(b.h, b.l, b.c, window)
    mid[np.isnan(atr)] = np.nan  # the channel starts with the ATR, a bar after the EMA
    return mid + 2.0 * atr, mid, mid - 2.0 * atr


def _hma_reference(b: Bars, window: int) -> np.ndarray:
    def wma(x: np.ndarray, period: int) -> np.ndarray:
        return x if period == 1 else talib.WMA(x, period)  # TA-Lib rejects period 1 (the identity)

    return wma(2.0 * wma(b.c, window // 2) - wma(b.c, window), int(np.sqrt(window)))


# name -> (kernel(bars, w), reference(bars, w), rtol, atol)
Case = tuple[Callable[[Bars, int], object], Callable[[Bars, int], object], float, float]
TALIB_CASES: dict[str, Case] = {
    "sma": (lambda b, w: K.sma_nb(b.c, w), lambda b, w: talib.SMA(b.c, w), 1e-10, 0.0),
    "ema": (lambda b, w: K.ema_nb(b.c, w), lambda b, w: talib.EMA(b.c, w), 1e-10, 0.0),
    "wma": (lambda b, w: K.wma_nb(b.c, w), lambda b, w: talib.WMA(b.c, w), 1e-10, 0.0),
    "dema": (lambda b, w: K.dema_nb(b.c, w), lambda b, w: talib.DEMA(b.c, w), 1e-10, 0.0),
    "tema": (lambda b, w: K.tema_nb(b.c, w), lambda b, w: talib.TEMA(b.c, w), 1e-10, 0.0),
    "kama": (lambda b, w: K.kama_nb(b.c, w), lambda b, w: talib.KAMA(b.c, w), 1e-10, 0.0),
    "hma": (lambda b, w: K.hma_nb(b.c, w), _hma_reference, 1e-10, 1e-12),
    "rsi": (lambda b, w: K.rsi_nb(b.c, w), lambda b, w: talib.RSI(b.c, w), 1e-9, 1e-9),
    "stoch": (lambda b, w: K.stoch_nb(b.h, b.l, b.c, w, 3, 4),
              lambda b, w: talib.STOCH(b.h, b.l, b.c, w, 3, 0, 4, 0), 1e-9, 1e-9),
    "stochf": (lambda b, w: K.stochf_nb(b.h, b.l, b.c, w, 3),
               lambda b, w: talib.STOCHF(b.h, b.l, b.c, w, 3, 0), 1e-9, 1e-9),
    "willr": (lambda b, w: K.willr_nb(b.h, b.l, b.c, w), lambda b, w: talib.WILLR(b.h, b.l, b.c, w), 1e-9, 1e-9),
    # CCI: when a window's typical prices are nearly equal its deviation is pure rounding
    # noise in TA-Lib as well as here (the two sum in different orders), hence 1e-6.
    "cci": (lambda b, w: K.cci_nb(b.h, b.l, b.c, w), lambda b, w: talib.CCI(b.h, b.l, b.c, w), 1e-6, 1e-6),
    "roc": (lambda b, w: K.roc_nb(b.c, w), lambda b, w: talib.ROC(b.c, w), 1e-10, 1e-12),
    "mom": (lambda b, w: K.mom_nb(b.c, w), lambda b, w: talib.MOM(b.c, w), 0.0, 1e-12),
    "trix": (lambda b, w: K.trix_nb(b.c, w), lambda b, w: talib.TRIX(b.c, w), 1e-9, 1e-10),
    "plus_di": (lambda b, w: K.dmi_nb(b.h, b.l, b.c, w)[0],
                lambda b, w: talib.PLUS_DI(b.h, b.l, b.c, w), 1e-9, 1e-9),
    "minus_di": (lambda b, w: K.dmi_nb(b.h, b.l, b.c, w)[1],
                 lambda b, w: talib.MINUS_DI(b.h, b.l, b.c, w), 1e-9, 1e-9),
    "adx": (lambda b, w: K.dmi_nb(b.h, b.l, b.c, w)[2], lambda b, w: talib.ADX(b.h, b.l, b.c, w), 1e-9, 1e-9),
    "aroon": (lambda b, w: K.aroon_nb(b.h, b.l, w)[:2], lambda b, w: talib.AROON(b.h, b.l, w), 0.0, 1e-12),
    "aroonosc": (lambda b, w: K.aroon_nb(b.h, b.l, w)[2], lambda b, w: talib.AROONOSC(b.h, b.l, w), 0.0, 1e-12),
    "atr": (lambda b, w: K.atr_nb(b.h, b.l, b.c, w), lambda b, w: talib.ATR(b.h, b.l, b.c, w), 1e-9, 0.0),
    "natr": (lambda b, w: K.natr_nb(b.h, b.l, b.c, w), lambda b, w: talib.NATR(b.h, b.l, b.c, w), 1e-9, 0.0),
    # BBANDS/STDDEV: TA-Lib uses E[x^2] - E[x]^2 (cancellation ~1e-12 relative at these
    # price levels); the kernel uses anchored sums.
    "bbands": (lambda b, w: K.bollinger_nb(b.c, w, 2.0, 1.5),
               lambda b, w: talib.BBANDS(b.c, w, 2.0, 1.5, 0), 1e-9, 1e-9),
    "stddev": (lambda b, w: K.rolling_std_nb(b.c, w, 0), lambda b, w: talib.STDDEV(b.c, w, 1.0), 1e-8, 1e-9),
    "keltner": (lambda b, w: K.keltner_nb(b.h, b.l, b.c, w, 2.0), _keltner_reference, 1e-9, 1e-9),
    "max": (lambda b, w: K.rolling_max_nb(b.c, w), lambda b, w: talib.MAX(b.c, w), 0.0, 0.0),
    "min": (lambda b, w: K.rolling_min_nb(b.c, w), lambda b, w: talib.MIN(b.c, w), 0.0, 0.0),
    "donchian": (lambda b, w: K.donchian_nb(b.h, b.l, w),
                 lambda b, w: (talib.MAX(b.h, w), talib.MIN(b.l, w)), 0.0, 0.0),
    "sum": (lambda b, w: K.rolling_sum_nb(b.c, w), lambda b, w: talib.SUM(b.c, w), 1e-10, 0.0),
    "linreg_slope": (lambda b, w: K.linreg_slope_nb(b.c, w),
                     lambda b, w: talib.LINEARREG_SLOPE(b.c, w), 1e-8, 1e-10),
    "correl": (lambda b, w: K.rolling_corr_nb(b.c, b.h, w), lambda b, w: talib.CORREL(b.c, b.h, w), 1e-8, 1e-9),
    "mfi": (lambda b, w: K.mfi_nb(b.h, b.l, b.c, b.v, w),
            lambda b, w: talib.MFI(b.h, b.l, b.c, b.v, w), 1e-9, 1e-9),
    # ADOSC is a small difference of two EMAs of a large cumulative sum: compare at the
    # sum's scale (AD reaches ~1e6 here).
    "adosc": (lambda b, w: K.adosc_nb(b.h, b.l, b.c, b.v, 3, w),
              lambda b, w: talib.ADOSC(b.h, b.l, b.c, b.v, 3, w), 1e-9, 1e-6),
}


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("name", sorted(TALIB_CASES))
def test_kernel_matches_talib(name: str, window: int) -> None:
    kernel, reference, rtol, atol = TALIB_CASES[name]
    assert_same(kernel(BARS, window), reference(BARS, window), rtol=rtol, atol=atol)


@pytest.mark.parametrize("fast,slow,signal", [(12, 26, 9), (5, 35, 5), (2, 3, 2), (8, 8, 1), (26, 12, 9)])
def test_macd_matches_talib(fast: int, slow: int, signal: int) -> None:
    # TA-Lib seeds the fast EMA at the slow EMA's first bar (and swaps fast > slow).
    assert_same(K.macd_nb(C, fast, slow, signal), talib.MACD(C, fast, slow, signal), rtol=1e-9, atol=1e-12)


def test_lookback_zero_kernels_match_talib() -> None:
    assert_same(K.obv_nb(C, V), talib.OBV(C, V), rtol=1e-12, atol=1e-6)
    assert_same(K.ad_nb(H, L, C, V), talib.AD(H, L, C, V), rtol=1e-12, atol=1e-6)
    assert_same(K.trange_nb(H, L, C), talib.TRANGE(H, L, C), rtol=0.0, atol=0.0)


@pytest.mark.parametrize("window", WINDOWS)
def test_aroon_ties_go_to_the_latest_bar(window: int) -> None:
    tied = random_bars(N, seed=11, tick=0.5)  # coarse prices: many equal highs and lows
    h, lo = tied.high, tied.low
    down, up, osc = K.aroon_nb(h, lo, window)
    assert_same((down, up), talib.AROON(h, lo, window), rtol=0.0, atol=1e-12)
    assert_same(osc, talib.AROONOSC(h, lo, window), rtol=0.0, atol=1e-12)


@pytest.mark.parametrize("name", ["ema", "rsi", "kama", "trix", "max", "willr", "atr", "adx", "mfi"])
def test_leading_nans_are_skipped_like_talib(name: str) -> None:
    # The TA-Lib wrapper starts at the first bar without NaN; kernels do the same, so
    # chained kernels (e.g. EMA of an EMA) line up with TA-Lib.
    padded = Bars(*(np.concatenate((np.full(7, np.nan), a[7:])) for a in BARS))
    kernel, reference, rtol, atol = TALIB_CASES[name]
    assert_same(kernel(padded, 14), reference(padded, 14), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", ["sma", "ema", "rsi", "adx", "atr", "cci", "macd", "max", "stddev", "mfi"])
def test_window_longer_than_data_gives_all_nan(name: str) -> None:
    short = {k: v[:20] for k, v in B._asdict().items()}
    h, lo, c, v = short["high"], short["low"], short["close"], short["volume"]
    out = {
        "sma": lambda: K.sma_nb(c, 30), "ema": lambda: K.ema_nb(c, 30), "rsi": lambda: K.rsi_nb(c, 20),
        "adx": lambda: K.dmi_nb(h, lo, c, 11)[2], "atr": lambda: K.atr_nb(h, lo, c, 20),
        "cci": lambda: K.cci_nb(h, lo, c, 21), "macd": lambda: K.macd_nb(c, 12, 26, 9)[0],
        "max": lambda: K.rolling_max_nb(c, 21), "stddev": lambda: K.rolling_std_nb(c, 21, 0),
        "mfi": lambda: K.mfi_nb(h, lo, c, v, 20),
    }[name]()
    assert out.shape == (20,) and np.isnan(out).all()


# ----------------------------------------------------------------- pandas references

S = pd.Series(C)


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("ddof", [0, 1])
def test_rolling_mean_std_matches_pandas(window: int, ddof: int) -> None:
    mean, std = K.rolling_mean_std_nb(C, window, ddof)
    assert_same(mean, S.rolling(window).mean(), rtol=1e-12, atol=0.0)
    assert_same(std, S.rolling(window).std(ddof=ddof), rtol=1e-8, atol=1e-12)
    assert_same(K.rolling_std_nb(C, window, ddof), S.rolling(window).std(ddof=ddof), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("window", WINDOWS)
def test_zscore_matches_pandas(window: int) -> None:
    r = S.rolling(window)
    assert_same(K.zscore_nb(C, window), (S - r.mean()) / r.std(ddof=0), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("window", WINDOWS)
def test_rolling_sum_and_extremes_match_pandas(window: int) -> None:
    assert_same(K.rolling_sum_nb(V, window), pd.Series(V).rolling(window).sum(), rtol=1e-12, atol=0.0)
    assert_same(K.rolling_max_nb(C, window), S.rolling(window).max(), rtol=0.0, atol=0.0)
    assert_same(K.rolling_min_nb(C, window), S.rolling(window).min(), rtol=0.0, atol=0.0)


@pytest.mark.parametrize("window", [1, 3, 7, 64, 299])
@pytest.mark.parametrize("shape", ["rising", "falling", "v", "flat"])
def test_rolling_extremes_on_trends(window: int, shape: str) -> None:
    # Trends are the worst case of a rescan-on-exit rolling max; the block scheme must
    # also be right across block edges and in a partial last block.
    t = np.arange(1000, dtype=np.float64)
    x = {"rising": t, "falling": -t, "v": np.abs(t - 500.0), "flat": np.ones_like(t)}[shape]
    assert_same(K.rolling_max_nb(x, window), pd.Series(x).rolling(window).max(), rtol=0.0, atol=0.0)
    assert_same(K.rolling_min_nb(x, window), pd.Series(x).rolling(window).min(), rtol=0.0, atol=0.0)


@pytest.mark.parametrize("window", [2, 5, 14, 50])
def test_rolling_corr_matches_pandas(window: int) -> None:
    y = pd.Series(H)
    assert_same(K.rolling_corr_nb(C, H, window), S.rolling(window).corr(y), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("window", WINDOWS)
def test_vwap_matches_pandas(window: int) -> None:
    tp = pd.Series((H + L + C) / 3.0)
    v = pd.Series(V)
    expected = (tp * v).rolling(window).sum() / v.rolling(window).sum()
    assert_same(K.vwap_nb(H, L, C, V, window), expected, rtol=1e-10, atol=0.0)


@pytest.mark.parametrize("window", WINDOWS)
def test_efficiency_ratio_matches_pandas(window: int) -> None:
    expected = S.diff(window) / S.diff().abs().rolling(window).sum()
    assert_same(K.efficiency_ratio_nb(C, window), expected, rtol=1e-9, atol=1e-12)


def test_log_returns_match_numpy() -> None:
    assert_same(K.log_returns_nb(C), np.log(S).diff(), rtol=1e-12, atol=1e-15)


def test_flat_window_has_exactly_zero_std() -> None:
    # Sliding sums leave rounding residue; a window of identical values must still give 0.
    x = np.concatenate((C[:100], np.full(60, C[99]), C[100:200]))
    std = K.rolling_std_nb(x, 20, 0)
    assert (std[119:160] == 0.0).all()
    assert (K.zscore_nb(x, 20)[119:160] == 0.0).all()
    assert (std[200:] > 0.0).all()


def test_long_series_keeps_precision() -> None:
    # Drift over many bars: re-summed windows stay accurate on a 200k-bar FX-like series.
    rng = np.random.default_rng(3)
    x = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 1e-4, 200_000)))
    expected = pd.Series(x).rolling(20).std(ddof=0).to_numpy()
    np.testing.assert_allclose(K.rolling_std_nb(x, 20, 0)[-1000:], expected[-1000:], rtol=1e-7)
    np.testing.assert_allclose(K.rolling_sum_nb(x, 20)[-1000:], pd.Series(x).rolling(20).sum()[-1000:], rtol=1e-12)


# ---------------------------------------------------------------- the package and numba's cache

SECTIONS = ("averages", "oscillators", "trend", "volatility", "volume", "stats")


def test_every_kernel_lives_in_one_section_and_is_importable_from_the_package() -> None:
    import importlib

    home: dict[str, str] = {}
    for section in SECTIONS:
        module = importlib.import_module(f"signals.kernels.{section}")
        for name in module.__all__:
            assert name not in home, (name, home.get(name), section)
            home[name] = section
            assert getattr(K, name) is getattr(module, name)
    assert sorted(home) == sorted(K.__all__)


def test_a_changed_source_digest_drops_every_cache_file_and_an_unchanged_one_none(tmp_path) -> None:
    def cache_files() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".nbi", ".nbc"))

    def fake_cache() -> None:
        for name in ("averages.sma_nb-10.py311.nbi", "averages.sma_nb-10.py311.1.nbc",
                     "oscillators.stochf_nb-90.py311.nbi"):
            (tmp_path / name).write_text("machine code")

    fake_cache()
    assert K._drop_stale_caches(tmp_path, "digest-a") == 3 and cache_files() == []
    fake_cache()
    assert K._drop_stale_caches(tmp_path, "digest-a") == 0 and len(cache_files()) == 3
    assert K._drop_stale_caches(tmp_path, "digest-b") == 3 and cache_files() == []


def test_the_sources_digest_changes_with_any_kernel_module(tmp_path, monkeypatch) -> None:
    import shutil

    copy = tmp_path / "kernels"
    shutil.copytree(K._SOURCE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(K, "_SOURCE_DIR", copy)
    before = K.sources_digest()
    for path in sorted(copy.glob("*.py")):
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert K.sources_digest() != before, path.name
        path.write_bytes(original)
    assert K.sources_digest() == before


def test_kernels_are_cached_under_their_section_module_and_a_new_process_loads_them() -> None:
    import subprocess
    import sys

    code = ("import numpy as np; from signals import kernels as K; K.stochf_nb(*[np.ones(30)] * 3, 5, 3); "
            "print(sum(K.stochf_nb.stats.cache_hits.values()), sum(K.stochf_nb.stats.cache_misses.values()))")
    root = K._SOURCE_DIR.parents[1]
    runs = [subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
            for _ in range(2)]
    hits, misses = map(int, runs[1].stdout.split())
    assert (hits, misses) == (1, 0), [r.stdout for r in runs]
    assert list(K._numba_cache_dir().glob("oscillators.stochf_nb-*.nbi"))
