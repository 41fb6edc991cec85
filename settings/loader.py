"""Load parameters.toml into the frozen tree, apply `--set section.key=value` overrides, write it back.

Unknown keys and bad values fail at start with the key's full path and, for a typo, the closest
known key (difflib). The TOML writer covers exactly the value types the tree uses.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

from settings.recorded import upgrade_recorded
from settings.schema import FieldError, Params

DEFAULT_PARAMS_FILE = Path("parameters.toml")


class ConfigError(ValueError):
    """A bad parameters file or override; the message names the file and the key path."""


# ---------------------------------------------------------------- loading

def load_params(path: str | Path | None = None, overrides: Iterable[str] = (), recorded: bool = False) -> Params:
    """Read `path` (default: ./parameters.toml when present, else built-in defaults), apply overrides.

    `recorded`: `path` is a run's own params.toml, which an earlier version may have written; its removed
    and missing keys are read as what the run did (settings.recorded), and a note on stderr says how.
    """
    raw: dict[str, Any] = {}
    source = "built-in defaults"
    if path is None and DEFAULT_PARAMS_FILE.exists():
        path = DEFAULT_PARAMS_FILE
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.exists():
            raise ConfigError(f"parameters file {path} does not exist")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        if recorded:
            for note in upgrade_recorded(raw):
                print(f"note: {path}: {note}", file=sys.stderr)
    for item in overrides:
        apply_override(raw, item)
    return params_from_dict(raw, source=source)


def params_from_dict(raw: Mapping[str, Any], source: str = "parameters") -> Params:
    """Build the tree from nested dicts; errors name `source` and the key path."""
    return _build(Params, raw, prefix="", source=source)


def parse_override(item: str) -> tuple[list[str], Any]:
    """`section.key=value` -> (["section", "key"], value); the value is read as TOML, else a string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return key.split("."), value


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Write one `--set` override into the raw dict tree (validated later with everything else)."""
    parts, value = parse_override(item)
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {part} is a value, not a section")
    node[parts[-1]] = value


def replace_path(params: Params, values: Mapping[str, Any]) -> Params:
    """Return a copy of params with dotted keys replaced (e.g. {"ppo.gamma": 0.98}), validated."""
    raw = to_dict(params)
    for dotted, value in values.items():
        apply_override(raw, f"{dotted}={_value(to_dict(value))}")
    return params_from_dict(raw, source="overrides")


def _build(cls: type, raw: Mapping[str, Any], prefix: str, source: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: [{prefix.rstrip('.')}] must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{source}: unknown key '{prefix}{key}'{_suggest(key, fields, prefix)}")
    kwargs = {name: _convert(hints[name], raw[name], f"{prefix}{name}", source)
              for name in fields if name in raw}
    try:
        return cls(**kwargs)
    except FieldError as exc:
        raise ConfigError(f"{source}: {prefix}{exc.key} {exc.message}") from None


def _suggest(key: str, known: Iterable[str], prefix: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else f" (known keys: {', '.join(sorted(known))})"


def _convert(hint: Any, value: Any, key: str, source: str) -> Any:
    """Check one value against its annotation; ints are accepted for floats, lists for tuples."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.", source)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list (got {value!r})")
        args = typing.get_args(hint)
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            raise ConfigError(f"{source}: {key} must have {len(items)} items (got {value!r})")
        return tuple(_convert(h, v, key, source) for h, v in zip(items, value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a table (got {value!r})")
        return value
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (type(value) is not hint):
        raise ConfigError(f"{source}: {key} must be {hint.__name__} (got {value!r})")
    return value


# ---------------------------------------------------------------- writing

def to_dict(obj: Any) -> Any:
    """The tree as plain dicts, lists and scalars (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def to_toml(tree: Any) -> str:
    """Render a Params (or nested dict) as TOML that load_params reads back to the same tree."""
    data = to_dict(tree)
    lines: list[str] = []
    _write_table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_table(table: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines.append("")
        lines.append(f"[{'.'.join(path)}]")
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        _write_table(value, path + [_key(key)], lines)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, int) or value == value else "nan"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")
