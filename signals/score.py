"""Score feature variants on the training split and pick a decorrelated subset.

Every function here reads only rows ``[start, stop)`` of ``features`` and
``close``: the forward return at bar ``t`` with horizon ``h`` is
``log(close[t + h] / close[t])`` and is used only when ``t + h < stop``, so
nothing from the validation/test bars (not even ``close[stop]``) can leak into
scoring or selection.

Scores per variant (one column of ``features``):

* ``rank_ic``  - Spearman correlation between ``feature[t]`` and the forward
  return from ``t`` to ``t + h``; rows where the feature is not finite are
  dropped for that variant; ties get average ranks; fewer than two usable rows
  or a constant feature give NaN.
* ``sharpe``   - annualised Sharpe of holding ``sign(feature[t])`` (flat where
  the feature is not finite) from ``t`` to ``t + 1``, net of
  ``cost_bps / 1e4 * |pos[t] - pos[t-1]|``; the position before ``start`` is
  flat, so opening the first position is charged. ``std`` uses ``ddof=0``;
  a (numerically) zero std gives 0.
* ``turnover`` - mean ``|pos[t] - pos[t-1]|`` per bar over the same bars.

``score_variants_numpy`` is the readable reference; ``score_variants_jax`` is
the fast path (jit + vmap over columns, float64, chunked) and is tested to
agree with the reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

SCORE_NAMES = ("rank_ic", "sharpe", "turnover")

# Column chunk for the JAX path: bounds device memory to roughly
# n_rows * chunk * (a few float64 temporaries).
DEFAULT_CHUNK = 256

# A pnl std at or below this is treated as zero (Sharpe 0). Per-bar log
# returns are many orders of magnitude larger, so only truly flat pnl
# series (e.g. never in the market) hit it; both backends share it.
_STD_EPS = 1e-12

# Scoped float64: newer jax exposes ``jax.enable_x64``, older releases only
# ``jax.experimental.enable_x64``; both take the flag and restore it on exit.
if hasattr(jax, "enable_x64"):
    _enable_x64 = jax.enable_x64
else:  # pragma: no cover - older jax
    from jax.experimental import enable_x64 as _enable_x64  # type: ignore[attr-defined,no-redef]


# --------------------------------------------------------------------------
# shared validation / returns
# --------------------------------------------------------------------------


def _check_inputs(features: np.ndarray, close: np.ndarray, start: int, stop: int, horizon: int) -> None:
    """Raise ValueError on shapes or a split that cannot be scored."""
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (n_bars, n_variants), got shape {features.shape}")
    if close.ndim != 1 or close.shape[0] != features.shape[0]:
        raise ValueError(f"close must be 1-D with {features.shape[0]} bars, got shape {close.shape}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if not 0 <= start < stop <= close.shape[0]:
        raise ValueError(f"need 0 <= start < stop <= {close.shape[0]}, got start={start} stop={stop}")
    # Need at least two forward returns for a correlation.
    if stop - start < horizon + 2:
        raise ValueError(f"training split [{start}, {stop}) too short for horizon {horizon}")
    train_close = close[start:stop]
    if not (np.all(np.isfinite(train_close)) and np.all(train_close > 0)):
        raise ValueError("close must be finite and positive on the training split")


def _train_returns(close: np.ndarray, start: int, stop: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Forward (horizon) and one-bar log returns from ``close[start:stop]`` only.

    Returns ``(fwd, ret1)`` with ``fwd[i] = log(c[i+h]/c[i])`` for
    ``i < n - h`` and ``ret1[i] = log(c[i+1]/c[i])`` for ``i < n - 1``,
    where ``c = close[start:stop]`` and ``n = stop - start``.
    """
    log_c = np.log(np.asarray(close[start:stop], dtype=np.float64))
    return log_c[horizon:] - log_c[:-horizon], log_c[1:] - log_c[:-1]


# --------------------------------------------------------------------------
# NumPy reference
# --------------------------------------------------------------------------


def _average_ranks_np(x: np.ndarray) -> np.ndarray:
    """0-based ranks of ``x`` with ties sharing the mean of their ranks."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # one past the last 0-based rank of each group
    first = ends - counts
    return ((first + ends - 1) / 2.0)[inverse.reshape(-1)]


def _pearson_np(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when fewer than two points or either is constant."""
    if a.size < 2:
        return math.nan
    da = a - a.mean()
    db = b - b.mean()
    denom = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    return float(np.dot(da, db)) / denom if denom > 0 else math.nan


def _sharpe_turnover_np(
    feats: np.ndarray, ret1: np.ndarray, cost: float, periods_per_year: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sharpe and turnover of sign-of-feature positions, vectorised over columns."""
    held = feats[: ret1.shape[0]].astype(np.float64)
    pos = np.where(np.isfinite(held), np.sign(held), 0.0)
    prev = np.vstack([np.zeros((1, pos.shape[1])), pos[:-1]])  # flat before start
    trades = np.abs(pos - prev)
    pnl = pos * ret1[:, None] - cost * trades
    mean = pnl.mean(axis=0)
    std = np.sqrt(((pnl - mean) ** 2).mean(axis=0))
    safe_std = np.where(std > _STD_EPS, std, 1.0)
    sharpe = np.where(std > _STD_EPS, mean / safe_std * math.sqrt(periods_per_year), 0.0)
    return sharpe, trades.mean(axis=0)


def score_variants_numpy(
    features: np.ndarray,
    close: np.ndarray,
    *,
    start: int,
    stop: int,
    horizon: int,
    cost_bps: float,
    periods_per_year: float,
) -> dict[str, np.ndarray]:
    """Reference scorer (plain NumPy, column loop for rank IC).

    Args:
        features: (n_bars, n_variants) feature matrix; NaN allowed.
        close: (n_bars,) positive close prices.
        start, stop: training split rows ``[start, stop)``; nothing else is read.
        horizon: forward-return horizon in bars for ``rank_ic``.
        cost_bps: cost per unit position change, in basis points.
        periods_per_year: bars per year, for annualising the Sharpe ratio.

    Returns:
        ``{name: float64 array of shape (n_variants,)}`` for ``SCORE_NAMES``.
    """
    features = np.asarray(features)
    close = np.asarray(close)
    _check_inputs(features, close, start, stop, horizon)
    feats = features[start:stop]
    fwd, ret1 = _train_returns(close, start, stop, horizon)
    rank_ic = np.empty(feats.shape[1], dtype=np.float64)
    for j in range(feats.shape[1]):
        f = feats[: fwd.shape[0], j].astype(np.float64)
        usable = np.isfinite(f)
        rank_ic[j] = _pearson_np(_average_ranks_np(f[usable]), _average_ranks_np(fwd[usable]))
    sharpe, turnover = _sharpe_turnover_np(feats, ret1, cost_bps / 1e4, periods_per_year)
    return {"rank_ic": rank_ic, "sharpe": sharpe, "turnover": turnover}


# --------------------------------------------------------------------------
# JAX implementation
# --------------------------------------------------------------------------


def _exclusive_counts(flags: jax.Array) -> jax.Array:
    """``out[k]`` = number of true ``flags`` before position ``k`` (length n + 1)."""
    return jnp.concatenate([jnp.zeros(1, jnp.float64), jnp.cumsum(flags.astype(jnp.float64))])


def _ranks_from_bounds(usable_sorted: jax.Array, first: jax.Array, last: jax.Array) -> jax.Array:
    """Average 0-based ranks among usable rows, from tie-group bounds in sorted order.

    ``usable_sorted`` are the usable flags in sorted order; ``first``/``last``
    are, per element, the first and last sorted positions of its tie group.
    Counting only usable rows inside those bounds means unusable rows (whatever
    placeholder value they hold) never shift anyone's rank.
    """
    counts = _exclusive_counts(usable_sorted)
    below = counts[first]
    through = counts[last + 1]
    return below + (through - below - 1.0) / 2.0


def _sort_order(x: jax.Array) -> jax.Array:
    """Permutation sorting ``x`` ascending (ties in any order).

    For float32 columns, XLA's multi-operand argsort is several times slower
    on CPU than a single-key sort, so the value's order-preserving uint32 bits
    and the row index are packed into one uint64 key and sorted directly.
    """
    if x.dtype != jnp.float32:
        return jnp.argsort(x, stable=False)
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    # IEEE floats order like sign-magnitude ints: flip negatives, set sign bit on positives.
    key = jnp.where((bits >> 31) == 1, ~bits, bits | jnp.uint32(0x80000000))
    rows = jnp.arange(x.shape[0], dtype=jnp.uint64)
    packed = jnp.sort((key.astype(jnp.uint64) << 32) | rows)
    return (packed & jnp.uint64(0xFFFFFFFF)).astype(jnp.int32)


def _tie_bounds(values_sorted: jax.Array) -> tuple[jax.Array, jax.Array]:
    """First and last sorted position of each element's tie group (by ``==``)."""
    n = values_sorted.shape[0]
    pos = jnp.arange(n)
    differs = values_sorted[1:] != values_sorted[:-1]
    starts = jnp.concatenate([jnp.ones(1, bool), differs])
    ends = jnp.concatenate([differs, jnp.ones(1, bool)])
    first = jax.lax.cummax(jnp.where(starts, pos, 0))
    last = jax.lax.cummin(jnp.where(ends, pos, n - 1), reverse=True)
    return first, last


def _masked_pearson(a: jax.Array, b: jax.Array, usable: jax.Array) -> jax.Array:
    """Pearson correlation over ``usable`` rows; NaN if undefined."""
    n = jnp.sum(usable)
    w = usable.astype(jnp.float64)
    da = (a - jnp.sum(a * w) / jnp.maximum(n, 1)) * w
    db = (b - jnp.sum(b * w) / jnp.maximum(n, 1)) * w
    denom = jnp.sqrt(jnp.sum(da * da) * jnp.sum(db * db))
    ok = (n >= 2) & (denom > 0)
    return jnp.where(ok, jnp.sum(da * db) / jnp.where(ok, denom, 1.0), jnp.nan)


def _score_column(
    f: jax.Array,
    fwd_order: jax.Array,
    fwd_slot: jax.Array,
    fwd_first: jax.Array,
    fwd_last: jax.Array,
    ret1: jax.Array,
    cost: jax.Array,
    ann: jax.Array,
) -> dict[str, jax.Array]:
    """All scores of one variant; ``f`` covers the training rows only.

    ``fwd_order`` sorts the forward returns, ``fwd_slot`` is its inverse (each
    row's sorted position) and ``fwd_first``/``fwd_last`` are the tie-group
    bounds in sorted order; all are computed once on host.
    """
    n_fwd = fwd_order.shape[0]
    head = f[:n_fwd]
    usable = jnp.isfinite(head)
    # Rank IC is computed in the feature's sorted order: Pearson is a sum over
    # rows, so any common row order works and we avoid scattering ranks back.
    filled = jnp.where(usable, head, jnp.zeros((), head.dtype))  # NaN would break sorting
    order = _sort_order(filled)
    usable_sorted = usable[order]
    f_ranks = _ranks_from_bounds(usable_sorted, *_tie_bounds(filled[order]))
    # Return ranks depend on which rows this variant keeps, but the sort of the
    # returns is shared, so only a cumulative count is per-variant.
    r_ranks = _ranks_from_bounds(usable[fwd_order], fwd_first, fwd_last)
    rank_ic = _masked_pearson(f_ranks, r_ranks[fwd_slot[order]], usable_sorted)

    held = f[: ret1.shape[0]].astype(jnp.float64)
    pos = jnp.where(jnp.isfinite(held), jnp.sign(held), 0.0)
    prev = jnp.concatenate([jnp.zeros(1, jnp.float64), pos[:-1]])  # flat before start
    trades = jnp.abs(pos - prev)
    pnl = pos * ret1 - cost * trades
    mean = jnp.mean(pnl)
    std = jnp.sqrt(jnp.mean((pnl - mean) ** 2))
    sharpe = jnp.where(std > _STD_EPS, mean / jnp.where(std > _STD_EPS, std, 1.0) * ann, 0.0)
    return {"rank_ic": rank_ic, "sharpe": sharpe, "turnover": jnp.mean(trades)}


# One compiled program per (n_rows, chunk, horizon) shape; variants are columns.
_score_chunk = jax.jit(jax.vmap(_score_column, in_axes=(1, None, None, None, None, None, None, None)))


def _chunk_width(n_variants: int, chunk_size: int) -> int:
    """Chunk width: ``chunk_size``, or the next power of two for small inputs.

    Powers of two keep small calls from padding up to a full chunk while still
    bounding the number of distinct compiled shapes.
    """
    return min(chunk_size, 1 << max(0, (n_variants - 1).bit_length()))


def score_variants_jax(
    features: np.ndarray,
    close: np.ndarray,
    *,
    start: int,
    stop: int,
    horizon: int,
    cost_bps: float,
    periods_per_year: float,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, np.ndarray]:
    """JAX scorer: same contract and results as :func:`score_variants_numpy`.

    Runs in float64 (locally enabled) on JAX's default device, ``jit`` +
    ``vmap`` over columns, ``chunk_size`` columns at a time; the last chunk is
    NaN-padded to full width so it reuses the compiled program. Returns NumPy
    float64 arrays.
    """
    features = np.asarray(features)
    close = np.asarray(close)
    _check_inputs(features, close, start, stop, horizon)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    feats = features[start:stop]  # the only feature rows ever read
    n_variants = feats.shape[1]
    if n_variants == 0:
        return {name: np.empty(0, dtype=np.float64) for name in SCORE_NAMES}
    fwd, ret1 = _train_returns(close, start, stop, horizon)
    # The forward-return sort is shared by every variant: do it once on host.
    fwd_order = np.argsort(fwd, kind="stable")
    fwd_sorted = fwd[fwd_order]
    fwd_slot = np.empty_like(fwd_order)
    fwd_slot[fwd_order] = np.arange(fwd_order.size)
    fwd_first = np.searchsorted(fwd_sorted, fwd_sorted, side="left")
    fwd_last = np.searchsorted(fwd_sorted, fwd_sorted, side="right") - 1
    # float32 (the pipeline's dtype) keeps the fast packed sort; anything else
    # is ranked as float64. Both conversions are exact, so ties are preserved.
    if feats.dtype != np.float32:
        feats = feats.astype(np.float64)
    width = _chunk_width(n_variants, chunk_size)
    with _enable_x64(True):
        shared = (
            jnp.asarray(fwd_order),
            jnp.asarray(fwd_slot),
            jnp.asarray(fwd_first),
            jnp.asarray(fwd_last),
            jnp.asarray(ret1, dtype=jnp.float64),
            jnp.asarray(cost_bps / 1e4, dtype=jnp.float64),
            jnp.asarray(math.sqrt(periods_per_year), dtype=jnp.float64),
        )
        # Dispatch every chunk before pulling results so device work overlaps
        # with host slicing/transfer of the next chunk.
        pending = [_score_chunk(jnp.asarray(_padded_chunk(feats, lo, width)), *shared)
                   for lo in range(0, n_variants, width)]
        parts = [{k: np.asarray(v, dtype=np.float64) for k, v in out.items()} for out in pending]
    return {name: np.concatenate([p[name] for p in parts])[:n_variants] for name in SCORE_NAMES}


def _padded_chunk(feats: np.ndarray, lo: int, width: int) -> np.ndarray:
    """Columns ``[lo, lo + width)`` of ``feats``, NaN-padded on the right."""
    block = feats[:, lo : lo + width]
    if block.shape[1] == width:
        return block
    pad = np.full((feats.shape[0], width - block.shape[1]), np.nan, dtype=block.dtype)
    return np.concatenate([block, pad], axis=1)


def score_variants(
    features: np.ndarray,
    close: np.ndarray,
    *,
    start: int,
    stop: int,
    horizon: int,
    cost_bps: float,
    periods_per_year: float,
    backend: str = "jax",
) -> dict[str, np.ndarray]:
    """Score every variant on rows ``[start, stop)``; ``backend`` is "jax" or "numpy"."""
    if backend == "jax":
        return score_variants_jax(features, close, start=start, stop=stop, horizon=horizon, cost_bps=cost_bps,
                                  periods_per_year=periods_per_year)
    if backend == "numpy":
        return score_variants_numpy(features, close, start=start, stop=stop, horizon=horizon, cost_bps=cost_bps,
                                    periods_per_year=periods_per_year)
    raise ValueError(f"unknown backend {backend!r}; expected 'jax' or 'numpy'")


# --------------------------------------------------------------------------
# selection
# --------------------------------------------------------------------------


def selection_score(scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """One number per variant to rank by: ``|rank_ic|``, NaN -> ``-inf``.

    Rank IC measures predictive content of the feature for the forward return
    and, unlike Sharpe, does not depend on costs or on the sign convention of
    the feature (the agent can learn to use a negatively correlated input just
    as well), hence the absolute value.
    """
    ic = np.abs(np.asarray(scores["rank_ic"], dtype=np.float64))
    return np.where(np.isnan(ic), -np.inf, ic)


def _abs_corr_with_kept(col: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """|Pearson| of ``col`` with each column of ``kept`` over rows finite in both.

    Undefined correlations (constant or < 2 shared rows) come back as 0: they
    are no evidence of redundancy.
    """
    both = np.isfinite(col)[:, None] & np.isfinite(kept)
    w = both.astype(np.float64)
    n = w.sum(axis=0)
    a = np.where(both, col[:, None], 0.0)
    b = np.where(both, kept, 0.0)
    da = (a - a.sum(axis=0) / np.maximum(n, 1)) * w
    db = (b - b.sum(axis=0) / np.maximum(n, 1)) * w
    denom = np.sqrt((da * da).sum(axis=0) * (db * db).sum(axis=0))
    ok = (n >= 2) & (denom > 0)
    return np.where(ok, np.abs((da * db).sum(axis=0)) / np.where(ok, denom, 1.0), 0.0)


def select_variants(
    features: np.ndarray,
    scores: Mapping[str, np.ndarray],
    families: Sequence[str],
    *,
    start: int,
    stop: int,
    keep_per_family: int,
    max_correlation: float,
    max_features: int = 0,
) -> list[int]:
    """Greedy, family-capped, decorrelated selection of variant columns.

    Candidates are walked best-first by :func:`selection_score` across all
    families (ties: lower column index first). A candidate is kept when its
    score is finite, its family has fewer than ``keep_per_family`` kept, and
    its absolute Pearson correlation over rows ``[start, stop)`` (rows finite
    in both) with every already-kept column is ``<= max_correlation``. The walk stops once
    ``max_features`` columns are kept (0: no such cap).
    Only rows ``[start, stop)`` of ``features`` are read.

    Returns:
        Kept column indices in order of selection.
    """
    sel = selection_score(scores)
    n_variants = features.shape[1]
    if sel.shape != (n_variants,) or len(families) != n_variants:
        raise ValueError("scores and families must have one entry per feature column")
    if not 0 <= start < stop <= features.shape[0]:
        raise ValueError(f"need 0 <= start < stop <= {features.shape[0]}, got start={start} stop={stop}")
    train = np.asarray(features[start:stop], dtype=np.float64)
    complete, unit = _unit_columns(train)
    # Stable sort on -score: deterministic, lower index wins ties.
    order = np.argsort(-sel, kind="stable")
    kept: list[int] = []
    per_family: dict[str, int] = {}
    for j in order:
        if not np.isfinite(sel[j]) or (max_features and len(kept) >= max_features):
            break  # -inf scores sort last; nothing after is keepable
        fam = families[j]
        if per_family.get(fam, 0) >= keep_per_family:
            continue
        if kept and _max_abs_corr(train, complete, unit, j, kept) > max_correlation:
            continue
        kept.append(int(j))
        per_family[fam] = per_family.get(fam, 0) + 1
    return kept


def _unit_columns(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns with no NaN, those columns centred and scaled to unit norm; constant ones all zero).

    For such columns Pearson correlation is a dot product, so each candidate costs one small
    mat-vec instead of a pass of pairwise-NaN bookkeeping over every kept column.
    """
    complete = np.isfinite(train).all(axis=0)
    centred = np.where(complete, train - np.where(complete, train, 0.0).mean(axis=0), 0.0)
    norms = np.sqrt((centred * centred).sum(axis=0))
    unit = np.where(norms > 0, centred / np.where(norms > 0, norms, 1.0), 0.0)
    return complete, unit


def _max_abs_corr(train: np.ndarray, complete: np.ndarray, unit: np.ndarray, j: int, kept: list[int]) -> float:
    kept_arr = np.asarray(kept)
    if complete[j] and complete[kept_arr].all():
        return float(np.max(np.abs(unit[:, kept_arr].T @ unit[:, j])))
    return float(np.max(_abs_corr_with_kept(train[:, j], train[:, kept_arr])))
