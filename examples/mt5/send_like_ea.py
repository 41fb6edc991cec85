"""Send `trader.serve` byte for byte the requests RlSignalTrader.mq5 sends, and check the answers.

    python examples/mt5/send_like_ea.py RUN_DIR --data FILE --symbol NAME [--url URL] [--token T]
        [--digits 5] [--history 3000] [--bars 200]

The Expert Advisor itself cannot be run here (MetaTrader 5 is a Windows terminal with a broker
connection, and none is available where this project is built and tested); this script is how its
side of the protocol is tested. It builds the bodies exactly as the EA's `BodyJson`/`BarJson` do: no
spaces, `time` as Unix seconds (`(long)rates[i].time`), prices with `DoubleToString(x, _Digits)`
(fixed decimals), `volume` as the integer tick volume. It posts with the EA's headers (its
`Content-Type` and, with a token, `Authorization`; MetaTrader adds its own User-Agent and the like):

1. the first post: the last `--history` bars before the streamed ones (as `CopyRates(_Symbol, _Period,
   1, InpHistoryBars, rates)`), oldest first;
2. then one post per closed bar, `--bars` of them (as `CopyRates` from the last sent time + 1).

Every answer must be HTTP 200 with a position the EA can parse (`ParsePosition`: the number after
`"position":`), and equal to `python -m trader.predict RUN_DIR --all` on the same bars as the EA
rounded them (written to a temporary CSV). Exit status 0 when all agree.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def double_to_string(value: float, digits: int) -> str:
    """MQL5 DoubleToString(value, digits): fixed-point, `digits` decimals, rounded half away from zero
    (Python's f-format rounds the binary value, which agrees except for exact decimal ties)."""
    return f"{value:.{digits}f}"


def bar_json(bar: dict, digits: int) -> str:
    """The EA's BarJson."""
    return ('{"time":%d,"open":%s,"high":%s,"low":%s,"close":%s,"volume":%d}'
            % (bar["time"], *(double_to_string(bar[f], digits) for f in ("open", "high", "low", "close")),
               bar["volume"]))


def body_json(symbol: str, bars: list[dict], digits: int) -> bytes:
    """The EA's BodyJson, as the UTF-8 bytes StringToCharArray(..., CP_UTF8) gives WebRequest."""
    return ('{"symbol":"' + symbol + '","bars":[' + ",".join(bar_json(b, digits) for b in bars) + "]}").encode()


def parse_position(answer: str) -> float | None:
    """The EA's ParsePosition: the number after "position":, None for null."""
    at = answer.find('"position":')
    if at < 0:
        return None
    rest = answer[at + 11:].lstrip()
    if rest.startswith("null"):
        return None
    return float(re.match(r"[-+0-9.eE]+", rest).group(0))


def post(url: str, body: bytes, token: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def terminal_bars(path: str, digits: int) -> list[dict]:
    """The file's bars as the terminal holds them: prices at the symbol's digits, integer tick volume."""
    from signals.data import load_bars

    bars = load_bars(path)
    out = []
    for t, o, h, lo, c, v in zip(bars.timestamps.tolist(), bars.open.tolist(), bars.high.tolist(),
                                 bars.low.tolist(), bars.close.tolist(), bars.volume.tolist()):
        prices = [float(double_to_string(x, digits)) for x in (o, h, lo, c)]
        out.append({"time": t // 10**9, "open": prices[0], "high": max(prices), "low": min(prices),
                    "close": prices[3], "volume": round(v)})
    return out


def expected_positions(run_dir: str, bars: list[dict], digits: int) -> dict[str, float]:
    """predict --all on the EA's bars (its rounding included): {ISO time: position}."""
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "EA.csv", Path(tmp) / "replay.csv"
        with open(data, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Date", "Open", "High", "Low", "Close", "Volume"])
            for b in bars:
                when = str(np.datetime64(b["time"], "s")).replace("T", " ")
                writer.writerow([when, *(double_to_string(b[f], digits) for f in ("open", "high", "low", "close")),
                                 b["volume"]])
        subprocess.run([sys.executable, "-m", "trader.predict", run_dir, "--data", str(data), "--all",
                        "--out", str(out)], cwd=ROOT, check=True)
        with open(out) as fh:
            return {row["timestamp"]: float(row["position"]) for row in csv.DictReader(fh)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="the run the service serves (for the predict --all comparison)")
    parser.add_argument("--data", required=True, help="OHLCV file standing in for the terminal's history")
    parser.add_argument("--symbol", required=True, help="the symbol name the EA sends (InpSymbolName)")
    parser.add_argument("--url", default="http://127.0.0.1:8000/v1/bars", help="the EA's InpUrl")
    parser.add_argument("--token", help="the EA's InpToken")
    parser.add_argument("--digits", type=int, default=5, help="the symbol's _Digits (default 5)")
    parser.add_argument("--history", type=int, default=3000, help="the EA's InpHistoryBars (default 3000)")
    parser.add_argument("--bars", type=int, default=200, help="closed bars streamed one per post (default 200)")
    args = parser.parse_args(argv)

    bars = terminal_bars(args.data, args.digits)
    first = max(0, len(bars) - args.bars - args.history)
    history, stream = bars[first:len(bars) - args.bars], bars[len(bars) - args.bars:]
    expected = expected_positions(args.run_dir, bars[first:], args.digits)
    failures = 0
    for i, chunk in enumerate([history] + [[b] for b in stream]):
        status, answer = post(args.url, body_json(args.symbol, chunk, args.digits), args.token)
        position = parse_position(answer) if status == 200 else None
        when = str(np.datetime64(chunk[-1]["time"], "s"))
        want = expected.get(when)
        if status != 200 or position != want:
            failures += 1
            print(f"post {i} (bar {when}): HTTP {status}, position {position}, "
                  f"predict --all says {want}: {answer[:300]}")
    print(f"{1 + len(stream)} posts ({len(history)} history bars, then {len(stream)} one bar each): "
          f"{failures} disagreement(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
