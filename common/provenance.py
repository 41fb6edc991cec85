"""What a run used: package versions (each command's run record carries them)."""

from __future__ import annotations

import sys


def package_versions() -> dict[str, str]:
    """Python's version and those of the packages that shape results."""
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in ("numpy", "pandas", "numba", "jax", "jaxlib", "torch", "stable-baselines3", "gymnasium", "optuna"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions
