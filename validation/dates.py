"""ISO 8601 and SAS date helpers shared by the GE expectations and the rule checks.

SDTM keeps dates as ISO 8601 text (SDTMIG 3.4 §4.4.1 formats, §4.4.2 precision: values
are right-truncated to the precision collected, and a component that is missing in the
middle is shown as a single hyphen, e.g. ``2003---15`` or ``-----T07:15``). ADaM keeps
numeric SAS dates (days since 1960-01-01, or seconds for datetimes) whose meaning comes
from the variable's display format (ADaMIG 1.3 §3.1.2: *DT, *DTM, *TM).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cdisc.iso8601 import (  # noqa: F401
    _FULL_DATE,
    ISO8601_DTC,
    ISO8601_DTC_RE,
    TRUNCATED,
    by_distinct,
    _one_valid,
    blank,
    iso8601_valid,
)
from cdisc.distinct import factorize, known
from cdisc.sasformats import format_kind


def iso_date(s: pd.Series) -> pd.Series:
    """The calendar date (datetime64, day precision) of values with a complete date; NaT otherwise.

    Element-wise, so parsed once per distinct value (cdisc.distinct.on_distinct): a --DTC
    column has a few thousand dates over a million records."""
    from cdisc.distinct import on_distinct

    out = on_distinct(s, _iso_date)
    out.name = s.name
    return out


def _iso_date(s: pd.Series) -> pd.Series:
    text = s.astype("string")
    full = text.str.match(_FULL_DATE).fillna(False).astype(bool)
    return pd.to_datetime(text.str.slice(0, 10).where(full), format="%Y-%m-%d", errors="coerce")


def _comparable_test(u: pd.Series) -> pd.Series:
    return u.str.match(TRUNCATED).fillna(False) & _one_valid(u).fillna(False)


# text -> _comparable_test answer. The same --DTC column is compared with several others in one
# run (and the answer is a pure function of the text), so each distinct date is tested once.
_COMPARABLE: dict[str, bool] = {}


def _comparable(text: pd.Series) -> np.ndarray:
    """Valid right-truncated values (see compare_iso), tested once per distinct value."""
    return memo_distinct(text, _comparable_test, _COMPARABLE, False)


def memo_distinct(s: pd.Series, test, cache: dict, missing: bool) -> np.ndarray:
    """``cdisc.iso8601.by_distinct(s, test, missing)`` with the answers for texts kept in
    ``cache`` (``test`` must be a pure function of the text): only texts not seen before are
    tested. Values that are not str are tested every time (their text form depends on type)."""
    codes, uniques = factorize(s, use_na_sentinel=True)
    if not len(uniques):
        return np.full(len(s), missing, dtype=bool)
    u = np.asarray(uniques, dtype=object)
    ans = np.fromiter((cache.get(x, 2) if isinstance(x, str) else 2 for x in u), dtype=np.int8, count=len(u))
    miss = ans == 2
    if miss.any():
        new = np.asarray(test(pd.Series(u[miss], dtype="string")), dtype=bool)
        if len(cache) > 1_000_000:
            cache.clear()
        cache.update((x, bool(b)) for x, b in zip(u[miss].tolist(), new.tolist()) if isinstance(x, str))
        ans[miss] = new
    ok = ans.astype(bool)
    return np.where(codes < 0, missing, ok[np.maximum(codes, 0)])


def compare_iso(a: pd.Series, b: pd.Series) -> pd.Series:
    """Compare two ISO 8601 series at the precision both share: -1, 0, 1, or NaN.

    Args:
        a, b: aligned character series (same index).

    Algorithm (SDTMIG 3.4 §4.4.2: a partial date is only known to its precision):
        1. Only valid right-truncated values (``TRUNCATED``) on both sides are compared;
           others (blank, invalid, unknown middle component, time zone) give NaN.
        2. The shared precision is the shorter of the two lengths: every component is
           fixed width, so cutting both strings there cuts at a component boundary.
        3. The cut strings compare as text in chronological order.
    """
    # Invalid values (2023-02-30, hour 25) are the ISO 8601 rule's finding, not a date order.
    ok = _comparable(a) & _comparable(b)
    out = np.full(len(a), np.nan)
    if ok.any():
        # numpy StringDType: slicing and comparing in C loops, every row at once
        xa, xb = _strings(a, ok), _strings(b, ok)
        n = np.minimum(np.strings.str_len(xa), np.strings.str_len(xb))
        xa, xb = np.strings.slice(xa, 0, n), np.strings.slice(xb, 0, n)
        out[ok] = np.where(xa < xb, -1.0, np.where(xa > xb, 1.0, 0.0))
    return pd.Series(out, index=a.index)


_STR = np.dtypes.StringDType()


def _strings(s: pd.Series, rows: np.ndarray) -> np.ndarray:
    """The texts of ``s`` at ``rows`` (a mask) as numpy StringDType; made once per distinct value
    when the column's distinct values are known."""
    hit = known(s)
    if hit is None:
        return s.to_numpy(dtype=object)[rows].astype(_STR)
    codes, first = hit
    return s.to_numpy(dtype=object)[first].astype(_STR)[codes[rows]]


_SAS_EPOCH = pd.Timestamp("1960-01-01")
def sas_kind(fmt: str | None) -> str | None:
    """'date', 'datetime' or None from a SAS display format such as ``DATE9.`` (cdisc.sasformats)."""
    kind = format_kind(fmt)
    return kind if kind in ("date", "datetime") else None


def sas_to_datetime(s: pd.Series, fmt: str | None) -> pd.Series:
    """Convert a numeric SAS date/datetime series to datetime64 using its display format.

    Days since 1960-01-01 for date formats (DATE9., YYMMDD10., E8601DA.), seconds since
    1960-01-01T00:00 for datetime formats (DATETIME20., E8601DT.). Other formats: NaT.
    """
    kind = sas_kind(fmt)
    num = pd.to_numeric(s, errors="coerce")
    if kind == "date":
        return _SAS_EPOCH + pd.to_timedelta(num, unit="D")
    if kind == "datetime":
        return _SAS_EPOCH + pd.to_timedelta(num, unit="s")
    return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")


def sas_kind_any(fmt: str | None) -> str | None:
    """Like ``sas_kind`` but also recognises time formats (TIME8., E8601TM.) as 'time'."""
    kind = sas_kind(fmt)
    if kind is None and fmt:
        name = re.sub(r"[\d.]+$", "", fmt.strip().upper())
        if name.startswith(("TIME", "E8601TM", "IS8601TM", "HHMM", "TOD")):
            return "time"
    return kind


def to_sas_number(s: pd.Series, fmt: str | None) -> pd.Series:
    """SAS numbers from a date/datetime/time column that a reader converted to objects.

    pyreadstat turns DATE9./DATETIME20./TIME8. columns into ``datetime.date`` /
    ``datetime`` / ``time`` objects unless told not to; the checks and GE suites work on
    the SAS numbers (days or seconds since 1960-01-01, seconds since midnight).
    Numeric input is returned unchanged.

    Algorithm:
        1. Numeric dtype: unchanged.
        2. Time format: text ``HH:MM:SS`` -> seconds since midnight.
        3. Otherwise parse to datetime64 and count days (date) or seconds (datetime)
           since 1960-01-01.
    """
    if s.dtype.kind in "fiu":
        return s
    kind = sas_kind_any(fmt)
    if kind == "time":
        td = pd.to_timedelta(s.astype("string").where(~blank(s)), errors="coerce")
        return td.dt.total_seconds()
    dt = pd.to_datetime(s.where(~blank(s)) if s.dtype.kind != "M" else s, errors="coerce")
    delta = (dt - _SAS_EPOCH).dt.total_seconds()
    return np.floor(delta / 86400.0) if kind == "date" else delta


def sas_days(s: pd.Series, fmt: str | None) -> pd.Series:
    """Whole days since 1960-01-01 of a SAS date or datetime (for date comparisons)."""
    kind = sas_kind(fmt)
    num = pd.to_numeric(s, errors="coerce")
    if kind == "datetime":
        return np.floor(num / 86400.0)
    if kind == "date":
        return np.floor(num)
    return pd.Series(np.nan, index=s.index, dtype="float64")
