"""`python -m signals.build`: compute every signal variant, score it on the training split, keep the
best decorrelated ones and write them to the store.

Reads top to bottom: arguments -> parameters -> cache check -> market data -> task plan -> process pool
-> scoring and selection -> store -> report.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from tqdm import tqdm

from settings import EXECUTORS, ConfigError, Params, add_params_arguments, params_from_cli
from common import files
from signals import store
from signals.cache import data_hashes, store_cache_key, task_key, variant_code_hash  # store_cache_key: re-exported
from common.provenance import write_run_record
from common.resources import TreeMemory, available_cores
from signals.pool import PoolFailed, run_pool
from signals.worker import Task

# signals.data, splits, catalog and score are imported in the functions that use them, not here: with pandas,
# numba and JAX they take about 2.5 s to import (measured on the 2-core machine), and an up-to-date build,
# which `python -m trader.train` goes through on every run, needs none of them (it answers in well under 2 s).

DATA_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet")


class BuildError(RuntimeError):
    """The build could not finish; completed tasks stay in the store for the rerun."""


# ---------------------------------------------------------------- arguments and parameters

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m signals.build", description=__doc__.split("\n\n")[0])
    add_params_arguments(parser)
    parser.add_argument("--data", nargs="+", metavar="PATH", help="market data files or folders (default: data.paths)")
    parser.add_argument("--out", help="store directory (default: build.out)")
    parser.add_argument("--workers", type=int, help="worker processes (default: build.workers; 0 = cores available)")
    parser.add_argument("--batch-size", type=int,
                        help="tasks submitted to the pool at a time (default: build.batch_size)")
    parser.add_argument("--executor", choices=EXECUTORS,
                        help="where the tasks run: local processes or a Dask cluster (default: build.executor)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:8786",
                        help="the Dask scheduler, with --executor dask (default: build.scheduler; empty: a "
                             "LocalCluster of --workers processes on this machine)")
    parser.add_argument("--force", action="store_true", help="recompute every variant, ignoring the cache")
    return parser.parse_args(argv)


def resolve_params(args: argparse.Namespace) -> Params:
    """parameters.toml, then --set, then the dedicated flags (which win)."""
    return params_from_cli(args.params, args.overrides, {
        "data.paths": expand_data_paths(args.data) if args.data else None, "build.out": args.out,
        "build.workers": args.workers, "build.batch_size": args.batch_size, "build.executor": args.executor,
        "build.scheduler": args.scheduler})


def expand_data_paths(paths: Iterable[str]) -> list[str]:
    """Files as given; a folder stands for the data files directly inside it."""
    out: list[str] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in DATA_SUFFIXES)
            if not found:
                raise ConfigError(f"--data {item}: no {', '.join(DATA_SUFFIXES)} files in that folder")
            out.extend(found)
        else:
            out.append(str(path))
    return out


# ---------------------------------------------------------------- market data

@dataclass(frozen=True)
class SymbolInput:
    bars: Any  # signals.data.Bars
    sha256: str
    splits: dict[str, tuple[int, int]]


def load_inputs(params: Params, hashes: dict[str, str], warmup: int, purge: int
                ) -> tuple[dict[str, SymbolInput], dict[str, Any]]:
    """Every symbol's bars and split ranges, and the manifest's `split` record (calendar, purge, cut dates)."""
    from signals.data import load_bars, mirror_bars

    min_bars = warmup + 2 * purge + 3 * params.split.min_bars
    hashes = dict(hashes)
    loaded = {}
    for item in params.data.paths:
        bars = load_bars(item, params.data.format, min_bars=min_bars)
        loaded[bars.symbol] = bars
    if params.data.mirror:  # after every real symbol: same times, so the calendar cuts do not move
        for symbol in list(loaded):
            mirror = mirror_bars(loaded[symbol])
            loaded[mirror.symbol] = mirror
            hashes[mirror.symbol] = files.sha256_json([hashes[symbol], "mirror"])
    bounds, cuts = cut_splits(params, {s: b.timestamps for s, b in loaded.items()}, warmup, purge)
    inputs = {s: SymbolInput(bars=bars, sha256=hashes[s], splits=dict(bounds[s])) for s, bars in loaded.items()}
    return inputs, split_record(params.split.calendar, purge, cuts)


def cut_splits(params: Params, timestamps: dict[str, np.ndarray], warmup: int, purge: int
               ) -> tuple[dict[str, dict[str, tuple[int, int]]], dict[str, Any]]:
    """The `split.*` settings applied to these symbols' bar times: (symbol -> split -> bar range, the cuts)."""
    from signals.splits import split_symbols

    split = params.split
    try:
        cuts = split_symbols(timestamps, warmup=warmup, purge=purge, train=split.train,
                             validation=split.validation, train_end=split.train_end,
                             validation_end=split.validation_end, calendar_mode=split.calendar,
                             start=split.start, end=split.end, minimum=split.min_bars)
    except ValueError as exc:
        raise ConfigError(f"split: {exc}") from None
    return {s: dict(b) for c in cuts.values() for s, b in c.bounds.items()}, cuts


def purge_bars(params: Params) -> int:
    """Bars purged after each cut. Only a label looking `horizon` bars ahead can carry a later split into an
    earlier one; windows and warm-ups at a split's start read earlier bars, the past, which is allowed
    (features are causal)."""
    return params.signals.horizon + params.split.extra_embargo


def split_record(calendar_mode: str, purge: int, cuts: dict[str, Any]) -> dict[str, Any]:
    """The cut dates for the manifest: one set for a common calendar, one per symbol otherwise."""
    from signals.splits import SPLITS, iso

    def dates(c: Any) -> dict[str, str]:  # train_start, train_end, validation_start, ..., test_end ("end")
        return {f"{name}_{key}": iso(when[name]) for name in SPLITS for key, when in (("start", c.starts),
                                                                                      ("end", c.ends))}

    record: dict[str, Any] = {"calendar": calendar_mode, "purge": purge}
    if calendar_mode == "common":
        record["dates"] = dates(cuts["common"])
    else:
        record["dates_per_symbol"] = {s: dates(c) for s, c in cuts.items()}
    return record


# ---------------------------------------------------------------- task plan

@dataclass(frozen=True)
class Plan:
    tasks: list[Task]                # every task, in catalogue order
    variants: list[tuple[str, dict]]  # (family, params) per variant column, the same for every symbol
    chunks: list[tuple[str, tuple[dict, ...]]]


def warmup_bars(grids: dict[str, list[dict]]) -> int:
    """Bars before every variant of `grids` (family -> variants) has a value: where the splits start."""
    from signals.catalog import CATALOG

    return max(CATALOG[family].lookback(**p) for family, variants in grids.items() for p in variants)


def family_grids(params: Params) -> dict[str, list[dict]]:
    """Expanded parameter variants per enabled family, every value checked against its family's domain."""
    from signals.catalog import family_grids as checked_grids

    return checked_grids(params.signals.families, params.signals.disabled)


def plan_tasks(root: Path, variants_dir: Path, inputs: dict[str, SymbolInput], grids: dict[str, list[dict]],
               chunk: int) -> Plan:
    variant_code = variant_code_hash()
    chunks = [(family, tuple(variants[i:i + chunk]))
              for family, variants in grids.items() for i in range(0, len(variants), chunk)]
    tasks = [Task(str(root), str(variants_dir), symbol, family,
                  task_key(info.sha256, family, chunk_params, variant_code), chunk_params)
             for symbol, info in inputs.items() for family, chunk_params in chunks]
    variants = [(family, p) for family, chunk_params in chunks for p in chunk_params]
    return Plan(tasks=tasks, variants=variants, chunks=chunks)


# ---------------------------------------------------------------- scoring and selection

def variant_matrix(variants_dir: Path, plan: Plan, symbol: str) -> np.ndarray:
    """All of a symbol's variants side by side, in plan order (float32, n_bars x n_variants)."""
    parts = [store.read_task_output(variants_dir, t.symbol, t.family, t.task_key)
             for t in plan.tasks if t.symbol == symbol]
    return np.concatenate(parts, axis=1)


def score_symbols(matrices: dict[str, np.ndarray], inputs: dict[str, SymbolInput], params: Params
                  ) -> dict[str, dict[str, np.ndarray]]:
    from signals.score import score_variants

    scores = {}
    for symbol, matrix in matrices.items():
        start, stop = inputs[symbol].splits["train"]
        bars = inputs[symbol].bars
        scores[symbol] = score_variants(
            matrix, bars.close, start=start, stop=stop, horizon=params.signals.horizon,
            cost_bps=params.costs.total_bps, periods_per_year=store.periods_per_year(bars.timestamps),
            backend=params.signals.score_backend)
    return scores


def mean_scores(scores: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """A variant is judged on all symbols at once: one feature set serves every symbol's environment."""
    names = next(iter(scores.values())).keys()
    return {name: np.mean([s[name] for s in scores.values()], axis=0) for name in names}


def select(matrices: dict[str, np.ndarray], inputs: dict[str, SymbolInput], plan: Plan,
           scores: dict[str, np.ndarray], params: Params) -> list[int]:
    """Selection sees only training rows: each symbol's train split, stacked."""
    from signals.score import select_variants

    train_rows = np.concatenate([m[slice(*inputs[s].splits["train"])] for s, m in matrices.items()], axis=0)
    families = [family for family, _ in plan.variants]
    return select_variants(train_rows, scores, families, start=0, stop=len(train_rows),
                           keep_per_family=params.signals.keep_per_family,
                           max_correlation=params.signals.max_correlation,
                           max_features=params.signals.max_features)


# ---------------------------------------------------------------- writing the store

def write_store(root: Path, params: Params, cache_key: str, inputs: dict[str, SymbolInput], plan: Plan,
                matrices: dict[str, np.ndarray], per_symbol: dict[str, dict[str, np.ndarray]],
                scores: dict[str, np.ndarray], kept: list[int], extra: dict[str, Any]) -> dict[str, Any]:
    from signals.catalog import FEATURE_BOUND, variant_label
    from signals.data import MIRROR_SUFFIX

    labels = [variant_label(f, p) for f, p in plan.variants]
    for symbol, matrix in matrices.items():
        features = np.nan_to_num(np.asarray(matrix[:, kept], dtype=np.float32), nan=0.0)
        store.write_symbol_arrays(root, symbol, features, inputs[symbol].bars.close, inputs[symbol].bars.timestamps)
    rows = _score_rows(plan, labels, per_symbol, scores, kept)
    files.save_text(root / "variant_scores.csv", _csv(rows))
    files.save_text(root / "top_signals.csv", _csv([rows[i] for i in kept]))
    manifest = {
        "cache_key": cache_key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "variants_tried": len(plan.variants),
        "variants_selected": len(kept),
        "families": _family_counts(plan, kept),
        "feature_bound": FEATURE_BOUND,
        "symbols": {s: {"file": str(info.bars.path), "sha256": info.sha256, "n_bars": len(info.bars),
                        "splits": {k: list(v) for k, v in info.splits.items()},
                        "repairs": dict(info.bars.repairs),
                        "periods_per_year": store.periods_per_year(info.bars.timestamps),
                        **({"mirror_of": s.removesuffix(MIRROR_SUFFIX)} if s.endswith(MIRROR_SUFFIX) else {})}
                    for s, info in inputs.items()},
        "features": [{"name": labels[i], "family": plan.variants[i][0], "params": plan.variants[i][1],
                      "scores": rows[i]["scores"]} for i in kept],
        **extra,
    }
    store.write_manifest(root, manifest)
    return manifest


def _score_rows(plan: Plan, labels: list[str], per_symbol: dict[str, dict[str, np.ndarray]],
                scores: dict[str, np.ndarray], kept: list[int]) -> list[dict]:
    kept_set = set(kept)
    rows = []
    for i, (family, p) in enumerate(plan.variants):
        row_scores = {name: _finite(values[i]) for name, values in scores.items()}
        for symbol, values in per_symbol.items():
            row_scores.update({f"{name}.{symbol}": _finite(v[i]) for name, v in values.items()})
        rows.append({"name": labels[i], "family": family, "params": p, "selected": i in kept_set,
                     "scores": row_scores})
    return rows


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    score_names = list(rows[0]["scores"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "family", "params", "selected", *score_names])
    for row in rows:
        writer.writerow([row["name"], row["family"], json.dumps(row["params"]), row["selected"],
                         *("" if row["scores"][n] is None else f"{row['scores'][n]:.6g}" for n in score_names)])
    return buffer.getvalue()


def _family_counts(plan: Plan, kept: list[int]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for family, _ in plan.variants:
        counts.setdefault(family, {"tried": 0, "kept": 0})["tried"] += 1
    for i in kept:
        counts[plan.variants[i][0]]["kept"] += 1
    return counts


# ---------------------------------------------------------------- the build

def build(params: Params, *, force: bool = False, argv: Sequence[str] = (), log: Any = print) -> store.Store:
    """Bring the store at `params.build.out` up to date with the data, code and parameters; return it opened."""
    started = time.perf_counter()
    root = Path(params.build.out)
    variants_dir = Path(params.build.variants_dir or root / "variants")
    hashes = data_hashes(params)
    cache_key = store_cache_key(params, hashes)
    manifest = store.read_manifest(root)
    if not force and manifest is not None and manifest.get("cache_key") == cache_key:
        opened = store.open_store(root, expected_key=cache_key)
        log(f"signal store {root} is up to date ({manifest['variants_selected']} features from "
            f"{manifest['variants_tried']} variants); nothing to do [{time.perf_counter() - started:.2f} s]")
        return opened

    # Compile every kernel once, here, so workers load numba's cache instead of all compiling at once.
    from signals.catalog import warm_up

    grids = family_grids(params)  # a bad grid value fails here, before any compiling or loading
    warm_up()
    warmup = warmup_bars(grids)
    purge = purge_bars(params)
    inputs, split_info = load_inputs(params, hashes, warmup, purge)

    cores = available_cores()
    workers = params.build.workers or cores
    build_cfg = params.build
    if build_cfg.executor == "process":
        where = f"workers: {workers} processes, start method {build_cfg.start_method}"
    elif build_cfg.scheduler:
        where = f"workers: the Dask cluster's at {build_cfg.scheduler}"
    else:
        where = f"workers: a Dask LocalCluster of {workers} processes on 127.0.0.1"
    log(f"cores available: {cores}; {where}, 1 thread each (OMP/MKL/OpenBLAS/numba capped); "
        f"batches of {build_cfg.batch_size} tasks")
    log_splits(inputs, split_info, log)

    # From here on the store is being rewritten: without a manifest no reader mistakes it for complete.
    store.remove_manifest(root)
    removed = files.remove_temporaries(root) + files.remove_temporaries(variants_dir)
    if removed:
        log(f"removed {removed} temporary file(s) left by an interrupted build")
    for symbol, info in inputs.items():
        b = info.bars
        store.write_ohlcv(root, symbol, np.vstack([b.open, b.high, b.low, b.close, b.volume]))
    plan = plan_tasks(root, variants_dir, inputs, grids, params.signals.variants_per_task)
    todo = plan.tasks if force else [
        t for t in plan.tasks if not store.task_done(variants_dir, t.symbol, t.family, t.task_key)]
    log(f"{len(plan.variants)} variants per symbol in {len(plan.chunks)} chunks x {len(inputs)} symbol(s) = "
        f"{len(plan.tasks)} tasks; {len(todo)} to compute, {len(plan.tasks) - len(todo)} already in the store")

    with TreeMemory() as memory:
        pool_started = time.perf_counter()
        with tqdm(total=len(todo), desc="variants", unit="task", file=sys.stderr,
                  disable=not todo) as progress:
            if todo:
                try:
                    run_pool(todo, params.build, workers, root, variants_dir, progress, log)
                except PoolFailed as exc:
                    raise BuildError(str(exc)) from None
        pool_seconds = time.perf_counter() - pool_started
        matrices = {symbol: variant_matrix(variants_dir, plan, symbol) for symbol in inputs}
        per_symbol = score_symbols(matrices, inputs, params)
        scores = mean_scores(per_symbol)
        kept = select(matrices, inputs, plan, scores, params)
        if not kept:
            raise BuildError("no variant has a finite score on the training split; check the data and split.*")
        write_run_record(root, params, [sys.executable, "-m", "signals.build", *argv],
                         {"cwd": str(Path.cwd()), "data_sha256": hashes, "cache_key": cache_key},
                         name="build_info.json", started=False)  # what this build used, beside what it made
        computed = sum(len(t.params) for t in todo)
        manifest = write_store(root, params, cache_key, inputs, plan, matrices, per_symbol, scores, kept, {
            "max_lookback": warmup, "horizon": params.signals.horizon, "split": split_info,
            "build": {"executor": params.build.executor, "workers": workers,
                      "seconds": round(time.perf_counter() - started, 3), "variants_computed": computed}})
    report(manifest, computed, pool_seconds, time.perf_counter() - started, workers, memory.peak_bytes, log)
    return store.open_store(root, expected_key=cache_key)


def log_splits(inputs: dict[str, SymbolInput], split_info: dict[str, Any], log: Any) -> None:
    """Each symbol's bars, repairs and split ranges with their first and last bar times."""
    import pandas as pd

    dates = split_info.get("dates")
    where = (f"common calendar, cut at {dates['train_end']} and {dates['validation_end']}" if dates
             else "each symbol on its own calendar (split.calendar = \"per_symbol\")")
    log(f"splits: {where}; purge: {split_info['purge']} bar(s) after each cut")
    for symbol, info in inputs.items():
        repairs = ", ".join(f"{k}: {v}" for k, v in info.bars.repairs.items() if v) or "none needed"
        ts = info.bars.timestamps
        when = "%Y-%m-%d %H:%M"
        spans = ", ".join(f"{k} [{a}, {b}) {pd.Timestamp(ts[a]):{when}}..{pd.Timestamp(ts[b - 1]):{when}}"
                          for k, (a, b) in info.splits.items())
        log(f"  {symbol}: {len(info.bars)} bars from {info.bars.path} (repairs: {repairs}); {spans}")


def report(manifest: dict, computed: int, pool_seconds: float, seconds: float, workers: int, peak_bytes: int,
           log: Any, top: int = 10) -> None:
    rate = computed / pool_seconds if pool_seconds > 0 and computed else 0.0
    log(f"variants tried: {manifest['variants_tried']} per symbol x {len(manifest['symbols'])} symbol(s); "
        f"computed now: {computed}; kept: {manifest['variants_selected']}")
    log(f"time: {seconds:.1f} s (pool {pool_seconds:.1f} s, {rate:,.0f} variants/s with {workers} workers); "
        f"peak memory of the process tree: {peak_bytes / 2**20:,.0f} MiB")
    log("top signals (training split only; scores averaged over symbols):")
    log(f"  {'signal':<44} {'rank_ic':>8} {'sharpe':>8} {'turnover':>8}")
    ranked = sorted(manifest["features"], key=lambda f: -abs(f["scores"].get("rank_ic") or 0.0))
    for feature in ranked[:top]:
        s = feature["scores"]
        log(f"  {feature['name']:<44} {_fmt(s.get('rank_ic'))} {_fmt(s.get('sharpe'))} {_fmt(s.get('turnover'))}")
    log("the same as CSV: top_signals.csv (kept) and variant_scores.csv (all) in the store")


def _fmt(value: float | None) -> str:
    return f"{value:8.4f}" if value is not None else f"{'nan':>8}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        params = resolve_params(args)
        build(params, force=args.force, argv=argv)
    except (ConfigError, BuildError, store.StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # signals.data.DataError names the file and row
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished tasks are kept in the store; rerun to compute only the missing ones",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
