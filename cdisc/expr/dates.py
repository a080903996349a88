"""Dates in the expression language: what a date is, date arithmetic and the date functions.

What a date is
--------------
A *date* is a ``datetime64`` column (or an ``object`` column of ``datetime.date`` /
``Timestamp`` values), which is what the ADaM derivations produce (``derive_vars_dt`` ->
``ADT``, ``derive_vars_dtm`` -> ``ADTM``, both ``datetime64[s]``) and what the XPT reader
gives for a SAS Num variable with a date or datetime format (DATE9., E8601DT., ...). A
date column carries no separate "date or datetime" flag: ``ADT`` is a datetime at
00:00:00.

ISO 8601 text (SDTM ``--DTC``) is *text*, not a date: ``AESTDTC - 30`` is a SpecError that
names the column and shows the conversion (``date(AESTDTC) - 30``; ``add_days(AESTDTC,
-30)``). ``date(x)`` reads complete ISO 8601 text (partial -> missing). A plain number
column is a number even when it holds SAS day counts: without the format the language
cannot know, and guessing would shift a value by 1960 years.

Arithmetic (evaluated column-wise with numpy, no loop over rows)
---------------------------------------------------------------
1. ``date + n``, ``n + date``, ``date - n``: the date ``n`` days later / earlier. ``n`` is a
   number (literal or column), counted in days even for a datetime (SAS and R count seconds
   for a datetime; write ``ADTM + 2 / 24`` for two hours). The time of day is kept; a
   fraction of a day moves the time.
2. ``date - date``: the difference in days as a number (``ADT - TRTSDT``); with times it has
   a fraction (``(ADTM - TRTSDTM) * 24`` = hours). ``days_between`` counts calendar days.
3. A complete ISO 8601 *literal* may stand for a date on the other side of ``-`` (as it may
   in comparisons): ``ADT - '2024-01-01'``.
4. Anything else with a date (``date + date``, ``n - date``, ``*``, ``/``, ``//``, ``%``,
   ``**``) is a SpecError listing what is allowed.
5. A missing date or number gives a missing result; a shift of more than
   :data:`MAX_SHIFT_DAYS` days gives a missing date (no silent wrap-around).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .values import _series, _to_float, _Val

if TYPE_CHECKING:  # pragma: no cover
    from .evaluate import _Evaluator

# Complete ISO 8601 date, optionally with hh, hh:mm or hh:mm:ss[.f] (SDTMIG 3.4
# section 4.4.2 date/time format). Anything shorter is a partial date -> NaT.
_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}(?:T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?"
_ISO_RE = re.compile(_ISO_DATETIME)

#: Largest shift, in days, that date arithmetic accepts (about 10,000 years); larger -> missing.
MAX_SHIFT_DAYS = 3_652_500

_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000}

_DATE_RULES = ("with dates: date + days, days + date, date - days (a date) and date - date "
               "(days, a number)")


def _parse_iso(s: pd.Series) -> pd.Series:
    """ISO 8601 text -> datetime64; partial or invalid dates -> NaT (SDTMIG 3.4 s4.4.2)."""
    complete = s.str.fullmatch(_ISO_DATETIME)
    complete = complete.fillna(False).astype(bool) if complete.dtype != bool else complete
    return pd.to_datetime(s.where(complete), format="ISO8601", errors="coerce")


def date_literal(ev: "_Evaluator", text: str, node) -> pd.Timestamp:
    """A complete ISO 8601 text literal used as a date (``ADT >= '2024-01-15'``)."""
    if not _ISO_RE.fullmatch(text):
        ev.fail(node, f"'{text}' is not a complete ISO 8601 date to compare dates with",
                hint="write it as 'YYYY-MM-DD' or 'YYYY-MM-DDThh:mm:ss'")
    try:
        return pd.Timestamp(text)
    except ValueError:
        ev.fail(node, f"'{text}' is not a valid date", hint="write it as 'YYYY-MM-DD'")


def _as_date(ev: "_Evaluator", v: _Val, node) -> pd.Series:
    """Dates of a value: datetime64 as is, ISO 8601 text parsed (partial -> missing)."""
    if v.kind == "date":
        return _series(ev, v, "date")
    if v.kind == "null":
        return ev.broadcast(None, "date")
    if v.kind == "str":
        return _parse_iso(_series(ev, v, "str"))
    ev.fail(node, f"{v.describe()} is not a date or ISO 8601 text", column=v.column)


def _date_array(ev: "_Evaluator", d: pd.Series, node, label: str) -> np.ndarray:
    """A date Series as a tz-naive numpy datetime64 array in s, ms or us."""
    if getattr(d.dtype, "tz", None) is not None:
        ev.fail(node, f"{label} has a time zone ({d.dtype}); date arithmetic needs local dates and times",
                hint="store the dates without a time zone, as ADaM does")
    arr = d.to_numpy()
    if arr.dtype.kind != "M":
        arr = arr.astype("datetime64[us]")
    unit = np.datetime_data(arr.dtype)[0]
    if unit not in _PER_DAY:
        arr = arr.astype("datetime64[us]" if unit == "ns" else "datetime64[s]")
    return arr


def _days_array(ev: "_Evaluator", v: _Val) -> np.ndarray:
    return _series(ev, v, "num").to_numpy(dtype="float64", na_value=np.nan)


def shift_days(ev: "_Evaluator", d: pd.Series, days: np.ndarray, node, label: str) -> pd.Series:
    """``d`` moved by ``days`` (float array, may be fractional or NaN) in ``d``'s own unit."""
    arr = _date_array(ev, d, node, label)
    unit = np.datetime_data(arr.dtype)[0]
    bad = ~np.isfinite(days) | (np.abs(np.nan_to_num(days, nan=0.0)) > MAX_SHIFT_DAYS)
    with np.errstate(all="ignore"):
        ticks = np.where(bad, 0.0, np.round(np.where(bad, 0.0, days) * _PER_DAY[unit]))
    out = arr + ticks.astype(np.int64).astype(f"timedelta64[{unit}]")
    out[bad] = np.datetime64("NaT")
    return pd.Series(out, index=ev.index)


def date_arithmetic(ev: "_Evaluator", node, symbol: str, a: _Val, b: _Val, label: str) -> _Val:
    """``+`` / ``-`` where at least one side is a date (rules 1-5 of the module docstring)."""
    if symbol not in ("+", "-"):
        date = a if a.kind == "date" else b
        ev.fail(node, f"'{symbol}' cannot be applied to {date.describe()}", hint=_DATE_RULES,
                column=date.column)
    # A complete ISO 8601 literal on the other side of '-' is a date (as in comparisons).
    if symbol == "-":
        if a.kind == "date" and b.kind == "str" and b.scalar:
            b = _Val(date_literal(ev, b.data, node), "date", b.label)
        elif b.kind == "date" and a.kind == "str" and a.scalar:
            a = _Val(date_literal(ev, a.data, node), "date", a.label)
    if a.kind == "date" and b.kind == "date":
        if symbol == "+":
            ev.fail(node, f"cannot add two dates ({a.label} + {b.label})", hint=_DATE_RULES)
        x = _date_array(ev, _series(ev, a, "date"), node, a.label)
        y = _date_array(ev, _series(ev, b, "date"), node, b.label)
        return _Val(pd.Series((x - y) / np.timedelta64(1, "D"), index=ev.index), "num", label)
    date, other = (a, b) if a.kind == "date" else (b, a)
    if symbol == "-" and b.kind == "date":
        ev.fail(node, f"cannot subtract a date from {a.describe()}", hint=_DATE_RULES, column=a.column)
    if other.kind == "str":
        hint = (f"{other.label} is text; an ISO 8601 text date must be converted first: "
                f"date({other.label})" if not other.scalar else
                "a number of days is a number, e.g. ADT + 30")
        ev.fail(node, f"cannot compute {label}: {other.describe()} is not a number of days or a date",
                hint=hint, column=other.column)
    if other.kind not in ("num", "null"):
        ev.fail(node, f"cannot compute {label}: {other.describe()} is not a number of days",
                hint=_DATE_RULES, column=other.column)
    days = _days_array(ev, other) if other.kind == "num" else np.full(ev.n, np.nan)
    if symbol == "-":
        days = -days
    return _Val(shift_days(ev, _series(ev, date, "date"), days, node, date.label), "date", label)


def text_date_hint(v: _Val) -> str:
    """Hint for arithmetic on a text column that may hold ISO 8601 dates."""
    return (f"convert text with number({v.label}); an ISO 8601 text date with date({v.label}) "
            f"(date({v.label}) - 30, or add_days({v.label}, -30)); join text with concat(a, b)")


# ---------------------------------------------------------------------------
# date functions
# ---------------------------------------------------------------------------


def fn_date(ev, node, args, label):
    """date(x): ISO 8601 text -> datetime64; partial or invalid -> NaT (SDTMIG 3.4 section 4.4.2)."""
    v = args[0]
    if v.kind == "date":
        return _Val(v.data, "date", label)
    if v.kind == "null":
        return _Val(None if v.scalar else ev.broadcast(None, "date"), "date", label)
    if v.kind != "str":
        ev.fail(node, f"date() needs ISO 8601 text, but {v.describe()} is not text", column=v.column)
    if v.scalar:
        if not _ISO_RE.fullmatch(v.data):
            return _Val(None, "date", label)
        try:
            return _Val(pd.Timestamp(v.data), "date", label)
        except ValueError:
            return _Val(None, "date", label)
    return _Val(_parse_iso(v.data), "date", label)


def fn_days_between(ev, node, args, label):
    """days_between(start, end): end - start in whole days; missing if either is partial or missing."""
    a, b = (_as_date(ev, v, n).dt.normalize() for v, n in zip(args, node.args))
    return _Val(_to_float((b - a).dt.days), "num", label)


def fn_add_days(ev, node, args, label):
    """add_days(date, n): the date n days later."""
    d = _as_date(ev, args[0], node.args[0])
    if args[1].kind not in ("num", "null"):
        ev.fail(node, f"add_days() needs a number of days, but {args[1].describe()} is not one")
    n = _series(ev, args[1], "num")
    return _Val(d + pd.to_timedelta(n, unit="D"), "date", label)


def fn_study_day(ev, node, args, label):
    """study_day(date, reference): SDTMIG 3.4 §4.4.4, no day 0."""
    a, r = (_as_date(ev, v, n).dt.normalize() for v, n in zip(args, node.args))
    diff = _to_float((a - r).dt.days)
    return _Val(diff.where(diff < 0, diff + 1), "num", label)


def _add_months(ev, node, args, label, per: int, name: str):
    """The date ``n * per`` calendar months later, the day clipped to the month's last day.

    Algorithm:
        1. Dates from a date column or ISO 8601 text (``_as_date``); ``n`` a number.
        2. ``n`` must be a whole number where present; otherwise a SpecError naming the
           first record (SAS INTNX would truncate it silently).
        3. month = the date's calendar month + ``n * per``; day = the same day of month,
           or the last day of the target month if it has fewer days (31 Jan + 1 month =
           28/29 Feb; 29 Feb 2024 + 1 year = 28 Feb 2025); the time of day is kept.
        4. A missing date or ``n`` gives a missing date.
    """
    d = _as_date(ev, args[0], node.args[0])
    if args[1].kind not in ("num", "null"):
        ev.fail(node, f"{name}() needs a whole number, but {args[1].describe()} is not one",
                column=args[1].column)
    n = _days_array(ev, args[1]) if args[1].kind == "num" else np.full(ev.n, np.nan)
    ok_n = np.isfinite(n)
    frac = ok_n & (n != np.trunc(np.where(ok_n, n, 0.0)))
    if frac.any():
        row = int(np.flatnonzero(frac)[0])
        ev.fail(node, f"{name}() needs a whole number of {'years' if per == 12 else 'months'}, "
                      f"but {args[1].label} is {n[row]:g} in record {row + 1}",
                hint=f"round it first, e.g. {name}({args[0].label}, round({args[1].label}))",
                column=args[1].column)
    arr = _date_array(ev, d, node, args[0].label)
    unit = np.datetime_data(arr.dtype)[0]
    bad = np.isnat(arr) | ~ok_n | (np.abs(np.where(ok_n, n, 0.0)) * per > MAX_SHIFT_DAYS / 28)
    safe = np.where(bad, np.datetime64("2000-01-01", unit), arr)
    day = safe.astype("datetime64[D]")
    tod = safe - day.astype(f"datetime64[{unit}]")
    month = day.astype("datetime64[M]")
    dom = (day - month.astype("datetime64[D]")).astype(np.int64)            # 0-based day of month
    target = month + (np.where(bad, 0, n) * per).astype(np.int64).astype("timedelta64[M]")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    out = (target.astype("datetime64[D]") + np.minimum(dom, length - 1).astype("timedelta64[D]"))
    out = out.astype(f"datetime64[{unit}]") + tod
    out[bad] = np.datetime64("NaT")
    return _Val(pd.Series(out, index=ev.index), "date", label)


def fn_add_months(ev, node, args, label):
    """add_months(date, n): n calendar months later, end of month clipped (lubridate %m+%)."""
    return _add_months(ev, node, args, label, 1, "add_months")


def fn_add_years(ev, node, args, label):
    """add_years(date, n): n years later; 29 Feb -> 28 Feb in a common year."""
    return _add_months(ev, node, args, label, 12, "add_years")
