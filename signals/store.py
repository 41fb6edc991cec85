"""The signal store: the only file I/O of `signals/`.

Layout under the store root (`build.out`, default data/signals/):

    manifest.json                 written last; its presence with a matching cache key means "complete"
    <SYMBOL>/features.npy         float32 (n_bars, n_features): the selected features, warm-up rows = 0
    <SYMBOL>/close.npy            float64 (n_bars,): close prices the environment trades on
    <SYMBOL>/timestamps.npy       int64 (n_bars,): bar times, ns since the epoch
    <SYMBOL>/ohlcv.npy            float64 (5, n_bars): inputs the pool workers memory-map
    variants/<SYMBOL>/<family>/<task_key>.npy    float32 (n_bars, n_chunk): one task's raw variants
    variants/<SYMBOL>/<family>/<task_key>.json   that task's parameters (written after the array)
                                  (variants/ may live elsewhere: build.variants_dir, shared by stores)
    variant_scores.csv, top_signals.csv          every variant's scores; the kept ones, best first

Every write goes through common.files: to a temporary file in the same directory, renamed into place,
so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from common.files import save_array, save_json, sha256_file

STORE_FORMAT = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "validation", "test")


class StoreError(RuntimeError):
    """A missing, stale or damaged store; the message says what to run."""


def remove_manifest(root: Path) -> None:
    """Mark the store incomplete before rewriting it (the manifest is written last, again)."""
    (Path(root) / MANIFEST).unlink(missing_ok=True)


# ---------------------------------------------------------------- task outputs (written by pool workers)

def variant_paths(variants_dir: Path, symbol: str, family: str, task_key: str) -> tuple[Path, Path]:
    """(array path, metadata path) of one task's output."""
    folder = Path(variants_dir) / symbol / family
    return folder / f"{task_key}.npy", folder / f"{task_key}.json"


def task_done(variants_dir: Path, symbol: str, family: str, task_key: str) -> bool:
    """A task is done when its metadata exists: it is written only after the array is in place."""
    array_path, meta_path = variant_paths(variants_dir, symbol, family, task_key)
    return meta_path.exists() and array_path.exists()


def write_task_output(variants_dir: Path, symbol: str, family: str, task_key: str, values: np.ndarray,
                      meta: Mapping[str, Any]) -> None:
    array_path, meta_path = variant_paths(variants_dir, symbol, family, task_key)
    save_array(array_path, np.ascontiguousarray(values, dtype=np.float32))
    save_json(meta_path, dict(meta))


def read_task_output(variants_dir: Path, symbol: str, family: str, task_key: str) -> np.ndarray:
    array_path, _ = variant_paths(variants_dir, symbol, family, task_key)
    return np.load(array_path, mmap_mode="r")


# ---------------------------------------------------------------- the finished store

def periods_per_year(timestamps: np.ndarray) -> float:
    """Bars per year, from the bar times actually observed (daily stocks ~252, hourly FX ~6,000)."""
    years = float(timestamps[-1] - timestamps[0]) / (365.25 * 24 * 3600 * 1e9)
    return (len(timestamps) - 1) / years if years > 0 else 252.0


@dataclass(frozen=True)
class SymbolData:
    """One symbol's arrays, memory-mapped read-only: every process that opens them shares the pages."""

    symbol: str
    features: np.ndarray
    close: np.ndarray
    timestamps: np.ndarray
    splits: Mapping[str, tuple[int, int]]
    feature_names: tuple[str, ...]

    def split(self, name: str) -> tuple[int, int]:
        if name not in self.splits:
            raise StoreError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return tuple(self.splits[name])  # type: ignore[return-value]

    @property
    def periods_per_year(self) -> float:
        return periods_per_year(self.timestamps)


@dataclass(frozen=True)
class Store:
    root: Path
    manifest: Mapping[str, Any]

    @property
    def symbols(self) -> tuple[str, ...]:
        """The market's symbols: what validation, test, reports and agents use (mirror images excluded)."""
        return tuple(s for s, info in self.manifest["symbols"].items() if "mirror_of" not in info)

    @property
    def training_symbols(self) -> tuple[str, ...]:
        """Every symbol the training split offers: the market's, then their mirror images (`data.mirror`)."""
        return tuple(self.manifest["symbols"])

    def mirror_image(self, symbol: str) -> str | None:
        """The name of `symbol`'s mirror image in this store (`data.mirror`), or None if it has none."""
        for name, info in self.manifest["symbols"].items():
            if info.get("mirror_of") == symbol:
                return str(name)
        return None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f["name"] for f in self.manifest["features"])

    @property
    def n_features(self) -> int:
        return len(self.manifest["features"])

    @property
    def manifest_hash(self) -> str:
        return sha256_file(self.root / MANIFEST)

    def symbol(self, name: str) -> SymbolData:
        if name not in self.manifest["symbols"]:
            raise StoreError(f"symbol {name!r} is not in the store {self.root} (it has {', '.join(self.symbols)})")
        folder = self.root / name
        info = self.manifest["symbols"][name]
        return SymbolData(
            symbol=name,
            features=np.load(folder / "features.npy", mmap_mode="r"),
            close=np.load(folder / "close.npy", mmap_mode="r"),
            timestamps=np.load(folder / "timestamps.npy", mmap_mode="r"),
            splits={k: tuple(v) for k, v in info["splits"].items()},
            feature_names=self.feature_names,
        )


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest, or None when there is none (an unfinished or missing store)."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path} is damaged ({exc}); rebuild with `python -m signals.build --force`") from None


def open_store(root: str | Path, expected_key: str | None = None) -> Store:
    """Open a finished store; with `expected_key`, a store built from other data or parameters is an error."""
    root = Path(root)
    manifest = read_manifest(root)
    if manifest is None:
        raise StoreError(f"no signal store at {root} (no {MANIFEST}); run `python -m signals.build --out {root}`")
    if manifest.get("format") != STORE_FORMAT:
        raise StoreError(f"{root} was written by another store format; rebuild with `python -m signals.build --force`")
    if expected_key is not None and manifest.get("cache_key") != expected_key:
        raise StoreError(f"the signal store at {root} is stale: it was built from other data, code or parameters; "
                         f"run `python -m signals.build` (or `--out {root}`) to rebuild it")
    for symbol in manifest["symbols"]:
        for name in ("features.npy", "close.npy", "timestamps.npy"):
            if not (root / symbol / name).exists():
                raise StoreError(f"{root / symbol / name} is missing; rebuild with `python -m signals.build --force`")
    return Store(root=root, manifest=manifest)


def write_symbol_arrays(root: Path, symbol: str, features: np.ndarray, close: np.ndarray,
                        timestamps: np.ndarray) -> None:
    """The per-symbol arrays the environment reads (written before the manifest)."""
    folder = root / symbol
    save_array(folder / "features.npy", np.ascontiguousarray(features, dtype=np.float32))
    save_array(folder / "close.npy", np.ascontiguousarray(close, dtype=np.float64))
    save_array(folder / "timestamps.npy", np.ascontiguousarray(timestamps, dtype=np.int64))


def write_ohlcv(root: Path, symbol: str, ohlcv: np.ndarray) -> Path:
    """The (5, n) float64 input the workers memory-map instead of receiving it through a pipe."""
    path = root / symbol / "ohlcv.npy"
    save_array(path, np.ascontiguousarray(ohlcv, dtype=np.float64))
    return path


def write_manifest(root: Path, manifest: Mapping[str, Any]) -> None:
    """Last write of a build: until it lands, readers see no (or the previous) complete store."""
    save_json(root / MANIFEST, {"format": STORE_FORMAT, **manifest})


def write_synthetic_store(root: str | Path, symbols: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                          splits: Mapping[str, Mapping[str, tuple[int, int]]], feature_names: list[str],
                          cache_key: str = "synthetic", mirror_of: Mapping[str, str] | None = None) -> Store:
    """Write a store from ready arrays {symbol: (features, close, timestamps)}; for tests and benchmarks.

    mirror_of: {symbol: the symbol it is the mirror image of}, as signals.build marks them with data.mirror.
    """
    root = Path(root)
    mirror_of = dict(mirror_of or {})
    for symbol, (features, close, timestamps) in symbols.items():
        write_symbol_arrays(root, symbol, features, close, timestamps)
    write_manifest(root, {
        "cache_key": cache_key,
        "symbols": {s: {"splits": {k: list(v) for k, v in splits[s].items()}, "n_bars": len(symbols[s][1]),
                        **({"mirror_of": mirror_of[s]} if s in mirror_of else {})}
                    for s in symbols},
        "features": [{"name": n, "family": n.split("(")[0], "params": {}, "scores": {}} for n in feature_names],
    })
    return open_store(root)
