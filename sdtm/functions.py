"""Vectorised SDTM mapping functions (the rules a spec can name).

Each function takes whole columns and returns whole columns plus a boolean mask of the
rows it could not map, so the engine can name file, row and column for every bad value.
No function loops over records.
"""
from __future__ import annotations

import string

import numpy as np
import pandas as pd

MONTHS = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}

_DMY = r"^(?P<d>\d{1,2}|[A-Z]{2})[-/ ](?P<m>[A-Z]{3}|[A-Z]{2})[-/ ](?P<y>\d{4}|[A-Z]{2,4})$"
_ISO = r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)?$"
_TIME = r"^(?P<h>\d{1,2}|[A-Z]{2}):(?P<mi>\d{2}|[A-Z]{2})(?::(?P<s>\d{2}))?$"


def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | s.astype("str").str.strip().eq("")


def iso8601_dtc(date: pd.Series, time: pd.Series | None = None, *,
                unknown_tokens: list[str] = ("UN", "UNK", "UK", "XX", "UNKN")) -> tuple[pd.Series, pd.Series]:
    """Convert dates (and times) as typed on the CRF to ISO 8601 text, keeping partial dates partial.

    Accepted date spellings: ``DD-MON-YYYY`` (``12-MAR-2025``, case-insensitive, with ``-``,
    ``/`` or blank separators) where day or month may be an unknown token (``UN-MAR-2025``,
    ``UN-UNK-2025``), and ISO ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``. Times ``HH:MM[:SS]``.

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
    d = date.astype("str").where(~date.isna(), "").str.strip().str.upper()
    unknown = set(t.upper() for t in unknown_tokens)
    blank = d.eq("")

    dmy = d.str.extract(_DMY)
    iso = d.str.extract(_ISO)
    is_dmy = dmy["y"].notna()
    is_iso = iso["y"].notna() & ~is_dmy

    day_tok = dmy["d"].where(is_dmy, iso["d"])
    mon_tok = dmy["m"].where(is_dmy, iso["m"])
    year_tok = dmy["y"].where(is_dmy, iso["y"])

    year_known = year_tok.str.fullmatch(r"\d{4}").fillna(False).astype(bool)
    mon_num = pd.Series(np.nan, index=d.index)
    mon_num[is_dmy] = dmy.loc[is_dmy, "m"].map(MONTHS)
    mon_num[is_iso] = pd.to_numeric(iso.loc[is_iso, "m"], errors="coerce")
    mon_known = mon_num.between(1, 12)
    mon_unknown = (mon_tok.isin(unknown) | (is_iso & iso["m"].isna())).fillna(False)
    day_num = pd.to_numeric(day_tok, errors="coerce")
    day_known = day_num.between(1, 31)
    day_unknown = (day_tok.isin(unknown) | (is_iso & iso["d"].isna())).fillna(False)

    parsed = (is_dmy | is_iso) & (year_known | year_tok.isin(unknown).fillna(False)) \
        & (mon_known | mon_unknown) & (day_known | day_unknown)
    y = year_tok.fillna("")
    m2 = mon_num.fillna(0).astype(int).astype(str).str.zfill(2)
    d2 = day_num.fillna(0).astype(int).astype(str).str.zfill(2)

    full = parsed & year_known & mon_known & day_known
    full_text = y + "-" + m2 + "-" + d2
    real = pd.to_datetime(full_text.where(full), format="%Y-%m-%d", errors="coerce").notna()
    bad_calendar = full & ~real

    out = pd.Series("", index=d.index, dtype="str")
    out = out.mask(full & real, full_text)
    out = out.mask(parsed & year_known & mon_known & day_unknown, y + "-" + m2)
    out = out.mask(parsed & year_known & mon_unknown & day_unknown, y)
    out = out.mask(parsed & year_known & mon_unknown & day_known, y + "---" + d2)
    year_missing = parsed & ~year_known

    bad = (~blank & ~parsed) | bad_calendar | year_missing

    if time is not None:
        t = time.astype("str").where(~time.isna(), "").str.strip().str.upper()
        tp = t.str.extract(_TIME)
        t_blank = t.eq("")
        h = pd.to_numeric(tp["h"], errors="coerce")
        mi = pd.to_numeric(tp["mi"], errors="coerce")
        s = pd.to_numeric(tp["s"], errors="coerce")
        h_ok = h.between(0, 23)
        mi_ok = mi.between(0, 59)
        mi_unknown = tp["mi"].isin(unknown).fillna(False)
        h_unknown = tp["h"].isin(unknown).fillna(False)
        s_ok = s.between(0, 59) | tp["s"].isna()
        t_parsed = tp["h"].notna() & (h_ok | h_unknown) & (mi_ok | mi_unknown) & s_ok
        hh = h.fillna(0).astype(int).astype(str).str.zfill(2)
        mm = mi.fillna(0).astype(int).astype(str).str.zfill(2)
        ss = s.fillna(0).astype(int).astype(str).str.zfill(2)
        suffix = pd.Series("", index=d.index, dtype="str")
        suffix = suffix.mask(t_parsed & h_ok & mi_ok, "T" + hh + ":" + mm)
        suffix = suffix.mask(t_parsed & h_ok & mi_ok & tp["s"].notna(), "T" + hh + ":" + mm + ":" + ss)
        suffix = suffix.mask(t_parsed & h_ok & mi_unknown, "T" + hh)
        complete = full & real
        out = out.mask(complete, out + suffix)
        bad = bad | (~t_blank & ~t_parsed)
    return out.where(out.ne("")), bad


def dtc_to_date(dtc: pd.Series) -> pd.Series:
    """The date part of complete ISO 8601 dates as datetime64; partial or blank -> NaT."""
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
        if f is not None and (spec or conv or not f.isidentifier()):
            raise ValueError(f"template field {{{f}}} must be a plain column name")
    cols = {f: resolve(f) for f in fields}
    index = next(iter(cols.values())).index
    out = pd.Series("", index=index, dtype="str")
    any_blank = pd.Series(False, index=index)
    for literal, f, _, _ in parts:
        out = out + literal
        if f is not None:
            col = cols[f]
            txt = col.astype("str").where(col.notna(), "").str.strip()
            any_blank = any_blank | txt.eq("")
            out = out + txt
    return out.where(~any_blank)


def to_number(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers as typed -> float; blank -> missing; anything else flagged (never coerced silently)."""
    blank = _blank(raw)
    num = pd.to_numeric(raw.where(~blank), errors="coerce")
    return num.astype("float64"), num.isna() & ~blank


def lookup(values: pd.Series, table: list[dict], *, key: str, field: str) -> tuple[pd.Series, pd.Series]:
    """Map values through a study.yaml table (arms, visits, ...); unmatched non-blank values are flagged."""
    mapping = {str(row[key]).strip().casefold(): row.get(field) for row in table}
    norm = values.astype("str").where(values.notna(), "").str.strip().str.casefold()
    out = norm.map(mapping)
    blank = norm.eq("")
    return out.where(~blank), out.isna() & ~blank


def epoch(dtc: pd.Series, usubjid: pd.Series, se: pd.DataFrame) -> pd.Series:
    """EPOCH of a record from the subject's SE (SDTMIG 3.4 §5.3, §7.2.2).

    1. take the record's date (complete dates only; a partial date gets no EPOCH since its
       element is ambiguous);
    2. find, for the same subject, the element with the latest SESTDTC on or before that
       date (compared at date precision: a record on the day an element starts belongs to
       that element);
    3. a date after the subject's last element end (SEENDTC) or before the first start gets
       no EPOCH.
    """
    d = dtc_to_date(dtc)
    left = pd.DataFrame({"USUBJID": usubjid.astype("str"), "__d": d, "__i": np.arange(len(d))})
    have = left[left["__d"].notna()].sort_values("__d", kind="stable")
    right = se.assign(__s=dtc_to_date(se["SESTDTC"]), __e=dtc_to_date(se["SEENDTC"]))
    right = right[right["__s"].notna()].sort_values("__s", kind="stable")
    right = right.assign(USUBJID=right["USUBJID"].astype("str"))
    out = pd.Series(None, index=dtc.index, dtype="str")
    if have.empty or right.empty:
        return out
    m = pd.merge_asof(have, right[["USUBJID", "__s", "__e", "EPOCH"]], left_on="__d", right_on="__s",
                      by="USUBJID", direction="backward")
    after_end = m["__e"].notna() & (m["__d"] > m["__e"])
    res = m["EPOCH"].where(~after_end)
    out.iloc[m["__i"].to_numpy()] = res.to_numpy()
    return out
