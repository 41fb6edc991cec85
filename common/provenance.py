"""What a run used, written beside its outputs: the one run-record writer of build, train, tune and walk-forward.

Each command's record is its resolved parameters (`params.toml`, loadable with `--params`) and a JSON file
(`run.json`; the build's is `build_info.json`) holding the command line, the command's own fields (seed,
data and store hashes, storage ...), the package versions and the start time. Fields known only at the
end (wall time, peak memory, results) are added with :func:`update_run_record`.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

from common.files import save_json, save_text
from settings import Params, to_toml

RUN_RECORD = "run.json"


def package_versions() -> dict[str, str]:
    """Python's version and those of the packages that shape results."""
    versions = {"python": sys.version.split()[0]}
    for name in ("numpy", "pandas", "numba", "jax", "jaxlib", "torch", "stable-baselines3", "gymnasium", "optuna"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def now() -> str:
    """The local time as run records write it (ISO 8601 with the UTC offset)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_run_record(directory: Path, params: Params, command: Sequence[str], fields: Mapping[str, Any], *,
                     name: str = RUN_RECORD, started: bool = True, extra: Mapping[str, Any] | None = None) -> None:
    """params.toml (resolved) and `name`: the command, `fields`, versions, the start time, then `extra`.

    Args:
        directory: the run's directory (the build's: the store).
        fields: what this command used (seed, data and store hashes, storage, ...), in the order to write.
        started: write the start time (the build's record has none).
        extra: fields written after the start time (a walk-forward fold's number).
    """
    save_text(directory / "params.toml", to_toml(params))
    save_json(directory / name, {
        "command": list(command),
        **fields,
        "versions": package_versions(),
        **({"started": now()} if started else {}),
        **(extra or {}),
    })


def update_run_record(directory: Path, values: Mapping[str, Any], name: str = RUN_RECORD) -> None:
    """Add (or overwrite) fields of an existing run record; a missing one is started from `values`."""
    path = directory / name
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(values)
    save_json(path, record)
