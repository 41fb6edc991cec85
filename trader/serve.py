"""`python -m trader.serve RUN_DIR [--host 127.0.0.1] [--port 8000] [--state DIR] [--token T]`

An HTTP JSON service (FastAPI on uvicorn) that a trading terminal calls on each closed bar:

* `POST /v1/bars` `{"symbol": "EURUSD", "bars": [{"time", "open", "high", "low", "close", "volume"}, ...]}`
  appends the bars and answers `{"symbol", "time", "position", "probabilities", ...}` for the newest.
  `time` is Unix seconds (what MetaTrader's `datetime` holds) or ISO 8601 text. Every bar held after
  the warm-up is decided, as `python -m trader.predict --all` decides it, whether bars come one per
  request or many: the answer for a bar does not depend on how the bars were batched. Until
  `min_bars` bars are held the answer has `"position": null` and says how many are needed.
* `GET /v1/health`; `GET /v1/symbols/{symbol}` (bars held, the last decision); the OpenAPI page at
  `/docs`.

State: each symbol's last `min_bars` bars and its agent state, persisted in `STATE/<symbol>.jsonl`,
one line per accepted request, appended, flushed and fsynced before the answer is sent: a restart,
or a kill, loses nothing that was acknowledged (a torn last line, never acknowledged, is dropped). At
start-up each journal is compacted to one line (written beside it, fsynced, renamed over it).

Bad input (an unknown symbol where the run has a fixed symbol list, a timestamp out of order or
repeated, NaN, a non-positive price, high < low, open or close outside [low, high], a missing field, a
gap of more than `--max-gap` bars) gets a 4xx answer with the reason and changes no state.

It binds to 127.0.0.1 by default; binding elsewhere requires a bearer token (`--token` or
`TRADER_SERVE_TOKEN`), then checked on every request but `/v1/health`.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
import uvicorn
from starlette.concurrency import run_in_threadpool

from common.files import replace_durably
from signals.catalog import Ohlcv
from trader.agent import Agent, AgentError, AgentState, Decision, iso

TOKEN_ENV = "TRADER_SERVE_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_BARS_PER_REQUEST = 100_000
MIN_DEFAULT_GAP = 5
"""Without --max-gap, a symbol may skip max(this, twice the largest gap of its training data) bars."""
NS = 1_000_000_000


class Refused(Exception):
    """Bad input: HTTP `status` with `reason`; nothing was changed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


# ---------------------------------------------------------------- one symbol's book

@dataclass
class Book:
    """A symbol's last bars (time ns, open, high, low, close, volume), its agent state and last decision."""

    symbol: str
    keep: int
    bars: deque = field(default_factory=deque)
    state: AgentState | None = None
    last: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.bars = deque(self.bars, maxlen=self.keep)

    @property
    def last_time(self) -> int | None:
        return self.bars[-1][0] if self.bars else None

    def bar_seconds(self) -> float | None:
        if len(self.bars) < 2:
            return None
        return float(np.median(np.diff([b[0] for b in self.bars]))) / NS


def parse_time(value: Any, index: int) -> int:
    """Unix seconds (int) or ISO 8601 text as int64 ns."""
    if isinstance(value, bool):
        raise Refused(422, f"bars[{index}].time: {value!r} is not a time")
    if isinstance(value, int):
        return value * NS
    try:
        return int(np.datetime64(str(value), "ns").astype(np.int64))
    except ValueError:
        raise Refused(422, f"bars[{index}].time: {value!r} is neither Unix seconds nor ISO 8601 text") from None


def check_bar(bar: Any, index: int) -> tuple[int, float, float, float, float, float]:
    """One bar as a tuple, or Refused naming the field (the checks signals.data applies to files)."""
    if not isinstance(bar, dict):
        raise Refused(422, f"bars[{index}] is not an object")
    missing = [f for f in ("time", "open", "high", "low", "close", "volume") if f not in bar]
    if missing:
        raise Refused(422, f"bars[{index}]: missing field(s) {', '.join(missing)}")
    values = {}
    for name in ("open", "high", "low", "close", "volume"):
        v = bar[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise Refused(422, f"bars[{index}].{name}: {v!r} is not a finite number")
        values[name] = float(v)
    o, h, lo, c, vol = (values[n] for n in ("open", "high", "low", "close", "volume"))
    if min(o, h, lo, c) <= 0:
        raise Refused(422, f"bars[{index}]: prices must be positive (open {o}, high {h}, low {lo}, close {c})")
    if h < lo:
        raise Refused(422, f"bars[{index}]: high {h} is below low {lo}")
    if not lo <= o <= h or not lo <= c <= h:
        raise Refused(422, f"bars[{index}]: open {o} or close {c} is outside [low {lo}, high {h}]")
    if vol < 0:
        raise Refused(422, f"bars[{index}]: negative volume {vol}")
    return parse_time(bar["time"], index), o, h, lo, c, vol


def check_sequence(book: Book, bars: list[tuple], max_gap: float, bar_seconds: float | None) -> None:
    """Times strictly after the last held bar and increasing; no gap above `max_gap` bars."""
    previous = book.last_time
    for i, bar in enumerate(bars):
        if previous is not None:
            if bar[0] == previous:
                raise Refused(409, f"bars[{i}].time {iso(bar[0])} repeats the previous bar's time")
            if bar[0] < previous:
                raise Refused(409, f"bars[{i}].time {iso(bar[0])} is before the previous bar ({iso(previous)})")
            if bar_seconds and (bar[0] - previous) / NS / bar_seconds > max_gap:
                raise Refused(409, f"bars[{i}].time {iso(bar[0])} is {(bar[0] - previous) / NS / bar_seconds:.0f} "
                                   f"bars after the previous bar ({iso(previous)}): more than the {max_gap:g} allowed")
        previous = bar[0]


# ---------------------------------------------------------------- the service

class Service:
    """The books of every symbol, their journal files and the agent that decides on them."""

    def __init__(self, agent: Agent, state_dir: Path, *, max_gap: float | None = None,
                 any_symbol: bool = False) -> None:
        self.agent, self.state_dir = agent, Path(state_dir)
        self.max_gap, self.any_symbol = max_gap, any_symbol
        self.books: dict[str, Book] = {}
        self._lock = threading.Lock()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.state_dir.glob("*.jsonl")):
            self.books[path.stem] = self._restore(path)

    # ------------------------------------------------------------ persistence

    def _journal(self, symbol: str) -> Path:
        return self.state_dir / f"{symbol}.jsonl"

    def _restore(self, path: Path) -> Book:
        """Replay a journal; a torn last line (killed mid-write, so never acknowledged) is cut off."""
        book = Book(path.stem, keep=self.agent.min_bars)
        data = path.read_bytes()
        good = data[:data.rfind(b"\n") + 1]
        if len(good) != len(data):
            with open(path, "r+b") as fh:
                fh.truncate(len(good))
                os.fsync(fh.fileno())
        lines = good.splitlines()
        for line in lines:
            record = json.loads(line)
            book.bars.extend(tuple(b) for b in record["bars"])
            book.state = AgentState(**record["state"]) if record["state"] else None
            book.last = record["last"]
        if len(lines) > 1:  # compact: one line holding what the book keeps, so the file stays bounded
            self._rewrite(path, {"bars": [list(b) for b in book.bars], "state": book.state and book.state.__dict__,
                                 "last": book.last})
        return book

    @staticmethod
    def _rewrite(path: Path, record: dict[str, Any]) -> None:
        """Replace the journal by one record: written and fsynced beside it, then renamed over it."""
        replace_durably(path, json.dumps(record).encode() + b"\n")

    def _append(self, symbol: str, record: dict[str, Any]) -> None:
        """One line, flushed and fsynced; on failure the file is cut back to what it was."""
        path = self._journal(symbol)
        with open(path, "ab") as fh:
            size = fh.tell()
            try:
                fh.write(json.dumps(record).encode() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            except BaseException:
                fh.truncate(size)
                raise

    # ------------------------------------------------------------ requests

    def book(self, symbol: str, create: bool = False) -> Book:
        with self._lock:
            if symbol not in self.books:
                known = list(self.agent.spec.symbols)
                if not self.any_symbol and symbol not in known:
                    raise Refused(404, f"unknown symbol {symbol!r}: this run trades {', '.join(known)} "
                                       f"(start the service with --any-symbol to accept others)")
                if not create:
                    return Book(symbol, keep=self.agent.min_bars)
                self.books[symbol] = Book(symbol, keep=self.agent.min_bars)
            return self.books[symbol]

    def _gap(self, book: Book) -> tuple[float, float | None]:
        info = self.agent.spec.symbols.get(book.symbol)
        bar_seconds = info["bar_seconds"] if info else book.bar_seconds()
        if self.max_gap is not None:
            return self.max_gap, bar_seconds
        return max(MIN_DEFAULT_GAP, 2 * (info["max_gap_bars"] if info else 1)), bar_seconds

    def post(self, body: Any) -> dict[str, Any]:
        """Check the request whole, then decide, journal and answer; Refused leaves everything as it was."""
        if not isinstance(body, dict) or not isinstance(body.get("symbol"), str) or not body["symbol"].strip():
            raise Refused(422, "the body must be an object with a non-empty string 'symbol'")
        raw = body.get("bars")
        if not isinstance(raw, list) or not raw:
            raise Refused(422, "'bars' must be a non-empty list of bars")
        if len(raw) > MAX_BARS_PER_REQUEST:
            raise Refused(413, f"{len(raw)} bars in one request; at most {MAX_BARS_PER_REQUEST}")
        symbol = body["symbol"].strip()
        if not all(ch.isalnum() or ch in "._-" for ch in symbol):
            raise Refused(422, f"symbol {symbol!r}: letters, digits and . _ - only")
        bars = [check_bar(bar, i) for i, bar in enumerate(raw)]
        book = self.book(symbol, create=True)  # an empty book in memory: invisible until bars are accepted
        with book.lock:
            check_sequence(book, bars, *self._gap(book))
            state, last = self._decide(book, bars)
            self._append(symbol, {"bars": [list(b) for b in bars], "state": state and state.__dict__, "last": last})
            book.bars.extend(bars)
            book.state, book.last = state, last
            return self._answer(book)

    def _decide(self, book: Book, bars: list[tuple]) -> tuple[AgentState | None, dict[str, Any] | None]:
        """Every new bar with enough history decided in turn, as predict --all does; the state after the newest."""
        rows = np.asarray(list(book.bars) + bars, dtype=np.float64)
        times = rows[:, 0].astype(np.int64)
        ohlcv = Ohlcv(*(np.ascontiguousarray(rows[:, i]) for i in range(1, 6)))
        need, state, last = self.agent.min_bars, book.state, book.last
        for end in range(max(len(book.bars) + 1, need), len(rows) + 1):
            window = Ohlcv(*(a[end - need:end] for a in ohlcv))
            decision, state = self.agent.step(times[end - need:end], window, state)
            last = decision_json(decision)
        return state, last

    def _answer(self, book: Book) -> dict[str, Any]:
        held = len(book.bars)
        newest = iso(book.last_time) if book.last_time is not None else None
        if book.last is None or book.last["time"] != newest:
            return {"symbol": book.symbol, "time": newest, "position": None, "probabilities": None,
                    "bars_held": held, "bars_needed": self.agent.min_bars}
        return {"symbol": book.symbol, **book.last, "bars_held": held, "bars_needed": self.agent.min_bars}

    def describe(self, symbol: str) -> dict[str, Any]:
        book = self.book(symbol)
        with book.lock:
            return {"symbol": symbol, "bars_held": len(book.bars), "bars_needed": self.agent.min_bars,
                    "first_time": iso(book.bars[0][0]) if book.bars else None,
                    "last_time": iso(book.last_time) if book.last_time is not None else None,
                    "position": book.state.position if book.state else None, "last_decision": book.last}


def decision_json(decision: Decision) -> dict[str, Any]:
    return {"time": decision.iso_time, "position": decision.position,
            "probabilities": None if decision.probabilities is None else list(decision.probabilities)}


# ---------------------------------------------------------------- HTTP

_NUMBER = {"type": "number"}
BARS_OPENAPI = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["symbol", "bars"], "properties": {
        "symbol": {"type": "string", "example": "AAA"},
        "bars": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["time", "open", "high", "low", "close", "volume"], "properties": {
                "time": {"oneOf": [{"type": "integer", "description": "Unix seconds"},
                                   {"type": "string", "description": "ISO 8601"}], "example": 1700000000},
                "open": _NUMBER, "high": _NUMBER, "low": _NUMBER, "close": _NUMBER, "volume": _NUMBER}}}}}}}}}
"""The request body, for the OpenAPI page (the handler reads and checks the JSON itself)."""

def create_app(service: Service, token: str | None = None) -> FastAPI:
    """The FastAPI application over a Service; `token` (when set) is required as a bearer token."""
    agent = service.agent
    app = FastAPI(title="rl-signal-trader agent", version="1",
                  description=f"Decisions of the agent in {agent.run_dir} ({agent.selection}). "
                              f"Each decision needs {agent.min_bars} bars.")

    def authorised(authorization: str | None = Header(default=None)) -> None:
        if token is not None and not hmac.compare_digest(authorization or "", f"Bearer {token}"):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Refused)
    def refused(_: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": exc.reason})

    @app.post("/v1/bars", dependencies=[Depends(authorised)], openapi_extra=BARS_OPENAPI)
    async def post_bars(request: Request) -> dict[str, Any]:
        """Append closed bars of one symbol; the decision for the newest."""
        try:  # read here, whatever the content type: a terminal may not send one
            body = json.loads(await request.body())
        except ValueError as exc:
            raise Refused(422, f"the body is not JSON: {exc}") from None
        return await run_in_threadpool(service.post, body)

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "bars_needed": agent.min_bars}

    @app.get("/v1/symbols/{symbol}", dependencies=[Depends(authorised)])
    def symbol_info(symbol: str) -> dict[str, Any]:
        """Bars held and the last decision of one symbol."""
        return service.describe(symbol)

    return app


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m trader.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run directory written by python -m trader.train")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--state", type=Path, help="folder of the symbols' journals (default RUN_DIR/serve_state)")
    parser.add_argument("--token", help=f"bearer token required on requests (default: ${TOKEN_ENV})")
    parser.add_argument("--max-gap", type=float,
                        help=f"most bars a symbol may skip (default: max({MIN_DEFAULT_GAP}, twice its largest gap "
                             f"in training))")
    parser.add_argument("--any-symbol", action="store_true", help="accept symbols the run was not trained on")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.host not in LOOPBACK and token is None:
        print(f"error: --host {args.host} is reachable from other machines: give a bearer token with --token "
              f"or ${TOKEN_ENV}", file=sys.stderr)
        return 2
    try:
        import torch  # here, not at the top: a bad --host or token is refused before torch's 2.5 s import

        torch.set_num_threads(1)  # one decision is a tiny MLP: threads only contend with the requests'
        agent = Agent.load(args.run_dir)
        service = Service(agent, args.state or Path(args.run_dir) / "serve_state", max_gap=args.max_gap,
                          any_symbol=args.any_symbol)
    except (AgentError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"trader.serve: {args.run_dir} ({agent.selection}; decisions need {agent.min_bars} bars) on "
          f"http://{args.host}:{args.port} (API at /docs), state in {service.state_dir}, "
          f"{len(service.books)} symbol(s) restored", flush=True)
    uvicorn.run(create_app(service, token), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
