"""Atomic writes and hashing: every file a command writes, and every hash it records, goes through here.

Every write goes to a temporary file in the same directory and is renamed into place, so a crash
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

TMP_PREFIX = ".tmp-"


# ---------------------------------------------------------------- atomic writes

@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary name carries the writer's pid, so a cleanup only removes files of dead writers.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-{path.name}.", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def save_array(path: Path, array: np.ndarray) -> None:
    """np.save, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)
            fh.flush()
            os.fsync(fh.fileno())


def save_text(path: Path, text: str) -> None:
    """Write text, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_json(path: Path, obj: Any) -> None:
    save_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def replace_durably(path: Path, data: bytes) -> None:
    """Replace `path` by `data`: written and fsynced to `<path>.tmp` beside it, renamed over it, and the
    rename itself fsynced (the directory), so the new contents survive a crash of the machine too."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def remove_temporaries(root: Path) -> int:
    """Delete temporary files that killed processes left behind (not those of live writers); returns how many."""
    if not root.exists():
        return 0
    leftovers = [p for p in root.rglob(TMP_PREFIX + "*") if not _writer_alive(p.name)]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


def _writer_alive(name: str) -> bool:
    pid = name[len(TMP_PREFIX):].split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


# ---------------------------------------------------------------- hashing

def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
