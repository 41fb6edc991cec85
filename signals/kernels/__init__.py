"""Numba kernels of the technical indicators used by the signal catalogue.

Layout (after vectorbt, which keeps rolling primitives in ``generic/nb.py`` apart from the
indicator maths in ``indicators/nb.py``): ``stats`` holds the rolling primitives and
statistics (extremes, sums, moments, returns, correlation) that the indicator sections
``averages``, ``oscillators``, ``trend``, ``volatility`` and ``volume`` build on;
``_common`` holds the JIT options and the small helpers they all share. Every public
kernel is re-exported here: ``from signals.kernels import rsi_nb``.

Discipline (after vectorbt's ``rolling_mean_1d_nb``): every public kernel is an
``@njit(**_JIT)`` function named ``*_nb`` that takes 1-D float64 NumPy arrays
and plain numbers and returns new float64 arrays of the input's length. No pandas,
no configuration, no I/O.

Conventions shared by all kernels
---------------------------------
* **Warm-up.** Bars before an indicator's *lookback* are NaN, exactly where TA-Lib
  (through its Python wrapper) or pandas put them; every docstring states the
  lookback, counted from the first bar where all inputs are non-NaN.
* **Leading NaNs** of an input are skipped like TA-Lib's Python wrapper does, so
  kernels can be chained (``ema_nb(ema_nb(x, n), n)``). A NaN *inside* the data
  poisons every recursive value after it, as it does in TA-Lib; clean data first.
* **O(n).** Running sums, Wilder recursions and block-wise (van Herk / Gil-Werman)
  rolling extremes keep every kernel linear in the number of bars whatever the
  window; only CCI's mean absolute deviation is inherently O(n * window), as in
  TA-Lib. Outputs are written in one fused pass where TA-Lib chains calls.
* **TA-Lib semantics.** Where a TA-Lib function exists the kernel follows its C
  source: same seeds (SMA-seeded EMA, first-ATR average, ...), same special cases
  (``TA_IS_ZERO`` = |v| < 1e-8, 0 on a flat range, ...), same lookbacks. Values agree
  to ~1e-12 relative rather than bit for bit: the TA-Lib binary is itself built with
  value-changing float optimisations, and Wilder recursions here are written as
  ``v * (n-1)/n + new / n`` so the loop-carried dependency is one fused multiply-add.
  ``fastmath`` is limited to that contraction (``contract``): no reassociation, no
  NaN/inf assumptions, so results do not depend on the array length (causality).
* **Rolling variance** is the one deliberate departure from TA-Lib's arithmetic
  (see ``_rolling_moments_nb``).
* **Window arguments** are integers >= 1 (>= 2 where stated); a window too long for
  the data gives all-NaN output, as TA-Lib does.
* **Numba's cache** (``cache=True``) is keyed on each function's own source file, so a
  cached kernel that inlined a helper from another module would outlive a change to
  that helper. :func:`_drop_stale_caches` removes the package's cache files whenever
  any of its source files changes (see there).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from signals.kernels.averages import dema_nb, ema_nb, hma_nb, kama_nb, sma_nb, tema_nb, wma_nb
from signals.kernels.oscillators import (
    cci_nb,
    efficiency_ratio_nb,
    macd_nb,
    mom_nb,
    roc_nb,
    rsi_nb,
    stoch_nb,
    stochf_nb,
    trix_nb,
    willr_nb,
)
from signals.kernels.stats import (
    log_returns_nb,
    rolling_corr_nb,
    rolling_max_nb,
    rolling_mean_std_nb,
    rolling_min_nb,
    rolling_std_nb,
    rolling_sum_nb,
    zscore_nb,
)
from signals.kernels.trend import aroon_nb, dmi_nb, linreg_slope_nb
from signals.kernels.volatility import atr_nb, bollinger_nb, donchian_nb, keltner_nb, natr_nb, trange_nb
from signals.kernels.volume import ad_nb, adosc_nb, mfi_nb, obv_nb, vwap_nb

__all__ = [
    "ad_nb",
    "adosc_nb",
    "aroon_nb",
    "atr_nb",
    "bollinger_nb",
    "cci_nb",
    "dema_nb",
    "dmi_nb",
    "donchian_nb",
    "efficiency_ratio_nb",
    "ema_nb",
    "hma_nb",
    "kama_nb",
    "keltner_nb",
    "linreg_slope_nb",
    "log_returns_nb",
    "macd_nb",
    "mfi_nb",
    "mom_nb",
    "natr_nb",
    "obv_nb",
    "roc_nb",
    "rolling_corr_nb",
    "rolling_max_nb",
    "rolling_mean_std_nb",
    "rolling_min_nb",
    "rolling_std_nb",
    "rolling_sum_nb",
    "rsi_nb",
    "sma_nb",
    "stoch_nb",
    "stochf_nb",
    "tema_nb",
    "trange_nb",
    "trix_nb",
    "vwap_nb",
    "willr_nb",
    "wma_nb",
    "zscore_nb",
]

_SOURCE_DIR = Path(__file__).resolve().parent
_STAMP = "signals-kernels-sources.sha256"


def sources_digest() -> str:
    """SHA-256 of every source file of this package (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(_SOURCE_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _drop_stale_caches(cache_dir: Path, digest: str) -> int:
    """Remove numba's cache files in ``cache_dir`` unless they were made from sources with ``digest``.

    Numba checks a cached function against its own file's time stamp only (numba issue
    #6845): ``stochf_nb`` in ``oscillators.py`` inlines ``sma_nb`` from ``averages.py``, and
    its cached machine code would survive an edit of ``sma_nb``. A stamp of all the
    package's sources beside the cache files makes any edit drop every cache file of the
    package; they are rebuilt on the next call. Returns the number of files removed. A
    cache directory that cannot be written is left alone (numba cannot cache there either).
    """
    stamp = cache_dir / _STAMP
    try:
        if stamp.read_text() == digest:
            return 0
    except OSError:
        pass
    removed = 0
    try:
        for path in [*cache_dir.glob("*.nbi"), *cache_dir.glob("*.nbc")]:
            path.unlink(missing_ok=True)
            removed += 1
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f"{_STAMP}.{os.getpid()}.tmp"
        tmp.write_text(digest)
        tmp.replace(stamp)  # atomic: a concurrent reader sees the old stamp or the new one
    except OSError:
        pass
    return removed


def _numba_cache_dir() -> Path:
    """Where numba caches this package's kernels: ``__pycache__`` beside the sources, or the
    directory that ``NUMBA_CACHE_DIR`` or an unwritable source tree sends it to (numba's
    dispatcher reports it in ``stats.cache_path``; every module here shares one directory)."""
    path = getattr(getattr(sma_nb, "stats", None), "cache_path", None)
    return Path(path) if path else _SOURCE_DIR / "__pycache__"


_drop_stale_caches(_numba_cache_dir(), sources_digest())
