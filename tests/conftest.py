"""Shared fixtures: a seeded synthetic market written as CSV with a small-grid parameters file, a synthetic
store, and one tiny trained run. The builders they use live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_store, run_module, small_grid_toml, write_market, write_params


@pytest.fixture
def market(tmp_path: Path) -> dict:
    """Two synthetic symbols, a small-grid parameters file and a store path, all under tmp_path."""
    paths = write_market(tmp_path / "data", {"AAA": 1, "BBB": 2})
    params = tmp_path / "params.toml"
    params.write_text(
        f"[data]\npaths = {paths!r}\n\n[build]\nout = '{tmp_path / 'store'}'\nworkers = 2\n\n"
        f"[signals]\nvariants_per_task = 4\n\n" + small_grid_toml())
    return {"paths": paths, "params": params, "store": tmp_path / "store", "tmp": tmp_path}


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two symbols of random-walk closes with 1 % per bar (AAA 4,000 bars, BBB 3,000), 3 features, splits 60/20/20."""
    root = tmp_path_factory.mktemp("store")
    make_store(root, {"AAA": 4000, "BBB": 3000})
    return root


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny trained run (tests/test_train.py's settings, about 30 s), shared by the agent, predict and
    serve tests: {"run": run directory, "store": store, "data": {symbol: csv path}}."""
    tmp = tmp_path_factory.mktemp("trained")
    # The tiny run has no edge worth its name: do-no-harm would select flat, and these tests need the model.
    result = run_module("trader.train", "--params", str(write_params(tmp)), "--set", "train.do_no_harm=false")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = sorted((tmp / "runs").iterdir())
    return {"run": run, "store": tmp / "store", "data": {p.stem: p for p in sorted((tmp / "data").glob("*.csv"))}}
