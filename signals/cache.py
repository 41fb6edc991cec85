"""Cache keys of the signal store and of its pool tasks, and the code hash inside them.

A store is reused only when its manifest's ``cache_key`` equals :func:`store_cache_key` of the
current data, code and parameters; a task's raw variants are reused when their file name, the
:func:`task_key`, matches. The code hash covers every source file of the packages the outputs
depend on, found by walking the package directories rather than listed by name, so moving code
between files (splitting ``kernels`` or ``catalog``) or adding a module cannot leave a stale store.
Its cost: any edit under ``signals/`` or ``settings/`` (a comment included) invalidates the stores
and recomputes the variants on the next build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from common import files
from settings import ConfigError, Params, to_dict
from signals import store

__all__ = ["CODE_ROOTS", "VARIANT_ROOTS", "code_hash", "data_hashes", "source_files", "store_cache_key",
           "task_key", "variant_code_hash"]

_PROJECT = Path(__file__).resolve().parents[1]
# What a store depends on: the signal pipeline, and the config tree that parses, checks and
# renders (params.toml in the store) its parameters.
CODE_ROOTS: tuple[Path, ...] = (_PROJECT / "signals", _PROJECT / "settings")
# What a task's raw variants depend on: the kernels and families, and whatever of the pipeline
# the worker runs (the whole package, so no file list can fall behind the imports).
VARIANT_ROOTS: tuple[Path, ...] = (_PROJECT / "signals",)


def source_files(roots: Sequence[Path]) -> list[Path]:
    """Every ``.py`` file under ``roots`` (recursively, ``__pycache__`` excluded), in a stable order."""
    files = {path for root in roots for path in Path(root).rglob("*.py") if "__pycache__" not in path.parts}
    return sorted(files)


def code_hash(roots: Sequence[Path] | None = None) -> str:
    """SHA-256 of every source file under ``roots`` (default :data:`CODE_ROOTS`): paths relative to
    each root's parent, and their bytes."""
    roots = CODE_ROOTS if roots is None else roots
    contents = {}
    for root in roots:
        base = Path(root).parent
        for path in source_files([root]):
            contents[path.relative_to(base).as_posix()] = files.sha256_file(path)
    return files.sha256_json(contents)


def variant_code_hash() -> str:
    """The code hash in every :func:`task_key` (the packages under :data:`VARIANT_ROOTS`)."""
    return code_hash(VARIANT_ROOTS)


def data_hashes(params: Params) -> dict[str, str]:
    """SHA-256 of each market data file, by symbol (the file stem)."""
    hashes = {}
    for item in params.data.paths:
        path = Path(item)
        if not path.is_file():
            raise ConfigError(f"data.paths: {path} does not exist (working directory {Path.cwd()})")
        hashes[path.stem] = files.sha256_file(path)
    if len(hashes) != len(params.data.paths):
        raise ConfigError("data.paths: two files have the same name; symbols are named after the file stem")
    return hashes


def store_cache_key(params: Params, hashes: dict[str, str] | None = None) -> str:
    """Covers the data, the code of :data:`CODE_ROOTS`, and every parameter that shapes the store."""
    return files.sha256_json({
        "data": hashes if hashes is not None else data_hashes(params),
        "code": code_hash(),
        "store_format": store.STORE_FORMAT,
        "params": {s: to_dict(getattr(params, s)) for s in ("data", "split", "costs", "signals")},
    })


def task_key(data_sha: str, family: str, params_chunk: Sequence[dict], variant_code: str) -> str:
    """A task's output depends only on its symbol's bars, its family's code and its parameters."""
    return files.sha256_json([data_sha, family, list(params_chunk), variant_code])[:24]
