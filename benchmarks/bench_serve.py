"""Latency (p50, p99 per request) and throughput of `python -m trader.serve`, with a real HTTP client.

    python benchmarks/bench_serve.py                        # trains a short run on the bundled data first
    python benchmarks/bench_serve.py --run RUN_DIR          # an existing run
    python benchmarks/bench_serve.py --clients 8 --requests 500 --json out.json

The service runs as a subprocess on 127.0.0.1 (its journals in a temporary folder, fsynced on every
request as in production). Each client is a thread with its own keep-alive `httpx.Client` and its own
symbol; it first posts the warm-up (`min_bars - 1` bars of the run's first data file) in one request,
then `--requests` requests of one closed bar each, as a terminal does on each bar, and every one of
those is timed. Runs: 1 client (the latency of a lone terminal), then `--clients` at once (the load).
Beside them, the decision alone (`Agent.step` in this process: features from the tail, observation,
policy) shows what of a request is the agent's own work. The clients share the machine with the server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a trained run (default: train a short one on the bundled data)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the load run (default 8)")
    parser.add_argument("--requests", type=int, default=500, help="timed requests per client (default 500)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def short_run(parent: Path) -> Path:
    """A run of the default parameters, few steps: its agent is as large as the default one."""
    subprocess.run([sys.executable, "-m", "trader.train", "--timesteps", "4096", "--vec-env", "dummy",
                    "--n-envs", "2", "--run-dir", str(parent)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    (run,) = sorted(parent.iterdir())
    return run


def bars_of(run: Path) -> list[dict]:
    """The run's first data file as the EA sends bars (Unix seconds)."""
    from settings import load_params
    from signals.data import load_bars

    bars = load_bars(load_params(run / "params.toml").data.paths[0])
    return [{"time": int(t // 10**9), "open": o, "high": h, "low": lo, "close": c, "volume": v}
            for t, o, h, lo, c, v in zip(bars.timestamps.tolist(), bars.open.tolist(), bars.high.tolist(),
                                         bars.low.tolist(), bars.close.tolist(), bars.volume.tolist())]


def start_server(run: Path, state: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "trader.serve", str(run), "--port", str(port), "--state", str(state),
                             "--any-symbol", "--max-gap", "1000"], cwd=ROOT, stdout=subprocess.DEVNULL)
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/health").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the service did not start within 180 s")


def load(url: str, bars: list[dict], need: int, clients: int, requests: int, tag: str) -> dict[str, Any]:
    """`clients` threads, each warming its own symbol up, then timing `requests` one-bar posts."""
    import httpx

    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            symbol = f"{tag}{k}"
            if http.post("/v1/bars", json={"symbol": symbol, "bars": bars[:need - 1]}).status_code != 200:
                errors.append(f"{symbol}: warm-up refused")
            barrier.wait()
            for bar in bars[need - 1:need - 1 + requests]:
                started = time.perf_counter()
                response = http.post("/v1/bars", json={"symbol": symbol, "bars": [bar]})
                latencies[k].append(time.perf_counter() - started)
                if response.status_code != 200 or response.json()["position"] is None:
                    errors.append(f"{symbol}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    flat = np.asarray([x for per in latencies for x in per]) * 1e3
    return {"clients": clients, "requests": int(flat.size), "errors": len(errors), "first_errors": errors[:3],
            "p50_ms": float(np.percentile(flat, 50)), "p99_ms": float(np.percentile(flat, 99)),
            "mean_ms": float(flat.mean()), "throughput_rps": flat.size / wall, "wall_s": wall}


def decision_time(run: Path, bars: list[dict], repeats: int = 300) -> dict[str, float]:
    """Agent.step alone, in this process, on successive tails."""
    import torch

    from signals.catalog import Ohlcv
    from trader.agent import Agent

    torch.set_num_threads(1)
    agent = Agent.load(run)
    arrays = {f: np.asarray([b[f] for b in bars], dtype=np.float64) for f in ("open", "high", "low", "close", "volume")}
    times = np.asarray([b["time"] for b in bars], dtype=np.int64) * 10**9
    need, state, took = agent.min_bars, None, []
    for end in range(need, min(len(bars), need + repeats)):
        window = Ohlcv(*(arrays[f][end - need:end] for f in ("open", "high", "low", "close", "volume")))
        started = time.perf_counter()
        _, state = agent.step(times[end - need:end], window, state)
        took.append(time.perf_counter() - started)
    ms = np.asarray(took[10:]) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "features": len(agent.spec.features), "window": agent.spec.window, "min_bars": need}


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or short_run(Path(tmp) / "runs")
        bars = bars_of(run)
        need = json.loads((run / "agent.json").read_text())["min_bars"]
        if len(bars) < need - 1 + args.requests:
            raise SystemExit(f"{len(bars)} bars in the data: fewer than {need - 1} warm-up + {args.requests} requests")
        decision = decision_time(run, bars)
        proc, url = start_server(run, Path(tmp) / "state")
        try:
            single = load(url, bars, need, 1, args.requests, "ONE")
            many = load(url, bars, need, args.clients, args.requests, "LOAD")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; run {run.name}: "
          f"{decision['features']} features x window {decision['window']}, decisions need {decision['min_bars']} bars")
    print(f"decision alone (Agent.step): p50 {decision['p50_ms']:.2f} ms, p99 {decision['p99_ms']:.2f} ms")
    for name, r in (("1 client", single), (f"{args.clients} clients", many)):
        print(f"{name:>10}: {r['requests']} requests, {r['errors']} errors; p50 {r['p50_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms, mean {r['mean_ms']:.2f} ms; {r['throughput_rps']:.0f} requests/s")
    if args.json:
        args.json.write_text(json.dumps({"decision": decision, "single": single, "load": many}, indent=2))
    return 1 if single["errors"] or many["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
