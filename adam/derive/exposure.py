"""Exposure records: EX periods (one record from a start to an end date with a dose
frequency) expanded into one record per administered dose.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from cdisc.errors import DataError, Problem, SpecError

from .flags import _require_columns, _require_dates

__all__ = ["create_single_dose_dataset", "dose_freq_lookup"]

_WINDOWS = ("MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "YEAR")
# length of one window unit in days, as lubridate durations (admiral's compute_duration)
_UNIT_DAYS = {"MINUTE": 1 / 1440, "HOUR": 1 / 24, "DAY": 1.0, "WEEK": 7.0,
              "MONTH": 30.4375, "YEAR": 365.25}


def _number(value: Any, *, where: str) -> float:
    """A number or a fraction written ``'a/b'`` (data, not an expression)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        parts = [float(x) for x in str(value).replace(" ", "").split("/")]
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2 and parts[1] != 0:
            return parts[0] / parts[1]
        raise ValueError
    except ValueError:
        raise SpecError(f"create_single_dose_dataset: {where} must be a number or a "
                        f"fraction 'a/b', not {value!r}") from None


@lru_cache(maxsize=1)
def _shipped_lookup() -> tuple[dict[str, Any], ...]:
    text = resources.files("cdisc.adam.derive").joinpath("data/dose_freq_lookup.yaml").read_text()
    return tuple(yaml.safe_load(text)["frequencies"])


def dose_freq_lookup(lookup_table: Sequence[Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """The dose frequency table as a frame (``value``, ``dose_count``, ``dose_window``,
    ``conversion_factor``): the shipped one (admiral's ``dose_freq_lookup``) or a
    study's own list of entries."""
    entries = _shipped_lookup() if lookup_table is None else lookup_table
    rows = []
    for i, e in enumerate(entries):
        if not isinstance(e, Mapping) or not {"value", "dose_count", "dose_window"} <= set(e):
            raise SpecError(f"create_single_dose_dataset: lookup_table[{i}] needs value, "
                            "dose_count and dose_window")
        window = str(e["dose_window"]).upper()
        if window not in _WINDOWS:
            raise SpecError(f"create_single_dose_dataset: lookup_table[{i}].dose_window "
                            f"must be one of {', '.join(_WINDOWS)}, not {e['dose_window']!r}")
        count = _number(e["dose_count"], where=f"lookup_table[{i}].dose_count")
        if count <= 0:
            raise SpecError(f"create_single_dose_dataset: lookup_table[{i}].dose_count "
                            "must be positive")
        factor = _number(e.get("conversion_factor", 1 / _UNIT_DAYS[window]
                               if window in ("WEEK", "MONTH", "YEAR") else 1),
                         where=f"lookup_table[{i}].conversion_factor")
        rows.append({"value": str(e["value"]), "dose_count": count, "dose_window": window,
                     "conversion_factor": factor})
    frame = pd.DataFrame(rows)
    return frame.drop_duplicates(subset="value", keep="first").reset_index(drop=True)


def create_single_dose_dataset(dataset: pd.DataFrame, *, dose_freq: str = "EXDOSFRQ",
                               start_date: str = "ASTDT", end_date: str = "AENDT",
                               start_datetime: str | None = None,
                               end_datetime: str | None = None,
                               lookup_table: Sequence[Mapping[str, Any]] | None = None,
                               nominal_time: str | None = None) -> pd.DataFrame:
    """Expand exposure periods into one record per dose (e.g. an EX record "QD from
    1 to 7 January" into seven records).

    admiral: ``create_single_dose_dataset()`` with its ``dose_freq_lookup`` table, here
    shipped as data (``adam/derive/data/dose_freq_lookup.yaml``; a study may pass its own
    ``lookup_table`` entries ``{value, dose_count, dose_window, conversion_factor}``).

    Arguments:
        dose_freq: the frequency column (CDISC CT FREQ: QD, BID, Q2D, QOD, QW is written
            "EVERY WEEK", ONCE, ...).
        start_date / end_date: the period's dates (``*DT``).
        start_datetime / end_datetime: the datetimes (``*DTM``); required when a
            frequency is given in hours or minutes (BID, Q12H, ...).
        lookup_table: the frequency table (default: the shipped one).
        nominal_time: a numeric nominal time in hours (e.g. ``NFRLT``) advanced with
            each dose.

    Algorithm:
        1. Records with frequency ``ONCE`` are kept unchanged.
        2. Every other frequency must be in the table (else SpecError naming the
           values); its dates must be present and the end not before the start (else
           DataError naming the records).
        3. Number of dose periods, as admiral's ``compute_duration`` (inclusive: one
           input unit is added): DAY/WEEK/MONTH/YEAR windows ``(end_date - start_date +
           1 day)`` in the window unit (a week = 7 days, a month = 30.4375 days, a year
           = 365.25 days); HOUR/MINUTE windows ``(end - start, both floored to the
           hour/minute) + 1 unit`` from the datetimes.
        4. Number of doses = ceiling(periods x ``dose_count``); the k-th dose (k = 0,
           1, ...) is ``k / dose_count`` window units after the start: for
           DAY..YEAR windows ``floor(k / dose_count / conversion_factor)`` days (the time
           of day kept), for HOUR/MINUTE windows ``floor(k / dose_count)`` hours/minutes.
        5. Doses after ``end_date`` are dropped; each dose record gets start date =
           end date = its dose date, ``dose_freq`` = ``ONCE``; for DAY..YEAR windows
           the end datetime is the dose date at the time of ``end_datetime``, for
           HOUR/MINUTE windows it is the dose datetime.
        6. Output: the ONCE records, then the expanded records (each period's doses in
           time order); every column of the source record is kept; index reset.

    Differences from admiral (deliberate): the date of an hourly dose is the date part of
    its datetime (admiral adds whole days of the increment to the start date, so a
    20:00 + 12 h dose keeps the previous date); "N TIMES PER DAY" is N/24 doses per hour
    in the shipped table; all source columns are kept (admiral's ``keep_source_vars``
    default keeps a few).

    Rule: SDTMIG 3.4 EX (one record per constant-dosing interval; EXDOSFRQ CT FREQ);
    ADaM exposure analyses need one record per administration.
    """
    func = "create_single_dose_dataset"
    _require_columns(dataset, [dose_freq], func=func, arg="dose_freq")
    _require_dates(dataset, [start_date, end_date], func=func, arg="start_date/end_date")
    if (start_datetime is None) != (end_datetime is None):
        raise SpecError(f"{func}: give both start_datetime and end_datetime, or neither")
    if start_datetime:
        _require_dates(dataset, [start_datetime, end_datetime], func=func,
                       arg="start_datetime/end_datetime")
    if nominal_time:
        _require_columns(dataset, [nominal_time], func=func, arg="nominal_time")
    lookup = dose_freq_lookup(lookup_table)
    data = dataset.reset_index(drop=True)
    freq = data[dose_freq].astype(object).where(data[dose_freq].notna(), None)
    once = (freq == "ONCE").to_numpy()
    rest = data[~once]
    info = rest[[dose_freq]].merge(lookup, how="left", left_on=dose_freq, right_on="value",
                                   sort=False)
    unknown = info[dose_freq][info["value"].isna()].unique()
    if len(unknown):
        raise SpecError(f"{func}: {dose_freq} value(s) {', '.join(map(repr, map(str, unknown)))} "
                        "are not in the dose frequency lookup table",
                        hint="add them to lookup_table, or map them to a CT FREQ value first")
    window = info["dose_window"].to_numpy()
    sub_day = np.isin(window, ("HOUR", "MINUTE"))
    if sub_day.any() and not start_datetime:
        raise SpecError(f"{func}: frequencies more frequent than daily "
                        f"({', '.join(sorted(set(info[dose_freq][sub_day].astype(str))))}) "
                        "need start_datetime and end_datetime")
    date_cols = [start_date, end_date] + ([start_datetime, end_datetime]
                                          if start_datetime else [])
    missing = rest[date_cols].isna().any(axis=1).to_numpy()
    if missing.any():
        rows = np.flatnonzero(~once)[missing]
        raise DataError([Problem(f"{func}: record {r + 1} ({dose_freq} "
                                 f"{data[dose_freq].iloc[r]!r}) has a missing "
                                 f"{', '.join(c for c in date_cols if pd.isna(data[c].iloc[r]))}",
                                 hint="impute the period's dates first (derive_vars_dt "
                                      "with max_dates)") for r in rows[:20]])
    count = info["dose_count"].to_numpy(float)
    factor = info["conversion_factor"].to_numpy(float)
    sd = rest[start_date].to_numpy().astype("datetime64[D]")
    ed = rest[end_date].to_numpy().astype("datetime64[D]")
    backwards = np.flatnonzero(ed < sd)
    if len(backwards):
        rows = np.flatnonzero(~once)[backwards]
        raise DataError([Problem(f"{func}: record {r + 1}: {end_date} "
                                 f"{data[end_date].iloc[r]:%Y-%m-%d} is before {start_date} "
                                 f"{data[start_date].iloc[r]:%Y-%m-%d}", column=end_date)
                         for r in rows[:20]])
    days = (ed - sd).astype(np.int64) + 1.0                 # inclusive, add_one
    unit_days = np.array([_UNIT_DAYS[w] for w in window]) if len(window) else np.zeros(0)
    periods = days / np.where(sub_day, 1.0, unit_days)
    if start_datetime and sub_day.any():
        unit_s = np.where(window == "HOUR", 3600, 60)
        sdt = rest[start_datetime].to_numpy().astype("datetime64[s]").astype(np.int64)
        edt = rest[end_datetime].to_numpy().astype("datetime64[s]").astype(np.int64)
        sub = (edt // unit_s - sdt // unit_s) + 1.0           # floor_in, add_one
        periods = np.where(sub_day, sub, periods)
    # ceiling with a tolerance so 7 x 1/7 is 1, not 1.0000000000000002 -> 2
    n_doses = np.ceil(np.round(periods * count, 9)).astype(np.int64)
    n_doses = np.maximum(n_doses, 0)
    rep = np.repeat(np.arange(len(rest)), n_doses)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n_doses) - n_doses, n_doses)
    incr = k / count[rep]                                   # in window units
    expanded = rest.iloc[rep].reset_index(drop=True)
    sub_rep = sub_day[rep]
    day_shift = np.floor(np.round(incr / factor[rep], 9)).astype(np.int64)
    sec_shift = np.where(window[rep] == "HOUR", 3600, 60) * np.floor(np.round(incr, 9)).astype(np.int64)
    new_sd = sd[rep] + np.where(sub_rep, 0, day_shift).astype("timedelta64[D]")
    if start_datetime:
        sdt = rest[start_datetime].to_numpy().astype("datetime64[s]")[rep]
        new_sdt = sdt + np.where(sub_rep, sec_shift, day_shift * 86400).astype("timedelta64[s]")
        new_sd = np.where(sub_rep, new_sdt.astype("datetime64[D]"), new_sd)
        edt = rest[end_datetime].to_numpy().astype("datetime64[s]")[rep]
        end_tod = edt - edt.astype("datetime64[D]").astype("datetime64[s]")
        new_edt = np.where(sub_rep, new_sdt, new_sd.astype("datetime64[s]") + end_tod)
    keep = new_sd <= ed[rep]
    expanded[dose_freq] = "ONCE"
    expanded[start_date] = pd.Series(new_sd.astype("datetime64[s]")).astype(data[start_date].dtype)
    expanded[end_date] = expanded[start_date]
    if start_datetime:
        expanded[start_datetime] = pd.Series(new_sdt).astype(data[start_datetime].dtype)
        expanded[end_datetime] = pd.Series(new_edt.astype("datetime64[s]")).astype(
            data[end_datetime].dtype)
    if nominal_time:
        shift_h = np.where(sub_rep, sec_shift, day_shift * 86400) / 3600.0
        expanded[nominal_time] = pd.to_numeric(expanded[nominal_time]) + shift_h
    expanded = expanded[keep]
    return pd.concat([data[once], expanded], ignore_index=True, sort=False)
