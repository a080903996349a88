"""Integrity checks on a DS without DSSTDTC (was an internal KeyError in the death check)."""
from __future__ import annotations

import pandas as pd

from cdisc.sdtm.integrity import IntegrityProblem, apply_integrity_waivers, check_integrity, integrity_waivers


def _study(ds_columns):
    dm = pd.DataFrame({"USUBJID": ["S-1", "S-2"], "RFSTDTC": ["2024-01-10", "2024-01-12"],
                       "RFICDTC": ["2024-01-01", "2024-01-02"], "DTHFL": ["Y", None],
                       "DTHDTC": ["2024-05-01", None]})
    ds = pd.DataFrame({"USUBJID": ["S-1", "S-2"], "DSSEQ": [1.0, 1.0], "DSDECOD": ["DEATH", "COMPLETED"]})
    return {"DM": dm, "DS": ds[ds_columns]}


def test_ds_without_dsstdtc_is_checked_without_keyerror():
    assert check_integrity(_study(["USUBJID", "DSSEQ", "DSDECOD"])) == []


def test_ds_without_dsstdtc_still_finds_a_death_missing_from_ds():
    data = _study(["USUBJID", "DSSEQ", "DSDECOD"])
    data["DS"] = data["DS"].assign(DSDECOD=["COMPLETED", "COMPLETED"])
    problems = check_integrity(data)
    assert [p.message for p in problems] == [
        "DM record 1, USUBJID S-1: the subject died (DTHFL/DTHDTC) but DS has no record with DSDECOD DEATH"]
    assert isinstance(problems[0], IntegrityProblem)
    assert (problems[0].rule, problems[0].dataset, problems[0].usubjid) == ("death_consistency", "DM", "S-1")


def test_ds_without_dsdecod_is_skipped():
    assert check_integrity(_study(["USUBJID", "DSSEQ"])) == []


def test_waiver_matches_rule_dataset_and_subject_only():
    data = _study(["USUBJID", "DSSEQ", "DSDECOD"])
    data["DS"] = data["DS"].assign(DSDECOD=["COMPLETED", "COMPLETED"])
    problems = check_integrity(data)
    other = integrity_waivers({"integrity": [{"rule": "death_consistency", "dataset": "DM", "usubjid": "S-2",
                                              "reason": "r"}]})
    assert apply_integrity_waivers(problems, other) == (problems, [])
    mine = integrity_waivers({"integrity": [{"rule": "death_consistency", "dataset": "DM", "usubjid": "S-1",
                                             "reason": "death confirmed by phone; DS form not yet entered",
                                             "approved_by": "DM lead"}]})
    active, waived = apply_integrity_waivers(problems, mine)
    assert active == [] and waived[0]["reason"] == "death confirmed by phone; DS form not yet entered"
    assert waived[0]["approved_by"] == "DM lead" and waived[0]["variable"] == "DTHDTC"


def test_study_day_checked_against_the_named_reference():
    dm = pd.DataFrame({"USUBJID": ["S-1"], "RFSTDTC": ["2024-01-10"], "RFICDTC": ["2024-01-01"]})
    ds = pd.DataFrame({"USUBJID": ["S-1"], "DSSEQ": [1.0], "DSDECOD": ["COMPLETED"], "DSSTDTC": ["2024-01-05"],
                       "DSSTDY": [5.0]})                     # day 5 counted from consent
    data = {"DM": dm, "DS": ds}
    assert [p.message for p in check_integrity(data)] == [
        "DS record 1, USUBJID S-1: DSSTDY = 5.0 but DSSTDTC 2024-01-05 is study day -5.0 from RFSTDTC"]
    assert check_integrity(data, study_day_references={("DS", "DSSTDY"): "RFICDTC"}) == []
    data["DS"] = ds.assign(DSSTDY=[4.0])
    assert [p.message for p in check_integrity(data, study_day_references={("DS", "DSSTDY"): "RFICDTC"})] == [
        "DS record 1, USUBJID S-1: DSSTDY = 4.0 but DSSTDTC 2024-01-05 is study day 5.0 from RFICDTC"]
