"""Analysis dates: ISO 8601 character dates (``--DTC``) to numeric dates with imputation.

ADaM analysis dates are numeric (``*DT``, ``*DTM``) and, when any part was imputed,
carry an imputation flag (``*DTF`` for the date part, ``*TMF`` for the time part)
with the ADaM controlled terms (codelist DATEFL: ``Y`` year, ``M`` month, ``D`` day
imputed; TIMEFL: ``H`` hour, ``M`` minute, ``S`` second imputed) -- ADaMIG 1.3
§3.1 ADaM variable conventions (timing variables and imputation flags).

Inputs handled: ``YYYY-MM-DDThh:mm:ss`` and every right-truncation of it
(``YYYY-MM-DDThh:mm``, ``YYYY-MM-DD``, ``YYYY-MM``, ``YYYY``), the SDTM ``-``
placeholder for a missing inner component (``2019---07``, ``--06-01``), ``""`` and
NaN (nothing collected). Anything else, or an impossible value (month 13,
30 February, hour 24) is a DataError naming the record and value -- a bad date
must not silently become a missing one.

Imputation follows admiral's cut: only "up to" a highest level can be imputed
(``highest_imputation``); once a component is missing, every lower component is
treated as missing too (``2019---07`` is ``2019``), and a lower level is never
imputed while a higher one is kept missing.

End dates: impute them with ``date_imputation="last"`` and cap them with
``max_dates`` (death date, data cut-off). An end date that ends up before its
start date is left as it is here -- it is a data issue the validation layer
reports (end before start), not something a derivation should hide.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from cdisc.errors import DataError, Problem, SpecError

from .flags import _as_list, _require_columns, _require_dates

__all__ = ["derive_vars_dt", "derive_vars_dtm", "derive_vars_dy"]

# (year, month, day, hour, minute, second) with "-" allowed for a missing inner part
_DTC_PATTERN = (
    r"^(?P<Y>\d{4}|-)?"
    r"(?:-(?P<M>\d{2}|-)?(?:-(?P<D>\d{2}|-)?)?)?"
    r"(?:T(?P<h>\d{2}|-)?(?::(?P<m>\d{2}|-)?(?::(?P<s>\d{2}|-)(?:\.\d+)?)?)?)?$"
)
_PARTS = ("Y", "M", "D", "h", "m", "s")
# a record's "missing level" is the highest missing component; rank = position
_DATE_LEVELS = {"n": 0, "D": 1, "M": 2, "Y": 3}
_DTM_LEVELS = {"n": 0, "s": 1, "m": 2, "h": 3, "D": 4, "M": 5, "Y": 6}
_MISSING_LEVEL_RANK = {"Y": 6, "M": 5, "D": 4, "h": 3, "m": 2, "s": 1}


def _parse_dtc(values: pd.Series, *, func: str, column: str) -> dict[str, np.ndarray]:
    """Split ISO 8601 (partial) dates into float component arrays (NaN = missing).

    Also returns ``blank`` (nothing collected) and ``level_rank``: 6 year missing,
    5 month, 4 day, 3 hour, 2 minute, 1 second, 0 complete to the second.
    Raises DataError for malformed strings and impossible components.
    """
    text = values.astype(object).where(values.notna(), "")
    text = pd.Series(text.astype(str).str.strip().to_numpy(), dtype="str")
    # dates repeat a lot: parse each distinct string once, then broadcast by code
    codes, uniques = pd.factorize(text)
    uniq = pd.Series(np.asarray(uniques, dtype=object), dtype="str")
    parts = uniq.str.extract(_DTC_PATTERN)
    blank = (uniq == "").to_numpy()[codes]
    # a string that does not match (e.g. "xyz", "2020-01-01Z") leaves every group empty
    bad = ~blank & ~parts.notna().any(axis=1).to_numpy()[codes]
    comp = {p: pd.to_numeric(parts[p], errors="coerce").to_numpy(dtype=float)[codes]
            for p in _PARTS}

    y, mo, d = comp["Y"], comp["M"], comp["D"]
    hh, mi, ss = comp["h"], comp["m"], comp["s"]
    bad = bad | (mo < 1) | (mo > 12) | (d < 1) | (hh > 23) | (mi > 59) | (ss > 59)
    ok_month = ~np.isnan(y) & ~np.isnan(mo) & (mo >= 1) & (mo <= 12)
    dim = np.full(len(text), 31.0)
    dim[ok_month] = _days_in_month(y[ok_month], mo[ok_month])
    bad = bad | ~np.isnan(d) & (d > dim)
    if bad.any():
        rows = np.flatnonzero(bad)
        problems = [Problem(f"{func}: invalid ISO 8601 date {values.iloc[r]!r} in record "
                            f"{r + 1}", column=column,
                            hint="expected YYYY[-MM[-DD[Thh[:mm[:ss]]]]] with '-' for a "
                                 "missing inner part")
                    for r in rows]
        raise DataError(problems)

    # propagate: once a component is missing, every lower one is treated as missing
    level_rank = np.zeros(len(text), dtype=np.int64)
    missing_above = np.zeros(len(text), dtype=bool)
    for p in _PARTS:
        miss = np.isnan(comp[p]) | missing_above
        comp[p] = np.where(miss, np.nan, comp[p])
        level_rank = np.where(miss & ~missing_above, _MISSING_LEVEL_RANK[p], level_rank)
        missing_above = missing_above | miss
    comp["blank"] = blank
    comp["level_rank"] = level_rank
    return comp


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    ym = ((year.astype(np.int64) - 1970) * 12 + (month.astype(np.int64) - 1)).astype("datetime64[M]")
    return ((ym + 1).astype("datetime64[D]") - ym.astype("datetime64[D]")).astype(float)


def _make_days(year: np.ndarray, month: np.ndarray, day: np.ndarray,
               valid: np.ndarray) -> np.ndarray:
    """datetime64[D] array from float components; NaT where not ``valid``."""
    y = np.where(valid, year, 1970).astype(np.int64)
    m = np.where(valid, month, 1).astype(np.int64)
    d = np.where(valid, day, 1).astype(np.int64)
    out = ((y - 1970) * 12 + (m - 1)).astype("datetime64[M]").astype("datetime64[D]") \
        + (d - 1).astype("timedelta64[D]")
    return np.where(valid, out, np.datetime64("NaT", "D"))


def _date_targets(date_imputation: str, *, func: str) -> tuple[str, tuple[float, float] | None]:
    """Parse ``date_imputation``: 'first'|'mid'|'last' or 'MM-DD'."""
    if date_imputation in ("first", "mid", "last"):
        return date_imputation, None
    try:
        mm, dd = (int(x) for x in str(date_imputation).split("-"))
        # checked against a leap year: '02-29' is allowed (capped to 28 when needed)
        if not (1 <= mm <= 12 and 1 <= dd <= _days_in_month(np.array([2000.0]),
                                                            np.array([float(mm)]))[0]):
            raise ValueError
    except ValueError:
        raise SpecError(f"{func}: date_imputation must be 'first', 'mid', 'last' or "
                        f"'MM-DD', not {date_imputation!r}") from None
    return "fixed", (float(mm), float(dd))


def _impute_date_part(comp: dict[str, np.ndarray], how: str,
                      fixed: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Impute month/day (year stays missing; it needs min/max dates).

    Returns the imputed date (NaT where the year is missing) and the lowest and
    highest possible date of each (partial) value, for the min/max restriction.
    """
    y, mo, d = comp["Y"], comp["M"], comp["D"]
    has_y = ~np.isnan(y)
    has_m = ~np.isnan(mo)
    has_d = ~np.isnan(d)
    # month
    if how == "first":
        mon_fill = 1.0
    elif how == "mid":
        mon_fill = 6.0
    elif how == "last":
        mon_fill = 12.0
    else:
        mon_fill = fixed[0]
    month = np.where(has_m, mo, mon_fill)
    dim = np.full(len(y), 31.0)
    dim[has_y] = _days_in_month(y[has_y], month[has_y])
    # day: missing month -> both imputed (mid = 30 June); missing day only -> 15th
    if how == "first":
        day_fill = np.ones(len(y))
    elif how == "mid":
        day_fill = np.where(has_m, 15.0, 30.0)
    elif how == "last":
        day_fill = dim
    else:
        day_fill = np.minimum(fixed[1], dim)
    day = np.where(has_d, d, day_fill)
    imputed = _make_days(y, month, day, has_y)
    lower = _make_days(y, np.where(has_m, mo, 1.0), np.where(has_d, d, 1.0), has_y)
    up_month = np.where(has_m, mo, 12.0)
    up_dim = np.full(len(y), 31.0)
    up_dim[has_y] = _days_in_month(y[has_y], up_month[has_y])
    upper = _make_days(y, up_month, np.where(has_d, d, up_dim), has_y)
    return imputed, lower, upper


def _restrict(imputed: np.ndarray, lower: np.ndarray, upper: np.ndarray,
              allowed: np.ndarray, bounds: list[np.ndarray], *, kind: str) -> np.ndarray:
    """admiral's min/max rule: only a bound inside the possible range is applied.

    For a minimum date m in [lower, upper]: imputed = max(imputed, m); for a
    maximum date: imputed = min(imputed, m). A missing ``lower``/``upper`` (year
    missing) means an unbounded range, and a missing imputed value (year missing)
    is taken from the bound. Records whose imputation is not allowed stay as they are.
    """
    out = imputed.copy()
    lo_ok = np.isnat(lower)
    hi_ok = np.isnat(upper)
    for b in bounds:
        in_range = ~np.isnat(b) & (lo_ok | (b >= lower)) & (hi_ok | (b <= upper)) & allowed
        if kind == "min":
            take = in_range & (np.isnat(out) | (b > out))
        else:
            take = in_range & (np.isnat(out) | (b < out))
        out = np.where(take, b, out)
    return out


def _is_date_column(name: str, values: np.ndarray) -> bool:
    """A bound column holds dates (not datetimes): its name ends in ``DT`` (the ADaM
    convention: ``*DT`` dates, ``*DTM`` datetimes), or, for other names, every value is
    at 00:00:00."""
    if name.upper().endswith("DTM"):
        return False
    if name.upper().endswith("DT"):
        return True
    ok = values[~np.isnat(values)]
    return bool(len(ok)) and bool((ok == ok.astype("datetime64[D]")).all())


def _bound_arrays(dataset: pd.DataFrame, cols: Any, *, func: str, arg: str,
                  unit: str, date_end_of_day: bool = False) -> list[np.ndarray]:
    """The bound columns as datetime64[unit] arrays. With ``date_end_of_day`` (the
    maximum bounds of a datetime) a date bound means the whole day: 23:59:59 (admiral
    ``convert_date_to_dtm(time_imputation = "last")``)."""
    cols = _as_list(cols)
    _require_dates(dataset, cols, func=func, arg=arg)
    arrays = []
    for c in cols:
        values = dataset[c]
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_localize(None)
        arr = values.to_numpy().astype(f"datetime64[{unit}]")
        if date_end_of_day and _is_date_column(str(c), arr):
            arr = arr.astype("datetime64[D]").astype("datetime64[s]") + np.timedelta64(86399, "s")
        arrays.append(arr)
    return arrays


def _check_year_imputation(highest: str, how: str, min_dates: Any, max_dates: Any,
                           *, func: str) -> None:
    if highest != "Y":
        return
    if how == "first" and not _as_list(min_dates):
        raise SpecError(f"{func}: highest_imputation='Y' with date_imputation='first' "
                        "needs min_dates (a missing year can only be taken from a date)")
    if how == "last" and not _as_list(max_dates):
        raise SpecError(f"{func}: highest_imputation='Y' with date_imputation='last' "
                        "needs max_dates")
    if how not in ("first", "last"):
        raise SpecError(f"{func}: highest_imputation='Y' needs date_imputation "
                        "'first' or 'last'")


def _date_flag(level_rank: np.ndarray, result_ok: np.ndarray) -> np.ndarray:
    """DATEFL: Y (year..day imputed), M (month+day), D (day), else missing."""
    flag = np.full(len(level_rank), None, dtype=object)
    flag[(level_rank == 6) & result_ok] = "Y"
    flag[(level_rank == 5) & result_ok] = "M"
    flag[(level_rank == 4) & result_ok] = "D"
    return flag


def _want_flag(flag_imputation: Any, highest: str, *, func: str) -> bool:
    if flag_imputation == "auto":
        return highest != "n"
    if isinstance(flag_imputation, bool):
        return flag_imputation
    raise SpecError(f"{func}: flag_imputation must be true, false or 'auto', "
                    f"not {flag_imputation!r}")


def derive_vars_dt(dataset: pd.DataFrame, *, new_vars_prefix: str, dtc: str,
                   highest_imputation: str = "n", date_imputation: str = "first",
                   flag_imputation: bool | str = True, min_dates: Any = None,
                   max_dates: Any = None) -> pd.DataFrame:
    """Derive a numeric date ``<prefix>DT`` and its flag ``<prefix>DTF`` from ``--DTC``.

    Arguments:
        new_vars_prefix: e.g. ``"AST"`` -> ``ASTDT``/``ASTDTF``; ``"A"`` -> ``ADT``.
        dtc: the ISO 8601 character date column (a time part is ignored).
        highest_imputation: highest component that may be imputed: ``"n"`` none,
            ``"D"`` day, ``"M"`` month (and day), ``"Y"`` year (and month, day;
            needs ``min_dates`` with ``"first"`` or ``max_dates`` with ``"last"``).
            A value missing a higher component gives a missing date.
        date_imputation: ``"first"`` (1st / 1 January), ``"mid"`` (15th / 30 June),
            ``"last"`` (last day of the month -- 29 in a leap February -- / 31
            December) or ``"MM-DD"`` (a fixed day of year; its day is used, capped at
            the month's length, when only the day is missing).
        flag_imputation: ``True`` always add ``<prefix>DTF``, ``False`` never,
            ``"auto"`` only when ``highest_imputation != "n"``.
        min_dates / max_dates: date columns (names) bounding the imputed date, e.g.
            ``["TRTSDT"]`` for an AE start or ``["DTHDT", "DCUTDT"]`` for an end date.

    Algorithm:
        1. Parse ``dtc`` into year, month, day; a missing component makes every
           lower one missing; invalid values raise DataError.
        2. The missing level is the highest missing component (Y, M or D); if it is
           above ``highest_imputation`` the date is missing (not imputed).
        3. Impute the missing month/day per ``date_imputation``.
        4. For each ``min_dates`` column whose date lies within the range of dates
           the partial value allows, the imputed date becomes the later of the two;
           then likewise the earlier of it and each in-range ``max_dates`` date. So an
           AE start ``2021-03`` with first dose on 2021-03-10 is imputed to
           2021-03-10, not 2021-03-01, while ``2021-02`` stays 2021-02-01 (the dose
           date is outside February and would change a collected month). A missing
           year is taken from the bounds.
        5. ``<prefix>DTF`` = ``"D"``, ``"M"`` or ``"Y"`` for the imputed level where a
           date was produced, missing for complete dates (even if step 4 changed
           the day, the flag stays the level imputed).

    Rule: ADaMIG 1.3 §3.1 timing and imputation-flag conventions (numeric analysis
    dates; imputation flag
    ``*DTF`` required whenever a date is imputed) and ADaM CT codelist DATEFL.
    Output ``<prefix>DT`` has dtype ``datetime64[s]`` (time 00:00:00).
    """
    func = "derive_vars_dt"
    _require_columns(dataset, [dtc], func=func, arg="dtc")
    if highest_imputation not in _DATE_LEVELS:
        raise SpecError(f"{func}: highest_imputation must be one of n, D, M, Y, "
                        f"not {highest_imputation!r}")
    how, fixed = _date_targets(date_imputation, func=func)
    _check_year_imputation(highest_imputation, how, min_dates, max_dates, func=func)
    mins = _bound_arrays(dataset, min_dates, func=func, arg="min_dates", unit="D")
    maxs = _bound_arrays(dataset, max_dates, func=func, arg="max_dates", unit="D")

    comp = _parse_dtc(dataset[dtc], func=func, column=dtc)
    # time components do not matter for a date: rank 4..6 are Y/M/D missing
    rank = np.where(comp["level_rank"] >= 4, comp["level_rank"] - 3, 0)
    allowed = rank <= _DATE_LEVELS[highest_imputation]
    imputed, lower, upper = _impute_date_part(comp, how, fixed)
    imputed = _restrict(imputed, lower, upper, allowed, mins, kind="min")
    imputed = _restrict(imputed, lower, upper, allowed, maxs, kind="max")
    imputed = np.where(allowed, imputed, np.datetime64("NaT", "D"))

    out = dataset.copy(deep=False)
    out[f"{new_vars_prefix}DT"] = pd.Series(imputed.astype("datetime64[s]"),
                                            index=dataset.index)
    if _want_flag(flag_imputation, highest_imputation, func=func):
        flag = _date_flag(comp["level_rank"], ~np.isnat(imputed))
        out[f"{new_vars_prefix}DTF"] = pd.Series(flag, index=dataset.index, dtype="str")
    return out


def _time_targets(time_imputation: str, *, func: str) -> tuple[float, float, float]:
    if time_imputation == "first":
        return 0.0, 0.0, 0.0
    if time_imputation == "last":
        return 23.0, 59.0, 59.0
    try:
        h, m, s = (int(x) for x in str(time_imputation).split(":"))
        if not (0 <= h <= 23 and 0 <= m <= 59 and 0 <= s <= 59):
            raise ValueError
    except ValueError:
        raise SpecError(f"{func}: time_imputation must be 'first', 'last' or 'hh:mm:ss', "
                        f"not {time_imputation!r}") from None
    return float(h), float(m), float(s)


def derive_vars_dtm(dataset: pd.DataFrame, *, new_vars_prefix: str, dtc: str,
                    highest_imputation: str = "h", date_imputation: str = "first",
                    time_imputation: str = "first", flag_imputation: bool | str = True,
                    min_dates: Any = None, max_dates: Any = None,
                    ignore_seconds_flag: bool = False) -> pd.DataFrame:
    """Derive a numeric datetime ``<prefix>DTM`` with ``<prefix>DTF`` and ``<prefix>TMF``.

    Arguments (as :func:`derive_vars_dt`, plus):
        highest_imputation: ``"n"``, ``"s"`` (seconds), ``"m"`` (minutes and seconds),
            ``"h"`` (the whole time, default), ``"D"``, ``"M"``, ``"Y"``.
        time_imputation: ``"first"`` (00:00:00), ``"last"`` (23:59:59) or ``"hh:mm:ss"``.
        min_dates / max_dates: date or datetime columns bounding the imputed value
            (e.g. ``["TRTSDTM"]``). A date column (name ending in ``DT``, or every value
            at 00:00:00) as a minimum means 00:00:00 of that day, as a maximum
            23:59:59 of that day (admiral converts a date bound with
            ``convert_date_to_dtm(time_imputation = "last")``), so an end imputed on
            the cut-off day keeps the whole day instead of being cut to midnight.
        ignore_seconds_flag: when seconds are never collected, imputing only the
            seconds does not set ``TMF = "S"`` (ADaMIG 1.3 imputation-flag conventions allow this).

    Algorithm:
        1. Parse ``dtc``; a missing component makes every lower one missing.
        2. The missing level is the highest missing component (Y, M, D, h, m, s);
           above ``highest_imputation`` the result is missing.
        3. Impute missing month/day per ``date_imputation`` and the missing time
           components per ``time_imputation``.
        4. Apply ``min_dates`` then ``max_dates`` as in :func:`derive_vars_dt`, with the
           range of possible datetimes (e.g. ``2020-12-06`` spans 00:00:00-23:59:59).
        5. ``DTF`` as for dates; ``TMF`` = ``"H"`` when the hour was imputed (including
           every imputed date), ``"M"`` minutes, ``"S"`` seconds, missing otherwise.

    Rule: ADaMIG 1.3 §3.1 timing and imputation-flag conventions; ADaM CT DATEFL, TIMEFL.
    Output ``<prefix>DTM`` has dtype ``datetime64[s]``.
    """
    func = "derive_vars_dtm"
    _require_columns(dataset, [dtc], func=func, arg="dtc")
    if highest_imputation not in _DTM_LEVELS:
        raise SpecError(f"{func}: highest_imputation must be one of n, s, m, h, D, M, Y, "
                        f"not {highest_imputation!r}")
    how, fixed = _date_targets(date_imputation, func=func)
    hfill, mfill, sfill = _time_targets(time_imputation, func=func)
    _check_year_imputation(highest_imputation, how, min_dates, max_dates, func=func)
    mins = _bound_arrays(dataset, min_dates, func=func, arg="min_dates", unit="s")
    maxs = _bound_arrays(dataset, max_dates, func=func, arg="max_dates", unit="s",
                         date_end_of_day=True)

    comp = _parse_dtc(dataset[dtc], func=func, column=dtc)
    rank = comp["level_rank"]
    allowed = rank <= _DTM_LEVELS[highest_imputation]
    day, lower_d, upper_d = _impute_date_part(comp, how, fixed)

    def seconds(h: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
        return (h * 3600 + m * 60 + s).astype(np.int64).astype("timedelta64[s]")

    hh, mi, ss = comp["h"], comp["m"], comp["s"]
    tod = seconds(np.where(np.isnan(hh), hfill, hh), np.where(np.isnan(mi), mfill, mi),
                  np.where(np.isnan(ss), sfill, ss))
    tod_lo = seconds(np.where(np.isnan(hh), 0, hh), np.where(np.isnan(mi), 0, mi),
                     np.where(np.isnan(ss), 0, ss))
    tod_hi = seconds(np.where(np.isnan(hh), 23, hh), np.where(np.isnan(mi), 59, mi),
                     np.where(np.isnan(ss), 59, ss))
    imputed = day.astype("datetime64[s]") + tod
    # the range of a partial date: its first day at 00:00:00 .. its last day at 23:59:59
    date_partial = rank >= 4
    lower = lower_d.astype("datetime64[s]") + np.where(date_partial, np.timedelta64(0, "s"), tod_lo)
    upper = upper_d.astype("datetime64[s]") + np.where(
        date_partial, np.timedelta64(86399, "s"), tod_hi)
    imputed = _restrict(imputed, lower, upper, allowed, mins, kind="min")
    imputed = _restrict(imputed, lower, upper, allowed, maxs, kind="max")
    imputed = np.where(allowed, imputed, np.datetime64("NaT", "s"))
    ok = ~np.isnat(imputed)

    out = dataset.copy(deep=False)
    out[f"{new_vars_prefix}DTM"] = pd.Series(imputed, index=dataset.index)
    if _want_flag(flag_imputation, highest_imputation, func=func):
        out[f"{new_vars_prefix}DTF"] = pd.Series(_date_flag(rank, ok), index=dataset.index,
                                                 dtype="str")
        tmf = np.full(len(rank), None, dtype=object)
        tmf[(rank >= 3) & ok] = "H"
        tmf[(rank == 2) & ok] = "M"
        if not ignore_seconds_flag:
            tmf[(rank == 1) & ok] = "S"
        out[f"{new_vars_prefix}TMF"] = pd.Series(tmf, index=dataset.index, dtype="str")
    return out


def _dy_name(var: str, *, func: str) -> str:
    for suffix in ("DTM", "DT"):
        if var.endswith(suffix) and len(var) > len(suffix):
            return var[: -len(suffix)] + "DY"
    raise SpecError(f"{func}: cannot name a study day for {var!r} (not *DT or *DTM); "
                    "pass source_vars as a mapping {NEWDY: DATEVAR}")


def derive_vars_dy(dataset: pd.DataFrame, *, reference_date: str,
                   source_vars: str | Iterable[str] | Mapping[str, str]) -> pd.DataFrame:
    """Derive relative study days (``--DY``) from analysis dates.

    Arguments:
        reference_date: the day-1 date, usually ``TRTSDT`` (first dose/infusion).
        source_vars: date/datetime columns; ``ADT`` -> ``ADY``, ``ASTDTM`` -> ``ASTDY``;
            or a mapping ``{"NEWDY": "DATEVAR"}`` to name the result.

    Algorithm (for each source variable):
        1. Take the date parts of the source and reference dates (times ignored).
        2. d = source - reference in days.
        3. ``--DY`` = d + 1 if d >= 0 else d -- there is no day 0: the reference date
           is day 1 and the day before it is day -1.
        4. Missing when either date is missing. Values are float (SAS numeric).

    Rule: ADaMIG 1.3 BDS timing variables (ADY) / SDTMIG 3.4 §4.4.4 study day convention:
    ``ADY = ADT - TRTSDT + 1`` if ``ADT >= TRTSDT``, else ``ADT - TRTSDT``.
    """
    func = "derive_vars_dy"
    if isinstance(source_vars, Mapping):
        pairs = list(source_vars.items())
    else:
        pairs = [(_dy_name(v, func=func), v) for v in _as_list(source_vars)]
    _require_dates(dataset, [reference_date] + [v for _, v in pairs], func=func,
                   arg="reference_date/source_vars")
    ref = dataset[reference_date].to_numpy().astype("datetime64[D]")
    out = dataset.copy(deep=False)
    for new, var in pairs:
        src = dataset[var].to_numpy().astype("datetime64[D]")
        missing = np.isnat(src) | np.isnat(ref)
        diff = np.where(missing, 0, (src - np.where(missing, src, ref)).astype(np.int64))
        dy = np.where(diff >= 0, diff + 1, diff).astype(float)
        out[new] = pd.Series(np.where(missing, np.nan, dy), index=dataset.index)
    return out
