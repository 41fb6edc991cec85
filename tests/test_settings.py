"""The config tree: defaults, parameters.toml, unknown keys, bad values, overrides, round trip."""

import dataclasses
import tomllib
from pathlib import Path

import pytest

from settings import ConfigError, Params, load_params, params_from_dict, replace_path, to_toml

ROOT = Path(__file__).resolve().parents[1]


def test_parameters_toml_holds_every_default():
    """parameters.toml states every field (so it is the one place defaults live) and loads to the defaults."""
    raw = tomllib.loads((ROOT / "parameters.toml").read_text())
    expected = tomllib.loads(to_toml(Params()))
    for section, values in expected.items():
        assert section in raw, f"[{section}] missing from parameters.toml"
        missing = set(values) - set(raw[section])
        assert not missing, f"parameters.toml [{section}] lacks {sorted(missing)}"
    params = load_params(ROOT / "parameters.toml")
    assert params.env == Params().env and params.ppo == Params().ppo and params.train == Params().train


@pytest.mark.parametrize("raw, message", [
    ({"env": {"windw": 3}}, r"unknown key 'env.windw' \(did you mean 'env.window'\?\)"),
    ({"enviroment": {}}, r"unknown key .enviroment. \(known keys: build, costs, data, env"),
    ({"tune": {"fast": {"n_env": 2}}}, r"tune.fast.n_env.*did you mean 'tune.fast.n_envs'"),
    ({"env": {"window": -3}}, r"env.window must be >= 1"),
    ({"split": {"train": 1.5}}, r"split.train must be a fraction"),
    ({"split": {"train": 0.7, "validation": 0.3}}, r"split.validation .*test split"),
    ({"signals": {"max_correlation": 1.2}}, r"signals.max_correlation must be a fraction"),
    ({"ppo": {"n_steps": "many"}}, r"ppo.n_steps must be int"),
    ({"train": {"vec_env": "threads"}}, r"train.vec_env must be one of subproc, dummy, batched"),
    ({"costs": {"commission_bps": -1}}, r"costs.commission_bps must be in \[0, 10000\)"),
    ({"build": {"executor": "threads"}}, r"build.executor must be one of process, dask \(got 'threads'\)"),
    ({"build": {"scheduler": "8786"}}, r"build.scheduler must be a Dask scheduler address like tcp://host:8786"),
    ({"build": {"schedulr": ""}}, r"unknown key 'build.schedulr' \(did you mean 'build.scheduler'\?\)"),
    ({"walkforward": {"executor": "ray"}}, r"walkforward.executor must be one of process, dask"),
])
def test_bad_config_names_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(raw)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("[env]\nwindow = 0\n")
    with pytest.raises(ConfigError, match=f"{bad}: env.window"):
        load_params(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "missing.toml")


def test_overrides_and_replace():
    params = load_params(ROOT / "parameters.toml", ["ppo.learning_rate=1e-3", "env.reward=differential_sharpe",
                                                    "ppo.net_arch=[32, 32]", "data.paths=['a.csv']"])
    assert params.ppo.learning_rate == 1e-3 and params.env.reward == "differential_sharpe"
    assert params.ppo.net_arch == (32, 32) and params.data.paths == ("a.csv",)
    with pytest.raises(ConfigError, match="ppo.gama"):
        load_params(ROOT / "parameters.toml", ["ppo.gama=0.9"])
    changed = replace_path(params, {"ppo.gamma": 0.9, "tune.fast.timesteps": 100})
    assert changed.ppo.gamma == 0.9 and changed.tune.fast.timesteps == 100 and params.ppo.gamma == 0.95


def test_toml_round_trip(tmp_path):
    params = replace_path(Params(), {"signals.families": {"rsi": {"window": [5, 9]}}, "ppo.ent_coef": 1e-7})
    path = tmp_path / "resolved.toml"
    path.write_text(to_toml(params))
    assert load_params(path) == params


def test_params_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Params().env.window = 3  # type: ignore[misc]


def test_a_run_recorded_before_a_key_changed_is_read_as_it_ran(tmp_path, capsys):
    """A recorded params.toml with train.beyond_drift (removed) and without train.ensemble, train.drift_test
    and data.mirror (added since) loads as the run was: one agent, the drift test, no mirror images; as a
    user's parameters file it is still an error naming the key."""
    raw = tomllib.loads(to_toml(Params()))
    for section, key in (("train", "ensemble"), ("train", "drift_test"), ("data", "mirror")):
        del raw[section][key]
    raw["train"]["beyond_drift"] = True
    lines = []
    for section, table in raw.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items() if not isinstance(value, dict)]
    path = tmp_path / "params.toml"
    path.write_text("\n".join(lines) + "\n")
    params = load_params(path, recorded=True)
    assert (params.train.ensemble, params.train.drift_test, params.data.mirror) == (1, "drift", False)
    assert "train.beyond_drift = True read as train.drift_test = 'drift'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown key 'train.beyond_drift'"):
        load_params(path)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)
