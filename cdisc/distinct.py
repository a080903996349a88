"""Work once per distinct value, spread the answer back to every record.

Clinical columns repeat: a million LB records have a few dozen test codes and units, a few
thousand dates, a few thousand distinct results. Text work in pandas (``.str`` methods,
regular expressions, parsing) runs a Python call per value, so doing it per distinct value
and taking the answers back by the factorize codes (C loops) is what keeps a 10,000-subject
build linear with a small constant. ``pd.factorize`` is a hash in C; ``take`` is a C gather.

Only for element-wise work: the answer for a value must not depend on its row or its
neighbours (study days per subject, sequence numbers and sorts are not element-wise).
"""
from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
import pandas as pd

# Below this many records, or when most values are distinct, factorizing costs more than it saves.
_MIN_RECORDS = 2_000


def spread(values, codes: np.ndarray, index: pd.Index):
    """``values`` (a Series or frame, one row per distinct value) taken back to every record by ``codes``."""
    if isinstance(values, pd.Series):
        return pd.Series(values.array.take(codes), index=index, name=values.name)
    taken = values.take(codes)
    taken.index = index
    return taken


def on_distinct(s: pd.Series, fn: Callable[[pd.Series], pd.Series | pd.DataFrame]):
    """``fn`` (a vectorised element-wise function of a Series) applied once per distinct value of ``s``.

    Missing is a value like any other here (``fn`` decides what a missing value gives), so
    the answer is exactly ``fn(s)``, in less time. Small or mostly distinct series are passed
    to ``fn`` whole (same answer, less overhead).
    """
    if len(s) < _MIN_RECORDS:
        return fn(s)
    codes, uniques = factorize(s, use_na_sentinel=False)
    if len(uniques) * 2 > len(s):
        return fn(s)
    res = fn(pd.Series(uniques, dtype=s.dtype))
    return spread(res.reset_index(drop=True), codes, s.index)


def on_distinct_rows(frame: pd.DataFrame, fn: Callable[[pd.DataFrame], pd.DataFrame | pd.Series]):
    """``fn`` (element-wise over the rows of ``frame``) applied once per distinct row.

    Missing values are part of the key (a row with a missing unit is its own distinct row), so
    ``fn`` sees them as they are. Returns what ``fn`` returns, re-indexed to ``frame``'s records.
    """
    if len(frame) < _MIN_RECORDS:
        return fn(frame)
    codes, first = distinct_rows(frame)
    if len(first) * 2 > len(frame):
        return fn(frame)
    res = fn(frame.iloc[first].reset_index(drop=True))
    return spread(res.reset_index(drop=True), codes, frame.index)


def distinct_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(per record the number of its distinct row, position of each distinct row's first record).

    Missing values are part of the key (NaN and None are one missing value)."""
    codes = np.zeros(len(frame), dtype=np.int64)
    size = 1
    for j in range(frame.shape[1]):
        c, u = pd.factorize(frame.iloc[:, j], use_na_sentinel=False)
        if size * (len(u) + 1) > 2 ** 62:          # keep the combined code in int64: re-number it
            codes, seen = pd.factorize(codes)
            size = len(seen)
        codes = codes * (len(u) + 1) + c
        size *= len(u) + 1
    return _first_of(codes)


def _first_of(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dense code per record, position of each distinct code's first record)."""
    dense, uniques = pd.factorize(codes)
    return dense, first_records(dense, len(uniques))


def _clean(s: pd.Series) -> pd.Series:
    return s.astype("str").where(s.notna(), "").str.strip()


def clean_text(s: pd.Series) -> pd.Series:
    """Values as stripped text, "" for missing (the way raw CRF text is compared and mapped)."""
    return on_distinct(s, _clean)


# ----------------------------------------------------------------------------- known columns
# A reader that has already found each text column's distinct values (cdisc.xpt_read does, to
# decode each distinct record once) can leave them here, so that every later test of the
# column (blank, ISO 8601, ASCII, code lists, CORE operators) works on its few distinct
# values instead of hashing millions of records again. Keyed by the column's object array
# (shared by shallow copies, column selections and ``to_numpy(dtype=object)``), held by a weak
# reference, and made read-only when remembered: a change in place raises instead of leaving
# stale codes behind.
_KNOWN: dict[int, tuple] = {}


def remember(values: np.ndarray, codes: np.ndarray, first: np.ndarray) -> None:
    """Record that ``values[i] == values[first[codes[i]]]`` and that ``first`` is each distinct
    value's first record, in order (so the codes are exactly ``pd.factorize``'s)."""
    key = id(values)
    for a in (values, codes, first):      # handed out as they are: nobody may change them
        a.flags.writeable = False
    _KNOWN[key] = (weakref.ref(values, lambda _ref, key=key: _KNOWN.pop(key, None)), codes, first)


def _values_of(s) -> np.ndarray | None:
    if isinstance(s, np.ndarray):
        return s
    arr = getattr(s, "array", None)
    return getattr(arr, "_ndarray", None)


def known(s) -> tuple[np.ndarray, np.ndarray] | None:
    """(codes, first record of each distinct value) remembered for ``s`` (a Series or the object
    array of one), or None."""
    values = _values_of(s)
    if values is None:
        return None
    entry = _KNOWN.get(id(values))
    if entry is None or entry[0]() is not values or len(entry[1]) != len(values):
        return None
    return entry[1], entry[2]


def on_known(s: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``fn(s)`` (element-wise), on the distinct values when they are known (no hashing of
    records at all), else on every record: for tests that cost less than a factorization."""
    hit = known(s)
    if hit is None:
        return fn(s)
    codes, first = hit
    res = fn(pd.Series(s.array.take(first)))
    return spread(res.reset_index(drop=True), codes, s.index)


def factorize(s, use_na_sentinel: bool = True):
    """``pd.factorize(s, use_na_sentinel=...)``, from the remembered codes when ``s`` is a known
    column (its values are never missing, so the sentinel changes nothing)."""
    hit = known(s)
    if hit is None:
        return pd.factorize(s, use_na_sentinel=use_na_sentinel)
    codes, first = hit
    if isinstance(s, np.ndarray):
        return codes.astype(np.intp), s.take(first)
    return codes.astype(np.intp), pd.Index(s.array.take(first), name=None)


def compact_codes(codes: np.ndarray, size: int) -> np.ndarray:
    """``codes`` (0..size-1) in the smallest signed integer type that holds them."""
    for t in (np.int8, np.int16, np.int32):
        if size <= np.iinfo(t).max:
            return codes.astype(t)
    return codes.astype(np.int64)


def first_records(codes: np.ndarray, size: int) -> np.ndarray:
    """Position of the first record of each code 0..size-1 (``len(codes)`` for a code no record has)."""
    first = np.full(size, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes), dtype=np.int64))
    return first


def first_seen_order(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered so that distinct values count in order of first appearance (as
    ``pd.factorize`` numbers them), and the first record of each."""
    first = first_records(codes, size)
    order = np.argsort(first, kind="stable")
    rank = np.empty(size, dtype=np.int64)
    rank[order] = np.arange(size, dtype=np.int64)
    return rank[codes], first[order]
