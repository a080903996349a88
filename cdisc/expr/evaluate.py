"""Evaluation of a parsed expression on a frame: one vectorised pandas operation per node.

:class:`_Evaluator` walks the tree :func:`cdisc.expr.parse.parse` checked. Columns are
loaded once each and normalised to one dtype per kind (:mod:`cdisc.expr.values`);
comparisons follow the missing-value rules of :mod:`cdisc.expr` (the package docstring);
function calls go to :mod:`cdisc.expr.functions`, date arithmetic to
:mod:`cdisc.expr.dates`. :func:`evaluate_filter` and :func:`evaluate_value` are the two
entry points the SDTM and ADaM engines use.
"""
from __future__ import annotations

import ast
import difflib
import operator
from typing import Any

import numpy as np
import pandas as pd

from cdisc.errors import Problem, SpecError

from . import dates
from .functions import IMPLEMENTATIONS, LITERAL_TAIL
from .parse import MAX_DEPTH, Expr, _column_of, _dotted, _literal_value, _segment, parse, text_comparisons
from .values import _KIND_NAMES, _fail, _normalise, _scalar_missing, _to_float, _Val, recursion_room

_COMPARE_OPS = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.In: ("in", None),
    ast.NotIn: ("not in", None),
}
# + - * / keep Python's operators (int scalars stay ints); // % ** go through numpy in
# float64, so a huge power is inf (-> missing), never a giant Python integer.
_ARITH_OPS = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", np.floor_divide),
    ast.Mod: ("%", np.mod),
    ast.Pow: ("**", np.power),
}
_NUMPY_OPS = ("//", "%", "**")


class _Evaluator:
    """Evaluates a checked tree on a frame; one pandas operation per node."""

    def __init__(self, expr: Expr, frame: pd.DataFrame, where: str | None):
        if not isinstance(frame, pd.DataFrame):
            _fail(f"an expression is evaluated on a DataFrame, got {type(frame).__name__}", where)
        self.expr = expr
        self.frame = frame
        self.where = where
        self.n = len(frame)
        self.index = pd.RangeIndex(self.n)
        self.cache: dict[str, _Val] = {}

    # -- helpers -------------------------------------------------------------

    def fail(self, node: ast.AST | None, message: str, hint: str | None = None, column: str | None = None):
        if node is not None:
            col = _column_of(self.expr._flat, self.expr._lead, node)
            message = f"{message} (at column {col} of '{self.expr.source.strip()}')"
        _fail(message, self.where, hint=hint, column=column)

    def label(self, node: ast.AST) -> str:
        return _segment(self.expr._flat, node)

    def broadcast(self, value: Any, kind: str) -> pd.Series:
        if kind == "bool":
            if value is pd.NA or value is None:
                return pd.Series(pd.NA, index=self.index, dtype="boolean")
            return pd.Series(np.full(self.n, bool(value)), index=self.index)
        if kind == "str":
            return pd.Series([value] * self.n if self.n else [], index=self.index, dtype="str")
        if kind == "num":
            return pd.Series(np.full(self.n, np.nan if value is None else float(value)), index=self.index)
        if kind == "date":
            return pd.Series(pd.NaT if value is None else value, index=self.index, dtype="datetime64[us]")
        return pd.Series(value, index=self.index, dtype=object)

    def present(self, v: _Val) -> Any:
        """True where ``v`` holds a value (numpy bool Series, or a bool for scalars)."""
        if v.scalar:
            return not _scalar_missing(v.data)
        if v.kind == "null":
            return pd.Series(np.zeros(self.n, dtype=bool), index=self.index)
        return v.data.notna()

    def definite(self, data: Any) -> Any:
        """Unknown (NA) -> False, as a numpy-bool Series or a Python bool."""
        if isinstance(data, pd.Series):
            if data.dtype == bool:
                return data
            return pd.Series(data.to_numpy(dtype=bool, na_value=False), index=self.index)
        return bool(data) if data is not pd.NA and data is not None else False

    # -- entry ---------------------------------------------------------------

    def check_columns(self) -> None:
        columns = [c for c in self.frame.columns if isinstance(c, str)]
        unknown = sorted(n for n in self.expr.names if n not in self.frame.columns)
        if not unknown:
            return
        by_upper: dict[str, str] = {}
        for c in columns:
            by_upper.setdefault(c.upper(), c)
        problems = []
        for name in unknown:
            close = difflib.get_close_matches(name.upper(), list(by_upper), n=3, cutoff=0.6)
            close = [by_upper[c] for c in close]
            hint = ("did you mean " + " or ".join(close) + "?") if close else (
                "available columns: " + ", ".join(columns[:40]) + (" ..." if len(columns) > 40 else ""))
            problems.append(Problem(
                f"unknown column '{name}' at column {self.column_of_name(name)} of expression "
                f"'{self.expr.source.strip()}'",
                key=self.where, column=name, hint=hint))
        raise SpecError(problems)

    def column_of_name(self, name: str) -> int:
        """1-based character column where ``name`` is first referenced."""
        cols = [_column_of(self.expr._flat, self.expr._lead, node) for node in ast.walk(self.expr._tree)
                if (isinstance(node, ast.Name) and node.id == name)
                or (isinstance(node, ast.Attribute) and _dotted(node) == name)]
        return min(cols) if cols else 1

    def run(self) -> tuple[pd.Series, str]:
        self.check_columns()
        try:
            with recursion_room(MAX_DEPTH):
                v = self.visit(self.expr._tree.body)
        except RecursionError:
            _fail("the expression is nested too deeply", self.where, hint="simplify it")
        data = self.broadcast(v.data, v.kind) if v.scalar else v.data
        data = data.copy() if data is not None else data
        data.index = self.frame.index
        return data, v.kind

    # -- nodes ---------------------------------------------------------------

    def visit(self, node: ast.AST) -> _Val:
        return getattr(self, "visit_" + type(node).__name__)(node)

    def visit_Constant(self, node: ast.Constant) -> _Val:
        value = node.value
        if value is None or (isinstance(value, str) and not value.strip()):
            return _Val(None, "null", self.label(node))
        if isinstance(value, bool):
            return _Val(value, "bool", self.label(node))
        if isinstance(value, (int, float)):
            return _Val(value, "num", self.label(node))
        return _Val(value, "str", self.label(node))

    def visit_Name(self, node: ast.Name) -> _Val:
        name = node.id
        if name not in self.cache:
            s = self.frame[name]
            if isinstance(s, pd.DataFrame):
                self.fail(node, f"column '{name}' appears more than once in the data", column=name)
            original = str(s.dtype)
            s = s.reset_index(drop=True)
            s, kind = _normalise(s)
            self.cache[name] = _Val(s, kind, name, dtype=original, column=name)
        return self.cache[name]

    def visit_Attribute(self, node: ast.Attribute) -> _Val:
        """A dotted raw column name such as ``IT.AETERM``."""
        return self.visit_Name(ast.copy_location(ast.Name(id=_dotted(node), ctx=ast.Load()), node))

    def visit_IfExp(self, node: ast.IfExp) -> _Val:
        """``a if condition else b`` row by row; a missing condition counts as false."""
        cond = self.condition(self.visit(node.test), node.test, "'if'")
        a, b = self.visit(node.body), self.visit(node.orelse)
        kinds = {a.kind, b.kind} - {"null"}
        if len(kinds) > 1:
            self.fail(node, f"both branches of 'if ... else' must be of one type, got {a.describe()} "
                            f"and {b.describe()}", hint="convert with text(x), number(x) or date(x)")
        kind = kinds.pop() if kinds else "null"
        label = self.label(node)
        if not isinstance(cond, pd.Series):
            if cond is pd.NA or cond is None or not cond:
                return b if b.kind != "null" else _Val(b.data, kind if kind != "null" else "null", label)
            return a
        mask = self.definite(cond)
        av = self.broadcast(None if a.kind == "null" else a.data, kind) if a.scalar else a.data
        bv = self.broadcast(None if b.kind == "null" else b.data, kind) if b.scalar else b.data
        if kind == "null":
            return _Val(self.broadcast(None, "num"), "null", label)
        return _Val(av.where(mask.to_numpy(), bv), kind, label)

    def visit_BoolOp(self, node: ast.BoolOp) -> _Val:
        word = "and" if isinstance(node.op, ast.And) else "or"
        combine = operator.and_ if word == "and" else operator.or_
        values = [self.condition(self.visit(v), v, f"'{word}'") for v in node.values]
        if all(not isinstance(x, pd.Series) for x in values):
            result = values[0]
            for x in values[1:]:
                result = combine(result, x)
            return _Val(result, "bool", self.label(node))
        series = [x if isinstance(x, pd.Series) else self.broadcast(x, "bool") for x in values]
        result = series[0]
        for x in series[1:]:
            result = combine(result, x)    # Kleene logic when a 'boolean' column has NA
        return _Val(result, "bool", self.label(node))

    def condition(self, v: _Val, node: ast.AST, context: str) -> Any:
        """A true/false operand: bool Series / Python bool / pd.NA."""
        if v.kind == "null":
            return pd.NA if v.scalar else self.broadcast(pd.NA, "bool")
        if v.kind != "bool":
            self.fail(node, f"{context} needs true/false values, but {v.describe()} is not a condition",
                      hint=f"compare it, e.g. {v.label} == 'Y' or {v.label} > 0, or test it with "
                           f"present({v.label})", column=v.column)
        return v.data

    def visit_UnaryOp(self, node: ast.UnaryOp) -> _Val:
        v = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            x = self.condition(v, node.operand, "'not'")
            if isinstance(x, pd.Series):
                return _Val(~x, "bool", self.label(node))
            return _Val(pd.NA if x is pd.NA else (not x), "bool", self.label(node))
        if v.kind == "null":
            return v
        if v.kind != "num":
            self.fail(node, f"unary '-' needs a number, but {v.describe()} is not one", column=v.column)
        return _Val(-v.data if not (v.scalar and v.data is None) else None, "num", self.label(node))

    def visit_BinOp(self, node: ast.BinOp) -> _Val:
        """Arithmetic: numbers with + - * / // % **; a date plus/minus days; date - date.

        Missing operands and division by zero give a missing number; ``//`` and ``%`` are
        floor division and its remainder (R ``%/%`` and ``%%``: -7 // 2 = -4, -7 % 2 = 1).
        """
        symbol, func = _ARITH_OPS[type(node.op)]
        a, b = self.visit(node.left), self.visit(node.right)
        label = self.label(node)
        if a.kind == "date" or b.kind == "date":
            return dates.date_arithmetic(self, node, symbol, a, b, label)
        for v in (a, b):
            if v.kind not in ("num", "null"):
                if v.kind == "str":
                    hint = dates.text_date_hint(v)
                    what = "; text is joined with concat(a, b), not '+'" if symbol == "+" else ""
                else:
                    hint, what = None, ""
                self.fail(node, f"'{symbol}' works on numbers only (and on dates: date + days, date - date), "
                                f"but {v.describe()} is not a number{what}", hint=hint, column=v.column)
        if a.kind == "null" or b.kind == "null":
            if a.scalar and b.scalar:
                return _Val(None, "null", label)
            return _Val(self.broadcast(None, "num"), "num", label)
        if symbol in _NUMPY_OPS:
            return self.numpy_arith(func, a, b, label)
        if a.scalar and b.scalar:
            try:
                return _Val(func(a.data, b.data), "num", label)
            except ZeroDivisionError:
                return _Val(None, "null", label)
            except OverflowError as exc:
                self.fail(node, f"cannot compute {label}: {exc}")
        try:
            with np.errstate(all="ignore"):
                result = func(a.data, b.data)
        except (TypeError, ValueError, OverflowError) as exc:
            self.fail(node, f"cannot compute {label}: {exc}")
        if symbol == "/":
            # x / 0 is a missing number, not +-inf.
            result = result.mask(np.isinf(result.to_numpy()))
        return _Val(result, "num", label)

    def numpy_arith(self, func, a: _Val, b: _Val, label: str) -> _Val:
        """``//``, ``%``, ``**`` in float64; a non-finite result (x // 0, overflow) is missing."""
        x = np.float64(a.data) if a.scalar else a.data.to_numpy(dtype="float64", na_value=np.nan)
        y = np.float64(b.data) if b.scalar else b.data.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(all="ignore"):
            out = func(x, y)
        if a.scalar and b.scalar:
            return _Val(float(out), "num", label) if np.isfinite(out) else _Val(None, "null", label)
        out = np.where(np.isfinite(out), out, np.nan)
        return _Val(pd.Series(out, index=self.index), "num", label)

    # -- comparisons ---------------------------------------------------------

    def visit_Compare(self, node: ast.Compare) -> _Val:
        left = self.visit(node.left)
        result = None
        for op, right_node in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                part = self.membership(left, right_node.elts, isinstance(op, ast.NotIn), node)
                right = None
            else:
                right = self.visit(right_node)
                part = self.compare(type(op), left, right, node)
            result = part if result is None else (result & part)
            left = right if right is not None else left
        return _Val(result, "bool", self.label(node))

    def coerce_pair(self, a: _Val, b: _Val, symbol: str, node: ast.AST) -> tuple[Any, Any]:
        """Check that ``a`` and ``b`` may be compared with ``symbol``; return their data."""
        ordering = symbol not in ("==", "!=", "in", "not in")
        if a.kind == b.kind and a.kind in ("str", "num", "date", "duration"):
            return a.data, b.data
        if a.kind == b.kind == "bool":
            if ordering:
                self.fail(node, f"'{symbol}' cannot order true/false values ({a.label}, {b.label})",
                          hint="use == or !=")
            return a.data, b.data
        for d, t in ((a, b), (b, a)):
            if d.kind == "date" and t.kind == "str":
                if not t.scalar:
                    self.fail(node, f"cannot compare {d.describe()} with {t.describe()}",
                              hint=f"convert the text with date({t.label})", column=t.column)
                stamp = self.date_literal(t.data, node)
                return (a.data, stamp) if d is a else (stamp, b.data)
        if "mixed" in (a.kind, b.kind) and not ordering and "null" not in (a.kind, b.kind):
            return a.data, b.data
        kinds = {a.kind, b.kind}
        if kinds == {"str", "num"}:
            text, num = (a, b) if a.kind == "str" else (b, a)
            col = a.column or b.column
            hint = (f"quote the number, e.g. '{num.label}'" if num.scalar else
                    f"convert with number({text.label})")
            self.fail(node, f"cannot compare {a.describe()} with {b.describe()}: text and numbers "
                            "are never equal", hint=hint, column=col)
        col = a.column or b.column
        self.fail(node, f"cannot compare {a.describe()} with {b.describe()} using '{symbol}'",
                  hint="both sides must be text, numbers or dates; convert with number(x) or date(x)",
                  column=col)

    def date_literal(self, text: str, node: ast.AST) -> pd.Timestamp:
        return dates.date_literal(self, text, node)

    def compare(self, op: type, a: _Val, b: _Val, node: ast.AST) -> Any:
        """Element-wise comparison with the missing-value rules of the module docstring."""
        symbol, func = _COMPARE_OPS[op]
        if a.kind == "null" or b.kind == "null":
            # Missing is unequal to everything and neither < nor > anything.
            value = symbol == "!="
            if a.scalar and b.scalar:
                return value
            return self.broadcast(value, "bool")
        if symbol == "!=":
            eq = self.compare(ast.Eq, a, b, node)
            return (not eq) if isinstance(eq, bool) else ~eq
        x, y = self.coerce_pair(a, b, symbol, node)
        if a.scalar and b.scalar:
            if not self.present(a) or not self.present(b):
                return False
            try:
                return bool(func(x, y))
            except TypeError as exc:
                self.fail(node, f"cannot compare {a.describe()} with {b.describe()}: {exc}")
        try:
            raw = func(x, y)
        except (TypeError, ValueError) as exc:
            self.fail(node, f"cannot compare {a.describe()} with {b.describe()}: {exc}",
                      column=a.column or b.column)
        both = self.present(a) & self.present(b)
        if isinstance(both, bool):
            both = self.broadcast(both, "bool")
        return self.definite(raw) & both

    def membership(self, left: _Val, elts: list[ast.expr], negate: bool, node: ast.AST) -> Any:
        """``x in (...)``: False where x is missing; ``not in`` is its negation (True there)."""
        items = []
        for elt in elts:
            value = _literal_value(elt)
            item = _Val(value, "bool" if isinstance(value, bool) else
                        "num" if isinstance(value, (int, float)) else "str", self.label(elt))
            if left.kind == "null":
                continue
            _, coerced = self.coerce_pair(left, item, "not in" if negate else "in", node)
            items.append(coerced)
        if left.kind == "null":
            hit = False if left.scalar else self.broadcast(False, "bool")
        elif left.scalar:
            hit = self.present(left) and any(left.data == i for i in items)
        else:
            try:
                raw = left.data.isin(items)
            except (TypeError, ValueError) as exc:
                self.fail(node, f"cannot test {left.describe()} against the list: {exc}", column=left.column)
            hit = self.definite(raw) & self.present(left)
        if negate:
            return (not hit) if isinstance(hit, bool) else ~hit
        return hit

    # -- functions -----------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> _Val:
        name = node.func.id
        label = self.label(node)
        if name == "isin_list":
            left = self.visit(node.args[0])
            rest = node.args[1:]
            if len(rest) == 1 and isinstance(rest[0], (ast.Tuple, ast.List)):
                rest = rest[0].elts
            return _Val(self.membership(left, rest, False, node), "bool", label)
        impl = IMPLEMENTATIONS.get(name)
        if impl is None:
            raise AssertionError(f"function {name} passed validation but has no implementation")
        if name in LITERAL_TAIL:
            args = [self.visit(node.args[0])] + [_literal_value(a) for a in node.args[1:]]
        else:
            args = [self.visit(a) for a in node.args]
        return impl(self, node, args, label)

    def need_text(self, name: str, v: _Val, node: ast.AST) -> _Val:
        if v.kind not in ("str", "null"):
            self.fail(node, f"{name}() needs text, but {v.describe()} is not text", column=v.column)
        return v


def run_expression(expr: Expr, frame: pd.DataFrame, where: str | None) -> tuple[pd.Series, str]:
    """Evaluate ``expr`` on ``frame``: (data aligned to frame.index, its kind).

    Every function and operator of the language is row by row, so the value of a record
    depends only on the values of the columns the expression names: it is evaluated once
    per distinct combination of those columns (cdisc.distinct) and taken back to every
    record. A condition on RECSTATUS of a million LB rows looks at its three distinct
    values. An expression that fails is evaluated again on all records, so its message
    (which may name a record) is the one the whole frame gives.
    """
    from cdisc.distinct import _MIN_RECORDS, distinct_rows

    if (isinstance(frame, pd.DataFrame) and len(frame) >= _MIN_RECORDS and expr.names
            and frame.columns.is_unique and all(n in frame.columns for n in expr.names)):
        codes, first = distinct_rows(frame[sorted(expr.names)])
        if len(first) * 2 <= len(frame):
            try:
                data, kind = _Evaluator(expr, frame[sorted(expr.names)].iloc[first], where).run()
            except SpecError:
                return _Evaluator(expr, frame, where).run()
            data = data.reset_index(drop=True).take(codes)
            data.index = frame.index
            return data, kind
    return _Evaluator(expr, frame, where).run()


def evaluate_value(text_or_expr: str | Expr, frame: pd.DataFrame, *, where: str | None = None) -> pd.Series:
    """Evaluate a value expression (the ``expr:`` rule) for every row of ``frame``.

    Returns text (blank -> missing), numbers as float64, dates as ISO 8601 text
    (``YYYY-MM-DD``, with ``Thh:mm`` / ``Thh:mm:ss`` where a time is present), aligned to
    ``frame.index``; a true/false result is a SpecError (use ``cases`` for flags).
    """
    expr = text_or_expr if isinstance(text_or_expr, Expr) else parse(text_or_expr, where=where)
    where = where if where is not None else expr.where
    data, kind = run_expression(expr, frame, where)
    if kind == "bool":
        _fail(f"the value expression '{expr.source.strip()}' gives true/false, not a value", where,
              hint="write a flag with 'Y' if <condition> else None, or with cases")
    if kind == "date":
        has_time = (data.dt.hour.fillna(0) + data.dt.minute.fillna(0) + data.dt.second.fillna(0)).gt(0)
        txt = data.dt.strftime("%Y-%m-%d").where(data.notna())
        with_sec = data.dt.second.fillna(0).gt(0)
        txt = txt.where(~has_time, data.dt.strftime("%Y-%m-%dT%H:%M"))
        txt = txt.where(~with_sec, data.dt.strftime("%Y-%m-%dT%H:%M:%S"))
        return pd.Series(txt.where(data.notna()), index=frame.index, dtype="str")
    if kind == "null":
        return pd.Series(np.nan, index=frame.index, dtype="object")
    if kind == "num":
        return _to_float(data)
    return data


def evaluate_filter(text_or_expr: str | Expr, frame: pd.DataFrame, *, where: str | None = None) -> pd.Series:
    """Evaluate a condition as a row filter.

    Args:
        text_or_expr: expression text (parsed here) or an :class:`Expr` from :func:`parse`.
        frame: the records.
        where: spec key path for error messages; defaults to the Expr's own.

    Returns:
        A numpy-``bool`` Series aligned to ``frame.index``; True = keep the record.

    Algorithm:
        1. Parse the text if needed (:func:`parse`).
        2. Evaluate it (:meth:`Expr.evaluate`).
        3. The result must be true/false (a comparison, ``missing()``, a ``bool`` column,
           ...); anything else is a SpecError, because a bare column such as ``AESER``
           is almost always a forgotten ``== 'Y'``.
        4. Unknown (missing) -> False, SQL WHERE semantics.
    """
    if isinstance(text_or_expr, Expr):
        expr = text_or_expr
        where = where if where is not None else expr.where
    else:
        expr = parse(text_or_expr, where=where)
    data, kind = run_expression(expr, frame, where)
    if kind not in ("bool", "null"):
        src = expr.source.strip()
        example = {"str": f"{src} == 'Y'", "num": f"{src} > 0"}.get(kind, f"present({src})")
        _fail(f"the condition '{src}' gives {_KIND_NAMES.get(kind, kind)}, not true/false",
              where, hint=f"compare it, e.g. {example}, or test it with missing(...) / present(...)")
    if kind == "null":
        return pd.Series(np.zeros(len(frame), dtype=bool), index=frame.index)
    if data.dtype == bool:
        return data
    return pd.Series(data.to_numpy(dtype=bool, na_value=False), index=frame.index)


def near_misses(expr: Expr, frame: pd.DataFrame) -> list[tuple[str, pd.Series, str]]:
    """Values that differ from a text literal of a condition only in letter case or blanks.

    ``RECSTATUS == 'Deleted'`` does not hold for ``deleted`` or ``Deleted `` (the comparison is
    exact, as it must be), so such a record would silently be treated as live. Returns
    (column, mask of the records, the literal it resembles) for each column compared with
    text whose values include such a near miss; the caller reports them.
    """
    out = []
    for col, lits in text_comparisons(expr):
        if col not in frame.columns:
            continue
        values = frame[col]
        if values.dtype.kind in "fiub":
            continue
        uniq = pd.Series(values.dropna().unique()).astype("str")
        if uniq.empty:
            continue
        norm = {lit.strip().casefold(): lit for lit in lits}
        key = uniq.str.strip().str.casefold()
        close = uniq[key.isin(list(norm)) & ~uniq.isin(lits)]
        for v in close.tolist():
            out.append((col, values.astype("str").eq(v), norm[v.strip().casefold()]))
    return out
