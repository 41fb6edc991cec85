"""A training run's directory and what its run record says of the store (common.provenance writes it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from settings import Params
from signals.store import Store


def new_run_dir(parent: str | Path, seed: int) -> Path:
    """runs/<date>-<time>-seed<seed>[-n], never an existing one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{stamp}-seed{seed}"
    path, n = base, 1
    while path.exists():
        path, n = Path(f"{base}-{n}"), n + 1
    path.mkdir(parents=True)
    return path


def store_fields(store: Store | None) -> dict[str, Any]:
    """The store a run read: its path, manifest hash and cache key (None each without one)."""
    return {
        "store": str(store.root) if store is not None else None,
        "store_manifest_sha256": store.manifest_hash if store is not None else None,
        "store_cache_key": store.manifest.get("cache_key") if store is not None else None,
    }


def training_fields(params: Params, store: Store) -> dict[str, Any]:
    """run.json's fields of a training run (train and each walk-forward fold): seed, store, data hashes."""
    return {"seed": params.train.seed, **store_fields(store),
            "data_sha256": {s: info.get("sha256") for s, info in store.manifest["symbols"].items()}}
