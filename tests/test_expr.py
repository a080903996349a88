"""Tests for cdisc.expr, the safe expression language for spec filters and conditions.

Every expected mask below was worked out by hand from FRAME; the working is in the
comment next to each case (rows are numbered 0..4).
"""
from __future__ import annotations

import ast
import builtins

import numpy as np
import pandas as pd
import pytest

from cdisc.errors import SpecError
from cdisc.expr import MAX_LENGTH, Expr, evaluate_filter, parse

NaN = np.nan
WHERE = "datasets.AE.filter"


def make_frame(text_dtype: str = "str") -> pd.DataFrame:
    """Five records covering present, None, NaN, empty and blank values."""
    def text(values):
        return pd.Series(values, dtype=text_dtype)

    return pd.DataFrame({
        "USUBJID": text(["S1", "S2", "S3", "S4", "S5"]),
        "RECSTATUS": text(["Deleted", None, "", "Active", " "]),        # missing: 1, 2, 4
        "AESER": text(["Y", "Y", "N", None, "Y"]),
        "AETOXGR": text(["3", "2", "4", "5", None]),
        "AVAL": [1.0, NaN, 3.0, 4.0, 0.0],
        "BASE": [1.0, 2.0, 3.0, 10.0, 0.0],
        "CNSR": np.array([0, 1, 0, 0, 1], dtype="int64"),
        "PARAMCD": text(["OS", "OS", "PFS", "OS", None]),
        "ADT": pd.to_datetime(["2024-01-01", None, "2024-02-01", "2024-03-01", "2023-12-31"]),
        "TRTSDT": pd.to_datetime(["2024-01-01"] * 5),
        "AEENDTC": text(["2024-01-05", "2024-01", "", None, "2024-02-30"]),
        "LBTESTCD": text(["CD7", "CD7P", "cd7", "HGB", None]),
        "OVRLRESP": text(["cr", "CRh", "PR", None, " CR"]),
        "DTHDTC": text([None, "2024-05-01", "", None, "2024-06-01"]),
    })


FRAME = make_frame()

T, F = True, False

ALLOWED_CASES = [
    # != keeps missing: Deleted F; None, '', ' ' are missing -> T; Active T
    ("RECSTATUS != 'Deleted'", [F, T, T, T, T]),
    ("RECSTATUS == 'Deleted'", [T, F, F, F, F]),
    # AESER=='Y': rows 0,1,4; AETOXGR in 3/4/5: rows 0,2,3 -> only row 0
    ("AESER == 'Y' and AETOXGR in ('3','4','5')", [T, F, F, F, F]),
    # AESER=='N': row 2; AETOXGR=='5': row 3
    ("AESER == 'N' or AETOXGR in ('5',)", [F, F, T, T, F]),
    # AEENDTC: '2024-01-05', '2024-01', '', None, '2024-02-30' -> '' and None missing
    ("missing(AEENDTC)", [F, F, T, T, F]),
    ("present(AEENDTC)", [T, T, F, F, T]),
    # PARAMCD OS: 0,1,3; CNSR==0: 0,2,3 -> 0,3
    ("PARAMCD == 'OS' and CNSR == 0", [T, F, F, T, F]),
    # upper: CR, CRH, PR, NaN, ' CR' (leading blank kept) -> 0,1
    ("upper(OVRLRESP) in ('CR','CRH','CRI')", [T, T, F, F, F]),
    ("upper(strip(OVRLRESP)) in ('CR','CRH','CRI')", [T, T, F, F, T]),
    # ADT vs 2024-01-01: equal T, NaT F, Feb T, Mar T, 2023-12-31 F
    ("ADT >= TRTSDT", [T, F, T, T, F]),
    # AVAL vs BASE/2: 1>0.5 T, NaN F, 3>1.5 T, 4>5 F, 0>0 F
    ("AVAL > 0.5 * BASE", [T, F, T, F, F]),
    # DTHDTC present: rows 1, 4 ('' is missing)
    ("not present(DTHDTC)", [T, F, T, T, F]),
    ("startswith(LBTESTCD, 'CD7')", [T, T, F, F, F]),
    ("endswith(LBTESTCD, '7')", [T, F, T, F, F]),
    ("contains(LBTESTCD, 'D7')", [T, T, F, F, F]),
    # '.' is literal text, not a regex wildcard: no value contains a dot
    ("contains(AEENDTC, '.')", [F, F, F, F, F]),
    ("lower(LBTESTCD) == 'cd7'", [T, F, T, F, F]),
    # lengths 3, 4, 3, 3, missing
    ("length(LBTESTCD) == 3", [T, F, T, T, F]),
    # coalesce(AVAL, BASE) = 1, 2, 3, 4, 0
    ("coalesce(AVAL, BASE) >= 2", [F, T, T, T, F]),
    ("coalesce(RECSTATUS, AESER, 'X') == 'Y'", [F, T, F, F, T]),
    # number(AETOXGR) = 3, 2, 4, 5, NaN
    ("number(AETOXGR) >= 4", [F, F, T, T, F]),
    # date(AEENDTC): 2024-01-05 ok; '2024-01' partial, '', None, 2024-02-30 invalid -> NaT
    ("date(AEENDTC) >= '2024-01-01'", [T, F, F, F, F]),
    ("missing(date(AEENDTC))", [F, T, T, T, T]),
    ("date(AEENDTC) > ADT", [T, F, F, F, F]),
    # substr 1-based like SAS: USUBJID char 2 = 1..5
    ("substr(USUBJID, 2, 1) == '3'", [F, F, T, F, F]),
    ("substr(LBTESTCD, 1, 2) == 'CD'", [T, T, F, F, F]),
    ("substr(LBTESTCD, 3) == '7P'", [F, T, F, F, F]),
    # past the end: CD7 -> '' (missing), CD7P -> 'P', cd7 -> '', HGB -> '', None
    ("missing(substr(LBTESTCD, 4, 2))", [T, F, T, T, T]),
    ("isin_list(AETOXGR, '2', '5')", [F, T, F, T, F]),
    ("isin_list(AETOXGR, ('2', '5'))", [F, T, F, T, F]),
    # not in keeps missing: 3 F, 2 T, 4 F, 5 T, None T
    ("AETOXGR not in ('3', '4')", [F, T, F, T, T]),
    ("PARAMCD in ['OS']", [T, T, F, T, F]),
    # AVAL-BASE = 0, NaN, 0, -6, 0
    ("AVAL - BASE == 0", [T, F, T, F, T]),
    ("AVAL - BASE in (-6, 0)", [T, F, T, T, T]),
    ("AVAL + 1 == 2", [T, F, F, F, F]),
    # AVAL/BASE = 1, NaN, 1, 0.4, 0/0 -> missing
    ("AVAL / BASE > 0.5", [T, F, T, F, F]),
    # -AVAL = -1, NaN, -3, -4, -0
    ("-AVAL < -2", [F, F, T, T, F]),
    # BASE/CNSR = 1/0, 2/1, 3/0, 10/0, 0/1 -> division by zero is missing
    ("missing(BASE / CNSR)", [T, F, T, T, F]),
    # chained: 1 <= AVAL and AVAL < 4 -> 1 T, NaN F, 3 T, 4 F, 0 F
    ("1 <= AVAL < 4", [T, F, T, F, F]),
    # (Y or N): 0,1,2,4; CNSR==1: 1,4
    ("(AESER == 'Y' or AESER == 'N') and CNSR == 1", [F, T, F, F, T]),
    ("not (AESER == 'Y')", [F, F, T, T, F]),
    ("CNSR != 0", [F, T, F, F, T]),
    ("CNSR == 1.0", [F, T, F, F, T]),
    ("True", [T, T, T, T, T]),
    ("False", [F, F, F, F, F]),
    ("2 * 3 == 6 and AESER == \"Y\"", [T, T, F, F, T]),
    ("ADT in ('2024-01-01', '2024-03-01')", [T, F, F, T, F]),
    ("ADT < '2024-01-01T12:00'", [T, F, F, F, T]),
]


@pytest.mark.parametrize("text,expected", ALLOWED_CASES, ids=[c[0] for c in ALLOWED_CASES])
def test_allowed_construct(text, expected):
    mask = evaluate_filter(text, FRAME, where=WHERE)
    assert mask.dtype == bool
    assert mask.tolist() == expected


@pytest.mark.parametrize("text,expected", ALLOWED_CASES, ids=[c[0] for c in ALLOWED_CASES])
def test_object_dtype_gives_same_masks(text, expected):
    # The same data held in object columns (pre-pandas-3 style) must filter identically.
    assert evaluate_filter(text, make_frame("object")).tolist() == expected


def test_result_is_aligned_to_frame_index():
    frame = FRAME.set_axis([10, 30, 20, 50, 40])
    mask = evaluate_filter("AESER == 'Y'", frame)
    assert mask.index.tolist() == [10, 30, 20, 50, 40]
    assert mask.tolist() == [T, T, F, F, T]
    # frame.loc with the mask works without realignment surprises
    assert frame.loc[mask, "USUBJID"].tolist() == ["S1", "S2", "S5"]


def test_evaluate_returns_values_not_only_masks():
    expr = parse("AVAL * 2 + 1")
    # 1*2+1=3, NaN, 7, 9, 1
    out = expr.evaluate(FRAME)
    assert out.tolist()[0] == 3.0 and np.isnan(out.tolist()[1]) and out.tolist()[2:] == [7.0, 9.0, 1.0]
    # upper() of text; blank text is missing
    assert parse("upper(RECSTATUS)").evaluate(FRAME).isna().tolist() == [F, T, T, F, T]
    # a constant is broadcast to the frame
    assert parse("1 + 2").evaluate(FRAME).tolist() == [3.0] * 5


def test_names_are_columns_not_functions():
    expr = parse("AESER == 'Y' and upper(OVRLRESP) in ('CR',) or missing(AEENDTC)", where=WHERE)
    assert isinstance(expr, Expr)
    assert expr.names == {"AESER", "OVRLRESP", "AEENDTC"}
    assert expr.source == "AESER == 'Y' and upper(OVRLRESP) in ('CR',) or missing(AEENDTC)"


def test_expr_object_and_where_default():
    expr = parse("AESER == 'Y'", where="a.b")
    assert evaluate_filter(expr, FRAME).tolist() == [T, T, F, F, T]
    with pytest.raises(SpecError) as err:
        evaluate_filter(parse("NOPE == 1", where="a.b"), FRAME)
    assert err.value.problems[0].key == "a.b"
    with pytest.raises(SpecError) as err:
        evaluate_filter(parse("NOPE == 1", where="a.b"), FRAME, where="c.d")
    assert err.value.problems[0].key == "c.d"


def test_multiline_and_leading_blanks():
    # YAML block scalars keep line breaks.
    assert evaluate_filter("  AESER == 'Y'\n  and CNSR == 1\n", FRAME).tolist() == [F, T, F, F, T]


# ---------------------------------------------------------------------------
# missing-value semantics
# ---------------------------------------------------------------------------


def test_missing_is_unequal_to_everything_including_itself():
    # RECSTATUS: Deleted, None, '', Active, ' ' -> rows 1, 2, 4 missing
    assert evaluate_filter("RECSTATUS == RECSTATUS", FRAME).tolist() == [T, F, F, T, F]
    assert evaluate_filter("RECSTATUS != RECSTATUS", FRAME).tolist() == [F, T, T, F, T]
    assert evaluate_filter("RECSTATUS != 'Active'", FRAME).tolist() == [T, T, T, F, T]


def test_missing_is_neither_less_nor_greater():
    # AVAL row 1 is NaN: every ordering is False there
    assert evaluate_filter("AVAL < 100", FRAME).tolist() == [T, F, T, T, T]
    assert evaluate_filter("AVAL >= -100", FRAME).tolist() == [T, F, T, T, T]
    assert evaluate_filter("AVAL in (1, 3, 4, 0)", FRAME).tolist() == [T, F, T, T, T]
    # ...while 'not in' keeps it
    assert evaluate_filter("AVAL not in (1, 3, 4, 0)", FRAME).tolist() == [F, T, F, F, F]
    # text ordering: None, '' and ' ' are missing
    assert evaluate_filter("RECSTATUS < 'Z'", FRAME).tolist() == [T, F, F, T, F]
    # dates: ADT row 1 is NaT
    assert evaluate_filter("ADT <= '2030-01-01'", FRAME).tolist() == [T, F, T, T, T]


def test_arithmetic_with_missing_is_missing():
    # AVAL + BASE = 2, NaN, 6, 14, 0
    assert evaluate_filter("missing(AVAL + BASE)", FRAME).tolist() == [F, T, F, F, F]


def test_boolean_column_with_missing_uses_kleene_logic():
    frame = pd.DataFrame({
        "FL": pd.array([True, None, False, None], dtype="boolean"),
        "N": [1, 1, 1, 2],
    })
    # NA row is neither selected by FL nor by not FL (unknown -> False)
    assert evaluate_filter("FL", frame).tolist() == [T, F, F, F]
    assert evaluate_filter("not FL", frame).tolist() == [F, F, T, F]
    # NA or True = True; NA and True = NA -> False
    assert evaluate_filter("FL or N == 1", frame).tolist() == [T, T, T, F]
    assert evaluate_filter("FL and N == 1", frame).tolist() == [T, F, F, F]
    assert evaluate_filter("missing(FL)", frame).tolist() == [F, T, F, T]
    assert evaluate_filter("FL == True", frame).tolist() == [T, F, F, F]
    assert evaluate_filter("FL != True", frame).tolist() == [F, T, T, T]


def test_all_missing_column():
    frame = pd.DataFrame({"X": pd.Series([None, None], dtype=object), "N": [1.0, 2.0]})
    assert evaluate_filter("missing(X)", frame).tolist() == [T, T]
    assert evaluate_filter("X == 'A'", frame).tolist() == [F, F]
    assert evaluate_filter("X != 'A'", frame).tolist() == [T, T]
    assert evaluate_filter("X in ('A',)", frame).tolist() == [F, F]
    assert evaluate_filter("coalesce(X, 'B') == 'B'", frame).tolist() == [T, T]


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------


def test_numeric_categorical_and_object_dtypes():
    frame = pd.DataFrame({
        "I": pd.array([1, None, 3, 0], dtype="Int64"),
        "C": pd.Categorical(["x", "y", None, "x"]),
        "ON": pd.Series([1, None, 2.5, 0], dtype=object),
        "OB": pd.Series([True, None, False, True], dtype=object),
        "M": pd.Series([1, "a", None, " "], dtype=object),
        "D": pd.Series(pd.to_datetime(["2024-01-01", None, "2024-06-01", "2025-01-01"]), dtype="datetime64[s]"),
    })
    # I: 1, NA, 3, 0
    assert evaluate_filter("I > 0", frame).tolist() == [T, F, T, F]
    assert evaluate_filter("I != 1", frame).tolist() == [F, T, T, T]
    # C: x, y, NaN, x
    assert evaluate_filter("C == 'x'", frame).tolist() == [T, F, F, T]
    assert evaluate_filter("C != 'x'", frame).tolist() == [F, T, T, F]
    # ON: 1, None, 2.5, 0
    assert evaluate_filter("ON >= 1", frame).tolist() == [T, F, T, F]
    assert evaluate_filter("OB", frame).tolist() == [T, F, F, T]
    # mixed object column: equality works, blanks are missing
    assert evaluate_filter("M == 1", frame).tolist() == [T, F, F, F]
    assert evaluate_filter("M == 'a'", frame).tolist() == [F, T, F, F]
    assert evaluate_filter("missing(M)", frame).tolist() == [F, F, T, T]
    # D (second resolution) vs a literal and vs a microsecond column
    assert evaluate_filter("D > '2024-03-01'", frame).tolist() == [F, F, T, T]
    frame["E"] = pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01"])
    assert evaluate_filter("D == E", frame).tolist() == [T, F, F, F]


# ---------------------------------------------------------------------------
# errors at evaluation time
# ---------------------------------------------------------------------------


def _spec_error(text, frame=FRAME):
    with pytest.raises(SpecError) as err:
        evaluate_filter(text, frame, where=WHERE)
    problem = err.value.problems[0]
    assert problem.key == WHERE
    return problem, str(err.value)


@pytest.mark.parametrize("text,column", [
    ("AETOXGR == 3", "AETOXGR"),
    ("AVAL == '1'", "AVAL"),
    ("AETOXGR in (3, 4)", "AETOXGR"),
    ("3 < AETOXGR", "AETOXGR"),
])
def test_text_vs_number_names_column_and_both_types(text, column):
    problem, message = _spec_error(text)
    assert problem.column == column
    assert column in message and "text" in message and "number" in message


def test_type_errors_in_functions_and_operators():
    _, msg = _spec_error("upper(AVAL) == 'A'")
    assert "upper() needs text" in msg and "AVAL" in msg
    _, msg = _spec_error("AVAL + AESER > 1")
    assert "'+' works on numbers only" in msg and "AESER" in msg and "number(AESER)" in msg
    _, msg = _spec_error("ADT > AEENDTC")
    assert "date(AEENDTC)" in msg
    _, msg = _spec_error("ADT > '2024-01'")
    assert "'2024-01' is not a complete ISO 8601 date" in msg
    _, msg = _spec_error("(AVAL > 1) < (BASE > 1)")
    assert "cannot order true/false" in msg
    _, msg = _spec_error("date(AVAL) > ADT")
    assert "date() needs ISO 8601 text" in msg


@pytest.mark.parametrize("text,fragment", [
    ("AVAL", "'AVAL' gives a number"),
    ("upper(AESER)", "gives text"),
    ("AESER and CNSR == 0", "'and' needs true/false"),
    ("not AVAL", "'not' needs true/false"),
])
def test_non_boolean_condition_is_a_spec_error(text, fragment):
    _, msg = _spec_error(text)
    assert fragment in msg


def test_unknown_column_lists_close_match():
    problem, msg = _spec_error("AESR == 'Y'")
    assert problem.column == "AESR"
    assert "unknown column 'AESR'" in msg and "did you mean AESER" in msg
    # case differences are found too
    _, msg = _spec_error("aeser == 'Y'")
    assert "did you mean AESER" in msg
    # every unknown column is reported at once
    with pytest.raises(SpecError) as err:
        evaluate_filter("AESR == 'Y' and PARMCD == 'OS'", FRAME, where=WHERE)
    assert [p.column for p in err.value.problems] == ["AESR", "PARMCD"]
    assert "PARAMCD" in err.value.problems[1].hint


# ---------------------------------------------------------------------------
# rejected syntax
# ---------------------------------------------------------------------------

REJECTED = [
    ("__import__('os')", "'__' is not allowed"),
    ("x.__class__", "'__' is not allowed"),
    ("X == 'a__b'", "'__' is not allowed"),
    ("open('f')", "function 'open'"),
    ("eval('1')", "function 'eval'"),
    ("getattr(X, 'y')", "function 'getattr'"),
    ("[1][0]", "indexing / subscript"),
    ("X[0] == 'A'", "indexing / subscript"),
    ("lambda: 1", "lambda"),
    ("'a'.upper == 'A'", "attribute access"),   # a dotted name is a column only when it starts with a name
    ("f'{X}' == 'A'", "f-string"),
    ("X.startswith('a')", "startswith(x, ...) instead of x.startswith(...)"),
    ("X.upper() == 'A'", "upper(x, ...) instead of x.upper(...)"),
    ("X[0].y == 1", "attribute access"),
    ("substr(X, start=1)", "keyword argument 'start'"),
    ("coalesce(*X)", "starred argument"),
    ("(y := 1)", "assignment expression"),
    ("[x for x in X]", "list comprehension"),
    ("any(x for x in X)", "function 'any'"),
    ("{1: 2}", "dict literal"),
    ("{1}", "set literal"),
    ("(1, 2)", "a tuple outside"),
    ("X is None", "'is'"),
    ("X is not None", "'is not'"),
    ("X == None", "comparing with None or a blank text"),
    ("None != X", "comparing None or a blank text"),
    ("X == ''", "comparing with None or a blank text"),
    ("X in ('A', None)", "None or a blank text in an 'in' list"),
    ("X in ('A')", "'in' with something other than a tuple"),
    ("X in Y", "'in' with something other than a tuple"),
    ("X in (Y,)", "non-literal item"),
    ("X in (1,) == Y", "chained comparison with 'in'"),
    # ** % // are arithmetic since issue 14 (tests/test_expr_arith.py); these stay out:
    ("X @ Y", "operator '@'"),
    ("X << 2 == 0", "operator '<<'"),
    ("X ^ 2 == 0", "operator '^'"),
    ("X & Y", "use 'and' / 'or'"),
    ("~X", "use 'not'"),
    ("+X > 1", "unary operator '+'"),
    ("upper(X)(1)", "calling something that is not a function name"),
    ("upper(X, Y)", "upper() with 2 arguments"),
    ("missing()", "missing() with 0 arguments"),
    ("coalesce(X)", "coalesce() with 1 argument"),
    ("startswith(X, Y)", "non-text second argument"),
    ("substr(X, 0, 2) == 'A'", "start/length that is not a whole number literal"),
    ("substr(X, 1.5) == 'A'", "start/length that is not a whole number literal"),
    ("substr(X, 1, N) == 'A'", "start/length that is not a whole number literal"),
    ("X == b'A'", "bytes literal"),
    ("X == 1j", "complex literal"),
    ("X == ...", "ellipsis literal"),
    ("AESER ==", "invalid syntax"),
    ("AESER == 'Y'; import os", "invalid syntax"),
    ("import os", "invalid syntax"),
]


@pytest.mark.parametrize("text,fragment", REJECTED, ids=[r[0] for r in REJECTED])
def test_rejected_construct(text, fragment):
    with pytest.raises(SpecError) as err:
        parse(text, where=WHERE)
    problem = err.value.problems[0]
    assert problem.key == WHERE
    message = str(err.value)
    assert fragment in message
    assert "at column" in message
    # every rejection says what is allowed
    assert "allowed:" in message and "startswith" in message


@pytest.mark.parametrize("text,column,token", [
    # "AESER == 'Y' and " is 17 characters -> open( starts at column 18
    ("AESER == 'Y' and open('f')", 18, "open('f')"),
    # 'é' is one character (two UTF-8 bytes): "X == 'é' and " is 13 characters
    ("X == 'é' and open('f')", 14, "open('f')"),
    # two leading blanks
    ("  open('f')", 3, "open('f')"),
    # a line break counts as one character
    ("AESER == 'Y'\nand LBTESTCD.startswith('CD7')", 18, "LBTESTCD.startswith('CD7')"),
    # '__' is located in the raw text
    ("AESER == 'Y' or x.__class__", 19, "__class__"),
])
def test_rejection_names_position_and_token(text, column, token):
    with pytest.raises(SpecError) as err:
        parse(text, where=WHERE)
    message = str(err.value)
    assert f"at column {column}" in message
    assert token in message


def test_length_limit_and_bad_input():
    long_text = " or ".join(["AESER == 'Y'"] * 200)
    assert len(long_text) > MAX_LENGTH
    with pytest.raises(SpecError, match="at most 2000"):
        parse(long_text, where=WHERE)
    ok_text = " or ".join(["AESER == 'Y'"] * 120)     # 120*12 + 119*4 = 1916 characters
    assert len(ok_text) == 1916
    assert evaluate_filter(ok_text, FRAME).tolist() == [T, T, F, F, T]
    for bad in ("", "   ", None, 5):
        with pytest.raises(SpecError) as err:
            parse(bad, where=WHERE)
        assert err.value.problems[0].key == WHERE


def test_deep_nesting_is_a_spec_error_not_a_crash():
    with pytest.raises(SpecError):
        parse("(" * 300 + "X" + ")" * 300, where=WHERE)
    with pytest.raises(SpecError, match="nested too deeply"):
        parse("-" * 1990 + "AVAL > 0", where=WHERE)
    # 451 nested 'not' is deep but fine: odd count -> negation of X
    frame = pd.DataFrame({"X": [True, False]})
    assert evaluate_filter("not " * 451 + "X", frame).tolist() == [F, T]


def test_no_eval_or_exec_and_compile_only_builds_an_ast(monkeypatch):
    """User text is only ever parsed to an AST (PyCF_ONLY_AST), never compiled to code."""
    real_compile = builtins.compile
    calls = []

    def guarded_compile(source, filename, mode, flags=0, *args, **kwargs):
        calls.append(flags)
        assert flags & ast.PyCF_ONLY_AST, "user text compiled to code"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(*_args, **_kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "compile", guarded_compile)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    mask = evaluate_filter("AESER == 'Y' and number(AETOXGR) > 2", FRAME)
    # AESER Y: 0,1,4; number(AETOXGR) > 2: 0 (3), 2 (4), 3 (5) -> row 0
    assert mask.tolist() == [T, F, F, F, F]
    assert calls and all(f & ast.PyCF_ONLY_AST for f in calls)
