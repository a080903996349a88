"""Group keys of the CORE evaluator as integer codes: one job, used by operators and operations.

pandas' groupby, MultiIndex and Index lookups hash every record of every key column. A
million-record Findings dataset makes that the cost of the largest CORE rules (record counts per
subject, test and timing variables). Here each key column is numbered once (``cdisc.distinct``:
free for a column read from XPT, whose reader found its distinct values), the columns' numbers
are combined into one integer per record, and pandas works on one record per distinct key (its
order, its key values, its null rules). Each function says which pandas expression it equals;
tests/test_core_rules.py compares them on adversarial inputs.

Equality is pandas' hash-table equality throughout: every null (None, NaN, NaT, pd.NA) is one
value, 0.0 equals -0.0, 1 equals 1.0 and True in an object column.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdisc.distinct import factorize, first_records, known


def codes(series: pd.Series) -> np.ndarray:
    """Integer code per distinct value; every null (NaN/None/pd.NA) one code (CORE fills "_NaN_")."""
    got, _ = factorize(series if known(series) else series.astype(object), use_na_sentinel=False)
    return got.astype(np.int64)


def row_codes(df: pd.DataFrame, cols) -> np.ndarray:
    """One integer per distinct combination of ``cols``, numbered by first appearance."""
    if not cols:
        return np.zeros(len(df), np.int64)
    key = np.zeros(len(df), np.int64)
    size = 1                                  # key < size; numbered densely again only near int64's limit
    for c in cols:
        col = codes(df[c])
        width = int(col.max()) + 1 if len(col) else 1
        if size * width >= 2 ** 62:
            key = pd.factorize(key)[0].astype(np.int64)
            size = int(key.max()) + 1 if len(key) else 1
        key = key * width + col
        size *= width
    # first-appearance numbering of the combinations: what renumbering after every column gives
    return pd.factorize(key)[0].astype(np.int64)


def count_per_code(codes: np.ndarray) -> np.ndarray:
    """Per record, how many records share its code."""
    if not len(codes):
        return np.zeros(0, np.int64)
    return np.bincount(codes)[codes]


def records_per_group(df: pd.DataFrame, grouping: list[str]) -> np.ndarray:
    """``df.groupby(grouping, dropna=False)[any].transform("size")``: per record, the records of its
    group."""
    return count_per_code(row_codes(df, grouping))


def by_distinct_rows(df: pd.DataFrame, grouping: list[str], aggregate):
    """``aggregate(df)`` (a groupby on ``grouping``: one row per group, order and key values
    pandas') run on the first record of each distinct ``grouping`` combination only: for
    aggregates every record of a combination gives the same answer to (``first`` of a value
    constant within the combination)."""
    if not len(df) or any(c not in df.columns for c in grouping):
        return aggregate(df)
    try:
        group = row_codes(df, grouping)
    except TypeError:                                  # unhashable keys: pandas' own message
        return aggregate(df)
    return aggregate(df.iloc[first_records(group, int(group.max()) + 1)])


_N = "__records__"


def grouped_size(df: pd.DataFrame, grouping: list[str]) -> pd.DataFrame:
    """``df.groupby(grouping, as_index=False, dropna=False).size()``, grouped from one record per
    distinct combination carrying its count (the groups' sizes summed: right even where the codes
    would split what pandas groups together)."""
    if not len(df) or _N in grouping or any(c not in df.columns for c in grouping):
        return df.groupby(grouping, as_index=False, dropna=False).size()
    try:
        group = row_codes(df, grouping)
    except TypeError:
        return df.groupby(grouping, as_index=False, dropna=False).size()
    counts = np.bincount(group)
    reps = df.iloc[first_records(group, len(counts))][grouping].reset_index(drop=True)
    reps[_N] = counts.astype(np.int64)
    return reps.groupby(grouping, as_index=False, dropna=False)[_N].sum().rename(columns={_N: "size"})


def group_rows(keys: pd.DataFrame, frame: pd.DataFrame, grouping: list[str]) -> np.ndarray:
    """Per record of ``frame``, the row of ``keys`` (unique) holding its ``grouping`` values, or -1:
    ``pd.MultiIndex.from_frame(keys).get_indexer(pd.MultiIndex.from_frame(frame[grouping]))`` (an
    Index for one column), by the same rule, level by level: each key value is looked up among the
    column's distinct values (``Index.get_indexer``; a null key matches the column's nulls), and
    records and keys compare as integer codes."""
    if len(grouping) == 1 and frame[grouping[0]].dtype == object and frame[grouping[0]].isna().any():
        # one object column with nulls: Index.get_indexer tells None from NaN, keep its answer
        return group_rows_pandas(keys, frame, grouping)
    rec = np.zeros(len(frame), dtype=np.int64)
    key = np.zeros(len(keys), dtype=np.int64)
    found = np.ones(len(keys), dtype=bool)
    size = 1
    for g in grouping:
        try:
            col, uniq = factorize(frame[g], use_na_sentinel=False)
        except TypeError:                               # unhashable values: pandas' own way
            return group_rows_pandas(keys, frame, grouping)
        uniq = pd.Index(uniq)
        null = np.asarray(uniq.isna(), dtype=bool)
        values = keys[g]
        kcode = np.full(len(keys), -1, dtype=np.int64)
        knull = values.isna().to_numpy(dtype=bool)
        kept = np.flatnonzero(~null)
        try:
            at = uniq[kept].get_indexer(values[~knull])
        except TypeError:
            return group_rows_pandas(keys, frame, grouping)
        hit = np.flatnonzero(~knull)[at >= 0]        # only the key values found (none may be)
        kcode[hit] = kept[at[at >= 0]]
        if null.any():
            kcode[knull] = int(np.flatnonzero(null)[0])
        found &= kcode >= 0
        width = len(uniq) + 1
        if size * width >= 2 ** 62:                     # renumber records and keys together
            both = pd.factorize(np.concatenate([rec, key]))[0].astype(np.int64)
            rec, key = both[:len(rec)], both[len(rec):]
            size = int(both.max()) + 1 if len(both) else 1
        rec = rec * width + col.astype(np.int64)
        key = key * width + np.maximum(kcode, 0)
        size *= width
    rows = np.flatnonzero(found)
    at = pd.Index(key[rows]).get_indexer(rec)
    out = np.full(len(rec), -1, dtype=np.intp)
    out[at >= 0] = rows[at[at >= 0]]                  # no key may match any record
    return out


def group_rows_pandas(keys: pd.DataFrame, frame: pd.DataFrame, grouping: list[str]) -> np.ndarray:
    """What ``group_rows`` equals, in pandas."""
    if len(grouping) == 1:
        return pd.Index(keys[grouping[0]]).get_indexer(frame[grouping[0]])
    return pd.MultiIndex.from_frame(keys).get_indexer(pd.MultiIndex.from_frame(frame[grouping]))


def distinct_texts(s: pd.Series) -> pd.Series:
    """``s.fillna("").astype(str).drop_duplicates()`` as a set: the distinct values' texts."""
    if known(s):
        return pd.Series(factorize(s)[1], dtype=object).astype(str)
    return s.fillna("").astype(str).drop_duplicates()
