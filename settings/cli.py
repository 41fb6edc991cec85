"""The command-line side of the config tree, shared by every command: --params, --set and flag overrides."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from settings.loader import load_params, replace_path
from settings.schema import Params


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    """--params FILE and repeatable --set section.key=value."""
    parser.add_argument("--params", help="parameters file (default: ./parameters.toml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one parameter, value read as TOML (repeatable)")


def params_from_cli(params_file: str | Path | None, overrides: list[str], flags: Mapping[str, Any],
                    recorded: bool = False) -> Params:
    """parameters.toml (or, `recorded`, a run's own params.toml: settings.loader.load_params), then --set,
    then the dedicated flags that were given (they win); all validated."""
    params = load_params(params_file, overrides, recorded)
    given = {key: value for key, value in flags.items() if value is not None}
    return replace_path(params, given) if given else params
