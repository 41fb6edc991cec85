"""signals.cache: the store and task keys cover every source file of the package, the data and
the parameters that shape the store, and nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import signals.build
from settings import Params, replace_path
from signals import cache

ROOT = Path(__file__).resolve().parents[1]
HASHES = {"AAA": "0" * 64}


@pytest.fixture()
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """A copy of signals/ and settings/ (sources only) that the code hash reads instead."""
    roots = []
    for name in ("signals", "settings"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        roots.append(tmp_path / name)
    monkeypatch.setattr(cache, "CODE_ROOTS", tuple(roots))
    monkeypatch.setattr(cache, "VARIANT_ROOTS", (roots[0],))
    return sorted(p for root in roots for p in root.rglob("*.py"))


def test_the_code_hash_reads_every_python_file_of_signals_and_settings() -> None:
    files = cache.source_files(cache.CODE_ROOTS)
    expected = sorted(p for d in ("signals", "settings") for p in (ROOT / d).rglob("*.py")
                      if "__pycache__" not in p.parts)
    assert files == expected
    names = {p.relative_to(ROOT).as_posix() for p in files}
    # The split modules are in, found by walking the tree rather than by a list of names.
    assert {"signals/kernels/stats.py", "signals/families/oscillators.py", "signals/catalog.py",
            "signals/cache.py", "settings/schema.py"} <= names


def test_changing_any_source_file_changes_the_store_key_and_restoring_it_restores_the_key(
        package_copy: list[Path]) -> None:
    params = Params()
    before = cache.store_cache_key(params, HASHES)
    assert len(package_copy) >= 20
    for path in package_copy:
        original = path.read_bytes()
        path.write_bytes(original + b"\n# an edit\n")
        assert cache.store_cache_key(params, HASHES) != before, path
        path.write_bytes(original)
    assert cache.store_cache_key(params, HASHES) == before


def test_a_new_or_moved_module_changes_the_key(package_copy: list[Path]) -> None:
    params = Params()
    before = cache.store_cache_key(params, HASHES)
    kernels = cache.CODE_ROOTS[0] / "kernels"
    (kernels / "extra.py").write_text("")
    assert cache.store_cache_key(params, HASHES) != before
    (kernels / "extra.py").unlink()
    # The same bytes under another name are other code (a split that moved a function).
    (kernels / "stats.py").rename(kernels / "statistics.py")
    assert cache.store_cache_key(params, HASHES) != before


def test_a_kernel_edit_changes_every_task_key_but_a_settings_edit_does_not(package_copy: list[Path]) -> None:
    variant_code = cache.variant_code_hash()
    key = cache.task_key("sha", "rsi", [{"window": 14}], variant_code)
    stats = cache.CODE_ROOTS[0] / "kernels" / "stats.py"
    stats.write_text(stats.read_text() + "\n# an edit\n")
    assert cache.task_key("sha", "rsi", [{"window": 14}], cache.variant_code_hash()) != key
    stats.write_text(stats.read_text().removesuffix("\n# an edit\n"))
    schema = cache.CODE_ROOTS[1] / "schema.py"
    schema.write_text(schema.read_text() + "\n# an edit\n")
    assert cache.variant_code_hash() == variant_code


def test_the_store_key_follows_the_data_and_the_store_parameters_only() -> None:
    params = Params()
    key = cache.store_cache_key(params, HASHES)
    assert cache.store_cache_key(params, HASHES) == key  # stable
    assert cache.store_cache_key(params, {"AAA": "1" * 64}) != key
    assert cache.store_cache_key(replace_path(params, {"signals.horizon": params.signals.horizon + 1}), HASHES) != key
    assert cache.store_cache_key(replace_path(params, {"split.extra_embargo": 7}), HASHES) != key
    # Training parameters do not shape the store.
    assert cache.store_cache_key(replace_path(params, {"ppo.ent_coef": 0.5}), HASHES) == key


def test_the_store_key_is_still_importable_from_signals_build() -> None:
    assert signals.build.store_cache_key is cache.store_cache_key
