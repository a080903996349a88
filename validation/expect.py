"""The expectation suites, evaluated natively (vectorised pandas), with Great Expectations' semantics.

Why (measured on the shipped study, 29 datasets, 2 cores; benchmarks/README.md): Great
Expectations 1.24 took 19.5 s of a 20 s validation (3.8 s to import, then about 0.5 s per
dataset however small), while the same expectations evaluated here take about 0.1 s. The
suites stay Great Expectations suites: they are written as GE 1.x suite JSON
(``suite_dict``, byte-identical to what GE itself writes) that any GE installation can run
after ``import validation.expectations``, and ``cdisc validate --engine ge`` runs them
through GE. ``tests/test_validation_suites.py`` checks that both engines find the same
records on the shipped study and on defective copies of it.

Semantics followed (GE 1.x, pandas execution engine, ``result_format: COMPLETE``):

- the frame GE sees has blanks as nulls (``suites.ge_frame``); map expectations look at
  non-null values only and report the unexpected rows;
- ``expect_column_to_exist``, and ``expect_column_values_to_be_in_type_list`` on a typed
  (numeric) column, are dataset-level results (no rows); on a text column the type list
  is checked value by value;
- the uniqueness expectations report every row of a duplicated value or combination
  (rows whose values are all null are ignored for compound keys, null values for one).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd


from cdisc.distinct import on_known

from .dates import blank, iso8601_valid
from .rules import RAW_COLUMNS, as_text

GE_SEVERITY = {"error": "critical", "warning": "warning", "notice": "info"}


def snake(kind: str) -> str:
    """GE class name -> expectation type: ExpectColumnValuesToBeAsciiMax200Bytes ->
    expect_column_values_to_be_ascii_max200_bytes (GE's own camel_to_snake rule)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


# Arguments GE leaves out of a suite's JSON when they have their default value (and None ones).
_DEFAULTS = {"max_bytes": 200, "allow_interval": False, "mostly": 1.0}


def suite_dict(name: str, meta, specs, ge_version: str) -> dict:
    """The GE 1.x ``ExpectationSuite.to_json_dict()`` of a suite, without importing GE."""
    from .suites import PREPROCESSING

    return {
        "expectations": [
            {"kwargs": {k: v for k, v in s.kwargs.items()
                        if v is not None and not (k in _DEFAULTS and v == _DEFAULTS[k])},
             "meta": {"rule": s.rule, "severity": s.severity, "variable": s.variable},
             "severity": GE_SEVERITY[s.severity], "type": snake(s.kind)}
            for s in specs
        ],
        "id": None,
        "meta": {"dataset": name, "generated_by": "cdisc validation.suites from dataset metadata",
                 "great_expectations_version": ge_version, "preprocessing": PREPROCESSING,
                 "standard": meta.standard},
        "name": name,
        "notes": None,
    }


def _rows_found(name: str, df: pd.DataFrame, mask: np.ndarray, cols: list[str], spec, detail) -> pd.DataFrame:
    pos = np.flatnonzero(mask)
    if not len(pos):
        return None
    part = pd.DataFrame({"dataset": name, "variable": spec.variable, "row": pos + 1})
    if len(cols) == 1:
        part["value"] = as_text(df[cols[0]].iloc[pos]).to_numpy()
    else:
        txt = None
        for c in cols:
            piece = c + "=" + as_text(df[c].iloc[pos]).astype(str)
            txt = piece if txt is None else txt + ", " + piece
        part["value"] = txt.to_numpy()
    part["usubjid"] = df["USUBJID"].iloc[pos].to_numpy() if "USUBJID" in df.columns else None
    part["detail"] = detail
    part["rule"], part["severity"] = spec.rule, spec.severity
    return part[RAW_COLUMNS + ["rule", "severity"]]


def _dataset_found(name: str, spec, value, detail) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": name, "variable": spec.variable, "row": None, "usubjid": None,
                          "value": value, "detail": detail, "rule": spec.rule, "severity": spec.severity}])


def evaluate(name: str, df: pd.DataFrame, specs) -> pd.DataFrame:
    """Raw findings (``RAW_COLUMNS`` + rule, severity) of one dataset's expectations.

    Algorithm, per expectation (each a few vectorised operations on one column):
        1. null = NaN, or text that is empty or blanks only (an XPT blank);
        2. map expectations flag the non-null values that fail their test (in set, ISO
           8601, ASCII <= max bytes, positive integer, between min and max, not null);
        3. type lists compare the column's dtype (text columns are "object", as GE sees them);
        4. uniqueness flags every row of a repeated value or combination.
    """
    from .suites import _detail_for

    out = []
    nulls: dict[str, np.ndarray] = {}

    def null(c: str) -> np.ndarray:
        if c not in nulls:
            nulls[c] = blank(df[c]).to_numpy(dtype=bool)
        return nulls[c]

    for spec in specs:
        kw = spec.kwargs
        kind = spec.kind
        col = kw.get("column")
        if kind == "ExpectColumnToExist":
            if col not in df.columns:
                out.append(_dataset_found(name, spec, None, "variable not in dataset"))
            continue
        if col is not None and col not in df.columns:
            continue
        if kind == "ExpectColumnValuesToNotBeNull":
            out.append(_rows_found(name, df, null(col), [col], spec, None))
        elif kind == "ExpectColumnValuesToBeInSet":
            allowed = set(map(str, kw["value_set"]))
            inset = on_known(df[col], lambda s: s.astype("string").isin(allowed).fillna(False))
            bad = ~null(col) & ~inset.to_numpy(dtype=bool)
            out.append(_rows_found(name, df, bad, [col], spec, _detail_for(snake(kind), kw)))
        elif kind == "ExpectColumnValuesToBeIso8601":
            ok = iso8601_valid(df[col], allow_interval=bool(kw.get("allow_interval", False))).to_numpy(dtype=bool)
            out.append(_rows_found(name, df, ~null(col) & ~ok, [col], spec, None))
        elif kind == "ExpectColumnValuesToBeAsciiMax200Bytes":
            limit = int(kw.get("max_bytes", 200))

            # ASCII: one byte per character, so the byte length is the length
            def fits(s: pd.Series, limit=limit) -> pd.Series:
                text = s.astype(str)
                return (text.str.isascii().fillna(False) & (text.str.len() <= limit).fillna(False)) | text.isna()

            ok = on_known(df[col], fits).to_numpy(dtype=bool)
            out.append(_rows_found(name, df, ~null(col) & ~ok, [col], spec, None))
        elif kind == "ExpectColumnValuesToBePositiveIntegers":
            num = pd.to_numeric(df[col], errors="coerce")
            ok = (num.notna() & (num >= 1) & (num % 1 == 0)).to_numpy(dtype=bool)
            out.append(_rows_found(name, df, ~null(col) & ~ok, [col], spec, None))
        elif kind == "ExpectColumnValuesToBeBetween":
            num = pd.to_numeric(df[col], errors="coerce")
            bad = np.zeros(len(df), dtype=bool)
            if kw.get("min_value") is not None:
                bad |= (num < kw["min_value"]).fillna(False).to_numpy(dtype=bool)
            if kw.get("max_value") is not None:
                bad |= (num > kw["max_value"]).fillna(False).to_numpy(dtype=bool)
            out.append(_rows_found(name, df, bad & ~null(col), [col], spec, None))
        elif kind == "ExpectColumnValuesToBeInTypeList":
            s = df[col]
            wanted = set(kw["type_list"])
            if s.dtype.kind in "fiub":                # GE compares a typed column's dtype
                observed = str(s.dtype)
                if observed not in wanted:
                    out.append(_dataset_found(name, spec, observed, _detail_for(snake(kind), kw, observed)))
                continue
            # a text column is compared value by value (GE sees it as object dtype): every
            # non-null value is a Python str, so it fails a numeric type list row by row
            inferred = pd.api.types.infer_dtype(s, skipna=True)
            if inferred in ("string", "empty"):
                bad = ~null(col) if "str" not in wanted else np.zeros(len(df), dtype=bool)
            else:                                      # mixed objects: the rare slow path
                names = s.map(lambda v: type(v).__name__)
                bad = ~null(col) & ~names.isin(wanted).to_numpy(dtype=bool)
            out.append(_rows_found(name, df, bad, [col], spec, _detail_for(snake(kind), kw)))
        elif kind == "ExpectColumnValuesToBeUnique":
            s = df[col]
            bad = s.duplicated(keep=False).to_numpy(dtype=bool) & ~null(col)
            out.append(_rows_found(name, df, bad, [col], spec, None))
        elif kind == "ExpectCompoundColumnsToBeUnique":
            cols = kw["column_list"]
            if any(c not in df.columns for c in cols):
                continue
            frame = pd.DataFrame({c: df[c].where(~pd.Series(null(c), index=df.index)) for c in cols})
            all_null = np.logical_and.reduce([null(c) for c in cols])
            bad = frame.duplicated(keep=False).to_numpy(dtype=bool) & ~all_null
            if all_null.any():      # rows ignored by GE take no part in the comparison
                bad = np.zeros(len(df), dtype=bool)
                keep = ~all_null
                bad[keep] = frame[keep].duplicated(keep=False).to_numpy(dtype=bool)
            out.append(_rows_found(name, df, bad, cols, spec, _detail_for(snake(kind), kw)))
        else:
            raise ValueError(f"no native evaluation for expectation {kind}")
    out = [f for f in out if f is not None and len(f)]
    if not out:
        return pd.DataFrame(columns=RAW_COLUMNS + ["rule", "severity"])
    return pd.concat(out, ignore_index=True)
