"""Values of the expression language: kinds, missing values, column normalisation.

Every intermediate result of an evaluation is a :class:`_Val`: a pandas Series on a
RangeIndex (or a Python scalar for literals) with its *kind* (text, number, date, ...).
This module holds the rules that decide a column's kind and what counts as missing;
the evaluator (:mod:`cdisc.expr.evaluate`), the function library
(:mod:`cdisc.expr.functions`) and the date rules (:mod:`cdisc.expr.dates`) share them.
"""
from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cdisc.errors import Problem, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from .evaluate import _Evaluator

_KIND_NAMES = {
    "str": "text",
    "num": "a number",
    "date": "a date",
    "bool": "true/false",
    "null": "missing",
    "mixed": "mixed types",
    "duration": "a duration",
}


@contextmanager
def recursion_room(levels: int):
    """Room on the Python stack for a tree walk ``levels`` deep (3 frames per level).

    The parser bounds the depth (``MAX_DEPTH``), so the walk itself stays recursive and
    simple; this only lifts Python's default limit of 1000 frames for the duration.
    """
    old = sys.getrecursionlimit()
    want = 1000 + 3 * levels
    if want > old:
        sys.setrecursionlimit(want)
    try:
        yield
    finally:
        if want > old:
            sys.setrecursionlimit(old)


def _fail(message: str, where: str | None, hint: str | None = None, column: str | None = None):
    raise SpecError(Problem(message, key=where, hint=hint, column=column))


@dataclass
class _Val:
    """An intermediate result: a Series on a RangeIndex, or a Python scalar."""

    data: Any
    kind: str            # str, num, date, bool, null, mixed, duration
    label: str           # source text, for messages
    dtype: str | None = None
    column: str | None = None

    @property
    def scalar(self) -> bool:
        return not isinstance(self.data, pd.Series)

    def describe(self) -> str:
        text = _KIND_NAMES.get(self.kind, self.kind)
        if self.dtype:
            text += f", dtype {self.dtype}"
        return f"{self.label} ({text})"


def _scalar_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _blank_to_nan(s: pd.Series) -> pd.Series:
    """Text that is empty or only blanks is a missing value (SAS / XPT v5 convention)."""
    from cdisc.distinct import on_distinct

    blank = on_distinct(s, lambda u: u.eq("") | u.str.isspace())
    if blank.any():
        s = s.mask(blank)
    return s


def _to_float(s: pd.Series) -> pd.Series:
    return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)


def _normalise(s: pd.Series) -> tuple[pd.Series, str]:
    """Bring a column to one representation per kind (loop-free)."""
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _normalise(s.astype(dtype.categories.dtype))
    if pd.api.types.is_bool_dtype(dtype):
        return s, "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return _to_float(s), "num"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return s, "date"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return s, "duration"
    if isinstance(dtype, pd.StringDtype):
        return _blank_to_nan(s.astype("str")), "str"
    inferred = pd.api.types.infer_dtype(s, skipna=True)
    if inferred == "string":
        return _blank_to_nan(s.astype("str")), "str"
    if inferred == "empty":
        return s, "null"
    if inferred == "boolean":
        return s.astype("boolean"), "bool"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return _to_float(pd.to_numeric(s)), "num"
    if inferred in ("datetime", "datetime64", "date"):
        return pd.to_datetime(s, errors="coerce"), "date"
    if inferred in ("timedelta", "timedelta64"):
        return pd.to_timedelta(s, errors="coerce"), "duration"
    # Several Python types in one object column: keep it, but blanks are still missing.
    blank = s.astype("str").str.strip().eq("")
    return (s.mask(blank) if blank.any() else s), "mixed"


def _num_text(x: pd.Series) -> pd.Series:
    """Numbers as text, shortest form (12 significant digits): 177.80 -> '177.8', 12.0 -> '12'."""
    arr = x.to_numpy(dtype="float64", na_value=np.nan)
    ok = ~np.isnan(arr)
    out = np.full(arr.shape, None, dtype=object)
    if ok.any():
        out[ok] = np.char.mod("%.12g", arr[ok]).astype(object)
    return pd.Series(out, index=x.index, dtype="str")


def _series(ev: "_Evaluator", v: _Val, kind: str) -> pd.Series:
    """``v`` as a Series of the frame's length (a missing value -> a missing ``kind`` column)."""
    if v.kind == "null":
        return ev.broadcast(None, kind)
    return ev.broadcast(v.data, v.kind) if v.scalar else v.data


def _as_text(ev: "_Evaluator", v: _Val, node) -> pd.Series:
    """Text of a value; numbers without padding; missing -> NaN."""
    if v.kind in ("str", "null"):
        return _series(ev, v, "str")
    if v.kind == "num":
        return _num_text(_series(ev, v, "num"))
    if v.kind == "date":
        d = _series(ev, v, "date")
        return d.dt.strftime("%Y-%m-%d").where(d.notna())
    ev.fail(node, f"{v.describe()} cannot be used as text", column=v.column)
