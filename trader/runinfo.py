"""What every run writes beside its outputs: parameters, command, hashes, versions, seed, cost."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from settings import Params, to_toml
from common.provenance import package_versions
from signals.store import Store
from common.files import save_json, save_text


def new_run_dir(parent: str | Path, seed: int) -> Path:
    """runs/<date>-<time>-seed<seed>[-n], never an existing one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{stamp}-seed{seed}"
    path, n = base, 1
    while path.exists():
        path, n = Path(f"{base}-{n}"), n + 1
    path.mkdir(parents=True)
    return path


def write_run_record(run_dir: Path, params: Params, command: Sequence[str], store: Store,
                     extra: Mapping[str, Any] | None = None) -> None:
    """params.toml (resolved, loadable with --params) and run.json (command, hashes, versions, seed)."""
    save_text(run_dir / "params.toml", to_toml(params))
    save_json(run_dir / "run.json", {
        "command": list(command),
        "seed": params.train.seed,
        "store": str(store.root),
        "store_manifest_sha256": store.manifest_hash,
        "store_cache_key": store.manifest.get("cache_key"),
        "data_sha256": {s: info.get("sha256") for s, info in store.manifest["symbols"].items()},
        "versions": package_versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    })


def update_run_record(run_dir: Path, values: Mapping[str, Any]) -> None:
    path = run_dir / "run.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(values)
    save_json(path, record)
