"""Property-based tests (hypothesis) of the raw readers and the date parser.

- CSV: any table written by Python's csv module reads back with the same values, upper-
  cased names and the line each record starts on; any text reads exactly as the csv
  module (the reference) parses it, or is an InputError when its structure is broken;
  any bytes read or raise InputError, nothing else.
- XPT: frames written by cdisc.xpt.write_xpt read back equal; a truncated or corrupted
  file is an InputError or, when only data values were hit, a frame of the same shape.
- Dates: iso8601_dtc agrees with a small reference parser built on datetime.strptime,
  or flags the value; it never raises.

The whole file runs in well under 20 s: examples are small and few (``max_examples``).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import string

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cdisc.errors import InputError
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.rawio import FILE_COL, ROW_COL, _csv_shape, _csv_shape_bytes, read_raw
from cdisc.xpt import write_xpt
from cdisc.sdtm.functions import iso8601_dtc

FAST = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def read_or_error(path):
    """read_raw's frame, or the InputError; any other exception fails the test."""
    try:
        return read_raw(path)
    except InputError as exc:
        return exc


# -------------------------------------------------------------------------------- CSV

# any character a site could type or an export could hold, except NUL (an error on
# purpose) and lone surrogates (not encodable as UTF-8)
CHAR = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
CSVISH = st.sampled_from(list('ab,"\r\n é\t;') + ["\r\n", '""', "x,y"])
VALUE = st.one_of(st.just(""), st.text(CHAR, max_size=8), st.lists(CSVISH, max_size=6).map("".join))
NAME = st.text(CHAR, min_size=1, max_size=8).filter(lambda s: s.strip() != "")


def line_breaks(text: str) -> int:
    """Line breaks as an editor counts them (\\r\\n, \\r or \\n), for the reference."""
    return len(re.findall(r"\r\n|\r|\n", text))


@st.composite
def tables(draw):
    names = draw(st.lists(NAME, min_size=1, max_size=5, unique_by=lambda s: s.strip().upper()))
    assume(not names[0].startswith("\ufeff"))          # would read as a byte order mark
    rows = draw(st.lists(st.lists(VALUE, min_size=len(names), max_size=len(names)), max_size=6))
    blank_lines = draw(st.lists(st.integers(0, 2), min_size=len(rows), max_size=len(rows)))
    newline = draw(st.sampled_from(["\r\n", "\n"]))
    if any("\r" in v for r in [names, *rows] for v in r):
        newline = "\r\n"                # csv.writer quotes only the characters of its terminator
    bom = draw(st.booleans())
    return names, rows, blank_lines, newline, bom


@FAST
@given(tables())
@example((["A"], [[""], ["x"]], [1, 0], "\n", False))
@example((["A", "B"], [["a\rb", "c\r\nd"], ["", ""]], [0, 2], "\r\n", True))
def test_csv_written_by_the_csv_module_reads_back(tmp_path, table):
    names, rows, blank_lines, newline, bom = table
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(names)
    starts = []
    for row, blanks in zip(rows, blank_lines):
        out.write(newline * blanks)
        starts.append(1 + line_breaks(out.getvalue()))
        writer.writerow(row)
    p = tmp_path / "form.csv"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8"))
    df = read_raw(p)
    assert list(df.columns) == [n.strip().upper() for n in names] + [FILE_COL, ROW_COL]
    assert df.drop(columns=[FILE_COL, ROW_COL]).to_numpy().tolist() == [list(r) for r in rows]
    assert df[ROW_COL].tolist() == starts


def reference_csv(text: str):
    """What the csv module says the file holds: (names, rows, lines), or None when read_raw
    must refuse it (broken quoting, a record of another width, duplicate names, a value
    under an empty name, no header)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = []
    while True:
        start = reader.line_num + 1
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error:
            return None
        if rec:
            records.append((rec, start))
    if not records:
        return None
    header = records[0][0]
    m = len(header)
    if any(len(r) != m for r, _ in records[1:]):
        return None
    names = [h.strip().upper() for h in header]
    named = [n for n in names if n]
    if len(set(named)) != len(named):
        return None
    if any(not n and r[j].strip() for r, _ in records[1:] for j, n in enumerate(names)):
        return None
    keep = [j for j, n in enumerate(names) if n]
    return ([names[j] for j in keep], [[r[j] for j in keep] for r, _ in records[1:]],
            [s for _, s in records[1:]])


CSV_TEXT = st.text(st.sampled_from(list('ab,"\r\n é') + [" ", "A"]), max_size=40)


@settings(max_examples=500, deadline=None, database=None)
@given(CSV_TEXT)
@example('A,B\n1,"2\n3"\n\n4,5\n')
@example('A\n5" tall\n""\n')
def test_csv_shape_from_bytes_equals_the_csv_module(text):
    """The numpy pass is either not applicable or exactly the csv module's records."""
    try:
        ref = _csv_shape(text)
    except csv.Error:
        ref = None
    got = _csv_shape_bytes(np.frombuffer(text.encode("utf-8"), dtype=np.uint8))
    if got is not None:
        assert ref is not None
        assert got[0].tolist() == ref[0].tolist() and got[1].tolist() == ref[1].tolist()


@FAST
@given(st.text(st.sampled_from(list('ab,"\r\n é') + ["A", "B", " "]), max_size=60))
@example('A,B\n1,2\n3,4,5\n')
@example('A,,B\n1,,2\n')
@example('A,a\n1,2\n')
def test_csv_reads_what_the_csv_module_reads_or_refuses(tmp_path, text):
    p = tmp_path / "form.csv"
    p.write_bytes(text.encode("utf-8"))
    got = read_or_error(p)
    ref = reference_csv(text)
    if ref is None:
        assert isinstance(got, InputError)
        return
    names, rows, lines = ref
    assert not isinstance(got, InputError), str(got)
    assert list(got.columns) == names + [FILE_COL, ROW_COL]
    assert got.drop(columns=[FILE_COL, ROW_COL]).to_numpy().tolist() == rows
    assert got[ROW_COL].tolist() == lines


CSV_BYTES = st.one_of(
    st.binary(max_size=80),
    st.lists(st.sampled_from([b"a", b",", b'"', b"\n", b"\r", b"\x00", b"\xff", b"\xc3\xa9",
                              b"\xc3", b"\xef\xbb\xbf", b"A,B\n"]), max_size=30).map(b"".join),
)


@FAST
@given(CSV_BYTES)
@example(b"\xef\xbb\xbf")
@example(b"A\n\xc3")
def test_any_bytes_read_or_raise_an_input_error(tmp_path, data):
    p = tmp_path / "form.csv"
    p.write_bytes(data)
    got = read_or_error(p)
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        assert isinstance(got, InputError) and "not UTF-8 text at byte" in str(got)
        return
    if b"\x00" in body:
        assert isinstance(got, InputError) and "NUL byte" in str(got)


# -------------------------------------------------------------------------------- XPT

CREATED = dt.datetime(2024, 3, 5, 14, 7, 9)
XPT_NAME = st.from_regex(r"[A-Z][A-Z0-9_]{0,7}", fullmatch=True)
XPT_TEXT = st.text(st.sampled_from(string.ascii_letters + string.digits + " -.,'\"/()"), max_size=12)
IBM_SAFE = st.one_of(st.just(math.nan), st.floats(min_value=-1e75, max_value=1e75).filter(
    lambda x: x == 0 or abs(x) >= 1e-78))                # inside the IBM-370 double's range


@st.composite
def xpt_frames(draw, numeric: bool = False, min_rows: int = 0):
    names = draw(st.lists(XPT_NAME, min_size=1, max_size=5, unique=True))
    kinds = draw(st.lists(st.sampled_from(["Char", "Num"]), min_size=len(names), max_size=len(names)))
    if numeric and "Num" not in kinds:
        kinds[-1] = "Num"
    n = draw(st.integers(min_rows, 12))
    data = {}
    for name, kind in zip(names, kinds):
        strategy = IBM_SAFE if kind == "Num" else XPT_TEXT
        data[name] = draw(st.lists(strategy, min_size=n, max_size=n))
    frame = pd.DataFrame({k: pd.Series(v, dtype=float if t == "Num" else object)
                          for (k, v), t in zip(data.items(), kinds)})
    if n and "Num" not in kinds and not any(str(v).strip() for v in frame.iloc[-1]):
        # an all-blank last record of a character-only file cannot be told from the
        # blank padding of XPT v5 (test_raw_readers covers what is kept then)
        frame.iloc[-1, 0] = "X"
    meta = DatasetMeta(name="RAW", label="Raw form", variables=[
        VariableMeta(name=k, label=k, type=t) for k, t in zip(names, kinds)])
    return frame, meta


def expected_text(frame: pd.DataFrame, meta: DatasetMeta) -> list[list[str]]:
    """The values read_raw gives: text without trailing blanks (SAS pads with blanks);
    numbers as their shortest text, whole numbers without '.0', missing as ''."""
    cols = []
    for v in meta.variables:
        if v.type == "Num":
            cols.append(["" if math.isnan(x) else re.sub(r"\.0$", "", repr(0.0 if x == 0 else float(x)))
                         for x in frame[v.name]])
        else:
            cols.append([str(x).rstrip(" ") for x in frame[v.name]])
    return [list(r) for r in zip(*cols)] if cols else []


@FAST
@given(xpt_frames())
def test_xpt_written_by_our_writer_reads_back_equal(tmp_path, case):
    frame, meta = case
    p = tmp_path / "raw.xpt"
    write_xpt(p, frame, meta, CREATED)
    df = read_raw(p)
    assert list(df.columns) == meta.names + [FILE_COL, ROW_COL]
    assert df.drop(columns=[FILE_COL, ROW_COL]).to_numpy().tolist() == expected_text(frame, meta)
    assert df[ROW_COL].tolist() == list(range(1, len(frame) + 1))


def xpt_layout(raw: bytes, info: dict) -> tuple[int, int]:
    """(first byte of the data area, record length) of a file our writer wrote."""
    obs = raw.index(b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!")
    return obs + 80, sum(info["lengths"].values())


@FAST
@given(xpt_frames(numeric=True, min_rows=1), st.data())
def test_truncated_xpt_is_an_error_or_holds_every_whole_record(tmp_path, case, data):
    frame, meta = case
    p = tmp_path / "raw.xpt"
    info = write_xpt(p, frame, meta, CREATED)
    raw = p.read_bytes()
    start, reclen = xpt_layout(raw, info)
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    p.write_bytes(raw[:cut])
    got = read_or_error(p)
    if isinstance(got, InputError):
        return
    # only a cut at a multiple of 80 bytes that ends a record leaves a valid XPT v5 file
    # (v5 does not record the number of observations); it holds every whole record
    assert cut % 80 == 0 and cut >= start and (cut - start) % reclen == 0
    k = (cut - start) // reclen
    assert len(got) == k
    assert got.drop(columns=[FILE_COL, ROW_COL]).to_numpy().tolist() == expected_text(frame, meta)[:k]


@FAST
@given(xpt_frames(numeric=True, min_rows=1), st.data())
def test_corrupt_xpt_is_an_error_or_a_frame_of_the_same_shape(tmp_path, case, data):
    frame, meta = case
    p = tmp_path / "raw.xpt"
    info = write_xpt(p, frame, meta, CREATED)
    raw = bytearray(p.read_bytes())
    start, reclen = xpt_layout(bytes(raw), info)
    at = data.draw(st.integers(0, len(raw) - 1), label="at")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != raw[at]), label="value")
    raw[at] = value
    p.write_bytes(bytes(raw))
    got = read_or_error(p)
    if isinstance(got, InputError):
        return
    n, k = len(frame), len(meta.variables)
    end = start + n * reclen
    last_length = 640 + 140 * (k - 1) + 4          # NAMESTR length field of the last variable
    if at >= end:
        # blank padding: a non-blank byte there is a record v5 cannot tell from data
        assert len(got) >= n
    elif at >= start or not last_length <= at < last_length + 2:
        assert got.shape == (n, k + 2)
    # else: the last variable's length: a different record length gives another valid
    # layout that XPT v5 cannot detect (documented in rawio._check_xpt)


# ------------------------------------------------------------------------------- dates

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
TOKENS = ("UN", "UNK", "UK", "XX", "UNKN")


def reference_dtc(date: str, time: str, tokens=TOKENS) -> tuple[str | None, bool]:
    """The documented rules of iso8601_dtc, written plainly: (ISO 8601 text or None, bad).

    Dates: DD-MON-YYYY (separators - / or one blank, case-insensitive, day 1-2 digits or
    an unknown token, month name or unknown token, 4-digit year) or YYYY[-MM[-DD]];
    ASCII only. Complete dates are checked with datetime.strptime; unknown day ->
    YYYY-MM, unknown month and day -> YYYY, unknown month only -> YYYY---DD, unknown year
    -> flagged. Times HH:MM[:SS] (hour or minute may be a token) only on complete dates.
    """
    tokens = {t.upper() for t in tokens}
    d = date.strip()
    t = time.strip()
    bad_time = False
    time_part = None
    if t:
        m = re.fullmatch(r"([0-9]{1,2}|[A-Za-z]+):([0-9]{2}|[A-Za-z]+)(?::([0-9]{2}))?", t) \
            if t.isascii() else None
        if not m:
            bad_time = True
        else:
            h, mi, s = (g.upper() if g else g for g in m.groups())
            h_tok, mi_tok = h in tokens, mi in tokens
            if (not h.isdigit() and not h_tok) or (not mi.isdigit() and not mi_tok):
                bad_time = True
            else:
                try:
                    dt.datetime.strptime(f"{h if not h_tok else 0}:{mi if not mi_tok else 0}:{s or 0}",
                                         "%H:%M:%S")
                except ValueError:
                    bad_time = True
                else:
                    if not h_tok:
                        time_part = (f"T{int(h):02d}" if mi_tok else
                                     f"T{int(h):02d}:{int(mi):02d}" + (f":{s}" if s else ""))
    if not d:
        return None, bad_time
    if not d.isascii():
        return None, True
    d = d.upper()
    parts = re.split(r"[-/ ]", d)
    day = month = year = None
    if len(parts) == 3 and re.fullmatch(r"[A-Z]+", parts[1]):
        ds, ms, ys = parts
        if re.fullmatch(r"[0-9]{1,2}", ds):
            day = int(ds)
        elif ds in tokens:
            pass                        # an unknown day: missing
        else:
            return None, True
        if ms in MONTHS:
            month = MONTHS.index(ms) + 1
        elif ms in tokens:
            pass                        # an unknown month: missing
        else:
            return None, True
        if ys in tokens:
            return None, True                       # unknown year: no ISO 8601 value
        if not re.fullmatch(r"[0-9]{4}", ys):
            return None, True
        year = int(ys)
    elif re.fullmatch(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?", d):
        nums = [int(x) for x in d.split("-")]
        year = nums[0]
        month = nums[1] if len(nums) > 1 else None
        day = nums[2] if len(nums) > 2 else None
    else:
        return None, True
    try:
        dt.datetime.strptime(f"{year:04d}", "%Y")  # years 0001-9999
    except ValueError:
        return None, True
    if (month is not None and not 1 <= month <= 12) or (day is not None and not 1 <= day <= 31):
        return None, True
    if month is not None and day is not None:
        try:
            full = dt.datetime.strptime(f"{year:04d}-{month:02d}-{day:02d}", "%Y-%m-%d")
        except ValueError:
            return None, True
        return f"{full.year:04d}-{full.month:02d}-{full.day:02d}" + (time_part or ""), bad_time
    if month is not None:
        return f"{year:04d}-{month:02d}", bad_time
    if day is not None:
        return f"{year:04d}---{day:02d}", bad_time
    return f"{year:04d}", bad_time


def check_dates(dates: list[str], times: list[str] | None, tokens=TOKENS) -> None:
    d = pd.Series(dates, dtype="str")
    t = pd.Series(times, dtype="str") if times is not None else None
    dtc, bad = iso8601_dtc(d, t, unknown_tokens=list(tokens))
    assert len(dtc) == len(dates) and len(bad) == len(dates) and bad.dtype == bool
    for i, date in enumerate(dates):
        want, want_bad = reference_dtc(date, times[i] if times is not None else "", tokens)
        got = None if pd.isna(dtc.iloc[i]) else dtc.iloc[i]
        assert (got, bool(bad.iloc[i])) == (want, want_bad), (date, times[i] if times else None)


def cased(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(s, st.sampled_from([str.upper, str.lower, str.title])).map(lambda x: x[1](x[0]))


DAY = st.one_of(st.integers(0, 40).map(str), st.integers(0, 40).map("{:02d}".format),
                cased(st.sampled_from(TOKENS + ("AB", "U", "UNKNOWN"))))
MONTH = cased(st.sampled_from(MONTHS + list(TOKENS) + ["MRZ", "MA", "SEPT", "ſep"]))
YEAR = st.one_of(st.integers(0, 9999).map("{:04d}".format), st.sampled_from(TOKENS + ("25", "20255")))
SEP = st.sampled_from(["-", "/", " ", ".", "--"])
DMY = st.builds(lambda d, s1, m, s2, y, pad: pad + d + s1 + m + s2 + y + pad,
                DAY, SEP, MONTH, SEP, YEAR, st.sampled_from(["", " ", "\t"]))
ISO = st.builds(lambda y, m, d, k: "-".join([f"{y:04d}", f"{m:02d}", f"{d:02d}"][:k]),
                st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(1, 3))
HOUR = st.one_of(st.integers(0, 25).map(str), st.integers(0, 25).map("{:02d}".format),
                 cased(st.sampled_from(TOKENS)))
MINUTE = st.one_of(st.integers(0, 61).map("{:02d}".format), st.integers(0, 9).map(str),
                   cased(st.sampled_from(TOKENS)))
TIME = st.one_of(st.just(""), st.builds(lambda h, m, s: f"{h}:{m}{s}", HOUR, MINUTE,
                                        st.sampled_from(["", ":00", ":59", ":60", ":5"])),
                 st.text(max_size=6))
ANY_DATE = st.one_of(DMY, ISO, st.text(max_size=12), st.just(""))


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(ANY_DATE, TIME), min_size=1, max_size=20))
@example([("12-MAR-2025", "14:05"), ("un-mar-2025", ""), ("UN-UNK-2025", ""), ("12-UNK-2025", ""),
          ("2025-03", ""), ("", "10:00"), ("31-FEB-2025", ""), ("UNK-MAR-2025", "UNK:UNK")])
@example([("１２-MAR-２０２５", ""), ("12-ſep-2025", ""), ("0000-01", ""), ("01-JAN-0000", "")])
def test_iso8601_dtc_agrees_with_a_reference_parser(pairs):
    check_dates([d for d, _ in pairs], [t for _, t in pairs])


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(ANY_DATE, min_size=1, max_size=10),
       st.lists(st.text(st.sampled_from(string.ascii_uppercase), min_size=2, max_size=5), max_size=3))
def test_iso8601_dtc_dates_only_and_other_unknown_tokens(dates, tokens):
    tokens = [t for t in tokens if t.upper() not in MONTHS] or list(TOKENS)
    check_dates(dates, None, tokens)


@pytest.mark.parametrize("date,time,want", [
    ("UNK-MAR-2025", "", "2025-03"),             # a 3-letter token as the day
    ("UNKN-UNKN-2025", "", "2025"),
    ("12-MAR-2025", "UNK:UNK", "2025-03-12"),    # unknown time: no time part, not an error
    ("12-MAR-2025", "10:UNK", "2025-03-12T10"),
])
def test_iso8601_dtc_any_unknown_token_in_any_place(date, time, want):
    dtc, bad = iso8601_dtc(pd.Series([date], dtype="str"), pd.Series([time], dtype="str"))
    assert (dtc.iloc[0], bool(bad.iloc[0])) == (want, False)


@pytest.mark.parametrize("date", ["１２-MAR-２０２５", "12-ſep-2025", "0000-01", "01-JAN-0000", "٢٠٢٥"])
def test_iso8601_dtc_flags_non_ascii_digits_letters_and_year_zero(date):
    dtc, bad = iso8601_dtc(pd.Series([date], dtype="str"))
    assert pd.isna(dtc.iloc[0]) and bool(bad.iloc[0])
