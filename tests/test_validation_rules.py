"""Rule catalogue (python checks): clean build is silent, one injected defect -> one rule.

Runs without Great Expectations (``run_ge=False``): the GE suites have their own tests.
Each case mutates a copy of ``validation.sample`` so that exactly one thing is wrong
(dependent values such as --DY are kept consistent) and asserts the exact set of
(rule, dataset, row, USUBJID, variable) findings.
"""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from cdisc.errors import SpecError
from cdisc.validation import load_rules, validate_datasets
from cdisc.validation.dates import compare_iso, iso8601_valid
from cdisc.validation.sample import S1, S2, S3, sample_build, sas_date

# the data cut study.yaml would give (cdisc.cli._study_rules fills it in a real build)
RULES = [r.model_copy(update={"params": {**r.params, "data_cut": "2024-06-30"}}) if "data_cut" in r.params else r
         for r in load_rules()]


def run(data, metas, ct, rules=RULES):
    return validate_datasets(data, metas, ct, run_ge=False, rules=rules)


def keyset(result):
    return {(f.rule, f.dataset, f.row, f.usubjid, f.variable) for f in result.findings}


def test_clean_build_has_no_findings_and_every_python_rule_applies():
    data, metas, ct = sample_build()
    result = run(data, metas, ct)
    assert result.findings == []
    status = {r.id: r.status for r in result.rules}
    python_ids = [r.id for r in RULES if r.engine == "python"]
    assert len(python_ids) == 27
    assert all(status[i] == "passed" for i in python_ids), status
    assert result.exit_code() == 0 and result.verdict == "Ready for lock: no errors"


def _set(df, row, **values):
    """Set values on a 1-based record number."""
    for k, v in values.items():
        df.loc[row - 1, k] = v


def _orphan(d, m):
    _set(d["AE"], 4, USUBJID="VGO-CS01P-999")


def _end_before_start(d, m):
    # AE 1 starts 2023-01-21; end 2023-01-19 is day -1 (19 - 20), kept consistent.
    _set(d["AE"], 1, AEENDTC="2023-01-19", AEENDY=-1.0)
    _set(d["ADAE"], 1, AEENDTC="2023-01-19", AENDT=sas_date("2023-01-19"))


def _adam_end_before_start(d, m):
    _set(d["ADAE"], 1, AENDT=sas_date("2023-01-20"))   # ASTDT is 2023-01-21


def _rfstdtc(d, m):
    # 003's dose moved a day earlier (EXSTDY -1 = 9 - 10) while RFSTDTC stays 2023-03-10.
    _set(d["EX"], 4, EXSTDTC="2023-03-09", EXSTDY=-1.0)


def _dy_zero(d, m):
    _set(d["AE"], 2, AESTDY=0.0)


def _dy_wrong(d, m):
    _set(d["AE"], 1, AESTDY=3.0)      # 2023-01-21 - 2023-01-20 + 1 = 2


def _supp_orphan(d, m):
    _set(d["SUPPAE"], 1, IDVARVAL="7")


def _ts_missing(d, m):
    d["TS"] = d["TS"][d["TS"]["TSPARMCD"] != "SSTDTC"].reset_index(drop=True)


def _ts_recommended_missing(d, m):
    d["TS"] = d["TS"][d["TS"]["TSPARMCD"] != "TBLIND"].reset_index(drop=True)


def _adsl_duplicate(d, m):
    d["ADSL"] = pd.concat([d["ADSL"], d["ADSL"].iloc[[1]]], ignore_index=True)


def _adsl_missing_subject(d, m):
    d["ADSL"] = d["ADSL"].iloc[[0, 1]].reset_index(drop=True)


def _cnsr_2(d, m):
    _set(d["ADTTE"], 1, CNSR=2.0)


def _evntdesc_blank(d, m):
    _set(d["ADTTE"], 2, EVNTDESC="")


def _two_bor(d, m):
    extra = d["ADRS"].iloc[[4]].copy()          # 002's BOR record, ASEQ 2
    extra["ASEQ"], extra["ADT"] = 3.0, sas_date("2023-04-15")
    d["ADRS"] = pd.concat([d["ADRS"], extra], ignore_index=True)


def _label(d, m):
    v = m["ADSL"].variable("AGE")
    v.label = "Age (years)"


def _length(d, m):
    m["AE"].variable("USUBJID").length = 20


def _age(d, m):
    _set(d["ADSL"], 1, AGE=11.0)


def _trtemfl(d, m):
    _set(d["ADAE"], 2, TRTEMFL="Y")   # ASTDT 2023-01-18 < TRTSDT 2023-01-20


def _death(d, m):
    _set(d["DM"], 2, DTHDTC="")
    _set(d["ADSL"], 2, DTHDT=float("nan"))


def _death_flag_missing(d, m):
    _set(d["DM"], 1, DTHDTC="2023-12-20")
    _set(d["ADSL"], 1, DTHDT=sas_date("2023-12-20"))


def _before_consent(d, m):
    # 001 consented 2023-01-05; AE 2 now 2023-01-03 (day 3 - 20 = -17), ADAE copy kept in step.
    _set(d["AE"], 2, AESTDTC="2023-01-03", AESTDY=-17.0)
    _set(d["ADAE"], 2, AESTDTC="2023-01-03", ASTDT=sas_date("2023-01-03"), ASTDY=-17.0)


def _after_cut(d, m):
    # 003's last AE-free day: EX 4 (2023-03-10, day 1) ends 2024-07-02, after the 2024-06-30 cut
    # (day 2024-07-02 - 2023-03-10 + 1 = 481; 2024 is a leap year: 296 + 184 = 480 days later)
    _set(d["EX"], 4, EXENDTC="2024-07-02", EXENDY=481.0)


def _partial_after_cut(d, m):
    # 2024-07 is after 2024-06-30 at month precision; 2024-06 would not be
    _set(d["EX"], 4, EXENDTC="2024-07", EXENDY=float("nan"))


def _before_birth(d, m):
    # 002 born 2008-09 (month precision): consent moved to 2008-08-31 is before birth (and
    # every later 002 date is still after consent)
    _set(d["DM"], 2, RFICDTC="2008-08-31")


def _zero_dose(d, m):
    _set(d["EX"], 2, EXDOSE=0.0)


def _negative_dose(d, m):
    _set(d["EX"], 3, EXDOSE=-3e7)


def _param_two_names(d, m):
    _set(d["ADRS"], 2, PARAM="Overall response")          # OVR now has two PARAM texts


def _aval_avalc(d, m):
    _set(d["ADRS"], 2, AVAL=9.0)                           # OVR CR is now 1 (record 1) and 9 (record 2)


def _flag_value(d, m):
    _set(d["ADAE"], 3, TRTEMFL="YES")


def _population_flag_null(d, m):
    _set(d["ADSL"], 2, SAFFL="")


def _ady(d, m):
    _set(d["ADAE"], 1, ASTDY=1.0)                           # ASTDT 2023-01-21 - TRTSDT 2023-01-20 + 1 = 2


def _codelist_unknown(d, m):
    m["AE"].variable("AESEV").codelist = "SEVX"


CASES = {
    "orphan AE subject": (_orphan, {("CDISC-XD-001", "AE", 4, "VGO-CS01P-999", "USUBJID")}),
    # The copied ADAE dates (AESTDTC/AEENDTC and ASTDT/AENDT) carry the same defect.
    "end before start": (_end_before_start, {("CDISC-XD-003", "AE", 1, S1, "AESTDTC"),
                                             ("CDISC-XD-003", "ADAE", 1, S1, "AESTDTC"),
                                             ("CDISC-XD-003", "ADAE", 1, S1, "ASTDT")}),
    "ADaM end before start": (_adam_end_before_start, {("CDISC-XD-003", "ADAE", 1, S1, "ASTDT")}),
    "RFSTDTC not first dose": (_rfstdtc, {("CDISC-XD-004", "DM", 3, S3, "RFSTDTC")}),
    "DY day 0": (_dy_zero, {("CDISC-XD-005", "AE", 2, S1, "AESTDY")}),
    "DY wrong": (_dy_wrong, {("CDISC-XD-006", "AE", 1, S1, "AESTDY")}),
    "SUPP without parent": (_supp_orphan, {("CDISC-XD-007", "SUPPAE", 1, S2, "IDVARVAL")}),
    "TS SSTDTC missing": (_ts_missing, {("CDISC-XD-008", "TS", None, None, "TSPARMCD")}),
    "TS TBLIND missing": (_ts_recommended_missing, {("CDISC-XD-009", "TS", None, None, "TSPARMCD")}),
    "ADSL duplicate": (_adsl_duplicate, {("CDISC-XD-002", "ADSL", 2, S2, "USUBJID"),
                                         ("CDISC-XD-002", "ADSL", 4, S2, "USUBJID")}),
    "ADSL lacks a DM subject": (_adsl_missing_subject, {("CDISC-XD-002", "ADSL", None, S3, "USUBJID")}),
    "CNSR = 2": (_cnsr_2, {("CDISC-XD-012", "ADTTE", 1, S1, "CNSR")}),
    "EVNTDESC blank for event": (_evntdesc_blank, {("CDISC-XD-013", "ADTTE", 2, S2, "EVNTDESC")}),
    "two BORs": (_two_bor, {("CDISC-XD-014", "ADRS", 5, S2, "PARAMCD"), ("CDISC-XD-014", "ADRS", 8, S2, "PARAMCD")}),
    "label mismatch": (_label, {("CDISC-MD-002", "ADSL", None, None, "AGE")}),
    "length mismatch": (_length, {("CDISC-MD-003", "AE", None, None, "USUBJID")}),
    "ADSL.AGE != DM.AGE": (_age, {("CDISC-XD-010", "ADSL", 1, S1, "AGE")}),
    "TRTEMFL before TRTSDT": (_trtemfl, {("CDISC-XD-011", "ADAE", 2, S1, "TRTEMFL")}),
    "DTHFL=Y without date": (_death, {("CDISC-XD-015", "DM", 2, S2, "DTHDTC"),
                                      ("CDISC-XD-015", "ADSL", 2, S2, "DTHDT")}),
    "death date without DTHFL": (_death_flag_missing, {("CDISC-XD-015", "DM", 1, S1, "DTHFL"),
                                                       ("CDISC-XD-015", "ADSL", 1, S1, "DTHFL")}),
    "date before consent": (_before_consent, {("CDISC-XD-016", "AE", 2, S1, "AESTDTC")}),
    "date after the data cut": (_after_cut, {("CDISC-XD-018", "EX", 4, S3, "EXENDTC")}),
    "partial date after the data cut": (_partial_after_cut, {("CDISC-XD-018", "EX", 4, S3, "EXENDTC")}),
    "date before birth": (_before_birth, {("CDISC-XD-019", "DM", 2, S2, "RFICDTC")}),
    "zero dose": (_zero_dose, {("CDISC-XD-020", "EX", 2, S1, "EXDOSE")}),
    "negative dose": (_negative_dose, {("CDISC-XD-020", "EX", 3, S2, "EXDOSE")}),
    "PARAMCD with two PARAMs": (_param_two_names, {("CDISC-XD-021", "ADRS", r, u, "PARAMCD")
                                                   for r, u in ((1, S1), (2, S1), (4, S2), (6, S3))}),
    "AVAL/AVALC not one-to-one": (_aval_avalc, {("CDISC-XD-022", "ADRS", 1, S1, "AVALC"),
                                                ("CDISC-XD-022", "ADRS", 2, S1, "AVALC")}),
    "flag not Y/N": (_flag_value, {("CDISC-XD-023", "ADAE", 3, S2, "TRTEMFL")}),
    "population flag null": (_population_flag_null, {("CDISC-XD-023", "ADSL", 2, S2, "SAFFL")}),
    "ADY off": (_ady, {("CDISC-XD-024", "ADAE", 1, S1, "ASTDY")}),
    "codelist not in CT": (_codelist_unknown, {("CDISC-MD-001", "AE", None, None, "AESEV")}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_defect_fires_exactly_its_rule(case):
    mutate, expected = CASES[case]
    data, metas, ct = sample_build()
    mutate(data, metas)
    result = run(data, metas, ct)
    assert keyset(result) == expected


def test_zero_dose_of_a_placebo_is_allowed_when_the_study_says_so():
    data, metas, ct = sample_build()
    _zero_dose(data, metas)
    data["EX"]["EXTRT"] = "PLACEBO"
    rules = [r.model_copy(update={"params": {**r.params, "zero_dose_treatments": ["placebo"]}})
             if r.id == "CDISC-XD-020" else r for r in RULES]
    assert keyset(run(data, metas, ct, rules)) == set()


def test_finding_fields_carry_seq_value_and_message():
    data, metas, ct = sample_build()
    _dy_wrong(data, metas)
    (f,) = run(data, metas, ct).findings
    assert (f.seq, f.value, f.severity) == (1, "3", "error")
    assert f.message == "Study day does not match --DTC and DM.RFSTDTC: expected 2 from AESTDTC and RFSTDTC"


def test_adsl_copy_finding_shows_both_values():
    data, metas, ct = sample_build()
    _age(data, metas)
    (f,) = run(data, metas, ct).findings
    assert f.value == "11 vs 10"


def test_start_end_compared_at_shared_precision():
    # 2023-05 vs 2023-05-10: equal at month precision -> 0 (not "after").
    a = pd.Series(["2023-05", "2023-06", "2023-05-10T10:00", "2023---01", "", "2023-02-30"])
    b = pd.Series(["2023-05-10", "2023-05-10", "2023-05-10T09:00", "2023-05-01", "2023", "2023-01-01"])
    got = compare_iso(a, b).tolist()
    assert got[:3] == [0.0, 1.0, 1.0]
    assert all(pd.isna(x) for x in got[3:])   # unknown month, blank, invalid day: not compared


def test_iso8601_partial_and_invalid_values():
    good = ["2003", "2003-12", "2003-12-15T10:30:05.1", "2003---15", "--12-15", "-----T07:15",
            "2003-12-15T-:15", ""]
    bad = ["2003-", "2003-13-01", "2023-02-30", "2003-12-15T24:00", "15DEC2003", "2003-12-15 10:30",
           "2003-12-15T", "-"]
    assert iso8601_valid(pd.Series(good, dtype=object)).all()
    assert not iso8601_valid(pd.Series(bad, dtype=object)).any()


def test_rfstdtc_rule_uses_study_drug_param():
    # A lymphodepletion record on 2023-01-15 precedes 001's first CAR-NK dose (2023-01-20).
    data, metas, ct = sample_build()
    extra = data["EX"].iloc[[0]].copy()
    extra[["EXSEQ", "EXTRT", "EXSTDTC", "EXENDTC", "EXSTDY", "EXENDY"]] = [3.0, "FLUDARABINE", "2023-01-15",
                                                                             "2023-01-15", -5.0, -5.0]
    data["EX"] = pd.concat([data["EX"], extra], ignore_index=True)
    # Default (extrt: null = every EX record): first dose is 2023-01-15 != RFSTDTC.
    assert keyset(run(data, metas, ct)) == {("CDISC-XD-004", "DM", 1, S1, "RFSTDTC")}
    rules = [r.model_copy(update={"params": {"extrt": ["CD7 CAR-NK"]}}) if r.id == "CDISC-XD-004" else r
             for r in RULES]
    assert run(data, metas, ct, rules).findings == []


def test_missing_dataset_makes_rules_not_applicable():
    data, metas, ct = sample_build()
    del data["ADTTE"], data["ADRS"], data["TS"]
    result = run(data, metas, ct)
    status = {r.id: r for r in result.rules}
    for rid in ("CDISC-XD-008", "CDISC-XD-009", "CDISC-XD-012", "CDISC-XD-013", "CDISC-XD-014"):
        assert status[rid].status == "not applicable", rid
    assert status["CDISC-XD-008"].reason == "TS is not in the build"
    # ... but a missing TS is itself a finding of the required-datasets rule.
    assert keyset(result) == {("CDISC-XD-017", "TS", None, None, None)}


def test_crashing_check_is_reported_not_raised(monkeypatch):
    from cdisc.validation import rules as rules_mod

    def boom(ctx, rule):
        raise KeyError("XYZ")

    monkeypatch.setitem(rules_mod.CHECKS, "cnsr_values", boom)
    data, metas, ct = sample_build()
    result = run(data, metas, ct)
    st = {r.id: r for r in result.rules}["CDISC-XD-012"]
    assert st.status == "check error" and st.reason == "KeyError: 'XYZ'" and st.findings == 1
    assert [f.rule for f in result.errors] == ["CDISC-XD-012"]


def test_catalogue_entries_are_complete_and_unique():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids)) == 49
    assert all(r.message and r.standard for r in RULES)
    # Verified FDA IDs (FDA Validator Rules v1.3 rule text).
    fda = {r.id: r.fda_id for r in RULES}
    assert fda["CDISC-XD-001"] == "SD0064" and fda["CDISC-XD-003"] == "SD0013"
    assert fda["CDISC-XD-005"] == "SD0038" and fda["CDISC-XD-007"] == "SD0077"


def test_bad_catalogue_is_a_spec_error(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text("rules:\n  - {id: X-1, engine: python, check: nope, severity: error, message: m, standard: s}\n")
    with pytest.raises(SpecError) as exc:
        load_rules(p)
    assert "rules[0].check" in str(exc.value) and "unknown check 'nope'" in str(exc.value)


def test_importing_validation_does_not_import_great_expectations():
    code = "import sys, validation; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dates_converted_to_objects_by_a_reader_are_turned_back_into_sas_numbers():
    """pyreadstat's default turns DATE9. columns into datetime.date objects; rules still work."""
    data, metas, ct = sample_build()
    for name in ("ADSL", "ADAE"):
        for v in metas[name].variables:
            if v.format == "DATE9.":
                days = pd.to_timedelta(data[name][v.name], unit="D")
                data[name][v.name] = (pd.Timestamp("1960-01-01") + days).dt.date.astype(object)
    assert data["ADAE"]["ASTDT"].dtype == object
    assert run(data, metas, ct).findings == []
    _trtemfl(data, metas)
    assert keyset(run(data, metas, ct)) == {("CDISC-XD-011", "ADAE", 2, S1, "TRTEMFL")}


def test_read_xpt_dir_keeps_sas_numbers(tmp_path):
    import pyreadstat

    from cdisc.validation import read_xpt_dir

    data, metas, _ = sample_build()
    pyreadstat.write_xport(data["ADSL"], str(tmp_path / "adsl.xpt"), file_format_version=5,
                           table_name="ADSL", variable_format={"TRTSDT": "DATE9."})
    back = read_xpt_dir(tmp_path)
    assert list(back) == ["ADSL"]
    # 2023-01-20 is 23030 days after 1960-01-01 (63 years incl. 16 leap days: 63*365+16+19).
    assert back["ADSL"]["TRTSDT"].tolist()[0] == 23030.0 == sas_date("2023-01-20")


def test_trtemfl_takes_trtsdt_from_adsl_when_adae_lacks_it():
    data, metas, ct = sample_build()
    data["ADAE"] = data["ADAE"].drop(columns=["TRTSDT"])
    assert run(data, metas, ct).findings == []          # ADSL.TRTSDT gives the same dates
    data["ADSL"].loc[2, "TRTSDT"] = float("nan")        # 003 (ADAE 4, TRTEMFL = Y) has no TRTSDT now
    assert keyset(run(data, metas, ct)) == {("CDISC-XD-011", "ADAE", 4, S3, "TRTEMFL")}
    data["ADSL"] = data["ADSL"].drop(columns=["TRTSDT"])
    status = {r.id: r.status for r in run(data, metas, ct).rules}
    assert status["CDISC-XD-011"] == "not applicable"


@pytest.mark.parametrize("armcd", ["SCRNFAIL", "Scrnfail"])
def test_an_sdtmig_312_screen_failure_is_not_expected_in_adsl(armcd):
    """CDISC-XD-002: a DM subject with ARMCD SCRNFAIL (SDTMIG 3.1.2/3.2, any case; the CDISC
    pilot writes Scrnfail) is not expected in ADSL; the same subject with another ARMCD is."""
    d, m, ct = sample_build()
    _adsl_missing_subject(d, m)          # S3 dropped from ADSL
    dm = d["DM"]
    d["DM"] = dm.assign(ARMCD=dm["ARMCD"].where(dm["USUBJID"] != S3, armcd))
    assert not [f for f in run(d, m, ct).findings if f.rule == "CDISC-XD-002"]
    d["DM"] = dm
    assert [(f.rule, f.usubjid) for f in run(d, m, ct).findings if f.rule == "CDISC-XD-002"] == [("CDISC-XD-002", S3)]
