"""CRF dates and times as typed, one distinct value at a time (the rules: sdtm.functions.iso8601_dtc).

A study has a few thousand distinct dates however many records it has (cdisc.distinct hands
each distinct value over once), so each value is parsed by plain Python here: about 2 µs a
value, against a fixed ~10 ms for the ~50 pandas operations a column-wise parse needs, which
was a third of a small build's time. Parsed values are kept (``lru_cache``): a data cut, the
next build in the same process and the time of every test of a visit reuse them.
"""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

import numpy as np
import pandas as pd

MONTHS = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}

# ASCII digits only ([0-9], not \d, which also matches e.g. full-width digits); a letter
# run in a day, month, year, hour or minute place is an unknown token when it is in the
# study's list (UN, UNK, UNKN, ...), whatever its length
_DMY = re.compile(r"^(?P<d>[0-9]{1,2}|[A-Z]+)[-/ ](?P<m>[A-Z]+)[-/ ](?P<y>[0-9]{4}|[A-Z]+)$")
_ISO = re.compile(r"^(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2}))?)?$")
_TIME = re.compile(r"^(?P<h>[0-9]{1,2}|[A-Z]+):(?P<mi>[0-9]{2}|[A-Z]+)(?::(?P<s>[0-9]{2}))?$")
_YEAR = re.compile(r"[0-9]{4}")


def ascii_upper(value) -> str:
    """Stripped, upper-cased text; "?" (never a date or time) for text with a non-ASCII
    character, so that e.g. ``ſ`` is not read as the ``S`` it upper-cases to; "" for missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    text = str(value).strip()
    return "?" if not text.isascii() else text.upper()


def _number(token: str | None) -> int | None:
    return int(token) if token is not None and token.isdigit() else None


@lru_cache(maxsize=1 << 16)
def date_one(value: str, unknown: frozenset) -> tuple[str, bool, bool]:
    """One date as typed -> (ISO 8601 text or "", bad, complete); steps 1-3 and 5 of
    sdtm.functions._iso8601_dtc."""
    m = _DMY.search(value)
    if m is not None:
        form, day_tok, mon_tok, year_tok = "dmy", m["d"], m["m"], m["y"]
        mon = MONTHS.get(mon_tok)
    else:
        m = _ISO.search(value)
        if m is None:
            return "", value != "", False             # blank: not collected; anything else: malformed
        form, day_tok, mon_tok, year_tok = "iso", m["d"], m["m"], m["y"]
        mon = _number(mon_tok)
    year_known = _YEAR.fullmatch(year_tok) is not None and year_tok != "0000"
    mon_known = mon is not None and 1 <= mon <= 12
    mon_unknown = mon_tok in unknown or (form == "iso" and mon_tok is None)
    day = _number(day_tok)
    day_known = day is not None and 1 <= day <= 31
    day_unknown = day_tok in unknown or (form == "iso" and day_tok is None)
    parsed = (year_known or year_tok in unknown) and (mon_known or mon_unknown) and (day_known or day_unknown)
    if not parsed or not year_known:                  # no ISO 8601 value can carry an unknown year
        return "", True, False
    m2, d2 = f"{mon if mon_known else 0:02d}", f"{day if day_known else 0:02d}"
    if mon_known and day_known:
        try:
            dt.date(int(year_tok), mon, day)
        except ValueError:
            return "", True, False                    # 31-APR, 29-FEB of a common year
        return f"{year_tok}-{m2}-{d2}", False, True
    if mon_known:                                     # day unknown
        return f"{year_tok}-{m2}", False, False
    if day_unknown:                                   # month and day unknown
        return year_tok, False, False
    return f"{year_tok}---{d2}", False, False         # the IG's form for a missing month


@lru_cache(maxsize=1 << 14)
def time_one(value: str, unknown: frozenset) -> tuple[str, bool]:
    """One time as typed -> (ISO 8601 suffix "THH:MM[:SS]", "THH" or "", bad); step 4."""
    m = _TIME.search(value)
    if m is None:
        return "", value != ""
    h, mi, s = _number(m["h"]), _number(m["mi"]), _number(m["s"])
    h_ok = h is not None and h <= 23
    mi_ok = mi is not None and mi <= 59
    mi_unknown = m["mi"] in unknown
    if not ((h_ok or m["h"] in unknown) and (mi_ok or mi_unknown) and (m["s"] is None or s <= 59)):
        return "", True
    if h_ok and mi_unknown:
        return f"T{h:02d}", False
    if h_ok and mi_ok:
        return (f"T{h:02d}:{mi:02d}" + (f":{s:02d}" if m["s"] is not None else "")), False
    return "", False                                  # unknown hour: the time is dropped


def date_part(date: pd.Series, unknown_tokens) -> pd.DataFrame:
    """(text, bad, complete) for each value of ``date`` (give it distinct values)."""
    unknown = frozenset(t.upper() for t in unknown_tokens)
    got = [date_one(ascii_upper(v), unknown) for v in date.tolist()]
    text, bad, complete = zip(*got) if got else ((), (), ())
    return pd.DataFrame({"text": pd.Series(text, index=date.index, dtype="str"),
                         "bad": np.array(bad, dtype=bool), "complete": np.array(complete, dtype=bool)},
                        index=date.index)


def time_part(time: pd.Series, unknown_tokens) -> pd.DataFrame:
    """(suffix, bad) for each value of ``time`` (give it distinct values)."""
    unknown = frozenset(t.upper() for t in unknown_tokens)
    got = [time_one(ascii_upper(v), unknown) for v in time.tolist()]
    suffix, bad = zip(*got) if got else ((), ())
    return pd.DataFrame({"suffix": pd.Series(suffix, index=time.index, dtype="str"),
                         "bad": np.array(bad, dtype=bool)}, index=time.index)
