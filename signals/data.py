"""Loading and validating OHLCV bar files (splitting them into train/validation/test: signals.splits).

Everything here is pure: a file goes in, an immutable :class:`Bars` comes out, or a
:class:`DataError` that names the file, the line (CSV, header = line 1) or row (Parquet,
1-based) and the column at fault.  Only three repairs are ever made, and all are counted in
:attr:`Bars.repairs`: unsorted rows are sorted, exact duplicate rows dropped, and a file without a
Volume column gets zero volume (``volume_absent_bars``; the build's log and manifest show it).

Supported layouts (``fmt``), detected by :func:`detect_format` when ``fmt="auto"``:

``plain``
    A named timestamp column (``Date``, ``Time``, ``Datetime``, ``Timestamp``, ``Gmt time``;
    or separate ``Date`` + ``Time`` columns) with ISO-8601 timestamps (or Unix time: 10 digits
    for seconds, 13 for milliseconds, as exchanges export it), then
    ``Open, High, Low, Close[, Adj Close][, Volume]`` in any case (no Volume: zero volume).
    ``Close`` is used, never ``Adj Close``: indicators, rewards and fills must all see the traded
    price.
``dayfirst``
    As ``plain`` but with day-first timestamps such as ``01.01.2017 22:00:00.000``
    (also ``/`` and ``-`` separators).  Parsed with explicit formats, never guessed;
    only dotted dates are auto-detected, since ``01/02/2017`` may be month-first.
``index``
    An unnamed first column of ISO timestamps, as written by ``DataFrame.to_csv()``.
``mt5``
    MetaTrader 5 export: tab separated, ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE>
    <TICKVOL> <VOL> <SPREAD>``, dates ``2017.04.19``; ``<TIME>`` may be absent (daily
    exports).  ``<VOL>`` is the volume unless it is all zero (forex), then ``<TICKVOL>``.
``parquet``
    A Parquet file with a datetime index or a timestamp column named as for ``plain``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

# Splitting lives in signals.splits; these two are re-exported for callers that import them from here.
from settings.choices import DATA_FORMATS
from signals.splits import MIN_SPLIT_BARS, split_bounds

__all__ = ["FORMATS", "MIN_SPLIT_BARS", "Bars", "DataError", "detect_format", "load_bars", "split_bounds"]

FORMATS = DATA_FORMATS

PRICE_FIELDS = ("open", "high", "low", "close")
FIELDS = PRICE_FIELDS + ("volume",)
NO_VOLUME = "(no volume column)"
"""The column name reported for a price-only file's volume: zeros, so the volume families give constant
features, which selection drops (a constant has no rank IC)."""

# Normalised header names (lower case, no spaces/underscores/<>) that hold a timestamp,
# in order of preference.  "gmttime" is what Dukascopy exports call it.
_TIME_NAMES = ("datetime", "timestamp", "date", "time", "gmttime", "localtime", "utctime")

_DAYFIRST_FORMATS = tuple(
    f"%d{sep}%m{sep}%Y{clock}"
    for sep in "./-"
    for clock in (" %H:%M:%S.%f", " %H:%M:%S", " %H:%M", "")
)
_MT5_FORMATS = ("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y.%m.%d")
_ISO = ("ISO8601",)
# Unix time by its digit count, as exchange exports write it (crypto klines: milliseconds).
_EPOCH_UNITS = {10: "s", 13: "ms"}
_EPOCH_RE = re.compile(r"^\d{10}(\d{3})?$")

_ISO_RE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}")
# Only dotted dates are auto-detected as day-first: nobody writes mm.dd.yyyy, whereas
# 01/02/2017 is month-first in US exports, so slashes need an explicit fmt="dayfirst".
_DAYFIRST_RE = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{4}")
_NA_TEXT = {"", "nan", "na", "n/a", "#n/a", "null", "none"}
_SNIFF_BYTES = 64 * 1024


class DataError(ValueError):
    """Bad market data.  The message names the file and, where it applies, the
    1-based line (CSV, header = line 1) or row (Parquet) and the column."""


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array equality makes == meaningless
class Bars:
    """Validated OHLCV bars of one instrument, strictly increasing in time."""

    symbol: str
    path: Path
    timestamps: np.ndarray  # int64 ns since epoch, UTC-naive
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    repairs: Mapping[str, int]

    def __post_init__(self) -> None:
        lengths = {len(getattr(self, name)) for name in ("timestamps",) + FIELDS}
        if len(lengths) != 1:
            raise ValueError(f"Bars arrays differ in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.timestamps)


MIRROR_SUFFIX = "~mirror"
"""Name of a symbol's mirror image: SYMBOL~mirror (signals.build, with data.mirror)."""


def mirror_bars(bars: Bars) -> Bars:
    """The bars' mirror image: every price p becomes close[0]**2 / p (so high and low swap places).

    Each return r becomes 1 / (1 + r) - 1: a rise of the market is a fall of its mirror, with the same
    volumes and times. Trained on both, an agent can learn what a feature says about the next move, but not
    which way the training period happened to drift.
    """
    pivot = float(bars.close[0]) ** 2
    return Bars(symbol=bars.symbol + MIRROR_SUFFIX, path=bars.path, timestamps=bars.timestamps,
                open=pivot / bars.open, high=pivot / bars.low, low=pivot / bars.high, close=pivot / bars.close,
                volume=bars.volume, repairs=bars.repairs)


@dataclass
class _Table:
    """Raw cells pulled out of a file, before any parsing or validation."""

    path: Path
    time: pd.Series  # raw timestamp cells (strings, or datetimes from Parquet)
    time_col: str  # the column name(s) as written in the file, for messages
    time_formats: tuple[str, ...]  # explicit formats to try, or ("ISO8601",)
    cells: dict[str, tuple[str, pd.Series]]  # field -> (file column name, raw cells)
    lines: np.ndarray  # line (CSV) or row (Parquet) number of every row
    unit: str  # "line" or "row"

    def fail(self, i: int | None, column: str | None, message: str, count: int = 1) -> DataError:
        """Build a DataError pointing at row ``i`` (positional) and ``column``."""
        where = [str(self.path)]
        if i is not None:
            where.append(f"{self.unit} {int(self.lines[i])}")
        if column is not None:
            where.append(f"column '{column}'")
        more = f" ({count - 1} more {self.unit}s like this)" if count > 1 else ""
        return DataError(f"{', '.join(where)}: {message}{more}")


# --------------------------------------------------------------------------- public API


def detect_format(path: Path) -> str:
    """Guess the layout of ``path``: one of ``FORMATS`` other than ``"auto"``.

    Parquet is recognised by suffix or magic bytes, MT5 by its ``<...>`` header, ``index``
    by an empty first header cell; otherwise the first timestamp cells are sniffed:
    ``dd.mm.yyyy``-style gives ``dayfirst``, anything else ``plain`` (whose loader then
    reports any cell it cannot parse).
    """
    path = Path(path)
    head = _read_head(path)
    if path.suffix.lower() in (".parquet", ".pq") or head.startswith(b"PAR1"):
        return "parquet"
    lines = [ln for ln in _decode(head).splitlines() if ln.strip()]
    if not lines:
        return "plain"
    header = _split(lines[0], _sniff_delimiter(lines[0]))
    if any(cell.strip().startswith("<") and cell.strip().endswith(">") for cell in header):
        return "mt5"
    if header[0].strip() in ("", "Unnamed: 0"):
        return "index"
    return _sniff_time_style(header, lines[1:20], _sniff_delimiter(lines[0]))


def load_bars(path: str | Path, fmt: str = "auto", min_bars: int = 0) -> Bars:
    """Load, validate and lightly repair one OHLCV file.

    ``fmt`` is one of ``FORMATS`` (see the module docstring); ``"auto"`` detects it.
    ``min_bars`` is the fewest bars the caller can use (longest lookback plus splits).
    Raises :class:`DataError` naming file, line/row and column for any bad input;
    the only repairs (sorting, dropping exact duplicates, zero volume where the file has no
    Volume column) are counted in ``repairs``.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if fmt == "auto":
        fmt = detect_format(path)
    table = _read_parquet(path) if fmt == "parquet" else _read_csv(path, fmt)
    if len(table.lines) == 0:
        raise DataError(f"{path}: no data rows")
    timestamps = _parse_times(table)
    values = {field: _parse_numbers(table, field) for field in FIELDS}
    _check_prices(table, values)
    timestamps, values, repairs = _sort_and_dedupe(table, timestamps, values)
    if table.cells["volume"][0] == NO_VOLUME:
        repairs["volume_absent_bars"] = len(timestamps)
    if len(timestamps) < min_bars:
        raise DataError(
            f"{path}: too few bars: {len(timestamps)} in the file, but {min_bars} are needed "
            "(longest indicator lookback plus train/validation/test splits)"
        )
    return Bars(
        symbol=path.stem,
        path=path,
        timestamps=np.ascontiguousarray(timestamps, dtype=np.int64),
        repairs=MappingProxyType(repairs),
        **{f: np.ascontiguousarray(v, dtype=np.float64) for f, v in values.items()},
    )


# --------------------------------------------------------------------------- reading


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(_SNIFF_BYTES)


def _encoding(head: bytes) -> str:
    """MT5 writes UTF-16 by default; everything else is UTF-8 (with or without BOM)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if len(head) > 1 and head[1:2] == b"\x00":  # BOM-less UTF-16-LE: ASCII with NULs between
        return "utf-16-le"
    return "utf-8-sig"


def _decode(head: bytes) -> str:
    return head.decode(_encoding(head), errors="replace")


def _sniff_delimiter(header_line: str) -> str:
    return max(("\t", ",", ";"), key=header_line.count)


def _split(line: str, delimiter: str) -> list[str]:
    return [cell.strip().strip('"') for cell in line.split(delimiter)]


def _norm(name: object) -> str:
    """Header name as compared: case-, space-, underscore- and <>-insensitive."""
    return re.sub(r"[\s_<>]", "", str(name)).lower()


def _sniff_time_style(header: list[str], rows: list[str], delimiter: str) -> str:
    """``dayfirst`` if the timestamp cells look like dd.mm.yyyy, else ``plain``."""
    names = [_norm(c) for c in header]
    col = next((names.index(n) for n in _TIME_NAMES if n in names), None)
    if col is None:
        return "plain"
    cells = [_split(r, delimiter) for r in rows]
    sample = [c[col] for c in cells if len(c) > col and c[col]]
    if sample and not any(_ISO_RE.match(s) for s in sample) and all(_DAYFIRST_RE.match(s) for s in sample):
        return "dayfirst"
    return "plain"


def _read_csv(path: Path, fmt: str) -> _Table:
    """Read a text file as strings, so that bad cells can be reported verbatim."""
    head = _read_head(path)
    delimiter = _sniff_delimiter(next(iter(_decode(head).splitlines()), ""))
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,  # keep "nan"/"" as text: we report them ourselves
            skip_blank_lines=False,  # keep line numbers aligned with the file
            encoding=_encoding(head),
            index_col=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot read as {fmt} CSV: {exc}") from exc
    lines = np.arange(len(frame), dtype=np.int64) + 2  # header is line 1
    blank = (frame.fillna("").apply(lambda col: col.str.strip()) == "").all(axis=1).to_numpy()
    frame, lines = frame.loc[~blank].reset_index(drop=True), lines[~blank]
    if fmt == "mt5":
        return _mt5_table(path, frame, lines)
    return _named_table(path, frame, lines, fmt)


def _find_columns(path: Path, frame: pd.DataFrame, fields: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Map each field to the file's column name; DataError listing what was found."""
    by_norm: dict[str, str] = {}
    for col in frame.columns:
        by_norm.setdefault(_norm(col), str(col))
    found, missing = {}, []
    for field, aliases in fields.items():
        match = next((by_norm[a] for a in aliases if a in by_norm), None)
        if match is None:
            missing.append(field if len(aliases) == 1 else "/".join(aliases))
        else:
            found[field] = match
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; found columns: "
            f"{', '.join(map(str, frame.columns))}"
        )
    return found


def _named_table(path: Path, frame: pd.DataFrame, lines: np.ndarray, fmt: str) -> _Table:
    """``plain``, ``dayfirst`` and ``index`` layouts."""
    fields: dict[str, tuple[str, ...]] = {f: (f,) for f in PRICE_FIELDS}  # volume is optional: _volume_cell
    if fmt != "index":
        fields = {"time": _TIME_NAMES, **fields}
    columns = _find_columns(path, frame, fields)  # one error listing everything missing
    names = {_norm(c): str(c) for c in frame.columns}
    if fmt == "index":
        time_col, time = "(unnamed first column)", frame.iloc[:, 0]
    elif "date" in names and "time" in names:  # separate date and clock columns
        time_col = f"{names['date']}+{names['time']}"
        time = frame[names["date"]].str.strip() + " " + frame[names["time"]].str.strip()
    else:
        time_col, time = columns["time"], frame[columns["time"]]
    formats = _DAYFIRST_FORMATS if fmt == "dayfirst" else _ISO
    cells = {f: (columns[f], frame[columns[f]]) for f in PRICE_FIELDS}
    cells["volume"] = _volume_cell(frame)
    return _Table(path, time, time_col, formats, cells, lines, "line")


def _volume_cell(frame: pd.DataFrame) -> tuple[str, pd.Series]:
    """The Volume column, or zeros under NO_VOLUME where a price-only file has none (counted in repairs)."""
    column = next((str(c) for c in frame.columns if _norm(c) == "volume"), None)
    if column is None:
        return NO_VOLUME, pd.Series(0.0, index=frame.index)
    return column, frame[column]


def _mt5_table(path: Path, frame: pd.DataFrame, lines: np.ndarray) -> _Table:
    """MetaTrader 5 export; <TIME> is optional, <VOL> falls back to <TICKVOL>."""
    fields = {"time": ("date",), **{f: (f,) for f in PRICE_FIELDS}}
    columns = _find_columns(path, frame, fields)
    names = {_norm(c): str(c) for c in frame.columns}
    time = frame[columns["time"]].str.strip()
    time_col = columns["time"]
    if "time" in names:
        time = time + " " + frame[names["time"]].str.strip()
        time_col += "+" + names["time"]
    volume_col = _mt5_volume_column(path, frame, names)
    cells = {f: (columns[f], frame[columns[f]]) for f in PRICE_FIELDS}
    cells["volume"] = (volume_col, frame[volume_col])
    return _Table(path, time, time_col, _MT5_FORMATS, cells, lines, "line")


def _mt5_volume_column(path: Path, frame: pd.DataFrame, names: dict[str, str]) -> str:
    """Real volume where the broker reports it; forex brokers leave <VOL> at zero."""
    vol, tick = names.get("vol"), names.get("tickvol")
    if vol is not None and (tick is None or (pd.to_numeric(frame[vol], errors="coerce") != 0).any()):
        return vol
    if tick is not None:
        return tick
    raise DataError(f"{path}: missing column <VOL> or <TICKVOL>; found columns: {', '.join(frame.columns)}")


def _read_parquet(path: Path) -> _Table:
    """Parquet: timestamps from a datetime index or a named timestamp column."""
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise DataError(f"{path}: cannot read as Parquet: {exc}") from exc
    if isinstance(frame.index, pd.DatetimeIndex):
        time_col = str(frame.index.name or "index")
        time = frame.index.to_series(index=pd.RangeIndex(len(frame)))
        frame = frame.reset_index(drop=True)
    else:
        frame = frame.reset_index(drop=True)
        time_col = _find_columns(path, frame, {"time": _TIME_NAMES})["time"]
        time = frame[time_col]
    columns = _find_columns(path, frame, {f: (f,) for f in PRICE_FIELDS})
    cells = {f: (columns[f], frame[columns[f]]) for f in PRICE_FIELDS}
    cells["volume"] = _volume_cell(frame)
    lines = np.arange(1, len(frame) + 1, dtype=np.int64)
    return _Table(path, time, time_col, _ISO, cells, lines, "row")


# --------------------------------------------------------------------------- parsing


def _is_missing(raw: pd.Series) -> np.ndarray:
    """Empty, NaN/None or NaN-like text cells."""
    text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip().str.lower()
    return (raw.isna() | text.isin(_NA_TEXT)).to_numpy()


def _parse_times(table: _Table) -> np.ndarray:
    """Timestamps as int64 ns, UTC-naive; DataError on the first empty/unparseable cell."""
    raw = table.time
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.Series(raw)
    else:
        text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
        parsed = _to_datetime(text, table.time_formats)
    missing = _is_missing(raw)
    _raise_first(table, missing, table.time_col, "empty timestamp cell")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        message = f"unparseable timestamp {raw.iloc[i]!r} (expected {_describe(table.time_formats)})"
        raise table.fail(i, table.time_col, message, int(bad.sum()))
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]").to_numpy().view(np.int64)


def _describe(formats: tuple[str, ...]) -> str:
    if formats == _ISO:
        return ("ISO 8601 such as 2017-01-31 22:00:00, or Unix time in seconds or milliseconds as in the first "
                "row; day-first dates need fmt='dayfirst'")
    if formats == _MT5_FORMATS:
        return "MT5 dates such as 2017.01.31 with times such as 22:00:00"
    return "day-first such as 31.01.2017 22:00:00.000, 31/01/2017 or 31-01-2017 22:00"


def _to_datetime(text: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    """Parse with the first explicit format that fits the first non-empty cell.

    Explicit formats only: letting pandas infer would read 01.02.2017 as January 2nd.
    """
    first = next((t for t in text if t), "")
    if formats == _ISO and _EPOCH_RE.match(first):
        unit = _EPOCH_UNITS[len(first)]  # every cell in the first one's unit; any other is unparseable
        numbers = pd.to_numeric(text.where(text.str.len() == len(first), ""), errors="coerce")
        return pd.to_datetime(numbers, unit=unit, errors="coerce", utc=True)
    if formats == _ISO:
        return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    for fmt in formats:
        if not pd.isna(pd.to_datetime(first, format=fmt, errors="coerce")):
            return pd.to_datetime(text, format=fmt, errors="coerce")
    return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")


def _parse_numbers(table: _Table, field: str) -> np.ndarray:
    """One OHLCV column as float64; DataError on empty, NaN, text or infinite cells."""
    column, raw = table.cells[field]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _raise_first(table, _is_missing(raw), column, "empty or NaN cell")
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise table.fail(i, column, f"non-numeric value {raw.iloc[i]!r}", int(bad.sum()))
    return values


def _raise_first(table: _Table, mask: np.ndarray, column: str, message: str) -> None:
    if mask.any():
        raise table.fail(int(np.argmax(mask)), column, message, int(mask.sum()))


def _check_prices(table: _Table, v: dict[str, np.ndarray]) -> None:
    """Reject impossible bars; a silent fix here would invent prices."""
    for field in PRICE_FIELDS:
        bad = v[field] <= 0
        if bad.any():
            i = int(np.argmax(bad))
            message = f"price must be positive, got {v[field][i]:.10g}"
            raise table.fail(i, table.cells[field][0], message, int(bad.sum()))
    checks = (
        ("high", v["high"] < v["low"], "high {high:.10g} is below low {low:.10g}"),
        ("high", v["high"] < np.maximum(v["open"], v["close"]),
         "high {high:.10g} is below open {open:.10g} or close {close:.10g}"),
        ("low", v["low"] > np.minimum(v["open"], v["close"]),
         "low {low:.10g} is above open {open:.10g} or close {close:.10g}"),
        ("volume", v["volume"] < 0, "negative volume {volume:.10g}"),
    )
    for field, bad, template in checks:
        if bad.any():
            i = int(np.argmax(bad))
            message = template.format(**{f: v[f][i] for f in FIELDS})
            raise table.fail(i, table.cells[field][0], message, int(bad.sum()))


def _sort_and_dedupe(
    table: _Table, ts: np.ndarray, values: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, int]]:
    """Sort by time (stable) and drop exact duplicates; conflicting duplicates are errors.

    ``rows_sorted`` counts rows that came earlier in time than some row above them.
    """
    rows_sorted = int(np.count_nonzero(ts < np.maximum.accumulate(ts)))
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    values = {f: a[order] for f, a in values.items()}
    same_time = ts[1:] == ts[:-1]
    same_values = np.logical_and.reduce([a[1:] == a[:-1] for a in values.values()])
    conflict = same_time & ~same_values
    if conflict.any():
        k = int(np.argmax(conflict))
        first, second = sorted((int(table.lines[order[k]]), int(table.lines[order[k + 1]])))
        stamp = pd.Timestamp(ts[k]).isoformat()
        raise DataError(
            f"{table.path}, {table.unit} {second}, column '{table.time_col}': duplicate timestamp "
            f"{stamp} (also at {table.unit} {first}) with different values"
        )
    keep = np.concatenate(([True], ~same_time))
    repairs = {"rows_sorted": rows_sorted, "duplicate_rows_dropped": int(np.count_nonzero(~keep))}
    return ts[keep], {f: a[keep] for f, a in values.items()}, repairs
