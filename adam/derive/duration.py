"""Durations between two dates and ages (admiral's ``compute_duration``,
``derive_vars_duration``, ``derive_vars_aage``, ``derive_var_age_years``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cdisc.errors import DataError, Problem, SpecError

from .flags import _require_columns, _require_dates

__all__ = ["compute_duration", "derive_vars_duration", "derive_vars_aage",
           "derive_var_age_years"]

# unit -> length in seconds of one unit as a duration (lubridate: a year is 365.25 days,
# a month 30.4375 days)
_SECONDS = {"years": 365.25 * 86400, "months": 30.4375 * 86400, "weeks": 7 * 86400.0,
            "days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}
_ALIASES = {
    "years": ("year", "years", "yr", "yrs", "y"), "months": ("month", "months", "mo", "mos"),
    "weeks": ("week", "weeks", "wk", "wks", "w"), "days": ("day", "days", "d"),
    "hours": ("hour", "hours", "hr", "hrs", "h"),
    "minutes": ("minute", "minutes", "min", "mins"),
    "seconds": ("second", "seconds", "sec", "secs", "s")}
_UNIT_OF = {a: u for u, names in _ALIASES.items() for a in names}
_FLOOR = {"years": "Y", "months": "M", "weeks": "D", "days": "D", "hours": "h",
          "minutes": "m", "seconds": "s"}


def _unit(value: str, *, func: str, arg: str) -> str:
    u = _UNIT_OF.get(str(value).strip().lower())
    if u is None:
        raise SpecError(f"{func}: {arg} must be a time unit (years, months, weeks, days, "
                        f"hours, minutes, seconds), not {value!r}")
    return u


def _as_seconds(values: Any) -> np.ndarray:
    arr = pd.Series(values)
    if getattr(arr.dt, "tz", None) is not None:
        arr = arr.dt.tz_localize(None)
    return arr.to_numpy().astype("datetime64[s]")


def _interval_length(start: np.ndarray, end: np.ndarray, out_unit: str) -> np.ndarray:
    """Calendar length in years or months (lubridate ``time_length`` of an interval):
    the completed months (a month is completed when the day-and-time of the end is not
    before that of the start; a start on the 29th-31st completes it on the next month's
    first days when the month is shorter), completed years = completed months // 12,
    plus the elapsed fraction of the next year/month. A negative interval is minus the
    length of the reversed one."""
    neg = end < start
    lo, hi = np.where(neg, end, start), np.where(neg, start, end)
    lm, hm = lo.astype("datetime64[M]"), hi.astype("datetime64[M]")
    lo_in = lo - lm.astype("datetime64[s]")         # time since the start of its month
    hi_in = hi - hm.astype("datetime64[s]")
    months = (hm - lm).astype(np.int64) - (hi_in < lo_in)
    step = 12 if out_unit == "years" else 1
    whole = months // step
    anchor = _add_months(lo, whole * step)
    nxt = _add_months(lo, (whole + 1) * step)
    span = (nxt - anchor).astype(np.int64).astype(float)
    frac = (hi - anchor).astype(np.int64) / np.where(span > 0, span, 1)
    length = whole + np.clip(frac, 0, None)
    return np.where(neg, -length, length)


def _add_months(start: np.ndarray, n: np.ndarray) -> np.ndarray:
    """start + n calendar months; a day past the month's end rolls to the next month's
    first days (29 Feb + 12 months = 1 March), as anniversaries are counted above."""
    sm = start.astype("datetime64[M]")
    offset = start - sm.astype("datetime64[s]")
    return (sm + n.astype("timedelta64[M]")).astype("datetime64[s]") + offset


def compute_duration(start_date: Any, end_date: Any, *, in_unit: str = "days",
                     out_unit: str = "days", floor_in: bool = True, add_one: bool = True,
                     trunc_out: bool = False, type: str = "duration") -> np.ndarray:
    """Duration from ``start_date`` to ``end_date`` in ``out_unit`` (float array;
    negative when the end is before the start; NaN when either is missing).

    admiral: ``compute_duration()`` (same arguments and defaults).

    Algorithm:
        1. ``floor_in``: drop the precision below ``in_unit`` (days: the time of day).
        2. ``type = "duration"``: (end - start) in seconds / the unit's length (a year =
           365.25 days, a month = 30.4375 days, a week = 7 days); ``type = "interval"``
           with years/months: completed calendar years/months plus the elapsed fraction
           of the next (for other units the two types agree).
        3. ``add_one``: where the result is >= 0, add one ``in_unit`` converted to
           ``out_unit`` (study-day convention: the same day is day 1).
        4. ``trunc_out``: drop the fractional part (toward zero).
    """
    func = "compute_duration"
    iu = _unit(in_unit, func=func, arg="in_unit")
    ou = _unit(out_unit, func=func, arg="out_unit")
    if type not in ("duration", "interval"):
        raise SpecError(f"{func}: type must be 'duration' or 'interval', not {type!r}")
    s = _as_seconds(start_date)
    e = _as_seconds(end_date)
    if floor_in:
        f = _FLOOR[iu]
        s = s.astype(f"datetime64[{f}]").astype("datetime64[s]")
        e = e.astype(f"datetime64[{f}]").astype("datetime64[s]")
    missing = np.isnat(s) | np.isnat(e)
    s = np.where(missing, np.datetime64(0, "s"), s)
    e = np.where(missing, np.datetime64(0, "s"), e)
    if type == "interval" and ou in ("years", "months"):
        out = _interval_length(s, e, ou)
    else:
        out = (e - s).astype(np.int64) / _SECONDS[ou]
    if add_one:
        out = np.where(out >= 0, out + _SECONDS[iu] / _SECONDS[ou], out)
    if trunc_out:
        out = np.trunc(np.round(out, 9))
    return np.where(missing, np.nan, out)


def derive_vars_duration(dataset: pd.DataFrame, *, new_var: str, start_date: str,
                         end_date: str, new_var_unit: str | None = None,
                         in_unit: str = "days", out_unit: str = "days",
                         floor_in: bool = True, add_one: bool = True,
                         trunc_out: bool = False, type: str = "duration") -> pd.DataFrame:
    """Add a duration between two date columns (e.g. ``ADURN`` of an AE in days, ``ADURU``).

    admiral: ``derive_vars_duration()``.

    Algorithm: 1. :func:`compute_duration` of the two columns with the arguments given;
    2. ``new_var`` = the duration; ``new_var_unit`` (if given) = the unit in upper case
    (``DAYS``) where the duration is present.
    """
    func = "derive_vars_duration"
    _require_dates(dataset, [start_date, end_date], func=func, arg="start_date/end_date")
    dur = compute_duration(dataset[start_date], dataset[end_date], in_unit=in_unit,
                           out_unit=out_unit, floor_in=floor_in, add_one=add_one,
                           trunc_out=trunc_out, type=type)
    out = dataset.copy(deep=False)
    out[new_var] = pd.Series(dur, index=dataset.index)
    if new_var_unit:
        unit = _unit(out_unit, func=func, arg="out_unit").upper()
        out[new_var_unit] = pd.Series(np.where(np.isnan(dur), None, unit),
                                      index=dataset.index, dtype="str")
    return out


def derive_vars_aage(dataset: pd.DataFrame, *, start_date: str = "BRTHDT",
                     end_date: str = "RANDDT", age_unit: str = "years",
                     new_var: str = "AAGE", new_var_unit: str = "AAGEU",
                     type: str = "interval") -> pd.DataFrame:
    """Analysis age from the birth date at a reference date, in completed units.

    admiral: ``derive_vars_aage()`` (``compute_duration(add_one = FALSE,
    trunc_out = TRUE, type = "interval")``).

    Arguments:
        start_date: birth date (``BRTHDT``); end_date: reference date (``RANDDT``,
            ``TRTSDT``, ...); age_unit: years (default), months, weeks, days...

    Algorithm:
        1. Dates only (times ignored).
        2. Completed calendar units from birth to the reference date (an age in years
           increases on the birthday; born 29 February: on 1 March in other years).
        3. Missing when either date is missing; a reference before birth is a DataError
           naming the records.
        4. ``new_var_unit`` = the unit in upper case (``YEARS``) where the age is present.

    Rule: ADaMIG 1.3 ADSL AAGE/AAGEU (analysis age when AGE is not the analysis age).
    """
    func = "derive_vars_aage"
    _require_dates(dataset, [start_date, end_date], func=func, arg="start_date/end_date")
    age = compute_duration(dataset[start_date], dataset[end_date], out_unit=age_unit,
                           add_one=False, trunc_out=True, type=type)
    neg = np.flatnonzero(age < 0)
    if len(neg):
        raise DataError([Problem(f"{func}: record {r + 1}: {end_date} is before {start_date}",
                                 column=end_date) for r in neg[:20]])
    out = dataset.copy(deep=False)
    out[new_var] = pd.Series(age, index=dataset.index)
    unit = _unit(age_unit, func=func, arg="age_unit").upper()
    out[new_var_unit] = pd.Series(np.where(np.isnan(age), None, unit), index=dataset.index,
                                  dtype="str")
    return out


def derive_var_age_years(dataset: pd.DataFrame, *, age_var: str = "AGE",
                         age_unit: str | None = None, new_var: str = "AAGE",
                         unit_var: str | None = None) -> pd.DataFrame:
    """Convert an age collected in any unit to years (e.g. ``AGE`` + ``AGEU`` -> years).

    admiral: ``derive_var_age_years()``.

    Arguments:
        age_var: the age; age_unit: its unit for every record, or None to read it per
            record from ``unit_var`` (default ``<age_var>U``, e.g. ``AGEU``).

    Algorithm:
        1. Unit per record (``age_unit`` or ``unit_var``; case-insensitive, e.g. YEARS,
           MONTHS, WEEKS, DAYS, HOURS); an unknown unit is a DataError naming the values.
        2. Years = age x unit length / 365.25 days (a month 30.4375 days), not rounded.
        3. Missing age or unit: missing.
    """
    func = "derive_var_age_years"
    _require_columns(dataset, [age_var], func=func, arg="age_var")
    age = pd.to_numeric(dataset[age_var], errors="coerce").to_numpy(float)
    if age_unit is not None:
        factor = np.full(len(dataset), _SECONDS[_unit(age_unit, func=func, arg="age_unit")])
    else:
        col = unit_var or f"{age_var}U"
        _require_columns(dataset, [col], func=func, arg="unit_var")
        raw = dataset[col]
        text = raw.astype("str").str.strip().str.lower().where(raw.notna())
        text = text.where(text != "")
        units = text.map(_UNIT_OF)
        bad = sorted(set(raw[text.notna() & units.isna()].astype(str)))
        if bad:
            raise DataError(Problem(f"{func}: unknown age unit(s) {', '.join(map(repr, bad))} "
                                    f"in {col}", column=col))
        factor = units.map(_SECONDS).to_numpy(dtype=float, na_value=np.nan)
    out = dataset.copy(deep=False)
    out[new_var] = pd.Series(age * factor / _SECONDS["years"], index=dataset.index)
    return out
