"""Issue 14: date arithmetic, // % **, rounding and min/max, and the missing-value rule of !=.

Every expected value is worked out by hand in the comment next to it; rows are 0..3.
"""
from __future__ import annotations

import datetime
import time

import numpy as np
import pandas as pd
import pytest

from cdisc.errors import SpecError
from cdisc.expr import MAX_DEPTH, evaluate_filter, evaluate_value, parse

T, F = True, False
NaT = pd.NaT


def _dt(values, unit="s"):
    return pd.Series(pd.to_datetime(values)).astype(f"datetime64[{unit}]")


@pytest.fixture
def adam():
    """ADaM-style frame: ADT/ADTM as derive_vars_dt/dtm store them (datetime64[s])."""
    return pd.DataFrame({
        "ADT": _dt(["2024-01-31", None, "2024-02-29", "2023-12-31"]),
        "ADTM": _dt(["2024-01-31T10:00", "2024-01-01T00:00", None, "2023-12-31T23:30"]),
        "TRTSDT": _dt(["2024-01-01"] * 4),
        "TRTEDT": _dt(["2024-01-10", "2024-01-10", "2024-01-30", None]),
        "N": [1.0, 2.0, None, -1.5],
        "X": [7.0, -7.0, None, 0.0],
        "AESTDTC": ["2024-01-05", "2024-01", "", None],
        "FLAG": ["Y", None, "", "N"],
        # an object column of datetime.date, as the XPT reader gives a DATE9. variable
        "OBJDT": pd.Series([datetime.date(2024, 1, 1), None, datetime.date(2024, 3, 1),
                            datetime.date(2024, 3, 2)], dtype=object),
    })


def values(text, frame):
    out = parse(text).evaluate(frame)
    return [None if pd.isna(v) else v for v in out.tolist()]


def error(text, frame):
    with pytest.raises(SpecError) as err:
        parse(text, where="steps[0] assign.X").evaluate(frame)
    return str(err.value)


# ---------------------------------------------------------------------------
# date arithmetic
# ---------------------------------------------------------------------------


def test_date_plus_minus_days(adam):
    ts = pd.Timestamp
    # 2024-01-31 - 30 = 2024-01-01; 2024-02-29 - 30 = 2024-01-30 (leap Feb has 29 days);
    # 2023-12-31 - 30 = 2023-12-01; missing ADT stays missing
    assert values("ADT - 30", adam) == [ts("2024-01-01"), None, ts("2024-01-30"), ts("2023-12-01")]
    # 2024-01-31 + 30 = 2024-03-01 (Jan 31 + 29 = Feb 29, + 1 = Mar 1)
    assert values("ADT + 30", adam)[0] == ts("2024-03-01")
    assert values("30 + ADT", adam) == values("ADT + 30", adam)
    # a number column of days; N missing -> missing; -1.5 days = 1 day 12 hours earlier
    assert values("ADT + N", adam) == [ts("2024-02-01"), None, None, ts("2023-12-29 12:00")]
    # the result stays a date of the input's unit (ADaM datetime64[s])
    assert parse("ADT + 30").evaluate(adam).dtype == "datetime64[s]"


def test_datetime_plus_days_keeps_the_time(adam):
    ts = pd.Timestamp
    # a number is days also for a datetime: 10:00 + 0.5 day = 22:00; 23:30 + 12 h = 11:30 next day
    assert values("ADTM + 0.5", adam) == [ts("2024-01-31 22:00"), ts("2024-01-01 12:00"), None,
                                          ts("2024-01-01 11:30")]
    # two hours, as written in the docs
    assert values("ADTM + 2 / 24", adam)[0] == ts("2024-01-31 12:00")


def test_date_minus_date_is_days(adam):
    # 2024-01-31 - 2024-01-01 = 30; 2024-02-29 - 2024-01-01 = 31 + 28 = 59; 2023-12-31 -> -1
    assert values("ADT - TRTSDT", adam) == [30.0, None, 59.0, -1.0]
    # with a time the difference has a fraction: 30 days 10 h = 30 + 10/24
    got = values("ADTM - TRTSDT", adam)
    assert got[0] == pytest.approx(30 + 10 / 24) and got[1] == 0.0 and got[2] is None
    assert got[3] == pytest.approx(-0.5 / 24)                      # 30 minutes before
    # a complete ISO 8601 literal stands for a date on either side of '-'
    assert values("ADT - '2024-01-01'", adam) == [30.0, None, 59.0, -1.0]
    assert values("'2024-02-01' - ADT", adam) == [1.0, None, -28.0, 32.0]


def test_object_date_column_from_xpt_is_a_date(adam):
    ts = pd.Timestamp
    assert values("OBJDT + 1", adam) == [ts("2024-01-02"), None, ts("2024-03-02"), ts("2024-03-03")]
    # 2024-03-01 - 2024-01-01 = 31 + 29 = 60
    assert values("OBJDT - TRTSDT", adam) == [0.0, None, 60.0, 61.0]


def test_windows_with_date_arithmetic_in_filters(adam):
    # on-treatment window TRTSDT <= ADT <= TRTEDT + 30:
    # row 0: 01-31 <= 01-10 + 30 = 02-09 -> T; row 1: ADT missing -> F;
    # row 2: 02-29 <= 01-30 + 30 = 02-29 -> T (bound included); row 3: ADT < TRTSDT -> F
    assert evaluate_filter("ADT >= TRTSDT and ADT <= TRTEDT + 30", adam).tolist() == [T, F, T, F]
    # 30 days before: ADT - 30 >= '2024-01-01' -> 01-01 T, -, 01-30 T, 12-01 F
    assert evaluate_filter("ADT - 30 >= '2024-01-01'", adam).tolist() == [T, F, T, F]
    # days as a comparison: (ADT - TRTSDT) > 31 -> 30 F, missing F, 59 T, -1 F
    assert evaluate_filter("ADT - TRTSDT > 31", adam).tolist() == [F, F, T, F]


def test_date_arithmetic_in_sdtm_value_expressions(adam):
    # the SDTM expr: rule writes dates as ISO 8601 text, with a time only where there is one
    assert evaluate_value("date(AESTDTC) + 7", adam).tolist()[0] == "2024-01-12"
    got = evaluate_value("ADTM + 0.5", adam)
    assert got.tolist()[0] == "2024-01-31T22:00" and pd.isna(got.tolist()[2])


@pytest.mark.parametrize("text,fragments", [
    # ISO 8601 text is text: the message shows both conversions
    ("AESTDTC - 30", ["AESTDTC (text", "date(AESTDTC) - 30", "add_days(AESTDTC, -30)", "column 1"]),
    ("ADT + TRTSDT", ["cannot add two dates", "date - date"]),
    ("N - ADT", ["cannot subtract a date from N"]),
    ("ADT * 2", ["'*' cannot be applied to ADT (a date"]),
    ("ADT // 7", ["'//' cannot be applied"]),
    ("ADT + AESTDTC", ["not a number of days", "date(AESTDTC)"]),
    ("ADT - '2024-01'", ["not a complete ISO 8601 date"]),
    ("FLAG + 'X'", ["not '+'", "concat(a, b)"]),              # no '+' on text
    ("X + FLAG", ["'+' works on numbers only", "number(FLAG)"]),
])
def test_date_arithmetic_errors(adam, text, fragments):
    msg = error(text, adam)
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)
    assert "at column" in msg


def test_shift_beyond_ten_thousand_years_is_missing_not_wrapped(adam):
    assert values("ADT + 1e12", adam) == [None] * 4


def test_time_zone_dates_are_rejected():
    frame = pd.DataFrame({"ADTM": pd.to_datetime(["2024-01-01T10:00"]).tz_localize("UTC")})
    assert "time zone" in error("ADTM + 1", frame)


def test_add_months_and_years_clip_to_month_end(adam):
    ts = pd.Timestamp
    # Jan 31 + 1 month -> Feb 29 (2024 leap); Feb 29 + 1 -> Mar 29; Dec 31 + 1 -> Jan 31
    assert values("add_months(ADT, 1)", adam) == [ts("2024-02-29"), None, ts("2024-03-29"), ts("2024-01-31")]
    # minus one month keeps the time: 2024-01-31 10:00 -> 2023-12-31 10:00; 2023-12-31 23:30 -> 11-30
    assert values("add_months(ADTM, -1)", adam) == [ts("2023-12-31 10:00"), ts("2023-12-01"), None,
                                                    ts("2023-11-30 23:30")]
    # Feb 29 2024 + 1 year -> Feb 28 2025 (lubridate %m+%, SAS INTNX 'same')
    assert values("add_years(ADT, 1)", adam) == [ts("2025-01-31"), None, ts("2025-02-28"), ts("2024-12-31")]
    # ISO 8601 text is read like add_days does (partial -> missing)
    assert values("add_months(AESTDTC, 1)", adam) == [ts("2024-02-05"), None, None, None]
    assert evaluate_value("add_months(AESTDTC, 1)", adam).tolist()[0] == "2024-02-05"


def test_add_months_needs_whole_numbers(adam):
    with pytest.raises(SpecError, match=r"whole number.*column 17"):
        parse("add_months(ADT, 1.5)")
    # a column: the first non-whole value is named with its record (row 3: -1.5)
    msg = error("add_months(ADT, N)", adam)
    assert "-1.5 in record 4" in msg and "round(N)" in msg


# ---------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------


def test_floor_division_modulo_power(adam):
    # X = 7, -7, missing, 0: floor division as R %/%: 7 // 2 = 3, -7 // 2 = -4 (not -3)
    assert values("X // 2", adam) == [3.0, -4.0, None, 0.0]
    # remainder has the divisor's sign (R %%): -7 % 2 = 1 (SAS MOD(-7, 2) = -1)
    assert values("X % 2", adam) == [1.0, 1.0, None, 0.0]
    assert values("X % -2", adam) == [-1.0, -1.0, None, 0.0]
    assert values("X ** 2", adam) == [49.0, 49.0, None, 0.0]
    assert values("2 ** -1 + X * 0", adam) == [0.5, 0.5, None, 0.5]
    # precedence as in Python: -2 ** 2 = -(2 ** 2) = -4; 2 + 7 // 2 * 3 = 2 + 9 = 11
    assert values("-2 ** 2 + X * 0", adam)[0] == -4.0
    assert values("2 + X // 2 * 3", adam)[0] == 11.0


def test_division_by_zero_and_overflow_are_missing(adam):
    assert values("X // 0", adam) == [None] * 4
    assert values("X % 0", adam) == [None] * 4
    assert values("(X - 8) ** 0.5", adam) == [None] * 4       # square root of a negative number
    start = time.perf_counter()
    assert values("9 ** 9 ** 9", adam) == [None] * 4          # float overflow, never a giant integer
    assert values("X ** 1000", adam) == [None, None, None, 0.0]
    assert time.perf_counter() - start < 1.0


def test_rounding_and_abs(adam):
    # N = 1, 2, missing, -1.5
    assert values("round(N)", adam) == [1.0, 2.0, None, -2.0]           # half away from zero
    assert values("round(1234.5 + X * 0, -2)", adam) == [1200.0, 1200.0, None, 1200.0]
    assert values("floor(N)", adam) == [1.0, 2.0, None, -2.0]
    assert values("ceil(N)", adam) == [1.0, 2.0, None, -1.0]
    assert values("abs(N)", adam) == [1.0, 2.0, None, 1.5]
    assert "floor() needs a number" in error("floor(FLAG)", adam)


def test_min_max_ignore_missing_like_sas(adam):
    # X = 7, -7, missing, 0; N = 1, 2, missing, -1.5
    assert values("min(X, N)", adam) == [1.0, -7.0, None, -1.5]
    assert values("max(X, N, 0)", adam) == [7.0, 2.0, 0.0, 0.0]
    ts = pd.Timestamp
    # min(ADT, TRTSDT + 30 = 01-31): 01-31, (ADT missing) 01-31, 01-31, 2023-12-31
    assert values("min(ADT, TRTSDT + 30)", adam) == [ts("2024-01-31")] * 3 + [ts("2023-12-31")]
    assert values("max(ADT, '2024-02-01')", adam) == [ts("2024-02-01"), ts("2024-02-01"),
                                                      ts("2024-02-29"), ts("2024-02-01")]
    assert "numbers or dates of one kind" in error("min(X, AESTDTC)", adam)


# ---------------------------------------------------------------------------
# != and not in on missing values (decision: SAS semantics, documented)
# ---------------------------------------------------------------------------


def test_not_equal_and_not_in_are_true_for_missing(adam):
    # FLAG = 'Y', None, '' (blank = missing), 'N'
    assert evaluate_filter("FLAG != 'Y'", adam).tolist() == [F, T, T, T]
    assert evaluate_filter("FLAG not in ('Y',)", adam).tolist() == [F, T, T, T]
    # exact complement of == / in, so a when/else pair covers every record
    assert (evaluate_filter("FLAG != 'Y'", adam) == ~evaluate_filter("FLAG == 'Y'", adam)).all()
    assert (evaluate_filter("not (FLAG == 'Y')", adam) == evaluate_filter("FLAG != 'Y'", adam)).all()
    # numbers too: X = 7, -7, missing, 0
    assert evaluate_filter("X != 0", adam).tolist() == [T, T, T, F]
    assert evaluate_filter("X not in (0, 7)", adam).tolist() == [F, T, T, F]
    # ... but a missing number is not smaller than everything (unlike SAS): X < 1 -> F for missing
    assert evaluate_filter("X < 1", adam).tolist() == [F, T, F, T]


def test_r_filter_semantics_written_explicitly(adam):
    # R/dplyr filter(FLAG != "Y") drops NA: write present(FLAG) and FLAG != 'Y'
    assert evaluate_filter("present(FLAG) and FLAG != 'Y'", adam).tolist() == [F, F, F, T]
    assert evaluate_filter("present(X) and X not in (0,)", adam).tolist() == [T, T, F, F]


# ---------------------------------------------------------------------------
# bounds and positions
# ---------------------------------------------------------------------------


def test_depth_bound_names_the_position():
    text = "-" * (MAX_DEPTH + 5) + "X"
    with pytest.raises(SpecError, match=rf"nested too deeply: more than {MAX_DEPTH} levels at column \d+"):
        parse(text)
    parse("-" * (MAX_DEPTH - 5) + "X")                             # within the bound
    # the deepest accepted tree also evaluates (499 x not = one negation of X)
    frame = pd.DataFrame({"X": [True, False]})
    assert evaluate_filter("not " * (MAX_DEPTH - 1) + "X", frame).tolist() == [F, T]


def test_unknown_column_and_overlong_text_name_a_column():
    frame = pd.DataFrame({"AESER": ["Y"]})
    with pytest.raises(SpecError, match=r"unknown column 'AESR' at column 18"):   # 'AESER == 'Y' and ' is 17
        evaluate_filter("AESER == 'Y' and AESR == 'N'", frame)
    with pytest.raises(SpecError, match="from column 2001 on"):
        parse("X == 1 or " * 300 + "X == 1")


def test_nul_byte_names_its_column():
    with pytest.raises(SpecError, match="NUL character .* at column 6"):   # X, blank, =, =, blank, NUL
        parse("X == \x00")


@pytest.mark.parametrize("text,col", [
    ("AVAL ** ", 8),            # the text ends too early: column after the last character
    ("ADT + ADT @ 2", 7),       # the operator's left operand starts at column 7
    ("add_years(ADT, 'x')", 16),
])
def test_new_syntax_errors_have_a_column(text, col):
    with pytest.raises(SpecError) as err:
        parse(text)
    assert f"column {col}" in str(err.value)


def test_vectorised_on_a_large_frame():
    n = 200_000
    rng = np.random.default_rng(14)
    frame = pd.DataFrame({"ADT": pd.Series(np.datetime64("2024-01-01", "s")
                                           + rng.integers(0, 400, n).astype("timedelta64[D]")),
                          "TRTSDT": pd.Series(np.full(n, np.datetime64("2024-03-01", "s")))})
    start = time.perf_counter()
    mask = evaluate_filter("ADT >= TRTSDT - 30 and ADT <= add_months(TRTSDT, 6)", frame)
    assert time.perf_counter() - start < 2.0
    # 2024-01-31 .. 2024-09-01 inclusive
    lo, hi = np.datetime64("2024-01-31"), np.datetime64("2024-09-01")
    want = (frame["ADT"].to_numpy() >= lo) & (frame["ADT"].to_numpy() <= hi)
    assert (mask.to_numpy() == want).all()


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_every_datetime_unit_shifts_and_subtracts(unit):
    # parquet from R gives datetime64[ms], pandas defaults to [us] or [ns], ADaM derivations [s]
    frame = pd.DataFrame({"ADT": _dt(["2024-02-28", None], unit), "TRTSDT": _dt(["2024-01-01"] * 2, unit)})
    # 2024-02-28 + 2 = 2024-03-01 (leap day between); 31 + 27 = 58 days after 01-01
    assert values("ADT + 2", frame) == [pd.Timestamp("2024-03-01"), None]
    assert values("ADT - TRTSDT", frame) == [58.0, None]
    assert values("add_years(ADT, -1)", frame) == [pd.Timestamp("2023-02-28"), None]


def test_add_months_agrees_with_a_calendar_reference():
    """2,000 random dates and month counts against a per-row reference built with calendar."""
    import calendar

    rng = np.random.default_rng(7)
    days = rng.integers(-20_000, 30_000, 2000)
    n = rng.integers(-40, 41, 2000)
    frame = pd.DataFrame({"ADT": pd.Series(np.datetime64("1970-01-01", "s") + days.astype("timedelta64[D]")),
                          "N": n.astype(float)})
    got = parse("add_months(ADT, N)").evaluate(frame)

    def reference(d: datetime.date, k: int) -> datetime.date:
        m = d.year * 12 + d.month - 1 + k
        y, mo = divmod(m, 12)
        return datetime.date(y, mo + 1, min(d.day, calendar.monthrange(y, mo + 1)[1]))

    want = [pd.Timestamp(reference(d.date(), int(k))) for d, k in zip(frame["ADT"], n)]
    assert got.tolist() == want
    # and date + n days agrees with datetime.timedelta
    plus = parse("ADT + N").evaluate(frame)
    assert plus.tolist() == [pd.Timestamp(d + datetime.timedelta(days=int(k))) for d, k in zip(frame["ADT"], n)]
