"""Do-no-harm model selection: the best validation checkpoint trades only if its edge is beyond the noise.

Flat is always a candidate. After training, the best checkpoint (best_model.zip, chosen on validation
Sharpe) is scored on the validation split again with a stationary-bootstrap interval of its Sharpe ratio
(trader.bootstrap). If the interval's lower end is above 0, the checkpoint is selected; otherwise the
run's selected policy is flat, and the report says so in words while still showing the checkpoint, labelled
"not selected". The choice and its reason go to `RUN_DIR/best_model.json` (beside the validation Sharpe and
step that `ValidationCallback` keeps there), which `trader.evaluate` and a loaded agent read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from common.files import save_json
from settings import Params
from signals.store import Store
from trader.evaluate import evaluate_policy, load_run_model, model_predictor
from trader.runinfo import SELECTION_FILE


def choose(validation: dict[str, Any], do_no_harm: bool) -> tuple[str, str]:
    """("model" or "flat", the reason in words) from the candidate's validation summary."""
    sharpe = validation["agent"]["sharpe"]
    low, high = validation["agent"]["sharpe_interval"]
    level = validation["interval_level"]
    figures = f"validation Sharpe {sharpe:+.2f}, {level:.0%} interval [{low:+.2f}, {high:+.2f}]"
    if not do_no_harm:
        return "model", f"{figures}; do-no-harm selection is off (train.do_no_harm = false)"
    if low > 0.0:
        return "model", f"{figures}: the edge is beyond the noise, the best checkpoint is selected"
    return "flat", (f"no edge found on validation: the selected policy stays flat (the best checkpoint's "
                    f"{figures} does not lie above 0)")


def select_policy(run_dir: Path, store: Store, params: Params, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Score the best checkpoint on validation with its interval, choose it or flat, write best_model.json."""
    model, name = load_run_model(run_dir)
    validation, _ = evaluate_policy(model_predictor(model), store, params, "validation")
    selected, reason = choose(validation, params.train.do_no_harm)
    path = Path(run_dir) / SELECTION_FILE
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update({
        "selected": selected, "model": name if selected == "model" else None, "candidate": name,
        "reason": reason, "candidate_validation_sharpe": validation["agent"]["sharpe"],
        "candidate_validation_interval": validation["agent"]["sharpe_interval"],
        "interval_level": validation["interval_level"], "do_no_harm": params.train.do_no_harm,
    })
    save_json(path, record)
    log(f"model selection: {reason}")
    return record
