"""Tests for signals.score: JAX vs NumPy agreement, hand-computed cases, no leak, selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from signals import score as sc
from signals.score import (
    SCORE_NAMES,
    score_variants,
    score_variants_jax,
    score_variants_numpy,
    select_variants,
    selection_score,
)

PPY = 252.0 * 24.0


def make_data(n_bars: int, n_variants: int, seed: int = 0, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Random walk close plus features with ties, NaN warm-up, a constant and an all-NaN column."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n_bars)))
    feats = rng.normal(size=(n_bars, n_variants))
    feats[:, ::3] = np.clip(np.round(feats[:, ::3]), -1, 1)  # heavy ties, many exact zeros
    feats[:, 1::4] = np.round(feats[:, 1::4] * 4) / 4  # discretised
    for j in range(0, n_variants, 5):
        feats[: rng.integers(1, n_bars // 4), j] = np.nan  # warm-up rows
    feats[:, min(2, n_variants - 1)] = 0.5  # constant
    if n_variants > 4:
        feats[:, 4] = np.nan  # never defined
    return feats.astype(dtype), close


def assert_scores_close(a: dict, b: dict) -> None:
    for name in SCORE_NAMES:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-7, atol=1e-10, equal_nan=True, err_msg=name)


@pytest.mark.parametrize(
    "n_bars, n_variants, start, stop, horizon, chunk, dtype",
    [
        (60, 7, 0, 60, 1, 256, np.float32),
        (300, 20, 25, 240, 5, 8, np.float32),  # padded last chunk
        (300, 20, 10, 300, 1, 8, np.float32),
        (500, 33, 50, 400, 5, 16, np.float64),  # float64 path (argsort)
    ],
)
def test_jax_matches_numpy(n_bars, n_variants, start, stop, horizon, chunk, dtype):
    feats, close = make_data(n_bars, n_variants, seed=n_bars + n_variants, dtype=dtype)
    kw = dict(start=start, stop=stop, horizon=horizon, cost_bps=3.0, periods_per_year=PPY)
    ref = score_variants_numpy(feats, close, **kw)
    got = score_variants_jax(feats, close, chunk_size=chunk, **kw)
    assert all(got[k].dtype == np.float64 and got[k].shape == (n_variants,) for k in SCORE_NAMES)
    assert_scores_close(ref, got)
    assert np.isnan(ref["rank_ic"][2]) and np.isnan(got["rank_ic"][2])  # constant column


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("horizon", [1, 5])
def test_rank_ic_matches_scipy(backend, horizon):
    feats, close = make_data(200, 6, seed=3)
    start, stop = 20, 180
    got = score_variants(feats, close, start=start, stop=stop, horizon=horizon, cost_bps=0.0,
                         periods_per_year=PPY, backend=backend)["rank_ic"]
    fwd = np.log(close[start + horizon : stop] / close[start : stop - horizon])
    for j in (0, 1, 3, 5):  # tied, discretised, continuous, tied + warm-up NaN
        f = feats[start : stop - horizon, j].astype(np.float64)
        ok = np.isfinite(f)
        assert got[j] == pytest.approx(spearmanr(f[ok], fwd[ok]).statistic, rel=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("cost_bps", [0.0, 10.0])
def test_sharpe_turnover_hand_computed(backend, cost_bps):
    close = np.array([100.0, 101.0, 99.0, 102.0, 102.0, 104.0, 1e9])  # last bar is past stop
    feats = np.array([[2.0], [0.3], [-1.0], [np.nan], [0.0], [5.0], [7.0]], dtype=np.float32)
    out = score_variants(feats, close, start=0, stop=6, horizon=1, cost_bps=cost_bps,
                         periods_per_year=4.0, backend=backend)
    # positions held over bars 0..4: sign -> [1, 1, -1, 0 (NaN is flat), 0]; flat before start
    pos = np.array([1.0, 1.0, -1.0, 0.0, 0.0])
    trades = np.array([1.0, 0.0, 2.0, 1.0, 0.0])
    ret1 = np.log(np.array([101 / 100, 99 / 101, 102 / 99, 102 / 102, 104 / 102]))
    pnl = pos * ret1 - cost_bps / 1e4 * trades
    assert out["turnover"][0] == pytest.approx(4.0 / 5.0)
    assert out["sharpe"][0] == pytest.approx(pnl.mean() / pnl.std() * 2.0, rel=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_degenerate_columns(backend):
    close = 100.0 * np.exp(np.linspace(0.0, 0.1, 30))
    feats = np.stack([np.full(30, 3.0), np.full(30, np.nan), np.zeros(30)], axis=1).astype(np.float32)
    out = score_variants(feats, close, start=0, stop=30, horizon=2, cost_bps=5.0, periods_per_year=PPY,
                         backend=backend)
    assert np.isnan(out["rank_ic"]).all()  # constant / undefined features
    assert out["turnover"].tolist() == [pytest.approx(1 / 29), 0.0, 0.0]  # one entry, never in market
    assert out["sharpe"][1] == 0.0 and out["sharpe"][2] == 0.0  # zero pnl std -> 0
    assert out["sharpe"][0] > 0  # long a rising market


def poison_after(arr: np.ndarray, stop: int, value: float) -> np.ndarray:
    out = arr.copy()
    out[stop:] = value
    return out


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("horizon", [1, 5])
@pytest.mark.parametrize("garbage", [np.nan, -1e30, 0.0])
def test_no_leak_selection_never_reads_validation_or_test_bars(backend, horizon, garbage):
    """Selection never reads validation or test bars: rows >= stop can be anything."""
    feats, close = make_data(300, 20, seed=7)
    start, stop = 30, 200
    families = [f"fam{j % 4}" for j in range(20)]

    def run(f: np.ndarray, c: np.ndarray) -> tuple[dict, list[int]]:
        scores = score_variants(f, c, start=start, stop=stop, horizon=horizon, cost_bps=2.0,
                                periods_per_year=PPY, backend=backend)
        kept = select_variants(f, scores, families, start=start, stop=stop, keep_per_family=2,
                               max_correlation=0.9)
        return scores, kept

    scores, kept = run(feats, close)
    bad_scores, bad_kept = run(poison_after(feats, stop, garbage), poison_after(close, stop, garbage))
    for name in SCORE_NAMES:
        np.testing.assert_array_equal(scores[name], bad_scores[name], err_msg=name)
    assert kept == bad_kept and len(kept) > 0


def test_jax_padding_reuses_compiled_chunk():
    feats, close = make_data(120, 21, seed=11)
    kw = dict(start=0, stop=120, horizon=3, cost_bps=1.0, periods_per_year=PPY)
    score_variants_jax(feats[:, :8], close, chunk_size=8, **kw)  # compile the (rows, 8) program
    before = sc._score_chunk._cache_size()
    score_variants_jax(feats, close, chunk_size=8, **kw)  # 8 + 8 + 5 padded to 8
    assert sc._score_chunk._cache_size() == before


def test_selection_score_abs_ic_nan_to_neg_inf():
    got = selection_score({"rank_ic": np.array([0.1, -0.3, np.nan]), "sharpe": np.zeros(3)})
    assert got.tolist() == [0.1, 0.3, -math.inf]


def corr_features(n: int = 200, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 6))
    return np.column_stack([base, base[:, 0]]).astype(np.float32)  # column 6 duplicates column 0


def test_select_drops_duplicated_column():
    feats = corr_features()
    scores = {"rank_ic": np.array([0.5, 0.1, 0.2, 0.3, 0.05, 0.15, 0.45])}
    kept = select_variants(feats, scores, ["a"] * 7, start=0, stop=200, keep_per_family=10,
                           max_correlation=0.95)
    assert kept == [0, 3, 2, 5, 1, 4]  # best first, duplicate (6) dropped


def test_select_max_features_keeps_the_best_scored_first():
    feats = corr_features()
    scores = {"rank_ic": np.array([0.5, 0.1, 0.2, 0.3, 0.05, 0.15, 0.45])}
    args = dict(start=0, stop=200, keep_per_family=10, max_correlation=0.95)
    assert select_variants(feats, scores, ["a"] * 7, max_features=3, **args) == [0, 3, 2]
    assert select_variants(feats, scores, ["a"] * 7, max_features=0, **args) == [0, 3, 2, 5, 1, 4]


def test_select_respects_keep_per_family_and_skips_nan():
    feats = corr_features()
    scores = {"rank_ic": np.array([0.5, -0.4, 0.3, np.nan, 0.2, 0.1, 0.45])}
    families = ["a", "a", "a", "b", "b", "b", "b"]
    kept = select_variants(feats, scores, families, start=0, stop=200, keep_per_family=2,
                           max_correlation=1.5)  # correlation cap disabled: 6 allowed though duplicate
    assert kept == [0, 6, 1, 4]
    assert 3 not in kept


def test_select_max_correlation_threshold_and_determinism():
    rng = np.random.default_rng(9)
    x = rng.normal(size=400)
    feats = np.column_stack([x, x + 0.5 * rng.normal(size=400), rng.normal(size=400)]).astype(np.float32)
    corr = abs(np.corrcoef(feats[:, 0], feats[:, 1])[0, 1])
    scores = {"rank_ic": np.array([0.3, 0.3, 0.3])}  # ties -> lower index first
    args = dict(start=0, stop=400, keep_per_family=3)
    assert select_variants(feats, scores, ["f"] * 3, max_correlation=corr - 1e-3, **args) == [0, 2]
    assert select_variants(feats, scores, ["f"] * 3, max_correlation=corr + 1e-3, **args) == [0, 1, 2]
    runs = {tuple(select_variants(feats, scores, ["f"] * 3, max_correlation=0.5, **args)) for _ in range(3)}
    assert len(runs) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(start=0, stop=4, horizon=3),  # too short for two forward returns
        dict(start=5, stop=5, horizon=1),
        dict(start=0, stop=50, horizon=1),  # past the end
        dict(start=0, stop=20, horizon=0),
    ],
)
def test_invalid_split_raises(kwargs):
    feats, close = make_data(40, 3)
    with pytest.raises(ValueError):
        score_variants_numpy(feats, close, cost_bps=0.0, periods_per_year=PPY, **kwargs)
    with pytest.raises(ValueError):
        score_variants_jax(feats, close, cost_bps=0.0, periods_per_year=PPY, **kwargs)


def test_unknown_backend_raises():
    feats, close = make_data(40, 3)
    with pytest.raises(ValueError, match="backend"):
        score_variants(feats, close, start=0, stop=40, horizon=1, cost_bps=0.0, periods_per_year=PPY,
                       backend="torch")
