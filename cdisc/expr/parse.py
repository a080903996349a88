"""Parsing and checking of spec expressions (the tokenizer/parser of the language).

The text is tokenised and parsed by :func:`ast.parse` (``mode="eval"``, which only builds a
syntax tree) and the tree is walked against a whitelist of node types, operators and
function names (:class:`_Validator`). Nothing is compiled to code or executed. The
result is an :class:`Expr`; :mod:`cdisc.expr.evaluate` evaluates it on a frame.

Bounds: at most :data:`MAX_LENGTH` characters and :data:`MAX_DEPTH` levels of nesting; no
``__`` anywhere. Every rejection is a :class:`~cdisc.errors.SpecError` that names what was
found, the 1-based character column in the expression, and what is allowed.
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .functions import FUNCTIONS
from .values import _fail, recursion_room

#: Longest expression text accepted, in characters.
MAX_LENGTH = 2000

#: Deepest nesting of the syntax tree accepted (operators, calls, parentheses).
MAX_DEPTH = 500

_ALLOWED = (
    "allowed: column names; literals ('text', 1, 2.5, True, False, None); and, or, not; "
    "==, !=, <, <=, >, >=; in / not in with a tuple or list of literals; + - * / // % ** and "
    "unary -; date + days, date - days, date - date; parentheses; a if condition else b; dotted column names (IT.AETERM); and the functions "
    + ", ".join(sorted(FUNCTIONS))
)

#: Arithmetic operators the parser accepts (symbol per ast node type).
_ARITH_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
                  ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}

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
        from .evaluate import run_expression

        return run_expression(self, frame, self.where)[0]

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
        if type(node.op) not in _ARITH_SYMBOLS:
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
        if name in ("add_months", "add_years"):
            value = _literal_value(args[1])
            if value is not _NOT_LITERAL and value is not None and (isinstance(value, (bool, str)) or value != int(value)):
                self.reject(args[1], f"an {name}() count that is not a whole number",
                            f"call it as {usage} with a whole number or a number column")
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


# Operator and context nodes (Load, Not, Add, Eq, ...) are not levels of an expression.
_NO_POSITION = (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)


def _check_depth(tree: ast.AST, flat: str, lead: int, where: str | None) -> None:
    """Reject a tree nested deeper than :data:`MAX_DEPTH`, naming where (no recursion here)."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            _fail(f"the expression is nested too deeply: more than {MAX_DEPTH} levels at column "
                  f"{_column_of(flat, lead, node)} ('{_segment(flat, node, 30)}')", where,
                  hint="simplify it, e.g. split it into helper variables")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                     if not isinstance(child, _NO_POSITION))


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
        4. Reject a tree deeper than ``MAX_DEPTH`` levels (counted without recursion).
        5. Walk the tree with a whitelist of node types, operators and function names;
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
        _fail(f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed "
              f"(the text from column {MAX_LENGTH + 1} on is too much)",
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
    nul = flat.find("\x00")
    if nul >= 0:
        _fail(f"a NUL character is not allowed in an expression: found at column {nul + lead + 1}",
              where, hint="remove the control character from the spec")
    try:
        tree = ast.parse(flat, mode="eval")
    except SyntaxError as exc:
        if not exc.offset:
            # Python reports no position when the text ends too early ('AVAL **', 'X ==').
            end = len(flat.rstrip()) + 1
            _fail(f"invalid syntax ({exc.msg}: the expression ends too early) at column {end + lead}: "
                  f"in '{text.strip()}'", where, hint=_ALLOWED)
        offset = max(1, min(exc.offset, len(flat)))
        near = flat[offset - 1: offset + 19]
        _fail(f"invalid syntax ({exc.msg}) at column {offset + lead}: near '{near}' in '{text.strip()}'",
              where, hint=_ALLOWED)
    except (ValueError, MemoryError, RecursionError) as exc:
        _fail(f"cannot parse the expression: {exc}", where, hint="simplify it")
    _check_depth(tree, flat, lead, where)
    validator = _Validator(flat, lead, where)
    try:
        with recursion_room(MAX_DEPTH):
            validator.visit(tree)
    except RecursionError:
        _fail("the expression is nested too deeply", where, hint="simplify it")
    return Expr(source=text, names=set(validator.names), where=where, _tree=tree, _flat=flat, _lead=lead)


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
