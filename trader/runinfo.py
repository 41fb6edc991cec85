"""A training run's directory: its name, its run record's store fields (common.provenance writes the record),
its ensemble members' folders and model files, and its selection record (trader.selection writes it;
trader.evaluate and trader.agent read it).

An ensemble (`train.ensemble` members, trader.train) keeps member 0 in the run directory itself, as a run of
one member always did, and member k >= 1 under `members/k/`, each with its own checkpoints, best model and
final model. The run's policy averages its members' action probabilities (trader.policy.combine_outputs).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from settings import Params
from signals.store import Store

SELECTION_FILE = "best_model.json"
MEMBERS_DIR = "members"
MODEL_FILES = ("best_model.zip", "model.zip")
"""A member's policy: its best validation model when there is one, else its final model."""
BEST_SCORE_FILE = SELECTION_FILE
"""Beside a member's best model, its validation score and step (trader.callbacks.ValidationCallback), which
a resumed member must beat; in the run's own folder the selection adds its record to the same file."""


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


def member_dir(run_dir: Path, index: int) -> Path:
    """Where ensemble member `index` trains: the run directory for member 0, members/<index>/ for the rest."""
    return Path(run_dir) if index == 0 else Path(run_dir) / MEMBERS_DIR / str(index)


def member_seed(seed: int, index: int) -> int:
    """Member `index`'s seed: the run's own for member 0 (a run of one member is what it always was), and for
    the rest one drawn from (seed, index), so that runs of neighbouring seeds share no member."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] % 2**31)


def member_model_files(run_dir: Path) -> list[str]:
    """Each member's policy file, relative to the run directory, member 0 first; members without one are
    skipped (a run interrupted before a later member saved anything)."""
    run_dir = Path(run_dir)
    folders = [run_dir] + sorted((p for p in (run_dir / MEMBERS_DIR).glob("*") if p.name.isdigit()),
                                 key=lambda p: int(p.name))
    files = []
    for folder in folders:
        found = next((folder / name for name in MODEL_FILES if (folder / name).exists()), None)
        if found is not None:
            files.append(found.relative_to(run_dir).as_posix())
    return files


def policy_files(run_dir: Path, selection: dict[str, Any] | None) -> list[str]:
    """The model files of the run's policy, member 0 first: those its selection record names (`members`, or
    `candidate_members` where it selected flat: the policy shown beside flat), else each member's best or
    final model (`member_model_files`), for a run without a record or one written before ensembles."""
    names: list[str] | None = None
    if selection is not None:
        names = selection.get("members") if selection.get("selected") == "model" else \
            selection.get("candidate_members")
        if not names and selection.get("selected") == "model" and selection.get("model"):
            names = [selection["model"]]
    return list(names) if names else member_model_files(run_dir)


def member_records(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """run.json's `ensemble`: each member's seed, best validation score and its step, and steps trained."""
    return [{k: m[k] for k in ("seed", "best_validation_sharpe", "best_step", "num_timesteps")} for m in members]


def describe_models(files: list[str]) -> str:
    """How reports name a policy of these model files."""
    return files[0] if len(files) == 1 else f"ensemble of {len(files)} ({', '.join(files)})"
