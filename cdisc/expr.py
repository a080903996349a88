"""A small, safe expression language for record filters and conditions in specs.

Specs are data written by users. Where a spec needs a condition (which raw records
to keep, when a rule applies) it holds a short expression such as::

    RECSTATUS != 'Deleted'
    AESER == 'Y' and AETOXGR in ('3', '4', '5')
    missing(AEENDTC)
    PARAMCD == 'OS' and CNSR == 0
    upper(OVRLRESP) in ('CR', 'CRH', 'CRI')
    ADT >= TRTSDT
    AVAL > 0.5 * BASE
    not present(DTHDTC)
    startswith(LBTESTCD, 'CD7')

The text is parsed with :mod:`ast` and checked against a whitelist of node types and
function names; it is never passed to ``eval``, ``exec`` or ``compile``. A checked
expression is evaluated column-wise with pandas operations (no Python loop over rows).

Language
--------
* Literals: ``'text'`` / ``"text"``, integers, decimals, ``True``, ``False``, ``None``.
* Names are columns of the frame the expression is evaluated on.
* ``and``, ``or``, ``not``; comparisons ``== != < <= > >=`` (chains such as
  ``0 < AVAL <= 10`` mean ``0 < AVAL and AVAL <= 10``); ``in`` / ``not in`` with a
  tuple or list of literals on the right; ``+ - * /`` and unary ``-`` on numbers;
  parentheses.
* Functions, called by bare name only (see :data:`FUNCTIONS`): ``missing(x)``,
  ``present(x)``, ``upper(x)``, ``lower(x)``, ``strip(x)``, ``startswith(x, 'lit')``,
  ``endswith(x, 'lit')``, ``contains(x, 'lit')`` (plain text, not a regex),
  ``length(x)``, ``coalesce(a, b, ...)``, ``number(x)``, ``date(x)``,
  ``substr(x, start[, length])`` (1-based like SAS ``SUBSTR``) and
  ``isin_list(x, 'A', 'B', ...)`` (same as ``x in ('A', 'B', ...)``).
* Value functions (see :data:`FUNCTION_DOCS` for each rule and an example):
  ``concat(a, b, ...)``, ``scan(x, n, 'sep')``, ``replace(x, 'old', 'new')``, ``text(x)``,
  ``round(x, digits)``, ``days_between(start, end)``, ``add_days(date, n)`` and
  ``study_day(date, reference)``; and the conditional ``a if condition else b`` (a missing
  condition counts as false; both branches of one type). :func:`evaluate_value` evaluates a
  value expression (the SDTM ``expr:`` rule; ADaM specs use :meth:`Expr.evaluate`).
* A dotted name such as ``IT.AETERM`` is one column name, as EDC exports write them
  (``ITEMGROUP.ITEM``); it is never attribute access.
* Anything else is rejected with a :class:`~cdisc.errors.SpecError` that names what was
  found, where (1-based character column in the expression) and what is allowed:
  attribute access other than a dotted column name, method calls (``X.startswith('a')``),
  indexing, lambdas, comprehensions, f-strings, keyword or starred arguments,
  ``:=``, ``is``, bit operators, other functions, any ``__`` (even inside a string) and
  expressions longer than :data:`MAX_LENGTH` characters.

Missing values
--------------
A value is missing when it is NaN, None, NaT or (for text) empty or only blanks; SAS
and the XPT v5 format store a missing character value as blanks, so blank text is
treated as missing everywhere, not only in ``missing()``. The rules are SQL-like, with
one deliberate choice for ``!=``:

1. ``missing(x)`` is True exactly where ``x`` is missing; ``present(x)`` is its negation.
2. A missing value compares unequal to everything (including another missing value)
   and is neither less nor greater than anything. So ``==, <, <=, >, >=`` and ``in``
   are False where either side is missing, while ``!=`` and ``not in`` are True there:
   ``RECSTATUS != 'Deleted'`` keeps records whose status is blank, which is what data
   managers expect of an exclusion rule.
3. Comparing with ``None`` or with a blank literal (``X == ''``) is rejected at parse
   time; write ``missing(X)`` / ``present(X)`` instead.
4. Arithmetic with a missing operand, and division by zero, give a missing number.
5. ``and``/``or``/``not`` on a true/false column that has missing values follow
   Kleene (SQL) logic; :func:`evaluate_filter` finally turns an unknown into False.

Types
-----
Each operand has a kind: text, number, date, true/false, missing (an all-missing column
or ``None``) or mixed (an object column holding several Python types). Comparisons need
the same kind on both sides; text against a number is a SpecError naming the column and
both types (convert with ``number(X)`` or quote the literal). A date column may be
compared with a text literal holding a complete ISO 8601 date (``ADT >= '2024-01-15'``);
a text column must be converted with ``date(X)`` first. Columns may have the pandas 3
``str`` dtype, ``object``, any numeric dtype (nullable ones included), ``bool`` /
``boolean``, ``category`` or ``datetime64``.
"""
from __future__ import annotations

import ast
import difflib
import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cdisc.errors import Problem, SpecError

__all__ = ["Expr", "parse", "evaluate_filter", "evaluate_value", "FUNCTIONS", "FUNCTION_DOCS", "MAX_LENGTH"]

#: Longest expression text accepted, in characters.
MAX_LENGTH = 2000

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
    "round": (2, 2, "round(x, digits)"),
    "days_between": (2, 2, "days_between(start, end)"),
    "add_days": (2, 2, "add_days(date, n)"),
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
    "round": "a number rounded half away from zero to `digits` decimals: `round((TEMP - 32) * 5 / 9, 1)`",
    "days_between": "whole days from start to end (end - start); ISO 8601 text or dates, partial -> missing: "
                    "`days_between(RFSTDTC, DTHDTC)`",
    "add_days": "the date n days later (n may be negative or a column); written as YYYY-MM-DD: "
                "`add_days(RFSTDTC, 28)`",
    "study_day": "SDTMIG study day of date against reference, no day 0 (date - reference + 1 on or after "
                 "it): `study_day(DMDTC, RFSTDTC)`",
}

_ALLOWED = (
    "allowed: column names; literals ('text', 1, 2.5, True, False, None); and, or, not; "
    "==, !=, <, <=, >, >=; in / not in with a tuple or list of literals; + - * / and "
    "unary -; parentheses; a if condition else b; dotted column names (IT.AETERM); and the functions "
    + ", ".join(sorted(FUNCTIONS))
)

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
_ARITH_OPS = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
}

# Names of constructs shown in rejection messages.
_NODE_NAMES = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing / subscript",
    ast.Slice: "slice",
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Starred: "starred argument (*x)",
    ast.NamedExpr: "assignment expression (:=)",
    ast.Dict: "dict literal",
    ast.Set: "set literal",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Tuple: "a tuple outside 'in (...)'",
    ast.List: "a list outside 'in [...]'",
}

_KIND_NAMES = {
    "str": "text",
    "num": "a number",
    "date": "a date",
    "bool": "true/false",
    "null": "missing",
    "mixed": "mixed types",
    "duration": "a duration",
}

# Complete ISO 8601 date, optionally with hh, hh:mm or hh:mm:ss[.f] (SDTMIG 3.4
# section 4.4.2 date/time format). Anything shorter is a partial date -> NaT.
_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}(?:T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?"
_ISO_RE = re.compile(_ISO_DATETIME)


def _fail(message: str, where: str | None, hint: str | None = None, column: str | None = None):
    raise SpecError(Problem(message, key=where, hint=hint, column=column))


# ---------------------------------------------------------------------------
# parsing and validation
# ---------------------------------------------------------------------------


@dataclass
class Expr:
    """A parsed, validated expression; build it with :func:`parse`.

    Attributes:
        source: the expression text as written in the spec.
        names: column names the expression references, so a caller can check that the
            input has them before evaluating.
        where: spec key path used in error messages (``Problem.key``).
    """

    source: str
    names: set[str]
    where: str | None = None
    _tree: ast.Expression = field(default=None, repr=False, compare=False)
    _flat: str = field(default="", repr=False, compare=False)
    _lead: int = field(default=0, repr=False, compare=False)

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """Evaluate the expression on every row of ``frame``.

        Args:
            frame: the records; must hold every column in :attr:`names`.

        Returns:
            A Series aligned to ``frame.index`` (boolean for conditions, numbers, text
            or dates otherwise; text has blanks turned into NaN).

        Algorithm:
            1. Check that every referenced column exists; otherwise raise a SpecError
               naming each unknown column with its closest matches (difflib).
            2. Load each referenced column once, normalised to one dtype per kind
               (text -> ``str``, numbers -> ``float64``, dates -> ``datetime64``).
            3. Walk the checked syntax tree once; every node is one vectorised pandas
               operation on whole columns.
            4. Broadcast a constant result to the frame's length.
        """
        return _Evaluator(self, frame, self.where).run()[0]

    def __str__(self) -> str:
        return self.source


def _column_of(flat: str, lead: int, node: ast.AST) -> int:
    """1-based character column of ``node`` in the original text (ast counts UTF-8 bytes)."""
    offset = getattr(node, "col_offset", 0) or 0
    return len(flat.encode("utf-8")[:offset].decode("utf-8", errors="ignore")) + lead + 1


def _segment(flat: str, node: ast.AST, limit: int = 60) -> str:
    text = ast.get_source_segment(flat, node) or type(node).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Validator:
    """Walks the syntax tree and rejects anything outside the whitelist."""

    def __init__(self, flat: str, lead: int, where: str | None):
        self.flat = flat
        self.lead = lead
        self.where = where
        self.names: set[str] = set()

    def reject(self, node: ast.AST, what: str, hint: str | None = None):
        col = _column_of(self.flat, self.lead, node)
        _fail(
            f"{what} is not allowed in an expression: found '{_segment(self.flat, node)}' at column {col}",
            self.where,
            hint=(hint + "; " if hint else "") + _ALLOWED,
        )

    def visit(self, node: ast.AST) -> None:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            what = _NODE_NAMES.get(type(node))
            if what is None:
                what = f"'{type(node).__name__}' syntax"
            self.reject(node, what)
        method(node)

    def visit_Expression(self, node: ast.Expression) -> None:
        self.visit(node.body)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if value is None or isinstance(value, (bool, int, float, str)):
            if isinstance(value, float) and not math.isfinite(value):
                self.reject(node, "a non-finite number")
            return
        self.reject(node, f"a {type(value).__name__} literal")

    def visit_Name(self, node: ast.Name) -> None:
        self.names.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = _dotted(node)
        if name is None:
            self.reject(node, _NODE_NAMES[ast.Attribute],
                        "a dotted raw column name is written as it is, e.g. IT.AETERM")
        self.names.add(name)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit(node.test)
        self.visit(node.body)
        self.visit(node.orelse)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        for value in node.values:
            self.visit(value)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if not isinstance(node.op, (ast.Not, ast.USub)):
            hint = "use 'not' for negation" if isinstance(node.op, ast.Invert) else None
            self.reject(node, f"unary operator '{_op_symbol(node.op)}'", hint)
        self.visit(node.operand)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in _ARITH_OPS:
            hint = (
                "use 'and' / 'or' to combine conditions"
                if isinstance(node.op, (ast.BitAnd, ast.BitOr))
                else None
            )
            self.reject(node, f"operator '{_op_symbol(node.op)}'", hint)
        self.visit(node.left)
        self.visit(node.right)

    def visit_Compare(self, node: ast.Compare) -> None:
        self.visit(node.left)
        operands = [node.left, *node.comparators]
        for i, (op, right) in enumerate(zip(node.ops, node.comparators)):
            if isinstance(op, (ast.Is, ast.IsNot)):
                self.reject(node, f"'{'is' if isinstance(op, ast.Is) else 'is not'}'",
                            "use missing(X) or present(X) to test for missing values")
            if _is_null_literal(operands[i]):
                self.reject(operands[i], "comparing None or a blank text",
                            "a missing value compares unequal to everything; use missing(X) "
                            "or present(X)")
            if isinstance(op, (ast.In, ast.NotIn)):
                if len(node.ops) > 1:
                    self.reject(node, "a chained comparison with 'in'",
                                "combine the comparisons with 'and'")
                if not isinstance(right, (ast.Tuple, ast.List)):
                    self.reject(right, "'in' with something other than a tuple or list of literals",
                                "write X in ('A', 'B'); a single value needs a trailing comma "
                                "('A',) or use ==")
                self.literal_list(right.elts)
                continue
            self.visit(right)
            if _is_null_literal(right):
                self.reject(right, "comparing with None or a blank text",
                            "a missing value compares unequal to everything; use missing(X) "
                            "or present(X)")

    def literal_list(self, elts: list[ast.expr]) -> None:
        for elt in elts:
            if _literal_value(elt) is _NOT_LITERAL:
                self.reject(elt, "a non-literal item in an 'in' list",
                            "list items must be text or number literals such as 'A' or 3")
            if _is_null_literal(elt):
                self.reject(elt, "None or a blank text in an 'in' list",
                            "use missing(X) to test for missing values")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            hint = (
                f"use the function form {func.attr}(x, ...) instead of x.{func.attr}(...)"
                if func.attr in FUNCTIONS
                else "methods cannot be called; use one of the functions"
            )
            self.reject(node, f"method call '.{func.attr}(...)'", hint)
        if not isinstance(func, ast.Name):
            self.reject(node, "calling something that is not a function name")
        name = func.id
        if name not in FUNCTIONS:
            self.reject(node, f"function '{name}'")
        for kw in node.keywords:
            self.reject(kw.value if kw.arg is None else node,
                        f"keyword argument '{kw.arg or '**'}'", "pass arguments by position")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.reject(arg, _NODE_NAMES[ast.Starred])
        low, high, usage = FUNCTIONS[name]
        n = len(node.args)
        if n < low or (high is not None and n > high):
            self.reject(node, f"{name}() with {n} argument{'s' if n != 1 else ''}",
                        f"call it as {usage}")
        args = node.args
        if name == "isin_list":
            self.visit(args[0])
            rest = args[1:]
            if len(rest) == 1 and isinstance(rest[0], (ast.Tuple, ast.List)):
                rest = rest[0].elts
            self.literal_list(rest)
            return
        if name in ("startswith", "endswith", "contains"):
            self.visit(args[0])
            value = _literal_value(args[1])
            if not isinstance(value, str):
                self.reject(args[1], f"a non-text second argument to {name}()",
                            f"call it as {usage} with a quoted text literal")
            return
        if name in ("scan", "replace", "round"):
            self.visit(args[0])
            lits = args[1:]
            want = {"scan": (int, str), "replace": (str, str), "round": (int,)}[name]
            for pos, (arg, typ) in enumerate(zip(lits, want)):
                value = _literal_value(arg)
                empty_ok = name == "replace" and pos == 1          # replace(x, '-', '') deletes
                if isinstance(value, bool) or not isinstance(value, typ) or (typ is str and value == "" and not empty_ok):
                    self.reject(arg, f"a {name}() argument that is not a {'whole number' if typ is int else 'non-empty text'} literal",
                                f"call it as {usage}")
            return
        if name == "substr":
            self.visit(args[0])
            for pos, arg in enumerate(args[1:]):
                value = _literal_value(arg)
                low_ok = 1 if pos == 0 else 0
                if isinstance(value, bool) or not isinstance(value, int) or value < low_ok:
                    self.reject(arg, "a substr() start/length that is not a whole number literal",
                                "call it as substr(x, start, length) with start >= 1 and "
                                "length >= 0, e.g. substr(LBTESTCD, 1, 3)")
            return
        for arg in args:
            self.visit(arg)


_NOT_LITERAL = object()


def _dotted(node: ast.AST) -> str | None:
    """``IT.AETERM`` (names joined by dots, as EDC exports name columns) as one column name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _literal_value(node: ast.AST) -> Any:
    """Value of a literal (including a negated number), or ``_NOT_LITERAL``."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (bool, int, float, str))):
        if isinstance(node.value, float) and not math.isfinite(node.value):
            return _NOT_LITERAL
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value
    return _NOT_LITERAL


def _is_null_literal(node: ast.AST) -> bool:
    if not isinstance(node, ast.Constant):
        return False
    value = node.value
    return value is None or (isinstance(value, str) and value.strip() == "")


def _op_symbol(op: ast.AST) -> str:
    return {
        ast.Mod: "%", ast.Pow: "**", ast.FloorDiv: "//", ast.MatMult: "@",
        ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<",
        ast.RShift: ">>", ast.Invert: "~", ast.UAdd: "+",
    }.get(type(op), type(op).__name__)


def parse(text: str, *, where: str | None = None) -> Expr:
    """Parse and check a spec expression; nothing in it is executed.

    Args:
        text: the expression as written in the spec.
        where: spec key path (e.g. ``datasets.AE.filter``) put in ``Problem.key`` of any
            error, so the user knows which spec entry to fix.

    Returns:
        An :class:`Expr` with ``names`` = the referenced columns.

    Algorithm:
        1. Reject non-text, empty or over-long (> ``MAX_LENGTH`` characters) input and any
           ``__`` (the gateway to Python internals), naming the column where it occurs.
        2. Turn line breaks into spaces (a YAML block scalar may span lines) and strip
           leading blanks, keeping character positions for messages.
        3. ``ast.parse(mode="eval")``; a syntax error becomes a SpecError with its column.
        4. Walk the tree with a whitelist of node types, operators and function names;
           check function arities and literal arguments; the first node outside the
           whitelist raises a SpecError naming it, its column and what is allowed.

    Raises:
        SpecError: for any disallowed or invalid syntax.
    """
    if not isinstance(text, str):
        _fail(f"an expression must be text, got {type(text).__name__} {text!r}", where,
              hint="quote the condition in the spec")
    if not text.strip():
        _fail("the expression is empty", where, hint="write a condition such as AESER == 'Y'")
    if len(text) > MAX_LENGTH:
        _fail(f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed",
              where, hint="split it into simpler conditions")
    dunder = text.find("__")
    if dunder >= 0:
        snippet = text[max(0, dunder - 10): dunder + 20]
        _fail(f"'__' is not allowed anywhere in an expression (not even inside text): found "
              f"'{snippet}' at column {dunder + 1}", where, hint=_ALLOWED)
    flat = text.replace("\r", " ").replace("\n", " ")
    stripped = flat.lstrip(" \t")
    lead = len(flat) - len(stripped)
    flat = stripped
    try:
        tree = ast.parse(flat, mode="eval")
    except SyntaxError as exc:
        offset = max(1, min(exc.offset or 1, len(flat)))
        near = flat[offset - 1: offset + 19]
        _fail(f"invalid syntax ({exc.msg}) at column {offset + lead}: near '{near}' in '{text.strip()}'",
              where, hint=_ALLOWED)
    except (ValueError, MemoryError, RecursionError) as exc:
        _fail(f"cannot parse the expression: {exc}", where, hint="simplify it")
    validator = _Validator(flat, lead, where)
    try:
        validator.visit(tree)
    except RecursionError:
        _fail("the expression is nested too deeply", where, hint="simplify it")
    return Expr(source=text, names=set(validator.names), where=where, _tree=tree, _flat=flat, _lead=lead)


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------


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
    blank = s.eq("") | s.str.isspace()
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


def _parse_iso(s: pd.Series) -> pd.Series:
    """ISO 8601 text -> datetime64; partial or invalid dates -> NaT (SDTMIG 3.4 s4.4.2)."""
    complete = s.str.fullmatch(_ISO_DATETIME)
    complete = complete.fillna(False).astype(bool) if complete.dtype != bool else complete
    return pd.to_datetime(s.where(complete), format="ISO8601", errors="coerce")


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
                f"unknown column '{name}' in expression '{self.expr.source.strip()}'",
                key=self.where, column=name, hint=hint))
        raise SpecError(problems)

    def run(self) -> tuple[pd.Series, str]:
        self.check_columns()
        try:
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
        symbol, func = _ARITH_OPS[type(node.op)]
        a, b = self.visit(node.left), self.visit(node.right)
        for v in (a, b):
            if v.kind not in ("num", "null"):
                self.fail(node, f"'{symbol}' works on numbers only, but {v.describe()} is not a number",
                          hint=f"convert text with number({v.label})" if v.kind == "str" else None,
                          column=v.column)
        label = self.label(node)
        if a.kind == "null" or b.kind == "null":
            if a.scalar and b.scalar:
                return _Val(None, "null", label)
            return _Val(self.broadcast(None, "num"), "num", label)
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
        if not _ISO_RE.fullmatch(text):
            self.fail(node, f"'{text}' is not a complete ISO 8601 date to compare dates with",
                      hint="write it as 'YYYY-MM-DD' or 'YYYY-MM-DDThh:mm:ss'")
        try:
            return pd.Timestamp(text)
        except ValueError:
            self.fail(node, f"'{text}' is not a valid date", hint="write it as 'YYYY-MM-DD'")

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
        if name in ("startswith", "endswith", "contains"):
            return self.text_test(name, node, label)
        if name == "substr":
            return self.substr(node, label)
        if name in ("scan", "replace", "round"):
            first = self.visit(node.args[0])
            return _EXTRA[name](self, node, [first] + [_literal_value(a) for a in node.args[1:]], label)
        args = [self.visit(a) for a in node.args]
        if name in ("missing", "present"):
            p = self.present(args[0])
            if name == "present":
                return _Val(p, "bool", label)
            return _Val((not p) if isinstance(p, bool) else ~p, "bool", label)
        if name in ("upper", "lower", "strip"):
            v = self.need_text(name, args[0], node)
            if v.kind == "null":
                return _Val(v.data, "null", label)
            if v.scalar:
                out = getattr(v.data, name)() if name != "strip" else v.data.strip()
                return _Val(out, "str", label)
            # Blanks are already missing, so strip() cannot create new blanks.
            return _Val(getattr(v.data.str, name)(), "str", label)
        if name == "length":
            v = self.need_text(name, args[0], node)
            if v.kind == "null":
                return _Val(None if v.scalar else self.broadcast(None, "num"), "num", label)
            if v.scalar:
                return _Val(len(v.data), "num", label)
            return _Val(_to_float(v.data.str.len()), "num", label)
        if name == "number":
            return self.number(args[0], node, label)
        if name == "date":
            return self.date(args[0], node, label)
        if name == "coalesce":
            return self.coalesce(args, node, label)
        if name in _EXTRA:
            return _EXTRA[name](self, node, args, label)
        raise AssertionError(f"function {name} passed validation but has no implementation")

    def need_text(self, name: str, v: _Val, node: ast.AST) -> _Val:
        if v.kind not in ("str", "null"):
            self.fail(node, f"{name}() needs text, but {v.describe()} is not text", column=v.column)
        return v

    def text_test(self, name: str, node: ast.Call, label: str) -> _Val:
        """startswith / endswith / contains a literal (not a regex); missing -> False."""
        v = self.need_text(name, self.visit(node.args[0]), node)
        lit = node.args[1].value
        if v.kind == "null":
            return _Val(False if v.scalar else self.broadcast(False, "bool"), "bool", label)
        if v.scalar:
            s = v.data
            out = s.startswith(lit) if name == "startswith" else s.endswith(lit) if name == "endswith" else lit in s
            return _Val(out, "bool", label)
        acc = v.data.str
        if name == "contains":
            raw = acc.contains(lit, regex=False, na=False)
        else:
            raw = getattr(acc, name)(lit, na=False)
        return _Val(self.definite(raw), "bool", label)

    def substr(self, node: ast.Call, label: str) -> _Val:
        """SAS SUBSTR(x, start, length): 1-based; no length -> to the end; blank result -> missing."""
        v = self.need_text("substr", self.visit(node.args[0]), node)
        start = node.args[1].value - 1
        stop = start + node.args[2].value if len(node.args) == 3 else None
        if v.kind == "null":
            return v
        if v.scalar:
            out = v.data[start:stop]
            return _Val(out if out.strip() else None, "str" if out.strip() else "null", label)
        return _Val(_blank_to_nan(v.data.str.slice(start, stop)), "str", label)

    def number(self, v: _Val, node: ast.AST, label: str) -> _Val:
        """Text -> number like ``pd.to_numeric(errors='coerce')``; unparseable -> missing."""
        if v.kind == "num":
            return _Val(v.data, "num", label)
        if v.kind == "null":
            return _Val(None if v.scalar else self.broadcast(None, "num"), "num", label)
        if v.kind != "str":
            self.fail(node, f"number() needs text or a number, but {v.describe()} is neither", column=v.column)
        if v.scalar:
            out = pd.to_numeric(pd.Series([v.data.strip()]), errors="coerce").iloc[0]
            return _Val(None if pd.isna(out) else float(out), "num", label)
        return _Val(_to_float(pd.to_numeric(v.data.str.strip(), errors="coerce")), "num", label)

    def date(self, v: _Val, node: ast.AST, label: str) -> _Val:
        """ISO 8601 text -> datetime64; partial or invalid -> NaT (SDTMIG 3.4 section 4.4.2)."""
        if v.kind == "date":
            return _Val(v.data, "date", label)
        if v.kind == "null":
            return _Val(None if v.scalar else self.broadcast(None, "date"), "date", label)
        if v.kind != "str":
            self.fail(node, f"date() needs ISO 8601 text, but {v.describe()} is not text", column=v.column)
        if v.scalar:
            if not _ISO_RE.fullmatch(v.data):
                return _Val(None, "date", label)
            try:
                return _Val(pd.Timestamp(v.data), "date", label)
            except ValueError:
                return _Val(None, "date", label)
        return _Val(_parse_iso(v.data), "date", label)

    def coalesce(self, args: list[_Val], node: ast.AST, label: str) -> _Val:
        """First present value of a, b, ... row by row (SQL COALESCE)."""
        kinds = {a.kind for a in args} - {"null"}
        if "date" in kinds and kinds <= {"date", "str"}:
            # A text literal among dates is a date (same rule as in comparisons).
            fixed = []
            for a in args:
                if a.kind == "str":
                    if not a.scalar:
                        self.fail(node, f"coalesce() mixes dates with {a.describe()}",
                                  hint=f"convert it with date({a.label})", column=a.column)
                    a = _Val(self.date_literal(a.data, node), "date", a.label)
                fixed.append(a)
            args, kinds = fixed, {"date"}
        if len(kinds) > 1:
            self.fail(node, "coalesce() arguments must all be of one type, got "
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


# ---------------------------------------------------------------------------
# value functions (concat, scan, replace, text, round, days_between, add_days, study_day)
# ---------------------------------------------------------------------------


def _series(ev: "_Evaluator", v: _Val, kind: str) -> pd.Series:
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


def _num_text(x: pd.Series) -> pd.Series:
    """Numbers as text, shortest form (12 significant digits): 177.80 -> '177.8', 12.0 -> '12'."""
    arr = x.to_numpy(dtype="float64", na_value=np.nan)
    ok = ~np.isnan(arr)
    out = np.full(arr.shape, None, dtype=object)
    if ok.any():
        out[ok] = np.char.mod("%.12g", arr[ok]).astype(object)
    return pd.Series(out, index=x.index, dtype="str")


def _as_date(ev: "_Evaluator", v: _Val, node) -> pd.Series:
    """Dates of a value: datetime64 as is, ISO 8601 text parsed (partial -> missing)."""
    if v.kind == "date":
        return _series(ev, v, "date")
    if v.kind == "null":
        return ev.broadcast(None, "date")
    if v.kind == "str":
        return _parse_iso(_series(ev, v, "str"))
    ev.fail(node, f"{v.describe()} is not a date or ISO 8601 text", column=v.column)


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


def _fn_round(ev, node, args, label):
    """round(x, digits): half away from zero (SAS ROUND), not banker's rounding."""
    v, digits = args
    if v.kind not in ("num", "null"):
        ev.fail(node, f"round() needs a number, but {v.describe()} is not one", column=v.column)
    x = _series(ev, v, "num")
    scale = 10.0 ** digits
    arr = x.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(all="ignore"):
        out = np.sign(arr) * np.floor(np.abs(arr) * scale + 0.5 + 1e-9) / scale
    return _Val(pd.Series(out, index=ev.index), "num", label)


def _fn_text(ev, node, args, label):
    """text(x): numbers as text without padding; text unchanged; dates as YYYY-MM-DD."""
    return _Val(_as_text(ev, args[0], node.args[0]), "str", label)


def _fn_days_between(ev, node, args, label):
    """days_between(start, end): end - start in whole days; missing if either is partial or missing."""
    a, b = (_as_date(ev, v, n).dt.normalize() for v, n in zip(args, node.args))
    return _Val(_to_float((b - a).dt.days), "num", label)


def _fn_add_days(ev, node, args, label):
    """add_days(date, n): the date n days later."""
    d = _as_date(ev, args[0], node.args[0])
    if args[1].kind not in ("num", "null"):
        ev.fail(node, f"add_days() needs a number of days, but {args[1].describe()} is not one")
    n = _series(ev, args[1], "num")
    return _Val(d + pd.to_timedelta(n, unit="D"), "date", label)


def _fn_study_day(ev, node, args, label):
    """study_day(date, reference): SDTMIG 3.4 §4.4.4, no day 0."""
    a, r = (_as_date(ev, v, n).dt.normalize() for v, n in zip(args, node.args))
    diff = _to_float((a - r).dt.days)
    return _Val(diff.where(diff < 0, diff + 1), "num", label)


_EXTRA = {"concat": _fn_concat, "scan": _fn_scan, "replace": _fn_replace, "round": _fn_round,
          "text": _fn_text, "days_between": _fn_days_between, "add_days": _fn_add_days,
          "study_day": _fn_study_day}


def evaluate_value(text_or_expr: str | Expr, frame: pd.DataFrame, *, where: str | None = None) -> pd.Series:
    """Evaluate a value expression (the ``expr:`` rule) for every row of ``frame``.

    Returns text (blank -> missing), numbers as float64, dates as ISO 8601 text
    (``YYYY-MM-DD``, with ``Thh:mm`` / ``Thh:mm:ss`` where a time is present), aligned to
    ``frame.index``; a true/false result is a SpecError (use ``cases`` for flags).
    """
    expr = text_or_expr if isinstance(text_or_expr, Expr) else parse(text_or_expr, where=where)
    where = where if where is not None else expr.where
    data, kind = _Evaluator(expr, frame, where).run()
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
    evaluator = _Evaluator(expr, frame, where)
    data, kind = evaluator.run()
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


def text_comparisons(expr: Expr) -> list[tuple[str, list[str]]]:
    """``COLUMN == 'text'``, ``!=``, ``in (...)``, ``not in (...)`` comparisons of a column with text.

    Returns (column, literals) pairs, for the near-miss check of spec conditions
    (:func:`near_misses`)."""
    found = []
    for node in ast.walk(expr._tree):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        left, op, right = node.left, node.ops[0], node.comparators[0]
        if isinstance(right, (ast.Name, ast.Attribute)) and isinstance(left, ast.Constant):
            left, right = right, left
        name = left.id if isinstance(left, ast.Name) else _dotted(left) if isinstance(left, ast.Attribute) else None
        if name is None:
            continue
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, ast.Constant) and isinstance(right.value, str):
            found.append((name, [right.value]))
        elif isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set)):
            lits = [e.value for e in right.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if lits:
                found.append((name, lits))
    return found


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
