"""Vectorised SDTM mapping functions (the rules a spec can name).

Each function takes whole columns and returns whole columns plus a boolean mask of the
rows it could not map, so the engine can name file, row and column for every bad value.
No function loops over records.
"""
from __future__ import annotations

import string

import numpy as np
import pandas as pd

from cdisc.distinct import clean_text, on_distinct

# the CRF date and time grammar (ASCII digits, unknown tokens) lives in .crfdate, one value at a time
from .crfdate import MONTHS, _TIME, ascii_upper, date_part as _date_part, time_part as _time_part


def blank(s: pd.Series) -> pd.Series:
    """Missing or only blanks (SAS and XPT store a missing character value as blanks)."""
    return on_distinct(s, _blank_values)


def _blank_values(s: pd.Series) -> pd.Series:
    return s.isna() | s.astype("str").str.strip().eq("")


_blank = blank


def iso8601_dtc(date: pd.Series, time: pd.Series | None = None, *,
                unknown_tokens: list[str] = ("UN", "UNK", "UK", "XX", "UNKN")) -> tuple[pd.Series, pd.Series]:
    """See ``_iso8601_dtc``; parses each distinct date and each distinct time once.

    Findings forms repeat the same collection date on every test of a visit, so parsing
    the distinct values and taking the results back by position is ~10x less work.
    """
    dp = on_distinct(date, lambda u: _date_part(u, unknown_tokens))
    out, bad = dp["text"], dp["bad"]
    if time is not None:
        tp = on_distinct(time, lambda u: _time_part(u, unknown_tokens))
        out = out.mask(dp["complete"], out + tp["suffix"])
        bad = bad | tp["bad"]
    return out.where(out.ne("")), bad


def _iso8601_dtc(date: pd.Series, time: pd.Series | None = None, *,
                 unknown_tokens: list[str] = ("UN", "UNK", "UK", "XX", "UNKN")) -> tuple[pd.Series, pd.Series]:
    """Convert dates (and times) as typed on the CRF to ISO 8601 text, keeping partial dates partial.

    Accepted date spellings: ``DD-MON-YYYY`` (``12-MAR-2025``, case-insensitive, with ``-``,
    ``/`` or blank separators) where day or month may be any of the unknown tokens
    (``UN-MAR-2025``, ``UNK-UNK-2025``), and ISO ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``; years
    0001-9999. Times ``HH:MM[:SS]``, hour or minute may be an unknown token. ASCII only: a
    full-width digit or a letter that only upper-cases to ASCII (``ſep``) is not a date.

    Steps (SDTMIG 3.4 §4.4.2, dates are never imputed in SDTM):
    1. blank date -> blank --DTC (not an error: the date was not collected);
    2. known year, month and day -> ``YYYY-MM-DD``, checked to be a real calendar date;
    3. unknown day -> ``YYYY-MM``; unknown month and day -> ``YYYY``; unknown month but known
       day -> ``YYYY---DD`` (the IG's form for a missing month); unknown year -> blank and
       flagged, because no ISO 8601 value can carry it;
    4. a time is appended (``THH:MM[:SS]``) only to a complete date; an unknown minute keeps
       the hour (``THH``); an unknown hour drops the time;
    5. anything else is malformed and flagged.

    Returns (dtc, bad): ``bad`` marks non-blank values that are not a date (or time) in
    an accepted spelling.
    """
    dp = _date_part(date, unknown_tokens)
    out, bad = dp["text"], dp["bad"]
    if time is not None:
        tp = _time_part(time, unknown_tokens)
        out = out.mask(dp["complete"], out + tp["suffix"])
        bad = bad | tp["bad"]
    return out.where(out.ne("")), bad


def _ascii_upper(values: pd.Series) -> pd.Series:
    """crfdate.ascii_upper of each value (give it distinct values): the one rule for dates and times."""
    return pd.Series([ascii_upper(v) for v in values.tolist()], index=values.index, dtype="str")


def dtc_to_date(dtc: pd.Series) -> pd.Series:
    """The date part of complete ISO 8601 dates as datetime64; partial or blank -> NaT."""
    return on_distinct(dtc, _dtc_to_date)


def _dtc_to_date(dtc: pd.Series) -> pd.Series:
    text = dtc.astype("str").where(dtc.notna(), "").str.slice(0, 10)
    ok = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).astype(bool)
    return pd.to_datetime(text.where(ok), format="%Y-%m-%d", errors="coerce")


def study_day(dtc: pd.Series, reference_dtc: pd.Series) -> pd.Series:
    """--DY: study day of a date relative to the subject's RFSTDTC (SDTMIG 3.4 §4.4.4).

    1. both dates must be complete (at least YYYY-MM-DD); otherwise --DY is missing;
    2. --DY = date - RFSTDTC + 1 on or after the reference date, date - RFSTDTC before it,
       so there is no day 0 (day 1 is the day of first dose, the day before is -1).
    """
    d = dtc_to_date(dtc)
    r = dtc_to_date(reference_dtc)
    diff = (d - r).dt.days.astype("float64")
    return diff.where(diff < 0, diff + 1)


def sequence(frame: pd.DataFrame, *, by: str, order: list[str]) -> pd.Series:
    """--SEQ: 1, 2, ... per subject in the order of ``order`` (SDTMIG 3.4 §4.1.5).

    1. sort by ``by`` then ``order`` (missing values last), ties keep the raw file order
       (stable sort), so the numbering is reproducible run to run;
    2. number the records within each ``by`` group from 1.
    Returns a float series aligned to ``frame`` (XPT numerics are doubles).
    """
    pos = pd.Series(np.arange(len(frame)), index=frame.index, name="__pos")
    keyed = frame[[by] + order].assign(__pos=pos)
    ordered = keyed.sort_values([by] + order + ["__pos"], kind="stable", na_position="last")
    seq = ordered.groupby(by, sort=False).cumcount() + 1
    return seq.reindex(frame.index).astype("float64")


def template(fmt: str, resolve) -> pd.Series:
    """Concatenate columns and literal text, e.g. ``"{STUDYID}-{SUBJECT}"``.

    Only plain ``{NAME}`` fields are allowed (no attribute access, indexing or format
    specs: specs are data). A blank field makes the result blank, because an identifier
    built from a missing part would be wrong, not partial.
    """
    parts = list(string.Formatter().parse(fmt))
    fields = [f for _, f, _, _ in parts if f is not None]
    if not fields:
        raise ValueError("template needs at least one {FIELD}")
    for _, f, spec, conv in parts:
        if f is not None and (spec or conv or "__" in f or not all(part.isidentifier() for part in f.split("."))):
            raise ValueError(f"template field {{{f}}} must be a plain column name (dots allowed: {{IT.AETERM}})")
    cols = {f: resolve(f) for f in fields}
    index = next(iter(cols.values())).index
    out = pd.Series("", index=index, dtype="str")
    any_blank = pd.Series(False, index=index)
    for literal, f, _, _ in parts:
        out = out + literal
        if f is not None:
            col = cols[f]
            txt = clean_text(col)
            any_blank = any_blank | txt.eq("")
            out = out + txt
    return out.where(~any_blank)


#: A number as a CRF holds one: optional sign, digits with at most one decimal point, optional
#: exponent. Not accepted (each reported, never guessed): a decimal comma (``5,3``), a thousands
#: separator (``1,200`` or ``1 200``), ``NaN``, ``inf``, ``n/a``, hex, ``1_000``.
NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"


def parse_numbers(text: pd.Series) -> pd.Series:
    """Text that is a plain finite number (``NUMBER``, surrounding blanks allowed) -> float; else NaN."""
    return on_distinct(text, _parse_numbers)


def _parse_numbers(text: pd.Series) -> pd.Series:
    t = text.astype("str").where(text.notna(), "").str.strip()
    ok = t.str.match(NUMBER)
    num = pd.to_numeric(t.where(ok), errors="coerce").astype("float64")
    return num.where(np.isfinite(num.to_numpy(dtype="float64", na_value=np.nan)))


def to_number(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers as typed -> float; blank -> missing; anything else flagged (never coerced silently).

    Only plain finite numbers count (``NUMBER``): ``5,3``, ``1,200``, ``NaN``, ``inf`` and
    ``1e400`` are flagged, not read as a number, a missing value or infinity."""
    blank = _blank(raw)
    num = parse_numbers(raw.where(~blank, ""))
    return num, num.isna() & ~blank


def lookup(values: pd.Series, table: list[dict], *, key: str, field: str) -> tuple[pd.Series, pd.Series]:
    """Map values through a study.yaml table (arms, visits, ...); unmatched non-blank values are flagged.

    A row of the table whose ``field`` is empty (null) is a match with a missing result
    (e.g. a PK time point drawn between visits has no VISITNUM), not an unmatched value.
    """
    mapping = {str(row[key]).strip().casefold(): row.get(field) for row in table if key in row}
    norm = clean_text(values).str.casefold()
    out = norm.map(mapping)
    empty = norm.eq("")
    return out.where(~empty), ~norm.isin(list(mapping)) & ~empty


def epoch(dtc: pd.Series, usubjid: pd.Series, se: pd.DataFrame) -> pd.Series:
    """EPOCH of a record from the subject's SE (SDTMIG 3.4 §5.3, §7.2.2).

    1. take the record's date/time;
    2. find, for the same subject, the element with the latest SESTDTC on or before it.
       Times are used where both sides have them, so a pre-dose sample at 08:25 on the day
       of a 09:10 infusion belongs to the element before treatment. A record without a time
       on the day an element starts belongs to that element (it is placed at the end of
       its day), and an element start without a time is placed at the start of its day;
    3. a record after the subject's last element end (SEENDTC, compared the same way) or
       before the first start gets no EPOCH;
    4. a partial date (``2024-09``, ``2024``) is the span of days it may be: it gets the
       EPOCH of the element holding both its first and its last possible day, and none
       when an element boundary falls inside the span (then the epoch is unknown, not
       guessed).
    """
    when, has_time = dtc_to_datetime(dtc)
    when = when.where(has_time, when + pd.Timedelta(hours=23, minutes=59, seconds=59))
    out = pd.Series(None, index=dtc.index, dtype="str")
    ep, _ = _element_at(when, usubjid, se)
    out[:] = ep
    lo, hi = partial_date_span(dtc)
    partial = lo.notna() & when.isna()
    if partial.any():
        end_of_day = pd.Timedelta(hours=23, minutes=59, seconds=59)
        ep_lo, el_lo = _element_at((lo + end_of_day).where(partial), usubjid, se)
        ep_hi, el_hi = _element_at((hi + end_of_day).where(partial), usubjid, se)
        same = partial.to_numpy() & (el_lo == el_hi) & (el_lo >= 0)
        out[same] = ep_hi[same]
    return out


def _element_at(when: pd.Series, usubjid: pd.Series, se: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per record instant: the EPOCH and the row number in ``se`` of the subject's element then
    (-1 and None when there is none: no instant, before the first start, after the last end)."""
    n = len(when)
    epochs = np.full(n, None, dtype=object)
    rows = np.full(n, -1, dtype=np.int64)
    left = pd.DataFrame({"USUBJID": usubjid.astype("str").to_numpy(), "__d": when.astype("datetime64[s]").to_numpy(),
                         "__i": np.arange(n)})
    have = left[left["__d"].notna()].sort_values("__d", kind="stable")
    start, _ = dtc_to_datetime(se["SESTDTC"])
    end, end_time = dtc_to_datetime(se["SEENDTC"])
    end = end.where(end_time, end + pd.Timedelta(hours=23, minutes=59, seconds=59))
    right = se.assign(__s=start.astype("datetime64[s]"), __e=end.astype("datetime64[s]"),
                      __row=np.arange(len(se)))
    right = right[right["__s"].notna()].sort_values("__s", kind="stable")
    right = right.assign(USUBJID=right["USUBJID"].astype("str"))
    if have.empty or right.empty:
        return epochs, rows
    m = pd.merge_asof(have, right[["USUBJID", "__s", "__e", "EPOCH", "__row"]], left_on="__d", right_on="__s",
                      by="USUBJID", direction="backward")
    ok = m["__s"].notna() & ~(m["__e"].notna() & (m["__d"] > m["__e"]))
    idx = m["__i"].to_numpy()
    epochs[idx] = m["EPOCH"].where(ok).to_numpy(dtype=object)
    rows[idx] = m["__row"].where(ok, -1).fillna(-1).to_numpy(dtype=np.int64)
    epochs[pd.isna(epochs)] = None
    return epochs, rows


def partial_date_span(dtc: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The first and last day a partial ISO 8601 date may be: ``2024-09`` -> 2024-09-01 ..
    2024-09-30, ``2024`` -> 2024-01-01 .. 2024-12-31; NaT for complete, blank or other values."""
    span = on_distinct(dtc, _partial_date_span)
    return span["first"], span["last"]


def _partial_date_span(dtc: pd.Series) -> pd.DataFrame:
    text = dtc.astype("str").where(dtc.notna(), "").str.strip()
    ym = text.str.fullmatch(r"\d{4}-\d{2}").fillna(False).astype(bool)
    y = text.str.fullmatch(r"\d{4}").fillna(False).astype(bool)
    first = pd.to_datetime(text.where(ym, text.where(y) + "-01").where(ym | y), format="%Y-%m", errors="coerce")
    last_month = first.where(ym, first + pd.DateOffset(months=11))
    last = last_month + pd.offsets.MonthEnd(0)
    return pd.DataFrame({"first": first, "last": last.where(first.notna())})


def dtc_to_datetime(dtc: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Complete ISO 8601 dates/datetimes -> (datetime64, has_time); partial or blank -> NaT.

    ``YYYY-MM-DD`` gives midnight with ``has_time`` False; ``YYYY-MM-DDTHH:MM[:SS]`` gives the
    time with ``has_time`` True (an hour-only time ``THH`` counts as no time).
    """
    both = on_distinct(dtc, _dtc_to_datetime)
    return both["when"], both["has_time"]


def _dtc_to_datetime(dtc: pd.Series) -> pd.DataFrame:
    text = dtc.astype("str").where(dtc.notna(), "").str.strip()
    has_time = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?").fillna(False).astype(bool)
    stamp = pd.to_datetime(text.where(has_time).str.slice(0, 16), format="%Y-%m-%dT%H:%M", errors="coerce")
    day = _dtc_to_date(dtc)
    return pd.DataFrame({"when": stamp.where(has_time, day), "has_time": has_time})


def same_values(a: pd.Series, b: pd.Series) -> pd.Series:
    """Elementwise equality for comparing two copies of a value: both missing agree;
    numbers agree within 1e-9 relative; text agrees exactly after trimming."""
    am, bm = blank(a), blank(b)
    an, bn = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
    numeric = an.notna() & bn.notna()
    close = pd.Series(np.isclose(an.fillna(0).to_numpy(dtype="float64"), bn.fillna(0).to_numpy(dtype="float64"),
                                 rtol=1e-9, atol=0.0), index=a.index)
    text_eq = a.astype("str").str.strip().eq(b.astype("str").str.strip())
    return (am & bm) | (~am & ~bm & ((numeric & close) | (~numeric & text_eq)))


_QUALIFIED = r"^\s*(?P<op><=|>=|<|>)\s*(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"


def nrind(result: pd.Series, low: pd.Series, high: pd.Series, text: pd.Series | None = None) -> pd.Series:
    """--NRIND: the result against its reference range (SDTMIG 3.4 LB, codelist NRIND).

    Arguments: the standardised numeric result (--STRESN), range limits (--STNRLO,
    --STNRHI, same unit) and optionally --STRESC for results reported with a qualifier.

    Steps:
    1. a numeric result below the low limit is LOW, above the high limit HIGH, otherwise
       NORMAL (limits inclusive); a missing limit does not bound that side; with no limit at
       all the indicator is missing (there is no range to compare with);
    2. a result "<x" (or "<=x") with no number in --STRESN: LOW when x <= the low limit
       (every possible value is below it); NORMAL when x <= the high limit and the low limit
       is <= 0 (laboratory quantities are non-negative, so every value below x is inside the
       range, e.g. CRP "<5" with range 0-5); otherwise missing (undetermined);
    3. a result ">x" (or ">=x"): HIGH when x >= the high limit; otherwise missing;
    4. character results without a number get no indicator.
    """
    v = pd.to_numeric(result, errors="coerce").astype("float64")
    lo = pd.to_numeric(low, errors="coerce").astype("float64")
    hi = pd.to_numeric(high, errors="coerce").astype("float64")
    has_range = lo.notna() | hi.notna()
    out = pd.Series(np.nan, index=v.index, dtype="object")
    num = v.notna() & has_range
    out[num & (v < lo)] = "LOW"
    out[num & (v > hi)] = "HIGH"
    out[num & ~(v < lo) & ~(v > hi)] = "NORMAL"
    if text is not None:
        q = text.astype("str").where(text.notna(), "").str.extract(_QUALIFIED)
        x = pd.to_numeric(q["num"], errors="coerce")
        qual = v.isna() & x.notna() & has_range
        below = qual & q["op"].isin(["<", "<="])
        above = qual & q["op"].isin([">", ">="])
        out[below & (x <= lo)] = "LOW"
        out[below & ~(x <= lo) & (x <= hi) & (lo.isna() | (lo <= 0))] = "NORMAL"
        out[above & (x >= hi)] = "HIGH"
    return out


def baseline_flag(by: pd.DataFrame, dtc: pd.Series, result: pd.Series, reference: pd.Series) -> pd.Series:
    """--LOBXFL: "Y" on the last record with a result on or before the reference (SDTMIG 3.4 --LOBXFL, Findings class).

    Arguments: ``by`` the grouping columns (subject, test, specimen...), ``dtc`` the record
    date (--DTC), ``result`` the original result (a record without one cannot be baseline),
    ``reference`` the subject's reference start (e.g. DM.RFXSTDTC), aligned to the records.

    Steps:
    1. candidates have a non-blank result and a complete date;
    2. "on or before" compares date and time when both the record and the reference have a
       time (a Day 1 pre-dose sample drawn before the infusion start qualifies, one drawn
       after it does not), else the dates only;
    3. per group, the candidate with the latest date/time is flagged (ties: the last in
       record order); every other record is missing (never "N", per the IG).
    """
    rec, rec_t = dtc_to_datetime(dtc)
    ref, ref_t = dtc_to_datetime(reference)
    both = rec_t & ref_t
    before = ((both & (rec <= ref)) | (~both & (rec.dt.normalize() <= ref.dt.normalize()))).fillna(False)
    cand = ~blank(result) & rec.notna() & ref.notna() & before
    out = pd.Series(np.nan, index=dtc.index, dtype="object")
    if not cand.any():
        return out
    keys = by.loc[cand].astype("str")
    frame = keys.assign(__t=rec[cand], __pos=np.arange(int(cand.sum())))
    last = frame.sort_values(["__t", "__pos"], kind="stable").drop_duplicates(list(keys.columns), keep="last")
    out[last.index] = "Y"
    return out


def cases(conditions: list[pd.Series], values: list, index: pd.Index) -> pd.Series:
    """The value of the first condition that holds per record (missing when none holds).

    For derived qualifiers with more than one outcome, e.g. SDTMIG 3.4 SV SVOCCUR (N for a
    planned visit marked not done, Y for another planned visit, null for unscheduled ones).
    Steps: 1. evaluate the conditions (already boolean columns); 2. ``np.select`` picks, per
    record, the value of the first true one.
    """
    if not conditions:
        return pd.Series(np.nan, index=index, dtype="object")
    res = np.select([c.to_numpy(dtype=bool) for c in conditions], values, default=None)
    out = pd.Series(res, index=index, dtype="object")
    return out.where(out.notna())


def number_text(values: pd.Series, decimals: pd.Series | None = None) -> pd.Series:
    """Numbers as result text without padding: rounded to ``decimals`` where given, then the
    shortest form (12 significant digits, no trailing zeros: 89.0 -> "89", 106.104 ->
    "106.104", 177.80 at 2 decimals -> "177.8"; --STRESC is the standardised value as
    character, SDTMIG 3.4 §4.5.1)."""
    v = pd.to_numeric(values, errors="coerce").astype("float64")
    arr = v.to_numpy()
    ok = ~np.isnan(arr)
    if decimals is not None:
        d = pd.to_numeric(decimals, errors="coerce")
        for n in sorted(set(d.dropna().astype(int).tolist())):      # a loop over precisions, not records
            m = ok & (d == n).to_numpy()
            if m.any():
                arr = arr.copy()
                arr[m] = np.round(arr[m], n)
    short = np.full(arr.shape, "", dtype=object)
    if ok.any():
        short[ok] = np.char.mod("%.12g", arr[ok]).astype(object)
    out = pd.Series(short, index=v.index, dtype="object")
    return out.where(ok)


# Symbols with a conventional ASCII spelling; letters with accents lose the accent (NFKD).
_ASCII_SPELLING = str.maketrans({"°": " deg ", "×": "x", "µ": "u", "μ": "u", "–": "-", "—": "-",
                                 "‘": "'", "’": "'", "“": '"', "”": '"', "±": "+/-", "≤": "<=",
                                 "≥": ">=", "\u00a0": " "})


def ascii_transliterate(text: pd.Series) -> pd.Series:
    """Plain-ASCII spelling of free text for XPT v5 (FDA TCG: ASCII only).

    1. symbols with a conventional spelling are replaced (° -> deg, × -> x, µ -> u, dashes,
       quotes, ±, <=, >=);
    2. accented letters are decomposed (NFKD) and the accents dropped (é -> e);
    3. runs of blanks are collapsed. Characters with no spelling stay, so the XPT check
       still reports them (never a silent drop).
    """
    out = text.str.translate(_ASCII_SPELLING).str.normalize("NFKD")
    out = out.str.replace(r"[\u0300-\u036f]", "", regex=True)
    return out.str.replace(r"\s+", " ", regex=True).str.strip()


# ---------------------------------------------------------------------------
# dates in any layout (study.yaml raw.date_formats)
# ---------------------------------------------------------------------------

#: Layouts used when study.yaml sets no ``raw.date_formats``: these are read by
#: :func:`iso8601_dtc` (DD-MON-YYYY with ``-``, ``/`` or blank, and ISO 8601).
DEFAULT_DATE_FORMATS = ("DD-MON-YYYY", "YYYY-MM-DD")

_FMT_TOKEN = r"YYYY|MON|MM|DD|HH|SS"
_TOKEN_RE = {
    "YYYY": r"(?P<y>[0-9]{4}|[A-Z]+)",
    "MON": r"(?P<m>[A-Z]+)",
    "MM": r"(?P<m>[0-9]{1,2}|[A-Z]+)",
    "DD": r"(?P<d>[0-9]{1,2}|[A-Z]+)",
    "HH": r"(?P<h>[0-9]{1,2}|[A-Z]+)",
    "MI": r"(?P<mi>[0-9]{2}|[A-Z]+)",
    "SS": r"(?P<s>[0-9]{2})",
}


def parse_date_format(fmt: str) -> list[tuple[str, str]]:
    """A layout such as ``MM/DD/YYYY HH:MM`` as (kind, text) items: kind ``tok`` or ``sep``.

    Tokens: ``YYYY``, ``MM`` (month number; minutes when it follows ``HH``), ``MON``
    (month name, JAN..DEC), ``DD``, ``HH``, ``SS``; anything between them is a literal
    separator. Raises ValueError for a layout without ``YYYY``, with a repeated token or
    with letters outside the tokens."""
    items: list[tuple[str, str]] = []
    pos = 0
    import re as _re

    for m in _re.finditer(_FMT_TOKEN, fmt.upper()):
        if m.start() > pos:
            items.append(("sep", fmt[pos:m.start()]))
        tok = m.group(0)
        if tok == "MM" and any(k == "tok" and t == "HH" for k, t in items):
            tok = "MI"
        items.append(("tok", tok))
        pos = m.end()
    if pos < len(fmt):
        items.append(("sep", fmt[pos:]))
    toks = [t for k, t in items if k == "tok"]
    if "YYYY" not in toks:
        raise ValueError(f"date format {fmt!r} has no YYYY")
    if len(set(toks)) != len(toks):
        raise ValueError(f"date format {fmt!r} repeats a part")
    if "MM" in toks and "MON" in toks:
        raise ValueError(f"date format {fmt!r} has both MM and MON")
    for k, t in items:
        if k == "sep" and t.strip().upper() != "T" and any(ch.isalnum() for ch in t):   # T: ISO date-time
            raise ValueError(f"date format {fmt!r}: {t!r} is not a separator; use the parts "
                             "YYYY, MM, MON, DD, HH, MM (minutes after HH), SS")
    return items


def _layout_regex(items: list[tuple[str, str]]) -> str:
    """Anchored regex of a layout; the time part (from HH on) is optional."""
    import re as _re

    parts, time_at = [], None
    for i, (k, t) in enumerate(items):
        if k == "tok" and t == "HH":
            time_at = i - 1 if i > 0 and items[i - 1][0] == "sep" else i
    for i, (k, t) in enumerate(items):
        if i == time_at:
            parts.append("(?:")
        if k == "tok":
            parts.append(_TOKEN_RE[t])
        else:
            parts.append(r"\s+" if not t.strip() else r"\s*" + _re.escape(t.strip()) + r"\s*")
    if time_at is not None:
        parts.append(")?")
    return "^" + "".join(parts) + "$"


def _truncations(items: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The layout and its right-truncated forms: without the day, then without day and month
    (``MM/DD/YYYY`` -> ``MM/YYYY`` -> ``YYYY``); the shorter forms carry no time."""
    def drop(its, tok):
        i = next((j for j, (k, t) in enumerate(its) if k == "tok" and t == tok), None)
        if i is None:
            return its
        its = list(its)
        if i + 1 < len(its) and its[i + 1][0] == "sep" and (i == 0 or its[i - 1][0] != "sep"):
            del its[i:i + 2]
        elif i > 0 and its[i - 1][0] == "sep":
            del its[i - 1:i + 1]
        else:
            del its[i]
        return its

    def date_only(its):
        k = next((j for j, (kind, t) in enumerate(its) if kind == "tok" and t == "HH"), None)
        if k is None:
            return its
        out = its[:k]
        while out and out[-1][0] == "sep":
            out = out[:-1]
        return out

    base = date_only(items)
    no_day = drop(base, "DD")
    no_month = drop(drop(no_day, "MM"), "MON")
    out = [items]
    for v in (no_day, no_month):
        if v != out[-1] and v not in out:
            out.append(v)
    return out


def dates_by_format(date: pd.Series, time: pd.Series | None = None, *, formats: list[str],
                    unknown_tokens=("UN", "UNK", "UK", "XX", "UNKN")) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Dates (and times) in the study's layouts -> right-truncated ISO 8601 text (SDTMIG 3.4 §4.4).

    Arguments: ``date`` the raw text, ``time`` an optional separate time column (``HH:MM[:SS]``),
    ``formats`` the layouts to try in order (see :func:`parse_date_format`), ``unknown_tokens``
    the EDC's spellings of an unknown part (``UN``, ``UNK``).

    Steps (vectorised: one regex per layout over the distinct values, no loop over records):
    1. each layout is tried as written and right-truncated (``MM/DD/YYYY`` also reads
       ``03/2024`` and ``2024``); the first layout that matches a value wins;
    2. a part may be an unknown token (``UN/UNK/2024`` -> ``2024``, ``UNK/03/2024`` in
       ``DD/MM/YYYY`` -> ``2024-03``); then the same rules as :func:`iso8601_dtc`: unknown day ->
       ``YYYY-MM``, unknown month and day -> ``YYYY``, unknown month with a known day ->
       ``YYYY---DD``, unknown year -> error; a complete date must be a real calendar date;
    3. a time (in the layout, or in ``time`` when the layout has none) is appended only to a
       complete date; an unknown minute keeps the hour, an unknown hour drops the time.
    Returns (dtc, bad_date, bad_time): ``bad_date`` marks non-blank dates no layout reads.

    Example: ``dates_by_format(S("03/15/2024", "UN/UNK/2024", "03/2024"), formats=["MM/DD/YYYY"])``
    -> ``2024-03-15``, ``2024``, ``2024-03``.
    """
    d_all = date.astype("str").where(date.notna(), "")
    t_all = time.astype("str").where(time.notna(), "") if time is not None else None
    pair = d_all if t_all is None else d_all + "\x1f" + t_all
    codes, _ = pd.factorize(pair, sort=False)
    if not len(pair):
        empty = pd.Series([], index=date.index, dtype="str")
        return empty, pd.Series([], index=date.index, dtype=bool), pd.Series([], index=date.index, dtype=bool)
    first = pd.Series(np.arange(len(pair))).groupby(codes).first().to_numpy()
    d = _ascii_upper(d_all.iloc[first].reset_index(drop=True))
    unknown = {t.upper() for t in unknown_tokens}
    n = len(d)
    comp = pd.DataFrame({k: pd.Series([None] * n, dtype="object") for k in ("y", "m", "d", "h", "mi", "s")})
    has_m = pd.Series(False, index=d.index)
    has_d = pd.Series(False, index=d.index)
    matched = pd.Series(False, index=d.index)
    for fmt in formats:                                    # a loop over layouts, not records
        for items in _truncations(parse_date_format(fmt)):
            todo = ~matched & d.ne("")
            if not todo.any():
                break
            ext = d[todo].str.extract(_layout_regex(items))
            hit = ext["y"].notna()
            if not hit.any():
                continue
            idx = hit[hit].index
            toks = {t for k, t in items if k == "tok"}
            for c in comp.columns:
                if c in ext.columns:
                    comp.loc[idx, c] = ext.loc[idx, c]
            has_m[idx] = bool(toks & {"MM", "MON"})
            has_d[idx] = "DD" in toks
            matched[idx] = True
    blank_d = d.eq("")
    y, m, dd = comp["y"], comp["m"], comp["d"]
    year_known = y.str.fullmatch(r"[0-9]{4}").fillna(False).astype(bool) & y.ne("0000")
    year_unknown = y.isin(unknown)
    mon_num = pd.to_numeric(m.where(m.str.fullmatch(r"[0-9]{1,2}").fillna(False).astype(bool)), errors="coerce")
    mon_num = mon_num.fillna(m.map(MONTHS))
    mon_known = mon_num.between(1, 12)
    mon_unknown = (~has_m | m.isin(unknown)) & matched
    day_num = pd.to_numeric(dd.where(dd.str.fullmatch(r"[0-9]{1,2}").fillna(False).astype(bool)), errors="coerce")
    day_known = day_num.between(1, 31)
    day_unknown = (~has_d | dd.isin(unknown)) & matched
    parsed = matched & (year_known | year_unknown) & (mon_known | mon_unknown) & (day_known | day_unknown)
    ys = y.fillna("").astype("str")
    m2 = mon_num.fillna(0).astype(int).astype(str).str.zfill(2)
    d2 = day_num.fillna(0).astype(int).astype(str).str.zfill(2)
    full = parsed & year_known & mon_known & day_known
    full_text = ys + "-" + m2 + "-" + d2
    real = pd.to_datetime(full_text.where(full), format="%Y-%m-%d", errors="coerce").notna()
    out = pd.Series("", index=d.index, dtype="str")
    out = out.mask(full & real, full_text)
    out = out.mask(parsed & year_known & mon_known & day_unknown, ys + "-" + m2)
    out = out.mask(parsed & year_known & mon_unknown & day_unknown, ys)
    out = out.mask(parsed & year_known & mon_unknown & day_known, ys + "---" + d2)
    bad_date = (~blank_d & ~parsed) | (full & ~real) | (parsed & ~year_known)

    h_tok, mi_tok, s_tok = comp["h"], comp["mi"], comp["s"]
    bad_time = pd.Series(False, index=d.index)
    if t_all is not None:
        t = _ascii_upper(t_all.iloc[first].reset_index(drop=True))
        tp = t.str.extract(_TIME)
        use = h_tok.isna() & t.ne("")
        h_tok, mi_tok, s_tok = h_tok.where(~use, tp["h"]), mi_tok.where(~use, tp["mi"]), s_tok.where(~use, tp["s"])
        bad_time = use & tp["h"].isna()
    h = pd.to_numeric(h_tok.where(h_tok.str.fullmatch(r"[0-9]+").fillna(False).astype(bool)), errors="coerce")
    mi = pd.to_numeric(mi_tok.where(mi_tok.str.fullmatch(r"[0-9]+").fillna(False).astype(bool)), errors="coerce")
    s = pd.to_numeric(s_tok, errors="coerce")
    present_t = h_tok.notna()
    h_ok, mi_ok = h.between(0, 23), mi.between(0, 59)
    h_unknown, mi_unknown = h_tok.isin(unknown), mi_tok.isin(unknown)
    s_ok = s.between(0, 59) | s_tok.isna()
    t_ok = present_t & (h_ok | h_unknown) & (mi_ok | mi_unknown) & s_ok
    bad_time = bad_time | (present_t & ~t_ok)
    hh = h.fillna(0).astype(int).astype(str).str.zfill(2)
    mm = mi.fillna(0).astype(int).astype(str).str.zfill(2)
    ss = s.fillna(0).astype(int).astype(str).str.zfill(2)
    suffix = pd.Series("", index=d.index, dtype="str")
    suffix = suffix.mask(t_ok & h_ok & mi_ok, "T" + hh + ":" + mm)
    suffix = suffix.mask(t_ok & h_ok & mi_ok & s_tok.notna(), "T" + hh + ":" + mm + ":" + ss)
    suffix = suffix.mask(t_ok & h_ok & mi_unknown, "T" + hh)
    out = out.mask(full & real, out + suffix)

    dtc = pd.Series(out.to_numpy()[codes], index=date.index, dtype="str")
    return (dtc.where(dtc.ne("")), pd.Series(bad_date.to_numpy()[codes], index=date.index, dtype=bool),
            pd.Series(bad_time.to_numpy()[codes], index=date.index, dtype=bool))
