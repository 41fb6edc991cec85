"""A training run's directory: its name, its run record's store fields (common.provenance writes the record),
and its selection record (trader.selection writes it; trader.evaluate reads it)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from settings import Params
from signals.store import Store

SELECTION_FILE = "best_model.json"


def new_run_dir(parent: str | Path, seed: int) -> Path:
    """runs/<date>-<time>-seed<seed>[-n], never an existing one."""
    return _new_dir(Path(parent) / f"{time.strftime('%Y%m%d-%H%M%S')}-seed{seed}")


def new_parent_dir(parent: str | Path, prefix: str) -> Path:
    """<parent>/<prefix>-<date>-<time>[-n], never an existing one: the directory of a group of runs."""
    return _new_dir(Path(parent) / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}")


def _new_dir(base: Path) -> Path:
    """`base`, or `base-1`, `base-2`, ... : the first that does not exist, made."""
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


def read_selection(run_dir: Path) -> dict[str, Any] | None:
    """The run's selection record, or None for a run without one (trained before do-no-harm existed)."""
    path = Path(run_dir) / SELECTION_FILE
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if "selected" in record else None
