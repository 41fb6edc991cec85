"""Signal pipeline benchmark on a seeded synthetic 1,000,000-bar series.

1. ns per bar of each kernel beside TA-Lib's for the same indicator (ratio ours / TA-Lib; target <= 1.5).
2. Variants per second of the catalogue through the build's process pool at 1, 2, ... workers
   (scaling = rate(w) / (w * rate(1)); target >= 0.8 up to the cores present), with the peak memory
   of the process tree.

    python benchmarks/bench_signals.py [--bars 1000000] [--repeat 5] [--per-family 2] [--quick] [--pool-only]
    python benchmarks/bench_signals.py --pool-only --per-family 0   # the whole catalogue (1,115 variants)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals.threads import cap_thread_env  # noqa: E402

cap_thread_env()  # before numpy loads: the kernel timings are single-threaded, as in a pool worker

import numpy as np  # noqa: E402


def synthetic_bars(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.003, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.003, n)))
    volume = rng.lognormal(10.0, 0.5, n)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def kernel_pairs(b: dict[str, np.ndarray]) -> list[tuple[str, object, object]]:
    """(indicator, our kernel call, TA-Lib's call) at a typical window."""
    import talib

    from signals import kernels as k

    h, lo, c, v = b["high"], b["low"], b["close"], b["volume"]
    w = 14
    return [
        ("SMA", lambda: k.sma_nb(c, 20), lambda: talib.SMA(c, 20)),
        ("EMA", lambda: k.ema_nb(c, 20), lambda: talib.EMA(c, 20)),
        ("WMA", lambda: k.wma_nb(c, 20), lambda: talib.WMA(c, 20)),
        ("DEMA", lambda: k.dema_nb(c, 20), lambda: talib.DEMA(c, 20)),
        ("TEMA", lambda: k.tema_nb(c, 20), lambda: talib.TEMA(c, 20)),
        ("KAMA", lambda: k.kama_nb(c, 10), lambda: talib.KAMA(c, 10)),
        ("MACD", lambda: k.macd_nb(c, 12, 26, 9), lambda: talib.MACD(c, 12, 26, 9)),
        ("RSI", lambda: k.rsi_nb(c, w), lambda: talib.RSI(c, w)),
        ("STOCH", lambda: k.stoch_nb(h, lo, c, w, 3, 3), lambda: talib.STOCH(h, lo, c, w, 3, 0, 3, 0)),
        ("WILLR", lambda: k.willr_nb(h, lo, c, w), lambda: talib.WILLR(h, lo, c, w)),
        ("CCI", lambda: k.cci_nb(h, lo, c, w), lambda: talib.CCI(h, lo, c, w)),
        ("ROC", lambda: k.roc_nb(c, 10), lambda: talib.ROC(c, 10)),
        ("MOM", lambda: k.mom_nb(c, 10), lambda: talib.MOM(c, 10)),
        ("TRIX", lambda: k.trix_nb(c, 15), lambda: talib.TRIX(c, 15)),
        # dmi_nb returns +DI, -DI and ADX together; aroon_nb returns down, up and the oscillator.
        ("ADX+DI", lambda: k.dmi_nb(h, lo, c, w),
         lambda: (talib.ADX(h, lo, c, w), talib.PLUS_DI(h, lo, c, w), talib.MINUS_DI(h, lo, c, w))),
        ("AROON+OSC", lambda: k.aroon_nb(h, lo, w), lambda: (talib.AROON(h, lo, w), talib.AROONOSC(h, lo, w))),
        ("ATR", lambda: k.atr_nb(h, lo, c, w), lambda: talib.ATR(h, lo, c, w)),
        ("NATR", lambda: k.natr_nb(h, lo, c, w), lambda: talib.NATR(h, lo, c, w)),
        ("BBANDS", lambda: k.bollinger_nb(c, 20, 2.0, 2.0), lambda: talib.BBANDS(c, 20, 2.0, 2.0)),
        ("STDDEV", lambda: k.rolling_std_nb(c, 20, 0), lambda: talib.STDDEV(c, 20, 1.0)),
        ("MAX", lambda: k.rolling_max_nb(c, 20), lambda: talib.MAX(c, 20)),
        ("MIN", lambda: k.rolling_min_nb(c, 20), lambda: talib.MIN(c, 20)),
        ("OBV", lambda: k.obv_nb(c, v), lambda: talib.OBV(c, v)),
        ("MFI", lambda: k.mfi_nb(h, lo, c, v, w), lambda: talib.MFI(h, lo, c, v, w)),
        ("AD", lambda: k.ad_nb(h, lo, c, v), lambda: talib.AD(h, lo, c, v)),
        ("ADOSC", lambda: k.adosc_nb(h, lo, c, v, 3, 10), lambda: talib.ADOSC(h, lo, c, v, 3, 10)),
        ("LINEARREG_SLOPE", lambda: k.linreg_slope_nb(c, w), lambda: talib.LINEARREG_SLOPE(c, w)),
    ]


def best_time(fn: object, repeat: int) -> float:
    fn()  # compile / warm caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_kernels(bars: dict[str, np.ndarray], repeat: int) -> list[tuple[str, float, float]]:
    n = len(bars["close"])
    rows = []
    print(f"\n1. kernels on {n:,} bars (best of {repeat}), ns per bar")
    print(f"   {'indicator':<16} {'ours':>8} {'TA-Lib':>8} {'ratio':>7}")
    for name, ours, theirs in kernel_pairs(bars):
        try:
            t_ours, t_theirs = best_time(ours, repeat), best_time(theirs, repeat)
        except Exception as exc:  # a signature that moved: report it, do not hide it
            print(f"   {name:<16} skipped ({exc})")
            continue
        rows.append((name, t_ours / n * 1e9, t_theirs / n * 1e9))
        print(f"   {name:<16} {rows[-1][1]:8.2f} {rows[-1][2]:8.2f} {t_ours / t_theirs:7.2f}x")
    worst = max(rows, key=lambda r: r[1] / r[2])
    print(f"   worst ratio: {worst[0]} {worst[1] / worst[2]:.2f}x (target <= 1.5x); "
          f"median {np.median([r[1] / r[2] for r in rows]):.2f}x")
    return rows


def bench_pool(bars: dict[str, np.ndarray], per_family: int, max_workers: int) -> None:
    from tqdm import tqdm

    from common.resources import TreeMemory
    from settings import BuildConfig
    from signals import store
    from signals.pool import run_pool
    from signals.catalog import CATALOG, expand_grid, warm_up
    from signals.worker import Task

    warm_up()
    variants = [(name, p) for name, family in CATALOG.items() for p in expand_grid(family)[:per_family or None]]
    n = len(bars["close"])
    share = f"{per_family} per family" if per_family else "the whole default grid"
    print(f"\n2. catalogue through the process pool: {len(variants)} variants ({share}, "
          f"{len(CATALOG)} families) on {n:,} bars, one variant per task, batches of 20")
    print(f"   {'workers':>7} {'seconds':>8} {'variants/s':>11} {'scaling':>8} {'peak MiB':>9}")
    base_rate = None
    for workers in range(1, max_workers + 1):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            root = Path(tmp)
            store.write_ohlcv(root, "SYN", np.vstack([bars[k] for k in ("open", "high", "low", "close", "volume")]))
            tasks = [Task(str(root), str(root / "variants"), "SYN", name, f"t{i}", (p,))
                     for i, (name, p) in enumerate(variants)]
            with TreeMemory() as memory, tqdm(total=len(tasks), disable=True) as progress:
                started = time.perf_counter()
                run_pool(tasks, BuildConfig(batch_size=20, start_method="forkserver"), workers, root,
                         root / "variants", progress, log=lambda _: None)
                seconds = time.perf_counter() - started
        rate = len(tasks) / seconds
        base_rate = base_rate or rate
        print(f"   {workers:>7} {seconds:8.2f} {rate:11.1f} {rate / (workers * base_rate):8.2f} "
              f"{memory.peak_bytes / 2**20:9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--per-family", type=int, default=2,
                        help="variants per family in the pool run (0: every variant of the default grid, "
                        "about 4 GB of temporary files at 1,000,000 bars)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--quick", action="store_true", help="100,000 bars, 2 repeats")
    parser.add_argument("--pool-only", action="store_true", help="skip the kernel timings (part 1)")
    args = parser.parse_args()
    if args.quick:
        args.bars, args.repeat = 100_000, 2
    print(f"machine: {os.cpu_count()} cores visible, {len(os.sched_getaffinity(0))} usable")
    bars = synthetic_bars(args.bars)
    if not args.pool_only:
        bench_kernels(bars, args.repeat)
    bench_pool(bars, args.per_family, args.workers)


if __name__ == "__main__":
    main()
