"""Shared fixtures: a seeded synthetic market written as CSV, and small parameter files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks' market generators are shared with the tests

from benchmarks.markets import ar1_returns  # noqa: E402


def synthetic_ohlcv(n: int, seed: int, start: str = "2015-01-01", freq: str = "h", momentum: float = 0.0
                    ) -> pd.DataFrame:
    """A seeded market with consistent OHLC and positive volume.

    momentum = 0 is a random walk; momentum = phi > 0 makes log returns AR(1) with coefficient phi,
    an edge that any trend or rate-of-change signal can see one bar ahead.
    """
    rng = np.random.default_rng(seed)
    returns = ar1_returns(rng.normal(0.0, 0.01, n), momentum)
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n)))
    volume = rng.lognormal(10.0, 0.5, n)
    index = pd.date_range(start, periods=n, freq=freq)
    return pd.DataFrame({"Date": index.strftime("%Y-%m-%d %H:%M:%S"), "Open": open_, "High": high, "Low": low,
                         "Close": close, "Volume": volume})


def write_market(folder: Path, symbols: dict[str, int], n: int = 1500, momentum: float = 0.0,
                 freq: str = "D") -> list[str]:
    """One CSV per symbol (name -> seed) of daily bars; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, seed in symbols.items():
        path = folder / f"{name}.csv"
        synthetic_ohlcv(n, seed, freq=freq, momentum=momentum).to_csv(path, index=False)
        paths.append(str(path))
    return paths


def small_grid_toml() -> str:
    """Every family with only its first two values per parameter: the whole pipeline, a small grid."""
    from signals.catalog import CATALOG, expand_grid

    lines = []
    for name, family in CATALOG.items():
        grid = {p: list(v[:2]) for p, v in family.default_grid.items()}
        if not expand_grid(family, grid):  # e.g. fast < slow needs other values
            grid = {p: list(v) for p, v in family.default_grid.items()}
        lines.append(f"[signals.families.{name}]")
        lines += [f"{p} = {v!r}" for p, v in grid.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def market(tmp_path: Path) -> dict:
    """Two synthetic symbols, a small-grid parameters file and a store path, all under tmp_path."""
    paths = write_market(tmp_path / "data", {"AAA": 1, "BBB": 2})
    params = tmp_path / "params.toml"
    params.write_text(
        f"[data]\npaths = {paths!r}\n\n[build]\nout = '{tmp_path / 'store'}'\nworkers = 2\n\n"
        f"[signals]\nvariants_per_task = 4\n\n" + small_grid_toml())
    return {"paths": paths, "params": params, "store": tmp_path / "store", "tmp": tmp_path}


def run_module(module: str, *args: str, cwd: Path = ROOT, timeout: float = 600, **popen) -> subprocess.CompletedProcess:
    """Run `python -m module args` as a user would."""


    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, **popen)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny trained run (tests/test_train.py's settings, about 30 s), shared by the agent, predict and
    serve tests: {"run": run directory, "store": store, "data": {symbol: csv path}}."""
    from test_train import write_params

    tmp = tmp_path_factory.mktemp("trained")
    # The tiny run has no edge worth its name: do-no-harm would select flat, and these tests need the model.
    result = run_module("trader.train", "--params", str(write_params(tmp)), "--set", "train.do_no_harm=false")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = sorted((tmp / "runs").iterdir())
    return {"run": run, "store": tmp / "store", "data": {p.stem: p for p in sorted((tmp / "data").glob("*.csv"))}}
