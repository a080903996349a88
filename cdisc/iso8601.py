"""ISO 8601 date/time values as SDTM writes them (SDTMIG 3.4 §4.4.1-4.4.2), shared by every layer.

SDTM keeps dates as ISO 8601 text: values are right-truncated to the precision collected,
and a component that is missing in the middle is shown as a single hyphen, e.g.
``2003---15`` or ``-----T07:15``.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

# One date/time component that may be unknown ("-") in the middle of a value.
_Y = r"(?:\d{4}|-)"
_M = r"(?:0[1-9]|1[0-2]|-)"
_D = r"(?:0[1-9]|[12]\d|3[01]|-)"
_HH = r"(?:[01]\d|2[0-3]|-)"
_MM = r"(?:[0-5]\d|-)"
_SS = r"(?:[0-5]\d(?:\.\d+)?|-)"
_TZ = r"(?:Z|[+-](?:[01]\d|2[0-3])(?::[0-5]\d)?)?"
_TIME = rf"T{_HH}(?::{_MM}(?::{_SS})?)?{_TZ}"

#: SDTMIG 3.4 §4.4.1/§4.4.2 --DTC value: right-truncated, middle components may be "-",
#: a time needs all three date slots, and the value never ends in "-" (a missing
#: trailing component is dropped, not hyphenated).
ISO8601_DTC = rf"^(?=.*[0-9])(?!.*-$){_Y}(?:-{_M}(?:-{_D}(?:{_TIME})?)?)?$"
ISO8601_DTC_RE = re.compile(ISO8601_DTC)

#: Right-truncated values only (no unknown middle component, no time zone): these can be
#: compared as text at a shared precision because every component is fixed width.
TRUNCATED = r"^\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?)?)?$"

_FULL_DATE = r"^\d{4}-\d{2}-\d{2}"


def by_distinct(s: pd.Series, test, missing: bool) -> np.ndarray:
    """``test`` (a vectorised bool function of a string Series) applied once per distinct
    value of ``s`` and spread back to every row; missing values get ``missing``.

    Coded columns (--TESTCD, dates, units) have few distinct values per many records, so this
    is what makes the text tests cheap on a million-row LB.
    """
    from cdisc.distinct import factorize

    codes, uniques = factorize(s, use_na_sentinel=True)
    if not len(uniques):
        return np.full(len(s), missing, dtype=bool)
    ok = np.asarray(test(pd.Series(np.asarray(uniques, dtype=object), dtype="string")), dtype=bool)
    return np.where(codes < 0, missing, ok[np.maximum(codes, 0)])


_STR = np.dtypes.StringDType()


def _blank_text(u: pd.Series) -> np.ndarray:
    # np.strings: C loops, variable width (no padding of long texts); same whitespace as str.strip
    return np.strings.str_len(np.strings.strip(u.to_numpy(dtype=object).astype(_STR))) == 0


def blank(s: pd.Series) -> pd.Series:
    """Missing in the SDTM sense: NaN/None, or a string of only spaces (XPT blank)."""
    if s.dtype.kind in "fiub":
        return s.isna()
    return pd.Series(by_distinct(s, _blank_text, True), index=s.index)


def iso8601_valid(s: pd.Series, allow_interval: bool = False) -> pd.Series:
    """Whether each non-blank value is a valid SDTM ISO 8601 date/time (blanks are True).

    Args:
        s: character series of --DTC values.
        allow_interval: also accept ``start/end`` intervals (SDTMIG 3.4 §4.4.3).

    Algorithm:
        1. Blank values pass (a missing date is checked by the Req/not-null rule).
        2. Each value (or each side of an interval) must match ``ISO8601_DTC``.
        3. Values with a full calendar date must name a real day (2023-02-30 fails).
    """
    return pd.Series(by_distinct(s, lambda u: _valid_or_blank(u, allow_interval), True), index=s.index)


def _valid_or_blank(text: pd.Series, allow_interval: bool) -> pd.Series:
    is_blank = _blank_text(text)
    if allow_interval:
        parts = text.str.split("/", n=1, expand=True)
        left = parts[0]
        right = parts[1] if parts.shape[1] > 1 else pd.Series(pd.NA, index=text.index, dtype="string")
        ok = _one_valid(left) & (right.isna() | _one_valid(right))
    else:
        ok = _one_valid(text)
    return (is_blank | ok.to_numpy(dtype=bool))


def _one_valid(text: pd.Series) -> pd.Series:
    ok = text.str.match(ISO8601_DTC).fillna(False).astype(bool)
    has_date = text.str.match(_FULL_DATE).fillna(False).astype(bool)
    real = pd.to_datetime(text.str.slice(0, 10).where(has_date), format="%Y-%m-%d", errors="coerce")
    return ok & ~(has_date & real.isna())




def is_iso8601(value: str, allow_interval: bool = False) -> bool:
    """One value (a spec setting, a TS value): a valid SDTM ISO 8601 date/time."""
    return bool(iso8601_valid(pd.Series([value], dtype="string"), allow_interval).iloc[0]) and bool(str(value).strip())
