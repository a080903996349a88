"""The function library of the expression language: the whitelist and each implementation.

:data:`FUNCTIONS` is the whitelist the parser checks calls against (arity and usage);
:data:`FUNCTION_DOCS` gives each function's rule and an example (the README table and a
test check that every function has one). :data:`IMPLEMENTATIONS` maps a name to
``impl(evaluator, call_node, args, label) -> _Val``; for the names in
:data:`LITERAL_TAIL` the arguments after the first arrive as the Python literals the parser
checked, all other arguments arrive evaluated. Every implementation is one vectorised
pandas/numpy operation per argument (no loop over rows).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import dates
from .values import _as_text, _blank_to_nan, _scalar_missing, _series, _to_float, _Val

#: Whitelisted functions: name -> (minimum args, maximum args or None, usage).
FUNCTIONS: dict[str, tuple[int, int | None, str]] = {
    "missing": (1, 1, "missing(x)"),
    "present": (1, 1, "present(x)"),
    "upper": (1, 1, "upper(x)"),
    "lower": (1, 1, "lower(x)"),
    "strip": (1, 1, "strip(x)"),
    "startswith": (2, 2, "startswith(x, 'text')"),
    "endswith": (2, 2, "endswith(x, 'text')"),
    "contains": (2, 2, "contains(x, 'text')"),
    "length": (1, 1, "length(x)"),
    "coalesce": (2, None, "coalesce(a, b, ...)"),
    "number": (1, 1, "number(x)"),
    "date": (1, 1, "date(x)"),
    "substr": (2, 3, "substr(x, start, length)"),
    "isin_list": (2, None, "isin_list(x, 'A', 'B', ...)"),
    "concat": (2, None, "concat(a, b, ...)"),
    "scan": (3, 3, "scan(x, n, 'separator')"),
    "replace": (3, 3, "replace(x, 'old', 'new')"),
    "text": (1, 1, "text(x)"),
    "round": (1, 2, "round(x, digits)"),
    "floor": (1, 1, "floor(x)"),
    "ceil": (1, 1, "ceil(x)"),
    "abs": (1, 1, "abs(x)"),
    "min": (2, None, "min(a, b, ...)"),
    "max": (2, None, "max(a, b, ...)"),
    "days_between": (2, 2, "days_between(start, end)"),
    "add_days": (2, 2, "add_days(date, n)"),
    "add_months": (2, 2, "add_months(date, n)"),
    "add_years": (2, 2, "add_years(date, n)"),
    "study_day": (2, 2, "study_day(date, reference)"),
}

#: One line per function: its rule and an example (README "Expression functions").
FUNCTION_DOCS: dict[str, str] = {
    "missing": "True where x is missing (NaN, blank text): `missing(AEENDTC)`",
    "present": "True where x has a value: `present(DTHDTC)`",
    "upper": "text in upper case: `upper(AEONGO) == 'YES'`",
    "lower": "text in lower case: `lower(SEX)`",
    "strip": "text without leading/trailing blanks: `strip(IT.AETERM)`",
    "startswith": "x starts with a text literal: `startswith(LBTESTCD, 'CD7')`",
    "endswith": "x ends with a text literal: `endswith(FOLDER, 'UNS')`",
    "contains": "x contains a text literal (not a regex): `contains(AETERM, 'RASH')`",
    "length": "number of characters: `length(SUBJID) == 3`",
    "coalesce": "first present value, row by row (SQL COALESCE): `coalesce(AEENDAT_STD, AEENDAT)`",
    "number": "text -> number, unparseable -> missing: `number(VSORRES) > 38`",
    "date": "complete ISO 8601 text -> date, partial -> missing: `date(AESTDTC) >= date(RFSTDTC)`",
    "substr": "SAS SUBSTR, 1-based, length optional: `substr(PATNO, 1, 3)` ('101-004' -> '101')",
    "isin_list": "same as x in ('A', 'B'): `isin_list(AETOXGR, '3', '4')`",
    "concat": "joins text; missing parts count as empty, an all-blank result is missing; numbers "
              "are written without padding: `concat(SITE, '-', SUBJ)` ('101', '-', '004' -> '101-004')",
    "scan": "SAS SCAN: the n-th part split at a literal separator (n < 0 counts from the end): "
            "`scan(PATNO, 2, '-')` ('101-004' -> '004')",
    "replace": "every occurrence of a literal replaced: `replace(TERM, '  ', ' ')`",
    "text": "a number as text without padding (177.80 -> '177.8', 12.0 -> '12'); text stays: `text(DOSE)`",
    "round": "a number rounded half away from zero (SAS ROUND) to `digits` decimals (default 0, "
             "negative = tens, hundreds): `round((TEMP - 32) * 5 / 9, 1)`",
    "floor": "largest whole number <= x: `floor(AGE)` (64.9 -> 64, -0.5 -> -1)",
    "ceil": "smallest whole number >= x: `ceil(ADY / 7)` (week of the study, 8 / 7 -> 2)",
    "abs": "absolute value: `abs(CHG) >= 10`",
    "min": "smallest present value, missing ignored (SAS MIN; R pmin(na.rm = TRUE)); numbers or "
           "dates: `min(TRTEDT + 30, DTHDT)`",
    "max": "largest present value, missing ignored (SAS MAX); numbers or dates: `max(ADT, TRTSDT)`",
    "days_between": "whole days from start to end (end - start); ISO 8601 text or dates, partial -> missing: "
                    "`days_between(RFSTDTC, DTHDTC)`",
    "add_days": "the date n days later (n may be negative or a column); written as YYYY-MM-DD: "
                "`add_days(RFSTDTC, 28)`",
    "add_months": "n calendar months later, the day clipped to the month's end (lubridate %m+%, SAS "
                  "INTNX 'same'); date or ISO 8601 text: `add_months(TRTSDT, 6)` (2024-08-31 -> 2025-02-28)",
    "add_years": "n years later, 29 Feb -> 28 Feb: `add_years(BRTHDT, 18)`",
    "study_day": "SDTMIG study day of date against reference, no day 0 (date - reference + 1 on or after "
                 "it): `study_day(DMDTC, RFSTDTC)`",
}

#: Functions whose arguments after the first are literals checked by the parser.
LITERAL_TAIL = frozenset({"startswith", "endswith", "contains", "substr", "scan", "replace", "round"})


# ---------------------------------------------------------------------------
# missing values and text
# ---------------------------------------------------------------------------


def _fn_missing(ev, node, args, label):
    p = ev.present(args[0])
    return _Val((not p) if isinstance(p, bool) else ~p, "bool", label)


def _fn_present(ev, node, args, label):
    return _Val(ev.present(args[0]), "bool", label)


def _case(name):
    def impl(ev, node, args, label):
        v = ev.need_text(name, args[0], node)
        if v.kind == "null":
            return _Val(v.data, "null", label)
        if v.scalar:
            out = getattr(v.data, name)() if name != "strip" else v.data.strip()
            return _Val(out, "str", label)
        # Blanks are already missing, so strip() cannot create new blanks.
        return _Val(getattr(v.data.str, name)(), "str", label)
    impl.__doc__ = f"{name}(x) on text; missing stays missing."
    return impl


def _fn_length(ev, node, args, label):
    v = ev.need_text("length", args[0], node)
    if v.kind == "null":
        return _Val(None if v.scalar else ev.broadcast(None, "num"), "num", label)
    if v.scalar:
        return _Val(len(v.data), "num", label)
    return _Val(_to_float(v.data.str.len()), "num", label)


def _text_test(name):
    def impl(ev, node, args, label):
        """startswith / endswith / contains a literal (not a regex); missing -> False."""
        v = ev.need_text(name, args[0], node)
        lit = args[1]
        if v.kind == "null":
            return _Val(False if v.scalar else ev.broadcast(False, "bool"), "bool", label)
        if v.scalar:
            s = v.data
            out = s.startswith(lit) if name == "startswith" else s.endswith(lit) if name == "endswith" else lit in s
            return _Val(out, "bool", label)
        acc = v.data.str
        if name == "contains":
            raw = acc.contains(lit, regex=False, na=False)
        else:
            raw = getattr(acc, name)(lit, na=False)
        return _Val(ev.definite(raw), "bool", label)
    return impl


def _fn_substr(ev, node, args, label):
    """SAS SUBSTR(x, start, length): 1-based; no length -> to the end; blank result -> missing."""
    v = ev.need_text("substr", args[0], node)
    start = args[1] - 1
    stop = start + args[2] if len(args) == 3 else None
    if v.kind == "null":
        return v
    if v.scalar:
        out = v.data[start:stop]
        return _Val(out if out.strip() else None, "str" if out.strip() else "null", label)
    return _Val(_blank_to_nan(v.data.str.slice(start, stop)), "str", label)


def _fn_number(ev, node, args, label):
    """Text -> number like ``pd.to_numeric(errors='coerce')``; unparseable -> missing."""
    v = args[0]
    if v.kind == "num":
        return _Val(v.data, "num", label)
    if v.kind == "null":
        return _Val(None if v.scalar else ev.broadcast(None, "num"), "num", label)
    if v.kind != "str":
        ev.fail(node, f"number() needs text or a number, but {v.describe()} is neither", column=v.column)
    if v.scalar:
        out = pd.to_numeric(pd.Series([v.data.strip()]), errors="coerce").iloc[0]
        return _Val(None if pd.isna(out) else float(out), "num", label)
    return _Val(_to_float(pd.to_numeric(v.data.str.strip(), errors="coerce")), "num", label)


def _dates_with_literals(ev, node, args: list[_Val], name: str) -> tuple[list[_Val], set[str]]:
    """Among dates, a text literal is a date (same rule as in comparisons)."""
    kinds = {a.kind for a in args} - {"null"}
    if "date" in kinds and kinds <= {"date", "str"}:
        fixed = []
        for a in args:
            if a.kind == "str":
                if not a.scalar:
                    ev.fail(node, f"{name}() mixes dates with {a.describe()}",
                            hint=f"convert it with date({a.label})", column=a.column)
                a = _Val(dates.date_literal(ev, a.data, node), "date", a.label)
            fixed.append(a)
        return fixed, {"date"}
    return args, kinds


def _fn_coalesce(ev, node, args, label):
    """First present value of a, b, ... row by row (SQL COALESCE)."""
    args, kinds = _dates_with_literals(ev, node, args, "coalesce")
    if len(kinds) > 1:
        ev.fail(node, "coalesce() arguments must all be of one type, got "
                + ", ".join(a.describe() for a in args if a.kind != "null"))
    kind = kinds.pop() if kinds else "null"
    result: Any = None
    first = True
    for a in args:
        if a.kind == "null":
            continue
        if first:
            result, first = a.data, False
            continue
        if not isinstance(result, pd.Series):
            if not _scalar_missing(result):
                break
            result = a.data
            continue
        gap = result.isna()
        if not gap.any():
            break
        result = result.where(~gap, a.data)
    if result is None or (not isinstance(result, pd.Series) and _scalar_missing(result)):
        return _Val(None, "null", label)
    return _Val(result, kind, label)


def _fn_concat(ev, node, args, label):
    """concat(a, b, ...): text joined; a missing part is empty; an all-blank result is missing."""
    out = pd.Series("", index=ev.index, dtype="str")
    for a, n in zip(args, node.args):
        out = out + _as_text(ev, a, n).fillna("")
    return _Val(_blank_to_nan(out), "str", label)


def _fn_scan(ev, node, args, label):
    """scan(x, n, sep): SAS SCAN with one literal separator; n-th part (1-based, < 0 from the end)."""
    v, n, sep = args
    x = _as_text(ev, ev.need_text("scan", v, node), node)
    parts = x.str.split(sep, regex=False)
    k = n - 1 if n > 0 else n
    got = parts.str.get(k) if n != 0 else pd.Series(np.nan, index=ev.index)
    return _Val(_blank_to_nan(got.astype("str").where(got.notna()).str.strip()), "str", label)


def _fn_replace(ev, node, args, label):
    """replace(x, old, new): every occurrence of the literal ``old`` replaced by ``new``."""
    v, old, new = args
    x = _as_text(ev, ev.need_text("replace", v, node), node)
    return _Val(_blank_to_nan(x.str.replace(old, new, regex=False)), "str", label)


def _fn_text(ev, node, args, label):
    """text(x): numbers as text without padding; text unchanged; dates as YYYY-MM-DD."""
    return _Val(_as_text(ev, args[0], node.args[0]), "str", label)


# ---------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------


def _need_number(ev, name: str, v: _Val, node) -> np.ndarray:
    if v.kind not in ("num", "null"):
        hint = f"convert text with number({v.label})" if v.kind == "str" else None
        ev.fail(node, f"{name}() needs a number, but {v.describe()} is not one", hint=hint, column=v.column)
    return _series(ev, v, "num").to_numpy(dtype="float64", na_value=np.nan)


def _fn_round(ev, node, args, label):
    """round(x[, digits]): half away from zero (SAS ROUND), not banker's rounding."""
    v = args[0]
    digits = args[1] if len(args) > 1 else 0
    arr = _need_number(ev, "round", v, node)
    scale = 10.0 ** digits
    with np.errstate(all="ignore"):
        out = np.sign(arr) * np.floor(np.abs(arr) * scale + 0.5 + 1e-9) / scale
    return _Val(pd.Series(out, index=ev.index), "num", label)


def _unary_number(name, func):
    def impl(ev, node, args, label):
        arr = _need_number(ev, name, args[0], node)
        return _Val(pd.Series(func(arr), index=ev.index), "num", label)
    impl.__doc__ = f"{name}(x) on a number; missing stays missing."
    return impl


def _extreme(name, func):
    def impl(ev, node, args, label):
        """min/max of the arguments row by row; missing values are ignored (SAS MIN/MAX)."""
        args, kinds = _dates_with_literals(ev, node, args, name)
        if not kinds <= {"num"} and kinds != {"date"}:
            ev.fail(node, f"{name}() needs numbers or dates of one kind, got "
                    + ", ".join(a.describe() for a in args if a.kind != "null"),
                    hint="convert with number(x) or date(x)")
        kind = kinds.pop() if kinds else "num"
        if kind == "date":
            arrays = [dates._date_array(ev, _series(ev, a, "date"), node, a.label) for a in args]
        else:
            arrays = [_series(ev, a, "num").to_numpy(dtype="float64", na_value=np.nan) for a in args]
        out = arrays[0]
        for arr in arrays[1:]:
            out = func(out, arr)                       # fmin/fmax: NaN/NaT ignored
        return _Val(pd.Series(out, index=ev.index), kind, label)
    return impl


IMPLEMENTATIONS = {
    "missing": _fn_missing,
    "present": _fn_present,
    "upper": _case("upper"),
    "lower": _case("lower"),
    "strip": _case("strip"),
    "startswith": _text_test("startswith"),
    "endswith": _text_test("endswith"),
    "contains": _text_test("contains"),
    "length": _fn_length,
    "coalesce": _fn_coalesce,
    "number": _fn_number,
    "date": dates.fn_date,
    "substr": _fn_substr,
    "concat": _fn_concat,
    "scan": _fn_scan,
    "replace": _fn_replace,
    "text": _fn_text,
    "round": _fn_round,
    "floor": _unary_number("floor", np.floor),
    "ceil": _unary_number("ceil", np.ceil),
    "abs": _unary_number("abs", np.abs),
    "min": _extreme("min", np.fmin),
    "max": _extreme("max", np.fmax),
    "days_between": dates.fn_days_between,
    "add_days": dates.fn_add_days,
    "add_months": dates.fn_add_months,
    "add_years": dates.fn_add_years,
    "study_day": dates.fn_study_day,
}
# isin_list is evaluated by the evaluator itself (it is ``x in (...)``).
