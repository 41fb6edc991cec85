"""`python -m trader.train`: PPO on the signal store, with checkpoints, resume and an honest report.

Reads top to bottom: arguments -> parameters -> signal store -> run directory -> environments
-> model -> learning (Ctrl-C saves a checkpoint) -> out-of-sample report.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

import signals.build
from common.files import save_json, save_text
from common.provenance import now, update_run_record, write_run_record
from common.resources import TreeMemory, available_cores
from envs.spec import EnvSpec
from settings import ConfigError, Params, add_params_arguments, params_from_cli, replace_path, to_toml
from settings.choices import VEC_ENVS
from signals.build import BuildError, expand_data_paths
from signals.cache import store_cache_key
from signals.store import Store, StoreError, open_store
from signals.threads import limit_loaded_pools
from trader.runinfo import BEST_SCORE_FILE, MODEL_FILES, member_dir, member_records, member_seed, new_parent_dir, \
    new_run_dir, training_fields

# torch, stable-baselines3, JAX and the modules that import them (envs.factory, trader.callbacks, trader.evaluate,
# trader.jax_ppo, trader.policy, trader.selection) are imported in the functions that use them, not here: together
# they take 4-5 s to import (measured on the 2-core machine), which `--help` or a bad `--set` would wait for.

# ---------------------------------------------------------------- arguments and parameters


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trader.train", description=__doc__.split("\n\n")[0])
    add_params_arguments(parser)
    parser.add_argument("--data", nargs="+", metavar="PATH", help="market data files or folders (default: data.paths)")
    parser.add_argument("--n-envs", type=int, help="parallel training environments (train.n_envs)")
    parser.add_argument("--timesteps", type=int, help="total training steps (train.timesteps)")
    parser.add_argument("--vec-env", choices=VEC_ENVS, help="vectorisation (train.vec_env)")
    parser.add_argument("--seed", type=int, help="seed (train.seed)")
    parser.add_argument("--run-dir", help="parent directory of run directories (train.run_dir)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="torch device (train.device)")
    parser.add_argument("--no-build", action="store_true", help="a missing or stale signal store is an error")
    return parser.parse_args(argv)


def resolve_params(args: argparse.Namespace) -> Params:
    """parameters.toml (or the resumed run's own), then --set, then the dedicated flags."""
    params_file = args.params
    if args.resume:
        if args.params:
            raise ConfigError("--resume continues a run with its own params.toml; --params cannot change it")
        params_file = Path(args.resume) / "params.toml"
        if not params_file.exists():
            raise ConfigError(f"--resume {args.resume}: no params.toml there; is it a run directory?")
    return params_from_cli(params_file, args.overrides, {
        "data.paths": expand_data_paths(args.data) if args.data else None, "train.n_envs": args.n_envs,
        "train.timesteps": args.timesteps, "train.vec_env": args.vec_env, "train.seed": args.seed,
        "train.run_dir": args.run_dir, "train.device": args.device}, recorded=bool(args.resume))


# ---------------------------------------------------------------- the signal store

def prepare_store(params: Params, no_build: bool, log: Any = print) -> Store:
    """The store for these parameters: built (or brought up to date) through signals.build's cached path."""
    if no_build:
        return open_store(params.build.out, expected_key=store_cache_key(params))
    return signals.build.build(params, log=log)  # looked up at the call: tests replace it


# ---------------------------------------------------------------- environments and model

def learner_device(choice: str) -> str:
    """`auto` means the CPU: stable-baselines3 advises it for MLP policies (the GPU only adds transfers)."""
    if choice == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("train.device = cuda, but torch sees no CUDA device")
        return "cuda"
    return "cpu"


def make_training_env(params: Params, store_root: Path, n_envs: int, seed: int, vec_env: str) -> Any:
    from envs.factory import make_vec_env

    return make_vec_env(store_root, "train", EnvSpec.from_config(params.env, params.costs), n_envs=n_envs, seed=seed,
                        vec_env=vec_env, start_method=params.train.start_method,
                        timeout_s=params.train.worker_timeout_s)


def ppo_kwargs(params: Params) -> dict[str, Any]:
    ppo = params.ppo
    return dict(learning_rate=ppo.learning_rate, n_steps=ppo.n_steps, batch_size=ppo.batch_size,
                n_epochs=ppo.n_epochs, gamma=ppo.gamma, gae_lambda=ppo.gae_lambda, clip_range=ppo.clip_range,
                ent_coef=ppo.ent_coef, vf_coef=ppo.vf_coef, max_grad_norm=ppo.max_grad_norm,
                policy_kwargs={"net_arch": list(ppo.net_arch)})


def configure_learner(threads: int) -> None:
    """The learner process: `threads` threads for torch and NumPy's BLAS, no per-call distribution checks."""
    import torch

    limit_loaded_pools(threads)
    from trader.jax_ppo import limit_xla_threads

    limit_xla_threads(threads)  # read when JAX first starts its backend (the store's scorer or the jax learner)
    # torch.distributions re-validates its arguments on every construction (about a sixth of SB3's
    # inference time here); SB3's networks produce finite logits by construction.
    torch.distributions.Distribution.set_default_validate_args(False)


def ppo_class(learner: str) -> Any:
    """train.learner's algorithm: SB3's PPO, or JaxPPO (the same PPO and zip format, its update in JAX)."""
    if learner == "jax":
        from trader.jax_ppo import JaxPPO

        return JaxPPO
    from stable_baselines3 import PPO

    return PPO


def new_model(params: Params, env: Any, device: str) -> Any:
    """PPO with SB3's MlpPolicy network, its rollout inference done in NumPy (trader.policy)."""
    from trader.policy import RolloutMlpPolicy

    return ppo_class(params.train.learner)(RolloutMlpPolicy, env, seed=params.train.seed, device=device, verbose=0,
                                           **ppo_kwargs(params))


def load_checkpoint(run_dir: Path, env: Any, device: str, log: Any, learner: str = "sb3") -> Any:
    """The newest checkpoint that loads (under `learner`, whichever saved it); a damaged one is skipped."""
    from trader.callbacks import latest_checkpoints

    for path in latest_checkpoints(run_dir / "checkpoints"):
        try:
            model = ppo_class(learner).load(path, env=env, device=device)
        except Exception as exc:  # a truncated or corrupt zip: fall back to the one before
            log(f"checkpoint {path.name} does not load ({exc}); trying the previous one")
            continue
        log(f"resuming from {path.name} at step {model.num_timesteps:,}")
        return model
    raise ConfigError(f"--resume {run_dir}: no loadable checkpoint in {run_dir / 'checkpoints'}")


# ---------------------------------------------------------------- learning

def learn_member(index: int, env: Any, params: Params, run_dir: Path, store: Store, device: str, resume: bool,
                 log: Any) -> dict[str, Any]:
    """Train ensemble member `index` in its folder (trader.runinfo.member_dir) on the shared environments.

    Resuming, a member with a checkpoint continues from it (one already finished learns nothing more) and a
    member not yet started starts afresh; member 0 of a resumed run must have one.
    """
    folder, seed = member_dir(run_dir, index), member_seed(params.train.seed, index)
    if params.train.ensemble > 1:
        log(f"ensemble member {index + 1} of {params.train.ensemble} (seed {seed}): {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    member_params = replace_path(params, {"train.seed": seed})
    if resume and (index == 0 or any((folder / "checkpoints").glob("step_*.zip"))):
        model = load_checkpoint(folder, env, device, log, params.train.learner)
    else:
        for name in (*MODEL_FILES, BEST_SCORE_FILE):  # an earlier start's best model would gate this one's
            (folder / name).unlink(missing_ok=True)
        model = new_model(member_params, env, device)  # seeds the environments too (SB3's set_random_seed)
    return {"seed": seed, **learn(model, member_params, folder, store, log, resume_dir=run_dir)}


def learn_ensemble(env: Any, params: Params, run_dir: Path, store: Store, device: str, resume: bool, log: Any
                   ) -> list[dict[str, Any]]:
    """Every member of `train.ensemble`, one after the other, on the shared environments: their statistics."""
    return [learn_member(k, env, params, run_dir, store, device, resume, log) for k in range(params.train.ensemble)]


def learn(model: Any, params: Params, run_dir: Path, store: Store, log: Any, resume_dir: Path | None = None
          ) -> dict[str, Any]:
    """model.learn with checkpoints, validation and progress in `run_dir`; Ctrl-C saves a checkpoint, says to
    resume `resume_dir` (the run's directory, where `run_dir` is a member's folder), and re-raises."""
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.logger import configure

    from trader.callbacks import CheckpointCallback, EpisodeStatsCallback, ProgressCallback, ValidationCallback
    from trader.selection import checkpoint_score

    model.set_logger(configure(str(run_dir / "logs" / f"from_step_{model.num_timesteps}"), ["csv", "tensorboard"]))
    checkpoints = CheckpointCallback(run_dir / "checkpoints", params.train.checkpoint_every)
    label = "validation Sharpe (mean of symbols and mirror images)" if params.train.drift_test == "mirror" else \
        "validation Sharpe"
    validation = ValidationCallback(lambda m: checkpoint_score(m, store, params), params.train.eval_every,
                                    run_dir / "best_model.zip",
                                    on_result=lambda step, s: log(f"  step {step:,}: {label} {s:.3f}"))
    progress = ProgressCallback(params.train.timesteps)
    remaining = params.train.timesteps - model.num_timesteps
    try:
        model.learn(total_timesteps=max(remaining, 0), reset_num_timesteps=False,
                    callback=CallbackList([checkpoints, validation, progress, EpisodeStatsCallback()]))
    except KeyboardInterrupt:
        path = checkpoints.save_now()
        log(f"\ninterrupted: saved {path} at step {checkpoints.trained_steps:,}; "
            f"continue with `python -m trader.train --resume {resume_dir or run_dir}`")
        raise
    from trader.callbacks import save_checkpoint, save_model_atomically

    save_checkpoint(model, run_dir / "checkpoints", model.num_timesteps)
    save_model_atomically(model, run_dir / "model.zip")
    if not validation.history or validation.history[-1][0] != model.num_timesteps:
        validation.run()  # the final weights are a candidate for the best model too
    return {"steps_per_second": progress.steps_per_second, "best_validation_sharpe": validation.best_score,
            "best_step": validation.best_step, "validation_history": validation.history,
            "num_timesteps": model.num_timesteps}


# ---------------------------------------------------------------- the run

def log_line(message: str = "") -> None:
    """print that does not tear the progress bar."""
    tqdm.write(message, file=sys.stdout)


def run(params: Params, argv: Sequence[str], resume: str | None = None, no_build: bool = False,
        log: Any = log_line) -> Path:
    """Train (or resume) one run and write its report; returns the run directory."""
    started = time.perf_counter()
    with TreeMemory() as memory:  # the whole run: build pool, env workers, learner and report
        run_dir, stats, report = _train_and_report(params, argv, resume, no_build, log)
    update_run_record(run_dir, {
        "finished": now(), "wall_seconds": round(time.perf_counter() - started, 2),
        "steps_per_second": round(stats["steps_per_second"], 1), "num_timesteps": stats["num_timesteps"],
        "best_validation_sharpe": stats["best_validation_sharpe"], "best_step": stats["best_step"],
        "peak_memory_mib": round(memory.peak_bytes / 2**20, 1), "test_sharpe": report["test"]["agent"]["sharpe"],
        "ensemble": stats["members"],
    })
    return run_dir


def _train_and_report(params: Params, argv: Sequence[str], resume: str | None, no_build: bool,
                      log: Any) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    from envs.factory import preload_forkserver
    from envs.trading_env import TradingSetup
    from trader.evaluate import report_run
    from trader.selection import select_policy

    configure_learner(params.train.torch_threads)
    # Before any pool starts (the build's included): env workers then fork with torch and SB3 loaded.
    preload_forkserver()
    store = prepare_store(params, no_build, log)
    command = [sys.executable, "-m", "trader.train", *argv]
    if resume:
        run_dir = Path(resume)
        update_run_record(run_dir, {"resumed": [*_previous_resumes(run_dir), command]})
    else:
        run_dir = new_run_dir(params.train.run_dir, params.train.seed)
        write_run_record(run_dir, params, command, training_fields(params, store))
    cores = available_cores()
    device = learner_device(params.train.device)
    log(f"run directory: {run_dir}")
    log(f"{params.train.n_envs} {params.train.vec_env} environment(s) on {cores} core(s); learner: "
        f"{params.train.torch_threads} torch thread(s), device {device}")
    if params.train.vec_env == "subproc" and params.train.n_envs > cores:
        log(f"note: {params.train.n_envs} env workers share {cores} cores; each is capped at one thread, "
            f"so this works, only not faster than {cores} workers would")

    training = TradingSetup.create(store, "train", EnvSpec.from_config(params.env, params.costs))
    for note in training.short_episode_notes():
        log(f"note: {note}")
    env = make_training_env(params, store.root, params.train.n_envs, params.train.seed, params.train.vec_env)
    try:
        members = learn_ensemble(env, params, run_dir, store, device, resume is not None, log)
    finally:
        env.close()
    rates = [m["steps_per_second"] for m in members if m["steps_per_second"] > 0]  # 0: finished before a resume
    stats = {**members[0], "steps_per_second": float(np.mean(rates)) if rates else 0.0,
             "members": member_records(members)}
    select_policy(run_dir, store, params, log)
    report = report_run(run_dir, store, params, log=log)
    return run_dir, stats, report


def _previous_resumes(run_dir: Path) -> list[Any]:
    record = run_dir / "run.json"
    return json.loads(record.read_text()).get("resumed", []) if record.exists() else []


def stop_on_sigint() -> None:
    """SIGINT raises KeyboardInterrupt, even where it was inherited as ignored.

    A command started in the background by a non-interactive shell (`python -m trader.train &` in a
    script, CI, nohup) inherits SIGINT ignored; `kill -INT` must still stop it with a checkpoint.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ---------------------------------------------------------------- several seeds (train.seeds)

def run_seeds(params: Params, argv: Sequence[str], no_build: bool = False, log: Any = log_line) -> Path:
    """One run per seed of train.seeds, each a run directory under one parent, then seeds_report.json.

    Each run's params.toml holds its own seed and no `train.seeds`, so `--resume` and `trader.evaluate`
    treat it as the single run it is. Returns the parent directory.
    """
    parent = new_parent_dir(params.train.run_dir, "seeds")
    save_text(parent / "params.toml", to_toml(params))
    runs: list[Path] = []
    for seed in params.train.seeds:
        log(f"\n=== seed {seed} ({len(runs) + 1} of {len(params.train.seeds)}) ===")
        seeded = replace_path(params, {"train.seed": seed, "train.seeds": [], "train.run_dir": str(parent)})
        runs.append(run(seeded, argv, no_build=no_build, log=log))
    report = seeds_report(runs)
    save_json(parent / "seeds_report.json", report)
    log(f"\n{format_seeds(report)}\nseeds report: {parent / 'seeds_report.json'}")
    return parent


def seeds_report(run_dirs: Sequence[Path]) -> dict[str, Any]:
    """Each seed's test Sharpe (with its interval), turnover and selected policy; their mean and spread."""
    rows = []
    for run_dir in run_dirs:
        report = json.loads((Path(run_dir) / "report.json").read_text())
        agent = report["test"]["agent"]
        rows.append({"seed": json.loads((Path(run_dir) / "run.json").read_text())["seed"], "run_dir": str(run_dir),
                     "test_sharpe": agent["sharpe"], "test_sharpe_interval": agent.get("sharpe_interval"),
                     "turnover": agent["turnover"], "selected": report["selected"],
                     # the trained checkpoint's own figure, also where do-no-harm kept the run flat
                     "checkpoint_test_sharpe": report["test"].get("not_selected", report["test"])["agent"]["sharpe"]})

    def spread(key: str) -> dict[str, float]:  # the sample standard deviation (ddof 1; 0 for one seed)
        values = np.array([r[key] for r in rows], dtype=float)
        return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}

    return {"seeds": rows, "test_sharpe": spread("test_sharpe"), "turnover": spread("turnover"),
            "checkpoint_test_sharpe": spread("checkpoint_test_sharpe"),
            "selected_model": sum(r["selected"] == "model" for r in rows), "n_seeds": len(rows)}


def format_seeds(report: Mapping[str, Any]) -> str:
    """One line per seed, then the mean and standard deviation over seeds."""
    lines = [f"{'seed':>6}  {'test sharpe':>11}  {'90% interval':<18}{'turnover':>9}  {'selected':<9}"
             f"{'checkpoint':>10}"]
    for r in report["seeds"]:
        low, high = r["test_sharpe_interval"] or (float("nan"), float("nan"))
        lines.append(f"{r['seed']:>6}  {r['test_sharpe']:>+11.2f}  [{low:+.2f}, {high:+.2f}]{'':<3}"
                     f"{r['turnover']:>9.3f}  {r['selected']:<9}{r['checkpoint_test_sharpe']:>+10.2f}")
    s, t, c = report["test_sharpe"], report["turnover"], report["checkpoint_test_sharpe"]
    lines.append(f"{'mean':>6}  {s['mean']:>+11.2f}  {'':<18}{t['mean']:>9.3f}  {'':<9}{c['mean']:>+10.2f}")
    lines.append(f"{'std':>6}  {s['std']:>11.2f}  {'':<18}{t['std']:>9.3f}  {'':<9}{c['std']:>10.2f}")
    lines.append(f"(sample standard deviations over seeds; model selected in {report['selected_model']} of "
                 f"{report['n_seeds']}; checkpoint: the best checkpoint's test Sharpe, selected or not)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    stop_on_sigint()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        params = resolve_params(args)
        if params.train.seeds and not args.resume:
            run_seeds(params, argv, no_build=args.no_build)
        else:
            run(params, argv, resume=args.resume, no_build=args.no_build)
    except (ConfigError, BuildError, StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:  # envs.subproc.EnvWorkerError and the like: say it plainly
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
