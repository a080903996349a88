"""Value expressions of the shared language (cdisc.expr.evaluate_value): the expr: rule of
SDTM specs and the value expressions of ADaM specs use this one parser and evaluator."""
from __future__ import annotations

import pandas as pd
import pytest

from cdisc.errors import SpecError
from cdisc.expr import FUNCTION_DOCS, FUNCTIONS, evaluate_filter, evaluate_value, parse


@pytest.fixture
def df():
    return pd.DataFrame({
        "PATNO": ["101-004", "102-011", ""],
        "IT.AETERM": [" Headache ", "rash", None],
        "TEMP": [98.6, 100.4, None],
        "DOSE": [177.80, 12.0, None],
        "AESTDTC": ["2024-03-01", "2024-03", "2024-03-05T10:30"],
        "RFSTDTC": ["2024-02-28", "2024-02-28", "2024-03-05"],
        "SITE": ["101", None, "103"],
    })


def vals(expr, df):
    return [None if pd.isna(v) else v for v in evaluate_value(expr, df).tolist()]


@pytest.mark.parametrize("expr,want", [
    ("substr(PATNO, 1, 3)", ["101", "102", None]),
    ("scan(PATNO, 2, '-')", ["004", "011", None]),
    ("scan(PATNO, -1, '-')", ["004", "011", None]),
    ("concat(SITE, '/', PATNO)", ["101/101-004", "/102-011", "103/"]),
    ("concat('DOSE ', DOSE)", ["DOSE 177.8", "DOSE 12", "DOSE "]),
    ("replace(PATNO, '-', '')", ["101004", "102011", None]),
    ("upper(strip(IT.AETERM))", ["HEADACHE", "RASH", None]),          # a dotted raw column name
    ("lower(IT.AETERM)", [" headache ", "rash", None]),
    ("coalesce(SITE, substr(PATNO, 1, 3))", ["101", "102", "103"]),
    ("text(DOSE)", ["177.8", "12", None]),
    ("round((TEMP - 32) * 5 / 9, 1)", [37.0, 38.0, None]),
    ("round(2.25, 1)", [2.3, 2.3, 2.3]),                                # half away from zero, not to even
    ("TEMP * 2 + 1", [198.2, 201.8, None]),
    ("days_between(RFSTDTC, AESTDTC)", [2.0, None, 0.0]),              # partial date -> missing
    ("study_day(AESTDTC, RFSTDTC)", [3.0, None, 1.0]),
    ("study_day(RFSTDTC, AESTDTC)", [-2.0, None, 1.0]),                # no day 0
    ("add_days(RFSTDTC, 28)", ["2024-03-27", "2024-03-27", "2024-04-02"]),
    ("add_days(RFSTDTC, -1)", ["2024-02-27", "2024-02-27", "2024-03-04"]),
    ("'HIGH' if TEMP > 99 else 'NORMAL'", ["NORMAL", "HIGH", "NORMAL"]),   # missing condition -> else
    ("'Y' if present(SITE) else None", ["Y", None, "Y"]),
    ("'A' if TEMP > 100 else 'B' if TEMP > 98 else 'C'", ["B", "A", "C"]),
    ("length(PATNO)", [7.0, 7.0, None]),
])
def test_value_functions(expr, want, df):
    assert vals(expr, df) == want


def test_dotted_names_in_conditions(df):
    assert evaluate_filter("contains(upper(IT.AETERM), 'RASH')", df).tolist() == [False, True, False]
    assert parse("IT.AETERM == 'x'").names == {"IT.AETERM"}


def test_every_function_documented_with_an_example():
    assert set(FUNCTION_DOCS) == set(FUNCTIONS)
    assert all("`" in doc and "(" in doc for doc in FUNCTION_DOCS.values())


@pytest.mark.parametrize("expr,fragment", [
    ("'A' if TEMP > 1 else 2", "both branches"),
    ("TEMP > 1", "gives true/false"),
    ("scan(PATNO, N, '-')", "whole number literal"),
    ("replace(PATNO, '', 'x')", "non-empty text literal"),
    ("round(TEMP, 1.5)", "whole number literal"),
    ("days_between(TEMP, RFSTDTC)", "not a date"),
    ("IT.AETERM.upper()", "method call"),
    ("PATNO.__class__", "'__' is not allowed"),
])
def test_value_errors_are_spec_errors(expr, fragment, df):
    with pytest.raises(SpecError) as err:
        evaluate_value(expr, df, where="variables[3].expr")
    assert fragment in str(err.value)


def test_number_text_has_no_padding():
    from cdisc.sdtm.functions import number_text

    assert number_text(pd.Series([177.8, 37.0, 2.345]), pd.Series([2, 1, 2])).tolist() == ["177.8", "37", "2.35"]


def test_affine_conversion_f_to_c():
    from cdisc.sdtm.results import standardise

    raw = pd.DataFrame({"__file": ["vs.csv"] * 3, "__row": [2, 3, 4]})
    conv = [{"testcd": "TEMP", "orresu": "F", "stresu": "C", "factor": 5 / 9, "offset": -160 / 9, "decimals": 1}]
    args = dict(conversions=conv, where="t")
    orres, unit, tc = pd.Series(["98.6", "212", "<95"]), pd.Series(["F"] * 3), pd.Series(["TEMP"] * 3)
    stresc, probs = standardise(orres, unit, tc, raw, part="stresc", **args)
    stresn, _ = standardise(orres, unit, tc, raw, part="stresn", **args)
    assert not probs
    assert stresc.tolist() == ["37", "100", "<35"]
    assert stresn.tolist()[:2] == [37.0, 100.0]


def test_near_miss_check_sees_dotted_columns():
    from cdisc.expr import near_misses

    df = pd.DataFrame({"IT.DSDECOD": ["DEATH", "death ", "COMPLETED"]})
    hits = near_misses(parse("IT.DSDECOD == 'DEATH'"), df)
    assert [(c, m.tolist(), lit) for c, m, lit in hits] == [("IT.DSDECOD", [False, True, False], "DEATH")]


def test_adam_value_path_is_the_same_language(df):
    # adam/runner.py evaluates its value expressions with parse(...).evaluate(frame)
    got = parse("concat(substr(PATNO, 1, 3), '-', 'X') if present(SITE) else 'NONE'").evaluate(df)
    assert got.tolist() == ["101-X", "NONE", "-X"]
