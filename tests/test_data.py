"""Tests for signals.data: formats, validation errors and repairs (splits: tests/test_splits.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.data import FORMATS, Bars, DataError, detect_format, load_bars

DATA = Path(__file__).resolve().parent.parent / "data"

# Three valid bars used by most format tests: (timestamp, open, high, low, close, volume).
TIMES = ["2020-01-01 00:00:00", "2020-01-02 00:00:00", "2020-01-03 00:00:00"]
OPEN, HIGH, LOW, CLOSE, VOLUME = [1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [0.5, 1.0, 1.5], [1.5, 2.0, 2.5], [10.0, 20.0, 30.0]
EXPECTED_NS = pd.to_datetime(TIMES).as_unit("ns").asi8

GOOD_CSV = (
    "Date,Open,High,Low,Close,Volume\n"
    "2020-01-01,1,2,0.5,1.5,10\n"
    "2020-01-02,1.5,2.5,1,2,20\n"
    "2020-01-03,2,3,1.5,2.5,30\n"
)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def replace_line(text: str, line_no: int, new: str) -> str:
    lines = text.splitlines()
    lines[line_no - 1] = new
    return "\n".join(lines) + "\n"


def assert_standard_bars(bars: Bars) -> None:
    np.testing.assert_array_equal(bars.timestamps, EXPECTED_NS)
    for name, expected in zip(("open", "high", "low", "close", "volume"), (OPEN, HIGH, LOW, CLOSE, VOLUME)):
        array = getattr(bars, name)
        assert array.dtype == np.float64 and array.flags.c_contiguous
        np.testing.assert_array_equal(array, expected)


# --------------------------------------------------------------------------- bundled files


@pytest.mark.parametrize(
    "name, n_bars, fmt, first_ns",
    [
        ("FOREX_EURUSD_1H_ASK.csv", 6225, "dayfirst", pd.Timestamp("2017-01-01 22:00").value),
        ("STOCKS_GOOGL.csv", 2335, "plain", pd.Timestamp("2009-05-22").value),
    ],
)
def test_bundled_files_load(name: str, n_bars: int, fmt: str, first_ns: int) -> None:
    path = DATA / name
    assert detect_format(path) == fmt
    bars = load_bars(path, min_bars=n_bars)
    assert len(bars) == n_bars
    assert bars.symbol == Path(name).stem
    assert bars.timestamps.dtype == np.int64 and bars.timestamps[0] == first_ns
    assert np.all(np.diff(bars.timestamps) > 0)
    assert dict(bars.repairs) == {"rows_sorted": 0, "duplicate_rows_dropped": 0}


def test_googl_uses_close_not_adj_close(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close,Adj Close,Volume\n" + "".join(
        f"{t[:10]},{o},{h},{lo},{c},{c / 2},{v}\n" for t, o, h, lo, c, v in zip(TIMES, OPEN, HIGH, LOW, CLOSE, VOLUME)
    )
    assert_standard_bars(load_bars(write(tmp_path, "adj.csv", text)))


# --------------------------------------------------------------------------- formats


def plain_text(header: str, times: list[str] = TIMES, sep: str = ",") -> str:
    rows = [sep.join(map(str, r)) for r in zip(times, OPEN, HIGH, LOW, CLOSE, VOLUME)]
    return header + "\n" + "\n".join(rows) + "\n"


DAYFIRST_TIMES = ["01.01.2020 00:00:00.000", "02.01.2020 00:00:00.000", "03.01.2020 00:00:00.000"]
MT5_HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"


def mt5_text(vol: list[float], tickvol: list[float], with_time: bool = True) -> str:
    header = MT5_HEADER if with_time else MT5_HEADER.replace("<TIME>\t", "")
    rows = []
    for t, o, h, lo, c, tv, v in zip(TIMES, OPEN, HIGH, LOW, CLOSE, tickvol, vol):
        stamp = [t[:10].replace("-", "."), t[11:]] if with_time else [t[:10].replace("-", ".")]
        rows.append("\t".join([*stamp, *map(str, (o, h, lo, c, tv, v, 2))]))
    return header + "\n" + "\n".join(rows) + "\n"


FORMAT_CASES = {
    "plain-lower": ("a.csv", plain_text("date,open,high,low,close,volume"), "plain"),
    "plain-upper": ("b.csv", plain_text("DATE,OPEN,HIGH,LOW,CLOSE,VOLUME"), "plain"),
    "plain-timestamp": ("c.csv", plain_text("Timestamp,Open,High,Low,Close,Volume"), "plain"),
    "plain-semicolon": ("d.csv", plain_text("Datetime;Open;High;Low;Close;Volume", sep=";"), "plain"),
    "dayfirst": ("e.csv", plain_text("Time,Open,High,Low,Close,Volume", DAYFIRST_TIMES), "dayfirst"),
    "dayfirst-gmt": ("f.csv", plain_text("Gmt time,Open,High,Low,Close,Volume", DAYFIRST_TIMES), "dayfirst"),
    "mt5-tickvol": ("g.csv", mt5_text([0, 0, 0], VOLUME), "mt5"),
    "mt5-vol": ("h.csv", mt5_text(VOLUME, [7, 8, 9]), "mt5"),
    "mt5-daily": ("i.csv", mt5_text([0, 0, 0], VOLUME, with_time=False), "mt5"),
}


@pytest.mark.parametrize("case", FORMAT_CASES)
def test_text_formats_detected_and_loaded(tmp_path: Path, case: str) -> None:
    name, text, fmt = FORMAT_CASES[case]
    path = write(tmp_path, name, text)
    assert detect_format(path) == fmt
    assert_standard_bars(load_bars(path))
    assert_standard_bars(load_bars(path, fmt=fmt))


@pytest.mark.parametrize(
    "times, fmt",
    [
        (["01.02.2020 10:00", "02.02.2020 10:00", "03.02.2020 10:00"], "auto"),
        (["01/02/2020 10:00", "02/02/2020 10:00", "03/02/2020 10:00"], "dayfirst"),
        (["01-02-2020", "02-02-2020", "03-02-2020"], "dayfirst"),
    ],
)
def test_dayfirst_is_not_read_month_first(tmp_path: Path, times: list[str], fmt: str) -> None:
    path = write(tmp_path, "df.csv", plain_text("Time,Open,High,Low,Close,Volume", times))
    bars = load_bars(path, fmt=fmt)
    assert pd.Timestamp(bars.timestamps[0]) == pd.Timestamp(times[0][:2] + " Feb 2020 " + times[0][11:])


def test_ambiguous_slash_dates_are_not_guessed(tmp_path: Path) -> None:
    times = ["01/02/2020", "02/02/2020", "03/02/2020"]
    path = write(tmp_path, "us.csv", plain_text("Date,Open,High,Low,Close,Volume", times))
    assert detect_format(path) == "plain"
    with pytest.raises(DataError, match=r"us\.csv, line 2, column 'Date': unparseable .*fmt='dayfirst'"):
        load_bars(path)


def test_separate_date_and_time_columns(tmp_path: Path) -> None:
    rows = [f"{t[:10]},{t[11:]},{o},{h},{lo},{c},{v}"
            for t, o, h, lo, c, v in zip(TIMES, OPEN, HIGH, LOW, CLOSE, VOLUME)]
    path = write(tmp_path, "dt.csv", "Date,Time,Open,High,Low,Close,Volume\n" + "\n".join(rows) + "\n")
    assert_standard_bars(load_bars(path))


def standard_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"Open": OPEN, "High": HIGH, "Low": LOW, "Close": CLOSE, "Volume": VOLUME},
        index=pd.DatetimeIndex(pd.to_datetime(TIMES)),
    )


def test_unnamed_index_csv(tmp_path: Path) -> None:
    path = tmp_path / "idx.csv"
    standard_frame().to_csv(path)
    assert detect_format(path) == "index"
    assert_standard_bars(load_bars(path))


@pytest.mark.parametrize("layout", ["datetime-index", "date-column", "utc-index"])
def test_parquet(tmp_path: Path, layout: str) -> None:
    frame = standard_frame()
    if layout == "date-column":
        frame = frame.rename_axis("date").reset_index()
    elif layout == "utc-index":
        frame.index = frame.index.tz_localize("UTC")
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    assert detect_format(path) == "parquet"
    assert_standard_bars(load_bars(path))


@pytest.mark.parametrize("per_second", [1, 1000])
def test_unix_time_in_seconds_or_milliseconds(tmp_path: Path, per_second: int) -> None:
    epochs = [str(ns // 1_000_000_000 * per_second) for ns in EXPECTED_NS]
    path = write(tmp_path, "klines.csv", plain_text("timestamp,open,high,low,close,volume", epochs))
    assert detect_format(path) == "plain"
    assert_standard_bars(load_bars(path))


def test_unix_time_in_another_unit_than_the_first_rows_is_an_error(tmp_path: Path) -> None:
    epochs = ["1577836800", "1577923200000", "1578009600"]
    path = write(tmp_path, "mixed.csv", plain_text("timestamp,open,high,low,close,volume", epochs))
    with pytest.raises(DataError, match=r"line 3, column 'timestamp': unparseable timestamp '1577923200000'"):
        load_bars(path)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_file_without_volume_loads_with_zero_volume_and_says_so(tmp_path: Path, suffix: str) -> None:
    frame = standard_frame()
    path = tmp_path / f"prices.{suffix}"
    if suffix == "csv":
        frame.drop(columns="Volume").rename_axis("Date").to_csv(path)
    else:
        frame.drop(columns="Volume").to_parquet(path)
    bars = load_bars(path)
    np.testing.assert_array_equal(bars.volume, np.zeros(len(bars)))
    assert dict(bars.repairs) == {"rows_sorted": 0, "duplicate_rows_dropped": 0, "volume_absent_bars": len(bars)}
    with_zeros = tmp_path / f"zeros.{suffix}"
    if suffix == "csv":
        frame.assign(Volume=0.0).rename_axis("Date").to_csv(with_zeros)
    else:
        frame.assign(Volume=0.0).to_parquet(with_zeros)
    zeros = load_bars(with_zeros)
    for field in ("timestamps", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(bars, field), getattr(zeros, field))
    assert dict(zeros.repairs) == {"rows_sorted": 0, "duplicate_rows_dropped": 0}


def test_mt5_utf16_export(tmp_path: Path) -> None:
    path = write(tmp_path, "mt5.csv", mt5_text([0, 0, 0], VOLUME), encoding="utf-16")
    assert detect_format(path) == "mt5"
    assert_standard_bars(load_bars(path))


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    assert "auto" in FORMATS
    with pytest.raises(ValueError, match="unknown data format 'xls'"):
        load_bars(DATA / "STOCKS_GOOGL.csv", fmt="xls")
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_bars(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- bad input


def bad_line(new: str, line_no: int = 3) -> str:
    return replace_line(GOOD_CSV, line_no, new)


BAD_CASES = {
    "non-numeric": (bad_line("2020-01-02,1.5,2.5,1,abc,20"), r"line 3, column 'Close': non-numeric value 'abc'"),
    "infinite": (bad_line("2020-01-02,1.5,inf,1,2,20"), r"line 3, column 'High': non-numeric value 'inf'"),
    "empty-cell": (bad_line("2020-01-02,1.5,,1,2,20"), r"line 3, column 'High': empty or NaN cell"),
    "nan-cell": (bad_line("2020-01-02,1.5,2.5,1,2,NaN"), r"line 3, column 'Volume': empty or NaN cell"),
    "short-row": (bad_line("2020-01-02,1.5,2.5,1,2"), r"line 3, column 'Volume': empty or NaN cell"),
    "zero-price": (bad_line("2020-01-02,0,2.5,1,2,20"), r"line 3, column 'Open': price must be positive, got 0"),
    "negative-price": (bad_line("2020-01-02,1.5,2.5,-1,2,20"), r"line 3, column 'Low': price must be positive"),
    "high-below-low": (bad_line("2020-01-02,1.5,1,2,1.5,20"), r"line 3, column 'High': high 1 is below low 2"),
    "high-below-close": (bad_line("2020-01-02,1.5,2.5,1,3,20"), r"line 3, column 'High': high 2.5 is below .*close 3"),
    "low-above-open": (bad_line("2020-01-02,1.5,2.5,1.8,2,20"), r"line 3, column 'Low': low 1.8 is above open 1.5"),
    "negative-volume": (bad_line("2020-01-02,1.5,2.5,1,2,-5"), r"line 3, column 'Volume': negative volume -5"),
    "bad-timestamp": (bad_line("2020-13-45,1.5,2.5,1,2,20"),
                      r"line 3, column 'Date': unparseable timestamp '2020-13-45'"),
    "empty-timestamp": (bad_line(",1.5,2.5,1,2,20"), r"line 3, column 'Date': empty timestamp cell"),
    "conflicting-duplicate": (
        bad_line("2020-01-01,1.5,2.5,1,2,20"),
        r"line 3, column 'Date': duplicate timestamp 2020-01-01T00:00:00 \(also at line 2\) with different values",
    ),
    "missing-close": (
        "Date,Open,High,Low,Volume\n2020-01-01,1,2,0.5,1.5\n",
        r"missing column\(s\) close; found columns: Date, Open, High, Low, Volume",
    ),
    "missing-time": (
        "When,Open,High,Low,Close,Volume\n2020-01-01,1,2,0.5,1.5,1\n",
        r"missing column\(s\) datetime/timestamp/date/time/.*found columns: When, Open",
    ),
    "blank-line-keeps-numbering": (
        GOOD_CSV.replace("2020-01-02,", "\n2020-01-02,").replace(",2.5,1,2,20", ",2.5,1,x,20"),
        r"line 4, column 'Close': non-numeric value 'x'",
    ),
    "two-bad-rows": (
        GOOD_CSV.replace(",1.5,10", ",bad,10").replace(",2,20", ",bad,20"),
        r"line 2, column 'Close': non-numeric value 'bad' \(1 more lines like this\)",
    ),
    "extra-field": (bad_line("2020-01-02,1.5,2.5,1,2,20,99"), r"line 3, saw 7"),
    "header-only": ("Date,Open,High,Low,Close,Volume\n", r"no data rows"),
    "dayfirst-bad-time": (
        plain_text("Time,Open,High,Low,Close,Volume", ["01.01.2020 10:00", "32.01.2020 10:00", "03.01.2020 10:00"]),
        r"line 3, column 'Time': unparseable timestamp '32.01.2020 10:00'",
    ),
    "mt5-bad-price": (
        replace_line(mt5_text([0, 0, 0], VOLUME), 4, "2020.01.03\t00:00:00\t2\t3\t1.5\t?\t30\t0\t2"),
        r"line 4, column '<CLOSE>': non-numeric value '\?'",
    ),
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_names_file_line_and_column(tmp_path: Path, case: str) -> None:
    text, pattern = BAD_CASES[case]
    path = write(tmp_path, f"bad_{case}.csv", text)
    with pytest.raises(DataError, match=re.escape(path.name) + ".*" + pattern):
        load_bars(path)


def test_bad_parquet_names_row(tmp_path: Path) -> None:
    frame = standard_frame()
    frame.iloc[1, frame.columns.get_loc("Low")] = np.nan
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError, match=r"bad\.parquet, row 2, column 'Low': empty or NaN cell"):
        load_bars(path)


def test_too_few_bars(tmp_path: Path) -> None:
    path = write(tmp_path, "short.csv", GOOD_CSV)
    assert len(load_bars(path, min_bars=3)) == 3
    with pytest.raises(DataError, match=r"short\.csv: too few bars: 3 in the file, but 200 are needed"):
        load_bars(path, min_bars=200)


# --------------------------------------------------------------------------- repairs


@pytest.mark.parametrize(
    "order, rows_sorted",
    [([0, 1, 2], 0), ([2, 1, 0], 2), ([1, 2, 0], 1), ([0, 2, 1], 1)],
)
def test_unsorted_rows_are_sorted_and_counted(tmp_path: Path, order: list[int], rows_sorted: int) -> None:
    lines = GOOD_CSV.splitlines()
    text = "\n".join([lines[0]] + [lines[1 + i] for i in order]) + "\n"
    bars = load_bars(write(tmp_path, "unsorted.csv", text))
    assert_standard_bars(bars)
    assert dict(bars.repairs) == {"rows_sorted": rows_sorted, "duplicate_rows_dropped": 0}


@pytest.mark.parametrize("copies", [1, 3])
def test_exact_duplicates_dropped_and_counted(tmp_path: Path, copies: int) -> None:
    lines = GOOD_CSV.splitlines()
    text = "\n".join(lines + [lines[2]] * copies) + "\n"  # duplicates also arrive out of order
    bars = load_bars(write(tmp_path, "dups.csv", text))
    assert_standard_bars(bars)
    assert dict(bars.repairs) == {"rows_sorted": copies, "duplicate_rows_dropped": copies}


def test_bars_are_frozen() -> None:
    path = DATA / "STOCKS_GOOGL.csv"
    bars = load_bars(path)
    with pytest.raises(AttributeError):
        bars.symbol = "X"  # type: ignore[misc]
    with pytest.raises(TypeError):
        bars.repairs["rows_sorted"] = 1  # type: ignore[index]
