"""GE suites generated from metadata: clean build silent, each injected defect -> its rule/row.

Great Expectations is slow to import, so the module shares GE runs through module-scoped
fixtures: one run on the clean sample build, two identical runs on one defective copy
that carries one defect per suite check in different records/datasets.
"""
from __future__ import annotations

import json

import pandas as pd
import pyreadstat
import pytest

from cdisc.validation import load_rules, validate_build, validate_datasets
from cdisc.validation.sample import S1, S2, S3, sample_build
from cdisc.validation.suites import ge_frame, suite_json, suite_specs

LONG = "X" * 250


def defective_build():
    data, metas, ct = sample_build()
    ex, ae, adrs, supp, ts, adtte = (data[k] for k in ("EX", "AE", "ADRS", "SUPPAE", "TS", "ADTTE"))
    ex.loc[0, "EXENDTC"] = "2023-01-20T25:00"                   # EX 1: hour 25 (ISO 8601)
    ex.loc[1, ["EXSTDTC", "EXSTDY"]] = ["2023-01-20", 1.0]      # EX 2: same key as EX 1
    ex.loc[1, "EXROUTE"] = "INTRAVENOUS DRIP"                  # EX 2: outside extensible ROUTE
    ae.loc[0, "AESEV"] = "VERY BAD"                            # AE 1: outside non-extensible AESEV
    data["AE"] = ae.drop(columns=["AESER"])                    # Exp variable missing
    adrs.loc[0, "ASEQ"] = 0.0                                  # ADRS 1: ASEQ not positive
    adrs.loc[4, "ASEQ"] = 1.0                                  # ADRS 5: duplicates ADRS 4 (002, ASEQ 1)
    supp.loc[1, "QVAL"] = ""                                   # SUPPAE 2: Req blank
    ts.loc[ts["TSPARMCD"] == "TITLE", "TSVAL"] = LONG          # TS 7: > 200 bytes
    data["TS"] = ts.drop(columns=["TSPARM"])                   # Req variable missing
    adtte.loc[2, "CNSDTDSC"] = "LAST KNOWN ALIVE \u2013 DATE"   # ADTTE 3: not ASCII
    adtte["AVAL"] = adtte["AVAL"].astype("int64").astype(str)   # Num column as text
    data["ADSL"] = pd.concat([data["ADSL"], data["ADSL"].iloc[[1]]], ignore_index=True)
    return data, metas, ct


KEY_EX = "STUDYID,USUBJID,EXTRT,EXSTDTC"
EXPECTED = {
    ("CDISC-DS-001", "TS", None, None, "TSPARM"),
    ("CDISC-DS-002", "SUPPAE", 2, S1, "QVAL"),
    ("CDISC-DS-003", "AE", None, None, "AESER"),
    ("CDISC-DS-004", "AE", 1, S1, "AESEV"),
    ("CDISC-DS-005", "EX", 2, S1, "EXROUTE"),
    ("CDISC-DS-006", "EX", 1, S1, "EXENDTC"),
    ("CDISC-DS-007", "EX", 1, S1, KEY_EX),
    ("CDISC-DS-007", "EX", 2, S1, KEY_EX),
    ("CDISC-DS-007", "ADSL", 2, S2, "STUDYID,USUBJID"),
    ("CDISC-DS-007", "ADSL", 4, S2, "STUDYID,USUBJID"),
    ("CDISC-DS-008", "TS", 7, None, "TSVAL"),
    ("CDISC-DS-008", "ADTTE", 3, S3, "CNSDTDSC"),
    ("CDISC-DS-009", "ADRS", 1, S1, "ASEQ"),
    ("CDISC-DS-010", "ADRS", 4, S2, "ASEQ"),
    ("CDISC-DS-010", "ADRS", 5, S2, "ASEQ"),
    # Char columns are validated as object dtype, so a text value in a Num column is
    # reported per record.
    ("CDISC-DS-011", "ADTTE", 1, S1, "AVAL"),
    ("CDISC-DS-011", "ADTTE", 2, S2, "AVAL"),
    ("CDISC-DS-011", "ADTTE", 3, S3, "AVAL"),
    # The duplicated ADSL subject is also the ADSL-structure rule's finding.
    ("CDISC-XD-002", "ADSL", 2, S2, "USUBJID"),
    ("CDISC-XD-002", "ADSL", 4, S2, "USUBJID"),
}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The clean build written as XPT v5 and validated the way ``cdisc validate`` does."""
    out = tmp_path_factory.mktemp("clean")
    xpt = out / "xpt"
    xpt.mkdir()
    data, metas, ct = sample_build()
    for name, df in data.items():
        fmts = {v.name: v.format for v in metas[name].variables if v.format}
        pyreadstat.write_xport(df, str(xpt / f"{name.lower()}.xpt"), file_format_version=5,
                               table_name=name, variable_format=fmts)
    return validate_build([xpt], metas, ct, out_dir=out), out, (data, metas, ct)


@pytest.fixture(scope="module")
def defective(tmp_path_factory):
    """Two runs with the native engine (the default), one through Great Expectations itself."""
    outs, results = [], []
    for i, engine in enumerate(("native", "native", "ge")):
        out = tmp_path_factory.mktemp(f"defective{i}")
        data, metas, ct = defective_build()
        results.append(validate_datasets(data, metas, ct, out_dir=out, engine=engine))
        outs.append(out)
    return results, outs


def _all_fields(result):
    return sorted((f.rule, f.dataset, f.row or 0, f.usubjid or "", f.variable or "", f.value or "", f.message,
                   f.severity, str(f.seq))
                  for f in result.findings)


def test_native_engine_finds_what_great_expectations_finds(defective):
    """The suites evaluated natively (validation.expect) give GE's findings field for field,
    and the same suite JSON byte for byte."""
    (native, _, ge), outs = defective
    assert _all_fields(native) == _all_fields(ge) and len(native.findings) == len(EXPECTED)
    for name in ("EX", "ADSL", "TS", "ADTTE"):
        a, b = ((o / "validation" / "suites" / f"{name}.json").read_bytes() for o in (outs[0], outs[2]))
        assert a == b


def test_native_engine_on_the_shipped_study_agrees_with_ge(built):
    """Every dataset of the real build, with a few defects written in, under both engines."""
    import pyreadstat

    from cdisc.pipeline import load_build_metadata
    from cdisc.ct import load_terminology
    from conftest import SPECS

    metas = load_build_metadata(built.out)
    ct = load_terminology(SPECS).as_dict()
    data = {}
    for o in built.manifest["outputs"]:
        if o["dataset"] in ("DM", "AE", "LB", "ADSL", "ADLB", "TS", "SUPPAE"):
            data[o["dataset"]] = pyreadstat.read_xport(str(built.out / o["file"]),
                                                       disable_datetime_conversion=True)[0]
    data["AE"].loc[3, "AESER"] = "MAYBE"                # non-extensible codelist NY
    data["AE"].loc[4, "AESTDTC"] = "2024-02-30"         # not a date
    data["LB"].loc[7, "LBSTRESN"] = -1.0                # below its range
    data["DM"].loc[2, "USUBJID"] = data["DM"].loc[1, "USUBJID"]   # duplicate key
    data["DM"] = data["DM"].drop(columns=["SEX"])                 # Req variable missing
    data["SUPPAE"].loc[0, "QVAL"] = ""                  # Req blank
    rules = [r for r in load_rules() if r.engine == "ge"]
    runs = {e: validate_datasets(data, metas, ct, rules=rules, engine=e) for e in ("native", "ge")}
    assert _all_fields(runs["native"]) == _all_fields(runs["ge"])
    assert {(f.rule, f.dataset, f.row) for f in runs["native"].findings} >= {
        ("CDISC-DS-004", "AE", 4), ("CDISC-DS-006", "AE", 5), ("CDISC-DS-012", "LB", 8),
        ("CDISC-DS-007", "DM", 2), ("CDISC-DS-007", "DM", 3), ("CDISC-DS-001", "DM", None),
        ("CDISC-DS-002", "SUPPAE", 1)}


def test_clean_build_passes_every_suite(clean):
    result, out, _ = clean
    assert result.findings == [] and result.exit_code() == 0
    assert [(d.name, d.records) for d in result.datasets][:3] == [("ADAE", 4), ("ADRS", 7), ("ADSL", 3)]
    ge = {r.id: r for r in result.rules if r.id.startswith("CDISC-DS-")}
    # Every generated check ran somewhere; only the exception rule never triggers.
    assert {i for i, r in ge.items() if r.status == "passed"} == {
        "CDISC-DS-002", "CDISC-DS-004", "CDISC-DS-005", "CDISC-DS-006", "CDISC-DS-007",
        "CDISC-DS-008", "CDISC-DS-009", "CDISC-DS-010", "CDISC-DS-011", "CDISC-DS-013"}
    # Every Req/Exp variable is present, so no existence expectation was generated.
    assert ge["CDISC-DS-001"].status == ge["CDISC-DS-003"].status == "not applicable"
    assert sorted(p.name for p in (out / "validation" / "suites").iterdir()) == [
        f"{n}.json" for n in ("ADAE", "ADRS", "ADSL", "ADTTE", "AE", "DM", "EX", "SUPPAE", "TS")]


def test_each_defect_fires_its_rule_on_its_row(defective):
    result = defective[0][0]
    got = {(f.rule, f.dataset, f.row, f.usubjid, f.variable) for f in result.findings}
    assert got == EXPECTED


def test_finding_values_and_seq(defective):
    result = defective[0][0]
    by = {(f.rule, f.dataset, f.row): f for f in result.findings}
    assert by[("CDISC-DS-004", "AE", 1)].value == "VERY BAD"
    assert by[("CDISC-DS-004", "AE", 1)].seq == 1
    assert by[("CDISC-DS-005", "EX", 2)].severity == "warning"
    assert by[("CDISC-DS-007", "EX", 2)].value == (
        "STUDYID=VGO-CS01P, USUBJID=VGO-CS01P-001, EXTRT=CD7 CAR-NK, EXSTDTC=2023-01-20")
    assert by[("CDISC-DS-009", "ADRS", 1)].seq == 0
    # 001: OS from 2023-01-20 to 2023-12-20 = (354 - 20) + 1 = 335 days, now the text "335".
    assert by[("CDISC-DS-011", "ADTTE", 1)].value == "335"
    assert by[("CDISC-DS-008", "TS", 7)].value == LONG
    # 1 warning (extensible CT) and 1 warning (Exp variable missing), the rest errors.
    assert len(result.warnings) == 2 and len(result.errors) == len(EXPECTED) - 2
    assert result.exit_code() == 1 and result.verdict == f"NOT ready: {len(EXPECTED) - 2} errors"


def test_results_json_deterministic_across_runs(defective):
    _, outs = defective
    a, b = ((o / "validation" / "results.json").read_bytes() for o in outs[:2])
    assert a == b
    for name in ("EX", "ADSL"):
        sa, sb = ((o / "validation" / "suites" / f"{name}.json").read_bytes() for o in outs[:2])
        assert sa == sb


def test_suite_json_is_generated_from_metadata(clean):
    _, out, (data, metas, ct) = clean
    suite = json.loads((out / "validation" / "suites" / "AE.json").read_text())
    by_col = {}
    for e in suite["expectations"]:
        by_col.setdefault(e["kwargs"].get("column") or ",".join(e["kwargs"]["column_list"]), []).append(
            (e["type"], e["meta"]["rule"], e["severity"]))
    assert ("expect_column_values_to_be_iso8601", "CDISC-DS-006", "critical") in by_col["AESTDTC"]
    assert ("expect_column_values_to_be_in_set", "CDISC-DS-004", "critical") in by_col["AESEV"]
    assert ("expect_column_values_to_be_positive_integers", "CDISC-DS-009", "critical") in by_col["AESEQ"]
    assert ("expect_compound_columns_to_be_unique", "CDISC-DS-010", "critical") in by_col["USUBJID,AESEQ"]
    assert ("expect_compound_columns_to_be_unique", "CDISC-DS-007", "critical") in by_col[
        "STUDYID,USUBJID,AEDECOD,AESTDTC"]
    ex_suite = json.loads((out / "validation" / "suites" / "EX.json").read_text())
    route = [e for e in ex_suite["expectations"] if e["kwargs"].get("column") == "EXROUTE"
             and e["type"] == "expect_column_values_to_be_in_set"]
    assert route[0]["severity"] == "warning" and route[0]["kwargs"]["value_set"] == [
        "INTRAVENOUS", "ORAL", "SUBCUTANEOUS"]
    # AE has 12 variables (9 Char, 3 Num): 6 Req not-null + 9 ASCII + 9 Char type + 3 Num type
    # + 1 AESEQ positive integer + 2 codelists (AESEV, AESER) + 2 ISO (AESTDTC, AEENDTC)
    # + 1 key + 1 AESEQ within USUBJID + 1 DOMAIN = AE (CDISC-DS-013) = 35.
    rules = {r.check: r for r in load_rules() if r.engine == "ge"}
    specs = suite_specs("AE", data["AE"], metas["AE"], ct, rules)
    assert len(specs) == len(suite["expectations"]) == 35


def test_saved_suite_reruns_outside_the_toolkit(clean, defective):
    """A suite JSON + validation.expectations is enough to re-run the checks in plain GE."""
    import great_expectations as gx

    import cdisc.validation.expectations  # noqa: F401  (registers the custom expectations)

    _, out, _ = clean
    spec = json.loads((out / "validation" / "suites" / "EX.json").read_text())
    suite = gx.ExpectationSuite(**spec)
    data, _, _ = defective_build()
    ctx = gx.get_context(mode="ephemeral")
    batch = (ctx.data_sources.add_pandas("rerun").add_dataframe_asset("EX")
             .add_batch_definition_whole_dataframe("EX").get_batch(batch_parameters={"dataframe": ge_frame(data["EX"])}))
    res = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    failed = sorted((r.expectation_config.meta["rule"], tuple(r.result.get("unexpected_index_list") or ()))
                    for r in res.results if not r.success)
    assert failed == [("CDISC-DS-005", (2,)), ("CDISC-DS-006", (1,)), ("CDISC-DS-007", (1, 2))]


def test_suite_json_function_is_stable(clean):
    import great_expectations as gx

    _, out, _ = clean
    text = (out / "validation" / "suites" / "DM.json").read_text()
    assert suite_json(gx.ExpectationSuite(**json.loads(text))) == text


def test_ge_rule_scope_limits_generated_expectations():
    """Scope in rules.yaml applies to suite checks too (no GE needed to build specs)."""
    data, metas, ct = sample_build()
    rules = {r.check: r for r in load_rules() if r.engine == "ge"}
    n_ascii = sum(s.rule == "CDISC-DS-008" for s in suite_specs("TS", data["TS"], metas["TS"], ct, rules))
    assert n_ascii == 6        # TS has 6 Char variables (all but TSSEQ)
    rules["char_ascii_200"] = rules["char_ascii_200"].model_copy(
        update={"scope": rules["char_ascii_200"].scope.model_copy(update={"exclude": ["TS"]})})
    specs = suite_specs("TS", data["TS"], metas["TS"], ct, rules)
    assert not any(s.rule == "CDISC-DS-008" for s in specs)
    assert any(s.rule == "CDISC-DS-008" for s in suite_specs("DM", data["DM"], metas["DM"], ct, rules))


def test_numeric_range_from_the_spec_becomes_an_expectation():
    """A Num variable with `range: [2, 17]` gets ExpectColumnValuesToBeBetween (CDISC-DS-012);
    without a range it gets none."""
    import pandas as pd

    from cdisc.metadata import DatasetMeta, VariableMeta

    meta = DatasetMeta(name="DM", label="Demographics", keys=["USUBJID"], **{"class": "SPECIAL PURPOSE"},
                       variables=[VariableMeta(name="USUBJID", label="Unique Subject Identifier"),
                                  VariableMeta(name="AGE", label="Age", type="Num", range=(2, 17)),
                                  VariableMeta(name="WEIGHT", label="Weight", type="Num")])
    df = pd.DataFrame({"USUBJID": ["A", "B"], "AGE": [1.0, 17.0], "WEIGHT": [20.0, 30.0]})
    rules = {r.check: r for r in load_rules() if r.engine == "ge"}
    between = [s for s in suite_specs("DM", df, meta, {}, rules) if s.kind == "ExpectColumnValuesToBeBetween"]
    assert [(s.rule, s.variable, s.kwargs["min_value"], s.kwargs["max_value"]) for s in between] == [
        ("CDISC-DS-012", "AGE", 2, 17)]


def test_domain_value_is_the_datasets_domain_code():
    """DOMAIN = EA on an AE record (CORE 0.17.1 has no rule that reports it): CDISC-DS-013."""
    data, metas, ct = sample_build()
    data["AE"].loc[2, "DOMAIN"] = "EA"
    rules = [r for r in load_rules() if r.engine == "ge"]
    res = validate_datasets(data, metas, ct, rules=rules)
    assert {(f.rule, f.dataset, f.row, f.value) for f in res.findings} == {("CDISC-DS-013", "AE", 3, "EA")}
