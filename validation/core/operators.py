"""CORE Check operators, vectorised (cdisc_rules_engine/check_operators/dataframe_operators.py).

Each operator takes the evaluation frame and one Check leaf and returns a boolean
``pd.Series``. Like CORE's, most results are indexed like the frame; the few CORE computes as
a single value for the whole dataset come back as a one-element Series at index 0, so that
combining them with ``&``/``|`` flags only the first record, as CORE does.

A leaf naming a column the frame does not have raises :class:`MissingColumn` (a
``KeyError``): in an ``all`` that skips the dataset ("Column not found in data"), in an ``any``
it is ignored unless every branch raises, as in CORE's business-rules engine. A comparator
naming a column that does not exist is compared as literal text (CORE's
``DataFrame.get(comparator, comparator)``).

What counts as empty follows CORE: null (NaN/None), the empty string, or an empty
list/set/dict; a blank (" ") is not empty.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas._libs import lib

from cdisc.distinct import factorize, known

from .grouping import codes, count_per_code, row_codes

from . import dates


class MissingColumn(KeyError):
    """A Check leaf names a column the dataset does not have."""


class OperatorError(Exception):
    """CORE raises here (its result is an execution error for the dataset)."""


NOT_SUPPORTED: dict[str, str] = {}


# ----------------------------------------------------------------------------- helpers
def _isnan(x) -> bool:
    return isinstance(x, float) and np.isnan(x)


def _obj(s) -> np.ndarray:
    """Values as Python objects; pd.NA (from a SUPP-- pivot) as None."""
    a = np.asarray(s, dtype=object)
    if isinstance(s, pd.Series) and s.dtype == object and a.size:
        m = s.isna().to_numpy(dtype=bool)
        if m.any():
            a = a.copy()
            a[m] = None
    return a


def _mixed(s: pd.Series) -> bool:
    """Whether an object column may hold lists/sets/dicts (results of operations)."""
    if s.dtype != object or len(s) == 0:
        return False
    kind = pd.api.types.infer_dtype(s, skipna=True)
    return kind in ("mixed", "unknown-array", "empty") and s.notna().any()


def _is_collection(x) -> bool:
    return isinstance(x, (list, set, dict, tuple))


def is_null(x) -> np.ndarray | bool:
    """CORE's null test (``pd.isna(x) | x == "" | x is None``) for a column or a scalar."""
    if isinstance(x, pd.Series):
        a = np.array(x.isna().to_numpy(dtype=bool))
        if x.dtype == object or pd.api.types.is_string_dtype(x):
            a = a | (_obj(x) == "")
        return a
    if x is None:
        return True
    if isinstance(x, (list, set, dict, tuple)):
        try:
            return bool(pd.isna(list(x)).all()) if len(x) else True
        except (TypeError, ValueError):
            return False
    try:
        return bool(pd.isna(x)) or x == ""
    except (TypeError, ValueError):
        return False


def empty_mask(s: pd.Series) -> np.ndarray:
    """CORE ``empty``: value in NULL_FLAVORS ("", None, NaN, {}, [] ...) or an empty collection."""
    a = np.array(s.isna().to_numpy(dtype=bool))
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        a |= _obj(s) == ""
    if _mixed(s):
        obj = _obj(s)
        types = _TYPE(obj) if obj.size else np.zeros(0, object)
        coll = np.flatnonzero(np.isin(types, [list, set, dict, tuple]))
        for i in coll:  # only the collections (operation results), not every record
            x = obj[i]
            a[i] = a[i] or len(x) == 0 or (isinstance(x, (list, set)) and len(x) == 1 and next(iter(x)) is None)
    return a


_TYPE = np.frompyfunc(type, 1, 1)


def column_of_iterables(s) -> bool:
    """CORE is_column_of_iterables: every non-null value is a list or set."""
    if not isinstance(s, pd.Series) or s.dtype != object:
        return False
    first = s.first_valid_index()
    if first is None or not isinstance(s[first], (list, set)):
        return False
    a = s.to_numpy(dtype=object)
    types = _TYPE(a)
    nn = ~pd.isna(a)
    return bool(np.isin(types[nn], [list, set]).all())


_ID = np.frompyfunc(id, 1, 1)


def _ids(s: pd.Series) -> pd.Series:
    """Identity of each cell's object (operation results repeat one list object)."""
    return pd.Series(_ID(s.to_numpy(dtype=object)).astype(np.int64) if len(s) else np.zeros(0, np.int64),
                     index=s.index)


def _by_object(s: pd.Series, fn: Callable[[Any], Any]) -> np.ndarray:
    """Apply ``fn`` once per distinct object of a column of lists (operation results are the
    same list repeated per record or per group), then broadcast."""
    ids = _ids(s)
    first = ~ids.duplicated()
    cache = {i: fn(v) for i, v in zip(ids[first], s[first])}
    return ids.map(cache).to_numpy()


def _number_text(a: np.ndarray) -> np.ndarray:
    """CORE _regex_str_conversion of numbers: integral values as '%.0f', others as str()."""
    f = a.astype(float)
    out = np.empty(len(f), dtype=object)
    integral = np.isfinite(f) & (f == np.floor(f))
    out[integral] = np.char.mod("%.0f", f[integral]).astype(object) if integral.any() else []
    rest = ~integral
    if rest.any():
        out[rest] = [str(x) for x in a[rest]]
    return out


def regex_text(s: pd.Series) -> pd.Series:
    """CORE _regex_str_conversion: integers and integral floats as '%.0f', other values as text;
    nulls stay null."""
    if pd.api.types.is_float_dtype(s) or pd.api.types.is_integer_dtype(s):
        a = s.to_numpy(dtype=float)
        out = np.full(len(a), None, dtype=object)
        ok = ~np.isnan(a)
        out[ok] = _number_text(a[ok])
        return pd.Series(out, index=s.index, dtype=object)
    if s.dtype == object:
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind not in ("string", "empty"):
            a = s.to_numpy(dtype=object)
            types = _TYPE(a) if a.size else np.zeros(0, object)
            num = np.isin(types, [int, float, np.float64, np.int64])
            num &= ~pd.isna(a)
            if num.any():
                a = a.copy()
                a[num] = _number_text(a[num])
            boo = np.isin(types, [bool, np.bool_])
            if boo.any():
                a[boo] = [str(x) for x in a[boo]]
            return pd.Series(a, index=s.index, dtype=object)
    return s


def map_texts(s: pd.Series, fn: Callable[[str], Any]) -> pd.Series:
    """``s.map(lambda x: fn(x) if isinstance(x, str) and x else x)``, with ``fn`` (pure) called
    once per distinct non-empty text instead of once per record (a regex on every record of a
    million-row LB otherwise)."""
    a = s.to_numpy(dtype=object)
    if not len(a):
        return s.map(lambda x: fn(x) if isinstance(x, str) and x else x)
    codes, uniq = factorize(a, use_na_sentinel=True)
    is_text = np.fromiter((isinstance(u, str) and u != "" for u in uniq), dtype=bool, count=len(uniq))
    answers = np.empty(len(uniq), dtype=object)
    answers[:] = [fn(u) if t else None for u, t in zip(uniq, is_text)]
    hit = codes >= 0
    hit[hit] = is_text[codes[hit]]
    out = a.copy()
    out[hit] = answers[codes[hit]]
    # what Series.map builds from the answers (map_infer's conversion, then the Series' own)
    return pd.Series(lib.maybe_convert_objects(out), index=s.index, name=s.name)


def custom_str(x):
    """cdisc_rules_engine.utilities.utils.custom_str_conversion."""
    if x is None or _isnan(x):
        return x
    if isinstance(x, str):
        try:
            f = float(x)
            return str(int(f)).strip() if f.is_integer() else str(f).strip()
        except (ValueError, TypeError, OverflowError):
            return x.strip()
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return str(x).strip()
    if isinstance(x, float):
        return f"{x:.0f}" if x.is_integer() else str(x).strip()
    return x


# ----------------------------------------------------------------------------- environment
class Env:
    """The evaluation frame of one dataset and the ``--`` replacement of its domain."""

    def __init__(self, df: pd.DataFrame, wildcard: str):
        self.df = df
        self.wildcard = wildcard
        self.n = len(df)
        self.index = df.index
        self.memo = None  # leaf results shared between rules on the same frame (engine)
        self.memo_without_operations = False
        self.columns_cache: dict = {}
        self._lists = None

    def list_values(self) -> list:
        """The distinct lists held in the frame's cells (operation results), for ``exists``."""
        if self._lists is None:
            hit = None if self.memo_without_operations else self.columns_cache.get(("lists",))
            if hit is not None:
                self._lists = hit
                return hit
            out = []
            if len(self.df):
                for c, dt in self.df.dtypes.items():
                    if dt != object:
                        continue
                    s = self.df[c]
                    i = s.first_valid_index()
                    if i is None or not isinstance(s[i], (list, set)):
                        continue
                    if column_of_iterables(s):
                        out.extend(v for v in _unique_objects(s) if isinstance(v, list))
            self._lists = out
            if not self.memo_without_operations:
                self.columns_cache[("lists",)] = out
        return self._lists

    # ``--`` prefix (CORE replace_prefix: only at the start, replacement may be "")
    def prefix(self, v):
        if isinstance(v, str) and v.startswith("--") and self.wildcard is not None:
            return v.replace("--", self.wildcard, 1)
        if isinstance(v, list):
            return [self.prefix(x) for x in v]
        return v

    def col(self, name) -> pd.Series:
        if not isinstance(name, str) or name not in self.df.columns:
            raise MissingColumn(name)
        c = self.df[name]
        if isinstance(c, pd.DataFrame):  # duplicated column name after a merge
            c = c.iloc[:, 0]
        return c

    def has(self, name) -> bool:
        try:
            return isinstance(name, str) and name in self.df.columns
        except TypeError:
            return False

    def comparand(self, value, literal: bool = False):
        """CORE get_comparator_data: a column when ``value`` names one, else the literal."""
        if literal:
            return value
        if isinstance(value, str) and value in self.df.columns:
            return self.col(value)
        return value

    def series(self, values, short: bool = False):
        """A full-length result (a numpy bool array), or CORE's one-value result."""
        if short:
            return pd.Series([bool(values)], dtype=bool)
        return np.asarray(values, dtype=bool)

    # per-column arrays, computed once per frame (shared between rules on a shared frame)
    def _cached(self, kind: str, name, fn):
        if self.memo_without_operations and isinstance(name, str) and name.startswith("$"):
            return fn(self.col(name))  # an operation's column: not in the shared cache
        key = (kind, name)
        hit = self.columns_cache.get(key)
        if hit is None:
            hit = fn(self.col(name))
            self.columns_cache[key] = hit
        return hit

    def values(self, name) -> np.ndarray:
        return self._cached("values", name, _obj)

    def null(self, name) -> np.ndarray:
        return self._cached("null", name, is_null)

    def empty(self, name) -> np.ndarray:
        return self._cached("empty", name, empty_mask)

    def broadcast(self, x) -> np.ndarray:
        if isinstance(x, pd.Series):
            return _obj(x)
        out = np.empty(self.n, dtype=object)
        out[:] = [x] * self.n
        return out


# ----------------------------------------------------------------------------- operators
def op_exists(env: Env, leaf):
    target = leaf["target"]
    if env.has(target):
        return env.series(np.ones(env.n, bool))
    nested = any(target in v for v in env.list_values())
    return env.series(np.full(env.n, nested))


def _unique_objects(s: pd.Series):
    ids = _ids(s)
    return list(s[~ids.duplicated()])


def op_not_exists(env, leaf):
    return ~op_exists(env, leaf)


def op_empty(env, leaf):
    return env.empty(leaf["target"])


def op_non_empty(env, leaf):
    return ~op_empty(env, leaf)


def _equality(env: Env, leaf, negate: bool, case_insensitive: bool = False):
    target = leaf["target"]
    t_null = env.null(target)
    tv = env.values(target)
    comparator = leaf.get("comparator")
    literal = leaf.get("value_is_literal", False)
    if leaf.get("value_is_reference", False):
        names = env.col(comparator)
        c = np.empty(env.n, dtype=object)
        c[:] = None
        for name in pd.unique(names.dropna()):
            if env.has(name):
                m = (names == name).to_numpy(dtype=bool)
                c[m] = _obj(env.col(name))[m]
        c_series = pd.Series(c, index=env.index, dtype=object)
        c_null = is_null(c_series)
        c_vals = c
    else:
        if isinstance(comparator, (list, dict)):
            raise OperatorError("unhashable comparator")
        if literal or not env.has(comparator):
            c_null, c_vals = is_null(comparator), comparator
        else:
            c_null, c_vals = env.null(comparator), env.values(comparator)
    both_null = t_null & c_null
    cv = c_vals
    if leaf.get("round_values"):
        tv = np.array([_round(x) for x in tv], dtype=object)
        cv = np.array([_round(x) for x in cv], dtype=object) if isinstance(cv, np.ndarray) else _round(cv)
    if leaf.get("type_insensitive"):
        tv = _map_unique(tv, custom_str)
        cv = _map_unique(cv, custom_str) if isinstance(cv, np.ndarray) else custom_str(cv)
    if case_insensitive:
        low = lambda x: x.lower() if isinstance(x, str) and x else None
        tv = _map_unique(tv, low)
        cv = _map_unique(cv, low) if isinstance(cv, np.ndarray) else low(cv)
    if isinstance(cv, np.ndarray):
        eq = _eq_arrays(tv, cv)
    else:
        eq = _eq_scalar(tv, cv)
    res = (~eq if negate else eq) & ~np.asarray(both_null, dtype=bool)
    return env.series(res)


def _round(x):
    try:
        return round(float(x)) if x is not None else None
    except (ValueError, TypeError):
        return x


def _map_unique(a: np.ndarray, fn) -> np.ndarray:
    """``fn`` (pure, element-wise) once per distinct value, taken back by the factorize codes.

    Equal values share one answer, the first occurrence's, as a dict keyed by the distinct
    values gives (pandas' hash table groups values as dict equality does: 1, 1.0 and True are one
    value). Nulls are not factorized: None/pd.NA are each one object (their answer is computed
    once per object); for float NaN ``fn`` either gives the NaN back (custom_str) or an answer
    that cannot depend on which NaN object it saw, so one probe answers them all.
    """
    a = np.asarray(a, dtype=object)
    try:
        codes, uniq = pd.factorize(a, use_na_sentinel=True)
    except TypeError:
        return np.array([fn(x) for x in a], dtype=object)
    if any(isinstance(u, (list, set, dict)) for u in uniq):
        return np.array([fn(x) for x in a], dtype=object)
    table = np.empty(len(uniq), dtype=object)
    table[:] = [fn(u) for u in uniq]
    out = table[np.maximum(codes, 0)] if len(uniq) else np.empty(len(a), dtype=object)
    nulls = np.flatnonzero(codes < 0)
    if len(nulls):
        vals = a[nulls]
        is_nan = np.isin(_TYPE(vals), [float, np.float64]).astype(bool) if len(vals) else np.zeros(0, bool)
        if is_nan.any():
            probe = vals[is_nan][0]
            got = fn(probe)
            if got is probe:
                out[nulls[is_nan]] = vals[is_nan]
            else:
                out[nulls[is_nan]] = [got] * int(is_nan.sum())
        other = ~is_nan
        if other.any():                       # None, pd.NA, NaT: one answer per object
            objs = vals[other]
            oc = np.unique(_ID(objs).astype(np.int64), return_inverse=True)[1].reshape(-1)
            first = np.full(int(oc.max()) + 1, len(objs), dtype=np.int64)
            np.minimum.at(first, oc, np.arange(len(objs)))
            answers = np.empty(len(first), dtype=object)
            answers[:] = [fn(objs[i]) for i in first]
            out[nulls[other]] = answers[oc]
    # what Series.map gives for these answers (map_infer converts the answers, the Series infers
    # str: a None among texts comes back NaN)
    return pd.Series(lib.maybe_convert_objects(out)).to_numpy(dtype=object)


def _eq_scalar(a: np.ndarray, c) -> np.ndarray:
    if isinstance(c, (list, set, dict, tuple)):
        return np.array([x == c for x in a], dtype=bool)
    res = a == c
    if not isinstance(res, np.ndarray):
        return np.full(len(a), bool(res))
    return res.astype(bool)


def _eq_arrays(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    res = a == b
    if not isinstance(res, np.ndarray) or res.dtype != bool:
        return np.array([x == y for x, y in zip(a, b)], dtype=bool)
    return res


def op_equal_to(env, leaf):
    return _equality(env, leaf, negate=False)


def op_not_equal_to(env, leaf):
    return _equality(env, leaf, negate=True)


def op_equal_to_case_insensitive(env, leaf):
    return _equality(env, leaf, negate=False, case_insensitive=True)


def op_not_equal_to_case_insensitive(env, leaf):
    return _equality(env, leaf, negate=True, case_insensitive=True)


def _numeric(env: Env, leaf, fn):
    t = pd.to_numeric(env.col(leaf["target"]), errors="coerce")
    c = env.comparand(leaf.get("comparator"), leaf.get("value_is_literal", False))
    if isinstance(c, pd.Series):
        c = pd.to_numeric(c, errors="coerce").to_numpy(dtype=float)
    elif isinstance(c, bool) or not isinstance(c, (int, float)):
        if c is None:
            raise OperatorError(f"comparison with {c!r}")
        if isinstance(c, str):
            raise OperatorError(f"Invalid comparison between a number and text {c!r}")
    with np.errstate(invalid="ignore"):
        res = fn(t.to_numpy(dtype=float), c)
    return pd.Series(np.asarray(res, dtype=bool))


def op_less_than(env, leaf):
    return _numeric(env, leaf, np.less)


def op_less_than_or_equal_to(env, leaf):
    return _numeric(env, leaf, np.less_equal)


def op_greater_than(env, leaf):
    return _numeric(env, leaf, np.greater)


def op_greater_than_or_equal_to(env, leaf):
    return _numeric(env, leaf, np.greater_equal)


def _is_in(value, values) -> bool:
    """CORE helpers.is_in."""
    if values is None or value is None:
        return False
    if _isnan(value):
        return False
    try:
        return value in values
    except TypeError:
        return False


def op_contains(env, leaf):
    t = env.col(leaf["target"])
    c = env.comparand(leaf.get("comparator"), leaf.get("value_is_literal", False))
    if column_of_iterables(t) or isinstance(c, str):
        if isinstance(c, pd.Series):
            res = np.array([_is_in(x, v) for x, v in zip(_obj(c), _obj(t))], dtype=bool)
        elif t.dtype == object and not column_of_iterables(t):
            # substring test per value (CORE: comparator in value)
            s = t.where(t.map(lambda v: isinstance(v, (str, list, set, tuple, dict))), None) if _mixed(t) else t
            if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
                res = s.str.contains(c, regex=False).fillna(False).to_numpy(dtype=bool)
            else:
                res = np.array([_is_in(c, v) for v in _obj(t)], dtype=bool)
        elif pd.api.types.is_string_dtype(t):
            res = t.str.contains(c, regex=False).fillna(False).to_numpy(dtype=bool)
        else:
            res = _by_object(t, lambda v: _is_in(c, v)).astype(bool)
    elif isinstance(c, pd.Series):
        res = c.isin(t).to_numpy(dtype=bool)
    else:
        res = _eq_scalar(_obj(t), c)
    return pd.Series(res)


def op_does_not_contain(env, leaf):
    return ~op_contains(env, leaf)


def op_is_contained_by(env, leaf):
    t = env.col(leaf["target"])
    c = env.comparand(leaf.get("comparator"), leaf.get("value_is_literal", False))
    if column_of_iterables(t):
        cv = env.broadcast(c) if not isinstance(c, pd.Series) else _obj(c)
        if not isinstance(c, pd.Series):
            res = np.array([any(_is_in(i, c) for i in v) if isinstance(v, list) else _is_in(v, c) for v in _obj(t)], dtype=bool)
        else:
            res = np.array([any(_is_in(i, cc) for i in v) if isinstance(v, list) else _is_in(v, cc)
                            for v, cc in zip(_obj(t), cv)], dtype=bool)
    elif column_of_iterables(c):
        res = _in_lists(t, c)
    else:
        if isinstance(c, pd.Series):
            c = c.map(lambda x: list(x) if isinstance(x, set) else x)
        elif isinstance(c, set):
            c = list(c)
        if isinstance(c, str) or not pd.api.types.is_list_like(c):
            raise OperatorError(f"only list-like objects are allowed to be passed to isin(), you passed a {type(c).__name__}")
        res = t.isin(c).to_numpy(dtype=bool)
    return pd.Series(res)


def _in_lists(values: pd.Series, lists: pd.Series) -> np.ndarray:
    """Per row: value in that row's list (CORE vectorized_is_in), grouped by list object.

    Operation results hold one list per group (thousands per dataset), so the membership is
    one hash join: (list, value) pairs of the rows against (list, element) pairs of the lists,
    both coded by one factorize (the equality ``Series.isin`` uses). Rows whose cell is not a
    list (text, a number) and anything unhashable go through the per-list loop below.
    """
    try:
        return _in_lists_joined(values, lists)
    except TypeError:
        return _in_lists_loop(values, lists)


def _in_lists_joined(values: pd.Series, lists: pd.Series) -> np.ndarray:
    ids = _ids(lists).to_numpy()
    n = len(ids)
    vals = _obj(values)
    first, group = np.unique(ids, return_index=True, return_inverse=True)[1:] if n else (
        np.zeros(0, np.int64), np.zeros(0, np.int64))
    group = group.reshape(-1)
    objs = [lists.iloc[f] for f in first]
    kind = np.zeros(len(objs), dtype=np.int8)          # 0 null, 1 list-like, 2 other
    elems, owners = [], []
    for k, l in enumerate(objs):
        if l is None or _isnan(l):
            continue
        if isinstance(l, (list, set, tuple)):
            kind[k] = 1
            items = list(l)
            elems.extend(items)
            owners.extend([k] * len(items))
        else:
            kind[k] = 2
    out = np.zeros(n, dtype=bool)
    row_kind = kind[group] if n else kind[:0]
    listed = row_kind == 1
    if listed.any() and elems:
        pool = np.empty(n + len(elems), dtype=object)
        pool[:n] = vals
        pool[n:] = elems
        codes = pd.factorize(pool, use_na_sentinel=True)[0].astype(np.int64)
        width = int(codes.max()) + 2
        row_keys = group.astype(np.int64) * width + codes[:n] + 1
        pair_keys = np.asarray(owners, dtype=np.int64) * width + codes[n:] + 1
        out = listed & (codes[:n] >= 0) & np.isin(row_keys, pair_keys)
    other = np.flatnonzero(row_kind == 2)
    for i in other:                                   # a text or number where a list would be
        out[i] = _is_in(vals[i], objs[group[i]])
    return out


def _in_lists_loop(values: pd.Series, lists: pd.Series) -> np.ndarray:
    ids = _ids(lists).to_numpy()
    out = np.zeros(len(values), dtype=bool)
    vals = _obj(values)
    uniq, first = np.unique(ids, return_index=True) if len(ids) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    lists_by_id = {i: lists.iloc[f] for i, f in zip(uniq, first)}
    idarr = ids
    for i, l in lists_by_id.items():
        m = idarr == i
        if l is None or _isnan(l):
            continue
        if isinstance(l, (list, set, tuple)):
            try:
                sub = pd.Series(vals[m], dtype=object)
                out[m] = (sub.isin(list(l)) & sub.notna()).to_numpy(dtype=bool)
            except TypeError:
                out[m] = [_is_in(v, l) for v in vals[m]]
        else:
            out[m] = [_is_in(v, l) for v in vals[m]]
    return out


def op_is_not_contained_by(env, leaf):
    return ~op_is_contained_by(env, leaf)


def op_is_contained_by_case_insensitive(env, leaf):
    t = env.col(leaf["target"])
    comparator = leaf.get("comparator", [])
    if isinstance(comparator, list):
        comparator = [v.lower() for v in comparator]
    c = env.comparand(comparator, leaf.get("value_is_literal", False))
    low = t.str.lower()
    if column_of_iterables(c):
        res = np.array([str(v).lower() in str(l).lower() for v, l in zip(_obj(low), _obj(c))], dtype=bool)
        return pd.Series(res)
    if isinstance(c, pd.Series):
        return low.isin(c.str.lower()).fillna(False).astype(bool)
    return low.isin(c).fillna(False).astype(bool)


def op_is_not_contained_by_case_insensitive(env, leaf):
    return ~op_is_contained_by_case_insensitive(env, leaf)


def _regex(env, leaf, part: str | None, negate: bool):
    """CORE (not_)(prefix_|suffix_)matches_regex: non-null values (after the number-to-text
    conversion), re.match on the whole value, re.search on a prefix/suffix."""
    pattern = leaf.get("comparator")
    _compiled(pattern)
    s = regex_text(env.col(leaf["target"]))
    try:  # each distinct value once (value checks run this on every value of a dataset)
        codes, uniques = factorize(s if known(s) else s.astype(object), use_na_sentinel=True)
    except TypeError:  # unhashable values (lists): value by value
        codes, uniques = np.arange(len(s)), s.astype(object).to_numpy()
        codes = np.where(s.notna().to_numpy(dtype=bool), codes, -1)
    text = pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str).astype(object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "pattern ... has match groups"
        if part == "prefix":
            m = text.str[: leaf.get("prefix")].str.contains(pattern, regex=True)
        elif part == "suffix":
            m = text.str[-leaf.get("suffix"):].str.contains(pattern, regex=True)
        else:
            m = text.str.match(pattern)
    m = m.fillna(False).to_numpy(dtype=bool)
    notna = codes >= 0
    hit = np.zeros(len(codes), dtype=bool)
    hit[notna] = m[codes[notna]]
    return env.series(notna & (~hit if negate else hit))


def _compiled(pattern):
    try:
        return re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise OperatorError(f"invalid regular expression {pattern!r}: {exc}")


def op_matches_regex(env, leaf):
    return _regex(env, leaf, None, False)


def op_not_matches_regex(env, leaf):
    return _regex(env, leaf, None, True)


def op_prefix_matches_regex(env, leaf):
    return _regex(env, leaf, "prefix", False)


def op_not_prefix_matches_regex(env, leaf):
    return _regex(env, leaf, "prefix", True)


def op_suffix_matches_regex(env, leaf):
    return _regex(env, leaf, "suffix", False)


def op_not_suffix_matches_regex(env, leaf):
    return _regex(env, leaf, "suffix", True)


def _string_part(env, leaf, part: str) -> pd.Series:
    t = env.col(leaf["target"])
    if not (len(t) == 0 or (t.map(type) == str).all()):
        raise OperatorError("The operator can't be used with non-string values")
    k = leaf.get(part)
    s = t.str.slice(-k) if part == "suffix" else t.str.slice(stop=k)
    return s.mask(t.isna())


def op_prefix_equal_to(env, leaf):
    comparator = leaf.get("comparator")
    if comparator == "DOMAIN":
        c = env.wildcard
    else:
        c = env.comparand(comparator, leaf.get("value_is_literal", False))
    s = _string_part(env, leaf, "prefix")
    return s.eq(c).astype(bool)


def op_prefix_not_equal_to(env, leaf):
    return ~op_prefix_equal_to(env, leaf)


def op_suffix_equal_to(env, leaf):
    c = env.comparand(leaf.get("comparator"), leaf.get("value_is_literal", False))
    return _string_part(env, leaf, "suffix").eq(c).astype(bool)


def op_suffix_not_equal_to(env, leaf):
    return ~op_suffix_equal_to(env, leaf)


def _part_contained(env, leaf, part):
    c = env.comparand(leaf.get("comparator"), leaf.get("value_is_literal", False))
    s = _string_part(env, leaf, part)
    if column_of_iterables(c):
        return pd.Series(_in_lists(s, c))
    if isinstance(c, str) or not pd.api.types.is_list_like(c):
        raise OperatorError("only list-like objects are allowed to be passed to isin()")
    return pd.Series(s.isin(c).to_numpy(dtype=bool))


def op_prefix_is_contained_by(env, leaf):
    return _part_contained(env, leaf, "prefix")


def op_prefix_is_not_contained_by(env, leaf):
    return ~op_prefix_is_contained_by(env, leaf)


def op_suffix_is_contained_by(env, leaf):
    return _part_contained(env, leaf, "suffix")


def op_suffix_is_not_contained_by(env, leaf):
    return ~op_suffix_is_contained_by(env, leaf)


def _str_col(env, leaf) -> pd.Series:
    t = env.col(leaf["target"])
    if not (t.dtype == object or pd.api.types.is_string_dtype(t)):
        raise OperatorError("Can only use .str accessor with string values!")
    return t


def _length_compare(env, leaf, fn_name: str):
    t = _str_col(env, leaf)
    comparator = leaf.get("comparator")
    c = env.comparand(comparator, leaf.get("value_is_literal", False))
    lengths = t.str.len()
    if isinstance(c, pd.Series):
        other = c if pd.api.types.is_integer_dtype(c) else c.str.len()
    else:
        other = c if fn_name in ("gt", "eq") else comparator
    return getattr(lengths, fn_name)(other)


def op_longer_than(env, leaf):
    return _length_compare(env, leaf, "gt").fillna(False).astype(bool)


def op_longer_than_or_equal_to(env, leaf):
    return _length_compare(env, leaf, "ge").fillna(False).astype(bool)


def op_shorter_than(env, leaf):
    return ~op_longer_than_or_equal_to(env, leaf)


def op_shorter_than_or_equal_to(env, leaf):
    return ~op_longer_than(env, leaf)


def op_has_equal_length(env, leaf):
    return _length_compare(env, leaf, "eq").fillna(False).astype(bool)


def op_has_not_equal_length(env, leaf):
    return ~op_has_equal_length(env, leaf)


def op_starts_with(env, leaf):
    t = env.col(leaf["target"])
    c = env.comparand(leaf.get("comparator"), leaf.get("value_is_literal", False))
    if isinstance(c, pd.Series):
        c = tuple(c)
    return t.str.startswith(c).fillna(False).astype(bool)


def op_ends_with(env, leaf):
    t = env.col(leaf["target"])
    c = env.comparand(leaf.get("comparator"), leaf.get("value_is_literal", False))
    if isinstance(c, pd.Series):
        c = tuple(c)
    return t.str.endswith(c).fillna(False).astype(bool)


# dates
def _date_op(name):
    def fn(env, leaf):
        t = env.col(leaf["target"])
        c = env.comparand(leaf.get("comparator"), leaf.get("value_is_literal", False))
        cv = _obj(c) if isinstance(c, pd.Series) else c
        return pd.Series(dates.compare(_obj(t), cv, name, leaf.get("date_component")))
    return fn


op_date_equal_to = _date_op("eq")
op_date_not_equal_to = _date_op("ne")
op_date_less_than = _date_op("lt")
op_date_less_than_or_equal_to = _date_op("le")
op_date_greater_than = _date_op("gt")
op_date_greater_than_or_equal_to = _date_op("ge")


def op_is_complete_date(env, leaf):
    return pd.Series(dates.is_complete_date(_obj(env.col(leaf["target"]))))


def op_is_incomplete_date(env, leaf):
    return ~op_is_complete_date(env, leaf)


def op_invalid_date(env, leaf):
    return pd.Series(~dates.is_valid_date(_obj(env.col(leaf["target"]))))


DURATION = re.compile(
    r"^P(?!$)(?:(?:(\d+(?:[.,]\d*)?Y)?[,]?(\d+(?:[.,]\d*)?M)?[,]?"
    r"(\d+(?:[.,]\d*)?D)?[,]?(T(?=\d)(?:(\d+(?:[.,]\d*)?H)?[,]?"
    r"(\d+(?:[.,]\d*)?M)?[,]?(\d+(?:[.,]\d*)?S)?)?)?)|(\d+(?:[.,]\d*)?W))$"
)
DURATION_NEG = re.compile("^[-]?" + DURATION.pattern[1:])


def _valid_duration(x, negative: bool) -> bool:
    x = x if isinstance(x, str) else str(x)
    m = (DURATION_NEG if negative else DURATION).match(x)
    if not m:
        return False
    years, months, days, td, hours, minutes, seconds, weeks = m.groups()
    if td and not any([hours, minutes, seconds]):
        return False
    comps = [c for c in [years, months, weeks, days, hours, minutes, seconds] if c is not None]
    found = False
    for i, c in enumerate(comps):
        if "." in c or "," in c:
            if found or i != len(comps) - 1:
                return False
            found = True
    return True


def op_invalid_duration(env, leaf):
    negative = leaf.get("negative") is not False
    t = env.col(leaf["target"])
    return pd.Series(~_map_unique(_obj(t), lambda x: _valid_duration(x, negative)).astype(bool))


# sets and relationships
def _flatten(env: Env, items):
    """CORE flatten_list: names, expanding a column whose first value is a list."""
    for item in items:
        if isinstance(item, list):
            yield from _flatten(env, item)
        elif env.has(item) and len(env.df) and isinstance(env.col(item).iloc[0], list):
            yield from env.col(item).iloc[0]
        else:
            yield item


def _unique_set(env: Env, leaf) -> np.ndarray:
    names = [x for x in _flatten(env, [leaf["target"], leaf.get("comparator")]) if env.has(x)]
    names = list(dict.fromkeys(names))
    if not names:
        raise OperatorError("No group keys passed!")
    df = env.df[names]          # copy-on-write: the regex columns below replace, never change, env's
    rx = leaf.get("regex")
    if rx:
        for c in df.columns:
            nn = df[c].dropna()
            sample = nn.iloc[0] if len(nn) else None
            if sample and isinstance(sample, str) and re.match(rx, sample):
                df[c] = map_texts(df[c], lambda x: _first_findall(rx, x))
    return count_per_code(row_codes(df, list(df.columns))) <= 1


def _first_findall(rx, x):
    r = re.findall(rx, x)
    return r[0] if r else None


def op_is_unique_set(env, leaf):
    return pd.Series(_unique_set(env, leaf))


def op_is_not_unique_set(env, leaf):
    return ~op_is_unique_set(env, leaf)


def _violations(df: pd.DataFrame, key, value) -> set:
    """Values of ``key`` (non-null, not "") mapped to more than one ``value`` (or a value and null)."""
    kcols = key if isinstance(key, list) else [key]
    vcols = value if isinstance(value, list) else [value]
    ok = np.ones(len(df), bool)
    for c in kcols:
        ok &= ~is_null(df[c])
    d = df[ok]
    if len(d) == 0:
        return set()
    vnull = np.zeros(len(d), bool)
    for c in vcols:
        vnull |= is_null(d[c])
    kcode = row_codes(d, kcols)
    vcode = row_codes(d, vcols)
    nk = int(kcode.max()) + 1
    pairs = np.unique(kcode[~vnull] * (int(vcode.max()) + 1) + vcode[~vnull]) if (~vnull).any() else np.zeros(0, np.int64)
    n_values = np.bincount(pairs // (int(vcode.max()) + 1), minlength=nk) if len(pairs) else np.zeros(nk, np.int64)
    has_null = np.bincount(kcode[vnull], minlength=nk) > 0
    bad = (n_values > 1) | ((n_values >= 1) & has_null)
    if not bad.any():
        return set()
    first = pd.Series(np.arange(len(d))).groupby(kcode).first().to_numpy()
    rows = d.iloc[first[np.flatnonzero(bad)]]
    if isinstance(key, list):
        return set(rows[kcols].itertuples(index=False, name=None))
    return set(rows[key])


def op_is_not_unique_relationship(env, leaf):
    target, comparator = leaf["target"], leaf.get("comparator")
    cols = [target] + (comparator if isinstance(comparator, list) else [comparator])
    for c in cols:
        env.col(c)
    sub = env.df[cols].dropna(how="all").drop_duplicates()
    vt = _violations(sub, target, comparator)
    vc = _violations(sub, comparator, target)
    res = np.zeros(env.n, dtype=bool)
    if vt:
        res |= env.col(target).isin(vt).to_numpy(dtype=bool)
    if vc:
        if isinstance(comparator, list):
            keys = pd.Series(list(zip(*[env.col(c).astype(object) for c in comparator])), index=env.index)
            res |= keys.isin(vc).to_numpy(dtype=bool)
        else:
            res |= env.col(comparator).isin(vc).to_numpy(dtype=bool)
    return env.series(res)


def op_is_unique_relationship(env, leaf):
    return ~op_is_not_unique_relationship(env, leaf)


def op_is_inconsistent_across_dataset(env, leaf):
    target, comparator = leaf["target"], leaf.get("comparator")
    rx = leaf.get("regex")
    if isinstance(rx, list) and rx:
        rx = rx[0]
    groups = [c for c in ([comparator] if isinstance(comparator, str) else comparator) if env.has(c)]
    d = env.df[groups + [target]].copy()
    d = d.astype(object).where(d.notna(), "_NaN_")
    if rx:
        pat = _compiled(rx)
        if pat.groups == 0:
            rx = f"({rx})"
        ext = d[target].astype(str).str.extract(rx, expand=True)[0]
        d[target] = ext.fillna(d[target])
    if not groups:
        raise OperatorError("No group keys passed!")
    g = row_codes(d, groups)
    t = codes(d[target].astype(str))
    nt = int(t.max()) + 1 if len(t) else 1
    pair = g * nt + t
    cnt = count_per_code(pd.factorize(pair)[0])                 # records with this (group, value)
    upairs = np.unique(pair)
    ng = int(g.max()) + 1 if len(g) else 1
    nun = np.bincount(upairs // nt, minlength=ng)[g]             # distinct values in the group
    mx = pd.Series(cnt).groupby(g).transform("max").to_numpy()    # most frequent count in the group
    top = np.unique(pair[cnt == mx])
    n_top = np.bincount(top // nt, minlength=ng)[g]              # values sharing that count
    res = (nun > 1) & ((n_top > 1) | (cnt < mx))
    return pd.Series(np.asarray(res, dtype=bool), index=env.index)


def op_contains_all(env, leaf):
    target, comparator = leaf["target"], leaf.get("comparator")
    t = env.col(target)
    if column_of_iterables(t) and not isinstance(comparator, list) and column_of_iterables(env.col(comparator)):
        c = env.col(comparator)
        res = [all(_is_in(i, tv) for i in cv) for tv, cv in zip(_obj(t), _obj(c))]
        return pd.Series(res, dtype=bool)
    if isinstance(comparator, list):
        values = list(_flatten(env, comparator))
    else:
        values = list(env.col(comparator).unique())
    try:
        ok = set(values).issubset(set(t.unique()))
    except TypeError as exc:
        raise OperatorError(str(exc))
    return pd.Series([ok], dtype=bool)


def op_not_contains_all(env, leaf):
    return ~op_contains_all(env, leaf)


def op_has_different_values(env, leaf):
    t = env.col(leaf["target"])
    return env.series(np.full(env.n, len(t.unique()) > 1))


def op_has_same_values(env, leaf):
    return ~op_has_different_values(env, leaf)


def _rowwise_sets(env, leaf, fn):
    t, c = env.col(leaf["target"]), env.col(leaf.get("comparator"))

    def as_set(v):
        return set(v) if isinstance(v, (list, set)) else {v}
    pairs = pd.Series(list(zip(_ids(t), _ids(c))), index=env.index)
    first = ~pairs.duplicated()
    tv, cv = _obj(t), _obj(c)
    table = {}
    for i in np.flatnonzero(first.to_numpy()):
        try:
            table[pairs.iloc[i]] = fn(as_set(tv[i]), as_set(cv[i]))
        except TypeError:
            table[pairs.iloc[i]] = False
    return pd.Series(pairs.map(table).to_numpy(dtype=bool), index=env.index)


def op_shares_no_elements_with(env, leaf):
    return _rowwise_sets(env, leaf, lambda a, b: len(a & b) == 0)


def op_shares_at_least_one_element_with(env, leaf):
    return _rowwise_sets(env, leaf, lambda a, b: bool(a & b))


def op_shares_exactly_one_element_with(env, leaf):
    return _rowwise_sets(env, leaf, lambda a, b: len(a & b) == 1)


def op_is_ordered_subset_of(env, leaf):
    t, c = env.col(leaf["target"]), env.col(leaf.get("comparator"))

    def check(tl, cl):
        pos = {col: i for i, col in enumerate(cl)}
        positions = []
        for col in tl:
            if col not in pos:
                return False
            positions.append(pos[col])
        return positions == sorted(positions)
    pairs = pd.Series(list(zip(_ids(t), _ids(c))), index=env.index)
    first = ~pairs.duplicated()
    tv, cv = _obj(t), _obj(c)
    table = {pairs.iloc[i]: check(tv[i], cv[i]) for i in np.flatnonzero(first.to_numpy())}
    return pd.Series(pairs.map(table).to_numpy(dtype=bool), index=env.index)


def op_is_not_ordered_subset_of(env, leaf):
    return ~op_is_ordered_subset_of(env, leaf)


def op_empty_within_except_last_row(env, leaf):
    target, comparator, order = leaf["target"], leaf.get("comparator"), leaf.get("ordering")
    by = [comparator, order] if order else [comparator]
    for c in by + [target]:
        env.col(c)
    d = env.df.sort_values(by=by)
    last = ~d.duplicated(subset=[comparator], keep="last")
    last = last & d[comparator].notna()  # NaN keys are dropped by groupby
    keep = ~last & d[comparator].notna()
    vals = d.loc[keep, target]
    res = pd.Series(empty_mask(vals), index=vals.index)
    return res.reindex(env.index)


def op_non_empty_within_except_last_row(env, leaf):
    r = op_empty_within_except_last_row(env, leaf)
    return ~r.dropna().astype(bool)


def op_does_not_have_next_corresponding_record(env, leaf):
    target, comparator = leaf["target"], leaf.get("comparator")
    within, order = leaf.get("within"), leaf.get("ordering")
    cols = [target, comparator, within, order]
    for c in cols:
        env.col(c)
    d = env.df[list(dict.fromkeys(cols))].sort_values(by=[order])
    out = []
    for _, g in d.groupby(within, sort=True):  # one step per group, as CORE (positional result)
        tv, cv = _obj(g[target]), _obj(g[comparator])
        out.extend(list(tv[:-1] == cv[1:]) + [True])
    res = pd.Series(out, dtype=bool)
    return ~res


def op_has_next_corresponding_record(env, leaf):
    return ~op_does_not_have_next_corresponding_record(env, leaf)


def op_present_on_multiple_rows_within(env, leaf):
    target, within = leaf["target"], leaf.get("within")
    min_count = leaf.get("comparator") or 1
    env.col(target)
    env.col(within)
    d = env.df[[within, target]]
    size = d.groupby([within, target], dropna=False, sort=True).size().rename("_n").reset_index()
    merged = d.merge(size, on=[within, target], how="inner")
    return pd.Series((merged["_n"] > min_count).to_numpy(dtype=bool))


def op_not_present_on_multiple_rows_within(env, leaf):
    return ~op_present_on_multiple_rows_within(env, leaf)


def op_inconsistent_enumerated_columns(env, leaf):
    name = leaf["target"]
    pattern = re.compile(rf"^{re.escape(name)}(\d*)$")
    cols = [c for c in env.df.columns if pattern.match(str(c))]
    if not cols:
        return pd.Series([False] * env.n)
    cols = sorted(cols, key=lambda x: (len(x), x))
    populated = [~is_null(env.df[c]) for c in cols]
    res = np.zeros(env.n, bool)
    prev = populated[0]
    for cur in populated[1:]:
        res |= cur & ~prev
        prev = cur
    return env.series(res)


def op_equals_string_part(env, leaf):
    target = env.col(leaf["target"])
    comparator, rx = leaf.get("comparator"), leaf.get("regex")
    c = env.comparand(comparator, leaf.get("value_is_literal", False))
    if isinstance(c, str):
        parsed = _first_findall(rx, c)
        parsed = pd.Series([parsed] * env.n, index=env.index, dtype=object)
    else:
        parsed = c.astype(object).map(lambda x: _first_findall(rx, x) if isinstance(x, str) else None)
    sub = Env(pd.DataFrame({"t": target, "p": parsed}, index=env.index), env.wildcard)
    return _equality(sub, {"target": "t", "comparator": "p", "type_insensitive": leaf.get("type_insensitive", False)},
                     negate=False)


def op_does_not_equal_string_part(env, leaf):
    return ~op_equals_string_part(env, leaf)


def op_is_title_case(env, leaf):
    raise OperatorError("is_title_case is not implemented")


# target_is_(not_)sorted_by --------------------------------------------------------------
_VALID_DATES: dict = {}  # text -> CORE is_valid_date, filled a column at a time


def _remember_valid_dates(*series) -> None:
    vals = pd.unique(pd.concat([pd.Series(s.to_numpy(dtype=object)) for s in series], ignore_index=True))
    new = [v for v in vals if isinstance(v, str) and v not in _VALID_DATES]
    if new:
        if len(_VALID_DATES) > 1_000_000:
            _VALID_DATES.clear()
        _VALID_DATES.update(zip(new, dates.is_valid_date(np.array(new, dtype=object)).tolist()))


def _parse_date(x):
    """CORE utils.parse_date: (text before any "--", number of non-empty -/T/: parts)."""
    if not _is_valid_date_text(x):
        return 0, 0
    if "--" in x:
        x = x.split("--", 1)[0]
    return x, len([p for p in re.split(r"[-T:]", x) if p])


def _is_valid_date_text(x) -> bool:
    if not isinstance(x, str):
        return False
    hit = _VALID_DATES.get(x)
    if hit is None:
        hit = bool(dates.is_valid_date(np.array([x], dtype=object))[0])
        _VALID_DATES[x] = hit
    return hit


def _date_overlaps(group: pd.DataFrame, comparator: str) -> pd.Series:
    """CORE check_date_overlaps: dates of different precision that overlap (2005-10 and
    2005-10-08) are both invalid."""
    ok = pd.Series(True, index=group.index)
    if pd.api.types.is_numeric_dtype(group[comparator]):
        return ok
    vals = group[comparator].tolist()
    valid = [i for i, v in enumerate(vals) if not (pd.isna(v) or str(v).strip() == "")]
    parsed = {i: _parse_date(vals[i]) if _is_valid_date_text(vals[i]) else None for i in valid}
    for i in valid:
        if parsed[i] is None:
            continue
        d1, p1 = parsed[i]
        for j in valid:
            if i == j or parsed[j] is None:
                continue
            d2, p2 = parsed[j]
            if p1 != p2:
                less, more = (d1, d2) if p1 < p2 else (d2, d1)
                if more.startswith(less):
                    ok.iloc[i] = False
                    ok.iloc[j] = False
    return ok


def _null_positions(valid: pd.Series, group: pd.DataFrame, null_mask: pd.Series, na_pos: str) -> pd.Series:
    order = group.index.tolist()
    nulls = [order.index(i) for i in group[null_mask].index]
    non_nulls = [order.index(i) for i in group[~null_mask].index]
    if not nulls or not non_nulls:
        return valid
    if na_pos == "last":
        if min(nulls) < max(non_nulls):
            valid[null_mask] = False
    elif max(nulls) > min(non_nulls):
        valid[null_mask] = False
    return valid


def _neighbors(valid, rows, comparator, ascending, numeric_comparator):
    indices = rows.index.tolist()
    vals = rows[comparator].tolist()
    present = [not is_null(v) for v in vals]
    for i, idx in enumerate(indices):
        if not valid.loc[idx] or not present[i]:
            continue
        cur = vals[i]
        prev = next((vals[j] for j in range(i - 1, -1, -1) if present[j]), None)
        nxt = next((vals[j] for j in range(i + 1, len(vals)) if present[j]), None)
        if not numeric_comparator and not _is_valid_date_text(str(cur)):
            continue
        if ascending:
            if (prev is not None and cur < prev) or (nxt is not None and cur > nxt):
                valid.loc[idx] = False
        else:
            if (prev is not None and cur > prev) or (nxt is not None and cur < nxt):
                valid.loc[idx] = False
    return valid


def _sorted_group_check(group, target, comparator, ascending, na_pos) -> pd.Series:
    """CORE check_target_ascending_in_sorted_group_with_regex (one subject's records)."""
    valid = pd.Series(True, index=group.index)
    numeric_comparator = pd.api.types.is_numeric_dtype(group[comparator])
    numeric_target = pd.api.types.is_numeric_dtype(group[target])
    null_mask = group[comparator].isna() | (group[comparator].astype(str).str.strip() == "")
    non_null = group[~null_mask]
    valid = _null_positions(valid, group, null_mask, na_pos)
    overlap_bad = ~_date_overlaps(group, comparator)
    rows = non_null[~overlap_bad[non_null.index]]
    expected = rows.sort_values(by=comparator, ascending=ascending)[target].tolist()
    actual = rows[target].tolist()
    for i, idx in enumerate(rows.index.tolist()):
        a, e = actual[i], expected[i]
        if pd.isna(a) and pd.isna(e):
            continue
        if pd.isna(a) or pd.isna(e):
            valid.loc[idx] = False
        elif not numeric_target and _is_valid_date_text(a) and _is_valid_date_text(e):
            if _parse_date(a)[0] != _parse_date(e)[0]:
                valid.loc[idx] = False
        elif a != e:
            valid.loc[idx] = False
    return _neighbors(valid, non_null.sort_values(by=target, ascending=True), comparator, ascending,
                      numeric_comparator)


def _regex_number(series: pd.Series, rx: str) -> pd.Series:
    def one(v):
        if pd.isna(v) or v == "":
            return np.nan
        m = re.search(rx, str(v))
        if m and m.groups():
            try:
                return pd.to_numeric(m.group(1))
            except (ValueError, TypeError):
                return m.group(1)
        return np.nan
    return series.map(one)


def op_target_is_sorted_by(env, leaf):
    """CORE target_is_sorted_by: within each group (e.g. USUBJID), the target (e.g. --SEQ) must
    follow the order of the comparator columns (e.g. --STDTC ascending, nulls last), dates of
    different precision that overlap counting as unordered. Evaluated group by group (the
    check compares each record with its neighbours), as CORE does."""
    target = leaf["target"]
    within = leaf.get("within")
    within = list(dict.fromkeys(within if isinstance(within, (list, tuple)) else [within]))
    rx = leaf.get("regex")
    result = pd.Series(True, index=env.index)
    for spec in leaf.get("comparator") or []:
        comparator = env.prefix(spec["name"])
        ascending = str(spec.get("sort_order", "asc")).lower() != "desc"
        na_pos = spec.get("null_position", "last")
        cols = list(dict.fromkeys([target, comparator, *within]))
        for c in cols:
            env.col(c)
        work = env.df[cols].copy(deep=False)
        _remember_valid_dates(work[target], work[comparator])  # one vectorised parse per column
        tcol = target
        if rx:
            tcol = f"{target}_extracted"
            work[tcol] = _regex_number(work[target], rx)
        ordered = work.sort_values(by=[*within, tcol], ascending=[True] * (len(within) + 1))
        combined = _sorted_groups(ordered, within, tcol, comparator, ascending, na_pos)
        result = result & combined.reindex(env.index, fill_value=True)
    return result.astype(bool)


def _overlapping(g: np.ndarray, codes: np.ndarray, uniq: np.ndarray, dated_u: np.ndarray, prec_u: np.ndarray,
                 dated: np.ndarray) -> np.ndarray:
    """``~_date_overlaps`` for every record at once: a dated record overlaps when another record of
    its group has a date of another precision that is a prefix of it, or that it is a prefix of.

    The prefix pairs are found once per distinct date (each of its prefixes looked up among the
    distinct dates), then matched to the records of each group by a hash join.
    """
    n = len(g)
    out = np.zeros(n, dtype=bool)
    if not dated.any():
        return out
    text = {}
    for k in np.flatnonzero(dated_u):
        x = uniq[k]
        text[k] = x.split("--", 1)[0] if "--" in x else x
    by_text: dict[str, list[int]] = {}
    for k, x in text.items():
        by_text.setdefault(x, []).append(k)
    longs, shorts = [], []
    for k, x in text.items():                       # (longer, shorter) distinct dates of other precision
        for length in range(1, len(x) + 1):
            for j in by_text.get(x[:length], ()):
                if prec_u[j] != prec_u[k]:
                    longs.append(k)
                    shorts.append(j)
    if not longs:
        return out
    rec = np.flatnonzero(dated)
    width = len(uniq) + 1
    present = np.unique(g[rec] * width + codes[rec])
    pairs = pd.DataFrame({"code": np.concatenate([longs, shorts]), "other": np.concatenate([shorts, longs])})
    recs = pd.DataFrame({"rec": rec, "code": codes[rec]})
    joined = recs.merge(pairs, on="code", how="inner")
    if not len(joined):
        return out
    r = joined["rec"].to_numpy()
    hit = np.isin(g[r] * width + joined["other"].to_numpy(), present)
    out[r[hit]] = True
    return out


def _sorted_groups(ordered: pd.DataFrame, within: list, tcol: str, comparator: str, ascending: bool,
                   na_pos: str) -> pd.Series:
    """``_sorted_group_check(group) & _date_overlaps(group)`` for every group of ``ordered``
    (sorted by ``within`` then the target), without a Python loop over the groups.

    The common group (numeric target without nulls or repeats, comparator values that do not
    repeat and, for dates, all of one precision, so no two dates overlap) is decided by
    three sorts of the whole frame: each record's target against the target at the same rank
    when the group is ordered by the comparator (``expected``), its comparator against its
    neighbours' in target order (``_neighbors``), and where the nulls are (``_null_positions``).
    With no repeats every sort order is the same, whatever sort CORE's code used. A group that
    is not common (overlapping partial dates, ties, a missing target) goes through the
    per-group code, which is exactly CORE's; such groups are few.
    """
    n = len(ordered)
    combined = pd.Series(True, index=ordered.index)
    if not n:
        return combined
    gb = ordered.groupby(within, sort=False)
    g = gb.ngroup().fillna(-1).to_numpy().astype(np.int64)       # a null key: in no group (dropna)
    n_groups = int(g.max()) + 1 if (g >= 0).any() else 0
    if not n_groups:
        return combined
    pos = gb.cumcount().fillna(-1).to_numpy().astype(np.int64)
    comp = ordered[comparator]
    null = (comp.isna() | (comp.astype(str).str.strip() == "")).to_numpy(dtype=bool)
    numeric_comparator = pd.api.types.is_numeric_dtype(comp)
    slow = np.zeros(n_groups, dtype=bool)
    grouped = g >= 0

    def flag(mask):                                               # the groups of these records
        hit = np.zeros(n_groups, dtype=bool)
        hit[g[mask & grouped]] = True
        return hit

    if not pd.api.types.is_numeric_dtype(ordered[tcol]):
        slow[:] = True
        t = np.zeros(n)
    else:
        t = ordered[tcol].to_numpy(dtype=float)
        slow |= flag(np.isnan(t))
    if numeric_comparator:
        key = comp.to_numpy(dtype=float)
        date_ok = np.ones(n, dtype=bool)
        overlap = np.zeros(n, dtype=bool)
    else:
        cv = comp.to_numpy(dtype=object)
        codes, uniq = pd.factorize(cv, use_na_sentinel=True)
        uniq = np.asarray(uniq, dtype=object)
        is_str = np.fromiter((isinstance(u, str) for u in uniq), dtype=bool, count=len(uniq))
        slow |= flag(~null & ((codes < 0) | ~is_str[np.maximum(codes, 0)]))
        uniq_txt = np.where(is_str, uniq, "")
        rank = np.empty(len(uniq), dtype=np.int64)
        rank[np.argsort(uniq_txt, kind="stable")] = np.arange(len(uniq))
        ok_u = np.fromiter((_is_valid_date_text(u) for u in uniq), dtype=bool, count=len(uniq))
        prec_u = np.array([_parse_date(u)[1] if ok else -1 for u, ok in zip(uniq, ok_u)], dtype=np.int64)
        c = np.maximum(codes, 0)
        key = np.where(codes >= 0, rank[c], -1).astype(float)
        date_ok = ok_u[c] & (codes >= 0)
        overlap = _overlapping(g, codes, uniq, ok_u & is_str, prec_u, date_ok & ~null & grouped)
    # repeats of the target (any record) or of the comparator (non-null records) within a group
    idx = np.flatnonzero(grouped)
    o = idx[np.lexsort((t[idx], g[idx]))]
    rep = (g[o][1:] == g[o][:-1]) & (t[o][1:] == t[o][:-1])
    slow[g[o][1:][rep]] = True
    nn = np.flatnonzero(grouped & ~null)
    oc = nn[np.lexsort((key[nn], g[nn]))]
    rep = (g[oc][1:] == g[oc][:-1]) & (key[oc][1:] == key[oc][:-1])
    slow[g[oc][1:][rep]] = True

    valid = np.ones(n, dtype=bool)
    fast = grouped & ~slow[np.maximum(g, 0)]
    # _null_positions: nulls before the last non-null (nulls last), or after the first (nulls first)
    big = np.iinfo(np.int64).max
    min_null = np.full(n_groups, big)
    max_null = np.full(n_groups, -1)
    min_val = np.full(n_groups, big)
    max_val = np.full(n_groups, -1)
    m = fast & null
    np.minimum.at(min_null, g[m], pos[m])
    np.maximum.at(max_null, g[m], pos[m])
    m = fast & ~null
    np.minimum.at(min_val, g[m], pos[m])
    np.maximum.at(max_val, g[m], pos[m])
    both = (max_null >= 0) & (max_val >= 0)
    misplaced = both & ((min_null < max_val) if na_pos == "last" else (max_null > min_val))
    valid[fast & null & misplaced[np.maximum(g, 0)]] = False
    # expected order: the target at the same rank when the group is sorted by the comparator
    # (records whose date overlaps another's are left out of this comparison)
    rows = np.flatnonzero(fast & ~null & ~overlap)
    by_target = rows[np.lexsort((t[rows], g[rows]))]
    by_comp = rows[np.lexsort((key[rows] if ascending else -key[rows], g[rows]))]
    valid[by_target[t[by_target] != t[by_comp]]] = False
    rows = np.flatnonzero(fast & ~null)
    by_target = rows[np.lexsort((t[rows], g[rows]))]
    # _neighbors: each (still valid, dated) record against the previous and next in target order
    gt, kt = g[by_target], key[by_target]
    same_prev = np.zeros(len(by_target), dtype=bool)
    same_prev[1:] = gt[1:] == gt[:-1]
    same_next = np.zeros(len(by_target), dtype=bool)
    same_next[:-1] = gt[:-1] == gt[1:]
    prev_k = np.empty_like(kt)
    prev_k[1:] = kt[:-1]
    next_k = np.empty_like(kt)
    next_k[:-1] = kt[1:]
    if ascending:
        out_of_order = (same_prev & (kt < prev_k)) | (same_next & (kt > next_k))
    else:
        out_of_order = (same_prev & (kt > prev_k)) | (same_next & (kt < next_k))
    check = valid[by_target] & date_ok[by_target]
    valid[by_target[check & out_of_order]] = False
    valid[fast & overlap] = False                                 # & _date_overlaps
    combined[:] = valid
    # the groups CORE's per-group code has to decide
    slow_rows = np.flatnonzero(grouped & slow[np.maximum(g, 0)])
    if len(slow_rows):
        order = slow_rows[np.argsort(g[slow_rows], kind="stable")]
        bounds = np.flatnonzero(np.diff(g[order])) + 1
        for part in np.split(order, bounds):
            group = ordered.iloc[part]
            chk = _sorted_group_check(group, tcol, comparator, ascending, na_pos) & _date_overlaps(group, comparator)
            combined.loc[chk.index] = chk
    return combined


def op_target_is_not_sorted_by(env, leaf):
    return ~op_target_is_sorted_by(env, leaf)


OPERATORS: dict[str, Callable[[Env, dict], pd.Series]] = {
    name[3:]: fn for name, fn in list(globals().items()) if name.startswith("op_") and callable(fn)
}
del OPERATORS["is_title_case"]
NOT_SUPPORTED.update({
    "is_title_case": "operator is_title_case is not implemented",
    "is_not_title_case": "operator is_not_title_case is not implemented",
})
