"""Our CORE evaluator (validation/core) against CORE's own test cases.

Every rule of cdisc-org/cdisc-open-rules has positive/NN and negative/NN cases: datasets in
CORE's CSV test format and ``results/results.csv`` (Dataset, Record, Variable, Value per
finding and output variable). They are packed in ``tests/core_cases/cases.json.gz`` (see
build_fixture.py). Those baselines were made by a newer CORE engine than the 0.17.1 we must
agree with, so ``core-0.17.1-results.json.gz`` holds what CORE 0.17.1 itself reports on each
case (run_core_oracle.py). A case passes when our findings equal the baseline, or equal CORE
0.17.1's where the baseline differs from CORE 0.17.1 (a baseline we do not reproduce because
the engine that made it behaves differently). Anything else fails. A rule we do not execute
is skipped with its reason, never passed.

The tests use the standards metadata CORE itself used (library-sdtmig-3-4.json.gz, from its
cache); ``test_cdisc_standards_library_agrees`` checks the project's cdisc.standards gives
the same results.
"""
from __future__ import annotations

import gzip
import json
from collections import Counter
from functools import cache, lru_cache
from pathlib import Path

import pandas as pd
import pytest

from cdisc.validation.core import engine
from cdisc.validation.core.catalogue import load_rules
from cdisc.validation.core.engine import FINDING_COLUMNS, Study, csv_rows, run_rule
from cdisc.validation.core.library import JsonLibrary
from cdisc.validation.core.testdata import read_case, read_results

CASES = Path(__file__).parent / "core_cases"


@lru_cache(maxsize=1)
def cases() -> dict:
    with gzip.open(CASES / "cases.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=1)
def core_0171() -> dict:
    with gzip.open(CASES / "core-0.17.1-results.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)["rules"]


@lru_cache(maxsize=1)
def library() -> JsonLibrary:
    return JsonLibrary.load(CASES / "library-sdtmig-3-4.json.gz")


@lru_cache(maxsize=1)
def rules() -> dict:
    return {r.id: r for r in load_rules()}


def _rule_ids() -> list[str]:
    with gzip.open(CASES / "cases.json.gz", "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    return sorted(doc["rules"])


RULE_IDS = _rule_ids()


def run_case(rule, case: dict, lib=None):
    """(status, finding rows, datasets with an execution error) of one rule on one case."""
    datasets = read_case(case["files"])
    findings, status = run_rule(Study(datasets, lib or library()), rule)
    rows = sorted(tuple(r[1:]) for r in csv_rows(pd.DataFrame(findings, columns=FINDING_COLUMNS)))
    return status, rows, sorted(status["errors"])


def expected(case: dict):
    rows = read_results(case.get("results"))
    return (sorted(tuple(r) for r in rows if r[2] != "EXECUTION_ERROR"),
            sorted({r[0] for r in rows if r[2] == "EXECUTION_ERROR"}))


def verdict(rule_id: str, name: str, case: dict, lib=None) -> tuple[str, str]:
    """("expected" | "core-0.17.1" | "not executed" | "FAIL", detail)."""
    rule = rules()[rule_id].with_open_rules_head()  # the baselines were made from the repository's rule.yml
    status, got, errors = run_case(rule, case, lib)
    if status["status"] == "not executed":
        return "not executed", status["reason"]
    exp_rows, exp_errors = expected(case)
    if (got, errors) == (exp_rows, exp_errors):
        return "expected", ""
    core = core_0171().get(rule_id, {}).get(name, {})
    if "rows" in core and (got, errors) == ([tuple(r) for r in core["rows"]], core["errors"]):
        return "core-0.17.1", "the baseline differs from CORE 0.17.1's result; ours equals CORE 0.17.1's"
    extra, missing = sorted(set(got) - set(exp_rows)), sorted(set(exp_rows) - set(got))
    return "FAIL", (f"{name}: {len(got)} rows vs {len(exp_rows)} expected; errors {errors} vs {exp_errors}; "
                    f"only ours {extra[:3]}; only expected {missing[:3]}")


@cache
def rule_verdicts(rule_id: str) -> dict:
    return {name: verdict(rule_id, name, case) for name, case in cases()["rules"][rule_id].items()}


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_cases(rule_id):
    results = rule_verdicts(rule_id)
    failures = [d for v, d in results.values() if v == "FAIL"]
    assert not failures, "\n".join(failures)
    not_executed = {d for v, d in results.values() if v == "not executed"}
    if not_executed:
        pytest.skip("not executed: " + "; ".join(sorted(not_executed)))


def test_rules_as_core_runs_them():
    """The 18 rules whose logic in CORE 0.17.1's cache differs from the repository's rule.yml
    (Group sensitivity, Dataset sensitivity, changed Checks), as our catalogue holds them,
    against CORE 0.17.1 running its own cached form on the same cases."""
    with gzip.open(CASES / "core-0.17.1-engine-form.json.gz", "rt", encoding="utf-8") as fh:
        engine_form = json.load(fh)["rules"]
    assert len(engine_form) == 18
    differ = []
    for rid, by_case in engine_form.items():
        for name, core in by_case.items():
            _, got, errors = run_case(rules()[rid], cases()["rules"][rid][name])
            if (got, errors) != ([tuple(r) for r in core["rows"]], core["errors"]):
                differ.append(f"{rid} {name}: {len(got)} rows vs CORE {len(core['rows'])}")
    assert not differ, differ


def test_agreement_summary():
    """Every rule of the catalogue is executed or reported as not executed with a reason, and
    the case verdicts add up (printed with ``pytest -s``)."""
    catalogue = rules()
    assert len(catalogue) == 430
    reasons = {rid: r.unsupported() for rid, r in catalogue.items() if r.unsupported()}
    assert set(reasons) == {"CORE-000929", "CORE-001081"}, reasons  # both need define.xml
    assert all(reasons.values())


def test_cdisc_standards_library_agrees():
    """The project's cdisc.standards gives the same results as CORE's own metadata on the
    cases of the rules that read the standard (expected/required/model variables, classes)."""
    standards = pytest.importorskip("cdisc.standards")
    from cdisc.validation.core.library import StandardsLibrary

    lib = StandardsLibrary(standards.load_standard("sdtmig", "3.4"))
    ids = ["CORE-000334", "CORE-000355", "CORE-000356", "CORE-000550", "CORE-000575", "CORE-000852",
           "CORE-001082", "CORE-000376", "CORE-001034", "CORE-000272"]
    differ = []
    for rid in ids:
        rule = rules()[rid].with_open_rules_head()
        for name, case in cases()["rules"].get(rid, {}).items():
            a = run_case(rule, case)[1:]
            b = run_case(rule, case, lib)[1:]
            if a != b:
                differ.append(f"{rid} {name}")
    assert not differ, differ


def test_rules_as_data():
    """The catalogue keeps each rule's identity: CDISC/FDA ids, citations, description, outcome."""
    catalogue = rules()
    ids = sorted(catalogue)
    assert ids == sorted(set(ids)) and len(ids) == 430
    with_cg = sum(1 for r in catalogue.values() if any(i.startswith("CG") for i in r.cdisc_ids))
    with_fda = sum(1 for r in catalogue.values() if r.fda_ids)
    assert with_cg >= 340 and with_fda >= 100
    r = catalogue["CORE-000334"]
    assert r.cdisc_ids == ["CG0016"] and r.rule_type == "Variable Metadata Check" and r.sensitivity == "Dataset"
    assert "expected variable" in r.description.lower() and r.message
    assert any(c["document"] for c in r.citations)
    heads = {rid for rid, x in catalogue.items() if x.open_rules_head}
    assert len(heads) == 18 and "CORE-000866" in heads
    assert (Path(engine.__file__).parent / "rules" / "PROVENANCE.md").exists()


def test_split_domains_are_one_domain():
    """LBCH + LBHE are one LB domain (SDTMIG 3.4 section 4.1.7): evaluated once, together, each
    finding naming its own file and record; SUPPLBCH belongs to SUPPLB (a rule as data)."""
    from cdisc.validation.core.catalogue import CoreRule
    from cdisc.validation.core.model import Dataset

    def lb(name, results, start):
        n = len(results)
        return Dataset(name, pd.DataFrame({
            "STUDYID": ["S"] * n, "DOMAIN": ["LB"] * n, "USUBJID": [f"S-{start + i}" for i in range(n)],
            "LBSEQ": [float(start + i) for i in range(n)], "LBTESTCD": ["ALB"] * n, "LBORRES": results}))

    supp = Dataset("SUPPLBCH", pd.DataFrame({"STUDYID": ["S"], "RDOMAIN": ["LB"], "USUBJID": ["S-1"],
                                            "IDVAR": ["LBSEQ"], "IDVARVAL": ["1"], "QNAM": ["X"], "QVAL": ["y"]}))
    rule = CoreRule("TEST-1", {
        "Check": {"all": [{"name": "--ORRES", "operator": "equal_to", "value": "bad", "value_is_literal": True}]},
        "Outcome": {"Message": "--ORRES is bad", "Output Variables": ["--ORRES"]},
        "Rule Type": "Record Data", "Sensitivity": "Record",
        "Scope": {"Classes": {"Include": ["ALL"]}, "Domains": {"Include": ["LB"]}}})
    datasets = {"LBCH": lb("LBCH", ["1", "bad", "2"], 1), "LBHE": lb("LBHE", ["bad", "3"], 10), "SUPPLBCH": supp}
    findings, status = engine.run_core_rules(datasets, library(), rules=[rule])
    assert status.loc[0, "evaluated"] == 1 and status.loc[0, "findings"] == 2
    got = sorted(zip(findings["dataset"], findings["record"].astype(int), findings["seq"].astype(int)))
    assert got == [("LBCH", 2, 2), ("LBHE", 1, 10)]
    assert set(findings["message"]) == {"LBORRES is bad"}
    infos = {i.name: i for i in Study(datasets, library()).infos}
    assert infos["SUPPLBCH"].unsplit_name == "SUPPLB" and infos["LBHE"].unsplit_name == "LB"


def test_result_alignment_like_pandas():
    """CORE combines pandas Series: a one-value result (contains_all) only flags record 1, and
    ``short | full`` differs from ``full | short``."""
    import numpy as np

    from cdisc.validation.core.engine import Result

    full = Result(np.array([False, True, True]), None)
    short = Result.of(pd.Series([True]), 3)
    assert (short | full).mask().tolist() == [True, False, False]
    assert (full | short).mask().tolist() == [True, True, True]
    assert (full & short).mask().tolist() == [False, False, False]
    assert (True & short).mask().tolist() == [True, False, False]
    assert (~short).mask().tolist() == [False, False, False]


def baseline_difference(rule_id: str, name: str) -> str:
    """Why an open-rules baseline differs from CORE 0.17.1's own result on a case (heuristic)."""
    case = cases()["rules"][rule_id][name]
    exp, exp_err = expected(case)
    core = core_0171()[rule_id][name]
    got, errs = [tuple(r) for r in core["rows"]], core["errors"]
    version = case.get("env", {}).get("VERSION", "3-4")
    if case.get("results") is None:
        return "the case has no results.csv"
    if name.startswith("positive") and exp and not got:
        return "positive case whose results.csv lists findings"
    if name.startswith("negative") and not exp and not exp_err and got:
        return "negative case whose results.csv is empty"
    if exp_err != errs:
        return "execution errors differ"
    if sorted((a, b, c, "" if v == "null" else v) for a, b, c, v in exp) == got:
        return "the newer engine writes null values as 'null'"
    if {r[1] for r in got} == {""} and {r[1] for r in exp} != {""}:
        return "the newer engine lists every record of a Dataset-sensitivity finding"
    if sorted((r[0], r[2], r[3]) for r in exp) == sorted((r[0], r[2], r[3]) for r in got):
        return "record numbers differ"
    if sorted(r[1:] for r in exp) == sorted(r[1:] for r in got):
        return "split dataset named by its domain, not its file"
    if {(r[0], r[1]) for r in exp} == {(r[0], r[1]) for r in got}:
        return "same records, different output variables or values"
    if version != "3-4":
        return f"case made for SDTMIG {version} (CORE 0.17.1 here runs with SDTMIG 3.4 metadata)"
    return "different records"


def test_verdicts_count(capsys):
    """The agreement table of the whole suite (rules, cases, and why baselines differ from
    CORE 0.17.1; printed with -s)."""
    by_case = Counter()
    by_rule = Counter()
    reasons: dict[str, set] = {}
    for rid in RULE_IDS:
        vs = {v for v, _ in rule_verdicts(rid).values()}
        by_case.update(v for v, _ in rule_verdicts(rid).values())
        by_rule["FAIL" if "FAIL" in vs else "not executed" if "not executed" in vs else
                "core-0.17.1" if "core-0.17.1" in vs else "expected"] += 1
        for name, (v, _) in rule_verdicts(rid).items():
            if v == "core-0.17.1":
                reasons.setdefault(baseline_difference(rid, name), set()).add(rid)
    with capsys.disabled():
        print(f"\nCORE test cases: rules {dict(by_rule)}; cases {dict(by_case)}")
        for why, ids in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
            print(f"  baseline differs from CORE 0.17.1 ({len(ids)} rules): {why}: {', '.join(sorted(ids))}")
    assert by_rule["FAIL"] == 0


def test_xpt_folder(tmp_path):
    """XPT files read as CORE reads them (blanks "", numbers float, pyreadstat's variable
    metadata); a dataset-level finding: Expected variables missing (CORE-000334)."""
    import pyreadstat

    from cdisc.validation.core.xpt import read_xpt_folder

    ae = pd.DataFrame({"STUDYID": ["S", "S"], "DOMAIN": ["AE", "AE"], "USUBJID": ["S-1", "S-2"],
                       "AESEQ": [1.0, 2.0], "AETERM": ["Headache", ""], "AEDECOD": ["Headache", "Nausea"]})
    pyreadstat.write_xport(ae, str(tmp_path / "ae.xpt"), file_label="Adverse Events", table_name="AE")
    datasets = read_xpt_folder(tmp_path)
    assert datasets["AE"].frame["AETERM"].tolist() == ["Headache", ""]
    assert [v.type for v in datasets["AE"].variables][:4] == ["Char", "Char", "Char", "Num"]
    findings, _ = engine.run_core_rules(datasets, library(), rule_ids=["CORE-000334"])
    f334 = findings[findings.core_id == "CORE-000334"]
    assert len(f334) == 1 and pd.isna(f334.iloc[0]["record"]) and f334.iloc[0]["dataset"] == "AE"
    expected_vars = dict(zip(f334.iloc[0]["variables"], f334.iloc[0]["values"]))["$expected_variables"]
    assert "AESER" in expected_vars and "AESTDTC" in expected_vars


def test_row_codes_number_combinations_in_order_of_first_appearance():
    """grouping.row_codes (group keys of is_unique_set, is_inconsistent_across_dataset): one
    code per distinct combination, numbered by first appearance, nulls one value per column;
    equal to renumbering after every column, also when the combined key would pass int64
    (five columns of 20,000 distinct values: 3.2e21 combinations) and is renumbered on the way."""
    import numpy as np

    from cdisc.validation.core.grouping import codes as _codes, row_codes as _row_codes

    def renumbered(df):
        key = np.zeros(len(df), np.int64)
        for c in df.columns:
            codes = _codes(df[c])
            key = key * (int(codes.max()) + 1) + codes
            key = pd.factorize(key)[0].astype(np.int64)
        return key

    small = pd.DataFrame({"A": ["x", "y", None, "x", np.nan, "y"], "B": [1.0, 2.0, np.nan, 1.0, np.nan, 3.0]})
    assert _row_codes(small, ["A", "B"]).tolist() == [0, 1, 2, 0, 2, 3]
    rng = np.random.default_rng(7)
    n = 60_000
    wide = pd.DataFrame({f"C{i}": rng.integers(0, 20_000, n).astype(str) for i in range(5)})
    wide.iloc[::7, 0] = None
    got = _row_codes(wide, list(wide.columns))
    assert np.array_equal(got, renumbered(wide))
    assert got.max() + 1 == len(wide.drop_duplicates())


def test_group_lookup_equals_pandas_where_nothing_or_only_nulls_match():
    """grouping.group_rows (each record's group in a grouped operation's result) gives what
    the MultiIndex / Index lookup it replaced gives, also when no key matches any record (another
    dataset's subjects only: this raised IndexError once), when the records' column is all null,
    and for one object column holding None where the keys hold NaN."""
    import numpy as np

    from cdisc.validation.core.grouping import group_rows as _group_rows, group_rows_pandas as _group_rows_pandas

    cases = [
        (pd.DataFrame({"USUBJID": ["S-2"]}), pd.DataFrame({"USUBJID": ["S-1", "S-1"]})),
        (pd.DataFrame({"USUBJID": pd.Series([], dtype=object)}), pd.DataFrame({"USUBJID": ["S-1"]})),
        (pd.DataFrame({"A": ["x"], "B": [1.0]}), pd.DataFrame({"A": [None, None], "B": [np.nan, np.nan]})),
        (pd.DataFrame({"A": ["x", np.nan]}), pd.DataFrame({"A": pd.Series(["x", None, "x"], dtype=object)})),
        (pd.DataFrame({"A": ["x", np.nan], "B": [1.0, np.nan]}),
         pd.DataFrame({"A": pd.Series(["x", None, "y"], dtype=object), "B": [1.0, np.nan, 1.0]})),
    ]
    for keys, frame in cases:
        cols = list(keys.columns)
        assert _group_rows(keys, frame, cols).tolist() == _group_rows_pandas(keys, frame, cols).tolist(), (keys, frame)


def test_a_grouped_operation_on_another_datasets_subjects_only():
    """CORE-000717 reads DS per subject: an AE subject with no DS record is no error of ours."""
    case = read_case({
        "_datasets.csv": "Filename,Dataset Name,Label\nae,AE,Adverse Events\nds,DS,Disposition\ndm,DM,Demographics\n",
        "ae.csv": "STUDYID,DOMAIN,USUBJID,AESEQ,AETERM,AESTDTC\nS,AE,S-1,1,HEADACHE,2020-01-02\n",
        "ds.csv": "STUDYID,DOMAIN,USUBJID,DSSEQ,DSDECOD,DSSTDTC\nS,DS,S-2,1,COMPLETED,2020-02-01\n",
        "dm.csv": "STUDYID,DOMAIN,USUBJID\nS,DM,S-1\nS,DM,S-2\n",
    })
    from cdisc.validation.core import from_cdisc_standards
    from cdisc.validation.core.engine import run_core_rules

    findings, status = run_core_rules(case, from_cdisc_standards(), rules=[rules()["CORE-000717"]])
    assert status["status"].tolist() == ["executed"] and status["dataset_status"][0]["AE"] == "success"
