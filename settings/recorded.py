"""A run's recorded params.toml, written by an earlier version: today's keys, with the behaviour the run had.

A run records every key it used (its resolved params.toml). So in a recorded file a key the schema no
longer has was removed since the run, and a key the schema has but the file lacks was added since; both
are read here as what the run did, before the tree is validated. Only recorded files (`--resume RUN_DIR`,
`python -m trader.evaluate RUN_DIR`) come through here; in a user's parameters file an unknown key stays
an error, and a missing one takes today's default.
"""

from __future__ import annotations

from typing import Any, Callable

ADDED_SINCE: dict[tuple[str, str], Any] = {
    ("data", "mirror"): False,         # a run without it trained on the real symbols only
    ("train", "drift_test"): "none",   # ... and chose between its checkpoint and flat on validation alone
    ("train", "ensemble"): 1,          # ... and trained one agent
}
"""Keys added since runs were first recorded, and the value that does what a run from before did."""


def _beyond_drift(train: dict[str, Any], value: Any) -> str:
    train.setdefault("drift_test", "drift" if value is True else "none")
    return f"train.beyond_drift = {value!r} read as train.drift_test = {train['drift_test']!r}"


REMOVED_SINCE: dict[tuple[str, str], Callable[[dict[str, Any], Any], str]] = {
    ("train", "beyond_drift"): _beyond_drift,  # replaced by train.drift_test ("drift" was beyond_drift = true)
}
"""Keys removed since: each rewrites its section into today's keys and says how it read the old one."""


def upgrade_recorded(raw: dict[str, Any]) -> list[str]:
    """Rewrite a recorded run's raw parameter tree in place into today's keys; what was read how, one line each."""
    notes = []
    for (section, key), rewrite in REMOVED_SINCE.items():
        table = raw.get(section)
        if isinstance(table, dict) and key in table:
            notes.append(rewrite(table, table.pop(key)))
    for (section, key), value in ADDED_SINCE.items():
        table = raw.get(section)
        if isinstance(table, dict) and key not in table:
            table[key] = value
            notes.append(f"{section}.{key} is not in the record (added since): {value!r}, as the run had")
    return notes
