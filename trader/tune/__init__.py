"""`python -m trader.tune`: Optuna search over the trainer's hyperparameters, scored on the validation split.

One module per concern, read in this order (each imports only the ones before it):

* `space`: the search space, one pure function `sample_params(trial)`, and what a trial trains with
  (`trial_params`: the fast-mode cuts, the common purge of full-mode trial stores);
* `storage`: storage URLs (journal file or RDB), pruner and sampler, the study, stale-trial recovery;
* `objective`: one trial (its store, environments, chunked learning with pruning, validation scores);
* `summary`: progress lines, the top-3 table, the deflated Sharpe ratio of the best trial,
  best_params.toml, trials.csv and plots;
* `runner`: worker processes and the study from start to summary; `__main__`: the command line.

What a trial may see. The objective is the agent's annualised Sharpe ratio net of costs on the
VALIDATION split, as training ranks checkpoints (`trader.selection.checkpoint_score`: with the mirror
test, the mean over the symbols and their mirror images), averaged over `tune.seeds_per_trial` seeds.
A trial trains one agent per seed, not an ensemble (`train.ensemble` is for the run that uses the best
trial's parameters): the seeds' mean score is what the ensemble's members would score on average.
Training uses the train split only; nothing in a study opens the test split. Signals were
selected on the training split by `signals.build`.

Fast and full mode. `--fast` uses the signal store at `build.out` as it is (a missing or stale store is
an error telling you to run `python -m signals.build`; it never rebuilds or reselects signals), cuts
N_ENVS, PPO epochs and timesteps to `[tune.fast]` (each cut is a minimum: a cut never raises a budget)
and steps its few environments in-process (batched: the same episodes, no pipe traffic). A sampled
`ppo.n_epochs` above the cut is trained with the cut, but best_params.toml keeps the sampled value, as it
keeps the base N_ENVS and timesteps: the fast budget is for ranking trials, not for the final run;
a comment at the top of best_params.toml lists each value the trial's budget changed and what it
trained with. Full mode also searches the signal selection (`signals.keep_per_family`,
`signals.max_correlation`, `signals.horizon`): each trial builds its own store under
`<tune.out>/stores/<cache key[:12]>`, sharing the raw variants of the base store
(`<build.out>/variants`), so only scoring and selection rerun. Every full-mode trial store purges the
embargo of the longest searched horizon (`split.extra_embargo` makes up the difference), so a trial's
horizon does not move its validation bars: every trial is scored on the same bars.

Storage. Default: an Optuna journal file `<tune.out>/<study name>.log`, safe for several processes on
one machine. `--storage` takes any Optuna storage URL (`postgresql://user:password@host/db` to spread a
study over machines: run `python -m trader.tune --storage URL` on each) or a path ending in `.log` (a
journal file there). An existing study of the same name is continued; `--iterations` is the number of
trials this invocation adds, split exactly among `--jobs` worker processes.

Crashed workers. Each trial records its worker as `host:pid`. When a worker process of this invocation
dies, its RUNNING trial is marked FAILED at once; trials a killed invocation left RUNNING are marked
FAILED when the study is opened again. Caveat: a journal file has no heartbeats, so a RUNNING trial
whose worker cannot be checked (another host, or none recorded) counts as left behind: do not reopen a
study shared across machines while another invocation is still working on it (on one machine it is
safe: live workers are recognised by their pid). RDB storages (PostgreSQL, SQLite, MySQL) get
heartbeats here, so only trials whose worker stopped beating are failed, and reopening is always safe.

Outputs under `<tune.out>/<study name>/`: params.toml and run.json (the invocation's resolved
parameters, command, versions, store manifest hash), best_params.toml (the full parameter tree with the
best trial's values, and in full mode `build.out` at that trial's store; `python -m trader.train --params
best_params.toml` trains with it as is; its header comment gives the deflated Sharpe ratio of the best
trial), trials.csv, history.png, importances.png, and trials/<number>/ with each trial's params.toml and
result.json (model files only with `--keep-checkpoints`).

This package's `__init__` imports nothing heavy: `python -m trader.tune --help` runs it first.
"""

from __future__ import annotations

from typing import Callable

Log = Callable[[str], None]
"""Where progress lines go (print by default; tests collect them in a list)."""
