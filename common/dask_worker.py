"""What runs inside a Dask worker for `common.executors`: the start-up initializer and the shared-folder probe.

Imports `distributed` at the top (the plugin must subclass its WorkerPlugin), so only a Dask pool imports
this module.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin


class RunAtStart(WorkerPlugin):
    """Runs `initializer` in each worker process: in those running when it is registered, and in every worker
    that starts later (one its nanny restarts after a crash included), as a process pool's initializer does."""

    def __init__(self, initializer: Callable[[], None]) -> None:
        self.initializer = initializer

    def setup(self, worker: Any) -> None:
        self.initializer()


def probe_folder(token_path: str, token: str) -> str | None:
    """On a worker: None when it reads `token` at `token_path` and can write and remove a file beside it;
    otherwise the reason, naming this worker's host and pid."""
    path = Path(token_path)
    me = f"(host {socket.gethostname()}, pid {os.getpid()})"
    try:
        seen = path.read_text()
    except OSError as exc:
        return f"{me} cannot read {path} ({exc.strerror or exc}): it sees another filesystem, or none, there"
    if seen != token:
        return f"{me} reads another {path.name} there: it sees another filesystem at that path"
    mine = path.with_name(f"{path.name}.{socket.gethostname()}-{os.getpid()}")
    try:
        mine.write_text(token)
        mine.unlink()
    except OSError as exc:
        return f"{me} cannot write in {path.parent} ({exc.strerror or exc})"
    return None
