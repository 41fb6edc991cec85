"""`python -m trader.serve` started as a subprocess on loopback and driven with a real HTTP client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, run_module

pytestmark = pytest.mark.slow  # every test here uses the session's trained run (about 30 s once)

START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(run: Path, state: Path, *extra: str) -> Iterator[tuple[httpx.Client, subprocess.Popen]]:
    """A running service and a client on it; stopped (killed if need be) on exit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "trader.serve", str(run), "--port", str(port),
                             "--state", str(state), *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if client.get("/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
        yield client, proc
    finally:
        client.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def load(path: Path) -> list[dict]:
    """The file's bars as the EA sends them (Unix seconds), parsed as predict parses the file."""
    from signals.data import load_bars

    bars = load_bars(path)
    return [{"time": int(t // 1_000_000_000), "open": o, "high": h, "low": lo, "close": c, "volume": v}
            for t, o, h, lo, c, v in zip(bars.timestamps.tolist(), bars.open.tolist(), bars.high.tolist(),
                                         bars.low.tolist(), bars.close.tolist(), bars.volume.tolist())]


@pytest.fixture(scope="module")
def replay(trained_run, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """`predict --all` of each symbol, indexed by timestamp."""
    out = {}
    for symbol, path in trained_run["data"].items():
        csv = tmp_path_factory.mktemp("replay") / f"{symbol}.csv"
        result = run_module("trader.predict", str(trained_run["run"]), "--data", str(path), "--all", "--out", str(csv))
        assert result.returncode == 0, result.stderr[-3000:]
        out[symbol] = pd.read_csv(csv).set_index("timestamp")
    return out


def min_bars(run: Path) -> int:
    return json.loads((run / "agent.json").read_text())["min_bars"]


def post(client: httpx.Client, symbol: str, bars: list[dict]) -> dict:
    response = client.post("/v1/bars", json={"symbol": symbol, "bars": bars})
    assert response.status_code == 200, response.text
    return response.json()


def stream(client: httpx.Client, symbol: str, bars: list[dict], expected: pd.DataFrame) -> None:
    """Post bars one at a time; each answer must be predict --all's decision on that bar."""
    for bar in bars:
        answer = post(client, symbol, [bar])
        assert answer["position"] == expected.loc[answer["time"], "position"], answer
        assert answer["probabilities"] is not None and np.isclose(sum(answer["probabilities"]), 1.0)


def test_served_decisions_equal_predict_all_bar_by_bar(trained_run, replay, tmp_path):
    run, need = trained_run["run"], min_bars(trained_run["run"])
    with server(run, tmp_path / "state") as (client, _):
        bars = load(trained_run["data"]["AAA"])
        warm = post(client, "AAA", bars[:need - 1])
        assert warm["position"] is None and warm["bars_needed"] == need and warm["bars_held"] == need - 1
        stream(client, "AAA", bars[need - 1:], replay["AAA"])
        # Another symbol in batches of 37 bars: each batch's answer is the decision on its newest bar.
        bars = load(trained_run["data"]["BBB"])
        for i in range(0, len(bars), 37):
            answer = post(client, "BBB", bars[i:i + 37])
            if i + 37 >= need:
                assert answer["position"] == replay["BBB"].loc[answer["time"], "position"], answer
        info = client.get("/v1/symbols/BBB").json()
        assert info["bars_held"] == need and info["last_decision"]["time"] == replay["BBB"].index[-1]


@pytest.mark.parametrize("how", ["kill -9", "terminate"])
def test_a_restart_in_the_middle_of_a_stream_loses_nothing_acknowledged(trained_run, replay, tmp_path, how):
    run, need = trained_run["run"], min_bars(trained_run["run"])
    bars = load(trained_run["data"]["AAA"])
    cut = need + 60
    with server(run, tmp_path / "state") as (client, proc):
        post(client, "AAA", bars[:need - 1])
        stream(client, "AAA", bars[need - 1:cut], replay["AAA"])
        before = client.get("/v1/symbols/AAA").json()
        proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
        proc.wait(timeout=30)
    with server(run, tmp_path / "state") as (client, _):
        assert client.get("/v1/symbols/AAA").json() == before
        assert len((tmp_path / "state" / "AAA.jsonl").read_bytes().splitlines()) == 1  # compacted at start
        assert before["last_time"] == pd.Timestamp(bars[cut - 1]["time"], unit="s").isoformat()
        stream(client, "AAA", bars[cut:cut + 60], replay["AAA"])  # the agent state carried on too
        again = client.post("/v1/bars", json={"symbol": "AAA", "bars": [bars[cut]]})
        assert again.status_code == 409  # and the restored bars are held: a resend is refused


def test_a_torn_last_journal_line_is_dropped_on_restart(trained_run, tmp_path):
    run, need = trained_run["run"], min_bars(trained_run["run"])
    bars = load(trained_run["data"]["AAA"])
    with server(run, tmp_path / "state") as (client, _):
        post(client, "AAA", bars[:need + 5])
        before = client.get("/v1/symbols/AAA").json()
    with open(tmp_path / "state" / "AAA.jsonl", "ab") as fh:  # a write cut short by a kill
        fh.write(b'{"bars": [[17000')
    with server(run, tmp_path / "state") as (client, _):
        assert client.get("/v1/symbols/AAA").json() == before
        post(client, "AAA", bars[need + 5:need + 6])
    lines = (tmp_path / "state" / "AAA.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)


def bad_requests(bars: list[dict]) -> list[tuple[str, int, dict | str, str]]:
    """(case, status, body, words the reason must contain); `bars` are already held up to bars[-1]."""
    last, nxt = bars[-1], dict(bars[-1], time=bars[-1]["time"] + 86400)

    def with_(**change: object) -> dict:
        return {"symbol": "AAA", "bars": [dict(nxt, **change)]}

    missing = {k: v for k, v in nxt.items() if k != "close"}
    return [
        ("unknown symbol", 404, {"symbol": "ZZZ", "bars": [nxt]}, "unknown symbol 'ZZZ'"),
        ("duplicate timestamp", 409, {"symbol": "AAA", "bars": [last]}, "repeats the previous bar's time"),
        ("out of order", 409, with_(time=last["time"] - 86400), "is before the previous bar"),
        ("out of order within the request", 409, {"symbol": "AAA", "bars": [dict(nxt, time=nxt["time"] + 86400), nxt]},
         "is before the previous bar"),
        ("NaN", 422, json.dumps(with_()).replace(f'"close": {nxt["close"]!r}', '"close": NaN'), "close: nan"),
        ("zero price", 422, with_(low=0.0), "prices must be positive"),
        ("negative price", 422, with_(open=-1.0), "prices must be positive"),
        ("high below low", 422, with_(high=nxt["low"] * 0.99), "is below low"),
        ("close above high", 422, with_(close=nxt["high"] * 1.01), "outside [low"),
        ("missing field", 422, {"symbol": "AAA", "bars": [missing]}, "missing field(s) close"),
        ("missing symbol", 422, {"bars": [nxt]}, "'symbol'"),
        ("no bars", 422, {"symbol": "AAA", "bars": []}, "non-empty list"),
        ("not JSON", 422, "{not json", "not JSON"),
        ("a string price", 422, with_(open="1.5"), "open: '1.5' is not a finite number"),
        ("gap of 5 bars", 409, with_(time=last["time"] + 5 * 86400), "more than the 3 allowed"),
    ]


def test_every_bad_input_is_refused_with_its_reason_and_changes_nothing(trained_run, tmp_path):
    run, need = trained_run["run"], min_bars(trained_run["run"])
    bars = load(trained_run["data"]["AAA"])[:need + 3]
    journal = tmp_path / "state" / "AAA.jsonl"
    with server(run, tmp_path / "state", "--max-gap", "3") as (client, _):
        post(client, "AAA", bars)
        before, on_disk = client.get("/v1/symbols/AAA").json(), journal.read_bytes()
        for case, status, body, reason in bad_requests(bars):
            content = body if isinstance(body, str) else json.dumps(body)
            response = client.post("/v1/bars", content=content, headers={"content-type": "application/json"})
            assert response.status_code == status, (case, response.text)
            assert reason in response.json()["detail"], (case, response.text)
            assert client.get("/v1/symbols/AAA").json() == before, case
            assert journal.read_bytes() == on_disk, case
        assert not (tmp_path / "state" / "ZZZ.jsonl").exists()
        assert client.get("/v1/symbols/ZZZ").status_code == 404
        ok = post(client, "AAA", [dict(bars[-1], time=bars[-1]["time"] + 3 * 86400)])  # a gap of 3 is allowed
        assert ok["position"] is not None


def test_a_token_is_required_when_set_and_when_binding_beyond_loopback(trained_run, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRADER_SERVE_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "trader.serve", str(trained_run["run"]), "--host", "0.0.0.0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "bearer token" in result.stderr, result.stderr
    with server(trained_run["run"], tmp_path / "state", "--token", "s3cret") as (client, _):
        assert client.get("/v1/health").status_code == 200
        assert client.get("/v1/symbols/AAA").status_code == 401
        assert client.get("/v1/symbols/AAA", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/v1/symbols/AAA", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/openapi.json").json()["paths"].keys() >= {"/v1/bars", "/v1/health"}


def test_a_bounded_concurrent_load_gives_no_error(trained_run, tmp_path):
    clients, requests = 8, 60
    run, need = trained_run["run"], min_bars(trained_run["run"])
    bars = load(trained_run["data"]["AAA"])[:need - 1 + requests]
    answers: dict[int, list] = {}
    errors: list[str] = []
    with server(run, tmp_path / "state", "--any-symbol") as (client, _):
        base = str(client.base_url)

        def one_client(k: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                try:
                    post(http, f"S{k}", bars[:need - 1])
                    answers[k] = [post(http, f"S{k}", [bar])["position"] for bar in bars[need - 1:]]
                    assert http.get(f"/v1/symbols/S{k}").json()["bars_held"] == need
                except Exception as exc:  # collected: an assert in a thread would be lost
                    errors.append(f"client {k}: {exc!r}")

        threads = [threading.Thread(target=one_client, args=(k,)) for k in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert len(answers) == clients and all(len(a) == requests for a in answers.values())
    assert all(a == answers[0] for a in answers.values())  # the same bars give the same decisions


def test_the_requests_the_mt5_ea_sends_get_the_decisions_predict_gives(trained_run, tmp_path):
    with server(trained_run["run"], tmp_path / "state", "--token", "ea-token") as (client, _):
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "mt5" / "send_like_ea.py"), str(trained_run["run"]),
             "--data", str(trained_run["data"]["AAA"]), "--symbol", "AAA", "--url", f"{client.base_url}/v1/bars",
             "--token", "ea-token", "--digits", "5", "--bars", "40"], cwd=ROOT, capture_output=True, text=True,
            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "41 posts" in result.stdout and "0 disagreement(s)" in result.stdout


def test_the_ea_body_is_the_mql5_format_byte_for_byte():
    sys.path.insert(0, str(ROOT / "examples" / "mt5"))
    from send_like_ea import body_json, parse_position

    bar = {"time": 1700000000, "open": 1.0712345, "high": 1.08, "low": 1.07, "close": 1.075, "volume": 1234}
    assert body_json("EURUSD", [bar, dict(bar, time=1700003600)], 5) == (
        b'{"symbol":"EURUSD","bars":[{"time":1700000000,"open":1.07123,"high":1.08000,"low":1.07000,'
        b'"close":1.07500,"volume":1234},{"time":1700003600,"open":1.07123,"high":1.08000,"low":1.07000,'
        b'"close":1.07500,"volume":1234}]}')
    assert parse_position('{"symbol":"A","time":"t","position":-1.0,"probabilities":[1,0,0]}') == -1.0
    assert parse_position('{"symbol":"A","time":"t","position": null,"probabilities":null}') is None
