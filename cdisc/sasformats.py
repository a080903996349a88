"""SAS display formats that make a numeric variable a date, a datetime or a time.

One list for every reader and writer (XPT, Dataset-JSON, define.xml, validation), because
the format decides the unit of the number: days since 1960-01-01 for dates, seconds
since 1960-01-01T00:00 for datetimes, seconds since midnight for times.
"""
from __future__ import annotations

import re

_DATE_SEPARATED = ("DDMMYY", "MMDDYY", "YYMMDD", "YYMM", "MMYY", "YYQ")
DATE_FORMATS = frozenset({
    "DATE", "DAY", "DOWNAME", "E8601DA", "B8601DA", "IS8601DA", "JULDAY", "JULIAN",
    "MONNAME", "MONTH", "MONYY", "NENGO", "QTR", "WEEKDATE", "WEEKDATX", "WEEKDAY",
    "WORDDATE", "WORDDATX", "YEAR", "YYMON", "NLDATE", "MINGUO", "EURDFDE", "EURDFDD",
} | {f + sep for f in _DATE_SEPARATED for sep in ("", "B", "C", "D", "N", "P", "S", "X")})
DATETIME_FORMATS = frozenset({
    "DATETIME", "DATEAMPM", "DTDATE", "DTMONYY", "DTWKDATX", "DTYEAR", "DTYYQC", "E8601DT",
    "B8601DT", "IS8601DT", "E8601DN", "B8601DN", "E8601DZ", "B8601DZ", "IS8601DZ",
    "MDYAMPM", "NLDATM",
})
TIME_FORMATS = frozenset({
    "TIME", "TIMEAMPM", "TOD", "HHMM", "HOUR", "MMSS", "E8601TM", "B8601TM", "IS8601TM",
    "E8601TZ", "B8601TZ", "IS8601TZ", "E8601LZ", "NLTIME",
})
_FORMAT_RE = re.compile(r"^\$?([A-Z_]+(?:[0-9]+[A-Z_]+)?)(\d*)\.(\d*)$")


def format_name(fmt: str | None) -> str | None:
    """``E8601DA10.`` -> ``E8601DA``; ``DATE9`` -> ``DATE``; ``8.2`` -> ``""``; None stays None."""
    if not fmt:
        return None
    text = fmt.strip().upper()
    if "." not in text:
        text += "."
    m = _FORMAT_RE.match(text)
    if m:
        return m.group(1)
    return "" if re.fullmatch(r"\d*\.\d*", text) else None


def format_kind(fmt: str | None) -> str | None:
    """``"date"``, ``"datetime"``, ``"time"`` or None for a SAS format (``DATE9.``, ``TIME8.``, ``8.2``)."""
    name = format_name(fmt)
    if name in DATE_FORMATS:
        return "date"
    if name in DATETIME_FORMATS:
        return "datetime"
    if name in TIME_FORMATS:
        return "time"
    return None
