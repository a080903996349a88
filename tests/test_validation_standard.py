"""Validation against the standard, not against our own specs (issue 11).

The build's checks used to be generated from the same specs the build came from, so what a
spec forgot was never reported. Here the metadata each dataset is validated against is
merged with SDTMIG 3.4 / ADaMIG 1.3 (validation/standard.py).
"""
from __future__ import annotations

import pandas as pd
import pytest

from cdisc.ct import load_terminology
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.standards import load_standard
from conftest import SPECS
from cdisc.validation import load_rules, validate_datasets
from cdisc.validation.standard import adam_class, merge_with_standard, metadata_from_files

IG = load_standard("sdtmig", "3.4")
ADAMIG = load_standard("adamig", "1.3")
GE_RULES = [r for r in load_rules() if r.engine == "ge"]


@pytest.fixture(scope="module")
def ct():
    return load_terminology(SPECS).as_dict()


def _dm(**drop) -> tuple[pd.DataFrame, DatasetMeta]:
    """A 2-subject DM with the spec's metadata; ``drop`` removes variables from both."""
    df = pd.DataFrame({"STUDYID": ["S", "S"], "DOMAIN": ["DM", "DM"], "USUBJID": ["S-1", "S-2"],
                       "SUBJID": ["1", "2"], "SITEID": ["01", "01"], "SEX": ["F", "M"], "COUNTRY": ["CHN", "CHN"],
                       "ARMCD": ["DL1", "DL2"], "ARM": ["a", "b"]})
    variables = [VariableMeta(name=c, label=c, core="Req" if c in ("STUDYID", "USUBJID") else None) for c in df.columns]
    df = df.drop(columns=list(drop))
    meta = DatasetMeta(name="DM", label="Demographics", variables=[v for v in variables if v.name not in drop],
                       **{"class": "SPECIAL PURPOSE"})
    return df, meta


def _keys(result):
    return {(f.rule, f.dataset, f.row, f.variable) for f in result.findings}


def test_an_expected_variable_the_spec_forgot_is_missing(ct):
    """DM.ARMNRS, ACTARMUD, RFSTDTC... are Exp in SDTMIG 3.4: reported though no spec names them;
    SEX (Req in the IG, no core in this spec) is required not-null."""
    df, meta = _dm()
    df.loc[1, "SEX"] = ""
    merged = merge_with_standard("DM", meta, df.columns, ct, IG, ADAMIG)
    res = validate_datasets({"DM": df}, {"DM": merged}, ct, rules=GE_RULES)
    keys = _keys(res)
    assert ("CDISC-DS-003", "DM", None, "ARMNRS") in keys and ("CDISC-DS-003", "DM", None, "ACTARMUD") in keys
    assert ("CDISC-DS-003", "DM", None, "RFSTDTC") in keys
    assert ("CDISC-DS-002", "DM", 2, "SEX") in keys
    # Perm variables of the IG (BRTHDTC, ETHNIC) are never "missing"
    assert not any(k[3] in ("BRTHDTC", "ETHNIC", "INVNAM") for k in keys)
    # without the standard, the same data passes: the checks compared the data with itself
    assert not any(f.rule == "CDISC-DS-003" for f in validate_datasets({"DM": df}, {"DM": meta}, ct,
                                                                         rules=GE_RULES).findings)


def test_codelists_come_from_the_standard_when_the_spec_gives_none(ct):
    df, meta = _dm()
    df.loc[0, "SEX"] = "FEMALE"                     # SEX (C66731) is non-extensible: F, M, U, INTERSEX
    merged = merge_with_standard("DM", meta, df.columns, ct, IG, ADAMIG)
    assert merged.variable("SEX").codelist == "SEX"
    res = validate_datasets({"DM": df}, {"DM": merged}, ct, rules=GE_RULES)
    assert ("CDISC-DS-004", "DM", 1, "SEX") in _keys(res)


def test_alternative_codelists_are_one_union(ct):
    """DSDECOD may take NCOMPLT, PROTMLST or OTHEVENT terms (SDTMIG 3.4 DS, value-level by DSCAT)."""
    df = pd.DataFrame({"STUDYID": ["S"] * 3, "DOMAIN": ["DS"] * 3, "USUBJID": ["S-1"] * 3, "DSSEQ": [1.0, 2.0, 3.0],
                       "DSTERM": ["x", "y", "z"], "DSDECOD": ["INFORMED CONSENT OBTAINED", "DEATH", "FELL ASLEEP"],
                       "DSCAT": ["PROTOCOL MILESTONE", "DISPOSITION EVENT", "DISPOSITION EVENT"]})
    meta = DatasetMeta(name="DS", label="Disposition", **{"class": "EVENTS"},
                       variables=[VariableMeta(name=c, label=c, type="Num" if c == "DSSEQ" else "Char")
                                  for c in df.columns])
    merged = merge_with_standard("DS", meta, df.columns, ct, IG, ADAMIG)
    assert merged.variable("DSDECOD").codelist == "NCOMPLT|PROTMLST|OTHEVENT"
    res = validate_datasets({"DS": df}, {"DS": merged}, ct, rules=GE_RULES)
    flagged = {(f.row, f.value) for f in res.findings if f.variable == "DSDECOD"}
    assert flagged == {(3, "FELL ASLEEP")}           # extensible union: a warning, on that record only


def test_result_variables_are_not_checked_against_the_character_result_codelist(ct):
    """LBSTRESC's IG codelist (C102580) lists character results; 5.3 is a numeric result."""
    meta = DatasetMeta(name="LB", label="Laboratory Test Results", **{"class": "FINDINGS"},
                       variables=[VariableMeta(name="LBSTRESC", label="x")])
    merged = merge_with_standard("LB", meta, ["LBSTRESC"], ct, IG, ADAMIG)
    assert merged.variable("LBSTRESC").codelist is None


def test_adam_core_from_adamig(ct):
    """ADSL.SEX, AGEU, TRT01P are Req in ADaMIG 1.3 (TRT01P through the TRTxxP placeholder);
    a BDS dataset needs PARAMCD and PARAM."""
    adsl = DatasetMeta(name="ADSL", label="ADSL", standard="ADaM", **{"class": "SUBJECT LEVEL ANALYSIS DATASET"},
                       variables=[VariableMeta(name=n, label=n) for n in ("STUDYID", "USUBJID", "SEX", "TRT01P")])
    merged = merge_with_standard("ADSL", adsl, ["STUDYID", "USUBJID", "SEX", "TRT01P"], ct, IG, ADAMIG)
    cores = {v.name: v.core for v in merged.variables}
    assert cores["SEX"] == cores["TRT01P"] == "Req" and cores["AGEU"] == "Req"   # AGEU added, absent
    bds = DatasetMeta(name="ADLB", label="x", standard="ADaM", **{"class": "BASIC DATA STRUCTURE"},
                      variables=[VariableMeta(name="USUBJID", label="x")])
    merged = merge_with_standard("ADLB", bds, ["USUBJID"], ct, IG, ADAMIG)
    assert {"PARAMCD", "PARAM"} <= {v.name for v in merged.variables if v.core == "Req"}


def test_adam_class_inferred_from_variables():
    assert adam_class("ADSL", ["USUBJID"]) == "ADSL"
    assert adam_class("ADTTE", ["USUBJID", "PARAMCD", "CNSR"]) == "TTE"
    assert adam_class("ADLB", ["USUBJID", "PARAMCD"]) == "BDS"
    assert adam_class("ADAE", ["USUBJID", "AEDECOD"]) == "OCCDS"
    assert adam_class("ADXX", [], "BASIC DATA STRUCTURE") == "BDS"


def test_metadata_from_files_of_a_foreign_folder(ct):
    """A CRO delivery has no specs: names, labels and types from the files, Core and codelists
    from the IG (split LB datasets are LB)."""
    lbch = pd.DataFrame({"STUDYID": ["S"], "DOMAIN": ["LB"], "USUBJID": ["S-1"], "LBSEQ": [1.0],
                         "LBTESTCD": ["ALB"], "LBTEST": ["Albumin"]})
    metas = metadata_from_files({"LBCH": lbch}, {"LBCH": {"label": "Lab Chemistry", "variables": {"LBSEQ": "Seq"}}},
                                ct, IG, ADAMIG)
    m = metas["LBCH"]
    assert (m.label, m.standard, m.class_) == ("Lab Chemistry", "SDTM", "Findings")
    assert m.variable("LBSEQ").label == "Seq" and m.variable("LBSEQ").type == "Num"
    assert m.variable("LBTESTCD").codelist == "LBTESTCD" and m.variable("LBTESTCD").core == "Req"
    assert m.variable("LBORRES").core == "Exp"                 # an Exp variable the file lacks
