"""Is a market's edge learnable from the signal store's features at all? A supervised check beside the agent.

    python benchmarks/bench_learning.py --files --markets slow_regimes --out OUT      # stores to look at
    python benchmarks/bench_supervised.py OUT/slow_regimes/seed0/store OUT/slow_regimes/seed1/store ...

For each store (a benchmark run's, with data.mirror): a linear model and a 64x64 tanh MLP regress the next
bar's return (in units of the training split's volatility) on the stored features, trained on the training
split of the symbol and its mirror image. Each is also given slow regime detectors, the rolling
correlation of the return with the mean of the returns before it (200 and 400 bars, 1, 3 and 8 lags),
which selection cannot rank (they do not change under the mirror). The epoch and an entry threshold are
chosen on the validation split, which makes the figure optimistic; the position is then held from one
crossing of the threshold to the next, and the test split's Sharpe ratio net of costs is printed. Compare
it with the agent's checkpoint column on the same seeds: where a supervised learner with an optimistic
choice does no better, the features and the training bars are the limit, not PPO.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from markets import segment_metrics  # noqa: E402

from signals import kernels as K  # noqa: E402
from signals.families.transforms import t_stat  # noqa: E402
from signals.store import open_store  # noqa: E402

DETECTOR_WINDOWS = (200, 400)
DETECTOR_LAGS = (1, 3, 8)
THRESHOLDS = (0.0, 0.5, 1.0, 2.0)
"""Entry thresholds in units of the training predictions' std."""
EPOCHS = 60
MODELS = {"linear": (False, 0), "mlp": (False, 64), "linear+detectors": (True, 0), "mlp+detectors": (True, 64)}


def regime_detectors(close: np.ndarray) -> np.ndarray:
    """(n, 6) tanh(sqrt(w) rolling corr(r[t], mean(r[t-lags..t-1]))): negative where the market reverts."""
    r = K.log_returns_nb(np.ascontiguousarray(close, dtype=np.float64))
    columns = []
    for window in DETECTOR_WINDOWS:
        for lags in DETECTOR_LAGS:
            previous = np.concatenate(([np.nan], K.sma_nb(r, lags)[:-1]))
            columns.append(t_stat(K.rolling_corr_nb(r, previous, window), window))
    return np.stack(columns, axis=1)


def inputs(store: object, symbol: str, detectors: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, close, next-bar log return) of one symbol; NaN warm-up rows are 0 as the agent sees them."""
    data = store.symbol(symbol)  # type: ignore[attr-defined]
    close = np.asarray(data.close, dtype=np.float64)
    features = np.asarray(data.features, dtype=np.float64)
    if detectors:
        features = np.concatenate([features, regime_detectors(close)], axis=1)
    return np.nan_to_num(features), close, np.concatenate([np.diff(np.log(close)), [0.0]])


def held_positions(prediction: np.ndarray, threshold: float) -> np.ndarray:
    """Long above +threshold, short below -threshold, else the position before (flat at first)."""
    positions = np.zeros(len(prediction))
    current = 0.0
    for t, value in enumerate(prediction):
        current = 1.0 if value > threshold else (-1.0 if value < -threshold else current)
        positions[t] = current
    return positions


def network(n_inputs: int, hidden: int) -> torch.nn.Module:
    if not hidden:
        return torch.nn.Linear(n_inputs, 1)
    return torch.nn.Sequential(torch.nn.Linear(n_inputs, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden),
                               torch.nn.Tanh(), torch.nn.Linear(hidden, 1))


def evaluate(root: Path, detectors: bool, hidden: int, cost_bps: float, seed: int = 0) -> tuple[float, float]:
    """(validation Sharpe of the choice, test Sharpe) of one model on one store."""
    store = open_store(root)
    symbol = store.symbols[0]
    mirror = store.mirror_image(symbol)
    if mirror is None:
        raise SystemExit(f"{root}: built without data.mirror; this check trains on the symbol and its mirror")
    features, close, returns = inputs(store, symbol, detectors)
    mirror_features, _, mirror_returns = inputs(store, mirror, detectors)
    data = store.symbol(symbol)
    (a, b), validation, test = data.split("train"), data.split("validation"), data.split("test")
    periods = data.periods_per_year
    scale = returns[a:b].std()
    x = torch.tensor(np.concatenate([features[a:b - 1], mirror_features[a:b - 1]]), dtype=torch.float32)
    y = torch.tensor(np.concatenate([returns[a:b - 1], mirror_returns[a:b - 1]]) / scale, dtype=torch.float32)
    every_bar = torch.tensor(features, dtype=torch.float32)
    torch.manual_seed(seed)
    model = network(x.shape[1], hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    best = (-np.inf, np.nan)
    for _ in range(EPOCHS):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 256):
            batch = order[i:i + 256]
            optimiser.zero_grad()
            loss = ((model(x[batch]).squeeze(1) - y[batch]) ** 2).mean()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            prediction = model(every_bar).squeeze(1).numpy()
        for multiple in THRESHOLDS:
            positions = held_positions(prediction, multiple * prediction[a:b].std())
            on_validation = segment_metrics(close, positions, validation, cost_bps, periods)["sharpe"]
            if on_validation > best[0]:
                best = (on_validation, segment_metrics(close, positions, test, cost_bps, periods)["sharpe"])
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+", type=Path, help="signal stores of benchmark runs (OUT/MARKET/seedN/store)")
    parser.add_argument("--cost-bps", type=float, default=2.0, help="cost per unit traded (the defaults: 2 bps)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[str, list[float]] = {name: [] for name in MODELS}
    for root in args.stores:
        cells = []
        for name, (detectors, hidden) in MODELS.items():
            on_validation, on_test = evaluate(root, detectors, hidden, args.cost_bps)
            results[name].append(on_test)
            cells.append(f"{name} {on_test:+.2f} (validation {on_validation:+.2f})")
        print(f"{root}: " + ", ".join(cells), flush=True)
    print("test Sharpe, mean ± sd over stores: " + ", ".join(
        f"{name} {np.mean(v):+.2f} ± {np.std(v, ddof=1) if len(v) > 1 else 0.0:.2f}" for name, v in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
