"""ISO 8601 date handling with CORE's semantics (cdisc_rules_engine.check_operators.helpers),
vectorised: each distinct text is parsed once with a regular expression over the whole
column, and comparisons are numpy operations on the parsed values.

CORE's rules, reproduced here:

- a value is a *valid date* when it matches CORE's ISO 8601 pattern (partial dates, ``-``
  for unknown components, intervals with ``/``) and, unless it contains an "uncertainty"
  (``/``, ``--`` or ``-:``), dateutil's ``isoparse`` accepts it (a real calendar date);
- its *precision* is the last component present before the first missing one
  (``2024-03`` -> month, ``2024---15`` -> year);
- two dates are compared at their common (lower) precision after truncating both;
  ``date_equal_to`` is false (``date_not_equal_to`` true) when the precisions differ;
- values are taken in UTC: a time-zone offset shifts the value (only without an uncertainty);
- anything that is not a valid date compares as false.
"""
from __future__ import annotations

import operator as _op
from datetime import datetime

import numpy as np
import pandas as pd

DATE_PATTERN = (
    r"^("
    r"(?P<year>-?[0-9]{4}|-)(-{1,2}(?P<month>1[0-2]|0[1-9]|-))?"
    r"(-{1,2}(?P<day>3[01]|0[1-9]|[12][0-9]|-))?"
    r"(T(?P<hour>2[0-3]|[01][0-9]|-)(:((?P<minute>[0-5][0-9]|-))"
    r"(:((?P<second>[0-5][0-9]|-))?(\.(?P<microsecond>[0-9]+))?)?)?"
    r"(?P<timezone>Z|[+-](2[0-3]|[01][0-9]):[0-5][0-9])?)?"
    r"(\/"
    r"(?P<interval_year>-?[0-9]{4}|-)(-{1,2}(?P<interval_month>1[0-2]|0[1-9]|-))?"
    r"(-{1,2}(?P<interval_day>3[01]|0[1-9]|[12][0-9]|-))?"
    r"(T(?P<interval_hour>2[0-3]|[01][0-9]|-)(:((?P<interval_minute>[0-5][0-9]|-))"
    r"(:((?P<interval_second>[0-5][0-9]|-))?(\.(?P<interval_microsecond>[0-9]+))?)?)?"
    r"(?P<interval_timezone>Z|[+-](2[0-3]|[01][0-9]):[0-5][0-9])?)?"
    r")?"
    r"|"
    r"-{4,8}T(?P<timeonly_hour>2[0-3]|[01][0-9]|-)(:((?P<timeonly_minute>[0-5][0-9]|-))"
    r"(:((?P<timeonly_second>[0-5][0-9]|-))?(\.(?P<timeonly_microsecond>[0-9]+))?)?)?"
    r"(?P<timeonly_timezone>Z|[+-](2[0-3]|[01][0-9]):[0-5][0-9])?"
    r")$"
)
COMPONENTS = ("year", "month", "day", "hour", "minute", "second", "microsecond")
DEFAULTS = (1970, 1, 1, 0, 0, 0, 0)
UNITS = ("Y", "M", "D", "h", "m", "s", "us")
UNCERTAIN = ("/", "--", "-:")

OPS = {
    "eq": _op.eq, "ne": _op.ne, "lt": _op.lt, "le": _op.le, "gt": _op.gt, "ge": _op.ge,
}


class Parsed:
    """Parsed distinct values: arrays indexed like ``uniques``."""

    def __init__(self, uniques: pd.Index):
        self.uniques = uniques
        n = len(uniques)
        s = pd.Series(uniques.astype(object), dtype=object)
        is_str = s.map(type).eq(str).to_numpy() if n else np.zeros(0, bool)
        text = pd.Series(np.where(is_str, s.to_numpy(dtype=object), ""), dtype=object)  # Python re, never pyarrow
        m = text.str.extract(DATE_PATTERN) if n else pd.DataFrame()
        matched = np.array(m[0].notna().to_numpy(dtype=bool)) if n else np.zeros(0, bool)
        matched = matched & is_str & (text.str.len().to_numpy() > 0 if n else np.zeros(0, bool))
        uncertain = np.zeros(n, bool)
        for sub in UNCERTAIN:
            uncertain = uncertain | text.str.contains(sub, regex=False).to_numpy(dtype=bool) if n else False

        def grp(name):
            if not n:
                return pd.Series([], dtype=object)
            return m[name] if name in m else pd.Series([np.nan] * n)

        comps = []
        for c in COMPONENTS:
            v = grp(c)
            if c != "year":
                v = v.fillna(grp(f"interval_{c}"))
            if c in ("hour", "minute", "second", "microsecond"):
                v = v.fillna(grp(f"timeonly_{c}"))
            if c == "year":
                v = v.fillna(grp("interval_year"))
            comps.append(v.astype(object).where(v.notna() & (v != "-") & (v != ""), None))
        present = np.array([c.notna().to_numpy() for c in comps]) if n else np.zeros((7, 0), bool)
        # precision: index of the first missing component, minus one (None -> -1)
        first_missing = np.where(present.all(axis=0), 7, np.argmin(present, axis=0)) if n else np.zeros(0, int)
        precision = first_missing - 1
        ints = []
        for i, c in enumerate(comps):
            v = pd.to_numeric(c, errors="coerce").to_numpy(dtype=float)
            ints.append(np.where(np.isnan(v), DEFAULTS[i], v).astype(np.int64))
        ints = np.array(ints) if n else np.zeros((7, 0), np.int64)
        # microseconds: dateutil reads a fraction ".5" as 500000 us; the uncertain path int("5")
        frac = comps[6].astype(object)
        frac_us = np.array([
            0 if f is None else (int((f + "000000")[:6]) if not u else int(f))
            for f, u in zip(frac, uncertain)
        ], dtype=np.int64) if n else np.zeros(0, np.int64)
        ints[6] = frac_us
        # calendar validity (dateutil isoparse rejects 2023-02-30)
        months_ok = (ints[1] >= 1) & (ints[1] <= 12)
        dim = _days_in_month(ints[0], np.clip(ints[1], 1, 12))
        cal_ok = months_ok & (ints[2] >= 1) & (ints[2] <= dim)
        # dateutil isoparse (values without an uncertainty): YYYY, YYYY-MM or YYYY-MM-DD, a time
        # only after a full date ("2003-20" matches the pattern as year + day, isoparse rejects it)
        has_time = present[3] if n else np.zeros(0, bool)
        iso_shape = (present[1] | ~present[2]) & (~has_time | (present[1] & present[2]))
        self.valid = matched & (uncertain | (cal_ok & iso_shape)) & ~(text.isin(["-"]).to_numpy() if n else False)
        self.valid = self.valid & ~(~uncertain & (grp("year").astype(str).str.startswith("-").to_numpy() if n else False))
        self.precision = np.where(self.valid & (precision >= 0), precision, -1)
        self.ints = ints
        # timestamp in microseconds since epoch (UTC), with the offset applied when certain
        ok = self.valid & cal_ok
        us = np.zeros(n, np.int64)
        if n and ok.any():
            dt = pd.to_datetime(
                pd.DataFrame({
                    "year": ints[0][ok], "month": ints[1][ok], "day": ints[2][ok],
                    "hour": ints[3][ok], "minute": ints[4][ok], "second": ints[5][ok],
                }),
                errors="coerce",
            )
            us[ok] = dt.to_numpy(dtype="datetime64[us]").astype(np.int64) + ints[6][ok]
        tz = grp("timezone").fillna(grp("interval_timezone")).fillna(grp("timeonly_timezone")) if n else pd.Series([], dtype=object)
        offset = np.zeros(n, np.int64)
        if n:
            t = tz.astype(object)
            has = t.notna().to_numpy() & (t != "Z").to_numpy() & ~uncertain
            if has.any():
                tt = t[has].astype(str)
                sign = np.where(tt.str[0] == "-", -1, 1)
                hh = tt.str[1:3].astype(int).to_numpy()
                mm = tt.str[4:6].astype(int).to_numpy()
                offset[has] = sign * (hh * 60 + mm) * 60_000_000
        self.timestamp = us - offset
        self.calendar_ok = cal_ok
        self._trunc = None

    def truncated(self) -> np.ndarray:
        """(8, n) int64: the timestamp truncated at each precision (row 7: no truncation)."""
        if self._trunc is None:
            ts = self.timestamp.astype("datetime64[us]")
            rows = [ts.astype(f"datetime64[{u}]").astype("datetime64[us]").astype(np.int64) for u in UNITS]
            rows.append(self.timestamp)
            self._trunc = np.array(rows) if len(self.timestamp) else np.zeros((8, 0), np.int64)
        return self._trunc

    def component(self, name: str) -> np.ndarray:
        """A component of the (UTC) datetime, e.g. "year"."""
        ts = pd.to_datetime(self.timestamp.astype("datetime64[us]"))
        return getattr(ts, name).to_numpy()


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    dim = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[month - 1]
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    return np.where((month == 2) & leap, 29, dim)


def _codes(values, uniques: pd.Index) -> np.ndarray:
    return uniques.get_indexer(pd.Index(np.asarray(values, dtype=object)))


_MEMO: dict[str, tuple] = {}  # text -> (valid, precision, calendar_ok, timestamp, truncations)
_MEMO_MAX = 2_000_000


class _View:
    """Parsed values looked up from the memo (same attributes as :class:`Parsed`)."""

    def __init__(self, uniques: pd.Index, rows: list[tuple]):
        self.uniques = uniques
        n = len(rows)
        self.valid = np.fromiter((r[0] for r in rows), bool, n)
        self.precision = np.fromiter((r[1] for r in rows), np.int64, n)
        self.calendar_ok = np.fromiter((r[2] for r in rows), bool, n)
        self.timestamp = np.fromiter((r[3] for r in rows), np.int64, n)
        self._trunc = np.array([r[4] for r in rows], dtype=np.int64).T if n else np.zeros((8, 0), np.int64)

    def truncated(self):
        return self._trunc

    def component(self, name: str) -> np.ndarray:
        ts = pd.to_datetime(self.timestamp.astype("datetime64[us]"))
        return getattr(ts, name).to_numpy()


def parse_values(*arrays) -> tuple[_View, list[np.ndarray]]:
    """Parse the distinct strings of several arrays at once (each text once per process);
    returns the parse and, per array, the index of each value in it."""
    vals = [np.asarray(a, dtype=object) for a in arrays]
    allv = np.concatenate([v.ravel() for v in vals]) if vals else np.array([], object)
    keep = [x for x in pd.unique(pd.Series(allv, dtype=object)) if isinstance(x, str)]
    uniques = pd.Index(keep, dtype=object)
    new = [x for x in keep if x not in _MEMO]
    if new:
        if len(_MEMO) + len(new) > _MEMO_MAX:
            _MEMO.clear()
        p = Parsed(pd.Index(new, dtype=object))
        tr = p.truncated()
        for i, x in enumerate(new):
            _MEMO[x] = (bool(p.valid[i]), int(p.precision[i]), bool(p.calendar_ok[i]), int(p.timestamp[i]),
                        tuple(int(v) for v in tr[:, i]))
    view = _View(uniques, [_MEMO[x] for x in keep])
    return view, [_codes(v, uniques) for v in vals]


def is_valid_date(values) -> np.ndarray:
    p, (codes,) = parse_values(values)
    return np.where(codes >= 0, p.valid[np.clip(codes, 0, None)] if len(p.valid) else False, False)


def compare(target, comparator, op: str, component: str | None = None) -> np.ndarray:
    """CORE's date comparison of a column with a column or a literal."""
    n = len(target)
    comp = comparator if isinstance(comparator, (np.ndarray, pd.Series, list)) else [comparator] * n
    p, (ct, cc) = parse_values(target, comp)
    if not len(p.uniques):
        return np.zeros(n, bool)
    ok = (ct >= 0) & (cc >= 0)
    it, ic = np.clip(ct, 0, None), np.clip(cc, 0, None)
    ok = ok & p.valid[it] & p.valid[ic]
    fn = OPS[op]
    if component not in (None, "auto"):
        vals = p.component(component)
        return ok & fn(vals[it], vals[ic])
    pt, pc = p.precision[it], p.precision[ic]
    common = np.minimum(pt, pc)
    ok = ok & (common >= 0)
    # a value without a calendar date (uncertain, e.g. 2024---31 in February) is not comparable
    ok = ok & p.calendar_ok[it] & p.calendar_ok[ic]
    tr = p.truncated()
    level = np.clip(common, 0, 6)
    tv, cv = tr[level, it], tr[level, ic]
    if component == "auto":
        return ok & fn(tv, cv)
    if op == "eq":
        return ok & (pt == pc) & (tv == cv)
    if op == "ne":
        return ok & ((pt != pc) | (tv != cv))
    return ok & fn(tv, cv)


def _fromisoformat_ok(x) -> bool:
    if not isinstance(x, str):
        return False
    try:
        datetime.fromisoformat(x)
        return True
    except ValueError:
        try:
            datetime.fromisoformat(x.replace("Z", "+00:00"))  # noqa: FURB162  (CORE does this)
            return True
        except ValueError:
            return False


def is_complete_date(values) -> np.ndarray:
    """``datetime.fromisoformat`` accepts the value (CORE's is_complete_date)."""
    a = np.asarray(values, dtype=object)
    uniq = pd.unique(pd.Series(a, dtype=object))
    ok = {u: _fromisoformat_ok(u) for u in uniq if isinstance(u, str)}  # one call per distinct text
    complete = [u for u, good in ok.items() if good]
    return pd.Series(a, dtype=object).isin(complete).to_numpy(dtype=bool)


def precision_format(values) -> list:
    """CORE's format_date_preserving_precision for each value ("" when not a date)."""
    p, (codes,) = parse_values(values)
    out = []
    fmts = ["%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%dT%H", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
    tr = p.truncated() if len(p.uniques) else None
    for c in codes:
        if c < 0 or p.precision[c] < 0:
            out.append("")
            continue
        prec = p.precision[c]
        ts = pd.Timestamp(int(tr[min(prec, 6), c]), unit="us")
        out.append(ts.strftime(fmts[prec]))
    return out
